/* SPDX-License-Identifier: MIT */
/*
 * metrics (C only): ns per goc_counter_inc() on one goroutine
 * (metrics_counter_inc) and from every P at once, G = 2 * Ps goroutines
 * sharing one counter, N/G each (metrics_counter_inc_par); ns per
 * goc_histogram_observe() with the default 11 buckets, on one goroutine
 * (metrics_histogram_observe) and from every P (..._par). Each run checks
 * that the totals are exact.
 */
#include "bench.h"

#include <stdatomic.h>

static goc_registry *reg;
static goc_counter *ctr;
static goc_histogram *hist;
static long per;

static void setup(void)
{
    BENCH_CHECK(goc_registry_new(&reg) == 0, "registry");
    BENCH_CHECK(goc_counter_new(reg, "ops_total", "Ops.", &ctr) == 0, "ctr");
    struct goc_metric_opts o = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "lat_seconds",
                                 .help = "Latency." };
    goc_metric *m;
    BENCH_CHECK(goc_metric_new(reg, &o, &m) == 0, "histogram");
    BENCH_CHECK(goc_histogram_with(m, NULL, &hist) == 0, "child");
}

static void teardown(void)
{
    goc_registry_free(reg);
}

static int64_t once_inc(long n)
{
    setup();
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++)
        goc_counter_inc(ctr);
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(goc_counter_value(ctr) == (double)n, "counter: total");
    teardown();
    return ns;
}

static int64_t once_observe(long n)
{
    setup();
    int64_t t0 = goc_now();
    for (long i = 0; i < n; i++)
        goc_histogram_observe(hist, (double)(i & 1023) * 1e-3);
    int64_t ns = goc_now() - t0;
    struct goc_histogram_snapshot s = { 0 };
    goc_histogram_read(hist, &s);
    BENCH_CHECK(s.count == (uint64_t)n, "histogram: count");
    teardown();
    return ns;
}

static void inc_worker(void *arg)
{
    for (long i = 0; i < per; i++)
        goc_counter_inc(ctr);
    goc_wg_done(arg);
}

static void obs_worker(void *arg)
{
    for (long i = 0; i < per; i++)
        goc_histogram_observe(hist, (double)(i & 1023) * 1e-3);
    goc_wg_done(arg);
}

static int64_t once_par(long n, goc_fn fn)
{
    setup();
    int g = 2 * goc_maxprocs();
    per = n / g;
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, g);
    int64_t t0 = goc_now();
    for (int i = 0; i < g; i++)
        goc_go(fn, &wg);
    goc_wg_wait(&wg, NULL);
    int64_t ns = goc_now() - t0;
    struct goc_histogram_snapshot s = { 0 };
    goc_histogram_read(hist, &s);
    double total = (double)per * g;
    BENCH_CHECK(goc_counter_value(ctr) + (double)s.count == total,
                "parallel: total");
    teardown();
    return ns;
}

static int64_t once_inc_par(long n)
{
    return once_par(n, inc_worker);
}

static int64_t once_observe_par(long n)
{
    return once_par(n, obs_worker);
}

static void run(const char *name, int64_t (*fn)(long), long n)
{
    fn(n / 10); /* warm-up */
    bench_report(name, fn(n), n);
}

static int bench(void *arg)
{
    (void)arg;
    long n = bench_n(20000000);
    run("metrics_counter_inc", once_inc, n);
    run("metrics_counter_inc_par", once_inc_par, n);
    run("metrics_histogram_observe", once_observe, n / 4);
    run("metrics_histogram_observe_par", once_observe_par, n / 4);
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
