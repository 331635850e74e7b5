/* SPDX-License-Identifier: MIT */
/*
 * goc/stats.h: runtime statistics.
 *
 * One call fills a snapshot of the scheduler's counters and, on request,
 * of the process's memory: the C counterpart of Go's runtime.NumGoroutine,
 * runtime.ReadMemStats and runtime/metrics. Nothing stops the world: the
 * scheduler counters are per-P atomics summed on read, so a snapshot taken
 * while goroutines run is a consistent-enough view, not an instant.
 */
#ifndef GOC_STATS_H
#define GOC_STATS_H

#include "common.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * enum goc_stats_what - the sources goc_stats_read() reads. The scheduler
 * counters cost a walk of the Ps (nanoseconds); the others cost a system
 * call or a file read each, so a sampler picks only what it needs.
 * @GOC_STATS_SCHED:   goroutines, threads, Ps, queues, counters, timers,
 *                     I/O waiters, the blocking pool, reserved stack bytes.
 * @GOC_STATS_PROCESS: resident set, its peak and the thread count, from
 *                     /proc/self/status (one read of a small file).
 * @GOC_STATS_HEAP:    malloc's arena statistics (mallinfo2(); glibc takes
 *                     each arena's lock briefly).
 * @GOC_STATS_STACK_RESIDENT: goroutine stack bytes in RAM, from mincore()
 *                     over every stack slab: cost grows with the number of
 *                     stacks ever mapped (about 1 ms per 100k stacks).
 * @GOC_STATS_LIB:     the heap goc itself holds (channels, contexts,
 *                     futures, tasks, pools, metrics...), counted as it
 *                     allocates: a sum of per-thread counters.
 */
enum goc_stats_what {
    GOC_STATS_SCHED = 1 << 0,
    GOC_STATS_PROCESS = 1 << 1,
    GOC_STATS_HEAP = 1 << 2,
    GOC_STATS_STACK_RESIDENT = 1 << 3,
    GOC_STATS_LIB = 1 << 4,
    GOC_STATS_ALL = 0x1f,
};

/**
 * struct goc_stats - a snapshot. Fields of sources not asked for are 0.
 * Counters ("_total") only grow; the others are levels.
 */
struct goc_stats {
    int64_t time; /* goc_now() when taken */
    /* GOC_STATS_SCHED */
    int64_t goroutines;       /* live now */
    int64_t goroutines_total; /* created since start */
    int procs;                /* Ps (GOC_MAXPROCS) */
    int procs_idle;           /* Ps with no thread */
    int threads;              /* scheduler threads (Ms) */
    int threads_spinning;     /* Ms looking for work */
    int64_t runq_global;      /* goroutines in the global queue */
    int64_t runq_local;       /* goroutines in the Ps' queues */
    uint64_t steals_total;    /* goroutines stolen between Ps */
    uint64_t parks_total;     /* goroutines parked (blocked) */
    uint64_t switches_total;  /* switches into a goroutine */
    int64_t timers;           /* runtime timers armed */
    int io_waiters;           /* goroutines and threads waiting on I/O */
    int blocking_threads;     /* threads of the blocking pool */
    int blocking_jobs;        /* goc_blocking() calls in flight */
    int blocking_sections;    /* goc_blocking_enter() sections open */
    int64_t blocking_abandoned_total; /* jobs run after their caller gave up */
    int64_t stacks;                   /* goroutine stacks set up */
    uint64_t stack_reserved_bytes;    /* address space of stack slabs */
    /* GOC_STATS_STACK_RESIDENT */
    uint64_t stack_resident_bytes;
    /* GOC_STATS_PROCESS */
    uint64_t rss_bytes;
    uint64_t rss_peak_bytes;
    int os_threads; /* every thread of the process */
    /* GOC_STATS_HEAP (mallinfo2) */
    uint64_t heap_arena_bytes; /* sbrk'd and arena memory (arena) */
    uint64_t heap_inuse_bytes; /* allocated chunks (uordblks + hblkhd) */
    uint64_t heap_free_bytes;  /* free chunks kept by malloc (fordblks) */
    uint64_t heap_mmap_bytes;  /* large blocks mmap'd (hblkhd) */
    /* GOC_STATS_LIB: goc's own heap (stacks are stack_reserved_bytes) */
    int64_t lib_heap_bytes;   /* in use, as malloc_usable_size() counts */
    int64_t lib_heap_objects; /* blocks in use */
    int64_t lib_allocs_total; /* blocks ever allocated */
};

/**
 * goc_stats_read - fill @st with the sources in @what.
 * @st:   out; zeroed first.
 * @what: a mask of enum goc_stats_what; 0 means GOC_STATS_SCHED.
 *
 * Safe from any thread, goroutine or not, and before the runtime has
 * started (the scheduler fields are then 0; the call does not start it).
 *
 * Return: 0; -EINVAL (@st NULL or unknown bits in @what, @st untouched);
 * -errno if /proc could not be read (the other sources are still filled).
 */
GOC_API int goc_stats_read(struct goc_stats *st, unsigned what);

/**
 * goc_stats_runq - the run-queue length of each P.
 * @lens: out, @n entries; P i's length goes to lens[i].
 * @n:    room in @lens.
 *
 * Return: the number of Ps (may exceed @n: only @n are written); 0 before
 * the runtime has started; -EINVAL if @lens is NULL and @n > 0.
 */
GOC_API int goc_stats_runq(int64_t *lens, int n);

#ifdef __cplusplus
}
#endif

#endif /* GOC_STATS_H */
