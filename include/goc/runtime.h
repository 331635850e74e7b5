/* SPDX-License-Identifier: MIT */
/*
 * goc/runtime.h: goroutines and the scheduler.
 *
 * Goroutines run on an M:N work-stealing scheduler: one P (processor) per
 * usable CPU, each with its own run queue, served by OS threads. A goroutine
 * is a function with its own stack; it runs until it returns, and it gives
 * its thread to other goroutines whenever it blocks in a goc call.
 *
 * The runtime starts itself on first use: goc_go() from a plain thread, or
 * goc_run(), or any blocking goc call. Once started it lives for the rest of
 * the process; its idle threads sleep without using CPU.
 */
#ifndef GOC_RUNTIME_H
#define GOC_RUNTIME_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A goroutine's body. @arg is the pointer given to goc_go(). */
typedef void (*goc_fn)(void *arg);

/** The main goroutine's body for goc_run(); its result is goc_run()'s. */
typedef int (*goc_main_fn)(void *arg);

/** Smallest stack goc_go_ex() accepts, in bytes. */
#define GOC_STACK_MIN            (16 * 1024)
/** Largest stack goc_go_ex() accepts, in bytes. */
#define GOC_STACK_MAX            (1024 * 1024 * 1024)
/** Default stack reservation (virtual; only touched pages cost memory). */
#define GOC_STACK_DEFAULT        (256 * 1024)
/** Most Ps goc_init() and GOC_MAXPROCS accept. */
#define GOC_MAXPROCS_MAX         1024
/** Most blocking-pool threads GOC_BLOCKING_THREADS accepts. */
#define GOC_BLOCKING_THREADS_MAX 65536

/**
 * struct goc_config - runtime settings; zero-fill a field for its default.
 * @max_procs:  number of Ps, i.e. goroutines running in parallel, at most
 *              GOC_MAXPROCS_MAX. 0: the GOC_MAXPROCS environment variable
 *              (digits only, 1 to GOC_MAXPROCS_MAX), else the CPUs this
 *              process may use (affinity mask and cgroup CPU quota).
 * @stack_size: default goroutine stack reservation in bytes, rounded up to a
 *              power of two. 0: GOC_STACK_SIZE (bytes, or with a k, m or g
 *              suffix; GOC_STACK_MIN to GOC_STACK_MAX), else
 *              GOC_STACK_DEFAULT.
 *
 * An environment variable whose value is malformed or out of range is
 * reported once through the log (see goc_set_log_hook()) and the default
 * is used instead.
 */
struct goc_config {
    int max_procs;
    size_t stack_size;
    uint64_t reserved[6];
};

/**
 * goc_init - start the runtime with explicit settings.
 * @cfg: settings (borrowed), or NULL for all defaults.
 *
 * Optional: the runtime starts itself with the defaults on first use. Call
 * this before any other goc call to choose the settings.
 *
 * Goroutines run with the signal mask of the thread that starts the
 * runtime (block the signals a thread of yours waits for before that),
 * less those goc needs: SIGSEGV, SIGBUS, SIGFPE and SIGILL, for its fault
 * reports, and SIGPROF, for its CPU profiler. Its own threads (sysmon,
 * the blocking pool) block every other signal.
 *
 * Return: 0 on success; -EBUSY if the runtime is already running; -EINVAL
 * for a max_procs outside [0, GOC_MAXPROCS_MAX] or a stack size outside
 * [GOC_STACK_MIN, GOC_STACK_MAX] (nothing started); -ENOMEM or -EAGAIN if
 * memory or a thread could not be obtained, now or by an earlier start,
 * which is not retried.
 * Call from a plain thread.
 */
GOC_API int goc_init(const struct goc_config *cfg);

/**
 * goc_run - run @fn as the main goroutine and wait for it to return.
 * @fn:  the main goroutine's body.
 * @arg: passed to @fn.
 *
 * The calling thread blocks until @fn returns; goroutines that @fn started
 * and did not join keep running in the background (join them, as every
 * example does).
 *
 * Return: @fn's result; -EINVAL if @fn is NULL; -EDEADLK if called from a
 * goroutine; or the error of starting the runtime (see goc_init()).
 * Call from a plain thread.
 */
GOC_API int goc_run(goc_main_fn fn, void *arg);

/**
 * struct goc_go_opts - options for goc_go_ex(); zero-fill for defaults.
 * @stack_size: stack reservation in bytes, rounded up to a power of two;
 *              0 for the runtime's default.
 * @name:       a name shown in dumps and crash reports (copied, at most
 *              31 bytes kept); NULL for none.
 */
struct goc_go_opts {
    size_t stack_size;
    const char *name;
};

/**
 * goc_go - start a goroutine running @fn(@arg).
 * @fn:  the goroutine's body; it ends when @fn returns.
 * @arg: passed to @fn (borrowed: it must stay valid until @fn is done
 *       with it).
 *
 * The new goroutine is runnable at once and runs next on this P. When this
 * P's run queue is half full (128), the caller yields to the goroutines it
 * started, so
 * a spawning loop cannot pile up more runnable goroutines than the
 * scheduler can drain.
 *
 * Return: 0 on success; -EINVAL if @fn is NULL; -ENOMEM if no stack could be
 * mapped (nothing is started then).
 * Callable from goroutines and from plain threads; never blocks.
 */
GOC_API int goc_go(goc_fn fn, void *arg);

/**
 * goc_go_ex - goc_go() with options.
 * @fn:   the goroutine's body.
 * @arg:  passed to @fn.
 * @opts: options (borrowed), or NULL for defaults.
 *
 * Return: as goc_go(); also -EINVAL if @opts->stack_size is non-zero and
 * outside [GOC_STACK_MIN, GOC_STACK_MAX].
 */
GOC_API int goc_go_ex(goc_fn fn, void *arg, const struct goc_go_opts *opts);

/**
 * goc_yield - let other runnable goroutines run, then continue.
 *
 * Like Go's runtime.Gosched(). From a plain thread it calls sched_yield().
 */
GOC_API void goc_yield(void);

/**
 * goc_id - the calling goroutine's id: unique and positive, never reused.
 * Each P takes ids in blocks of 16, so they increase in creation order
 * among the goroutines one P creates, not across Ps.
 *
 * Return: the id, or 0 when called from a plain thread.
 */
GOC_API int64_t goc_id(void);

/**
 * goc_name - the calling goroutine's name.
 *
 * Return: the name given to goc_go_ex() ("main" for goc_run()'s
 * goroutine), "" if none, or NULL when called from a plain thread.
 */
GOC_API const char *goc_name(void);

/**
 * goc_maxprocs - the number of Ps (goroutines that can run in parallel).
 *
 * Starts the runtime if it is not running.
 * Return: the number of Ps (>= 1), or a negative error if it cannot start.
 */
GOC_API int goc_maxprocs(void);

/**
 * goc_num_goroutine - the number of goroutines that exist now (runnable,
 * running or blocked), like Go's runtime.NumGoroutine().
 */
GOC_API int64_t goc_num_goroutine(void);

/**
 * goc_p_index - the index of the P running the calling goroutine.
 *
 * Return: 0 .. goc_maxprocs() - 1, or -1 from a plain thread. The value can
 * change at every blocking call: goroutines move between Ps.
 */
GOC_API int goc_p_index(void);

/**
 * goc_pin - pin the calling goroutine to its current OS thread.
 *
 * Until goc_unpin(), the goroutine runs only on this thread, and the thread
 * runs no other goroutine (Go's runtime.LockOSThread). Use it for code that
 * keeps thread-local state across blocking calls. Calls nest: the goroutine
 * stays pinned until as many goc_unpin() calls as goc_pin() calls.
 *
 * Return: 0; -EPERM from a plain thread (it is its own thread already);
 * -EBUSY inside a blocking section (goc_blocking_enter()).
 */
GOC_API int goc_pin(void);

/**
 * goc_unpin - undo one goc_pin().
 *
 * Return: 0; -EPERM from a plain thread; GOC_EMISUSE if the goroutine is
 * not pinned; -EBUSY inside a blocking section (nothing changes).
 */
GOC_API int goc_unpin(void);

/**
 * goc_blocking - run blocking code off the scheduler's threads.
 * @fn:  the blocking work (file I/O, DNS, a blocking library call...).
 * @arg: passed to @fn (borrowed until @fn returns, even if this call
 *       returned early on @ctx).
 * @ctx: cancellation of the wait; NULL waits for @fn.
 *
 * @fn runs on a thread of a bounded pool (GOC_BLOCKING_THREADS, 1 to
 * GOC_BLOCKING_THREADS_MAX, default 512; idle threads exit after 10 s) while
 * the calling goroutine parks, so its P keeps running other goroutines. A plain
 * thread calling it blocks. If @ctx ends first the call returns at once. An
 * @fn still queued for a thread (all GOC_BLOCKING_THREADS busy) is taken off
 * the queue and never runs; one already running cannot be interrupted, so it
 * runs to the end on the pool and its result is dropped and counted
 * (goc_blocking_abandoned()).
 *
 * Return: @fn's result; -ECANCELED or -ETIMEDOUT if @ctx ended first (at
 * entry @fn is not run at all); -EINVAL if @fn is NULL; -ENOMEM, or
 * -EAGAIN if no pool thread is free for @fn and none could be started
 * (@fn was not run; below the pool's limit a job never waits for a busy
 * thread, which might be waiting for it).
 */
GOC_API int goc_blocking(int (*fn)(void *arg), void *arg, goc_ctx *ctx);

/**
 * goc_blocking_enter - mark the start of a short blocking section run in
 * place (a blocking system call, a library call that may wait).
 *
 * If the section lasts more than about 20 us, the watchdog hands this
 * goroutine's P, with the goroutines queued on it, to another thread, so
 * they keep running. Between enter and exit call no goc function that
 * can block or start goroutines: only the blocking code itself. Calls
 * that wake goroutines without blocking (a semaphore release, a mutex
 * unlock, a cancel) are fine: those go to the global queue. For long or
 * unbounded blocking, goc_blocking() is the better tool.
 *
 * A pinned goroutine (goc_pin()) keeps its P and its thread: the section
 * is only marked, and goc_unpin() waits for its exit (-EBUSY). A
 * goroutine that returns inside a section has it closed as it ends.
 *
 * Return: 0; -EINVAL if a section is already open. From a plain thread it
 * does nothing and returns 0.
 */
GOC_API int goc_blocking_enter(void);

/**
 * goc_blocking_exit - end the section goc_blocking_enter() opened. If the
 * P was handed away meanwhile, the goroutine waits for a free P (parking
 * if there is none).
 *
 * Return: 0; -EINVAL without a matching enter. From a plain thread it
 * does nothing and returns 0.
 */
GOC_API int goc_blocking_exit(void);

/**
 * goc_log_fn - receives the runtime's reports, such as a goroutine that
 * kept its P for over 10 ms while others waited (reported once, when it
 * finally blocks or yields, with the whole duration). It runs on a
 * scheduler thread: it must not block, yield nor call blocking goc
 * functions; non-blocking ones (goc_chan_try_send() to a logging
 * goroutine, goc_go()) are fine, on any channel.
 */
typedef void (*goc_log_fn)(const char *message, void *arg);

/**
 * goc_set_log_hook - route the runtime's reports to @fn(@msg, @arg)
 * instead of standard error; NULL restores standard error.
 * @fn:  the hook, or NULL.
 * @arg: passed to @fn with every report.
 *
 * Safe to call at any time, from any thread, and from the hook itself.
 * Each report sees one call's @fn and @arg together, never one's @fn
 * with another's @arg. A report already under way when this returns may
 * still go to the previous @fn with the previous @arg: keep that @arg
 * valid until such reports are done (a hook that only reads static data
 * needs nothing).
 */
GOC_API void goc_set_log_hook(goc_log_fn fn, void *arg);

/**
 * goc_blocking_abandoned - how many goc_blocking() results were dropped
 * because their caller's context ended first.
 */
GOC_API int64_t goc_blocking_abandoned(void);

#ifdef __cplusplus
}
#endif

#endif /* GOC_RUNTIME_H */
