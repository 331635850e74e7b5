/* SPDX-License-Identifier: MIT */
/*
 * errgroup, with conc's error and panic handling as options: a count of
 * active tasks and an optional limit under one mutex; failures are kept
 * as error values (the first, or all), the first one cancels the group's
 * context unless told not to, and the first panic can be raised again in
 * the waiter.
 */
#include "goc/group.h"
#include "errors_int.h"
#include "patterns.h"
#include "goc/sync.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

#include <stdio.h>
#include <string.h>

#define ALL_OPTIONS                                        \
    (GOC_GROUP_ALL_ERRORS | GOC_GROUP_NO_CANCEL_ON_ERROR | \
     GOC_GROUP_PROPAGATE_PANIC)

struct goc_group {
    goc_mutex mu;
    goc_cond slot_cv; /* go() waits for a slot */
    goc_cond done_cv; /* wait() waits for active == 0; free() for idle */
    int64_t active, limit, failed;
    int64_t waiting;  /* calls inside wait: a reset must not pass them */
    int64_t starting; /* calls inside go waiting for a slot */
    unsigned opts;    /* changed only while no task is active */
    int first_err;
    _Atomic bool have_err; /* first-only mode: failed, skip building more */
    goc_ctx *parent, *ctx;
    goc_error **errs; /* the failures kept, in the order they happened */
    size_t nerrs, cap, errs_lost;
    goc_panic_info *to_raise; /* PROPAGATE_PANIC: the first panic */
    bool raised;              /* ... already raised in a waiter */
    struct goc__recovery_slot rec;
};

struct group_task {
    goc_group *g;
    goc_ctx *ctx;
    goc_group_fn fn;
    goc_group_err_fn efn;
    void *arg;
    goc_error *err; /* what efn returned */
};

int goc_group_new(goc_ctx *parent, goc_group **out)
{
    if (!out)
        return -EINVAL;
    goc_group *g = goc__calloc(1, sizeof(*g));
    if (!g)
        return -ENOMEM;
    int rc = goc_ctx_with_cancel(parent, &g->ctx);
    if (rc) {
        goc__free(g);
        return rc;
    }
    g->parent = parent;
    g->limit = -1;
    *out = g;
    return 0;
}

goc_ctx *goc_group_ctx(goc_group *g)
{
    return g ? g->ctx : NULL;
}

int goc_group_set_limit(goc_group *g, int64_t n)
{
    if (!g)
        return -EINVAL;
    goc_mutex_lock(&g->mu, NULL);
    int rc = g->active ? GOC_EMISUSE : 0;
    if (!rc) {
        g->limit = n < 0 ? -1 : n;
        /* go() calls may wait under a limit of 0: the new one may
         * admit them. */
        goc_cond_broadcast(&g->slot_cv);
    }
    goc_mutex_unlock(&g->mu);
    return rc ? goc__misuse("goc_group_set_limit: tasks are active") : 0;
}

int goc_group_set_options(goc_group *g, unsigned opts)
{
    if (!g || (opts & ~(unsigned)ALL_OPTIONS))
        return -EINVAL;
    goc_mutex_lock(&g->mu, NULL);
    int rc = g->active ? GOC_EMISUSE : 0;
    if (!rc)
        g->opts = opts;
    goc_mutex_unlock(&g->mu);
    return rc ? goc__misuse("goc_group_set_options: tasks are active") : 0;
}

/* The task's failure code: positive returns, and an error value's
 * non-negative code, are not codes goc gives failures: -EINVAL. */
static int failure_code(int rc)
{
    return rc > 0 ? -EINVAL : rc;
}

static int run_task(void *p)
{
    struct group_task *t = p;
    if (t->fn)
        return failure_code(t->fn(t->ctx, t->arg));
    t->err = t->efn(t->ctx, t->arg);
    if (!t->err)
        return 0;
    int code = goc_error_code(t->err);
    return code < 0 ? code : -EINVAL;
}

/* Whether a failure now would be kept (the first, or all of them). */
static bool keeps_errors(goc_group *g)
{
    return (g->opts & GOC_GROUP_ALL_ERRORS) ||
           !atomic_load_explicit(&g->have_err, memory_order_relaxed);
}

/* Under g->mu, g->failed counting this failure: keep @err, or hand it
 * back for release if it is not kept. First-only mode keeps the first
 * failure's alone: if that one could not be kept, no later one takes its
 * place (report() then says it was lost). */
static goc_error *keep_error(goc_group *g, goc_error *err)
{
    bool first_only = !(g->opts & GOC_GROUP_ALL_ERRORS);
    if (first_only)
        atomic_store_explicit(&g->have_err, true, memory_order_relaxed);
    if (!err || (first_only && g->failed > 1))
        return err;
    if (g->nerrs == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 4;
        goc_error **a = goc__malloc(cap * sizeof(*a));
        if (!a) {
            g->errs_lost++; /* reported in the join's message */
            return err;
        }
        if (g->nerrs)
            memcpy(a, g->errs, g->nerrs * sizeof(*a));
        goc__free(g->errs);
        g->errs = a;
        g->cap = cap;
    }
    g->errs[g->nerrs++] = err;
    return NULL;
}

/* Under g->mu: the first panic, for the waiter to raise again. Takes
 * *@pi, or copies the one @err carries. */
static void keep_panic(goc_group *g, goc_panic_info **pi, goc_error *err)
{
    if (!(g->opts & GOC_GROUP_PROPAGATE_PANIC) || g->to_raise || g->raised)
        return;
    if (*pi) {
        g->to_raise = *pi;
        *pi = NULL;
    } else if (goc_error_panic(err)) {
        g->to_raise = goc__panic_info_dup(goc_error_panic(err));
    }
}

static void task_main(void *p)
{
    struct group_task *t = p;
    goc_group *g = t->g;
    goc_panic_info *pi = NULL;
    int rc = goc__safe_call_keep(&g->rec, run_task, t, &pi);
    goc_error *err = t->err; /* a task that panicked returned none */
    goc__free(t);
    if (rc && !err && keeps_errors(g)) {
        err = pi ? goc_panic_error(pi) : goc_error_new(rc, NULL);
        pi = NULL;
    }
    goc_mutex_lock(&g->mu, NULL);
    if (rc) {
        g->failed++;
        if (!g->first_err) {
            g->first_err = rc;
            if (!(g->opts & GOC_GROUP_NO_CANCEL_ON_ERROR))
                goc_ctx_cancel_cause(g->ctx, rc);
        }
        keep_panic(g, &pi, err);
        err = keep_error(g, err);
    }
    g->active--;
    goc_cond_signal(&g->slot_cv);
    if (!g->active)
        goc_cond_broadcast(&g->done_cv);
    goc_mutex_unlock(&g->mu);
    goc_error_release(err);
    goc_panic_info_free(pi);
}

static bool has_slot(goc_group *g)
{
    return g->limit < 0 || g->active < g->limit;
}

/* Under g->mu: no task, and no call that goc_group_free() waits for. */
static bool idle(const goc_group *g)
{
    return !g->active && !g->waiting && !g->starting;
}

static int start(goc_group *g,
                 const struct group_task *proto,
                 bool wait,
                 goc_ctx *ctx)
{
    if (!g || (!proto->fn && !proto->efn))
        return -EINVAL;
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    struct group_task *t = goc__malloc(sizeof(*t));
    if (!t)
        return -ENOMEM;
    *t = *proto;
    t->g = g;
    goc_mutex_lock(&g->mu, NULL);
    g->starting++;
    while (!has_slot(g) && rc == 0)
        rc = wait ? goc_cond_wait(&g->slot_cv, &g->mu, ctx) : -EAGAIN;
    g->starting--;
    if (!rc) {
        g->active++;
        t->ctx = g->ctx; /* a reset changes it only with none active */
        if ((rc = goc_go(task_main, t)) != 0) {
            g->active--;
            /* The slot may be the one a finished task signalled to us:
             * pass it on, or the next go() waits with a slot free. */
            goc_cond_signal(&g->slot_cv);
        }
    }
    if (idle(g)) /* a free may be waiting for us */
        goc_cond_broadcast(&g->done_cv);
    goc_mutex_unlock(&g->mu);
    if (rc)
        goc__free(t);
    return rc;
}

int goc_group_go(goc_group *g, goc_group_fn fn, void *arg, goc_ctx *ctx)
{
    return start(g, &(struct group_task){ .fn = fn, .arg = arg }, true, ctx);
}

int goc_group_try_go(goc_group *g, goc_group_fn fn, void *arg)
{
    return start(g, &(struct group_task){ .fn = fn, .arg = arg }, false, NULL);
}

int goc_group_go_err(goc_group *g, goc_group_err_fn fn, void *arg, goc_ctx *ctx)
{
    return start(g, &(struct group_task){ .efn = fn, .arg = arg }, true, ctx);
}

int goc_group_try_go_err(goc_group *g, goc_group_err_fn fn, void *arg)
{
    return start(g, &(struct group_task){ .efn = fn, .arg = arg }, false, NULL);
}

/* Under g->mu, all tasks done: the error value wait_err reports. */
static goc_error *report(goc_group *g)
{
    if (!g->nerrs && g->failed) /* none could be kept: memory ran out */
        return goc_error_new(g->first_err,
                             "%lld tasks failed, their errors lost: "
                             "out of memory",
                             (long long)g->failed);
    if (!g->nerrs)
        return NULL;
    if (!(g->opts & GOC_GROUP_ALL_ERRORS))
        return goc_error_retain(g->errs[0]);
    char lost[80];
    if (g->errs_lost)
        snprintf(lost, sizeof(lost), "(%zu more errors lost: out of memory)",
                 g->errs_lost);
    return goc__error_join_suffix(g->errs, g->nerrs,
                                  g->errs_lost ? lost : NULL);
}

static int wait_done(goc_group *g, goc_ctx *ctx, goc_error **err)
{
    if (!g)
        return -EINVAL;
    int rc = 0;
    goc_mutex_lock(&g->mu, NULL);
    g->waiting++;
    while (g->active && (rc = goc_cond_wait(&g->done_cv, &g->mu, ctx)) == 0)
        ;
    g->waiting--;
    bool done = g->active == 0;
    if (idle(g)) /* a free may be waiting for us */
        goc_cond_broadcast(&g->done_cv);
    goc_panic_info *raise = NULL;
    goc_ctx *round = NULL;
    if (done) {
        rc = g->first_err; /* all done: that wins over a ctx that ended */
        if (err)
            *err = report(g);
        raise = g->to_raise;
        g->to_raise = NULL;
        g->raised = g->raised || raise;
        /* This round's: a reset may replace it once we unlock. */
        round = goc_ctx_retain(g->ctx);
    }
    goc_mutex_unlock(&g->mu);
    if (round) {
        goc_ctx_cancel_cause(round, rc);
        goc_ctx_release(round);
    }
    if (raise) {
        if (err) {
            goc_error_release(*err);
            *err = NULL;
        }
        goc__panic_again(raise);
    }
    return rc;
}

int goc_group_wait(goc_group *g, goc_ctx *ctx)
{
    return wait_done(g, ctx, NULL);
}

int goc_group_wait_err(goc_group *g, goc_ctx *ctx, goc_error **err)
{
    if (!err)
        return -EINVAL;
    *err = NULL;
    return wait_done(g, ctx, err);
}

/* Under g->mu: forget the failures; hands back what to free unlocked. */
static void clear_failures(goc_group *g,
                           goc_error ***errs,
                           size_t *n,
                           goc_panic_info **pi)
{
    *errs = g->errs;
    *n = g->nerrs;
    *pi = g->to_raise;
    g->errs = NULL;
    g->nerrs = g->cap = g->errs_lost = 0;
    g->to_raise = NULL;
    g->raised = false;
    g->failed = 0;
    g->first_err = 0;
    atomic_store_explicit(&g->have_err, false, memory_order_relaxed);
}

static void free_failures(goc_error **errs, size_t n, goc_panic_info *pi)
{
    for (size_t i = 0; i < n; i++)
        goc_error_release(errs[i]);
    goc__free(errs);
    goc_panic_info_free(pi);
}

int goc_group_reset(goc_group *g)
{
    if (!g)
        return -EINVAL;
    goc_ctx *fresh;
    int rc = goc_ctx_with_cancel(g->parent, &fresh);
    if (rc)
        return rc;
    goc_mutex_lock(&g->mu, NULL);
    if (g->active || g->waiting) {
        goc_mutex_unlock(&g->mu);
        goc_ctx_release(fresh);
        return goc__misuse("goc_group_reset: tasks are active, or a wait");
    }
    goc_ctx *old = g->ctx;
    g->ctx = fresh;
    goc_error **errs;
    size_t n;
    goc_panic_info *pi;
    clear_failures(g, &errs, &n, &pi);
    goc_mutex_unlock(&g->mu);
    goc_ctx_cancel(old);
    goc_ctx_release(old);
    free_failures(errs, n, pi);
    return 0;
}

int64_t goc_group_failed(goc_group *g)
{
    if (!g)
        return 0;
    goc_mutex_lock(&g->mu, NULL);
    int64_t n = g->failed;
    goc_mutex_unlock(&g->mu);
    return n;
}

void goc_group_free(goc_group *g)
{
    if (!g)
        return;
    /* Not goc_group_wait(): a panic to propagate is not raised here.
     * Calls blocked in wait or go would touch g once they wake: the
     * group goes only after they have left. */
    goc_mutex_lock(&g->mu, NULL);
    while (!idle(g))
        goc_cond_wait(&g->done_cv, &g->mu, NULL);
    goc_error **errs;
    size_t n;
    goc_panic_info *pi;
    clear_failures(g, &errs, &n, &pi);
    goc_mutex_unlock(&g->mu);
    free_failures(errs, n, pi);
    goc_ctx_cancel(g->ctx);
    goc_ctx_release(g->ctx);
    goc__recovery_slot_set(&g->rec, NULL);
    goc__free(g);
}

int64_t goc__group_blocked(goc_group *g)
{
    goc_mutex_lock(&g->mu, NULL);
    int64_t n = g->waiting + g->starting;
    goc_mutex_unlock(&g->mu);
    return n;
}

int goc_group_set_recovery(goc_group *g, goc_recovery *h)
{
    if (!g)
        return -EINVAL;
    goc__recovery_slot_set(&g->rec, h);
    return 0;
}
