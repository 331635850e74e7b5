/* SPDX-License-Identifier: MIT */
/*
 * sem: a weighted semaphore of size 4; 8 goroutines each acquire and
 * release weight 1, N/8 times; ns per acquire/release pair.
 */
#include "bench.h"

#include <stdatomic.h>

#define G 8

static goc_sem sem;
static long per;
static _Atomic long pairs;

static void worker(void *arg)
{
    long i;
    for (i = 0; i < per; i++) {
        BENCH_CHECK(goc_sem_acquire(&sem, 1, NULL) == 0, "acquire");
        goc_sem_release(&sem, 1);
    }
    atomic_fetch_add(&pairs, i);
    goc_wg_done(arg);
}

static int64_t once(long n)
{
    goc_wg wg = GOC_WG_INIT;
    per = n / G;
    atomic_store(&pairs, 0);
    goc_sem_init(&sem, 4);
    int64_t t0 = goc_now();
    goc_wg_add(&wg, G);
    for (int i = 0; i < G; i++)
        goc_go(worker, &wg);
    goc_wg_wait(&wg, NULL);
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(goc_sem_held(&sem) == 0, "sem: weight left held");
    BENCH_CHECK(atomic_load(&pairs) == per * G, "sem: %ld pairs, want %ld",
                atomic_load(&pairs), per * G);
    return ns;
}

BENCH_MAIN("sem", 4000000, once)
