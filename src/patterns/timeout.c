/* SPDX-License-Identifier: MIT */
/*
 * goc_run_timeout: run a function under a deadline. The work gets the
 * deadline context, so it can stop when abandoned; its outcome goes into
 * a set-once future, so a late result never blocks the worker, and it is
 * destroyed with the future and counted.
 */
#include "goc/future.h"
#include "goc/time.h"
#include "patterns.h"
#include "../internal/alloc.h"

#include <stdatomic.h>

enum { RUNNING, RETURNED, ABANDONED };

struct job {
    _Atomic int refs;
    _Atomic int state; /* RUNNING, then RETURNED or ABANDONED: one CAS */
    goc_task_fn fn;
    void *arg;
    goc_ctx *ctx;
    goc_future *f;
    goc_value_free_fn free_value;
};

static _Atomic int64_t abandoned_total;

int64_t goc_run_timeout_abandoned(void)
{
    return atomic_load(&abandoned_total);
}

static void job_release(struct job *j)
{
    if (atomic_fetch_sub(&j->refs, 1) != 1)
        return;
    goc_ctx_release(j->ctx);
    goc_future_release(j->f); /* destroys a late value */
    goc__free(j);
}

static void job_main(void *p)
{
    struct job *j = p;
    void *value = NULL;
    goc_panic_info *panic;
    int rc = goc__safe_task(j->fn, j->ctx, j->arg, &value, &panic);
    /* The work is over, so is its context (Go's defer cancel()): what it
     * started under it stops now, not at the deadline, or never. */
    goc_ctx_cancel(j->ctx);
    /* Claim the result for the caller before publishing it, so a caller
     * that gives up after this point still takes it (the result wins). */
    int expect = RUNNING;
    if (!atomic_compare_exchange_strong(&j->state, &expect, RETURNED))
        atomic_fetch_add(&abandoned_total, 1); /* nobody will read it */
    if (panic)
        goc__future_fail_panic(j->f, panic);
    else
        goc_future_complete(j->f, rc > 0 ? -EINVAL : rc, value);
    job_release(j);
}

/*
 * The work's context is not a child of @ctx: the work may outlive this
 * call, and a caller's local context must not (goc_ctx_init_*). It gets
 * the earlier of both deadlines; a cancel of @ctx reaches it through the
 * waiting caller.
 */
static int64_t deadline_of(goc_ctx *ctx, int64_t timeout)
{
    /* Saturate (signed overflow is undefined): INT64_MAX is no deadline. */
    int64_t now = goc_now(), theirs;
    int64_t mine = timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
    if (goc_ctx_deadline(ctx, &theirs) && theirs < mine)
        return theirs;
    return mine;
}

static int start(struct job **out,
                 goc_task_fn fn,
                 void *arg,
                 goc_value_free_fn free_value,
                 int64_t timeout,
                 goc_ctx *ctx)
{
    struct job *j = goc__calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    atomic_init(&j->refs, 2); /* the caller's and the goroutine's */
    j->fn = fn;
    j->arg = arg;
    j->free_value = free_value;
    int rc = goc_future_new(free_value, &j->f);
    if (!rc)
        rc = goc_ctx_with_deadline(NULL, deadline_of(ctx, timeout), &j->ctx);
    /* A deadline already past (a timeout of a few ns, or the caller's own
     * deadline whose timer has yet to fire): fn is not started. */
    if (!rc)
        rc = goc_ctx_err(j->ctx);
    if (!rc)
        rc = goc_go(job_main, j);
    if (rc) {
        goc_ctx_release(j->ctx);
        goc_future_release(j->f);
        goc__free(j);
        return rc;
    }
    *out = j;
    return 0;
}

/* The outcome of a job that returned in time; the value goes out. */
static int take(struct job *j, void **value)
{
    int status = 0;
    goc_future_get(j->f, &status, NULL, NULL); /* settled, or about to be */
    void *v = goc__future_take_value(j->f);
    if (value)
        *value = v;
    else if (v && j->free_value)
        j->free_value(v);
    return status;
}

int goc_run_timeout(goc_task_fn fn,
                    void *arg,
                    goc_value_free_fn free_value,
                    void **value,
                    int64_t timeout,
                    unsigned flags,
                    goc_ctx *ctx)
{
    if (!fn || (flags & ~GOC_TIMEOUT_WAIT_ABANDONED))
        return -EINVAL;
    if (value)
        *value = NULL;
    int rc = goc_ctx_err(ctx);
    if (rc || timeout <= 0)
        return rc ? rc : -ETIMEDOUT;
    struct job *j;
    if ((rc = start(&j, fn, arg, free_value, timeout, ctx)) != 0)
        return rc;
    int status;
    int64_t deadline;
    goc_ctx_deadline(j->ctx, &deadline);
    goc_ctx_local local;
    goc_ctx *w = goc_ctx_init_deadline(&local, ctx, deadline);
    rc = goc_future_get(j->f, &status, NULL, w);
    goc_ctx_destroy(w);
    int expect = RUNNING;
    if (rc == 0 ||
        !atomic_compare_exchange_strong(&j->state, &expect, ABANDONED)) {
        rc = take(j, value); /* returned in time, or at the same moment */
    } else {
        /* A deadline reaches the work by its own timer (it has the same
         * deadline, so it sees -ETIMEDOUT); a cancel must be passed on. */
        if (rc != -ETIMEDOUT)
            goc_ctx_cancel(j->ctx);
        if (flags & GOC_TIMEOUT_WAIT_ABANDONED)
            goc_future_get(j->f, &status, NULL, NULL);
    }
    job_release(j);
    return rc;
}
