/* SPDX-License-Identifier: MIT */
/*
 * breaker (C only): the cost a closed circuit breaker adds to a call.
 * One goroutine runs goc_breaker_execute() on an empty function N times
 * (breaker_call), and 8 goroutines share one breaker, N/8 calls each
 * (breaker_call_par); ns per call.
 */
#include "bench.h"

#include <stdatomic.h>

#define G 8

static goc_breaker *br;
static long per;
static _Atomic long done_calls;

static int empty(void *arg)
{
    (void)arg;
    return 0;
}

static void worker(void *arg)
{
    for (long i = 0; i < per; i++)
        BENCH_CHECK(goc_breaker_execute(br, empty, NULL) == 0, "execute");
    atomic_fetch_add(&done_calls, per);
    goc_wg_done(arg);
}

static int64_t once_seq(long n)
{
    BENCH_CHECK(goc_breaker_new(NULL, &br) == 0, "new");
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++)
        BENCH_CHECK(goc_breaker_execute(br, empty, NULL) == 0, "execute");
    int64_t ns = goc_now() - t0;
    struct goc_breaker_counts c;
    goc_breaker_counts(br, &c);
    BENCH_CHECK(c.total_successes == n, "breaker: %lld successes",
                (long long)c.total_successes);
    goc_breaker_free(br);
    return ns;
}

static int64_t once_par(long n)
{
    goc_wg wg = GOC_WG_INIT;
    BENCH_CHECK(goc_breaker_new(NULL, &br) == 0, "new");
    per = n / G;
    atomic_store(&done_calls, 0);
    int64_t t0 = goc_now();
    goc_wg_add(&wg, G);
    for (int i = 0; i < G; i++)
        goc_go(worker, &wg);
    goc_wg_wait(&wg, NULL);
    int64_t ns = goc_now() - t0;
    struct goc_breaker_counts c;
    goc_breaker_counts(br, &c);
    BENCH_CHECK(c.total_successes == per * G, "breaker_par: %lld successes",
                (long long)c.total_successes);
    goc_breaker_free(br);
    return ns;
}

static int bench(void *arg)
{
    (void)arg;
    long n = bench_n(10000000);
    once_seq(n);
    bench_report("breaker_call", once_seq(n), n);
    once_par(n);
    bench_report("breaker_call_par", once_par(n), n);
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
