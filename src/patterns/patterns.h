/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the pattern layer: hooks into futures that pools
 * and combinators need but users do not.
 */
#ifndef GOC_PATTERNS_INTERNAL_H
#define GOC_PATTERNS_INTERNAL_H

#include "goc/future.h"
#include "goc/group.h"
#include "goc/panic.h"
#include "goc/pattern.h"
#include "goc/pool.h"
#include "goc/ratelimit.h"
#include "../internal/lock.h"

#include <stdbool.h>

/*
 * The recovery handler a runner reports its tasks' panics to: set with
 * goc__recovery_slot_set() (which retains it), read only when a task
 * panics. Zero-filled is empty; a runner empties it (set NULL) when it
 * is freed.
 */
struct goc__recovery_slot {
    goc__lock lock;
    goc_recovery *h;
};

/* Attach @h to @s (NULL: the process-wide default slot); NULL detaches. */
void goc__recovery_slot_set(struct goc__recovery_slot *s, goc_recovery *h);

/*
 * Report a task's panic: recorded in @s's handler, else in the default
 * one, else written to the runtime's log. Returns the handler's policy
 * (GOC_RECOVER_CONTINUE when only logged).
 */
int goc__recovery_report(struct goc__recovery_slot *s, const goc_panic_info *p);

/*
 * Run one task so that a panic in it fails that task alone: the result
 * is GOC_EPANIC, the panic is reported (goc__recovery_report(), to @s or
 * NULL for the default), and the worker that ran it goes on, unless the
 * handler's policy says otherwise: GOC_RECOVER_RETHROW panics again
 * (the process ends, as in Go), GOC_RECOVER_WORKER_EXIT sets *@exit
 * (when given) for the worker to leave. A task that returns GOC_EPANIC
 * without panicking is not reported and keeps the value it set.
 * *@panicked (when given) tells the two apart. With @keep, the panic's
 * info (unless thrown again) goes to *@keep, for the task's handle,
 * instead of being freed (NULL if it did not panic).
 */
int goc__safe_call(int (*fn)(void *arg), void *arg);
int goc__safe_call_in(struct goc__recovery_slot *s,
                      int (*fn)(void *arg),
                      void *arg,
                      bool *exit,
                      bool *panicked);
int goc__safe_task(goc_task_fn fn,
                   goc_ctx *ctx,
                   void *arg,
                   void **result,
                   goc_panic_info **keep);
int goc__safe_task_in(struct goc__recovery_slot *s,
                      goc_task_fn fn,
                      goc_ctx *ctx,
                      void *arg,
                      void **result,
                      bool *exit,
                      bool *panicked,
                      goc_panic_info **keep);
/*
 * goc__safe_task() for a runner that runs the task on its caller's own
 * goroutine (singleflight's leader): with GOC_RECOVER_RETHROW it does
 * not panic again itself but sets *@rethrow (else NULL), so that the
 * runner can retire its state first, then call goc__panic_again(); with
 * any other policy the panic goes to *@keep (else NULL), for the task's
 * handle.
 */
int goc__safe_task_inline(goc_task_fn fn,
                          goc_ctx *ctx,
                          void *arg,
                          void **result,
                          goc_panic_info **rethrow,
                          goc_panic_info **keep);
int goc__safe_then(goc_future_then_fn fn,
                   const void *value,
                   void *arg,
                   void **result);
/* goc__safe_call_in() that gives a panic's info to *@keep (NULL if
 * @fn did not panic) instead of freeing it. */
int goc__safe_call_keep(struct goc__recovery_slot *s,
                        int (*fn)(void *arg),
                        void *arg,
                        goc_panic_info **keep);

/*
 * Make goc_future_cancel(f) also cancel @ctx (a heap context; @f takes a
 * reference). Call before @f is shared.
 */
void goc__future_set_producer(goc_future *f, goc_ctx *ctx);
/*
 * Settle @f with GOC_EPANIC, keeping @p (owned) for goc_future_panic();
 * as goc_future_complete(), 1 if this call settled it (else @p is freed).
 */
int goc__future_fail_panic(goc_future *f, goc_panic_info *p);

/*
 * goc_future_on_settle() in two steps: the allocation, which may fail,
 * ahead of what cannot be undone; then the attachment, which cannot
 * (a future settled already calls back at once). A node never attached
 * is freed with goc__future_cb_free().
 */
struct goc__settle_cb;
struct goc__settle_cb *goc__future_cb_new(goc_future_cb cb, void *arg);
void goc__future_cb_attach(goc_future *f, struct goc__settle_cb *c);
void goc__future_cb_free(struct goc__settle_cb *c);
/*
 * Take @c back off @f while @f is pending: true if it was there (it will
 * never run; free it). False if @f has settled and @c runs or ran. The
 * caller must know @f alive meanwhile.
 */
bool goc__future_cb_detach(goc_future *f, struct goc__settle_cb *c);

/* Run @fn(@aux) when @f is freed (after its value is destroyed). */
void goc__future_on_free(goc_future *f, void (*fn)(void *aux), void *aux);

/*
 * Take the value out of a settled @f: the caller owns it from now on and
 * @f will not destroy it. NULL if @f is pending or has no value.
 */
void *goc__future_take_value(goc_future *f);

/* Wait until a released goroutine pool has no worker left, or until
 * @deadline (then -ETIMEDOUT). */
int goc__pool_wait_exited(goc_pool *p, int64_t deadline);

/* Worker pool tasks submitted on behalf of a task group. */
struct goc__wp_owner {
    const void *owner; /* tag: goc__workerpool_cancel_owned() finds them */
    goc_ctx *ctx;      /* parent of each task's context */
    /* Called with the tag when the pool is done with one of its accepted
     * tasks (run, or settled unrun), after its last touch of the task's
     * context: its owner may go then. */
    void (*finished)(const void *owner);
};

struct goc_workerpool;
int goc__workerpool_submit_owned(struct goc_workerpool *p,
                                 const struct goc__wp_owner *o,
                                 goc_task_fn fn,
                                 void *arg,
                                 goc_value_free_fn free_value,
                                 goc_future **task,
                                 goc_ctx *ctx);

/* The pool's own context (tasks' contexts descend from it). */
goc_ctx *goc__workerpool_ctx(struct goc_workerpool *p);
/* Stopped or cancelled: it takes no more tasks. */
bool goc__workerpool_stopped(struct goc_workerpool *p);

/* Settle @owner's queued tasks as cancelled (they never run). */
int64_t goc__workerpool_cancel_owned(struct goc_workerpool *p,
                                     const void *owner);

/*
 * goc_limiter_new() whose bucket starts (full) at @now, a time of @clock
 * (or of the default clock for NULL), which it does not read: for a
 * caller under a lock, where a user's clock must not run.
 */
int goc__limiter_new_at(double limit,
                        int64_t burst,
                        const goc_clock *clock,
                        int64_t now,
                        goc_limiter **out);

/* Calls inside goc_group_wait*() or waiting in goc_group_go*() for a
 * slot (for tests: they free a group with calls blocked on it). */
int64_t goc__group_blocked(goc_group *g);

/* Calls inside goc_wpgroup_wait() (for tests, likewise). */
int64_t goc__wpgroup_waiting(goc_wpgroup *g);

/* Submits and waits under way in a worker pool (for tests, likewise). */
int64_t goc__workerpool_inside(goc_workerpool *p);

/* Submits and waits blocked in a goroutine pool (for tests, likewise). */
int64_t goc__pool_inside(goc_pool *p);

/* Publishes queued behind another on a broadcaster (for tests,
 * likewise). */
int64_t goc__bcast_publishing(goc_bcast *b);

#endif /* GOC_PATTERNS_INTERNAL_H */
