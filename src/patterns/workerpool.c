/* SPDX-License-Identifier: MIT */
/*
 * Worker pool with a task queue (pond v2 semantics). One mutex guards the
 * queue and the counters; three condition variables carry the three
 * kinds of waiting: workers for tasks, submitters for queue space, and
 * stop/idle waiters for the pool to drain. Every accepted task owns a
 * future that is settled exactly once, always outside the lock: by the
 * worker that ran it, or as cancelled by whoever discards it.
 */
#include "goc/pool.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "patterns.h"
#include "../internal/alloc.h"
#include "../internal/list.h"

struct task {
    struct goc__dlink link;
    goc_task_fn fn;
    void *arg;
    goc_value_free_fn free_value;
    goc_future *f; /* the pool's reference */
    goc_ctx *ctx;  /* child of the pool ctx; cancelled by the handle */
    int64_t queued_at;
    const void *owner;                   /* a task group, or NULL */
    void (*finished)(const void *owner); /* the owner's, once accepted */
};

struct goc_workerpool {
    goc_mutex mu;
    goc_cond work_cv;  /* workers wait for a task */
    goc_cond space_cv; /* submitters wait for queue space */
    goc_cond idle_cv;  /* stop_wait / wait_idle */
    struct goc__dqueue q;
    int64_t qlen, queue_size, max_workers;
    unsigned flags;
    goc_ctx *ctx; /* ours: a child of the configured ctx */
    int64_t workers, idle;
    int64_t settling; /* tasks taken off the queue, settled unrun */
    bool stopped, canceled;
    /* When ctx ends, the queue is cancelled at once, not when a worker
     * next looks (they may all be busy for long). */
    goc_ctx_after on_ctx_end;
    bool ctx_end_done; /* under mu: that callback has finished */
    /* Under mu: submits and waits inside the pool, which free waits for
     * once it is freeing (a submitter woken by the stop still relocks). */
    int64_t inside;
    bool freeing;
    struct goc_workerpool_stats st; /* under mu */
    struct goc__recovery_slot rec;
    void (*on_discard)(goc_task_fn fn, void *arg, void *discard_arg);
    void *discard_arg;
};

struct discard_call {
    goc_workerpool *p;
    struct task *t;
};

static int call_discard(void *arg)
{
    struct discard_call *d = arg;
    d->p->on_discard(d->t->fn, d->t->arg, d->p->discard_arg);
    return 0;
}

/* A task accepted and never to run: its argument goes to the owner's
 * hook (outside every lock; a panic there fails alone). */
static void discarded(goc_workerpool *p, struct task *t)
{
    struct discard_call d = { p, t };
    if (p->on_discard)
        goc__safe_call_in(&p->rec, call_discard, &d, NULL, NULL);
}

static void task_free(struct task *t)
{
    const void *owner = t->owner;
    void (*finished)(const void *) = t->finished;
    goc_ctx_release(t->ctx); /* a child of the owner's */
    goc_future_release(t->f);
    goc__free(t);
    if (finished)
        finished(owner);
}

/* Outside the lock: settle @t as @status (its value, if any, goes too).
 * Returns whether this settled it (its handle may have been first). */
static bool settle(struct task *t,
                   int status,
                   void *value,
                   goc_panic_info *panic)
{
    if (status > 0)
        status = -EINVAL;
    bool won = panic ? goc__future_fail_panic(t->f, panic) != 0
                     : goc_future_complete(t->f, status, value) != 0;
    if (!won && value && t->free_value)
        t->free_value(value); /* the handle was cancelled meanwhile */
    task_free(t);
    return won;
}

/*
 * Under mu: unlink every queued task, for cancel_taken() to settle after
 * unlocking. Until then they count as settling: neither idle nor stopped
 * may be reported with a handle still pending.
 */
static struct goc__dlink *take_queue_locked(goc_workerpool *p, int64_t *n)
{
    struct goc__dlink *all = p->q.head;
    *n = p->qlen;
    p->q.head = p->q.tail = NULL;
    p->qlen = 0;
    p->settling += *n;
    p->st.canceled += *n;
    p->st.waiting = 0;
    goc_cond_broadcast(&p->space_cv);
    return all;
}

/* Settle @n tasks taken off the queue as cancelled; returns how many
 * this call settled (the others' handles were cancelled first). */
static int64_t cancel_taken(goc_workerpool *p, struct goc__dlink *l, int64_t n)
{
    int64_t won = 0;
    while (l) {
        struct goc__dlink *next = l->next;
        struct task *t = goc__container_of(l, struct task, link);
        discarded(p, t);
        won += settle(t, -ECANCELED, NULL, NULL);
        l = next;
    }
    goc_mutex_lock(&p->mu, NULL);
    p->settling -= n;
    goc_cond_broadcast(&p->idle_cv);
    goc_mutex_unlock(&p->mu);
    return won;
}

/* Under mu: enter the cancelled state; returns the queue to discard. */
static struct goc__dlink *cancel_locked(goc_workerpool *p, int64_t *n)
{
    p->stopped = p->canceled = true;
    goc_cond_broadcast(&p->work_cv);
    return take_queue_locked(p, n);
}

static void note_timing(goc_workerpool *p, int64_t wait, int64_t run)
{
    p->st.wait_ns_total += wait;
    p->st.run_ns_total += run;
    if (wait > p->st.wait_ns_max)
        p->st.wait_ns_max = wait;
    if (run > p->st.run_ns_max)
        p->st.run_ns_max = run;
}

static void note_outcome(goc_workerpool *p, int rc)
{
    if (rc == 0)
        p->st.succeeded++;
    else if (rc == -ECANCELED)
        p->st.canceled++;
    else
        p->st.failed++;
}

/* Runs one task with the lock dropped; returns with mu held again, and
 * true if the recovery policy wants its worker replaced. */
static bool run_locked(goc_workerpool *p, struct task *t)
{
    p->st.running++;
    goc_mutex_unlock(&p->mu);
    int64_t queued_at = t->queued_at, start = goc_now();
    void *value = NULL;
    bool exit = false, panicked = false;
    goc_panic_info *panic;
    int rc = goc__safe_task_in(&p->rec, t->fn, t->ctx, t->arg, &value, &exit,
                               &panicked, &panic);
    int64_t end = goc_now();
    settle(t, rc, value, panic); /* frees t */
    goc_mutex_lock(&p->mu, NULL);
    p->st.running--;
    p->st.panicked += panicked;
    note_outcome(p, rc > 0 ? -EINVAL : rc);
    note_timing(p, start - queued_at, end - start);
    if (!p->qlen && !p->st.running)
        goc_cond_broadcast(&p->idle_cv);
    return exit;
}

/* Under mu: if the pool ctx ended, cancel the queue (lock dropped). */
static void check_ctx_locked(goc_workerpool *p)
{
    if (p->canceled || !goc_ctx_err(p->ctx))
        return;
    int64_t n;
    struct goc__dlink *l = cancel_locked(p, &n);
    goc_mutex_unlock(&p->mu);
    cancel_taken(p, l, n);
    goc_mutex_lock(&p->mu, NULL);
}

/* Under mu: next task to run, NULL when the worker should exit. */
static struct task *next_locked(goc_workerpool *p)
{
    for (;;) {
        check_ctx_locked(p);
        if (p->max_workers && p->workers > p->max_workers)
            return NULL; /* shrunk: surplus workers leave */
        struct goc__dlink *l = p->q.head;
        if (l) {
            goc__dqueue_remove(&p->q, l);
            p->qlen--;
            p->st.waiting = p->qlen;
            goc_cond_signal(&p->space_cv);
            return goc__container_of(l, struct task, link);
        }
        if (p->stopped)
            return NULL;
        p->idle++;
        /* Without a queue, an idle worker is the room a submit waits for
         * (a dequeue, which signals it otherwise, never happens). */
        if (p->queue_size == GOC_WP_NO_QUEUE)
            goc_cond_broadcast(&p->space_cv);
        goc_cond_wait(&p->work_cv, &p->mu, p->ctx); /* ctx: checked above */
        p->idle--;
    }
}

static void worker(void *arg)
{
    goc_workerpool *p = arg;
    goc_mutex_lock(&p->mu, NULL);
    struct task *t;
    while ((t = next_locked(p)) != NULL) {
        /* Cancelled while queued (its handle, or its group's context):
         * settled as cancelled, never run. */
        bool dead = goc_future_is_done(t->f);
        if (dead || goc_ctx_err(t->ctx)) {
            p->st.canceled++;
            p->settling++; /* not idle until it is settled */
            goc_mutex_unlock(&p->mu);
            discarded(p, t);
            if (dead)
                task_free(t);
            else
                settle(t, -ECANCELED, NULL, NULL);
            goc_mutex_lock(&p->mu, NULL);
            if (--p->settling == 0 && !p->qlen && !p->st.running)
                goc_cond_broadcast(&p->idle_cv);
            continue;
        }
        /* Replaced: the fresh worker takes over our place in the count
         * (if none can start, we go on instead, not counted as replaced). */
        if (run_locked(p, t) && goc_go(worker, p) == 0) {
            p->st.workers_replaced++;
            goc_mutex_unlock(&p->mu);
            return;
        }
    }
    p->workers--;
    p->st.workers = p->workers;
    goc_cond_broadcast(&p->idle_cv);
    if (p->queue_size == GOC_WP_NO_QUEUE)
        goc_cond_broadcast(&p->space_cv); /* room to start another */
    goc_cond_signal(&p->work_cv); /* pass a shrink on to the next worker */
    goc_mutex_unlock(&p->mu);
}

/* p->ctx ended (the configured ctx, or a cancel): settle the queue. */
static void ctx_ended(void *arg)
{
    goc_workerpool *p = arg;
    goc_mutex_lock(&p->mu, NULL);
    check_ctx_locked(p);
    p->ctx_end_done = true;
    goc_cond_broadcast(&p->idle_cv);
    goc_mutex_unlock(&p->mu);
}

int goc_workerpool_new(const struct goc_workerpool_config *cfg,
                       goc_workerpool **out)
{
    struct goc_workerpool_config c = { 0 };
    if (cfg)
        c = *cfg;
    if (!out || c.max_workers < 0 || c.queue_size < GOC_WP_NO_QUEUE ||
        (c.flags & ~GOC_WP_NONBLOCKING))
        return -EINVAL;
    goc_workerpool *p = goc__calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    int rc = goc_ctx_with_cancel(c.ctx, &p->ctx);
    if (rc) {
        goc__free(p);
        return rc;
    }
    p->queue_size = c.queue_size;
    p->max_workers = c.max_workers;
    p->flags = c.flags;
    p->on_discard = c.on_discard;
    p->discard_arg = c.discard_arg;
    goc_ctx_after_func(p->ctx, ctx_ended, p, &p->on_ctx_end);
    *out = p;
    return 0;
}

static int new_task(goc_ctx *parent,
                    goc_task_fn fn,
                    void *arg,
                    goc_value_free_fn free_value,
                    struct task **out)
{
    struct task *t = goc__calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    int rc = goc_future_new(free_value, &t->f);
    if (!rc)
        rc = goc_ctx_with_cancel(parent, &t->ctx);
    if (rc) {
        task_free(t);
        return rc;
    }
    goc__future_set_producer(t->f, t->ctx);
    t->fn = fn;
    t->arg = arg;
    t->free_value = free_value;
    *out = t;
    return 0;
}

/* Under mu: no task is taken any more. A pool ctx that has ended counts
 * at once, before ctx_ended() (or a worker) has settled the queue for it:
 * the pool is cancelled from that moment on. */
static bool closed_locked(goc_workerpool *p)
{
    return p->stopped || goc_ctx_err(p->ctx);
}

static bool can_spawn(goc_workerpool *p)
{
    return !p->max_workers || p->workers < p->max_workers;
}

static bool has_room(goc_workerpool *p)
{
    if (p->queue_size == GOC_WP_NO_QUEUE) {
        /* Idle workers beyond a shrink are leaving, not starting one. */
        int64_t leaving = p->max_workers && p->workers > p->max_workers
                              ? p->workers - p->max_workers
                              : 0;
        return p->qlen < p->idle - leaving || can_spawn(p);
    }
    return !p->queue_size || p->qlen < p->queue_size;
}

/* Under mu: queue @t and make sure a worker will take it. */
static int enqueue_locked(goc_workerpool *p, struct task *t)
{
    t->queued_at = goc_now();
    goc__dqueue_push_back(&p->q, &t->link);
    p->qlen++;
    if (p->qlen <= p->idle) {
        goc_cond_signal(&p->work_cv);
    } else if (can_spawn(p)) {
        p->workers++;
        int rc = goc_go(worker, p);
        if (rc) {
            p->workers--;
            /* Nobody would ever run it; or, without a queue, nobody would
             * run it now, which is what acceptance promises there. */
            if (!p->workers || p->queue_size == GOC_WP_NO_QUEUE) {
                goc__dqueue_remove(&p->q, &t->link);
                p->qlen--;
                return rc;
            }
        }
    }
    p->st.workers = p->workers;
    p->st.waiting = p->qlen;
    p->st.submitted++;
    return 0;
}

/* Under mu: a submit or a wait is leaving; the last one wakes a free. */
static void leave_locked(goc_workerpool *p)
{
    if (--p->inside == 0 && p->freeing)
        goc_cond_broadcast(&p->idle_cv);
}

static int submit(goc_workerpool *p, struct task *t, bool wait, goc_ctx *ctx)
{
    int rc;
    bool waited = false;
    goc_mutex_lock(&p->mu, NULL);
    p->inside++;
    for (;;) {
        if (closed_locked(p)) {
            rc = GOC_ECLOSED;
            break;
        }
        bool room = has_room(p);
        if (room && !(waited && goc_ctx_err(t->ctx))) {
            rc = enqueue_locked(p, t);
            break;
        }
        if (!room && (!wait || (p->flags & GOC_WP_NONBLOCKING))) {
            rc = GOC_EOVERLOAD;
            break;
        }
        /* Its ctx ended before it found room (its group failed): it
         * would never run, so it neither waits for room nor takes it. */
        if (goc_ctx_err(t->ctx)) {
            rc = GOC_ECLOSED;
            break;
        }
        if ((rc = goc_cond_wait(&p->space_cv, &p->mu, ctx)) != 0)
            break;
        waited = true;
    }
    if (rc)
        p->st.refused++;
    leave_locked(p);
    goc_mutex_unlock(&p->mu);
    return rc;
}

static int submit_common(goc_workerpool *p,
                         const struct goc__wp_owner *o,
                         goc_task_fn fn,
                         void *arg,
                         goc_value_free_fn free_value,
                         goc_future **task,
                         bool wait,
                         goc_ctx *ctx)
{
    if (task)
        *task = NULL;
    if (!p || !fn)
        return -EINVAL;
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    struct task *t;
    if ((rc = new_task(o ? o->ctx : p->ctx, fn, arg, free_value, &t)) != 0) {
        goc_mutex_lock(&p->mu, NULL);
        p->st.refused++;
        goc_mutex_unlock(&p->mu);
        return rc;
    }
    t->owner = o ? o->owner : NULL;
    t->finished = o ? o->finished : NULL;
    if (task)
        *task = goc_future_retain(t->f); /* before a worker can finish t */
    if ((rc = submit(p, t, wait, ctx)) != 0) {
        if (task) {
            goc_future_release(*task);
            *task = NULL;
        }
        t->finished = NULL; /* never accepted: the caller knows */
        task_free(t);
    }
    return rc;
}

int goc_workerpool_submit(goc_workerpool *p,
                          goc_task_fn fn,
                          void *arg,
                          goc_value_free_fn free_value,
                          goc_future **task,
                          goc_ctx *ctx)
{
    return submit_common(p, NULL, fn, arg, free_value, task, true, ctx);
}

int goc_workerpool_try_submit(goc_workerpool *p,
                              goc_task_fn fn,
                              void *arg,
                              goc_value_free_fn free_value,
                              goc_future **task)
{
    return submit_common(p, NULL, fn, arg, free_value, task, false, NULL);
}

int goc__workerpool_submit_owned(goc_workerpool *p,
                                 const struct goc__wp_owner *o,
                                 goc_task_fn fn,
                                 void *arg,
                                 goc_value_free_fn free_value,
                                 goc_future **task,
                                 goc_ctx *ctx)
{
    return submit_common(p, o, fn, arg, free_value, task, true, ctx);
}

goc_ctx *goc__workerpool_ctx(goc_workerpool *p)
{
    return p->ctx;
}

bool goc__workerpool_stopped(goc_workerpool *p)
{
    goc_mutex_lock(&p->mu, NULL);
    bool stopped = closed_locked(p); /* a cancel stops it too */
    goc_mutex_unlock(&p->mu);
    return stopped;
}

int64_t goc__workerpool_cancel_owned(goc_workerpool *p, const void *owner)
{
    struct goc__dlink *mine = NULL;
    int64_t n = 0;
    goc_mutex_lock(&p->mu, NULL);
    for (struct goc__dlink *l = p->q.head, *next; l; l = next) {
        next = l->next;
        if (goc__container_of(l, struct task, link)->owner != owner)
            continue;
        goc__dqueue_remove(&p->q, l);
        goc__dlist_push(&mine, l);
        p->qlen--;
        n++;
    }
    p->st.waiting = p->qlen;
    p->st.canceled += n;
    p->settling += n;
    /* Room for others; and the owner's submits waiting for room see
     * that their ctx has ended (their group failed). */
    goc_cond_broadcast(&p->space_cv);
    goc_mutex_unlock(&p->mu);
    return cancel_taken(p, mine, n);
}

int goc_workerpool_stop(goc_workerpool *p)
{
    if (!p)
        return -EINVAL;
    goc_mutex_lock(&p->mu, NULL);
    p->stopped = true;
    goc_cond_broadcast(&p->work_cv);
    goc_cond_broadcast(&p->space_cv);
    goc_mutex_unlock(&p->mu);
    return 0;
}

int64_t goc_workerpool_cancel(goc_workerpool *p)
{
    if (!p)
        return -EINVAL;
    int64_t n;
    goc_mutex_lock(&p->mu, NULL);
    struct goc__dlink *l = cancel_locked(p, &n);
    goc_mutex_unlock(&p->mu);
    goc_ctx_cancel(p->ctx); /* running tasks see their ctx end */
    return cancel_taken(p, l, n);
}

/* Wait under mu until @done(p) holds. */
static int wait_for(goc_workerpool *p,
                    bool (*done)(goc_workerpool *),
                    goc_ctx *ctx)
{
    int rc = 0;
    goc_mutex_lock(&p->mu, NULL);
    p->inside++;
    while (!done(p) && (rc = goc_cond_wait(&p->idle_cv, &p->mu, ctx)) == 0)
        ;
    if (done(p))
        rc = 0; /* the observed state wins over a ctx that just ended */
    leave_locked(p);
    goc_mutex_unlock(&p->mu);
    return rc;
}

static bool all_exited(goc_workerpool *p)
{
    return p->workers == 0 && p->qlen == 0 && p->settling == 0;
}

static bool is_idle(goc_workerpool *p)
{
    return p->qlen == 0 && p->st.running == 0 && p->settling == 0;
}

int goc_workerpool_stop_wait(goc_workerpool *p, goc_ctx *ctx)
{
    if (!p)
        return -EINVAL;
    goc_workerpool_stop(p);
    return wait_for(p, all_exited, ctx);
}

int goc_workerpool_wait_idle(goc_workerpool *p, goc_ctx *ctx)
{
    if (!p)
        return -EINVAL;
    return wait_for(p, is_idle, ctx);
}

int goc_workerpool_resize(goc_workerpool *p, int64_t n)
{
    if (!p || n < 0)
        return -EINVAL;
    goc_mutex_lock(&p->mu, NULL);
    if (closed_locked(p)) { /* a cancel stops it too */
        goc_mutex_unlock(&p->mu);
        return GOC_ECLOSED;
    }
    p->max_workers = n;
    /* Growing: start workers for what is queued beyond the idle ones. */
    for (int64_t want = p->qlen - p->idle;
         want > 0 && can_spawn(p) && !p->canceled; want--) {
        p->workers++;
        if (goc_go(worker, p) != 0) {
            p->workers--;
            break;
        }
    }
    goc_cond_broadcast(&p->work_cv); /* shrinking: surplus idle exit */
    goc_cond_broadcast(&p->space_cv);
    p->st.workers = p->workers;
    goc_mutex_unlock(&p->mu);
    return 0;
}

int goc_workerpool_stats(goc_workerpool *p, struct goc_workerpool_stats *st)
{
    if (!p || !st)
        return -EINVAL;
    goc_mutex_lock(&p->mu, NULL);
    *st = p->st;
    goc_mutex_unlock(&p->mu);
    return 0;
}

void goc_workerpool_free(goc_workerpool *p)
{
    if (!p)
        return;
    goc_workerpool_stop_wait(p, NULL);
    if (!goc_ctx_after_stop(&p->on_ctx_end)) {
        /* It has started (the ctx ended): it still reads p. */
        goc_mutex_lock(&p->mu, NULL);
        while (!p->ctx_end_done)
            goc_cond_wait(&p->idle_cv, &p->mu, NULL);
        goc_mutex_unlock(&p->mu);
    }
    /* Submits the stop refused, and waits, may still be on their way
     * out: the pool goes after them. */
    goc_mutex_lock(&p->mu, NULL);
    p->freeing = true;
    while (p->inside)
        goc_cond_wait(&p->idle_cv, &p->mu, NULL);
    goc_mutex_unlock(&p->mu);
    goc_ctx_release(p->ctx);
    goc__recovery_slot_set(&p->rec, NULL);
    goc__free(p);
}

int64_t goc__workerpool_inside(goc_workerpool *p)
{
    goc_mutex_lock(&p->mu, NULL);
    int64_t n = p->inside;
    goc_mutex_unlock(&p->mu);
    return n;
}

int goc_workerpool_set_recovery(goc_workerpool *p, goc_recovery *h)
{
    if (!p)
        return -EINVAL;
    goc__recovery_slot_set(&p->rec, h);
    return 0;
}
