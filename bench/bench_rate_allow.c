/* SPDX-License-Identifier: MIT */
/*
 * rate_allow: a limiter of 1e9 events/s, burst 1000; one goroutine calls
 * goc_limiter_allow() N times (each call reads the clock, as Go's Allow
 * does); every call is allowed at this rate. ns per call.
 *
 * rate_allow_par (the same program, picked by name): the limiter shared
 * by 8 goroutines, N/8 calls each; ns per call over all N.
 */
#include "bench.h"

#include <stdatomic.h>
#include <string.h>

#define G 8

static goc_limiter *lim;
static long per;
static _Atomic long allowed;

static void worker(void *arg)
{
    long ok = 0;
    for (long i = 0; i < per; i++)
        ok += goc_limiter_allow(lim);
    atomic_fetch_add(&allowed, ok);
    goc_wg_done(arg);
}

static int64_t once_seq(long n)
{
    BENCH_CHECK(goc_limiter_new(1e9, 1000, NULL, &lim) == 0, "new");
    long ok = 0;
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++)
        ok += goc_limiter_allow(lim);
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(ok == n, "rate_allow: %ld of %ld allowed", ok, n);
    goc_limiter_free(lim);
    return ns;
}

static int64_t once_par(long n)
{
    goc_wg wg = GOC_WG_INIT;
    BENCH_CHECK(goc_limiter_new(1e9, 1000, NULL, &lim) == 0, "new");
    per = n / G;
    atomic_store(&allowed, 0);
    int64_t t0 = goc_now();
    goc_wg_add(&wg, G);
    for (int i = 0; i < G; i++)
        goc_go(worker, &wg);
    goc_wg_wait(&wg, NULL);
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(atomic_load(&allowed) == per * G,
                "rate_allow_par: %ld of %ld allowed", atomic_load(&allowed),
                per * G);
    goc_limiter_free(lim);
    return ns;
}

static int bench(void *arg)
{
    const char *name = arg;
    long n = bench_n(10000000);
    int par = strcmp(name, "rate_allow_par") == 0;
    int64_t (*once)(long) = par ? once_par : once_seq;
    once(n);
    bench_report(name, once(n), n);
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    const char *name =
        strstr(base, "rate_allow_par") ? "rate_allow_par" : "rate_allow";
    return goc_run(bench, (void *)name);
}
