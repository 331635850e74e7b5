/* SPDX-License-Identifier: MIT */
/*
 * Bounded resource pool. One goc_mutex guards the counts, the idle stack,
 * the loan list and a FIFO of waiters. A release hands its object (or,
 * for a broken one, the right to create one) straight to the first
 * waiter, so nobody barges past the queue. Callbacks (create, validate,
 * reset, destroy) run with the mutex released.
 */
#include "goc/objpool.h"
#include "goc/panic.h"
#include "goc/context.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

#include <string.h>

struct idle {
    void *obj;
    int64_t since;
};

enum grant { NONE, GOT_OBJ, MAY_CREATE };

struct waiter {
    struct waiter *next, *prev;
    goc_cond cond;
    enum grant grant;
    void *obj;
};

struct goc_rpool {
    goc_mutex mu;
    struct goc_rpool_opts o;
    bool closed;
    int64_t total;
    struct idle *idle; /* stack: oldest at 0 */
    int64_t nidle;
    void **loans; /* objects out on loan */
    int64_t nloans;
    struct waiter *head, *tail;
    int64_t nwait;
    int64_t inside;    /* acquire and release calls under way */
    goc_cond quiet_cv; /* closed, no call inside, nothing on loan */
    struct goc_rpool_stats st;
};

int goc_rpool_new(const struct goc_rpool_opts *o, goc_rpool **out)
{
    if (!o || !out || o->max_total < 1 || o->max_idle < 0 ||
        o->max_idle > o->max_total || !o->create)
        return -EINVAL;
    goc_rpool *rp = goc__calloc(1, sizeof *rp);
    if (!rp)
        return -ENOMEM;
    rp->o = *o;
    rp->idle = goc__calloc((size_t)o->max_idle + 1, sizeof *rp->idle);
    rp->loans = goc__calloc((size_t)o->max_total, sizeof *rp->loans);
    if (!rp->idle || !rp->loans) {
        goc__free(rp->idle);
        goc__free(rp->loans);
        goc__free(rp);
        return -ENOMEM;
    }
    *out = rp;
    return 0;
}

static void destroy(goc_rpool *rp, void *obj)
{
    if (rp->o.destroy)
        rp->o.destroy(obj, rp->o.arg);
}

static void lock(goc_rpool *rp)
{
    goc_mutex_lock(&rp->mu, NULL);
}

static void unlock(goc_rpool *rp)
{
    goc_mutex_unlock(&rp->mu);
}

static void loan_add(goc_rpool *rp, void *obj)
{
    rp->loans[rp->nloans++] = obj; /* nloans < total <= max_total */
}

static bool loan_remove(goc_rpool *rp, void *obj)
{
    for (int64_t i = 0; i < rp->nloans; i++) {
        if (rp->loans[i] == obj) {
            rp->loans[i] = rp->loans[--rp->nloans];
            return true;
        }
    }
    return false;
}

static void dequeue(goc_rpool *rp, struct waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        rp->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        rp->tail = w->prev;
    rp->nwait--;
}

/* Under the lock: give @obj (or, if NULL, a creation slot) to the first
 * waiter. Returns false if nobody waits. */
static bool hand_off(goc_rpool *rp, void *obj)
{
    struct waiter *w = rp->head;
    if (!w)
        return false;
    dequeue(rp, w);
    w->grant = obj ? GOT_OBJ : MAY_CREATE;
    w->obj = obj;
    if (!obj)
        rp->total++; /* the slot is the waiter's now */
    goc_cond_signal(&w->cond);
    return true;
}

/* Under the lock: pop idle objects past idle_timeout into @out, to be
 * destroyed after unlocking and then retired. Returns how many. */
static int64_t expire_locked(goc_rpool *rp, void **out, int64_t max)
{
    if (rp->o.idle_timeout <= 0 || !rp->nidle)
        return 0;
    int64_t now = goc_now(), n = 0;
    while (n < rp->nidle && n < max &&
           now - rp->idle[n].since >= rp->o.idle_timeout)
        n++;
    for (int64_t i = 0; i < n; i++)
        out[i] = rp->idle[i].obj;
    memmove(rp->idle, rp->idle + n, (size_t)(rp->nidle - n) * sizeof *rp->idle);
    rp->nidle -= n;
    return n;
}

/*
 * n objects were destroyed: only now do their places count as free and
 * go to waiters as creation slots. Freeing a place before its object is
 * gone let a waiter create the replacement while the old one still
 * existed, one more than max_total (a server's connection limit, say).
 */
static void retire(goc_rpool *rp, int64_t n)
{
    lock(rp);
    rp->total -= n;
    rp->st.destroyed += n;
    for (int64_t i = 0; i < n && !rp->closed && rp->total < rp->o.max_total &&
                        hand_off(rp, NULL);
         i++)
        ;
    unlock(rp);
}

#define EXPIRE_BATCH 16

struct destroy_call {
    goc_rpool *rp;
    void *obj;
};

static int destroy_call(void *arg)
{
    struct destroy_call *c = arg;
    destroy(c->rp, c->obj);
    return 0;
}

/* Destroy @obj; a panic in destroy is returned, joined after @pending
 * (the panic already on its way, if any). */
static goc_panic_info *destroy_caught(goc_rpool *rp,
                                      void *obj,
                                      goc_panic_info *pending)
{
    struct destroy_call c = { rp, obj };
    goc_panic_info *pi = NULL;
    goc_try(destroy_call, &c, &pi);
    return goc__panic_join(pending, pi);
}

/* Destroy all @n objects, even past a destroy that panics (the rest
 * would leak); the panics, joined, are returned for the caller to raise
 * once it has accounted for every one. */
static goc_panic_info *destroy_all(goc_rpool *rp, void **v, int64_t n)
{
    goc_panic_info *pi = NULL;
    for (int64_t i = 0; i < n; i++)
        pi = destroy_caught(rp, v[i], pi);
    return pi;
}

/*
 * Destroy and retire every idle object past idle_timeout, a batch at a
 * time (destroyed with the lock released). All of them: the next acquire
 * takes the newest idle object, which must not be one of them.
 */
static void expire(goc_rpool *rp)
{
    void *old[EXPIRE_BATCH];
    int64_t n;
    do {
        lock(rp);
        n = expire_locked(rp, old, EXPIRE_BATCH);
        unlock(rp);
        if (n) {
            goc_panic_info *pi = destroy_all(rp, old, n);
            retire(rp, n); /* their places, whatever destroy did */
            if (pi)
                goc__panic_again(pi);
        }
    } while (n == EXPIRE_BATCH);
}

/* Wait in the queue for a grant; 0 with w->grant set, or an error. */
static int wait_grant(goc_rpool *rp, struct waiter *w, goc_ctx *ctx)
{
    *w = (struct waiter){ .prev = rp->tail };
    if (rp->tail)
        rp->tail->next = w;
    else
        rp->head = w;
    rp->tail = w;
    rp->nwait++;
    rp->st.waits++;
    int64_t t = goc_now();
    int rc = 0;
    while (w->grant == NONE && !rp->closed && rc == 0)
        rc = goc_cond_wait(&w->cond, &rp->mu, ctx);
    rp->st.wait_ns += goc_now() - t;
    if (w->grant != NONE)
        return 0; /* a grant seen first wins over the ctx */
    dequeue(rp, w);
    return rp->closed ? GOC_ECLOSED : rc;
}

/* Get a validated idle object, a creation slot, or wait. Returns 0 with
 * *obj set (idle) or NULL (create), or an error. */
static int reserve(goc_rpool *rp, void **obj, goc_ctx *ctx)
{
    if (rp->o.idle_timeout > 0)
        expire(rp);
    lock(rp);
    int rc = 0;
    *obj = NULL;
    if (rp->closed) {
        rc = GOC_ECLOSED;
    } else if (rp->nidle && !rp->head) {
        *obj = rp->idle[--rp->nidle].obj;
    } else if (rp->total < rp->o.max_total && !rp->head) {
        rp->total++;
    } else {
        struct waiter w;
        rc = wait_grant(rp, &w, ctx);
        if (rc == 0)
            *obj = w.grant == GOT_OBJ ? w.obj : NULL;
    }
    if (rc == 0 && *obj)
        loan_add(rp, *obj);
    unlock(rp);
    return rc;
}

/* Give back a creation slot that was not used. */
static void unreserve(goc_rpool *rp)
{
    lock(rp);
    rp->total--;
    if (!rp->closed && rp->total < rp->o.max_total)
        hand_off(rp, NULL);
    unlock(rp);
}

/*
 * Calls count themselves in and out under the lock, so that
 * goc_rpool_free() can wait for them: a caller woken by the close, or
 * making an object, or giving one back, still has the pool to touch.
 */
static void call_enter(goc_rpool *rp)
{
    lock(rp);
    rp->inside++;
    unlock(rp);
}

static int call_leave(goc_rpool *rp, int rc)
{
    lock(rp);
    rp->inside--;
    if (rp->closed && !rp->inside && !rp->nloans)
        goc_cond_broadcast(&rp->quiet_cv); /* a free may be waiting */
    unlock(rp);
    return rc;
}

static int acquire(goc_rpool *rp, void **out, goc_ctx *ctx);
static int release(goc_rpool *rp, void *obj, bool broken);

/* One call, run under goc_try(): the callbacks are the caller's code, and
 * a panic in one must still count the call out, or a free would wait for
 * it forever. */
struct call {
    goc_rpool *rp;
    void **out;
    void *obj;
    bool broken;
    goc_ctx *ctx;
};

static int acquire_call(void *arg)
{
    struct call *c = arg;
    return acquire(c->rp, c->out, c->ctx);
}

static int release_call(void *arg)
{
    struct call *c = arg;
    return release(c->rp, c->obj, c->broken);
}

static int guarded(int (*fn)(void *), struct call *c)
{
    call_enter(c->rp);
    goc_panic_info *pi = NULL;
    int rc = goc_try(fn, c, &pi);
    call_leave(c->rp, 0);
    if (pi)
        goc__panic_again(pi);
    return rc;
}

int goc_rpool_acquire(goc_rpool *rp, void **out, goc_ctx *ctx)
{
    if (!rp || !out)
        return -EINVAL;
    return guarded(acquire_call, &(struct call){ rp, out, NULL, false, ctx });
}

int goc_rpool_release(goc_rpool *rp, void *obj, bool broken)
{
    if (!rp || !obj)
        return -EINVAL;
    return guarded(release_call, &(struct call){ rp, NULL, obj, broken, NULL });
}

/* Destroy @obj, then free its place with @free_place, even if destroy
 * panics (the place would be lost for good); its panic, joined after
 * @pending, is returned for the caller to raise. */
static goc_panic_info *destroy_freeing(goc_rpool *rp,
                                       void *obj,
                                       void (*free_place)(goc_rpool *),
                                       goc_panic_info *pending)
{
    goc_panic_info *pi = destroy_caught(rp, obj, pending);
    free_place(rp);
    return pi;
}

static void retire_one(goc_rpool *rp)
{
    retire(rp, 1);
}

/* An idle object taken for an acquire is stale: destroy it, free its
 * place. Returns a panic of destroy's, joined after @pending. */
static goc_panic_info *drop_stale(goc_rpool *rp,
                                  void *obj,
                                  goc_panic_info *pending)
{
    lock(rp);
    loan_remove(rp, obj);
    rp->st.invalid++;
    rp->st.destroyed++;
    unlock(rp);
    return destroy_freeing(rp, obj, unreserve, pending);
}

struct ready_call {
    goc_rpool *rp;
    void *obj;
    bool ok;
};

static int ready_call(void *arg)
{
    struct ready_call *c = arg;
    goc_rpool *rp = c->rp;
    c->ok = !rp->o.validate || rp->o.validate(c->obj, rp->o.arg);
    if (c->ok && rp->o.reset)
        rp->o.reset(c->obj, rp->o.arg);
    return 0;
}

/* Validate and reset an idle object taken for an acquire (on loan to it).
 * A panic in either gives it up as stale first, or it would stay on loan
 * for good (and a free wait for it forever). */
static bool ready(goc_rpool *rp, void *obj)
{
    struct ready_call c = { rp, obj, false };
    goc_panic_info *pi = NULL;
    goc_try(ready_call, &c, &pi);
    if (pi) /* a destroy that panics too comes after it */
        goc__panic_again(drop_stale(rp, obj, pi));
    return c.ok;
}

struct create_call {
    goc_rpool *rp;
    void *obj;
};

static int create_call(void *arg)
{
    struct create_call *c = arg;
    return c->rp->o.create(c->rp->o.arg, &c->obj);
}

static int acquire(goc_rpool *rp, void **out, goc_ctx *ctx)
{
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    for (;;) {
        void *obj;
        rc = reserve(rp, &obj, ctx);
        if (rc)
            return rc;
        if (!obj) {
            /* A panic in create gives its place back first. */
            struct create_call cc = { rp, NULL };
            goc_panic_info *pi = NULL;
            rc = goc_try(create_call, &cc, &pi);
            if (pi) {
                unreserve(rp);
                goc__panic_again(pi);
            }
            obj = cc.obj;
            if (rc || !obj) {
                unreserve(rp);
                return rc ? rc : -ENOMEM;
            }
            lock(rp);
            rp->st.created++;
            bool closed = rp->closed;
            if (closed) {
                rp->total--;
                rp->st.destroyed++;
            } else {
                loan_add(rp, obj);
            }
            unlock(rp);
            if (closed) {
                /* Closed while it was being made: lend nothing more. */
                destroy(rp, obj);
                return GOC_ECLOSED;
            }
            *out = obj;
            return 0;
        }
        if (ready(rp, obj)) {
            *out = obj;
            return 0;
        }
        goc_panic_info *pi = drop_stale(rp, obj, NULL); /* and try again */
        if (pi)
            goc__panic_again(pi);
        rc = goc_ctx_err(ctx);
        if (rc)
            return rc;
    }
}

static int release(goc_rpool *rp, void *obj, bool broken)
{
    lock(rp);
    if (!loan_remove(rp, obj)) {
        unlock(rp);
        return goc__misuse("goc_rpool_release: an object not on loan");
    }
    bool kill = broken || rp->closed;
    if (!kill && !hand_off(rp, obj)) {
        if (rp->nidle < rp->o.max_idle)
            rp->idle[rp->nidle++] = (struct idle){ obj, goc_now() };
        else
            kill = true;
    } /* else handed straight to a waiter, which records the loan */
    unlock(rp);
    if (kill) {
        goc_panic_info *pi = destroy_freeing(rp, obj, retire_one, NULL);
        if (pi)
            goc__panic_again(pi);
    }
    if (rp->o.idle_timeout > 0)
        expire(rp);
    return 0;
}

/*
 * Close, and destroy the idle objects one at a time (no list to
 * allocate), counted inside like a call so that a free waits for the
 * last; a panic of destroy's is returned once all are gone.
 */
static goc_panic_info *close_pool(goc_rpool *rp)
{
    goc_panic_info *pi = NULL;
    lock(rp);
    rp->closed = true;
    for (struct waiter *w = rp->head; w; w = w->next)
        goc_cond_signal(&w->cond);
    rp->inside++;
    while (rp->nidle) {
        void *obj = rp->idle[--rp->nidle].obj;
        rp->total--;
        rp->st.destroyed++;
        unlock(rp);
        pi = destroy_caught(rp, obj, pi);
        lock(rp);
    }
    unlock(rp);
    call_leave(rp, 0);
    return pi;
}

void goc_rpool_close(goc_rpool *rp)
{
    if (!rp)
        return;
    goc_panic_info *pi = close_pool(rp);
    if (pi)
        goc__panic_again(pi);
}

void goc_rpool_free(goc_rpool *rp)
{
    if (!rp)
        return;
    goc_panic_info *pi = close_pool(rp);
    lock(rp);
    while (rp->inside || rp->nloans)
        goc_cond_wait(&rp->quiet_cv, &rp->mu, NULL);
    unlock(rp);
    goc__free(rp->idle);
    goc__free(rp->loans);
    goc__free(rp);
    if (pi) /* a destroy's, once the pool is gone all the same */
        goc__panic_again(pi);
}

void goc_rpool_stats(goc_rpool *rp, struct goc_rpool_stats *st)
{
    if (!rp || !st)
        return;
    lock(rp);
    *st = rp->st;
    st->total = rp->total;
    st->idle = rp->nidle;
    st->in_use = rp->nloans;
    st->waiters = rp->nwait;
    unlock(rp);
}
