/* SPDX-License-Identifier: MIT */
/*
 * Task groups on a worker pool (pond v2's groups): the group keeps its
 * tasks' handles in submission order, counts them down as they settle
 * (a settle callback, run with no lock held), and on the first failure
 * cancels its context and settles its queued tasks as cancelled.
 */
#include "goc/pool.h"
#include "goc/sync.h"
#include "patterns.h"
#include "../internal/alloc.h"

struct goc_wpgroup {
    goc_workerpool *p;
    goc_ctx *ctx;
    goc_mutex mu;
    goc_cond cv;
    goc_future **tasks; /* submission order, under mu */
    size_t n, cap;
    size_t reserved; /* places held by submits in flight, under mu */
    int64_t pending; /* submitted and not settled, plus callbacks running */
    /* Submitted and not yet done with by the pool: a task whose handle
     * was cancelled may run on, and the group lives until it ends. */
    int64_t unfinished;
    int first_err;
    bool failing; /* a task failed; first_err is set once handled */
    /* Calls inside goc_wpgroup_wait(): a free waits for them to leave,
     * as they relock mu once woken. */
    int64_t waiting;
    bool freeing;
    /* goc_wpgroup_new_ctx(): the caller's ctx, watched until free. */
    goc_ctx *parent;
    goc_ctx_after watch;
    bool watching;    /* watch registered */
    bool watch_ended; /* the watch's function has returned */
};

static goc_wpgroup *group_new(goc_workerpool *p, int *rc)
{
    *rc = goc__workerpool_stopped(p) ? GOC_ECLOSED : 0;
    if (*rc)
        return NULL;
    goc_wpgroup *g = goc__calloc(1, sizeof(*g));
    if (!g) {
        *rc = -ENOMEM;
        return NULL;
    }
    *rc = goc_ctx_with_cancel(goc__workerpool_ctx(p), &g->ctx);
    if (*rc) {
        goc__free(g);
        return NULL;
    }
    g->p = p;
    return g;
}

int goc_wpgroup_new(goc_workerpool *p, goc_wpgroup **out)
{
    if (!p || !out)
        return -EINVAL;
    int rc;
    goc_wpgroup *g = group_new(p, &rc);
    if (g)
        *out = g;
    return rc;
}

/*
 * The group fails with @st, once: its context is cancelled (the ctx
 * first: a task it reaches before a worker takes it is never run, so a
 * worker freed by the cancel cannot start one), its queued tasks are
 * settled as cancelled, and waiters are told. The caller keeps @g alive.
 */
static void fail(goc_wpgroup *g, int st)
{
    goc_mutex_lock(&g->mu, NULL);
    bool first = !g->failing;
    g->failing = true;
    goc_mutex_unlock(&g->mu);
    if (!first)
        return;
    goc_ctx_cancel_cause(g->ctx, st);
    goc__workerpool_cancel_owned(g->p, g);
    goc_mutex_lock(&g->mu, NULL);
    g->first_err = st; /* published once the group is wound down */
    goc_cond_broadcast(&g->cv);
    goc_mutex_unlock(&g->mu);
}

/* The caller's ctx ended: the group fails with its error. While it
 * does, it counts as pending: cancelling the group settles its tasks,
 * and a wait must not see none pending before the failure is published
 * (a task's own failure is held back the same way, by that task). */
static void parent_done(void *arg)
{
    goc_wpgroup *g = arg;
    goc_mutex_lock(&g->mu, NULL);
    g->pending++;
    goc_mutex_unlock(&g->mu);
    fail(g, goc_ctx_err(g->parent));
    goc_mutex_lock(&g->mu, NULL);
    if (--g->pending == 0)
        goc_cond_broadcast(&g->cv);
    g->watch_ended = true;
    goc_cond_broadcast(&g->cv);
    goc_mutex_unlock(&g->mu);
}

int goc_wpgroup_new_ctx(goc_workerpool *p, goc_ctx *ctx, goc_wpgroup **out)
{
    if (!p || !out)
        return -EINVAL;
    int rc;
    goc_wpgroup *g = group_new(p, &rc);
    if (!g)
        return rc;
    g->parent = ctx;
    if (ctx && goc_ctx_err(ctx)) /* done already: failed from the start */
        fail(g, goc_ctx_err(ctx));
    else if (ctx)
        g->watching = goc_ctx_after_func(ctx, parent_done, g, &g->watch) == 0;
    *out = g;
    return 0;
}

goc_ctx *goc_wpgroup_ctx(goc_wpgroup *g)
{
    return g ? g->ctx : NULL;
}

/* The pool is done with one of our tasks. */
static void finished(const void *owner)
{
    goc_wpgroup *g = (goc_wpgroup *)owner;
    goc_mutex_lock(&g->mu, NULL);
    if (--g->unfinished == 0)
        goc_cond_broadcast(&g->cv);
    goc_mutex_unlock(&g->mu);
}

/* A task of the group settled (on the settling thread, no lock held). */
static void settled(goc_future *f, void *arg)
{
    goc_wpgroup *g = arg;
    int st = 0;
    goc_future_try_get(f, &st, NULL);
    if (st < 0 && st != -ECANCELED)
        fail(g, st); /* g stays alive: this task is still pending */
    goc_mutex_lock(&g->mu, NULL);
    if (--g->pending == 0)
        goc_cond_broadcast(&g->cv);
    goc_mutex_unlock(&g->mu);
}

/* Under mu: hold a place for one more handle. Submits in flight each
 * hold one: several of them append after unlocking. */
static int reserve_locked(goc_wpgroup *g)
{
    if (g->n + g->reserved < g->cap) {
        g->reserved++;
        return 0;
    }
    size_t cap = g->cap ? 2 * g->cap : 16;
    goc_future **v = goc__malloc(cap * sizeof(*v));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < g->n; i++)
        v[i] = g->tasks[i];
    goc__free(g->tasks);
    g->tasks = v;
    g->cap = cap;
    g->reserved++;
    return 0;
}

int goc_wpgroup_submit(goc_wpgroup *g,
                       goc_task_fn fn,
                       void *arg,
                       goc_value_free_fn free_value,
                       goc_ctx *ctx)
{
    if (!g || !fn)
        return -EINVAL;
    /* Allocated first, so that a task once queued is always watched. */
    struct goc__settle_cb *watch = goc__future_cb_new(settled, g);
    if (!watch)
        return -ENOMEM;
    goc_mutex_lock(&g->mu, NULL);
    int rc = g->failing ? GOC_ECLOSED : reserve_locked(g);
    if (!rc) { /* before the task can settle or finish */
        g->pending++;
        g->unfinished++;
    }
    goc_mutex_unlock(&g->mu);
    if (rc) {
        goc__future_cb_free(watch);
        return rc;
    }
    struct goc__wp_owner o = { g, g->ctx, finished };
    goc_future *f = NULL;
    rc = goc__workerpool_submit_owned(g->p, &o, fn, arg, free_value, &f, ctx);
    goc_mutex_lock(&g->mu, NULL);
    g->reserved--;
    if (rc) {
        g->pending--;
        g->unfinished--;
        goc_cond_broadcast(&g->cv); /* a wait may be for this one alone */
    }
    if (!rc)
        g->tasks[g->n++] = f; /* a place held above */
    bool failed = g->failing;
    goc_mutex_unlock(&g->mu);
    if (rc) {
        goc__future_cb_free(watch);
        return rc;
    }
    /* The group failed while this one was being queued: cancel it first,
     * while the pending count keeps g alive (the attach may settle the
     * last task, after which a free may take g). */
    if (failed)
        goc__workerpool_cancel_owned(g->p, g);
    goc__future_cb_attach(f, watch);
    return 0;
}

int goc_wpgroup_wait(goc_wpgroup *g, goc_ctx *ctx)
{
    if (!g)
        return -EINVAL;
    int rc = 0;
    goc_mutex_lock(&g->mu, NULL);
    g->waiting++;
    while (g->pending && !g->first_err && rc == 0)
        rc = goc_cond_wait(&g->cv, &g->mu, ctx);
    if (!g->pending || g->first_err)
        rc = g->first_err; /* the outcome wins over a ctx that ended */
    if (--g->waiting == 0 && g->freeing)
        goc_cond_broadcast(&g->cv); /* the free waits for us to leave */
    goc_mutex_unlock(&g->mu);
    return rc;
}

size_t goc_wpgroup_len(goc_wpgroup *g)
{
    if (!g)
        return 0;
    goc_mutex_lock(&g->mu, NULL);
    size_t n = g->n;
    goc_mutex_unlock(&g->mu);
    return n;
}

goc_future *goc_wpgroup_task(goc_wpgroup *g, size_t i)
{
    if (!g)
        return NULL;
    goc_mutex_lock(&g->mu, NULL);
    goc_future *f = i < g->n ? g->tasks[i] : NULL;
    goc_mutex_unlock(&g->mu);
    return f;
}

void goc_wpgroup_free(goc_wpgroup *g)
{
    if (!g)
        return;
    goc_mutex_lock(&g->mu, NULL);
    g->freeing = true;
    while (g->pending)
        goc_cond_wait(&g->cv, &g->mu, NULL);
    bool queued_or_running = g->unfinished > 0;
    goc_mutex_unlock(&g->mu);
    /* All settled: a task still queued was cancelled by its handle, and
     * would wait for a worker only to be thrown away (for ever, if this
     * is one of the pool's tasks and holds its last free worker). Those
     * go now; the running ones are waited for. The pool is alive while
     * it holds a task of ours. */
    if (queued_or_running)
        goc__workerpool_cancel_owned(g->p, g);
    /* Waits woken by the last settle relock mu on their way out. */
    goc_mutex_lock(&g->mu, NULL);
    while (g->unfinished || g->waiting)
        goc_cond_wait(&g->cv, &g->mu, NULL);
    goc_mutex_unlock(&g->mu);
    /* The watch of the caller's ctx, unless stopped before it ran, may
     * be running: it uses the group until it ends. */
    if (g->watching && !goc_ctx_after_stop(&g->watch)) {
        goc_mutex_lock(&g->mu, NULL);
        while (!g->watch_ended)
            goc_cond_wait(&g->cv, &g->mu, NULL);
        goc_mutex_unlock(&g->mu);
    }
    for (size_t i = 0; i < g->n; i++)
        goc_future_release(g->tasks[i]);
    goc__free(g->tasks);
    goc_ctx_release(g->ctx);
    goc__free(g);
}

int64_t goc__wpgroup_waiting(goc_wpgroup *g)
{
    goc_mutex_lock(&g->mu, NULL);
    int64_t n = g->waiting;
    goc_mutex_unlock(&g->mu);
    return n;
}
