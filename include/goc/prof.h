/* SPDX-License-Identifier: MIT */
/*
 * goc/prof.h: CPU, goroutine and heap profiles in the pprof format.
 *
 * The files are what Go's runtime/pprof writes: a gzip-compressed
 * profile.proto message (plain protobuf if goc was built without zlib;
 * pprof reads both), or with debug > 0 the legacy text forms. Read them
 * with `go tool pprof -top FILE`: every location carries its function
 * name, so pprof needs no binary to symbolise them.
 *
 * - CPU: every thread of the process gets a timer on its own CPU clock
 *   (timer_create(CLOCK_THREAD_CPUTIME_ID-style, SIGEV_THREAD_ID)); the
 *   SIGPROF handler walks the frame pointers of the interrupted code into
 *   a preallocated lock-free ring, and a writer thread drains it. Samples
 *   taken on a goroutine carry the label "goroutine" (its id); samples of
 *   plain threads, and of a thread between goroutines, carry none.
 * - Goroutine: the stack of every goroutine, counted per distinct stack.
 * - Heap: sampled allocations, recorded by the separate library
 *   goc_heapprof (libgoc_heapprof.a / .so, LD_PRELOAD-able), which wraps
 *   malloc and friends. Linking libgoc alone never replaces malloc.
 */
#ifndef GOC_PROF_H
#define GOC_PROF_H

#include "common.h"
#include "shutdown.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Default CPU sampling rate, as Go's. */
#define GOC_PROF_DEFAULT_HZ        100
/** Highest CPU sampling rate goc_prof_cpu_start() accepts. */
#define GOC_PROF_MAX_HZ            10000
/** Default mean bytes between heap samples (Go's MemProfileRate). */
#define GOC_PROF_DEFAULT_HEAP_RATE (512 * 1024)
/** Deepest stack recorded in a sample; deeper stacks are truncated. */
#define GOC_PROF_MAX_FRAMES        64

/*
 * How a stack walk reads frames outside a known stack range (a goroutine's
 * stack is always known), as found out when a profile starts:
 * FULL:    through process_vm_readv(2), which fails where a load would
 *          fault;
 * PROBED:  a seccomp filter forbids that: each frame is checked with
 *          rt_sigprocmask(2) first (the same stacks, slower);
 * BOUNDED: both are forbidden: frames are followed only within a known
 *          stack range, so CPU samples of code not on a goroutine stack
 *          keep only the interrupted function, and heap samples only
 *          walk the calling thread's own stack (pthread_getattr_np).
 */
/** Stack walks read any frame safely. */
#define GOC_PROF_WALK_FULL    0
/** Stack walks check each frame with a second system call. */
#define GOC_PROF_WALK_PROBED  1
/** Stack walks stop at the edge of a known stack: stacks are cut short. */
#define GOC_PROF_WALK_BOUNDED 2

/**
 * struct goc_prof_cpu_opts - where and how goc_prof_cpu_start_opts()
 * profiles.
 * @path:     file to create (truncated if it exists) and to close at the
 *            end; NULL to write to @fd instead.
 * @fd:       with a NULL @path, an open descriptor (borrowed: written,
 *            never closed).
 * @hz:       samples per second of CPU time per thread; 0 means
 *            GOC_PROF_DEFAULT_HZ.
 * @duration: nanoseconds after which sampling stops by itself and the
 *            profile is written; 0 means until goc_prof_cpu_stop().
 */
struct goc_prof_cpu_opts {
    const char *path;
    int fd;
    int hz;
    int64_t duration;
};

/**
 * struct goc_prof_cpu_stats - counters of the current (or last) CPU
 * profile.
 * @samples:    samples taken into the profile (weighted by timer overruns).
 * @dropped:    samples lost because the ring was full; they also appear in
 *              the profile as the function "goc_prof_lost_samples".
 * @threads:    threads that have had a timer during the profile.
 * @unprofiled: threads seen but not profiled (no timer slot or the
 *              kernel refused one), each counted once; threads beyond
 *              the table of 1024 that goc keeps count as the most seen
 *              at once.
 * @running:    1 while a profile is started and not yet collected by
 *              goc_prof_cpu_stop().
 * @walk:       GOC_PROF_WALK_FULL, or how a seccomp filter degraded the
 *              stack walks (GOC_PROF_WALK_PROBED, GOC_PROF_WALK_BOUNDED).
 */
struct goc_prof_cpu_stats {
    int64_t samples;
    int64_t dropped;
    int threads;
    int unprofiled;
    int running;
    int walk;
};

/**
 * goc_prof_cpu_start - start a CPU profile written to the file @path.
 * @path: file to create or truncate (borrowed).
 * @hz:   sampling rate; 0 means GOC_PROF_DEFAULT_HZ.
 *
 * Same as goc_prof_cpu_start_opts() with only @path and @hz set.
 */
GOC_API int goc_prof_cpu_start(const char *path, int hz);

/**
 * goc_prof_cpu_start_opts - start a CPU profile.
 * @opts: where to write, the rate and an optional duration (borrowed).
 *
 * Everything that can fail happens before this returns, and a failure
 * leaves the profiler stopped, so a later start can succeed, and the file
 * at @path as it was (none is left if there was none); a file that exists
 * is truncated only when the profile is written. Only one CPU
 * profile runs at a time. Threads that appear while it runs are given a
 * timer within about 50 ms.
 *
 * Return: 0 once sampling runs; -EBUSY if a profile is running (or has
 * finished by its duration and goc_prof_cpu_stop() has not collected it
 * yet); -EINVAL for a NULL @opts, a negative or too high @hz, a negative
 * duration, or a NULL @path with a negative @fd; -EBADF for an @fd that
 * is not open for writing; -errno from open() of @path; -errno from the
 * timer or signal setup; -ENOMEM.
 * Never blocks for long; callable from any thread.
 */
GOC_API int goc_prof_cpu_start_opts(const struct goc_prof_cpu_opts *opts);

/**
 * goc_prof_cpu_stop - stop the CPU profile and write it.
 *
 * Stops sampling (unless the duration already did), waits until every
 * sample taken is in the profile, writes the profile, and closes the file
 * if goc_prof_cpu_start() opened it. It returns only after all of this is
 * done. Afterwards a new profile may be started. A stop called while
 * another one is writing the profile waits until that one is done too
 * (as Go's StopCPUProfile does) and returns the same result.
 *
 * Return: 0; -ESRCH if no profile was started (nothing changes); the
 * first -errno of write() or close() if the profile could not be written
 * (the profiler is stopped all the same); -ENOMEM.
 * Blocks the caller (inside a blocking section when called from a
 * goroutine) while the profile is written; callable from any thread.
 */
GOC_API int goc_prof_cpu_stop(void);

/**
 * goc_prof_cpu_stop_on_shutdown - register goc_prof_cpu_stop() with the
 * shutdown manager @m, in a phase after every built-in one
 * (GOC_PHASE_RESOURCE - 1), so a shutdown flushes the profile last and it
 * covers the whole shutdown. The component reports the stop's error; with
 * no profile running it has nothing to do and succeeds.
 *
 * Return: as goc_shutdown_add().
 */
GOC_API int goc_prof_cpu_stop_on_shutdown(goc_shutdown *m);

/**
 * goc_prof_cpu_stats - read the counters of the current or last profile.
 * @st: filled in (borrowed).
 *
 * Return: 0; -EINVAL for a NULL @st. Never blocks.
 */
GOC_API int goc_prof_cpu_stats(struct goc_prof_cpu_stats *st);

/**
 * goc_prof_write_goroutine - write the stacks of all goroutines.
 * @fd:    where to write (borrowed, not closed).
 * @debug: 0: pprof protobuf, goroutines counted per distinct stack;
 *         1: the legacy text form ("goroutine profile: total N", then
 *         "count @ pc..." with one "#" line per frame);
 *         2: every goroutine separately, as goc_dump() writes.
 *
 * Goroutines keep running meanwhile (goc does not stop the world): a
 * goroutine running on another thread is shown by its entry function
 * only, and a stack may be a moment old.
 *
 * Return: the number of goroutines written; -EINVAL for a bad @debug or
 * @fd; -errno from write(); -ENOMEM.
 */
GOC_API int goc_prof_write_goroutine(int fd, int debug);

/**
 * goc_prof_write_goroutine_file - goc_prof_write_goroutine() into the
 * file @path, created or truncated, and closed.
 *
 * Return: as goc_prof_write_goroutine(), plus -errno from open() and
 * close().
 */
GOC_API int goc_prof_write_goroutine_file(const char *path, int debug);

/**
 * goc_prof_heap_available - whether heap profiling is possible: true when
 * the goc_heapprof library is linked into the program or preloaded.
 *
 * Return: 1 or 0.
 */
GOC_API int goc_prof_heap_available(void);

/**
 * goc_prof_heap_set_rate - set the mean number of bytes between sampled
 * allocations (Go's runtime.MemProfileRate).
 * @bytes: the mean; 1 records every allocation, 0 stops sampling.
 *
 * The initial rate is GOC_PROF_DEFAULT_HEAP_RATE, or the environment
 * variable GOC_HEAPPROF_RATE read at start-up. A thread picks up a new
 * rate at its next sample, except rate 1, which records every allocation
 * from the call on, as Go's does.
 *
 * Return: 0; -EINVAL for a negative @bytes; -ENOTSUP without goc_heapprof.
 */
GOC_API int goc_prof_heap_set_rate(int64_t bytes);

/**
 * goc_prof_heap_rate - the current heap sampling rate in bytes.
 *
 * Return: the rate (0 if off); -ENOTSUP without goc_heapprof.
 */
GOC_API int64_t goc_prof_heap_rate(void);

/**
 * goc_prof_write_heap - write the heap profile.
 * @fd:    where to write (borrowed, not closed).
 * @debug: 0: pprof protobuf with alloc_objects, alloc_space,
 *         inuse_objects and inuse_space (sampled values scaled up as Go
 *         does); 1: Go's legacy text form with the raw sampled counts.
 *
 * Unlike Go's, the data are current (C has no garbage collector whose
 * last cycle would have to be waited for). Sampled allocations that did
 * not fit goc_heapprof's tables are counted and reported in a comment.
 *
 * Return: the number of distinct allocation stacks written; -EINVAL for
 * a bad @debug or @fd; -ENOTSUP without goc_heapprof; -errno from
 * write(); -ENOMEM.
 */
GOC_API int goc_prof_write_heap(int fd, int debug);

/**
 * goc_prof_write_heap_file - goc_prof_write_heap() into the file @path,
 * created or truncated, and closed.
 *
 * Return: as goc_prof_write_heap(), plus -errno from open() and close().
 */
GOC_API int goc_prof_write_heap_file(const char *path, int debug);

/**
 * goc_prof_write_threads - write the threads goc made (its Ms, which run
 * goroutines; the watchdog; the blocking pool's workers; the CPU
 * profile's writer).
 * @fd:    where to write (borrowed, not closed).
 * @debug: 0: pprof protobuf of runtime/pprof's "threadcreate" profile,
 *         threads counted by the stack that created them; 1: its legacy
 *         text form; 2: one entry per thread: its kind and id, what it
 *         is doing (the goroutine an M runs, a blocking section or a
 *         blocking job and for how long, idle, looking for work, waiting
 *         for I/O), the CPU time it used, its age and its creator's stack.
 *
 * The threads keep running meanwhile: each entry is read as it was at
 * one moment, not all at the same moment.
 *
 * Return: the number of threads written; -EINVAL for a bad @fd or
 * @debug; -errno from write(); -ENOMEM; the runtime's start error (it
 * starts the runtime if needed).
 */
GOC_API int goc_prof_write_threads(int fd, int debug);

/**
 * goc_prof_write_threads_file - goc_prof_write_threads() into the file
 * @path, created or truncated, and closed.
 *
 * Return: as goc_prof_write_threads(), plus -errno from open() and
 * close().
 */
GOC_API int goc_prof_write_threads_file(const char *path, int debug);

/* ---- custom profiles (runtime/pprof's NewProfile) ----------------------- */

/**
 * A custom profile (opaque): a set of live keys, each with the stack of
 * the code that added it. Add a key where a resource is opened and remove
 * it where it is closed: the profile then names where every resource
 * still open came from, as Go programs track theirs.
 */
typedef struct goc_prof goc_prof;

/**
 * goc_prof_new - create the custom profile @name (copied).
 *
 * Return: 0; -EINVAL for a NULL @out, a NULL or empty @name, or one in
 * use: by a live custom profile, or by a predefined profile of
 * runtime/pprof (goroutine, heap, allocs, threadcreate, block, mutex);
 * -ENOMEM. Any thread.
 */
GOC_API int goc_prof_new(const char *name, goc_prof **out);

/**
 * goc_prof_free - forget the profile and its keys; its name is free
 * again. @p may be NULL. No other call on @p may be in progress or follow.
 */
GOC_API void goc_prof_free(goc_prof *p);

/** goc_prof_lookup - the live custom profile named @name, or NULL. */
GOC_API goc_prof *goc_prof_lookup(const char *name);

/** goc_prof_name - the profile's name (valid while it lives). */
GOC_API const char *goc_prof_name(goc_prof *p);

/**
 * goc_prof_add - add @key, with the stack of the caller (@skip = 0), or
 * of its caller's caller (@skip = 1), and so on.
 *
 * Return: 0; -EINVAL for NULL @p or @key, a negative @skip, or a @key
 * the profile already has (Go panics; here nothing changes); -ENOMEM.
 */
GOC_API int goc_prof_add(goc_prof *p, const void *key, int skip);

/**
 * goc_prof_remove - remove @key.
 *
 * Return: 0; -ENOENT if the profile does not have it (Go ignores that;
 * nothing changes); -EINVAL for NULL.
 */
GOC_API int goc_prof_remove(goc_prof *p, const void *key);

/** goc_prof_count - the number of keys in the profile. */
GOC_API int64_t goc_prof_count(goc_prof *p);

/**
 * goc_prof_write - write the profile: keys counted per distinct stack.
 * @fd:    where to write (borrowed, not closed).
 * @debug: 0: pprof protobuf (sample type "<name>", "count"); 1: the
 *         legacy text form ("<name> profile: total N", then "count @
 *         pc..." with one "#" line per frame, most keys first).
 *
 * Return: the number of keys written; -EINVAL for NULL @p, a bad @fd or
 * @debug; -errno from write(); -ENOMEM.
 */
GOC_API int goc_prof_write(goc_prof *p, int fd, int debug);

/**
 * goc_prof_write_file - goc_prof_write() into the file @path, created or
 * truncated, and closed.
 *
 * Return: as goc_prof_write(), plus -errno from open() and close().
 */
GOC_API int goc_prof_write_file(goc_prof *p, const char *path, int debug);

#ifdef __cplusplus
}
#endif

#endif /* GOC_PROF_H */
