/* SPDX-License-Identifier: MIT */
/*
 * workerpool: N jobs through 8 worker goroutines over two channels of
 * capacity 1024 (jobs, results); a feeder goroutine sends the jobs and
 * closes the jobs channel; the main goroutine receives exactly N results
 * and sums them, then waits for the workers. ns per job. This measures
 * goc's channels and scheduler, as the Go side does, not a pool object.
 */
#include "bench.h"

#define WORKERS 8

/* About 100 dependent adds; kept out of line and unfoldable, as in Go. */
__attribute__((noinline)) static long tiny_job(void)
{
    long s = 0;
    for (long k = 0; k < 100; k++) {
        s += k;
        __asm__ volatile("" : "+r"(s));
    }
    return s;
}

struct wp {
    goc_chan *jobs, *results;
    long n;
    goc_wg workers;
};

static void worker(void *arg)
{
    struct wp *w = arg;
    long job;
    while (goc_chan_recv(w->jobs, &job, NULL) > 0) {
        long r = tiny_job();
        goc_chan_send(w->results, &r, NULL);
    }
    goc_wg_done(&w->workers);
}

static void feeder(void *arg)
{
    struct wp *w = arg;
    for (long i = 0; i < w->n; i++)
        goc_chan_send(w->jobs, &i, NULL);
    goc_chan_close(w->jobs);
}

static int64_t once(long n)
{
    struct wp w = { .jobs = bench_chan(sizeof(long), 1024),
                    .results = bench_chan(sizeof(long), 1024),
                    .n = n };
    int64_t t0 = goc_now();
    goc_wg_add(&w.workers, WORKERS);
    for (int i = 0; i < WORKERS; i++)
        goc_go(worker, &w);
    goc_go(feeder, &w);
    long s = 0, r;
    for (long i = 0; i < n; i++) {
        BENCH_CHECK(goc_chan_recv(w.results, &r, NULL) > 0, "results");
        s += r;
    }
    goc_wg_wait(&w.workers, NULL);
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(s == n * 4950, "workerpool: sum %ld, want %ld", s, n * 4950);
    goc_chan_release(w.jobs);
    goc_chan_release(w.results);
    return ns;
}

BENCH_MAIN("workerpool", 1000000, once)
