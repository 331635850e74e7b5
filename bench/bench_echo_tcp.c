/* SPDX-License-Identifier: MIT */
/*
 * echo_tcp: a server with a goroutine per connection echoing 64-byte
 * messages, and N clients (1,000) doing 200 round trips each over
 * loopback, after one complete run as a warm-up. Dialling is not timed;
 * the figure is round trips per second from the start barrier to the
 * last client's end.
 */
#include "bench.h"

#include <stdatomic.h>

#define ROUNDS 200
#define MSG    64

static goc_fd *listener;
static goc_wg dialled, finished, served;
static goc_chan *start; /* closed to release the clients */
static _Atomic int failures;

static void echo_conn(void *arg)
{
    goc_fd *c = arg;
    char buf[MSG];
    while (goc_fd_read_full(c, buf, MSG, NULL) == MSG)
        if (goc_fd_write(c, buf, MSG, NULL) != MSG)
            break;
    goc_fd_close(c);
    goc_wg_done(&served);
}

static void accept_loop(void *arg)
{
    (void)arg;
    goc_fd *c;
    while (goc_fd_accept(listener, &c, NULL, NULL, NULL) == 0) {
        goc_wg_add(&served, 1);
        BENCH_CHECK(goc_go(echo_conn, c) == 0, "goc_go failed");
    }
    goc_wg_done(&served);
}

static void client(void *arg)
{
    const char *addr = arg;
    static _Atomic int next_id;
    int id = atomic_fetch_add(&next_id, 1);
    goc_fd *c;
    int err = goc_tcp_dial(addr, &c, NULL);
    goc_wg_done(&dialled);
    BENCH_CHECK(err == 0, "dial: %s", goc_strerror(err));
    goc_chan_recv(start, NULL, NULL);
    unsigned char out[MSG] = { 0 }, in[MSG];
    for (int r = 0; r < ROUNDS; r++) {
        out[0] = (unsigned char)id;
        out[1] = (unsigned char)r;
        if (goc_fd_write(c, out, MSG, NULL) != MSG ||
            goc_fd_read_full(c, in, MSG, NULL) != MSG || in[0] != out[0] ||
            in[1] != out[1]) {
            atomic_fetch_add(&failures, 1);
            break;
        }
    }
    goc_fd_close(c);
    goc_wg_done(&finished);
}

/* One complete run: listen, dial n clients, release them, wait; the
 * elapsed time from the release to the last client's end. */
static int64_t echo_once(long n)
{
    char addr[GOC_ADDRSTRLEN];
    BENCH_CHECK(goc_tcp_listen("127.0.0.1:0", &listener) == 0, "listen");
    goc_fd_local_addr(listener, addr, sizeof(addr));
    start = bench_chan(0, 0);
    goc_wg_add(&served, 1);
    BENCH_CHECK(goc_go(accept_loop, NULL) == 0, "goc_go failed");
    goc_wg_add(&dialled, n);
    goc_wg_add(&finished, n);
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++)
        BENCH_CHECK(goc_go(client, addr) == 0, "goc_go failed");
    goc_wg_wait(&dialled, NULL);
    fprintf(stderr, "echo_tcp: connect phase %.1f ms\n",
            (double)(goc_now() - t0) / 1e6);
    int64_t t1 = goc_now();
    goc_chan_close(start);
    goc_wg_wait(&finished, NULL);
    int64_t el = goc_now() - t1;
    BENCH_CHECK(atomic_load(&failures) == 0, "echo: %d clients failed",
                atomic_load(&failures));
    goc_fd_close(listener);
    goc_wg_wait(&served, NULL);
    goc_chan_release(start);
    return el;
}

static int bench(void *arg)
{
    (void)arg;
    long n = bench_n(1000);
    echo_once(n); /* warm-up */
    int64_t el = echo_once(n);
    printf("echo_tcp %.0f rt/s\n", (double)n * ROUNDS / ((double)el / 1e9));
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
