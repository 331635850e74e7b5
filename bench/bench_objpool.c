/* SPDX-License-Identifier: MIT */
/*
 * objpool (C only): a get+put pair on goc_objpool against malloc+free of
 * the same 256-byte object, N times each on one goroutine (objpool_get_put,
 * objpool_malloc_free), and the pool shared by 8 goroutines, N/8 pairs
 * each (objpool_get_put_par); ns per pair.
 */
#include "bench.h"

#include <stdatomic.h>
#include <string.h>

#define G    8
#define SIZE 256

static goc_objpool *pool;
static long per;
static _Atomic long touched;

static void *mk(void *arg)
{
    (void)arg;
    return malloc(SIZE);
}

static void rm(void *obj, void *arg)
{
    (void)arg;
    free(obj);
}

static void new_pool(void)
{
    struct goc_objpool_opts o = { .new_fn = mk, .destroy_fn = rm };
    BENCH_CHECK(goc_objpool_new(&o, &pool) == 0, "new");
}

static long use(void *p, long i)
{
    volatile char *c = p;
    c[i & (SIZE - 1)] = (char)i; /* touch it, as a user would */
    return 1;
}

static int64_t once_pool(long n)
{
    new_pool();
    long k = 0;
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++) {
        void *p = goc_objpool_get(pool);
        k += use(p, i);
        goc_objpool_put(pool, p);
    }
    int64_t ns = goc_now() - t0;
    struct goc_objpool_stats st;
    goc_objpool_stats(pool, &st);
    BENCH_CHECK(k == n && st.gets == n && st.misses <= 1,
                "objpool: misses %lld", (long long)st.misses);
    goc_objpool_free(pool);
    return ns;
}

static int64_t once_malloc(long n)
{
    long k = 0;
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++) {
        void *p = malloc(SIZE);
        k += use(p, i);
        free(p);
    }
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(k == n, "malloc: count");
    return ns;
}

static void worker(void *arg)
{
    long k = 0;
    for (long i = 0; i < per; i++) {
        void *p = goc_objpool_get(pool);
        k += use(p, i);
        goc_objpool_put(pool, p);
    }
    atomic_fetch_add(&touched, k);
    goc_wg_done(arg);
}

static int64_t once_par(long n)
{
    goc_wg wg = GOC_WG_INIT;
    new_pool();
    per = n / G;
    atomic_store(&touched, 0);
    int64_t t0 = goc_now();
    goc_wg_add(&wg, G);
    for (int i = 0; i < G; i++)
        goc_go(worker, &wg);
    goc_wg_wait(&wg, NULL);
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(atomic_load(&touched) == per * G, "objpool_par: count");
    goc_objpool_free(pool);
    return ns;
}

static int bench(void *arg)
{
    (void)arg;
    long n = bench_n(10000000);
    once_pool(n);
    bench_report("objpool_get_put", once_pool(n), n);
    once_malloc(n);
    bench_report("objpool_malloc_free", once_malloc(n), n);
    once_par(n);
    bench_report("objpool_get_put_par", once_par(n), n);
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
