/* SPDX-License-Identifier: MIT */
/*
 * pool_submit (C only): N tasks submitted from the main goroutine to a
 * goroutine pool of capacity 8 (blocking submit), each adding to a
 * counter; ns per task from the first submit to the pool going idle.
 */
#include "bench.h"

#include <stdatomic.h>

static _Atomic long done;

static int task(void *arg)
{
    (void)arg;
    atomic_fetch_add_explicit(&done, 1, memory_order_relaxed);
    return 0;
}

static int64_t once(long n)
{
    struct goc_pool_config cfg = { .capacity = 8 };
    goc_pool *p;
    BENCH_CHECK(goc_pool_new(&cfg, &p) == 0, "pool_new");
    atomic_store(&done, 0);
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++)
        BENCH_CHECK(goc_pool_submit(p, task, NULL, NULL) == 0, "submit");
    goc_pool_wait_idle(p, NULL);
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(atomic_load(&done) == n, "pool_submit: %ld ran, want %ld",
                atomic_load(&done), n);
    goc_pool_free(p);
    return ns;
}

BENCH_MAIN("pool_submit", 1000000, once)
