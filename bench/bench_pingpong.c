/* SPDX-License-Identifier: MIT */
/* pingpong: round trips over two unbuffered channels; ns per round trip. */
#include "bench.h"

struct pp {
    goc_chan *ping, *pong;
    long n;
};

static void responder(void *arg)
{
    /* A copy: the caller's frame is gone once it has the last reply. */
    struct pp p = *(struct pp *)arg;
    for (long i = 0; i < p.n; i++) {
        long v;
        goc_chan_recv(p.ping, &v, NULL);
        v++;
        goc_chan_send(p.pong, &v, NULL);
    }
}

static int64_t once(long n)
{
    struct pp p = { bench_chan(sizeof(long), 0), bench_chan(sizeof(long), 0),
                    n };
    goc_go(responder, &p);
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++) {
        long v = i;
        goc_chan_send(p.ping, &v, NULL);
        goc_chan_recv(p.pong, &v, NULL);
        BENCH_CHECK(v == i + 1, "pingpong: got %ld, want %ld", v, i + 1);
    }
    int64_t ns = goc_now() - t0;
    goc_chan_release(p.ping);
    goc_chan_release(p.pong);
    return ns;
}

BENCH_MAIN("pingpong", 1000000, once)
