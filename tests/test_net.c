/* SPDX-License-Identifier: MIT */
/* Tests of descriptor I/O, TCP and UDP over loopback. */
#include "test.h"

#include <fcntl.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A connected pair of TCP sockets over loopback. */
static void tcp_pair(goc_fd **a, goc_fd **b)
{
    goc_fd *l;
    char addr[GOC_ADDRSTRLEN];
    ASSERT_OK(goc_tcp_listen("127.0.0.1:0", &l));
    ASSERT_GT(goc_fd_local_addr(l, addr, sizeof(addr)), 0);
    ASSERT_OK(goc_tcp_dial(addr, a, NULL));
    ASSERT_OK(goc_fd_accept(l, b, NULL, NULL, NULL));
    goc_fd_close(l);
}

static void pipe_pair(goc_fd **r, goc_fd **w)
{
    int p[2];
    ASSERT_OK(pipe2(p, O_CLOEXEC));
    ASSERT_OK(goc_fd_open(p[0], r));
    ASSERT_OK(goc_fd_open(p[1], w));
}

TEST_G(net, bad_input)
{
    goc_fd *f;
    char buf[8];
    ASSERT_EQ(goc_fd_open(-1, &f), -EBADF);
    ASSERT_EQ(goc_fd_open(0, NULL), -EINVAL);
    ASSERT_EQ(goc_fd_read(NULL, buf, 1, NULL), -EINVAL);
    ASSERT_EQ(goc_fd_write(NULL, buf, 1, NULL), -EINVAL);
    ASSERT_EQ(goc_fd_close(NULL), -EINVAL);
    ASSERT_EQ(goc_tcp_listen("127.0.0.1", &f), -EINVAL);  /* no port */
    ASSERT_EQ(goc_tcp_listen("::1:80", &f), -EINVAL);     /* brackets */
    ASSERT_EQ(goc_tcp_listen("[::1:80", &f), -EINVAL);    /* unclosed */
    ASSERT_EQ(goc_tcp_listen("127.0.0.1:", &f), -EINVAL); /* empty port */
    ASSERT_EQ(goc_tcp_dial("127.0.0.1:1", NULL, NULL), -EINVAL);
    struct sockaddr_storage ss;
    ASSERT_EQ(goc_addr_resolve("x:1", SOCK_RAW, &ss, 1, NULL), -EINVAL);
    ASSERT_EQ(goc_addr_resolve("x:1", SOCK_STREAM, &ss, 0, NULL), -EINVAL);
    goc_fd *r, *w;
    pipe_pair(&r, &w);
    struct iovec iov[1] = { { buf, 1 } };
    ASSERT_EQ(goc_fd_readv(r, iov, -1, NULL), -EINVAL);
    ASSERT_EQ(goc_fd_writev(w, iov, 100000, NULL), -EINVAL);
    goc_fd_close(r);
    goc_fd_close(w);
}

TEST_G(net, addresses_resolve_and_format)
{
    struct sockaddr_storage ss[4];
    char text[GOC_ADDRSTRLEN];
    ASSERT_EQ(goc_addr_resolve("127.0.0.1:8080", SOCK_STREAM, ss, 4, NULL), 1);
    ASSERT_EQ(goc_addr_format((struct sockaddr *)&ss[0], text, sizeof(text)),
              14);
    ASSERT_STR(text, "127.0.0.1:8080");
    ASSERT_EQ(goc_addr_resolve("[::1]:9", SOCK_DGRAM, ss, 4, NULL), 1);
    goc_addr_format((struct sockaddr *)&ss[0], text, sizeof(text));
    ASSERT_STR(text, "[::1]:9");
    /* Any address: IPv6's, then IPv4's where a system has no IPv6 (it
     * was IPv6's alone, and listening on ":port" failed there). */
    ASSERT_EQ(goc_addr_resolve(":8080", SOCK_STREAM, ss, 4, NULL), 2);
    goc_addr_format((struct sockaddr *)&ss[0], text, sizeof(text));
    ASSERT_STR(text, "[::]:8080");
    goc_addr_format((struct sockaddr *)&ss[1], text, sizeof(text));
    ASSERT_STR(text, "0.0.0.0:8080");
    ASSERT_EQ(goc_addr_resolve(":8080", SOCK_STREAM, ss, 1, NULL), 1);
    ASSERT_EQ(goc_addr_format((struct sockaddr *)&ss[0], text, 4), -ENOSPC);
    /* A name and a service name go through the resolver (the pool). */
    int n = goc_addr_resolve("localhost:http", SOCK_STREAM, ss, 4, NULL);
    ASSERT_GE(n, 1);
    goc_addr_format((struct sockaddr *)&ss[0], text, sizeof(text));
    ASSERT(strstr(text, ":80") != NULL);
    ASSERT_EQ(
        goc_addr_resolve("no-such-host.invalid:80", SOCK_STREAM, ss, 4, NULL),
        GOC_ERESOLVE);
    ASSERT_STR(goc_strerror(GOC_ERESOLVE), "host name did not resolve");
    ASSERT_STR(goc_strerror(-ECONNRESET), "Connection reset by peer");
    /* Cancelled before entry: no resolution at all. */
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_cancel(&lc, NULL);
    goc_ctx_cancel(c);
    ASSERT_EQ(goc_addr_resolve("localhost:80", SOCK_STREAM, ss, 4, c),
              -ECANCELED);
    goc_ctx_destroy(c);
}

/* A port is 0 to 65535 in digits: anything else that starts with a digit,
 * or has a sign or a space, is refused, never wrapped by the resolver
 * ("70000" would bind port 4464). A service name with a space in it went
 * to the resolver, and came back as a failed lookup. */
TEST_G(net, ports_out_of_range_are_refused)
{
    struct sockaddr_storage ss[4];
    const char *bad[] = { "127.0.0.1:70000", "127.0.0.1:65536",
                          ":65536",          "localhost:70000",
                          "127.0.0.1:+80",   "127.0.0.1: 80",
                          "127.0.0.1:-1",    "127.0.0.1:80x",
                          "127.0.0.1:http ", "127.0.0.1:ht tp" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (goc_addr_resolve(bad[i], SOCK_STREAM, ss, 4, NULL) != -EINVAL)
            ASSERT_FAIL("%s accepted", bad[i]);
    ASSERT_EQ(goc_addr_resolve("127.0.0.1:65535", SOCK_STREAM, ss, 4, NULL), 1);
    goc_fd *l;
    ASSERT_EQ(goc_tcp_listen("127.0.0.1:70000", &l), -EINVAL);
}

TEST_G(net, tcp_round_trip_and_addresses)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    char la[GOC_ADDRSTRLEN], ra[GOC_ADDRSTRLEN];
    ASSERT_GT(goc_fd_local_addr(a, la, sizeof(la)), 0);
    ASSERT_GT(goc_fd_remote_addr(b, ra, sizeof(ra)), 0);
    ASSERT_STR(la, ra);
    int nodelay = 0;
    socklen_t len = sizeof(nodelay);
    getsockopt(goc_fd_num(a), IPPROTO_TCP, 1 /* TCP_NODELAY */, &nodelay, &len);
    ASSERT_NE(nodelay, 0);
    getsockopt(goc_fd_num(b), IPPROTO_TCP, 1, &nodelay, &len);
    ASSERT_NE(nodelay, 0);
    ASSERT_EQ(goc_fd_write(a, "hello", 5, NULL), 5);
    char buf[16];
    ASSERT_EQ(goc_fd_read_full(b, buf, 5, NULL), 5);
    ASSERT(memcmp(buf, "hello", 5) == 0);
    /* Half-close: b reads EOF, and can still write back. */
    ASSERT_OK(goc_fd_shutdown(a, SHUT_WR));
    ASSERT_EQ(goc_fd_read(b, buf, sizeof(buf), NULL), 0);
    ASSERT_EQ(goc_fd_write(b, "bye", 3, NULL), 3);
    ASSERT_EQ(goc_fd_read_full(a, buf, 3, NULL), 3);
    goc_fd_close(b);
    ASSERT_EQ(goc_fd_read(a, buf, sizeof(buf), NULL), 0);
    goc_fd_close(a);
}

TEST_G(net, ipv6_loopback)
{
    goc_fd *l, *a, *b;
    int err = goc_tcp_listen("[::1]:0", &l);
    if (err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT) {
        printf("# no IPv6 loopback here: skipped\n");
        return;
    }
    ASSERT_OK(err);
    char addr[GOC_ADDRSTRLEN];
    goc_fd_local_addr(l, addr, sizeof(addr));
    ASSERT(strncmp(addr, "[::1]:", 6) == 0);
    ASSERT_OK(goc_tcp_dial(addr, &a, NULL));
    ASSERT_OK(goc_fd_accept(l, &b, NULL, NULL, NULL));
    ASSERT_EQ(goc_fd_write(a, "v6", 2, NULL), 2);
    char buf[2];
    ASSERT_EQ(goc_fd_read_full(b, buf, 2, NULL), 2);
    goc_fd_close(a);
    goc_fd_close(b);
    goc_fd_close(l);
}

/* ---- echo under load ----------------------------------------------------- */

struct echo {
    goc_fd *l;
    goc_wg conns, clients;
    char addr[GOC_ADDRSTRLEN];
    int rounds;
    _Atomic int64_t bytes;
};

static void echo_conn(void *arg)
{
    goc_fd *c = arg;
    char buf[64];
    for (;;) {
        ssize_t n = goc_fd_read(c, buf, sizeof(buf), NULL);
        if (n <= 0)
            break;
        ASSERT_EQ(goc_fd_write(c, buf, (size_t)n, NULL), n);
    }
    goc_fd_close(c);
}

static void echo_accept(void *arg)
{
    struct echo *e = arg;
    goc_fd *c;
    while (goc_fd_accept(e->l, &c, NULL, NULL, NULL) == 0)
        ASSERT_OK(goc_go(echo_conn, c));
    goc_wg_done(&e->conns);
}

struct client {
    struct echo *e;
    int id;
};

static void echo_client(void *arg)
{
    struct client *cl = arg;
    struct echo *e = cl->e;
    goc_fd *c;
    ASSERT_OK(goc_tcp_dial(e->addr, &c, NULL));
    unsigned char out[64], in[64];
    for (int r = 0; r < e->rounds; r++) {
        for (int i = 0; i < 64; i++)
            out[i] = (unsigned char)(cl->id * 31 + r * 7 + i);
        ASSERT_EQ(goc_fd_write(c, out, 64, NULL), 64);
        ASSERT_EQ(goc_fd_read_full(c, in, 64, NULL), 64);
        ASSERT(memcmp(in, out, 64) == 0);
        atomic_fetch_add(&e->bytes, 64);
    }
    goc_fd_close(c);
    goc_wg_done(&e->clients);
}

TEST_G(net, echo_thousand_connections)
{
    struct echo e = { .rounds = 20 };
    int n = (int)test_scale(1000);
    ASSERT_OK(goc_tcp_listen("127.0.0.1:0", &e.l));
    goc_fd_local_addr(e.l, e.addr, sizeof(e.addr));
    goc_wg_add(&e.conns, 1);
    ASSERT_OK(goc_go(echo_accept, &e));
    struct client *cl = calloc((size_t)n, sizeof(*cl));
    goc_wg_add(&e.clients, n);
    for (int i = 0; i < n; i++) {
        cl[i] = (struct client){ &e, i };
        ASSERT_OK(goc_go(echo_client, &cl[i]));
    }
    ASSERT_OK(goc_wg_wait(&e.clients, NULL));
    ASSERT_EQ(atomic_load(&e.bytes), (int64_t)n * e.rounds * 64);
    goc_fd_close(e.l); /* wakes the accept loop with GOC_ECLOSED */
    ASSERT_OK(goc_wg_wait(&e.conns, NULL));
    free(cl);
}

/* ---- deadlines, cancellation, close -------------------------------------- */

TEST_G(net, read_timeout_cancel_and_before_entry)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    char buf[4];
    goc_ctx_local lc;
    int64_t t0 = goc_now();
    goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, 20 * GOC_MILLISECOND);
    ASSERT_EQ(goc_fd_read(a, buf, 4, c), -ETIMEDOUT);
    ASSERT_GE(goc_now() - t0, 20 * GOC_MILLISECOND);
    goc_ctx_destroy(c);
    /* A heap context: the canceller goroutine may outlive this frame. */
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c));
    test_cancel_after(c, 10 * GOC_MILLISECOND);
    ASSERT_EQ(goc_fd_read(a, buf, 4, c), -ECANCELED);
    /* Already cancelled: fails at once even with data waiting. */
    ASSERT_EQ(goc_fd_write(b, "abcd", 4, NULL), 4);
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_fd_read(a, buf, 4, c), -ECANCELED);
    ASSERT_EQ(goc_fd_write(a, "x", 1, c), -ECANCELED);
    goc_ctx_release(c);
    /* Nothing was consumed by the failed calls. */
    ASSERT_EQ(goc_fd_read_full(a, buf, 4, NULL), 4);
    ASSERT(memcmp(buf, "abcd", 4) == 0);
    goc_fd_close(a);
    goc_fd_close(b);
}

/* A read of 0 bytes returns 0 at once, as Go's Read of an empty buffer
 * does: on an empty TCP socket it waited for data (for ever with no ctx),
 * then returned 0, which reads as end of file, and left the data. */
TEST_G(net, zero_length_read_returns_at_once_and_reads_nothing)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    char buf[4];
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, GOC_SECOND);
    int64_t t0 = goc_now();
    ASSERT_EQ(goc_fd_read(a, buf, 0, c), 0);
    ASSERT(goc_now() - t0 < 500 * GOC_MILLISECOND);
    goc_ctx_destroy(c);
    ASSERT_EQ(goc_fd_write(b, "abcd", 4, NULL), 4);
    ASSERT_EQ(goc_fd_read(a, buf, 0, NULL), 0);
    ASSERT_EQ(goc_fd_read_full(a, buf, 4, NULL), 4);
    ASSERT(memcmp(buf, "abcd", 4) == 0);
    goc_ctx *done;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &done));
    goc_ctx_cancel(done);
    ASSERT_EQ(goc_fd_read(a, buf, 0, done), -ECANCELED);
    /* A numeric address checks a done context too, as a name does. */
    struct sockaddr_storage ss;
    ASSERT_EQ(goc_addr_resolve("127.0.0.1:80", SOCK_STREAM, &ss, 1, done),
              -ECANCELED);
    goc_ctx_release(done);
    goc_fd_close(b);
    goc_fd *held = goc_fd_retain(a); /* another holder, which closes it */
    goc_fd_close(a);
    ASSERT_EQ(goc_fd_read(held, buf, 0, NULL), GOC_ECLOSED);
    goc_fd_release(held);
}

/* Reading all of nothing and writing a vector of nothing tell the
 * handle's and the context's state, as a read or a write of 0 bytes does:
 * they returned 0 for a NULL handle, a done context and a closed handle.
 * A vector of nothing still goes out, as writev(2) sends it: an empty
 * datagram on a datagram socket, as goc_fd_write() of 0 bytes does. */
TEST_G(net, reading_and_writing_nothing_check_handle_and_ctx)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    char buf[4];
    struct iovec none[2] = { { buf, 0 }, { buf, 0 } };
    ASSERT_EQ(goc_fd_read_full(NULL, buf, 0, NULL), -EINVAL);
    ASSERT_EQ(goc_fd_read_full(a, buf, 0, NULL), 0);
    ASSERT_EQ(goc_fd_writev(a, none, 2, NULL), 0);
    ASSERT_EQ(goc_fd_writev(a, NULL, 0, NULL), 0);
    goc_ctx *done;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &done));
    goc_ctx_cancel(done);
    ASSERT_EQ(goc_fd_read_full(a, buf, 0, done), -ECANCELED);
    ASSERT_EQ(goc_fd_writev(a, none, 2, done), -ECANCELED);
    ASSERT_EQ(goc_fd_writev(a, NULL, 0, done), -ECANCELED);
    goc_ctx_release(done);
    goc_fd *held = goc_fd_retain(a);
    goc_fd_close(a);
    ASSERT_EQ(goc_fd_read_full(held, buf, 0, NULL), GOC_ECLOSED);
    ASSERT_EQ(goc_fd_writev(held, none, 2, NULL), GOC_ECLOSED);
    ASSERT_EQ(goc_fd_writev(held, NULL, 0, NULL), GOC_ECLOSED);
    goc_fd_release(held);
    goc_fd_close(b);
    /* Over UDP, each empty vector is one empty datagram. */
    goc_fd *srv, *cli;
    char addr[GOC_ADDRSTRLEN];
    ASSERT_OK(goc_udp_listen("127.0.0.1:0", &srv));
    ASSERT_GT(goc_fd_local_addr(srv, addr, sizeof(addr)), 0);
    ASSERT_OK(goc_udp_dial(addr, &cli, NULL));
    ASSERT_EQ(goc_fd_writev(cli, none, 2, NULL), 0);
    ASSERT_EQ(goc_fd_write(cli, "x", 1, NULL), 1);
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, GOC_SECOND);
    ASSERT_EQ(goc_udp_recv_from(srv, buf, sizeof(buf), NULL, NULL, c), 0);
    ASSERT_EQ(goc_udp_recv_from(srv, buf, sizeof(buf), NULL, NULL, c), 1);
    goc_ctx_destroy(c);
    goc_fd_close(cli);
    goc_fd_close(srv);
}

TEST_G(net, accept_and_connect_deadlines)
{
    goc_fd *l;
    ASSERT_OK(goc_tcp_listen("127.0.0.1:0", &l));
    goc_fd *c;
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 20 * GOC_MILLISECOND);
    ASSERT_EQ(goc_fd_accept(l, &c, NULL, NULL, ctx), -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    test_cancel_after(ctx, 10 * GOC_MILLISECOND);
    ASSERT_EQ(goc_fd_accept(l, &c, NULL, NULL, ctx), -ECANCELED);
    ASSERT_EQ(goc_tcp_dial("127.0.0.1:1", &c, ctx), -ECANCELED);
    goc_ctx_release(ctx);
    goc_fd_close(l);
    /* A refused connection reports the connection's error. */
    goc_fd *probe;
    char addr[GOC_ADDRSTRLEN];
    ASSERT_OK(goc_tcp_listen("127.0.0.1:0", &probe));
    goc_fd_local_addr(probe, addr, sizeof(addr));
    goc_fd_close(probe); /* nobody listens there now */
    ASSERT_EQ(goc_tcp_dial(addr, &c, NULL), -ECONNREFUSED);
    /* A listener that never accepts, with the smallest backlog: once its
     * queue is full the kernel drops new SYNs, so a connect hangs until
     * its deadline. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET,
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    ASSERT_OK(bind(lfd, (struct sockaddr *)&sin, sizeof(sin)));
    ASSERT_OK(listen(lfd, 0));
    socklen_t slen = sizeof(sin);
    getsockname(lfd, (struct sockaddr *)&sin, &slen);
    goc_addr_format((struct sockaddr *)&sin, addr, sizeof(addr));
    goc_fd *held[16];
    int nheld = 0, err = 0;
    while (nheld < 16) {
        ctx = goc_ctx_init_timeout(&lc, NULL, 50 * GOC_MILLISECOND);
        int64_t t0 = goc_now();
        err = goc_tcp_dial(addr, &held[nheld], ctx);
        goc_ctx_destroy(ctx);
        if (err) {
            ASSERT_EQ(err, -ETIMEDOUT);
            ASSERT_GE(goc_now() - t0, 50 * GOC_MILLISECOND);
            break;
        }
        nheld++;
    }
    ASSERT_EQ(err, -ETIMEDOUT);
    for (int i = 0; i < nheld; i++)
        goc_fd_close(held[i]);
    close(lfd);
}

TEST_G(net, write_timeout_and_cancel_on_full_buffer)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    static char chunk[1 << 16];
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 50 * GOC_MILLISECOND);
    ssize_t r;
    int64_t total = 0;
    /* The peer never reads: the buffers fill and the write waits. */
    while ((r = goc_fd_write_some(a, chunk, sizeof(chunk), ctx)) > 0)
        total += r;
    ASSERT_EQ(r, -ETIMEDOUT);
    ASSERT_GT(total, 0);
    goc_ctx_destroy(ctx);
    goc_ctx *c;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c));
    test_cancel_after(c, 10 * GOC_MILLISECOND);
    /* The kernel may find a little room again (buffer tuning): write on
     * until the wait is cancelled. */
    while ((r = goc_fd_write_some(a, chunk, sizeof(chunk), c)) > 0)
        ;
    ASSERT_EQ(r, -ECANCELED);
    goc_ctx_release(c);
    goc_fd_close(a);
    goc_fd_close(b);
}

struct blocked {
    goc_fd *f; /* a reference of blocked_op's, which it releases */
    int dir;   /* 0 read, 1 write, 2 accept */
    _Atomic int64_t result;
    goc_wg done;
};

static void blocked_op(void *arg)
{
    struct blocked *b = arg;
    static char big[1 << 16];
    ssize_t r;
    if (b->dir == 0) {
        char buf[4];
        r = goc_fd_read(b->f, buf, sizeof(buf), NULL);
    } else if (b->dir == 1) {
        do
            r = goc_fd_write(b->f, big, sizeof(big), NULL);
        while (r > 0);
    } else {
        goc_fd *c;
        r = goc_fd_accept(b->f, &c, NULL, NULL, NULL);
    }
    goc_fd_release(b->f);
    atomic_store(&b->result, r);
    goc_wg_done(&b->done);
}

TEST_G(net, close_wakes_blocked_calls)
{
    for (int dir = 0; dir < 3; dir++) {
        goc_fd *a, *b;
        tcp_pair(&a, &b);
        struct blocked bl = { .dir = dir };
        if (dir == 2)
            ASSERT_OK(goc_tcp_listen("127.0.0.1:0", &bl.f));
        else
            bl.f = a;
        goc_wg_add(&bl.done, 1);
        /* Its own reference: a write loop that has not filled the buffers
         * when the close comes calls again, on a handle it must hold. */
        goc_fd_retain(bl.f);
        ASSERT_OK(goc_go(blocked_op, &bl));
        goc_sleep(20 * GOC_MILLISECOND, NULL); /* let it block */
        goc_fd_close(bl.f);
        ASSERT_OK(goc_wg_wait(&bl.done, NULL));
        ASSERT_EQ(atomic_load(&bl.result), GOC_ECLOSED);
        if (dir == 2)
            goc_fd_close(a);
        goc_fd_close(b);
    }
}

TEST_G(net, peer_reset_and_eof)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    /* Linger 0: close sends RST instead of FIN. */
    struct linger lg = { 1, 0 };
    setsockopt(goc_fd_num(b), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    goc_fd_close(b);
    char buf[8];
    ASSERT_EQ(goc_fd_read(a, buf, sizeof(buf), NULL), -ECONNRESET);
    goc_fd_close(a);
    tcp_pair(&a, &b);
    ASSERT_EQ(goc_fd_write(b, "tail", 4, NULL), 4);
    goc_fd_close(b);
    ASSERT_EQ(goc_fd_read_full(a, buf, 8, NULL), 4); /* short: EOF */
    ASSERT_EQ(goc_fd_read(a, buf, 8, NULL), 0);
    /* Writing to a gone peer fails with EPIPE, not with SIGPIPE. */
    memset(buf, 'w', sizeof(buf));
    ssize_t r = 0;
    for (int i = 0; i < 100 && r >= 0; i++)
        r = goc_fd_write(a, buf, 8, NULL);
    ASSERT(r == -EPIPE || r == -ECONNRESET);
    goc_fd_close(a);
}

/*
 * The peer answers part of a request, then closes with unread data: an
 * RST right behind the answer. Once the client has read the answer, the
 * next read must report the reset, though the RST's readiness event was
 * counted before the read that emptied the queue.
 */
TEST_G(net, reset_behind_the_last_data_is_reported)
{
    for (int i = 0; i < 5; i++) {
        goc_fd *a, *b;
        tcp_pair(&a, &b);
        char req[600] = { 0 }, buf[16];
        ASSERT_EQ(goc_fd_write(a, req, sizeof(req), NULL), 600);
        ASSERT_EQ(goc_fd_read_full(b, buf, 10, NULL), 10);
        ASSERT_EQ(goc_fd_write(b, "response", 8, NULL), 8);
        goc_fd_close(b);
        /* Let a poller see the RST before the client reads. */
        goc_sleep(20 * GOC_MILLISECOND, NULL);
        ASSERT_EQ(goc_fd_read_full(a, buf, 8, NULL), 8);
        goc_ctx_local lc;
        goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 5 * GOC_SECOND);
        ssize_t r = goc_fd_read(a, buf, 1, ctx);
        goc_ctx_destroy(ctx);
        ASSERT(r == -ECONNRESET || r == 0);
        goc_fd_close(a);
    }
}

struct slow_reader {
    goc_fd *f;
    size_t size;
    uint64_t sum;
    goc_wg done;
};

static void slow_read(void *arg)
{
    struct slow_reader *s = arg;
    unsigned char buf[4096];
    size_t got = 0;
    uint64_t sum = 0;
    int k = 0;
    while (got < s->size) {
        ssize_t n = goc_fd_read(s->f, buf, sizeof(buf), NULL);
        ASSERT_GT(n, 0);
        for (ssize_t i = 0; i < n; i++)
            sum = sum * 31 + buf[i];
        got += (size_t)n;
        if (++k % 64 == 0)
            goc_sleep(GOC_MILLISECOND, NULL);
    }
    s->sum = sum;
    goc_wg_done(&s->done);
}

TEST_G(net, large_write_to_slow_reader)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    size_t size = (size_t)test_scale(8 << 20);
    unsigned char *data = malloc(size);
    uint64_t want = 0;
    for (size_t i = 0; i < size; i++) {
        data[i] = (unsigned char)(i * 2654435761u >> 13);
        want = want * 31 + data[i];
    }
    struct slow_reader s = { .f = b, .size = size };
    goc_wg_add(&s.done, 1);
    ASSERT_OK(goc_go(slow_read, &s));
    ASSERT_EQ(goc_fd_write(a, data, size, NULL), (ssize_t)size);
    ASSERT_OK(goc_wg_wait(&s.done, NULL));
    ASSERT_EQ(s.sum, want);
    free(data);
    goc_fd_close(a);
    goc_fd_close(b);
}

TEST_G(net, vectored_io)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    /* Many entries, some empty, more than one writev batch. */
    char parts[100][3];
    struct iovec iov[100];
    for (int i = 0; i < 100; i++) {
        snprintf(parts[i], sizeof(parts[i]), "%02d", i);
        iov[i] = (struct iovec){ parts[i], i % 7 == 3 ? 0 : 2 };
    }
    ssize_t total = goc_fd_writev(a, iov, 100, NULL);
    ASSERT_GT(total, 0);
    char *got = calloc(1, (size_t)total + 1);
    ASSERT_EQ(goc_fd_read_full(b, got, (size_t)total, NULL), total);
    char *p = got;
    for (int i = 0; i < 100; i++) {
        if (iov[i].iov_len) {
            ASSERT(memcmp(p, parts[i], 2) == 0);
            p += 2;
        }
    }
    free(got);
    char x[3] = { 0 }, y[5] = { 0 };
    struct iovec rv[2] = { { x, 2 }, { y, 4 } };
    ASSERT_EQ(goc_fd_write(a, "abcdef", 6, NULL), 6);
    ssize_t n = 0;
    while (n < 6) {
        ssize_t r = goc_fd_readv(b, rv, 2, NULL);
        ASSERT_GT(r, 0);
        n += r;
        if (n < 6) { /* split delivery: read the rest plainly */
            char rest[6];
            ASSERT_EQ(goc_fd_read_full(b, rest, (size_t)(6 - n), NULL), 6 - n);
            n = 6;
        }
    }
    ASSERT_STR(x, "ab");
    goc_fd_close(a);
    goc_fd_close(b);
}

TEST_G(net, pipes_and_eventfds)
{
    goc_fd *r, *w;
    pipe_pair(&r, &w);
    struct blocked bl = { .f = goc_fd_retain(r), .dir = 0 };
    goc_wg_add(&bl.done, 1);
    ASSERT_OK(goc_go(blocked_op, &bl));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_fd_write(w, "pipe", 4, NULL), 4);
    ASSERT_OK(goc_wg_wait(&bl.done, NULL));
    ASSERT_EQ(atomic_load(&bl.result), 4);
    goc_fd_close(w);
    char c;
    ASSERT_EQ(goc_fd_read(r, &c, 1, NULL), 0); /* writer gone: EOF */
    goc_fd_close(r);

    goc_fd *ev;
    ASSERT_OK(goc_fd_open(eventfd(0, EFD_CLOEXEC), &ev));
    uint64_t one = 1, v = 0;
    ASSERT_EQ(goc_fd_write(ev, &one, 8, NULL), 8);
    ASSERT_EQ(goc_fd_read(ev, &v, 8, NULL), 8);
    ASSERT_EQ(v, 1);
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 10 * GOC_MILLISECOND);
    ASSERT_EQ(goc_fd_read(ev, &v, 8, ctx), -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    goc_fd_close(ev);
}

TEST_G(net, regular_file_blocks_in_place)
{
    char path[] = "/tmp/goc-net-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    goc_fd *f;
    ASSERT_OK(goc_fd_open(fd, &f));
    ASSERT_EQ(goc_fd_write(f, "file", 4, NULL), 4);
    ASSERT_EQ(lseek(fd, 0, SEEK_SET), 0);
    char buf[8];
    ASSERT_EQ(goc_fd_read(f, buf, 8, NULL), 4);
    goc_fd_close(f);
}

TEST_G(net, udp_round_trip)
{
    goc_fd *srv, *cli;
    ASSERT_OK(goc_udp_listen("127.0.0.1:0", &srv));
    char addr[GOC_ADDRSTRLEN];
    goc_fd_local_addr(srv, addr, sizeof(addr));
    ASSERT_OK(goc_udp_dial(addr, &cli, NULL));
    ASSERT_EQ(goc_fd_write_some(cli, "ping", 4, NULL), 4);
    char buf[16];
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof(from);
    ASSERT_EQ(goc_udp_recv_from(srv, buf, sizeof(buf), &from, &fromlen, NULL),
              4);
    ASSERT(memcmp(buf, "ping", 4) == 0);
    ASSERT_EQ(goc_udp_send_to(srv, "pong!", 5, (struct sockaddr *)&from,
                              fromlen, NULL),
              5);
    ASSERT_EQ(goc_fd_read(cli, buf, sizeof(buf), NULL), 5);
    ASSERT(memcmp(buf, "pong!", 5) == 0);
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 10 * GOC_MILLISECOND);
    ASSERT_EQ(goc_udp_recv_from(srv, buf, sizeof(buf), NULL, NULL, ctx),
              -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    goc_fd_close(cli);
    goc_fd_close(srv);
}

/* A writev on a datagram socket is one datagram, whatever its number of
 * entries (it used to go out in windows of 64). */
TEST_G(net, udp_writev_is_one_datagram)
{
    goc_fd *srv, *cli;
    ASSERT_OK(goc_udp_listen("127.0.0.1:0", &srv));
    char addr[GOC_ADDRSTRLEN];
    goc_fd_local_addr(srv, addr, sizeof(addr));
    ASSERT_OK(goc_udp_dial(addr, &cli, NULL));
    enum { PARTS = 100 };
    static char bytes[PARTS];
    struct iovec iov[PARTS];
    for (int i = 0; i < PARTS; i++) {
        bytes[i] = (char)i;
        iov[i] = (struct iovec){ &bytes[i], 1 };
    }
    ASSERT_EQ(goc_fd_writev(cli, iov, PARTS, NULL), PARTS);
    char buf[2 * PARTS];
    ASSERT_EQ(goc_udp_recv_from(srv, buf, sizeof(buf), NULL, NULL, NULL),
              PARTS);
    ASSERT(memcmp(buf, bytes, PARTS) == 0);
    goc_fd_close(cli);
    goc_fd_close(srv);
}

struct blocked_read {
    goc_fd *f;
    _Atomic ssize_t rc;
    goc_wg wg;
};

static void read_blocked(void *arg)
{
    struct blocked_read *b = arg;
    char c;
    atomic_store(&b->rc, goc_fd_read(b->f, &c, 1, NULL));
    goc_wg_done(&b->wg);
}

/* A read blocked when its side is shut down returns end of file, as the
 * header says. */
TEST_G(net, shutdown_of_the_read_side_ends_a_blocked_read)
{
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    static struct blocked_read r;
    r = (struct blocked_read){ .f = a, .rc = 99 };
    goc_wg_add(&r.wg, 1);
    ASSERT_OK(goc_go(read_blocked, &r));
    goc_sleep(5 * GOC_MILLISECOND, NULL); /* parked, most likely */
    ASSERT_OK(goc_fd_shutdown(a, SHUT_RD));
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 5 * GOC_SECOND);
    ASSERT_OK(goc_wg_wait(&r.wg, t));
    goc_ctx_destroy(t);
    ASSERT_EQ(atomic_load(&r.rc), 0);
    goc_fd_close(a);
    goc_fd_close(b);
}

/* ---- plain threads ------------------------------------------------------- */

struct thread_io {
    goc_fd *f;
    goc_ctx *ctx;
    ssize_t result;
    char buf[8];
};

static void *thread_read(void *arg)
{
    struct thread_io *t = arg;
    t->result = goc_fd_read(t->f, t->buf, sizeof(t->buf), t->ctx);
    return NULL;
}

TEST(net, plain_thread_blocks)
{
    goc_fd *r, *w;
    pipe_pair(&r, &w);
    pthread_t th;
    struct thread_io t = { .f = r };
    ASSERT_OK(pthread_create(&th, NULL, thread_read, &t));
    usleep(20000);
    ASSERT_EQ(goc_fd_write(w, "thr", 3, NULL), 3);
    test_join(th, NULL);
    ASSERT_EQ(t.result, 3);
    /* Timeout and close from a plain thread. */
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_timeout(NULL, 10 * GOC_MILLISECOND, &ctx));
    t.ctx = ctx;
    ASSERT_OK(pthread_create(&th, NULL, thread_read, &t));
    test_join(th, NULL);
    ASSERT_EQ(t.result, -ETIMEDOUT);
    goc_ctx_release(ctx);
    t.ctx = NULL;
    ASSERT_OK(pthread_create(&th, NULL, thread_read, &t));
    usleep(20000);
    goc_fd_close(r);
    test_join(th, NULL);
    ASSERT_EQ(t.result, GOC_ECLOSED);
    goc_fd_close(w);
}

struct thread_net {
    char addr[GOC_ADDRSTRLEN];
    goc_fd *l, *c;
    int err;
};

static void *thread_dial(void *arg)
{
    struct thread_net *t = arg;
    t->err = goc_tcp_dial(t->addr, &t->c, NULL);
    return NULL;
}

static void *thread_accept(void *arg)
{
    struct thread_net *t = arg;
    t->err = goc_fd_accept(t->l, &t->c, NULL, NULL, NULL);
    return NULL;
}

TEST(net, plain_threads_dial_and_accept)
{
    struct thread_net srv = { 0 }, cli = { 0 };
    ASSERT_OK(goc_tcp_listen("127.0.0.1:0", &srv.l));
    goc_fd_local_addr(srv.l, cli.addr, sizeof(cli.addr));
    pthread_t ts, tc;
    ASSERT_OK(pthread_create(&ts, NULL, thread_accept, &srv));
    usleep(10000); /* the accept blocks first */
    ASSERT_OK(pthread_create(&tc, NULL, thread_dial, &cli));
    test_join(tc, NULL);
    test_join(ts, NULL);
    ASSERT_OK(srv.err);
    ASSERT_OK(cli.err);
    ASSERT_EQ(goc_fd_write(cli.c, "t", 1, NULL), 1);
    char b;
    ASSERT_EQ(goc_fd_read(srv.c, &b, 1, NULL), 1);
    goc_fd_close(cli.c);
    goc_fd_close(srv.c);
    goc_fd_close(srv.l);
}

/* ---- many waiters on one descriptor -------------------------------------- */

struct acceptors {
    goc_fd *l;
    _Atomic int accepted;
    goc_wg done;
};

static void acceptor(void *arg)
{
    struct acceptors *a = arg;
    goc_fd *c;
    int err;
    while ((err = goc_fd_accept(a->l, &c, NULL, NULL, NULL)) == 0) {
        atomic_fetch_add(&a->accepted, 1);
        goc_fd_close(c);
    }
    /* Blocked or not when the listener was closed: its reference keeps
     * the handle valid, and the call says closed. */
    ASSERT_EQ(err, GOC_ECLOSED);
    goc_fd_release(a->l);
    goc_wg_done(&a->done);
}

TEST_G(net, many_acceptors_share_a_listener)
{
    struct acceptors a = { 0 };
    ASSERT_OK(goc_tcp_listen("127.0.0.1:0", &a.l));
    char addr[GOC_ADDRSTRLEN];
    goc_fd_local_addr(a.l, addr, sizeof(addr));
    goc_wg_add(&a.done, 8);
    for (int i = 0; i < 8; i++) {
        goc_fd_retain(a.l); /* one per acceptor, dropped when it ends */
        ASSERT_OK(goc_go(acceptor, &a));
    }
    int n = (int)test_scale(200);
    for (int i = 0; i < n; i++) {
        goc_fd *c;
        ASSERT_OK(goc_tcp_dial(addr, &c, NULL));
        goc_fd_close(c);
    }
    while (atomic_load(&a.accepted) < n)
        goc_sleep(GOC_MILLISECOND, NULL);
    goc_fd_close(a.l);
    ASSERT_OK(goc_wg_wait(&a.done, NULL));
    ASSERT_EQ(atomic_load(&a.accepted), n);
}

/* Every P kept busy (each M always has a goroutine queued, so none goes
 * idle to poll): sysmon polls, and the reader still gets its data. */
static _Atomic int spin_stop;

static void spinner(void *arg)
{
    while (!atomic_load(&spin_stop))
        goc_yield();
    goc_wg_done(arg);
}

TEST_G(net, io_completes_while_all_ps_busy)
{
    goc_fd *r, *w;
    pipe_pair(&r, &w);
    struct blocked bl = { .f = goc_fd_retain(r), .dir = 0 };
    goc_wg spinners = GOC_WG_INIT;
    goc_wg_add(&bl.done, 1);
    ASSERT_OK(goc_go(blocked_op, &bl));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    int n = 2 * goc_maxprocs();
    goc_wg_add(&spinners, n);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(spinner, &spinners));
    goc_yield();
    ASSERT_EQ(write(goc_fd_num(w), "x", 1), 1);
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 5 * GOC_SECOND);
    ASSERT_OK(goc_wg_wait(&bl.done, ctx));
    goc_ctx_destroy(ctx);
    ASSERT_EQ(atomic_load(&bl.result), 1);
    atomic_store(&spin_stop, 1);
    ASSERT_OK(goc_wg_wait(&spinners, NULL));
    goc_fd_close(r);
    goc_fd_close(w);
}

/* Once one holder closed a handle, the others' calls return GOC_ECLOSED:
 * connect sent a datagram socket's connect (or a TCP SYN) through it and
 * returned 0, and shutdown reached the socket too. */
TEST_G(net, connect_and_shutdown_after_another_holder_closed)
{
    goc_fd *srv, *cli;
    char addr[GOC_ADDRSTRLEN];
    ASSERT_OK(goc_udp_listen("127.0.0.1:0", &srv));
    ASSERT_GT(goc_fd_local_addr(srv, addr, sizeof(addr)), 0);
    struct sockaddr_storage ss;
    ASSERT_EQ(goc_addr_resolve(addr, SOCK_DGRAM, &ss, 1, NULL), 1);
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(fd, 0);
    ASSERT_OK(goc_fd_open(fd, &cli));
    goc_fd *mine = goc_fd_retain(cli);
    goc_fd_close(cli);
    ASSERT_EQ(goc_fd_connect(mine, (struct sockaddr *)&ss,
                             sizeof(struct sockaddr_in), NULL),
              GOC_ECLOSED);
    ASSERT_EQ(goc_fd_shutdown(mine, SHUT_RDWR), GOC_ECLOSED);
    struct sockaddr_storage peer;
    socklen_t len = sizeof(peer);
    ASSERT_EQ(getpeername(fd, (struct sockaddr *)&peer, &len), -1);
    ASSERT_EQ(errno, ENOTCONN); /* nothing reached the socket */
    goc_fd_release(mine);
    goc_fd_close(srv);
}

/* The addresses too: they answered for a handle another holder had
 * closed, where every other call returns GOC_ECLOSED. */
TEST_G(net, addresses_after_another_holder_closed_are_eclosed)
{
    goc_fd *l;
    char addr[GOC_ADDRSTRLEN];
    ASSERT_OK(goc_tcp_listen("127.0.0.1:0", &l));
    goc_fd *mine = goc_fd_retain(l);
    ASSERT_GT(goc_fd_local_addr(mine, addr, sizeof(addr)), 0);
    goc_fd_close(l);
    ASSERT_EQ(goc_fd_local_addr(mine, addr, sizeof(addr)), GOC_ECLOSED);
    ASSERT_EQ(goc_fd_remote_addr(mine, addr, sizeof(addr)), GOC_ECLOSED);
    goc_fd_release(mine);
}

/* An IPv4 peer of a dual-stack socket was shown in IPv6's mapped form
 * ("[::ffff:127.0.0.1]:p"); Go, and goc's own IPv4 sockets, show
 * "127.0.0.1:p". */
TEST_G(net, ipv4_peer_of_a_dual_stack_socket_shows_as_ipv4)
{
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6,
                                .sin6_port = htons(4242) };
    ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr), 1);
    char text[GOC_ADDRSTRLEN];
    ASSERT_EQ(goc_addr_format((struct sockaddr *)&in6, text, sizeof(text)), 14);
    ASSERT_STR(text, "127.0.0.1:4242");
    goc_fd *l, *c, *s;
    if (goc_tcp_listen(":0", &l) != 0) {
        printf("# skipped: no dual-stack listener here\n");
        return;
    }
    char addr[GOC_ADDRSTRLEN], dial[GOC_ADDRSTRLEN];
    ASSERT_GT(goc_fd_local_addr(l, addr, sizeof(addr)), 0);
    snprintf(dial, sizeof(dial), "127.0.0.1%s", strrchr(addr, ':'));
    ASSERT_OK(goc_tcp_dial(dial, &c, NULL));
    ASSERT_OK(goc_fd_accept(l, &s, NULL, NULL, NULL));
    ASSERT_GT(goc_fd_remote_addr(s, addr, sizeof(addr)), 0);
    ASSERT(strncmp(addr, "127.0.0.1:", 10) == 0);
    goc_fd_close(s);
    goc_fd_close(c);
    goc_fd_close(l);
}

/* ":service" was resolved by the resolver, whose any address for it is
 * IPv4's first: a listener on it took no IPv6 connection, where ":port"
 * takes both. It is the any addresses of ":port" now, with the service's
 * port. */
TEST_G(net, service_name_on_the_any_address_is_dual_stack_like_a_port)
{
    struct sockaddr_storage ss[4];
    char text[GOC_ADDRSTRLEN];
    ASSERT_EQ(goc_addr_resolve(":http", SOCK_STREAM, ss, 4, NULL), 2);
    goc_addr_format((struct sockaddr *)&ss[0], text, sizeof(text));
    ASSERT_STR(text, "[::]:80");
    goc_addr_format((struct sockaddr *)&ss[1], text, sizeof(text));
    ASSERT_STR(text, "0.0.0.0:80");
    ASSERT_EQ(goc_addr_resolve(":http", SOCK_STREAM, ss, 1, NULL), 1);
    ASSERT_EQ(ss[0].ss_family, AF_INET6);
}

/* I/O on a descriptor the poller cannot watch (a regular file) runs in
 * a blocking section; inside the caller's own section it ended that
 * section, so the caller's exit found none open. */
TEST_G(net, file_io_inside_a_blocking_section_keeps_that_section)
{
    char path[] = "/tmp/goc-net-file-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    goc_fd *f;
    ASSERT_OK(goc_fd_open(fd, &f));
    ASSERT_OK(goc_blocking_enter());
    ASSERT_EQ(goc_fd_write(f, "abc", 3, NULL), 3);
    ASSERT_OK(goc_blocking_exit());              /* still the caller's to end */
    ASSERT_EQ(goc_blocking_exit(), -EINVAL);     /* and it is ended */
    ASSERT_EQ(goc_fd_write(f, "d", 1, NULL), 1); /* outside: its own */
    ASSERT_EQ(goc_blocking_exit(), -EINVAL);
    goc_fd_close(f);
}

/* ":port" falls back to IPv4's any address only where IPv6 is missing: a
 * port taken on IPv6's (here by a v6-only socket) stays an error, rather
 * than a listener on IPv4 alone. */
TEST_G(net, any_address_port_in_use_is_not_an_ipv4_only_listener)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        printf("# skipped: no IPv6 here\n");
        return;
    }
    int one = 1;
    ASSERT_OK(setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)));
    struct sockaddr_in6 a = { .sin6_family = AF_INET6,
                              .sin6_addr = IN6ADDR_ANY_INIT };
    ASSERT_OK(bind(fd, (struct sockaddr *)&a, sizeof(a)));
    ASSERT_OK(listen(fd, 1));
    socklen_t len = sizeof(a);
    ASSERT_OK(getsockname(fd, (struct sockaddr *)&a, &len));
    char addr[32];
    snprintf(addr, sizeof(addr), ":%u", ntohs(a.sin6_port));
    goc_fd *l = NULL;
    ASSERT_EQ(goc_tcp_listen(addr, &l), -EADDRINUSE);
    ASSERT(l == NULL);
    close(fd);
}

/* ---- a close the kernel makes wait ------------------------------------ */

struct ticking {
    _Atomic int64_t ticks;
    _Atomic bool stop;
    goc_wg wg;
};

static void tick_each_ms(void *arg)
{
    struct ticking *t = arg;
    while (!atomic_load(&t->stop)) {
        atomic_fetch_add(&t->ticks, 1);
        goc_sleep(GOC_MILLISECOND, NULL);
    }
    goc_wg_done(&t->wg);
}

static int linger_main(void *arg)
{
    (void)arg;
    goc_fd *a, *b;
    tcp_pair(&a, &b);
    /* Linger up to 1 s over data the peer never reads. */
    struct linger lg = { 1, 1 };
    ASSERT_OK(
        setsockopt(goc_fd_num(a), SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)));
    static char big[1 << 16];
    for (;;) {
        goc_ctx_local lc;
        goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 20 * GOC_MILLISECOND);
        ssize_t r = goc_fd_write_some(a, big, sizeof(big), ctx);
        goc_ctx_destroy(ctx);
        if (r < 0)
            break;
    }
    static struct ticking t = { .wg = GOC_WG_INIT };
    goc_wg_add(&t.wg, 1);
    ASSERT_OK(goc_go(tick_each_ms, &t));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    int64_t before = atomic_load(&t.ticks), t0 = goc_now();
    ASSERT_OK(goc_fd_close(a));
    int64_t took = goc_now() - t0, ticks = atomic_load(&t.ticks) - before;
    printf("# close took %lld ms; the other goroutine ticked %lld times\n",
           (long long)(took / GOC_MILLISECOND), (long long)ticks);
    atomic_store(&t.stop, true);
    goc_wg_wait(&t.wg, NULL);
    goc_fd_close(b);
    /* It lingered (the test means something), and on one P the other
     * goroutine ran on meanwhile. */
    ASSERT_GE(took, 500 * GOC_MILLISECOND);
    ASSERT_GE(ticks, 100);
    return 0;
}

/* With SO_LINGER and unsent data, close(2) waits, O_NONBLOCK or not: it
 * ran on the goroutine's thread outside a blocking section, and with one
 * P every other goroutine stood still for the whole linger. */
TEST(net, close_that_lingers_holds_up_no_other_goroutine)
{
    if (test_under_valgrind()) {
        /* valgrind does not take close(2) for a call that may block, and
         * runs no other thread while one is in it. */
        printf("# skipped under valgrind\n");
        return;
    }
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(linger_main, NULL));
}

/* ---- a UNIX listener with a full queue -------------------------------- */

struct unix_listener {
    int fd;
    struct sockaddr_un sa;
    socklen_t len;
    int queued[8], nqueued;
};

/* An abstract UNIX listener whose queue (backlog 0) is full. */
static void full_unix_listener(struct unix_listener *u)
{
    u->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_GE(u->fd, 0);
    memset(&u->sa, 0, sizeof(u->sa));
    u->sa.sun_family = AF_UNIX;
    snprintf(u->sa.sun_path + 1, sizeof(u->sa.sun_path) - 1, "goc-test-%d",
             (int)getpid());
    u->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 +
                         strlen(u->sa.sun_path + 1));
    ASSERT_OK(bind(u->fd, (struct sockaddr *)&u->sa, u->len));
    ASSERT_OK(listen(u->fd, 0));
    u->nqueued = 0;
    for (int i = 0; i < 8; i++) {
        int c = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ASSERT_GE(c, 0);
        if (connect(c, (struct sockaddr *)&u->sa, u->len) != 0) {
            ASSERT_EQ(errno, EAGAIN);
            close(c);
            return;
        }
        u->queued[u->nqueued++] = c;
    }
    ASSERT_FAIL("%s", "the queue of a backlog of 0 never filled");
}

static void accept_one_later(void *arg)
{
    struct unix_listener *u = arg;
    goc_sleep(30 * GOC_MILLISECOND, NULL);
    int c = accept(u->fd, NULL, NULL);
    ASSERT_GE(c, 0);
    close(c);
}

/* A nonblocking UNIX socket's connect fails with EAGAIN while the
 * listener's queue is full: goc_fd_connect returned that at once, where
 * a blocking connect waits, and ignored its context. */
TEST_G(net, unix_connect_waits_for_room_in_a_full_queue)
{
    static struct unix_listener u;
    full_unix_listener(&u);
    goc_fd *f;
    ASSERT_OK(goc_fd_open(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), &f));
    /* No room for 100 ms: the context ends the wait. */
    goc_ctx_local lc;
    int64_t t0 = goc_now(); /* before the deadline is set */
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 100 * GOC_MILLISECOND);
    ASSERT_EQ(goc_fd_connect(f, (struct sockaddr *)&u.sa, u.len, ctx),
              -ETIMEDOUT);
    ASSERT_GE(goc_now() - t0, 100 * GOC_MILLISECOND);
    goc_ctx_destroy(ctx);
    goc_fd_close(f);
    /* Room made meanwhile: it connects. */
    ASSERT_OK(goc_fd_open(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), &f));
    ASSERT_OK(goc_go(accept_one_later, &u));
    ASSERT_OK(goc_fd_connect(f, (struct sockaddr *)&u.sa, u.len, NULL));
    goc_fd_close(f);
    for (int i = 0; i < u.nqueued; i++)
        close(u.queued[i]);
    close(u.fd);
}

struct pausing_connect {
    goc_fd *f;
    struct unix_listener *u;
    _Atomic int rc;
    _Atomic int64_t returned_at;
    goc_wg wg;
};

static void connect_into_a_full_queue(void *arg)
{
    struct pausing_connect *c = arg;
    int rc =
        goc_fd_connect(c->f, (struct sockaddr *)&c->u->sa, c->u->len, NULL);
    atomic_store(&c->returned_at, goc_now());
    atomic_store(&c->rc, rc);
    goc_wg_done(&c->wg);
}

/* A connect pausing for room in a full UNIX queue held no reference on
 * its handle between tries: a close meanwhile freed the handle, and the
 * next try used it (ASan: heap-use-after-free; without ASan, connect on
 * whatever descriptor had taken the handle's place). */
TEST_G(net, close_during_a_connects_pause_returns_eclosed)
{
    static struct unix_listener u;
    full_unix_listener(&u);
    static struct pausing_connect c = { .wg = GOC_WG_INIT };
    ASSERT_OK(
        goc_fd_open(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), &c.f));
    c.u = &u;
    atomic_store(&c.rc, 1);
    goc_wg_add(&c.wg, 1);
    ASSERT_OK(goc_go(connect_into_a_full_queue, &c));
    goc_sleep(100 * GOC_MILLISECOND, NULL); /* pausing at its longest */
    int64_t t0 = goc_now();
    ASSERT_OK(goc_fd_close(c.f));
    goc_fd *others[16]; /* take the freed handle's memory, if it was */
    for (int i = 0; i < 16; i++) {
        goc_fd *r, *w;
        pipe_pair(&r, &w);
        goc_fd_close(w);
        others[i] = r;
    }
    goc_wg_wait(&c.wg, NULL);
    printf("# connect returned %d, %lld us after the close\n",
           atomic_load(&c.rc),
           (long long)((atomic_load(&c.returned_at) - t0) / 1000));
    ASSERT_EQ(atomic_load(&c.rc), GOC_ECLOSED);
    ASSERT_LT(atomic_load(&c.returned_at) - t0, 100 * GOC_MILLISECOND);
    for (int i = 0; i < 16; i++)
        goc_fd_close(others[i]);
    for (int i = 0; i < u.nqueued; i++)
        close(u.queued[i]);
    close(u.fd);
}

struct connect_call {
    struct unix_listener *u;
    goc_ctx *ctx;
    int rc;
};

static void *connect_from_a_thread(void *arg)
{
    struct connect_call *cc = arg;
    goc_fd *f;
    ASSERT_OK(goc_fd_open(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), &f));
    cc->rc =
        goc_fd_connect(f, (struct sockaddr *)&cc->u->sa, cc->u->len, cc->ctx);
    goc_fd_close(f);
    return NULL;
}

/* The wait for room in a full UNIX queue, from a plain thread, ended by
 * a cancel while it waits, and by a context already cancelled. */
TEST_G(net, unix_connect_wait_cancel_and_plain_thread)
{
    static struct unix_listener u;
    full_unix_listener(&u);
    struct connect_call cc = { .u = &u };
    ASSERT_OK(goc_ctx_with_cancel(NULL, &cc.ctx));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, connect_from_a_thread, &cc));
    goc_sleep(30 * GOC_MILLISECOND, NULL);
    goc_ctx_cancel(cc.ctx);
    test_join(th, NULL);
    ASSERT_EQ(cc.rc, -ECANCELED);
    connect_from_a_thread(&cc); /* cancelled before entry */
    ASSERT_EQ(cc.rc, -ECANCELED);
    goc_ctx_release(cc.ctx);
    for (int i = 0; i < u.nqueued; i++)
        close(u.queued[i]);
    close(u.fd);
}
