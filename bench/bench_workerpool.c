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

#if defined(BENCH_PROF)
/*
 * workerpool_prof: the same workload with and without a 100 Hz CPU
 * profile, alternately in one process (best of 5 each), and the
 * profiler's overhead in percent.
 */
#include <unistd.h>

static int64_t profiled(long n)
{
    char path[] = "/tmp/goc-bench-prof-XXXXXX";
    int fd = mkstemp(path);
    BENCH_CHECK(fd >= 0, "mkstemp failed");
    struct goc_prof_cpu_opts o = { .fd = fd, .hz = 100 };
    BENCH_CHECK(goc_prof_cpu_start_opts(&o) == 0, "profile start failed");
    int64_t ns = once(n);
    BENCH_CHECK(goc_prof_cpu_stop() == 0, "profile stop failed");
    BENCH_CHECK(lseek(fd, 0, SEEK_END) > 0, "empty profile");
    close(fd);
    unlink(path);
    return ns;
}

static int bench_prof_main(void *arg)
{
    (void)arg;
    long n = bench_n(1000000);
    once(n);
    int64_t off = INT64_MAX, on = INT64_MAX;
    for (int i = 0; i < 5; i++) {
        int64_t a = once(n), b = profiled(n);
        off = a < off ? a : off;
        on = b < on ? b : on;
    }
    bench_report("workerpool_noprof", off, n);
    bench_report("workerpool_prof", on, n);
    printf("workerpool_prof_overhead %.1f %%\n",
           100.0 * (double)(on - off) / (double)off);
    return 0;
}

int main(void)
{
    return goc_run(bench_prof_main, NULL);
}
#else
BENCH_MAIN("workerpool", 1000000, once)
#endif
