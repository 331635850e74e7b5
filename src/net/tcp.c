/* SPDX-License-Identifier: MIT */
/* TCP and UDP sockets: listen, dial, addresses, datagrams. */
#include "net.h"

#include <netinet/in.h>
#include <unistd.h>

#define MAX_ADDRS 8

int goc__socket(int family, int type, goc_fd **out)
{
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int err = goc__fd_wrap(fd, out);
    if (err)
        close(fd);
    return err;
}

/*
 * A socket bound to the first address of addr that works. The next one
 * is tried only when this one cannot be had on this system (its family
 * or the address itself missing): a port in use or refused stays an
 * error, rather than a listener on the other family alone.
 */
static int bind_addr(const char *addr, int type, goc_fd **out)
{
    if (!out)
        return -EINVAL;
    struct sockaddr_storage ss[MAX_ADDRS];
    int n = goc_addr_resolve(addr, type, ss, MAX_ADDRS, NULL);
    if (n < 0)
        return n;
    int err = -EADDRNOTAVAIL;
    for (int i = 0; i < n; i++) {
        goc_fd *f;
        if ((err = goc__socket(ss[i].ss_family, type, &f)) != 0)
            continue;
        int one = 1;
        if (type == SOCK_STREAM)
            setsockopt(f->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(f->fd, (struct sockaddr *)&ss[i], goc__addr_len(&ss[i])) ==
                0 &&
            (type != SOCK_STREAM || listen(f->fd, SOMAXCONN) == 0)) {
            *out = f;
            return 0;
        }
        err = -errno;
        goc_fd_close(f);
        if (err == -EADDRINUSE || err == -EACCES)
            break;
    }
    return err;
}

int goc_tcp_listen(const char *addr, goc_fd **out)
{
    return bind_addr(addr, SOCK_STREAM, out);
}

int goc_udp_listen(const char *addr, goc_fd **out)
{
    return bind_addr(addr, SOCK_DGRAM, out);
}

/* Connect to each address of addr in turn; the last error if none. */
static int dial(const char *addr, int type, goc_fd **out, goc_ctx *ctx)
{
    if (!out)
        return -EINVAL;
    struct sockaddr_storage ss[MAX_ADDRS];
    int n = goc_addr_resolve(addr, type, ss, MAX_ADDRS, ctx);
    if (n < 0)
        return n;
    int err = -EADDRNOTAVAIL;
    for (int i = 0; i < n; i++) {
        goc_fd *f;
        if ((err = goc__socket(ss[i].ss_family, type, &f)) != 0)
            continue;
        if (type == SOCK_STREAM)
            goc__tcp_defaults(f);
        err = goc_fd_connect(f, (struct sockaddr *)&ss[i],
                             goc__addr_len(&ss[i]), ctx);
        if (err == 0) {
            *out = f;
            return 0;
        }
        goc_fd_close(f);
        if (err == -ECANCELED || err == -ETIMEDOUT)
            break;
    }
    return err;
}

int goc_tcp_dial(const char *addr, goc_fd **out, goc_ctx *ctx)
{
    return dial(addr, SOCK_STREAM, out, ctx);
}

int goc_udp_dial(const char *addr, goc_fd **out, goc_ctx *ctx)
{
    return dial(addr, SOCK_DGRAM, out, ctx);
}

static int sock_addr(goc_fd *f, char *buf, size_t n, bool peer)
{
    if (!f)
        return -EINVAL;
    int err = goc__fd_acquire(f); /* GOC_ECLOSED once some holder closed */
    if (err)
        return err;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int r = peer ? getpeername(f->fd, (struct sockaddr *)&ss, &len)
                 : getsockname(f->fd, (struct sockaddr *)&ss, &len);
    err = r < 0 ? -errno : 0;
    goc__fd_release(f);
    return err ? err : goc_addr_format((struct sockaddr *)&ss, buf, n);
}

int goc_fd_local_addr(goc_fd *f, char *buf, size_t n)
{
    return sock_addr(f, buf, n, false);
}

int goc_fd_remote_addr(goc_fd *f, char *buf, size_t n)
{
    return sock_addr(f, buf, n, true);
}

/* ---- datagrams ---------------------------------------------------------- */

struct dgram_arg {
    void *buf;
    size_t n;
    const struct sockaddr *to;
    socklen_t tolen;
    struct sockaddr_storage *from;
    socklen_t *fromlen;
};

static ssize_t op_sendto(int fd, void *arg, bool *drained)
{
    (void)drained;
    struct dgram_arg *a = arg;
    ssize_t r = sendto(fd, a->buf, a->n, MSG_NOSIGNAL, a->to, a->tolen);
    return r < 0 ? -errno : r;
}

static ssize_t op_recvfrom(int fd, void *arg, bool *drained)
{
    (void)drained;
    struct dgram_arg *a = arg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    ssize_t r = recvfrom(fd, a->buf, a->n, 0, (struct sockaddr *)&ss, &len);
    if (r < 0)
        return -errno;
    if (a->from) {
        *a->from = ss;
        if (a->fromlen)
            *a->fromlen = len;
    }
    return r;
}

ssize_t goc_udp_send_to(goc_fd *f,
                        const void *buf,
                        size_t n,
                        const struct sockaddr *to,
                        socklen_t tolen,
                        goc_ctx *ctx)
{
    if (!to || (!buf && n))
        return -EINVAL;
    struct dgram_arg a = { (void *)buf, n, to, tolen, NULL, NULL };
    return goc__fd_io(f, GOC__PD_WRITE, op_sendto, &a, ctx);
}

ssize_t goc_udp_recv_from(goc_fd *f,
                          void *buf,
                          size_t n,
                          struct sockaddr_storage *from,
                          socklen_t *fromlen,
                          goc_ctx *ctx)
{
    if (!buf && n)
        return -EINVAL;
    struct dgram_arg a = { buf, n, NULL, 0, from, fromlen };
    return goc__fd_io(f, GOC__PD_READ, op_recvfrom, &a, ctx);
}
