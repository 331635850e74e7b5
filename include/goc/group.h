/* SPDX-License-Identifier: MIT */
/*
 * goc/group.h: a group of goroutines working on one job, in the manner
 * of golang.org/x/sync/errgroup (with conc's scoped-pool limit): the
 * first error cancels the group's context, wait returns that error.
 * Every goroutine started in a group is owned by it: goc_group_wait()
 * joins them all. A task runs under goc_try(): one that panics
 * (goc_panic()) is reported (goc_group_set_recovery()) and fails with
 * GOC_EPANIC like any other error; the other tasks go on.
 */
#ifndef GOC_GROUP_H
#define GOC_GROUP_H

#include "common.h"
#include "context.h"
#include "panic.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A task group (opaque). */
typedef struct goc_group goc_group;

/** A group task: 0 for success, a negative code for failure. */
typedef int (*goc_group_fn)(goc_ctx *ctx, void *arg);

/**
 * goc_group_new - create a group.
 * @parent: parent of the group's context (borrowed; must outlive the
 *          group); NULL: background.
 *
 * The group's context (goc_group_ctx()) is cancelled, with the first
 * error as its cause, when a task first fails or when goc_group_wait()
 * returns, whichever comes first.
 *
 * Return: 0; -EINVAL for NULL @out; -ENOMEM. Any thread.
 */
GOC_API int goc_group_new(goc_ctx *parent, goc_group **out);

/**
 * goc_group_free - wait for every task, then free the group. @g may be
 * NULL. Blocks while tasks run.
 */
GOC_API void goc_group_free(goc_group *g);

/** goc_group_ctx - the group's context (owned by the group). */
GOC_API goc_ctx *goc_group_ctx(goc_group *g);

/**
 * goc_group_set_limit - at most @n tasks run at once; @n < 0: no limit;
 * @n = 0: no task may start (go waits, try_go refuses).
 *
 * Return: 0; GOC_EMISUSE while tasks are active (errgroup panics; here
 * nothing changes); -EINVAL for NULL.
 */
GOC_API int goc_group_set_limit(goc_group *g, int64_t n);

/**
 * goc_group_set_recovery - report the panics of @g's tasks to @h (NULL:
 * back to the process-wide handler, goc_recovery_set_default()). The
 * group holds a reference until it is freed or set again. A task that
 * panics fails with GOC_EPANIC (the group's first error, if first) unless
 * @h's policy is GOC_RECOVER_RETHROW, which ends the process.
 *
 * Return: 0; -EINVAL for a NULL @g.
 */
GOC_API int goc_group_set_recovery(goc_group *g, goc_recovery *h);

/**
 * goc_group_go - run @fn(group ctx, @arg) in a new goroutine of the group,
 * waiting first for a free slot if a limit is set.
 * @ctx: cancellation of that wait; NULL: forever.
 *
 * Return: 0 (the task will run); -ECANCELED or -ETIMEDOUT if @ctx ended
 * first (at entry too; the task does not run); -EINVAL; -ENOMEM.
 */
GOC_API int goc_group_go(goc_group *g,
                         goc_group_fn fn,
                         void *arg,
                         goc_ctx *ctx);

/**
 * goc_group_try_go - goc_group_go() that never waits.
 *
 * Return: 0; -EAGAIN at the limit (the task does not run); -EINVAL;
 * -ENOMEM.
 */
GOC_API int goc_group_try_go(goc_group *g, goc_group_fn fn, void *arg);

/**
 * goc_group_wait - wait for every task of the group, then cancel the
 * group's context.
 * @ctx: cancellation of the wait; NULL: forever.
 *
 * Return: the first task error, or 0; -ECANCELED or -ETIMEDOUT if @ctx
 * ended before the tasks did (nothing is cancelled then); -EINVAL.
 */
GOC_API int goc_group_wait(goc_group *g, goc_ctx *ctx);

/** goc_group_failed - how many tasks have failed so far. */
GOC_API int64_t goc_group_failed(goc_group *g);

#ifdef __cplusplus
}
#endif

#endif /* GOC_GROUP_H */
