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
 */
#ifndef GOC_POOL_H
#define GOC_POOL_H

#include "common.h"
#include "context.h"
#include "future.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

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
 */
struct goc_workerpool_config {
    int64_t max_workers;
    int64_t queue_size;
    unsigned flags;
    goc_ctx *ctx;
};

/** struct goc_workerpool_stats - counters (a snapshot). */
struct goc_workerpool_stats {
    int64_t submitted; /* tasks accepted */
    int64_t refused;   /* submits refused (full, closed) */
    int64_t running;   /* tasks running now */
    int64_t waiting;   /* tasks queued now */
    int64_t succeeded; /* returned 0 */
    int64_t failed;    /* returned another negative code */
    int64_t canceled;  /* returned -ECANCELED, or cancelled queued */
    int64_t workers;   /* worker goroutines alive */
    int64_t wait_ns_total, wait_ns_max; /* queued to started */
    int64_t run_ns_total, run_ns_max;   /* started to returned */
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
 * every worker to exit, and free it. @p may be NULL. Blocks.
 */
GOC_API void goc_workerpool_free(goc_workerpool *p);

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
 * it does not run; on a running one it cancels the ctx the task got.
 *
 * Return: 0 (accepted); GOC_ECLOSED after stop or cancel (also while
 * waiting: never accepted then); GOC_EOVERLOAD if full and nonblocking
 * (or no queue and no free worker); -ECANCELED or -ETIMEDOUT if @ctx
 * ended first (at entry too); -EINVAL; -ENOMEM.
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
 * Return: 0; -EINVAL for negative @n or NULL.
 */
GOC_API int goc_workerpool_resize(goc_workerpool *p, int64_t n);

/** goc_workerpool_stats - fill @st; -EINVAL for NULL. */
GOC_API int goc_workerpool_stats(goc_workerpool *p,
                                 struct goc_workerpool_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* GOC_POOL_H */
