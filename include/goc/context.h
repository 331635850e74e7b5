/* SPDX-License-Identifier: MIT */
/*
 * goc/context.h: cancellation, deadlines and request-scoped values, with
 * Go's context semantics.
 *
 * Every goc call that can block takes a goc_ctx * as its last argument;
 * NULL means "never cancelled, no deadline" (Go's context.Background()).
 * A call whose context is already done when it starts fails at once with
 * the context's error, even if it could have completed; a call whose
 * context ends while it waits returns that error and leaves the object it
 * waited on as if it had never been called.
 *
 * Contexts form a tree. Cancelling a context cancels all its descendants,
 * never its parent. Heap contexts (goc_ctx_with_*) are reference-counted:
 * each child holds a reference on its parent, and goc_ctx_release() of the
 * last reference cancels the context and frees it. Local contexts
 * (goc_ctx_init_*) live in the caller's memory and cost no allocation: the
 * per-call timeout.
 */
#ifndef GOC_CONTEXT_H
#define GOC_CONTEXT_H

#include "common.h"
#include "runtime.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * goc_ctx_local - storage for a context in the caller's memory (a stack
 * frame, a struct). Fields are private; see goc_ctx_init_timeout().
 */
typedef struct goc_ctx_local {
    uint64_t opaque_[40];
} goc_ctx_local;

/**
 * goc_ctx_background - the root context: never cancelled, no deadline, no
 * values. Passing NULL to a goc call means the same.
 *
 * Return: a static context; retain and release are no-ops on it.
 */
GOC_API goc_ctx *goc_ctx_background(void);

/**
 * goc_ctx_with_cancel - a child of @parent that goc_ctx_cancel() ends.
 * @parent: the parent (borrowed; NULL for the background); the child keeps
 *          a reference on it.
 * @out:    receives the new context, with one reference for the caller.
 *
 * If @parent is already done, the child is created done, with the
 * parent's error and cause.
 *
 * Return: 0; -EINVAL if @out is NULL; -ENOMEM; on first use, the
 * runtime's start failure (-ENOMEM or -EAGAIN, see goc_init()).
 * Never blocks; any thread.
 */
GOC_API int goc_ctx_with_cancel(goc_ctx *parent, goc_ctx **out);

/**
 * goc_ctx_with_deadline - a child of @parent that ends at @deadline.
 * @parent:   the parent (borrowed; NULL for the background).
 * @deadline: absolute goc_now() time in ns.
 * @out:      receives the new context (one reference).
 *
 * When the deadline passes the context ends with -ETIMEDOUT; a cancel
 * before then gives -ECANCELED. If the parent's deadline is earlier, the
 * child simply inherits it. A deadline already past gives a context that
 * is done at once.
 *
 * Return: as goc_ctx_with_cancel().
 */
GOC_API int goc_ctx_with_deadline(goc_ctx *parent,
                                  int64_t deadline,
                                  goc_ctx **out);

/**
 * goc_ctx_with_deadline_cause - goc_ctx_with_deadline() whose deadline,
 * when it is what ends the context, records @cause (a negative goc error
 * code; 0: none, the plain -ETIMEDOUT) for goc_ctx_cause(), as Go's
 * WithDeadlineCause. goc_ctx_err() still gives -ETIMEDOUT; a cancel, or
 * the end of an ancestor, gives its own cause as usual.
 *
 * Return: as goc_ctx_with_deadline(); -EINVAL for a positive @cause.
 */
GOC_API int goc_ctx_with_deadline_cause(goc_ctx *parent,
                                        int64_t deadline,
                                        int cause,
                                        goc_ctx **out);

/**
 * goc_ctx_with_timeout - goc_ctx_with_deadline(@parent, goc_now() +
 * @timeout, @out). A @timeout <= 0 gives a context already done.
 */
GOC_API int goc_ctx_with_timeout(goc_ctx *parent,
                                 int64_t timeout,
                                 goc_ctx **out);

/**
 * goc_ctx_with_timeout_cause - goc_ctx_with_deadline_cause(@parent,
 * goc_now() + @timeout, @cause, @out) (Go's WithTimeoutCause).
 */
GOC_API int goc_ctx_with_timeout_cause(goc_ctx *parent,
                                       int64_t timeout,
                                       int cause,
                                       goc_ctx **out);

/**
 * goc_ctx_with_value - a child of @parent that binds @key to @value.
 * @key:   compared by address; must not be NULL.
 * @value: borrowed; goc never frees it.
 *
 * Lookups walk toward the root and the nearest binding wins. The child is
 * cancelled exactly when its parent is.
 *
 * Return: 0; -EINVAL for a NULL @key or @out; -ENOMEM.
 */
GOC_API int goc_ctx_with_value(goc_ctx *parent,
                               const void *key,
                               void *value,
                               goc_ctx **out);

/**
 * goc_ctx_without_cancel - a child that keeps @parent's values but is
 * never cancelled and has no deadline (Go's context.WithoutCancel).
 *
 * Return: 0; -EINVAL if @out is NULL; -ENOMEM.
 */
GOC_API int goc_ctx_without_cancel(goc_ctx *parent, goc_ctx **out);

/**
 * goc_ctx_init_cancel - goc_ctx_with_cancel() into caller storage.
 * @local:  storage that must outlive the context and every context
 *          derived from it.
 * @parent: the parent (borrowed; NULL for the background); it must outlive
 *          the local context.
 *
 * Return: the context (an address inside @local). End it with
 * goc_ctx_destroy(). Never fails, never allocates.
 */
GOC_API goc_ctx *goc_ctx_init_cancel(goc_ctx_local *local, goc_ctx *parent);

/**
 * goc_ctx_init_deadline - goc_ctx_with_deadline() into caller storage.
 * Never fails, never allocates: a per-call deadline costs one timer arm
 * and one cancel, both O(1). End it with goc_ctx_destroy(). On first use,
 * if the runtime cannot start, the context is created done (-ECANCELED,
 * with the start's error as its cause).
 */
GOC_API goc_ctx *goc_ctx_init_deadline(goc_ctx_local *local,
                                       goc_ctx *parent,
                                       int64_t deadline);

/**
 * goc_ctx_init_timeout - goc_ctx_init_deadline(@local, @parent,
 * goc_now() + @timeout).
 */
GOC_API goc_ctx *goc_ctx_init_timeout(goc_ctx_local *local,
                                      goc_ctx *parent,
                                      int64_t timeout);

/**
 * goc_ctx_destroy - end a local context: cancel it, detach it from its
 * parent, stop its timer. @ctx may be NULL.
 *
 * Blocks only while its deadline timer is firing on another thread (a few
 * microseconds at most). A local context is not reference-counted: a
 * thread that cancels it must have returned from goc_ctx_cancel() first
 * (a wait it woke may return while that call still finishes), as must
 * every other user of @ctx.
 *
 * Return: 0; -EINVAL if @ctx is not a local context (nothing happens).
 */
GOC_API int goc_ctx_destroy(goc_ctx *ctx);

/** goc_ctx_retain - take another reference on a heap context; returns it. */
GOC_API goc_ctx *goc_ctx_retain(goc_ctx *ctx);

/**
 * goc_ctx_release - drop a reference; the last one cancels the context
 * (if it is not done yet) and frees it. @ctx may be NULL.
 */
GOC_API void goc_ctx_release(goc_ctx *ctx);

/**
 * goc_ctx_cancel - end @ctx and all its descendants with -ECANCELED.
 *
 * Idempotent: only the first cancel (or deadline) counts. Waiters on the
 * context and its descendants are woken before this returns. Any thread;
 * never blocks. Cancelling the background, a value context (it ends
 * only with its parent) or a without_cancel context does nothing.
 */
GOC_API void goc_ctx_cancel(goc_ctx *ctx);

/**
 * goc_ctx_cancel_cause - goc_ctx_cancel() recording @cause (a negative goc
 * error code; 0 means -ECANCELED) as the cause. A positive @cause, which
 * goc_ctx_cause() could not tell from "not done", is misuse: the context
 * is cancelled all the same, with -EINVAL as its cause.
 */
GOC_API void goc_ctx_cancel_cause(goc_ctx *ctx, int cause);

/**
 * goc_ctx_err - 0 while @ctx is not done; then -ECANCELED or -ETIMEDOUT,
 * fixed forever.
 */
GOC_API int goc_ctx_err(goc_ctx *ctx);

/**
 * goc_ctx_cause - the cause recorded by the cancellation that ended @ctx
 * (its own or an ancestor's), or its error if none was given; 0 while not
 * done.
 */
GOC_API int goc_ctx_cause(goc_ctx *ctx);

/**
 * goc_ctx_deadline - the deadline of @ctx, if it has one.
 * @deadline: receives it (may be NULL).
 *
 * Return: true if @ctx has a deadline.
 */
GOC_API bool goc_ctx_deadline(goc_ctx *ctx, int64_t *deadline);

/**
 * goc_ctx_value - the value bound to @key by @ctx or its nearest ancestor,
 * or NULL.
 */
GOC_API void *goc_ctx_value(goc_ctx *ctx, const void *key);

/**
 * goc_ctx_done - a channel that is closed when @ctx is done, for use as a
 * receive case in goc_select(). It is receive-only: a send or close on it
 * returns GOC_EMISUSE.
 *
 * Return: the channel (owned by @ctx, valid while it lives), or NULL for a
 * context that can never be cancelled: a NULL channel is never ready in a
 * select, as in Go. NULL also if the channel could not be allocated
 * (check goc_ctx_err() then).
 */
GOC_API goc_chan *goc_ctx_done(goc_ctx *ctx);

/**
 * goc_ctx_after - registration storage for goc_ctx_after_func().
 */
typedef struct goc_ctx_after {
    uint64_t opaque_[6];
} goc_ctx_after;

/**
 * goc_ctx_after_func - run @fn(@arg) in a new goroutine once @ctx is done.
 * @after: registration storage (borrowed until goc_ctx_after_stop()
 *         returns or @fn has started).
 *
 * If @ctx is already done, @fn starts at once; if @ctx can never be
 * cancelled, it never runs. Registrations are independent. @fn never
 * runs on the cancelling goroutine or thread: if its goroutine cannot be
 * made (out of memory), it waits, still stoppable, and the runtime starts
 * it as soon as one can be (reported through the log hook once per run
 * of such failures: when the first one waits).
 *
 * Return: 0; -EINVAL for a NULL @fn or @after.
 */
GOC_API int goc_ctx_after_func(goc_ctx *ctx,
                               goc_fn fn,
                               void *arg,
                               goc_ctx_after *after);

/**
 * goc_ctx_after_stop - unregister; does not wait for a running @fn.
 *
 * Return: true if this prevented @fn from running; false if it had
 * already started or had been stopped.
 */
GOC_API bool goc_ctx_after_stop(goc_ctx_after *after);

#ifdef __cplusplus
}
#endif

#endif /* GOC_CONTEXT_H */
