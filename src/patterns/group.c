/* SPDX-License-Identifier: MIT */
/*
 * errgroup: a count of active tasks and an optional limit under one
 * mutex; the first error is kept and cancels the group's context.
 */
#include "goc/group.h"
#include "patterns.h"
#include "goc/sync.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

struct goc_group {
    goc_mutex mu;
    goc_cond slot_cv; /* go() waits for a slot */
    goc_cond done_cv; /* wait() waits for active == 0 */
    int64_t active, limit, failed;
    int first_err;
    goc_ctx *ctx;
    struct goc__recovery_slot rec;
};

struct group_task {
    goc_group *g;
    goc_group_fn fn;
    void *arg;
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

static void task_main(void *p)
{
    struct group_task *t = p;
    goc_group *g = t->g;
    int rc = goc__safe_group(&g->rec, t->fn, g->ctx, t->arg);
    goc__free(t);
    goc_mutex_lock(&g->mu, NULL);
    if (rc) {
        g->failed++;
        if (!g->first_err) {
            g->first_err = rc > 0 ? -EINVAL : rc;
            goc_ctx_cancel_cause(g->ctx, g->first_err);
        }
    }
    g->active--;
    goc_cond_signal(&g->slot_cv);
    if (!g->active)
        goc_cond_broadcast(&g->done_cv);
    goc_mutex_unlock(&g->mu);
}

static bool has_slot(goc_group *g)
{
    return g->limit < 0 || g->active < g->limit;
}

static int start(
    goc_group *g, goc_group_fn fn, void *arg, bool wait, goc_ctx *ctx)
{
    if (!g || !fn)
        return -EINVAL;
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    struct group_task *t = goc__malloc(sizeof(*t));
    if (!t)
        return -ENOMEM;
    *t = (struct group_task){ g, fn, arg };
    goc_mutex_lock(&g->mu, NULL);
    while (!has_slot(g) && rc == 0)
        rc = wait ? goc_cond_wait(&g->slot_cv, &g->mu, ctx) : -EAGAIN;
    if (!rc) {
        g->active++;
        if ((rc = goc_go(task_main, t)) != 0)
            g->active--;
    }
    goc_mutex_unlock(&g->mu);
    if (rc)
        goc__free(t);
    return rc;
}

int goc_group_go(goc_group *g, goc_group_fn fn, void *arg, goc_ctx *ctx)
{
    return start(g, fn, arg, true, ctx);
}

int goc_group_try_go(goc_group *g, goc_group_fn fn, void *arg)
{
    return start(g, fn, arg, false, NULL);
}

int goc_group_wait(goc_group *g, goc_ctx *ctx)
{
    if (!g)
        return -EINVAL;
    int rc = 0;
    goc_mutex_lock(&g->mu, NULL);
    while (g->active && (rc = goc_cond_wait(&g->done_cv, &g->mu, ctx)) == 0)
        ;
    bool done = g->active == 0;
    if (done)
        rc = g->first_err; /* all done: that wins over a ctx that ended */
    goc_mutex_unlock(&g->mu);
    if (done)
        goc_ctx_cancel_cause(g->ctx, rc);
    return rc;
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
    goc_group_wait(g, NULL);
    goc_ctx_release(g->ctx);
    goc__recovery_slot_set(&g->rec, NULL);
    goc__free(g);
}

int goc_group_set_recovery(goc_group *g, goc_recovery *h)
{
    if (!g)
        return -EINVAL;
    goc__recovery_slot_set(&g->rec, h);
    return 0;
}
