/* SPDX-License-Identifier: MIT */
/*
 * goc/group.h: a group of goroutines working on one job, in the manner
 * of golang.org/x/sync/errgroup (with conc's scoped-pool limit): the
 * first error cancels the group's context, wait returns that error.
 * Every goroutine started in a group is owned by it: goc_group_wait()
 * joins them all. A task runs under goc_try(): one that panics
 * (goc_panic()) is reported (goc_group_set_recovery()) and fails with
 * GOC_EPANIC like any other error; the other tasks go on.
 *
 * Options give conc's pools: every failure kept and joined
 * (GOC_GROUP_ALL_ERRORS, conc's ErrorPool), failures that do not cancel
 * the rest (GOC_GROUP_NO_CANCEL_ON_ERROR), and the first panic raised
 * again in the waiter (GOC_GROUP_PROPAGATE_PANIC, conc's Wait).
 * goc_group_wait_err() gives the failures as error values, a task's own
 * (goc_group_go_err()) or one made from its code or its panic.
 */
#ifndef GOC_GROUP_H
#define GOC_GROUP_H

#include "common.h"
#include "context.h"
#include "errors.h"
#include "panic.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A task group (opaque). */
typedef struct goc_group goc_group;

/** A group task: 0 for success, a negative code for failure. */
typedef int (*goc_group_fn)(goc_ctx *ctx, void *arg);

/**
 * A group task that fails with an error value: NULL for success, else an
 * error whose reference the group takes over. Its code (goc_error_code())
 * is the task's failure code; a code that is not negative counts as
 * -EINVAL.
 */
typedef goc_error *(*goc_group_err_fn)(goc_ctx *ctx, void *arg);

/** Options of goc_group_set_options(); none is set by default. */
enum {
    /** Keep every failure: goc_group_wait_err() joins them all, in the
     *  order they failed (conc's ErrorPool). Default: the first only. */
    GOC_GROUP_ALL_ERRORS = 1u << 0,
    /** A failure does not cancel the group's context (the other tasks
     *  run on); goc_group_wait() still cancels it when it returns. */
    GOC_GROUP_NO_CANCEL_ON_ERROR = 1u << 1,
    /** The first wait that sees every task done raises the first task
     *  panic again in the waiter, message and backtrace whole (conc's
     *  Wait); later waits return as without the option (the first
     *  failure). Default: errgroup's rule, a panic is a failure like any
     *  other. */
    GOC_GROUP_PROPAGATE_PANIC = 1u << 2,
};

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
 * goc_group_free - wait for every task, and for the calls blocked on the
 * group (in goc_group_wait*() or waiting for a slot in goc_group_go*()) to
 * return, then free the group. @g may be NULL. Blocks while tasks run. No
 * call may start on @g once it has begun.
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
 * goc_group_set_options - set the group's options (GOC_GROUP_*, or'ed;
 * they replace the ones set before).
 *
 * Return: 0; GOC_EMISUSE while tasks are active (nothing changes);
 * -EINVAL for unknown bits or NULL.
 */
GOC_API int goc_group_set_options(goc_group *g, unsigned opts);

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
 * goc_group_go_err - goc_group_go() for a task that fails with an error
 * value, which goc_group_wait_err() hands back.
 */
GOC_API int goc_group_go_err(goc_group *g,
                             goc_group_err_fn fn,
                             void *arg,
                             goc_ctx *ctx);

/** goc_group_try_go_err - goc_group_try_go() for an error-value task. */
GOC_API int goc_group_try_go_err(goc_group *g, goc_group_err_fn fn, void *arg);

/**
 * goc_group_wait - wait for every task of the group, then cancel the
 * group's context.
 * @ctx: cancellation of the wait; NULL: forever.
 *
 * Return: the first task error, or 0; -ECANCELED or -ETIMEDOUT if @ctx
 * ended before the tasks did (nothing is cancelled then); -EINVAL.
 */
GOC_API int goc_group_wait(goc_group *g, goc_ctx *ctx);

/**
 * goc_group_wait_err - goc_group_wait() that also gives the failures.
 * @err: set to NULL, or, once every task is done and some failed, to a
 *       new reference (release it): the first failure's error, or with
 *       GOC_GROUP_ALL_ERRORS a join of every failure in the order they
 *       happened. A task's error is its own (goc_group_go_err()), or one
 *       made from its code, or a panic's (goc_panic_error(): code
 *       GOC_EPANIC, the panic from goc_error_panic()). Failures that could
 *       not be kept for want of memory are counted in the join's message;
 *       if none could be, the error has the first failure's code and a
 *       message that says so.
 *
 * Return: as goc_group_wait(); -EINVAL for a NULL @err.
 */
GOC_API int goc_group_wait_err(goc_group *g, goc_ctx *ctx, goc_error **err);

/**
 * goc_group_reset - make a finished group ready for another round, as a
 * conc pool is after Wait: failures forgotten, and a new context (child
 * of the same parent) in place of the old one, which is cancelled and
 * freed: goc_group_ctx() gives the new one. Limit, options and recovery
 * handler stay.
 *
 * Return: 0; GOC_EMISUSE while tasks are active or a wait has not yet
 * returned (every waiter of a round must be done with it first: one
 * woken by the round's end may not have run yet; nothing changes);
 * -EINVAL for NULL; -ENOMEM.
 */
GOC_API int goc_group_reset(goc_group *g);

/** goc_group_failed - how many tasks have failed so far. */
GOC_API int64_t goc_group_failed(goc_group *g);

#ifdef __cplusplus
}
#endif

#endif /* GOC_GROUP_H */
