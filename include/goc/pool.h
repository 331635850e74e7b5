/* SPDX-License-Identifier: MIT */
/*
 * goc/pool.h: two executors.
 *
 * goc_pool is a capacity-bounded goroutine pool in the manner of
 * panjf2000/ants: no task queue; a task goes straight to an idle worker
 * (the most recently used), or to a new worker while fewer than
 * `capacity` run, or its submitter waits (first come, first served) or is
 * refused. Idle workers expire.
 *
 * goc_workerpool is a worker pool with a task queue in the manner of
 * alitto/pond v2: every accepted task gets a task handle (a goc_future)
 * that is settled exactly once, whether the task ran, failed, or was
 * cancelled while queued. Workers never block on user channels.
 *
 * In both, a task runs under goc_try(): one that panics (goc_panic()) is
 * reported (to the pool's recovery handler, else the process-wide one,
 * else the log hook) and fails alone, its worker going on unless the
 * handler's policy says otherwise; a goc_pool task counts as failed, a
 * goc_workerpool task's handle is rejected with GOC_EPANIC.
 */
#ifndef GOC_POOL_H
#define GOC_POOL_H

#include "common.h"
#include "context.h"
#include "future.h"
#include "panic.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== goroutine pool (ants) ============================================ */

/** A capacity-bounded goroutine pool (opaque). */
typedef struct goc_pool goc_pool;

/** A goroutine pool task; a negative return counts as a failure. */
typedef int (*goc_pool_fn)(void *arg);

/** goc_pool option: submit never waits; GOC_EOVERLOAD when full. */
#define GOC_POOL_NONBLOCKING   1u
/** goc_pool option: idle workers never expire. */
#define GOC_POOL_DISABLE_PURGE 2u
/**
 * goc_pool option (ants' PreAlloc): start all @capacity workers with the
 * pool (and again at goc_pool_reboot(), as far as memory allows), so no
 * submit waits for a worker to be made; they never expire, and the
 * capacity is fixed (goc_pool_tune() gives -EPERM). Needs a capacity.
 */
#define GOC_POOL_PREALLOC      4u

/**
 * struct goc_pool_config - goc_pool settings; zero-fill for defaults.
 * @capacity:     most worker goroutines (running or idle), hence most
 *                tasks running at once; <= 0 is unlimited. Idle workers
 *                told to leave (by a release, a shrink) and not gone yet
 *                take no task and leave their place at once.
 * @expiry:       idle time (ns) after which a worker exits; 0 is 1 s;
 *                negative is -EINVAL.
 * @max_blocking: most submitters waiting at once (0: no limit); the next
 *                one gets GOC_EOVERLOAD.
 * @flags:        GOC_POOL_NONBLOCKING, GOC_POOL_DISABLE_PURGE,
 *                GOC_POOL_PREALLOC.
 */
struct goc_pool_config {
    int64_t capacity;
    int64_t expiry;
    int64_t max_blocking;
    unsigned flags;
    goc_pool_fn fn; /* for goc_pool_invoke() (ants' PoolWithFunc); or NULL */
};

/** struct goc_pool_stats - counters of a goc_pool (a snapshot). */
struct goc_pool_stats {
    int64_t submitted;        /* tasks accepted */
    int64_t completed;        /* tasks that returned */
    int64_t failed;           /* of those, with a negative return */
    int64_t refused;          /* submits refused with GOC_EOVERLOAD */
    int64_t workers;          /* worker goroutines alive (running + idle) */
    int64_t expired;          /* workers that exited for idleness */
    int64_t panicked;         /* tasks that panicked (counted in failed too) */
    int64_t workers_replaced; /* workers that left after a panic, by
                                 GOC_RECOVER_WORKER_EXIT */
};

/**
 * goc_pool_new - create a goroutine pool.
 * @cfg: settings (borrowed), NULL for the defaults.
 *
 * Return: 0; -EINVAL for a NULL @out, a negative expiry or max_blocking,
 * unknown flags, or GOC_POOL_PREALLOC without a capacity; -ENOMEM (also
 * when a preallocated worker cannot start: nothing is left behind). Any
 * thread.
 */
GOC_API int goc_pool_new(const struct goc_pool_config *cfg, goc_pool **out);

/**
 * goc_pool_free - release the pool, wait for every worker to exit, and
 * free it. Running tasks finish first. Submits blocked for a worker get
 * GOC_ECLOSED and waits in goc_pool_wait_idle() or
 * goc_pool_release_timeout() their result; the free waits until each has
 * left. Any other call (a getter, tune, reboot) must have returned, and
 * none may start once the free is under way. @p may be NULL. Blocks.
 */
GOC_API void goc_pool_free(goc_pool *p);

/**
 * goc_pool_set_recovery - report the panics of @p's tasks to @h (NULL:
 * back to the process-wide handler, goc_recovery_set_default()).
 *
 * The pool holds a reference until it is freed or set again. @h's policy
 * applies to the worker: GOC_RECOVER_CONTINUE takes the next task,
 * GOC_RECOVER_WORKER_EXIT leaves (a new worker starts for the next task),
 * GOC_RECOVER_RETHROW ends the process with the panic.
 *
 * Return: 0; -EINVAL for a NULL @p.
 */
GOC_API int goc_pool_set_recovery(goc_pool *p, goc_recovery *h);

/**
 * goc_pool_submit - run @fn(@arg) on a worker.
 * @ctx: cancellation of the wait for a worker; NULL waits forever.
 *
 * Hands the task to the most recently idle worker, else starts a worker
 * while fewer than capacity run, else waits: waiting submitters are
 * served first come, first served, each by the next worker to free up.
 * A task submitted from a task of the same pool while the pool is full
 * would wait for itself: it gets GOC_EOVERLOAD instead.
 *
 * Return: 0 once a worker has the task (it runs exactly once);
 * GOC_ECLOSED if the pool is released (also while waiting);
 * GOC_EOVERLOAD if full and nonblocking, or max_blocking submitters
 * already wait, or nested as above; -ECANCELED or -ETIMEDOUT if @ctx ended
 * first (at entry too; the task will not run); -EINVAL for NULL @p or
 * @fn; -ENOMEM (also while waiting, if the pool is left with no worker
 * and none can start: the task will not run). Goroutines and plain
 * threads.
 */
GOC_API int goc_pool_submit(goc_pool *p,
                            goc_pool_fn fn,
                            void *arg,
                            goc_ctx *ctx);

/**
 * goc_pool_tune - change the capacity at run time. Growing lets waiting
 * submitters in; shrinking never interrupts a task: surplus workers exit
 * as they finish. @cap <= 0 or an unlimited pool: nothing changes.
 *
 * Return: 0; -EINVAL for @cap <= 0 or NULL; -EPERM for an unlimited or a
 * preallocated pool; GOC_ECLOSED once released (until rebooted). Nothing
 * changes on an error.
 */
GOC_API int goc_pool_tune(goc_pool *p, int64_t cap);

/** goc_pool_running - tasks running now (a snapshot). */
GOC_API int64_t goc_pool_running(goc_pool *p);
/** goc_pool_free_slots - capacity minus running; -1 if unlimited. */
GOC_API int64_t goc_pool_free_slots(goc_pool *p);
/** goc_pool_waiting - submitters waiting for a worker now. */
GOC_API int64_t goc_pool_waiting(goc_pool *p);
/** goc_pool_cap - the capacity; -1 if unlimited. */
GOC_API int64_t goc_pool_cap(goc_pool *p);
/** goc_pool_is_closed - true once released (until rebooted). */
GOC_API bool goc_pool_is_closed(goc_pool *p);
/** goc_pool_stats - fill @st with the counters; -EINVAL for NULL. */
GOC_API int goc_pool_stats(goc_pool *p, struct goc_pool_stats *st);

/**
 * goc_pool_release - close the pool: waiting submitters wake with
 * GOC_ECLOSED, idle workers exit, running tasks run to the end. Does
 * not wait. Idempotent.
 *
 * Return: 0; GOC_ECLOSED if already released; -EINVAL for NULL.
 */
GOC_API int goc_pool_release(goc_pool *p);

/**
 * goc_pool_release_timeout - release, then wait up to @timeout ns for
 * every worker to exit.
 *
 * Return: 0; -ETIMEDOUT if workers remain (they still exit as their
 * tasks end); GOC_ECLOSED if already released; -EINVAL.
 */
GOC_API int goc_pool_release_timeout(goc_pool *p, int64_t timeout);

/**
 * goc_pool_reboot - reopen a released pool.
 *
 * Return: 0; -EINVAL for NULL. Rebooting an open pool changes nothing,
 * but that a GOC_POOL_PREALLOC one short of workers (some could not
 * start) starts the missing ones, as a reboot of a released one does.
 */
GOC_API int goc_pool_reboot(goc_pool *p);

/**
 * goc_pool_wait_idle - wait until no task runs and no submitter waits
 * (Go users' WaitGroup around ants).
 *
 * Return: 0; -ECANCELED or -ETIMEDOUT if @ctx ended first; -EINVAL.
 */
GOC_API int goc_pool_wait_idle(goc_pool *p, goc_ctx *ctx);

/**
 * goc_pool_invoke - goc_pool_submit(@p, cfg.fn, @arg, @ctx): the pool's
 * fixed function (ants' PoolWithFunc.Invoke).
 *
 * Return: as goc_pool_submit(); -EINVAL if the pool has no cfg.fn.
 */
GOC_API int goc_pool_invoke(goc_pool *p, void *arg, goc_ctx *ctx);

/** A set of goroutine pools sharing the load (ants' MultiPool). */
typedef struct goc_multipool goc_multipool;

/** How goc_multipool_submit() picks a pool. */
enum goc_lb {
    GOC_LB_ROUND_ROBIN = 0,
    GOC_LB_LEAST_RUNNING = 1,
};

/**
 * goc_multipool_new - @n pools, each made from @cfg.
 *
 * Return: 0; -EINVAL for @n <= 0, a bad @lb or a bad @cfg; -ENOMEM.
 */
GOC_API int goc_multipool_new(int n,
                              const struct goc_pool_config *cfg,
                              enum goc_lb lb,
                              goc_multipool **out);

/**
 * goc_multipool_free - close every pool, wait for the
 * goc_multipool_release_timeout() calls under way, then free every pool
 * (goc_pool_free(): blocked submits get GOC_ECLOSED). Other calls must
 * have returned. NULL is fine.
 */
GOC_API void goc_multipool_free(goc_multipool *m);

/**
 * goc_multipool_submit - submit to the pool the strategy picks. With
 * round robin, a GOC_EOVERLOAD is retried once on the pool running the
 * fewest tasks.
 *
 * Return: as goc_pool_submit().
 */
GOC_API int goc_multipool_submit(goc_multipool *m,
                                 goc_pool_fn fn,
                                 void *arg,
                                 goc_ctx *ctx);

/**
 * goc_multipool_pool - the @i-th pool (borrowed), or NULL for a bad @i.
 */
GOC_API goc_pool *goc_multipool_pool(goc_multipool *m, int i);

/** goc_multipool_running - tasks running in all pools (a snapshot). */
GOC_API int64_t goc_multipool_running(goc_multipool *m);
/** goc_multipool_waiting - submitters waiting in all pools. */
GOC_API int64_t goc_multipool_waiting(goc_multipool *m);

/**
 * goc_multipool_release_timeout - release every pool and wait up to
 * @timeout ns in all for their workers (INT64_MAX: no limit; <= 0 polls).
 *
 * Return: 0; -ETIMEDOUT; GOC_ECLOSED if already released; -EINVAL.
 */
GOC_API int goc_multipool_release_timeout(goc_multipool *m, int64_t timeout);

/* ==== worker pool with a task queue (pond) ============================== */

/** A worker pool with a task queue (opaque). */
typedef struct goc_workerpool goc_workerpool;

/** goc_workerpool_config.queue_size: accept only what a worker can start. */
#define GOC_WP_NO_QUEUE    (-1)
/** goc_workerpool option: submit never waits; GOC_EOVERLOAD when full. */
#define GOC_WP_NONBLOCKING 1u

/**
 * struct goc_workerpool_config - settings; zero-fill for defaults.
 * @max_workers: most tasks running at once; 0 is unlimited.
 * @queue_size:  0 unbounded; > 0 bounded; GOC_WP_NO_QUEUE: none.
 * @flags:       GOC_WP_NONBLOCKING.
 * @ctx:         pool context (borrowed; must outlive the pool): when it
 *               ends, the pool cancels as goc_workerpool_cancel() does.
 *               Tasks receive a child of it. NULL: background.
 * @on_discard:  called with a task's function and argument, and
 *               @discard_arg, for each accepted task settled as cancelled
 *               without running (the pool's cancel or context, its
 *               group's, or its handle cancelled while queued), once it
 *               is sure never to run: where an argument the task would
 *               have freed is freed. On the cancelling goroutine or the
 *               worker that found it, with no lock held; a panic in it is
 *               reported as a task's is. NULL: none.
 */
struct goc_workerpool_config {
    int64_t max_workers;
    int64_t queue_size;
    unsigned flags;
    goc_ctx *ctx;
    void (*on_discard)(goc_task_fn fn, void *arg, void *discard_arg);
    void *discard_arg;
};

/** struct goc_workerpool_stats - counters (a snapshot). */
struct goc_workerpool_stats {
    int64_t submitted; /* tasks accepted */
    int64_t refused;   /* submits not accepted: full, closed, out of
                          memory, ctx ended waiting for room */
    int64_t running;   /* tasks running now */
    int64_t waiting;   /* tasks queued now */
    int64_t succeeded; /* returned 0 */
    int64_t failed;    /* returned another negative code */
    int64_t canceled;  /* returned -ECANCELED, or cancelled queued */
    int64_t workers;   /* worker goroutines alive */
    int64_t wait_ns_total, wait_ns_max; /* queued to started */
    int64_t run_ns_total, run_ns_max;   /* started to returned */
    int64_t panicked;         /* tasks that panicked (counted in failed too) */
    int64_t workers_replaced; /* workers that left after a panic, by
                                 GOC_RECOVER_WORKER_EXIT */
};

/**
 * goc_workerpool_new - create a worker pool.
 *
 * Return: 0; -EINVAL for NULL @out, negative max_workers, a queue_size
 * below GOC_WP_NO_QUEUE or unknown flags; -ENOMEM. Any thread.
 */
GOC_API int goc_workerpool_new(const struct goc_workerpool_config *cfg,
                               goc_workerpool **out);

/**
 * goc_workerpool_free - stop the pool, let the queued tasks run, wait for
 * every worker to exit, and for the submits and waits under way (a
 * blocked submit gets GOC_ECLOSED), then free it. @p may be NULL. Blocks.
 * No other call on @p may start once this has begun.
 */
GOC_API void goc_workerpool_free(goc_workerpool *p);

/**
 * goc_workerpool_set_recovery - report the panics of @p's tasks to @h
 * (NULL: back to the process-wide handler), as goc_pool_set_recovery();
 * with GOC_RECOVER_WORKER_EXIT the worker is replaced by a fresh one.
 *
 * Return: 0; -EINVAL for a NULL @p.
 */
GOC_API int goc_workerpool_set_recovery(goc_workerpool *p, goc_recovery *h);

/**
 * goc_workerpool_submit - queue @fn(ctx, @arg, &value) and get its task
 * handle.
 * @free_value: destructor of the value the task produces, or NULL.
 * @task:       receives the handle (a future with one reference for the
 *              caller), or NULL for fire-and-forget.
 * @ctx:        cancellation of the wait for queue space; NULL: forever.
 *
 * The handle settles exactly once: with the task's return (0 fulfils;
 * -ECANCELED cancels; others reject), or -ECANCELED if the pool cancels
 * it before it ran. goc_future_cancel() on a queued task settles it and
 * it does not run; on a running one it cancels the ctx the task got. A
 * task whose ctx has ended before a worker takes it (a failed group) is
 * settled as cancelled without running.
 *
 * Return: 0 (accepted); GOC_ECLOSED after stop or cancel (also while
 * waiting: never accepted then); GOC_EOVERLOAD if full and nonblocking;
 * -ECANCELED or -ETIMEDOUT if @ctx ended first (at entry too); -EINVAL;
 * -ENOMEM. Without a queue, "full" means no worker free to start it: a
 * blocking submit waits for one.
 */
GOC_API int goc_workerpool_submit(goc_workerpool *p,
                                  goc_task_fn fn,
                                  void *arg,
                                  goc_value_free_fn free_value,
                                  goc_future **task,
                                  goc_ctx *ctx);

/**
 * goc_workerpool_try_submit - goc_workerpool_submit() that never waits.
 *
 * Return: as goc_workerpool_submit(), GOC_EOVERLOAD instead of waiting.
 */
GOC_API int goc_workerpool_try_submit(goc_workerpool *p,
                                      goc_task_fn fn,
                                      void *arg,
                                      goc_value_free_fn free_value,
                                      goc_future **task);

/**
 * goc_workerpool_stop - stop accepting tasks; every queued task still
 * runs. Does not wait. Idempotent.
 *
 * Return: 0; -EINVAL for NULL.
 */
GOC_API int goc_workerpool_stop(goc_workerpool *p);

/**
 * goc_workerpool_cancel - stop accepting tasks, settle every queued task
 * as cancelled without running it, and cancel the ctx of running tasks
 * (they finish when they notice). Does not wait. Idempotent.
 *
 * Return: the number of queued tasks cancelled by this call; -EINVAL.
 */
GOC_API int64_t goc_workerpool_cancel(goc_workerpool *p);

/**
 * goc_workerpool_stop_wait - stop, then wait until the queue is empty and
 * every worker has exited.
 *
 * Return: 0; -ECANCELED or -ETIMEDOUT if @ctx ended first (the pool stays
 * stopped and keeps draining); -EINVAL.
 */
GOC_API int goc_workerpool_stop_wait(goc_workerpool *p, goc_ctx *ctx);

/**
 * goc_workerpool_wait_idle - wait until nothing is queued or running,
 * without stopping.
 *
 * Return: 0; -ECANCELED or -ETIMEDOUT if @ctx ended first; -EINVAL.
 */
GOC_API int goc_workerpool_wait_idle(goc_workerpool *p, goc_ctx *ctx);

/**
 * goc_workerpool_resize - change max_workers (0 = unlimited). Growing
 * starts workers for queued tasks; shrinking lets workers finish their
 * task and exit.
 *
 * Return: 0; -EINVAL for negative @n or NULL; GOC_ECLOSED once stopped or
 * cancelled (nothing changes).
 */
GOC_API int goc_workerpool_resize(goc_workerpool *p, int64_t n);

/** goc_workerpool_stats - fill @st; -EINVAL for NULL. */
GOC_API int goc_workerpool_stats(goc_workerpool *p,
                                 struct goc_workerpool_stats *st);

/* ==== task group on a worker pool (pond's groups) ====================== */

/** A group of tasks submitted to one worker pool (opaque). */
typedef struct goc_wpgroup goc_wpgroup;

/**
 * goc_wpgroup_new - a task group on @p. Its context is a child of the
 * pool's; every group task receives a child of the group's context.
 *
 * Return: 0; -EINVAL; -ENOMEM; GOC_ECLOSED once @p is stopped or
 * cancelled (its submits would all be refused).
 */
GOC_API int goc_wpgroup_new(goc_workerpool *p, goc_wpgroup **out);

/**
 * goc_wpgroup_new_ctx - goc_wpgroup_new() under the caller's @ctx as
 * well (pond's NewGroupContext): when @ctx ends, the group fails with
 * its error (-ECANCELED or -ETIMEDOUT), as at a task's failure: its
 * context is cancelled, its queued tasks are settled as cancelled,
 * later submits get GOC_ECLOSED and goc_wpgroup_wait() returns that
 * error. A @ctx done already gives a group failed from the start.
 * @ctx: borrowed; must outlive the group. NULL: as goc_wpgroup_new().
 *
 * Return: as goc_wpgroup_new().
 */
GOC_API int goc_wpgroup_new_ctx(goc_workerpool *p,
                                goc_ctx *ctx,
                                goc_wpgroup **out);

/**
 * goc_wpgroup_free - wait until every task of the group is settled
 * (running ones finish), and for the goc_wpgroup_wait() calls under way
 * to return, then free the group and its task handles. No other call on
 * @g may start once this has begun. @g may be NULL. Blocks.
 */
GOC_API void goc_wpgroup_free(goc_wpgroup *g);

/**
 * goc_wpgroup_submit - goc_workerpool_submit() as part of the group. The
 * group keeps the handle (goc_wpgroup_task()).
 *
 * The first task that fails (a negative return other than -ECANCELED)
 * fails the group: its context is cancelled (running tasks see it), and
 * its tasks still queued are settled as cancelled without running.
 *
 * Return: 0; GOC_ECLOSED once the group failed (also while waiting for
 * queue space: never accepted then), or the pool is stopped; the other
 * errors of goc_workerpool_submit().
 */
GOC_API int goc_wpgroup_submit(goc_wpgroup *g,
                               goc_task_fn fn,
                               void *arg,
                               goc_value_free_fn free_value,
                               goc_ctx *ctx);

/**
 * goc_wpgroup_wait - wait until every task of the group is settled, or
 * the group fails. A task whose handle was cancelled is settled, though
 * its body may run on until it sees its context; goc_wpgroup_free()
 * waits for that too.
 *
 * Return: 0 when all are settled and none failed; the first failure (at
 * once: queued tasks are cancelled, running ones may still be finishing);
 * -ECANCELED or -ETIMEDOUT if @ctx ended first; -EINVAL.
 */
GOC_API int goc_wpgroup_wait(goc_wpgroup *g, goc_ctx *ctx);

/** goc_wpgroup_ctx - the group's context (owned by the group). */
GOC_API goc_ctx *goc_wpgroup_ctx(goc_wpgroup *g);

/** goc_wpgroup_len - tasks submitted to the group. */
GOC_API size_t goc_wpgroup_len(goc_wpgroup *g);

/**
 * goc_wpgroup_task - the handle of the @i-th task, in submission order
 * (borrowed; valid while the group lives), or NULL for a bad @i. Read
 * the results in submission order with goc_future_get().
 */
GOC_API goc_future *goc_wpgroup_task(goc_wpgroup *g, size_t i);

#ifdef __cplusplus
}
#endif

#endif /* GOC_POOL_H */
