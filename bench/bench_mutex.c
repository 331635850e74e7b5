/* SPDX-License-Identifier: MIT */
/*
 * mutex: 8 goroutines each lock, increment a shared counter and unlock
 * N/8 times; ns per increment.
 */
#include "bench.h"

#define G 8

static goc_mutex mu = GOC_MUTEX_INIT;
static long counter;
static long per;

static void worker(void *arg)
{
    for (long i = 0; i < per; i++) {
        goc_mutex_lock(&mu, NULL);
        counter++;
        goc_mutex_unlock(&mu);
    }
    goc_wg_done(arg);
}

static int64_t once(long n)
{
    goc_wg wg = GOC_WG_INIT;
    per = n / G;
    counter = 0;
    int64_t t0 = goc_now();
    goc_wg_add(&wg, G);
    for (int i = 0; i < G; i++)
        goc_go(worker, &wg);
    goc_wg_wait(&wg, NULL);
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(counter == per * G, "mutex: %ld", counter);
    return ns;
}

BENCH_MAIN("mutex", 10000000, once)
