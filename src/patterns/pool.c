/* SPDX-License-Identifier: MIT */
/*
 * Goroutine pool (ants v2 semantics, with FIFO hand-off). There is no
 * task queue: a task goes to an idle worker (LIFO: the most recently used
 * one, whose stack is warm), to a new worker while fewer than capacity
 * exist, or to the submitter's own waiter record. A worker that finishes
 * takes the longest-waiting submitter's task directly, under the lock, so
 * a submitter that just arrived cannot barge past the queue.
 *
 * Idle workers wait on their own condition variable with an expiry
 * deadline; one that times out still idle removes itself and exits, so
 * no scavenger goroutine is needed.
 */
#include "goc/pool.h"
#include "patterns.h"
#include "goc/runtime.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../internal/list.h"

#include <stdatomic.h>

#define DEFAULT_EXPIRY GOC_SECOND
#define FLAGS \
    (GOC_POOL_NONBLOCKING | GOC_POOL_DISABLE_PURGE | GOC_POOL_PREALLOC)

struct worker {
    struct goc__dlink link; /* in idle (stack) or busy, under mu */
    goc_cond cv;            /* an idle worker waits here for a task */
    goc_pool_fn fn;         /* the task handed over; NULL while idle */
    void *arg;
    bool exit;           /* release: leave instead of waiting */
    _Atomic int64_t gid; /* the worker goroutine, for nested submits */
    struct goc_pool *p;
};

struct waiter {
    struct goc__dlink link;
    goc_cond cv;
    goc_pool_fn fn;
    void *arg;
    bool granted; /* a worker took the task: it will run */
    bool closed;  /* release took it off the queue: GOC_ECLOSED */
    int failed;   /* no worker could be started for it: this error */
};

struct goc_pool {
    goc_mutex mu;
    goc_cond idle_cv; /* wait_idle, release_timeout, free */
    struct goc__dlink *idle, *busy;
    struct goc__dqueue waiters; /* FIFO */
    int64_t cap, max_blocking, expiry;
    unsigned flags;
    bool closed;
    int64_t running, nidle, nwaiting;
    /* Idle workers told to leave and not gone yet: they take no task, so
     * they leave room under the capacity (after a release and a quick
     * reboot, say, new workers start at once). */
    int64_t retiring;
    /* Submits, waits and releases blocked inside the pool: free waits
     * for the last to leave before it lets the pool go. */
    int64_t inside;
    bool freeing;
    struct goc_pool_stats st; /* st.workers: alive, under mu */
    goc_pool_fn fn;           /* goc_pool_invoke()'s */
    struct goc__recovery_slot rec;
};

static int prealloc_locked(goc_pool *p);

int goc_pool_new(const struct goc_pool_config *cfg, goc_pool **out)
{
    struct goc_pool_config c = { 0 };
    if (cfg)
        c = *cfg;
    if (!out || c.expiry < 0 || c.max_blocking < 0 || (c.flags & ~FLAGS) ||
        ((c.flags & GOC_POOL_PREALLOC) && c.capacity <= 0))
        return -EINVAL;
    goc_pool *p = goc__calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->cap = c.capacity > 0 ? c.capacity : -1;
    p->expiry = c.expiry ? c.expiry : DEFAULT_EXPIRY;
    p->max_blocking = c.max_blocking;
    p->flags = c.flags;
    p->fn = c.fn;
    if (p->flags & GOC_POOL_PREALLOC) {
        p->flags |= GOC_POOL_DISABLE_PURGE; /* they are kept */
        goc_mutex_lock(&p->mu, NULL);
        int rc = prealloc_locked(p);
        goc_mutex_unlock(&p->mu);
        if (rc) {
            goc_pool_free(p);
            return rc;
        }
    }
    *out = p;
    return 0;
}

/* Under mu: workers that stay, the ones the capacity counts. */
static int64_t staying_locked(const goc_pool *p)
{
    return p->st.workers - p->retiring;
}

static void wake_idle_waiters(goc_pool *p)
{
    if (p->running == 0 && p->nwaiting == 0)
        goc_cond_broadcast(&p->idle_cv);
}

/* Under mu: a call is about to block inside the pool. */
static void call_enter_locked(goc_pool *p)
{
    p->inside++;
}

/* Under mu: a blocking call is leaving; the last one wakes a free. */
static void call_leave_locked(goc_pool *p)
{
    if (--p->inside == 0 && p->freeing)
        goc_cond_broadcast(&p->idle_cv);
}

/* Under mu: give the head waiter's task to @w (which stays busy). */
static bool take_waiter_locked(goc_pool *p, struct worker *w)
{
    struct goc__dlink *l = p->waiters.head;
    if (!l)
        return false;
    struct waiter *wt = goc__container_of(l, struct waiter, link);
    goc__dqueue_remove(&p->waiters, l);
    p->nwaiting--;
    w->fn = wt->fn;
    w->arg = wt->arg;
    wt->granted = true;
    p->running++;
    p->st.submitted++;
    goc_cond_signal(&wt->cv);
    return true;
}

static void spawn_for_waiters_locked(goc_pool *p);

/*
 * Under mu: the worker leaves the pool for good. Its place may be wanted:
 * after a release and a reboot, submitters can queue behind workers that
 * were told to leave, and nobody else would start one for them.
 */
static bool leave_locked(goc_pool *p)
{
    p->st.workers--;
    if (!p->closed)
        spawn_for_waiters_locked(p);
    /* Then the rest of the capacity, idle: an idle worker never looks
     * at the waiters, so they are served first. */
    if (!p->closed && (p->flags & GOC_POOL_PREALLOC))
        prealloc_locked(p); /* best effort, as at a reboot */
    goc_cond_broadcast(&p->idle_cv);
    return false;
}

static bool idle_wait_locked(goc_pool *p, struct worker *w);

/* Under mu, after a task: true with w->fn set, or false to exit. */
static bool next_task_locked(goc_pool *p, struct worker *w)
{
    goc__dlist_remove(&p->busy, &w->link);
    w->fn = NULL;
    if (p->closed || (p->cap > 0 && staying_locked(p) > p->cap))
        return leave_locked(p);
    if (take_waiter_locked(p, w)) {
        goc__dlist_push(&p->busy, &w->link);
        return true;
    }
    goc__dlist_push(&p->idle, &w->link);
    p->nidle++;
    wake_idle_waiters(p);
    return idle_wait_locked(p, w);
}

/* Under mu, @w on the idle stack: wait for a task (true), or leave. */
static bool idle_wait_locked(goc_pool *p, struct worker *w)
{
    goc_ctx_local local;
    goc_ctx *c = NULL;
    if (!(p->flags & GOC_POOL_DISABLE_PURGE))
        c = goc_ctx_init_timeout(&local, NULL, p->expiry);
    int rc = 0;
    while (!w->fn && !w->exit && rc == 0)
        rc = goc_cond_wait(&w->cv, &p->mu, c);
    goc_ctx_destroy(c);
    if (w->fn)
        return true; /* the submitter moved it to busy */
    if (!w->exit) {  /* expired while idle */
        goc__dlist_remove(&p->idle, &w->link);
        p->nidle--;
        p->st.expired++;
    } else {
        p->retiring--;
    }
    return leave_locked(p);
}

static void worker_main(void *arg)
{
    struct worker *w = arg;
    goc_pool *p = w->p;
    atomic_store_explicit(&w->gid, goc_id(), memory_order_relaxed);
    goc_mutex_lock(&p->mu, NULL);
    /* Preallocated, it starts idle, unless a task came first. */
    bool more = w->fn || idle_wait_locked(p, w);
    goc_mutex_unlock(&p->mu);
    while (more) {
        bool exit = false; /* the recovery policy says so */
        bool panicked = false;
        int rc = goc__safe_call_in(&p->rec, w->fn, w->arg, &exit, &panicked);
        goc_mutex_lock(&p->mu, NULL);
        p->running--;
        p->st.completed++;
        if (rc < 0)
            p->st.failed++; /* the worker survives a failed task */
        p->st.panicked += panicked;
        p->st.workers_replaced += exit;
        if (exit) {
            /* A fresh worker takes the next task (ants' way). */
            goc__dlist_remove(&p->busy, &w->link);
            more = leave_locked(p);
        } else {
            more = next_task_locked(p, w);
        }
        goc_mutex_unlock(&p->mu);
    }
    goc__free(w);
}

/* Under mu: start a worker with the task @fn(@arg), or idle (NULL @fn). */
static int spawn_locked(goc_pool *p, goc_pool_fn fn, void *arg)
{
    struct worker *w = goc__calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->fn = fn;
    w->arg = arg;
    w->p = p;
    int rc = goc_go(worker_main, w);
    if (rc) {
        goc__free(w);
        return rc;
    }
    p->st.workers++;
    if (!fn) {
        goc__dlist_push(&p->idle, &w->link);
        p->nidle++;
        return 0;
    }
    goc__dlist_push(&p->busy, &w->link);
    p->running++;
    p->st.submitted++;
    return 0;
}

/* Under mu: start idle workers until @p has its capacity of them. */
static int prealloc_locked(goc_pool *p)
{
    int rc = 0;
    while (rc == 0 && staying_locked(p) < p->cap)
        rc = spawn_locked(p, NULL, NULL);
    return rc;
}

/* Under mu: start workers for the waiters, oldest first, while the
 * capacity allows. */
static void spawn_for_waiters_locked(goc_pool *p)
{
    while (p->waiters.head && (p->cap < 0 || staying_locked(p) < p->cap)) {
        struct waiter *wt =
            goc__container_of(p->waiters.head, struct waiter, link);
        int rc = spawn_locked(p, wt->fn, wt->arg);
        /* A worker left will serve the queue when its task ends; with
         * none, nobody would: the first waiter gets the error. */
        if (rc != 0 && staying_locked(p) > 0)
            break;
        goc__dqueue_remove(&p->waiters, &wt->link);
        p->nwaiting--;
        wt->granted = rc == 0;
        wt->failed = rc;
        goc_cond_signal(&wt->cv);
        if (rc != 0)
            break;
    }
    wake_idle_waiters(p); /* a waiter failed may have been the last */
}

/* Under mu: hand the task to an idle or new worker if possible. */
static int try_place_locked(goc_pool *p, goc_pool_fn fn, void *arg)
{
    struct goc__dlink *l = p->idle;
    /* After a shrink, idle workers may outnumber the room left. */
    if (l && (p->cap < 0 || p->running < p->cap)) { /* LIFO: the newest */
        struct worker *w = goc__container_of(l, struct worker, link);
        goc__dlist_remove(&p->idle, l);
        p->nidle--;
        goc__dlist_push(&p->busy, l);
        w->fn = fn;
        w->arg = arg;
        p->running++;
        p->st.submitted++;
        goc_cond_signal(&w->cv);
        return 0;
    }
    if (p->cap < 0 || staying_locked(p) < p->cap)
        return spawn_locked(p, fn, arg);
    return -EAGAIN;
}

/* Under mu: is the caller a worker of @p (a nested submit)? */
static bool nested_locked(goc_pool *p)
{
    int64_t me = goc_id();
    for (struct goc__dlink *l = p->busy; me && l; l = l->next) {
        struct worker *w = goc__container_of(l, struct worker, link);
        if (atomic_load_explicit(&w->gid, memory_order_relaxed) == me)
            return true;
    }
    return false;
}

/* Under mu: queue as a waiter until granted, closed or @ctx ends. */
static int wait_locked(goc_pool *p, goc_pool_fn fn, void *arg, goc_ctx *ctx)
{
    struct waiter wt = { .fn = fn, .arg = arg };
    goc__dqueue_push_back(&p->waiters, &wt.link);
    p->nwaiting++;
    int rc = 0;
    while (!wt.granted && !wt.closed && !wt.failed && rc == 0)
        rc = goc_cond_wait(&wt.cv, &p->mu, ctx);
    if (wt.granted)
        return 0; /* granted first: the task runs, whatever ctx did */
    if (wt.closed)
        return GOC_ECLOSED; /* release took it off the queue */
    if (wt.failed) {
        /* Off the queue: no worker could start. The next waiter gets a
         * worker or the error in turn; nobody else would start one. */
        if (!p->closed)
            spawn_for_waiters_locked(p);
        return wt.failed;
    }
    goc__dqueue_remove(&p->waiters, &wt.link);
    p->nwaiting--;
    wake_idle_waiters(p);
    return rc;
}

int goc_pool_submit(goc_pool *p, goc_pool_fn fn, void *arg, goc_ctx *ctx)
{
    if (!p || !fn)
        return -EINVAL;
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    goc_mutex_lock(&p->mu, NULL);
    if (p->closed)
        rc = GOC_ECLOSED;
    else if ((rc = try_place_locked(p, fn, arg)) != -EAGAIN)
        ;
    else if ((p->flags & GOC_POOL_NONBLOCKING) ||
             (p->max_blocking && p->nwaiting >= p->max_blocking) ||
             nested_locked(p))
        rc = GOC_EOVERLOAD;
    else {
        call_enter_locked(p);
        rc = wait_locked(p, fn, arg, ctx);
        call_leave_locked(p);
    }
    if (rc == GOC_EOVERLOAD)
        p->st.refused++;
    goc_mutex_unlock(&p->mu);
    return rc;
}

/* Under mu: tell up to @n idle workers to leave. */
static void retire_idle_locked(goc_pool *p, int64_t n)
{
    while (p->idle && n-- > 0) {
        struct worker *w = goc__container_of(p->idle, struct worker, link);
        goc__dlist_remove(&p->idle, &w->link);
        p->nidle--;
        p->retiring++;
        w->exit = true;
        goc_cond_signal(&w->cv);
    }
}

int goc_pool_tune(goc_pool *p, int64_t cap)
{
    if (!p || cap <= 0)
        return -EINVAL;
    goc_mutex_lock(&p->mu, NULL);
    int rc = p->closed                      ? GOC_ECLOSED
             : p->cap < 0                   ? -EPERM
             : p->flags & GOC_POOL_PREALLOC ? -EPERM
                                            : 0;
    if (!rc) {
        p->cap = cap;
        spawn_for_waiters_locked(p);                    /* growing */
        retire_idle_locked(p, staying_locked(p) - cap); /* shrinking */
    }
    goc_mutex_unlock(&p->mu);
    return rc;
}

#define GETTER(name, expr)               \
    int64_t goc_pool_##name(goc_pool *p) \
    {                                    \
        if (!p)                          \
            return 0;                    \
        goc_mutex_lock(&p->mu, NULL);    \
        int64_t v = (expr);              \
        goc_mutex_unlock(&p->mu);        \
        return v;                        \
    }

GETTER(running, p->running)
GETTER(free_slots, p->cap < 0 ? -1 : p->cap - p->running)
GETTER(waiting, p->nwaiting)
GETTER(cap, p->cap)

bool goc_pool_is_closed(goc_pool *p)
{
    if (!p)
        return false;
    goc_mutex_lock(&p->mu, NULL);
    bool closed = p->closed;
    goc_mutex_unlock(&p->mu);
    return closed;
}

int goc_pool_stats(goc_pool *p, struct goc_pool_stats *st)
{
    if (!p || !st)
        return -EINVAL;
    goc_mutex_lock(&p->mu, NULL);
    *st = p->st;
    goc_mutex_unlock(&p->mu);
    return 0;
}

int goc_pool_release(goc_pool *p)
{
    if (!p)
        return -EINVAL;
    goc_mutex_lock(&p->mu, NULL);
    int rc = p->closed ? GOC_ECLOSED : 0;
    p->closed = true;
    /* Idle workers leave; busy ones after their task. */
    retire_idle_locked(p, INT64_MAX);
    /* Every waiter is told, and off the queue: one that wakes only after
     * a reboot still gets its GOC_ECLOSED. */
    while (p->waiters.head) {
        struct waiter *wt =
            goc__container_of(p->waiters.head, struct waiter, link);
        goc__dqueue_remove(&p->waiters, &wt->link);
        p->nwaiting--;
        wt->closed = true;
        goc_cond_signal(&wt->cv);
    }
    goc_cond_broadcast(&p->idle_cv); /* no one waits now */
    goc_mutex_unlock(&p->mu);
    return rc;
}

/* Wait until no worker is alive, or @ctx ends. */
static int wait_exited(goc_pool *p, goc_ctx *ctx)
{
    int rc = 0;
    goc_mutex_lock(&p->mu, NULL);
    call_enter_locked(p);
    while (p->st.workers && rc == 0)
        rc = goc_cond_wait(&p->idle_cv, &p->mu, ctx);
    if (!p->st.workers)
        rc = 0;
    call_leave_locked(p);
    goc_mutex_unlock(&p->mu);
    return rc;
}

int goc__pool_wait_exited(goc_pool *p, int64_t deadline)
{
    goc_ctx_local local;
    goc_ctx *c = goc_ctx_init_deadline(&local, NULL, deadline);
    int rc = wait_exited(p, c);
    goc_ctx_destroy(c);
    return rc ? -ETIMEDOUT : 0;
}

int goc_pool_release_timeout(goc_pool *p, int64_t timeout)
{
    int rc = goc_pool_release(p);
    if (rc)
        return rc;
    goc_ctx_local local;
    goc_ctx *c = goc_ctx_init_timeout(&local, NULL, timeout);
    rc = wait_exited(p, c);
    goc_ctx_destroy(c);
    return rc ? -ETIMEDOUT : 0;
}

int goc_pool_reboot(goc_pool *p)
{
    if (!p)
        return -EINVAL;
    goc_mutex_lock(&p->mu, NULL);
    p->closed = false;
    /* Best effort: a worker that cannot start now starts on demand. */
    if (p->flags & GOC_POOL_PREALLOC)
        prealloc_locked(p);
    goc_mutex_unlock(&p->mu);
    return 0;
}

int goc_pool_wait_idle(goc_pool *p, goc_ctx *ctx)
{
    if (!p)
        return -EINVAL;
    int rc = 0;
    goc_mutex_lock(&p->mu, NULL);
    call_enter_locked(p);
    while ((p->running || p->nwaiting) && rc == 0)
        rc = goc_cond_wait(&p->idle_cv, &p->mu, ctx);
    if (!p->running && !p->nwaiting)
        rc = 0;
    call_leave_locked(p);
    goc_mutex_unlock(&p->mu);
    return rc;
}

void goc_pool_free(goc_pool *p)
{
    if (!p)
        return;
    goc_pool_release(p);
    wait_exited(p, NULL);
    /* Submits the release refused, and waits it woke, may still be on
     * their way out: the pool goes after them. */
    goc_mutex_lock(&p->mu, NULL);
    p->freeing = true;
    while (p->inside)
        goc_cond_wait(&p->idle_cv, &p->mu, NULL);
    goc_mutex_unlock(&p->mu);
    goc__recovery_slot_set(&p->rec, NULL);
    goc__free(p);
}

int64_t goc__pool_inside(goc_pool *p)
{
    goc_mutex_lock(&p->mu, NULL);
    int64_t n = p->inside;
    goc_mutex_unlock(&p->mu);
    return n;
}

int goc_pool_set_recovery(goc_pool *p, goc_recovery *h)
{
    if (!p)
        return -EINVAL;
    goc__recovery_slot_set(&p->rec, h);
    return 0;
}

int goc_pool_invoke(goc_pool *p, void *arg, goc_ctx *ctx)
{
    if (!p || !p->fn)
        return -EINVAL;
    return goc_pool_submit(p, p->fn, arg, ctx);
}
