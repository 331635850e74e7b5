/* SPDX-License-Identifier: MIT */
/*
 * goc_fd: a descriptor owned by goc. Every call holds a reference for as
 * long as it uses the descriptor, and the owner's reference goes with
 * goc_fd_close(); the last one closes the descriptor. So a close from
 * another goroutine wakes the calls blocked on it (through the poll
 * descriptor) without the number being reused under them.
 *
 * The I/O loop is the same for every call: read the poll descriptor's
 * event count, try the system call, and on EAGAIN park until the count
 * moves, the handle is closed or the context ends.
 */
#include "net.h"
#include "goc/time.h"
#include "../internal/alloc.h"

#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---- poll descriptors: allocated in chunks, reused, never freed ------- */

#define PD_CHUNK 256

static struct {
    goc__lock lock;
    struct goc__pd *free;
} pd_cache;

static struct goc__pd *pd_alloc(void)
{
    goc__lock_acquire(&pd_cache.lock);
    if (!pd_cache.free) {
        struct goc__pd *chunk = goc__calloc(PD_CHUNK, sizeof(*chunk));
        if (!chunk) {
            goc__lock_release(&pd_cache.lock);
            return NULL;
        }
        for (int i = 0; i < PD_CHUNK; i++) {
            chunk[i].cache_next = pd_cache.free;
            pd_cache.free = &chunk[i];
        }
    }
    struct goc__pd *pd = pd_cache.free;
    pd_cache.free = pd->cache_next;
    goc__lock_release(&pd_cache.lock);
    goc__pd_reuse(pd);
    return pd;
}

static void pd_free(struct goc__pd *pd)
{
    goc__lock_acquire(&pd_cache.lock);
    pd->cache_next = pd_cache.free;
    pd_cache.free = pd;
    goc__lock_release(&pd_cache.lock);
}

/* ---- handles ------------------------------------------------------------ */

int goc__fd_wrap(int fd, goc_fd **out)
{
    int err = goc__rt_ensure();
    if (err)
        return err;
    goc_fd *f = goc__malloc(sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->pd = pd_alloc();
    if (!f->pd) {
        goc__free(f);
        return -ENOMEM;
    }
    f->fd = fd;
    int type;
    socklen_t len = sizeof(type);
    f->is_socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
    f->tcp_inq = false;
    atomic_init(&f->refs, 1);
    atomic_init(&f->closed, false);
    err = goc__pd_register(f->pd, fd);
    f->pollable = err == 0;
    if (err && err != -EPERM) { /* EPERM: a regular file, never ready */
        pd_free(f->pd);
        goc__free(f);
        return err;
    }
    *out = f;
    return 0;
}

int goc_fd_open(int fd, goc_fd **out)
{
    if (!out || fd < 0)
        return fd < 0 ? -EBADF : -EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -errno;
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -errno;
    int err = goc__fd_wrap(fd, out);
    if (err && !(fl & O_NONBLOCK))
        fcntl(fd, F_SETFL, fl);
    return err;
}

int goc__fd_acquire(goc_fd *f)
{
    if (atomic_load_explicit(&f->closed, memory_order_acquire))
        return GOC_ECLOSED;
    atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return 0;
}

void goc__fd_release(goc_fd *f)
{
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (f->pollable)
        epoll_ctl(goc__sched.epfd, EPOLL_CTL_DEL, f->fd, NULL);
    /* A close may wait, O_NONBLOCK or not: a socket with SO_LINGER until
     * its data is out, a file on a network filesystem until it is
     * flushed. As a blocking section it holds up no other goroutine. */
    bool section = goc_blocking_enter() == 0;
    close(f->fd);
    if (section)
        goc_blocking_exit();
    pd_free(f->pd);
    goc__free(f);
}

void goc__fd_interrupt(goc_fd *f)
{
    atomic_store_explicit(&f->closed, true, memory_order_release);
    goc__pd_close(f->pd);
}

int goc_fd_close(goc_fd *f)
{
    if (!f)
        return -EINVAL;
    goc__fd_interrupt(f);
    goc__fd_release(f);
    return 0;
}

goc_fd *goc_fd_retain(goc_fd *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void goc_fd_release(goc_fd *f)
{
    if (f)
        goc__fd_release(f);
}

int goc_fd_num(const goc_fd *f)
{
    return f ? f->fd : -EINVAL;
}

/* ---- the I/O loop ------------------------------------------------------- */

/* Park until dir's event count passes seq; 0 to retry, or ctx's error. */
static int fd_wait(goc_fd *f, int dir, uint64_t seq, struct goc_ctx *c)
{
    struct goc__wait w;
    struct goc__ctx_watch cw;
    goc__wait_init(&w, GOC__WAIT_IO);
    int err = goc__ctx_watch(c, &cw, &w, 1);
    if (err)
        return err;
    /* On waking, the retry reads f, then its poll state. */
    goc__resume_hint(f, f->pd);
    int won = goc__pd_wait(f->pd, dir, seq, &w);
    goc__resume_hint(NULL, NULL);
    goc__ctx_unwatch(&cw);
    return won == 0 ? 0 : goc_ctx_err(c);
}

ssize_t goc__fd_io(goc_fd *f, int dir, goc__fd_op op, void *arg, goc_ctx *ctx)
{
    if (!f)
        return -EINVAL;
    struct goc_ctx *c = goc__ctx_canceller(ctx);
    int err = c ? goc_ctx_err(c) : 0;
    if (err || (err = goc__fd_acquire(f)) != 0)
        return err;
    ssize_t r;
    if (!f->pollable) {
        bool drained;
        /* Inside a section of the caller's own, that one stands (and
         * must not end here). */
        bool section = goc_blocking_enter() == 0;
        do
            r = op(f->fd, arg, &drained);
        while (r == -EINTR);
        if (section)
            goc_blocking_exit();
        goc__fd_release(f);
        return r;
    }
    for (;;) {
        if (atomic_load_explicit(&f->closed, memory_order_acquire)) {
            r = GOC_ECLOSED;
            break;
        }
        struct goc__pd *pd = f->pd;
        uint64_t seq = goc__pd_seq(pd, dir);
        /* The last read emptied the queue and no event came since: the
         * read would fail, so wait at once (TCP_INQ spares the EAGAIN
         * system call of every request-response exchange). Not after a
         * hang-up: TCP_INQ counts a FIN but not an RST that came with the
         * data, whose event seq already holds. */
        if (dir == GOC__PD_READ &&
            seq ==
                atomic_load_explicit(&pd->drained_seq, memory_order_relaxed) &&
            !atomic_load_explicit(&pd->hangup, memory_order_relaxed)) {
            if ((r = fd_wait(f, dir, seq, c)) != 0)
                break;
            continue;
        }
        bool drained = false;
        r = op(f->fd, arg, &drained);
        if (drained)
            atomic_store_explicit(&pd->drained_seq, seq, memory_order_relaxed);
        if (r == -EINTR)
            continue;
        if (r != -EAGAIN)
            break;
        if ((r = fd_wait(f, dir, seq, c)) != 0)
            break;
    }
    goc__fd_release(f);
    return r;
}

/* ---- read and write ----------------------------------------------------- */

struct buf_arg {
    void *p;
    size_t n;
    bool inq; /* use recvmsg and its TCP_INQ report */
};

/* recvmsg, learning from TCP_INQ whether bytes are left behind. */
static ssize_t recv_inq(int fd, struct buf_arg *a, bool *drained)
{
    struct iovec iov = { a->p, a->n };
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int))];
    } ctl;
    struct msghdr msg = { .msg_iov = &iov,
                          .msg_iovlen = 1,
                          .msg_control = ctl.buf,
                          .msg_controllen = sizeof(ctl.buf) };
    ssize_t r = recvmsg(fd, &msg, 0);
    if (r < 0)
        return -errno;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
    if (r > 0 && cm && cm->cmsg_level == SOL_TCP &&
        cm->cmsg_type == TCP_CM_INQ) {
        int left;
        memcpy(&left, CMSG_DATA(cm), sizeof(left));
        *drained = left == 0;
    }
    return r;
}

static ssize_t op_read(int fd, void *arg, bool *drained)
{
    struct buf_arg *a = arg;
    if (a->inq)
        return recv_inq(fd, a, drained);
    ssize_t r = read(fd, a->p, a->n);
    return r < 0 ? -errno : r;
}

static ssize_t op_write(int fd, void *arg, bool *drained)
{
    (void)drained;
    struct buf_arg *a = arg;
    ssize_t r = write(fd, a->p, a->n);
    return r < 0 ? -errno : r;
}

static ssize_t op_send(int fd, void *arg, bool *drained)
{
    (void)drained;
    struct buf_arg *a = arg;
    ssize_t r = send(fd, a->p, a->n, MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
}

/*
 * A read of nothing: the handle's and ctx's state, at once. A zero-length
 * read(2) of an empty socket fails with EAGAIN, so it would wait for data
 * and then return 0, which reads as end of file.
 */
static ssize_t read_nothing(goc_fd *f, goc_ctx *ctx)
{
    int err = goc_ctx_err(ctx);
    if (err || (err = goc__fd_acquire(f)) != 0)
        return err;
    goc__fd_release(f);
    return 0;
}

ssize_t goc_fd_read(goc_fd *f, void *buf, size_t n, goc_ctx *ctx)
{
    if (!buf && n)
        return -EINVAL;
    if (!f)
        return -EINVAL;
    if (n == 0)
        return read_nothing(f, ctx);
    struct buf_arg a = { buf, n > SSIZE_MAX ? SSIZE_MAX : n, f->tcp_inq };
    return goc__fd_io(f, GOC__PD_READ, op_read, &a, ctx);
}

ssize_t goc_fd_read_full(goc_fd *f, void *buf, size_t n, goc_ctx *ctx)
{
    if ((!buf && n) || n > SSIZE_MAX)
        return -EINVAL;
    if (n == 0) /* the handle's and ctx's state, as goc_fd_read() */
        return goc_fd_read(f, buf, 0, ctx);
    size_t done = 0;
    while (done < n) {
        ssize_t r = goc_fd_read(f, (char *)buf + done, n - done, ctx);
        if (r < 0)
            return r;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

ssize_t goc_fd_write_some(goc_fd *f, const void *buf, size_t n, goc_ctx *ctx)
{
    if (!buf && n)
        return -EINVAL;
    if (!f)
        return -EINVAL;
    struct buf_arg a = { (void *)buf, n > SSIZE_MAX ? SSIZE_MAX : n, false };
    return goc__fd_io(f, GOC__PD_WRITE, f->is_socket ? op_send : op_write, &a,
                      ctx);
}

ssize_t goc_fd_write(goc_fd *f, const void *buf, size_t n, goc_ctx *ctx)
{
    if ((!buf && n) || n > SSIZE_MAX)
        return -EINVAL;
    size_t done = 0;
    do {
        ssize_t r =
            goc_fd_write_some(f, (const char *)buf + done, n - done, ctx);
        if (r < 0)
            return r;
        done += (size_t)r;
    } while (done < n);
    return (ssize_t)n;
}

struct iov_arg {
    const struct iovec *iov;
    int cnt;
};

static ssize_t op_readv(int fd, void *arg, bool *drained)
{
    (void)drained;
    struct iov_arg *a = arg;
    ssize_t r = readv(fd, a->iov, a->cnt);
    return r < 0 ? -errno : r;
}

static ssize_t op_writev(int fd, void *arg, bool *drained)
{
    (void)drained;
    struct iov_arg *a = arg;
    ssize_t r = writev(fd, a->iov, a->cnt);
    return r < 0 ? -errno : r;
}

static ssize_t op_sendmsg(int fd, void *arg, bool *drained)
{
    (void)drained;
    struct iov_arg *a = arg;
    struct msghdr msg = { .msg_iov = (struct iovec *)a->iov,
                          .msg_iovlen = (size_t)a->cnt };
    ssize_t r = sendmsg(fd, &msg, MSG_NOSIGNAL);
    return r < 0 ? -errno : r;
}

ssize_t goc_fd_readv(goc_fd *f, const struct iovec *iov, int cnt, goc_ctx *ctx)
{
    if (cnt < 0 || cnt > IOV_MAX || (!iov && cnt))
        return -EINVAL;
    struct iov_arg a = { iov, cnt };
    return goc__fd_io(f, GOC__PD_READ, op_readv, &a, ctx);
}

#define WRITEV_BATCH 64

/* Copy up to WRITEV_BATCH entries from iov[i], the first skipping off. */
static int iov_window(
    struct iovec *win, const struct iovec *iov, int cnt, int i, size_t off)
{
    int k = 0;
    for (; i < cnt && k < WRITEV_BATCH; i++, k++)
        win[k] = iov[i];
    win[0].iov_base = (char *)win[0].iov_base + off;
    win[0].iov_len -= off;
    return k;
}

ssize_t goc_fd_writev(goc_fd *f, const struct iovec *iov, int cnt, goc_ctx *ctx)
{
    if (!f || cnt < 0 || cnt > IOV_MAX || (!iov && cnt))
        return -EINVAL;
    size_t total = 0;
    for (int i = 0; i < cnt; i++) {
        if (iov[i].iov_len > SSIZE_MAX - total)
            return -EINVAL;
        total += iov[i].iov_len;
    }
    int i = 0;
    size_t off = 0; /* bytes of iov[i] already written */
    /* The first call takes every entry, as writev(2) does: a datagram
     * is one message, and a pipe write up to PIPE_BUF stays atomic. Only
     * what a partial write left goes in windows. It is made with nothing
     * to write too, as goc_fd_write() makes it: a done ctx or a closed
     * handle is reported, and a datagram socket sends an empty one. */
    bool whole = true;
    do {
        struct iovec win[WRITEV_BATCH];
        struct iov_arg a = { iov, cnt };
        if (!whole)
            a = (struct iov_arg){ win, iov_window(win, iov, cnt, i, off) };
        whole = false;
        ssize_t r = goc__fd_io(f, GOC__PD_WRITE,
                               f->is_socket ? op_sendmsg : op_writev, &a, ctx);
        if (r < 0)
            return r;
        size_t left = (size_t)r;
        while (i < cnt && left >= iov[i].iov_len - off) {
            left -= iov[i].iov_len - off;
            off = 0;
            i++;
        }
        off += left;
    } while (i < cnt);
    return (ssize_t)total;
}

/* ---- accept, connect, shutdown ------------------------------------------ */

struct accept_arg {
    struct sockaddr_storage *peer;
    socklen_t *peerlen;
};

static ssize_t op_accept(int fd, void *arg, bool *drained)
{
    (void)drained;
    struct accept_arg *a = arg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int c =
        accept4(fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0)
        return -errno;
    if (a->peer) {
        *a->peer = ss;
        if (a->peerlen)
            *a->peerlen = len;
    }
    return c;
}

int goc_fd_accept(goc_fd *l,
                  goc_fd **out,
                  struct sockaddr_storage *peer,
                  socklen_t *peerlen,
                  goc_ctx *ctx)
{
    if (!out)
        return -EINVAL;
    struct accept_arg a = { peer, peerlen };
    ssize_t c = goc__fd_io(l, GOC__PD_READ, op_accept, &a, ctx);
    if (c < 0)
        return (int)c;
    int err = goc__fd_wrap((int)c, out);
    if (err) {
        close((int)c);
        return err;
    }
    goc__tcp_defaults(*out);
    return 0;
}

/* Connected, failed, or still in progress (-EINPROGRESS)? */
static ssize_t op_connect_check(int fd, void *arg, bool *drained)
{
    (void)drained;
    (void)arg;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    if (soerr == EINPROGRESS || soerr == EALREADY || soerr == EINTR)
        return -EAGAIN;
    if (soerr)
        return -soerr;
    /* No error yet may still mean "not connected yet" (a stale event). */
    struct sockaddr_storage ss;
    len = sizeof(ss);
    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
        return 0;
    return errno == ENOTCONN ? -EAGAIN : -errno;
}

/* The longest pause of a connect waiting for room in a UNIX listener's
 * queue: also how long it may take to notice a close meanwhile. */
#define CONNECT_PAUSE_MAX (8 * GOC_MILLISECOND)

static bool is_unix_socket(int fd)
{
    int domain;
    socklen_t len = sizeof(domain);
    return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) == 0 &&
           domain == AF_UNIX;
}

int goc_fd_connect(goc_fd *f,
                   const struct sockaddr *addr,
                   socklen_t addrlen,
                   goc_ctx *ctx)
{
    if (!f || !addr)
        return -EINVAL;
    struct goc_ctx *c = goc__ctx_canceller(ctx);
    int err = c ? goc_ctx_err(c) : 0;
    if (err)
        return err;
    /* Held to the end, through the pauses: a close meanwhile finds the
     * handle in use and leaves it to us. */
    if ((err = goc__fd_acquire(f)) != 0)
        return err;
    for (int64_t pause = GOC_MILLISECOND;;
         pause = pause < CONNECT_PAUSE_MAX ? 2 * pause : pause) {
        /* Closed by another holder: no SYN goes out on it. */
        if (atomic_load_explicit(&f->closed, memory_order_acquire)) {
            err = GOC_ECLOSED;
            break;
        }
        int r;
        do
            r = connect(f->fd, addr, addrlen);
        while (r < 0 && errno == EINTR);
        err = r == 0 ? 0 : -errno;
        if (err == -EINPROGRESS) {
            err =
                (int)goc__fd_io(f, GOC__PD_WRITE, op_connect_check, NULL, ctx);
            break;
        }
        /* A UNIX listener's queue is full: a blocking connect would wait
         * for room, but no event tells when there is some. */
        if (err != -EAGAIN || !is_unix_socket(f->fd) ||
            (err = goc_sleep(pause, ctx)) != 0)
            break;
    }
    goc__fd_release(f);
    return err;
}

int goc_fd_shutdown(goc_fd *f, int how)
{
    if (!f)
        return -EINVAL;
    int err = goc__fd_acquire(f);
    if (err)
        return err;
    err = shutdown(f->fd, how) < 0 ? -errno : 0;
    goc__fd_release(f);
    return err;
}

void goc__tcp_defaults(goc_fd *f)
{
    int one = 1;
    /* Fails harmlessly on a socket that is not TCP (a UNIX one). */
    if (setsockopt(f->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0)
        f->tcp_inq =
            setsockopt(f->fd, SOL_TCP, TCP_INQ, &one, sizeof(one)) == 0;
}
