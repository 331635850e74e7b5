/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the C benchmarks: N with an environment override for
 * quick smoke runs (BENCH_N), a check that exits non-zero on a wrong
 * result, and the "name value unit" output line.
 */
#ifndef GOC_BENCH_H
#define GOC_BENCH_H

#include <goc.h>

#include <stdio.h>
#include <stdlib.h>

static inline long bench_n(long n)
{
    const char *s = getenv("BENCH_N");
    long v = s ? atol(s) : 0;
    return v > 0 ? v : n;
}

#define BENCH_CHECK(cond, ...)            \
    do {                                  \
        if (!(cond)) {                    \
            fprintf(stderr, __VA_ARGS__); \
            fputc('\n', stderr);          \
            exit(1);                      \
        }                                 \
    } while (0)

static inline void bench_report(const char *name, int64_t ns, long n)
{
    printf("%s %.1f ns/op\n", name, (double)ns / (double)n);
}

static inline goc_chan *bench_chan(size_t elem, size_t cap)
{
    goc_chan *c = NULL;
    BENCH_CHECK(goc_chan_new(elem, cap, &c) == 0, "goc_chan_new failed");
    return c;
}

/* The usual program: one warm-up run, then the measured one. */
#define BENCH_MAIN(name, default_n, once_fn) \
    static int bench_main_(void *arg)        \
    {                                        \
        long n = bench_n(default_n);         \
        (void)arg;                           \
        once_fn(n);                          \
        bench_report(name, once_fn(n), n);   \
        return 0;                            \
    }                                        \
    int main(void)                           \
    {                                        \
        return goc_run(bench_main_, NULL);   \
    }

#endif /* GOC_BENCH_H */
