/* SPDX-License-Identifier: MIT */
/*
 * The runtime's statistics as Prometheus metrics: a collector reads
 * goc_stats_read() at each scrape, so nothing is sampled between scrapes
 * and the figures are as fresh as the scrape.
 */
#include "goc/metrics.h"
#include "goc/stats.h"
#include "../internal/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct family {
    const char *name, *help;
    int type;
    double (*get)(const struct goc_stats *st);
};

#define FIELD(fn, expr)                          \
    static double fn(const struct goc_stats *st) \
    {                                            \
        return (double)(expr);                   \
    }

FIELD(goroutines, st->goroutines)
FIELD(goroutines_total, st->goroutines_total)
FIELD(procs, st->procs)
FIELD(procs_idle, st->procs_idle)
FIELD(threads, st->threads)
FIELD(threads_spinning, st->threads_spinning)
FIELD(steals, st->steals_total)
FIELD(parks, st->parks_total)
FIELD(switches, st->switches_total)
FIELD(timers, st->timers)
FIELD(io_waiters, st->io_waiters)
FIELD(blocking_threads, st->blocking_threads)
FIELD(blocking_jobs, st->blocking_jobs)
FIELD(blocking_sections, st->blocking_sections)
FIELD(blocking_abandoned, st->blocking_abandoned_total)
FIELD(stacks, st->stacks)
FIELD(stack_reserved, st->stack_reserved_bytes)
FIELD(stack_resident, st->stack_resident_bytes)
FIELD(rss, st->rss_bytes)
FIELD(rss_peak, st->rss_peak_bytes)
FIELD(os_threads, st->os_threads)
FIELD(heap_inuse, st->heap_inuse_bytes)
FIELD(heap_free, st->heap_free_bytes)
FIELD(heap_arena, st->heap_arena_bytes)
FIELD(heap_mmap, st->heap_mmap_bytes)
FIELD(lib_heap, st->lib_heap_bytes)
FIELD(lib_objects, st->lib_heap_objects)
FIELD(lib_allocs, st->lib_allocs_total)

#define G GOC_METRIC_GAUGE
#define C GOC_METRIC_COUNTER

static const struct family sched[] = {
    { "goc_goroutines", "Goroutines that currently exist.", G, goroutines },
    { "goc_goroutines_created_total", "Goroutines created since start.", C,
      goroutines_total },
    { "goc_procs", "Ps: goroutines that can run in parallel.", G, procs },
    { "goc_procs_idle", "Ps with no thread running them.", G, procs_idle },
    { "goc_threads", "Scheduler threads (Ms).", G, threads },
    { "goc_threads_spinning", "Scheduler threads looking for work.", G,
      threads_spinning },
    { "goc_steals_total", "Goroutines stolen from another P's queue.", C,
      steals },
    { "goc_parks_total", "Times a goroutine parked (blocked).", C, parks },
    { "goc_context_switches_total", "Switches into a goroutine.", C, switches },
    { "goc_timers", "Runtime timers armed.", G, timers },
    { "goc_io_waiters", "Goroutines and threads waiting for I/O readiness.", G,
      io_waiters },
    { "goc_blocking_threads", "Threads of the blocking pool.", G,
      blocking_threads },
    { "goc_blocking_jobs", "goc_blocking() calls in flight.", G,
      blocking_jobs },
    { "goc_blocking_sections", "goc_blocking_enter() sections open.", G,
      blocking_sections },
    { "goc_blocking_abandoned_total",
      "Blocking jobs run to the end after their caller gave up waiting.", C,
      blocking_abandoned },
    { "goc_stacks", "Goroutine stacks set up (in use or cached).", G, stacks },
    { "goc_stack_reserved_bytes", "Address space reserved for stacks.", G,
      stack_reserved },
};

static const struct family resident[] = {
    { "goc_stack_resident_bytes", "Stack bytes in RAM.", G, stack_resident },
};

static const struct family process[] = {
    { "process_resident_memory_bytes", "Resident memory size in bytes.", G,
      rss },
    { "goc_process_resident_memory_peak_bytes",
      "Peak resident memory size in bytes.", G, rss_peak },
    { "goc_process_threads", "Threads of the process.", G, os_threads },
};

static const struct family heap[] = {
    { "goc_heap_inuse_bytes", "Bytes in allocated malloc chunks.", G,
      heap_inuse },
    { "goc_heap_free_bytes", "Free bytes malloc keeps.", G, heap_free },
    { "goc_heap_arena_bytes", "Bytes of malloc's arenas.", G, heap_arena },
    { "goc_heap_mmap_bytes", "Bytes of blocks malloc mapped on their own.", G,
      heap_mmap },
};

static const struct family lib[] = {
    { "goc_lib_heap_bytes", "Heap bytes goc itself holds.", G, lib_heap },
    { "goc_lib_heap_objects", "Heap blocks goc itself holds.", G, lib_objects },
    { "goc_lib_allocs_total", "Heap blocks goc allocated since start.", C,
      lib_allocs },
};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static void emit(goc_metric_sink *s,
                 const struct family *f,
                 size_t n,
                 const struct goc_stats *st)
{
    for (size_t i = 0; i < n; i++)
        if (goc_sink_family(s, f[i].name, f[i].help, f[i].type) == 0)
            goc_sink_sample(s, NULL, NULL, 0, f[i].get(st));
}

/* The run queues: the global one and one per P, as labels. */
static void emit_runq(goc_metric_sink *s, const struct goc_stats *st)
{
    if (goc_sink_family(s, "goc_runqueue_goroutines",
                        "Runnable goroutines waiting in a run queue.",
                        GOC_METRIC_GAUGE) != 0)
        return;
    static const char *const names[] = { "queue" };
    const char *values[] = { "global" };
    goc_sink_sample(s, names, values, 1, (double)st->runq_global);
    /* Up to GOC_MAXPROCS_MAX Ps: more than that on the stack would be a
     * lot for a goroutine's, so a larger count is read into the heap. */
    int64_t some[256], *lens = some;
    int n = goc_stats_runq(lens, 256);
    if (n > 256) {
        int64_t *all = goc__malloc((size_t)n * sizeof *all);
        if (all) {
            goc_stats_runq(all, n); /* the same n: Ps are fixed */
            lens = all;
        } else {
            n = 256; /* out of memory: those read first */
        }
    }
    for (int i = 0; i < n; i++) {
        char p[16];
        snprintf(p, sizeof(p), "p%d", i);
        values[0] = p;
        goc_sink_sample(s, names, values, 1, (double)lens[i]);
    }
    if (lens != some)
        goc__free(lens);
}

static void emit_cpu(goc_metric_sink *s)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 ||
        goc_sink_family(s, "process_cpu_seconds_total",
                        "Total user and system CPU time spent in seconds.",
                        GOC_METRIC_COUNTER) != 0)
        return;
    double secs = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                  (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    goc_sink_sample(s, NULL, NULL, 0, secs);
}

static void emit_one(goc_metric_sink *s,
                     const char *name,
                     const char *help,
                     double v)
{
    if (v >= 0 && goc_sink_family(s, name, help, GOC_METRIC_GAUGE) == 0)
        goc_sink_sample(s, NULL, NULL, 0, v);
}

/* Descriptors open now; -1 without /proc. */
static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

/* The process's start, in seconds since the Unix epoch: its start in
 * clock ticks after boot (field 22 of /proc/self/stat) plus the boot
 * time (btime of /proc/stat); -1 if either cannot be read. */
static double start_time(void)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "re");
    size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the name may hold spaces */
    unsigned long long ticks = 0;
    if (!p || sscanf(p + 2,
                     "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u "
                     "%*d %*d %*d %*d %*d %*d %llu",
                     &ticks) != 1)
        return -1;
    f = fopen("/proc/stat", "re");
    unsigned long long btime = 0;
    bool found = false;
    while (f && !found && fgets(buf, sizeof(buf), f))
        found = sscanf(buf, "btime %llu", &btime) == 1;
    if (f)
        fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (!found || hz <= 0)
        return -1;
    return (double)btime + (double)ticks / (double)hz;
}

/* Prometheus's standard process metrics beyond memory and CPU. */
static void emit_process_extra(goc_metric_sink *s)
{
    emit_one(s, "process_open_fds", "Number of open file descriptors.",
             open_fds());
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        emit_one(s, "process_max_fds",
                 "Maximum number of open file descriptors.",
                 rl.rlim_cur == RLIM_INFINITY ? 1e18 : (double)rl.rlim_cur);
    emit_one(s, "process_start_time_seconds",
             "Start time of the process since unix epoch in seconds.",
             start_time());
}

static void collect(goc_metric_sink *s, void *arg)
{
    unsigned what = (unsigned)(uintptr_t)arg;
    struct goc_stats st;
    goc_stats_read(&st, what); /* a /proc failure leaves those fields 0 */
    if (what & GOC_STATS_SCHED) {
        emit(s, sched, LEN(sched), &st);
        emit_runq(s, &st);
    }
    if (what & GOC_STATS_STACK_RESIDENT)
        emit(s, resident, LEN(resident), &st);
    if (what & GOC_STATS_PROCESS) {
        emit(s, process, LEN(process), &st);
        emit_cpu(s);
        emit_process_extra(s);
    }
    if (what & GOC_STATS_HEAP)
        emit(s, heap, LEN(heap), &st);
    if (what & GOC_STATS_LIB)
        emit(s, lib, LEN(lib), &st);
}

int goc_metrics_register_runtime(goc_registry *r,
                                 unsigned what,
                                 goc_collector **out)
{
    if (!out || (what & ~(unsigned)GOC_STATS_ALL))
        return -EINVAL;
    if (what == 0)
        what = GOC_STATS_SCHED | GOC_STATS_PROCESS | GOC_STATS_HEAP |
               GOC_STATS_LIB;
    return goc_registry_add_collector(r, collect, (void *)(uintptr_t)what, out);
}
