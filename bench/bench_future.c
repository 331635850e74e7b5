/* SPDX-License-Identifier: MIT */
/*
 * future (C only): goc_future_async() of a trivial function and
 * goc_future_get() of its result, N times in sequence; ns per
 * async + get (a goroutine, a context and a future each time).
 */
#include "bench.h"

static int one(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    *result = (void *)1;
    return 0;
}

static int64_t once(long n)
{
    long s = 0;
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++) {
        goc_future *f;
        int st;
        void *v;
        BENCH_CHECK(goc_future_async(one, NULL, NULL, NULL, &f) == 0, "async");
        BENCH_CHECK(goc_future_get(f, &st, &v, NULL) == 0 && st == 0, "get");
        s += (long)(intptr_t)v;
        goc_future_release(f);
    }
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(s == n, "future: sum %ld, want %ld", s, n);
    return ns;
}

BENCH_MAIN("future", 200000, once)
