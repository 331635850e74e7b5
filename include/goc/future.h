/* SPDX-License-Identifier: MIT */
/*
 * goc/future.h: futures (set-once results), the JavaScript-style
 * combinators all / all_settled / race / any, continuations, and running
 * a function with a timeout.
 *
 * A future starts PENDING and is settled exactly once: FULFILLED with a
 * value (status 0), REJECTED with a negative status, or CANCELED (status
 * -ECANCELED). The status is the outcome's error code: a task, then-
 * function or run-with-timeout function that panics (goc_panic()) runs
 * under goc_try(), is reported through the log hook and rejects its
 * future with GOC_EPANIC (and no value). The value is
 * owned by the future from the moment it is settled and destroyed with
 * the future's value destructor when the last reference goes; readers
 * borrow it. Futures are reference-counted and safe to share between
 * goroutines and plain threads.
 */
#ifndef GOC_FUTURE_H
#define GOC_FUTURE_H

#include "common.h"
#include "context.h"
#include "panic.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A set-once result (opaque, reference-counted). */
typedef struct goc_future goc_future;

/** Frees a value a future owns; NULL values are never passed. */
typedef void (*goc_value_free_fn)(void *value);

/**
 * goc_task_fn - a unit of work run by a pool, a future or a group.
 * @ctx:    cancelled when the work is no longer wanted; poll it or pass it
 *          to blocking calls.
 * @arg:    the caller's argument.
 * @result: where the work may store a value (starts NULL); ownership
 *          passes to the future or task that runs it.
 *
 * Return: 0 for success, a negative code for failure (-ECANCELED means
 * "cancelled").
 */
typedef int (*goc_task_fn)(goc_ctx *ctx, void *arg, void **result);

/** The states of a future. */
enum goc_future_state {
    GOC_FUTURE_PENDING = 0,
    GOC_FUTURE_FULFILLED = 1,
    GOC_FUTURE_REJECTED = 2,
    GOC_FUTURE_CANCELED = 3,
};

/**
 * goc_future_new - create a pending future.
 * @free_value: destructor for the value it will own, or NULL.
 * @out:        receives the future with one reference for the caller.
 *
 * Return: 0; -EINVAL for a NULL @out; -ENOMEM. Any thread.
 */
GOC_API int goc_future_new(goc_value_free_fn free_value, goc_future **out);

/** goc_future_retain - take another reference; returns @f. */
GOC_API goc_future *goc_future_retain(goc_future *f);

/**
 * goc_future_release - drop a reference; the last one destroys the value
 * (if any) and frees the future. @f may be NULL. A pending future that
 * loses its last reference can never be settled: if callbacks wait on
 * it (goc_future_on_settle(), combinators, then), it is first settled as
 * cancelled so they run; then it is freed.
 */
GOC_API void goc_future_release(goc_future *f);

/**
 * goc_future_complete - settle @f if it is still pending.
 * @f:      the future; the caller must hold a reference for the call.
 * @status: 0 fulfils, -ECANCELED cancels, any other negative code rejects.
 * @value:  the value (consumed only if this call wins; may be NULL). A
 *          rejection may carry a value too (detail for the error).
 *
 * Waiters wake, then settle callbacks run on this thread, in the order
 * they were added, with no lock held.
 *
 * Return: 1 if this call settled @f; 0 if it was already settled (nothing
 * changes and @value stays with the caller: a double completion is seen,
 * not hidden); -EINVAL for a NULL @f or a positive @status.
 */
GOC_API int goc_future_complete(goc_future *f, int status, void *value);

/**
 * goc_future_get - wait until @f is settled and read its outcome.
 * @status: receives the outcome: 0, -ECANCELED or the rejection code.
 * @value:  receives the value, borrowed from @f (may be NULL).
 * @ctx:    cancellation of the wait; NULL waits forever.
 *
 * An outcome that is already there is returned even if @ctx is done: a
 * settled future never reads as a timeout.
 *
 * Return: 0 when settled (see *@status); -ECANCELED or -ETIMEDOUT if @ctx
 * ended first (@f is unaffected); -EINVAL for a NULL @f or @status.
 * Blocks; goroutines park, plain threads block.
 */
GOC_API int goc_future_get(goc_future *f,
                           int *status,
                           void **value,
                           goc_ctx *ctx);

/**
 * goc_future_get_timeout - goc_future_get() waiting at most @timeout ns;
 * @timeout <= 0 polls.
 *
 * Return: as goc_future_get(); -ETIMEDOUT if still pending.
 */
GOC_API int goc_future_get_timeout(goc_future *f,
                                   int *status,
                                   void **value,
                                   int64_t timeout);

/**
 * goc_future_try_get - the outcome if settled; never blocks.
 *
 * Return: 0 (outcome in *@status, *@value); -EAGAIN if pending; -EINVAL.
 */
GOC_API int goc_future_try_get(goc_future *f, int *status, void **value);

/** goc_future_is_done - true once @f is settled. Never blocks. */
GOC_API bool goc_future_is_done(goc_future *f);

/** goc_future_state - @f's state now (a snapshot); PENDING for NULL. */
GOC_API enum goc_future_state goc_future_state(goc_future *f);

/**
 * goc_future_panic - the panic that rejected @f, when its task (run by
 * goc_future_async(), goc_run_timeout(), a worker pool or a singleflight
 * group, whose every caller has it) panicked: its
 * message, code, goroutine and backtrace (goc/panic.h). @f is rejected
 * with GOC_EPANIC then. NULL for any other outcome, while pending, and
 * for NULL. Borrowed: valid while @f lives.
 */
GOC_API const goc_panic_info *goc_future_panic(goc_future *f);

/** Called once when a future settles; see goc_future_on_settle(). */
typedef void (*goc_future_cb)(goc_future *f, void *arg);

/**
 * goc_future_on_settle - run @cb(@f, @arg) exactly once, when @f settles.
 *
 * If @f is already settled @cb runs now, on this thread; otherwise on the
 * thread that settles it, after waiters are woken. Never under a lock, so
 * @cb may call back into @f. @cb must not block for long: it delays the
 * settler.
 *
 * Return: 0; -EINVAL for NULL @f or @cb; -ENOMEM (@cb will not run).
 */
GOC_API int goc_future_on_settle(goc_future *f, goc_future_cb cb, void *arg);

/**
 * goc_future_cancel - settle @f as CANCELED if it is pending, and cancel
 * the context its producer runs under (goc_future_async(), pools).
 *
 * Return: 1 if this call settled @f, 0 if it was already settled;
 * -EINVAL for NULL. Never blocks.
 */
GOC_API int goc_future_cancel(goc_future *f);

/**
 * goc_future_async - run @fn(ctx, @arg, &value) in a new goroutine and
 * return a future for its outcome.
 * @free_value: destructor for the value @fn produces, or NULL.
 * @ctx:        parent of the context @fn receives (NULL: background).
 *              A heap context is kept alive by its child; a local one
 *              (goc_ctx_init_*) must outlive @fn.
 *
 * Every exit of @fn settles the future: 0 fulfils it with the value, a
 * negative code rejects it (-ECANCELED cancels it). goc_future_cancel()
 * cancels @fn's context; a value @fn produces after that is destroyed.
 * @fn's context ends as the future settles, whichever way.
 *
 * Return: 0; -EINVAL for NULL @fn or @out; -ENOMEM (nothing started);
 * the ctx error if @ctx is already done (nothing started).
 */
GOC_API int goc_future_async(goc_task_fn fn,
                             void *arg,
                             goc_value_free_fn free_value,
                             goc_ctx *ctx,
                             goc_future **out);

/**
 * goc_future_then_fn - a continuation: maps a fulfilled value (borrowed)
 * to a new outcome, like goc_task_fn.
 */
typedef int (*goc_future_then_fn)(const void *value, void *arg, void **result);

/**
 * goc_future_then - a future for @fn applied to @f's value.
 * @free_value: destructor for @fn's result.
 *
 * When @f fulfils, @fn runs in a new goroutine; its return settles the
 * new future. A rejection or cancellation of @f passes through unchanged
 * (@fn does not run). Cancelling the new future does not cancel @f.
 *
 * Return: 0; -EINVAL; -ENOMEM.
 */
GOC_API int goc_future_then(goc_future *f,
                            goc_future_then_fn fn,
                            void *arg,
                            goc_value_free_fn free_value,
                            goc_future **out);

/**
 * Combinator flag: once the result is known, cancel the other inputs. To
 * be able to, the result holds a reference on each input from the start,
 * so a pending input whose other owners release it is not abandoned (see
 * goc_future_release()): cancel it, or let its producer settle it.
 */
#define GOC_FUTURE_CANCEL_REST 1u

/**
 * goc_future_all - fulfils once every input fulfils, rejects as soon as
 * one rejects or is cancelled (with that input's status; the first in
 * input order among those already settled at call time).
 * @fs: @n inputs (borrowed; the result holds a reference on each).
 * @flags: 0 or GOC_FUTURE_CANCEL_REST.
 *
 * The value is a `void **` array of the @n values in input order,
 * borrowed from the inputs and valid while the result lives. @n = 0
 * fulfils at once with an empty array.
 *
 * Return: 0; -EINVAL; -ENOMEM.
 */
GOC_API int goc_future_all(goc_future *const *fs,
                           size_t n,
                           unsigned flags,
                           goc_future **out);

/** One input's outcome in goc_future_all_settled()'s value. */
struct goc_settled {
    int status;
    void *value; /* borrowed from the input */
};

/**
 * goc_future_all_settled - always fulfils, once every input is settled,
 * with a `struct goc_settled *` array of @n outcomes in input order. @n = 0
 * fulfils at once.
 *
 * Return: 0; -EINVAL; -ENOMEM.
 */
GOC_API int goc_future_all_settled(goc_future *const *fs,
                                   size_t n,
                                   goc_future **out);

/**
 * goc_future_race - settles like the first input to settle, success or
 * failure. Exactly one input wins; its value is borrowed. Inputs already
 * settled at call time: the first in input order wins.
 *
 * Return: 0; GOC_EEMPTY for @n = 0 (JavaScript would stay pending forever;
 * nothing is created); -EINVAL; -ENOMEM.
 */
GOC_API int goc_future_race(goc_future *const *fs,
                            size_t n,
                            unsigned flags,
                            goc_future **out);

/**
 * goc_future_any - fulfils with the first input to fulfil. Rejects only
 * when every input failed, with GOC_EAGGREGATE and as value an `int *`
 * array of the @n input statuses in input order (JavaScript's
 * AggregateError). @n = 0 rejects at once with GOC_EEMPTY.
 *
 * Return: 0; -EINVAL; -ENOMEM.
 */
GOC_API int goc_future_any(goc_future *const *fs,
                           size_t n,
                           unsigned flags,
                           goc_future **out);

/** goc_run_timeout() flag: wait for an abandoned @fn to really return. */
#define GOC_TIMEOUT_WAIT_ABANDONED 1u

/**
 * goc_run_timeout - run @fn(c, @arg, &value) in a new goroutine, where c
 * is a context with a @timeout deadline (INT64_MAX: none), and wait for
 * the first of: @fn returns, c's deadline passes, @ctx ends.
 * @free_value: destructor for @fn's value (used when it comes too late).
 * @value:      receives @fn's value if it returned in time (ownership
 *              passes to the caller); may be NULL (the value is freed).
 *
 * c carries the deadline (the earlier of @timeout and @ctx's) but not
 * @ctx's values, and it does not depend on @ctx's lifetime: the work may
 * outlive the call, and a local @ctx may be destroyed once it returns. A
 * cancel of @ctx reaches c only while the call is still waiting (the
 * caller cancels c). If the deadline passes or @ctx is cancelled first, c
 * ends so @fn can notice, the call returns at once (or, with
 * GOC_TIMEOUT_WAIT_ABANDONED, once @fn returned), and @fn's late value
 * is destroyed when it comes; nobody blocks on it and it is counted
 * (goc_run_timeout_abandoned()). A result that is there when the deadline
 * passes wins over the deadline. c ends in any case once @fn returns
 * (Go's defer cancel()), so what @fn started under it stops then.
 *
 * Return: @fn's status; -ETIMEDOUT or -ECANCELED if the deadline passed or
 * @ctx ended first (also at entry, for @timeout <= 0 and for a deadline
 * already past when c is made: @fn is not started); -EINVAL for a NULL
 * @fn; -ENOMEM.
 */
GOC_API int goc_run_timeout(goc_task_fn fn,
                            void *arg,
                            goc_value_free_fn free_value,
                            void **value,
                            int64_t timeout,
                            unsigned flags,
                            goc_ctx *ctx);

/** goc_run_timeout_abandoned - late results dropped so far (process). */
GOC_API int64_t goc_run_timeout_abandoned(void);

#ifdef __cplusplus
}
#endif

#endif /* GOC_FUTURE_H */
