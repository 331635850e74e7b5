/* SPDX-License-Identifier: MIT */
/*
 * Contexts: a tree of cancellation scopes with deadlines and values.
 *
 * Only CANCEL contexts carry cancellation state; a VALUE context is done
 * exactly when its nearest CANCEL ancestor is, so it delegates to it. A
 * CANCEL context registers with the nearest CANCEL ancestor (its
 * cancel_parent), which cancels it, under its own lock, together with the
 * rest of the subtree. Locks are always taken ancestor first, and a
 * context is unlinked from its cancel_parent under the parent's lock, so a
 * cancelling parent never touches a child that has gone.
 */
#include "ctx.h"
#include "goc/chan.h"
#include "goc/time.h"
#include "../chan/chan.h"
#include "../internal/alloc.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

static_assert(sizeof(struct goc_ctx) <= sizeof(goc_ctx_local),
              "goc_ctx_local too small");
static_assert(sizeof(struct goc__ctx_after) <= sizeof(goc_ctx_after),
              "goc_ctx_after too small");

static struct goc_ctx background = {
    .kind = GOC__CTX_BACKGROUND,
    .deadline = INT64_MAX,
};

goc_ctx *goc_ctx_background(void)
{
    return &background;
}

struct goc_ctx *goc__ctx_canceller(goc_ctx *ctx)
{
    while (ctx && ctx->kind == GOC__CTX_VALUE)
        ctx = ctx->parent;
    return ctx && ctx->kind == GOC__CTX_CANCEL ? ctx : NULL;
}

/* ---- cancellation ----------------------------------------------------- */

/*
 * After-funcs whose goroutine could not be made (out of memory). They
 * never run inline instead: the canceller may be a deadline's timer on
 * the scheduler's own stack, or hold the caller's goroutine. They wait
 * here, still stoppable, for sysmon to start them.
 */
static goc__lock deferred_lock = GOC__LOCK_INIT;
static struct goc__dqueue deferred;
_Atomic int64_t goc__ctx_after_deferred;

goc__lock *goc__ctx_deferred_lock(void)
{
    return &deferred_lock;
}

/* Start a's fn; a is SPAWNING and ours until the spawn is sure. */
static int start_after(struct goc__ctx_after *a)
{
    /* Given back (IDLE) only once fn is sure to start: its owner may
     * free the record as soon as fn runs. */
    return goc__go_release(a->fn, a->arg, &a->state, GOC__AFTER_IDLE);
}

/* Returns how many were deferred before a. */
static int64_t defer_after(struct goc__ctx_after *a, bool at_front)
{
    goc__lock_acquire(&deferred_lock);
    if (at_front)
        goc__dqueue_push_front(&deferred, &a->link);
    else
        goc__dqueue_push_back(&deferred, &a->link);
    atomic_store(&a->state, GOC__AFTER_DEFERRED);
    int64_t n = atomic_fetch_add(&goc__ctx_after_deferred, 1);
    goc__lock_release(&deferred_lock);
    return n;
}

static void run_after(struct goc__ctx_after *a)
{
    if (start_after(a) == 0)
        return;
    if (goc__rt_ensure() != 0) {
        /* No runtime (it failed to start): no goroutine ever will, and
         * no timer either, so the canceller is the caller's own code. */
        goc_fn fn = a->fn;
        void *arg = a->arg;
        atomic_store_explicit(&a->state, GOC__AFTER_IDLE, memory_order_release);
        fn(arg);
        return;
    }
    if (defer_after(a, false) == 0)
        goc__log("an after-func's goroutine could not be made (out of "
                 "memory); it starts when one can be");
}

/* sysmon: start deferred after-funcs in order, until a spawn fails. */
void goc__ctx_after_retry(void)
{
    for (;;) {
        goc__lock_acquire(&deferred_lock);
        struct goc__dlink *l = goc__dqueue_pop(&deferred);
        struct goc__ctx_after *a =
            l ? goc__container_of(l, struct goc__ctx_after, link) : NULL;
        if (a) {
            atomic_store(&a->state, GOC__AFTER_SPAWNING);
            atomic_fetch_sub(&goc__ctx_after_deferred, 1);
        }
        goc__lock_release(&deferred_lock);
        if (!a)
            return;
        if (start_after(a) != 0) {
            defer_after(a, true);
            return;
        }
    }
}

/* stop on a deferred record: take it out before it starts. */
static bool stop_deferred(struct goc__ctx_after *a)
{
    goc__lock_acquire(&deferred_lock);
    bool stopped = atomic_load(&a->state) == GOC__AFTER_DEFERRED;
    if (stopped) {
        goc__dqueue_remove(&deferred, &a->link);
        atomic_fetch_sub(&goc__ctx_after_deferred, 1);
        atomic_store(&a->state, GOC__AFTER_IDLE);
    }
    goc__lock_release(&deferred_lock);
    return stopped;
}

/*
 * Start the after-funcs a cancellation collected, outside all locks. Each
 * record stays SPAWNING until its goroutine is sure to start (then it is
 * its owner's again: goc_ctx_after_stop waits out that state) or until
 * it joins the deferred ones.
 */
static void spawn_all(struct goc__dlink *list)
{
    while (list) {
        struct goc__ctx_after *a =
            goc__container_of(list, struct goc__ctx_after, link);
        list = list->next;
        run_after(a);
    }
}

/*
 * Under c->lock: mark done, wake everything that waits on c, and move its
 * after-funcs to *afters (they run once every lock is released).
 */
static void fire_locked(struct goc_ctx *c,
                        int err,
                        int cause,
                        struct goc__dlink **afters)
{
    atomic_store_explicit(&c->err, err, memory_order_release);
    c->cause = cause ? cause : err;
    struct goc__dlink *l;
    while ((l = goc__dlist_pop(&c->watchers))) {
        struct goc__ctx_watch *cw =
            goc__container_of(l, struct goc__ctx_watch, link);
        struct goc__wait *w = cw->w;
        int index = cw->index;
        cw->linked = false; /* cw may vanish once w is finished */
        if (goc__wait_claim(w, index))
            goc__wait_finish(w);
    }
    if (c->has_afters) {
        goc__lock *al = goc__ctx_after_lock(c);
        goc__lock_acquire(al);
        while ((l = goc__dlist_pop(&c->afters))) {
            struct goc__ctx_after *a =
                goc__container_of(l, struct goc__ctx_after, link);
            atomic_store(&a->state, GOC__AFTER_SPAWNING);
            goc__dlist_push(afters, l);
        }
        goc__lock_release(al);
    }
    goc_chan *done = atomic_load_explicit(&c->done, memory_order_relaxed);
    if (done)
        goc__chan_close_owned(done);
}

/*
 * Under c->lock (which guards the sibling links): start loading what the
 * next children's cancellation touches. A wide tree's children lie all
 * over the heap, their done channels elsewhere again, and the goroutines
 * waiting on those on stacks of their own: fetched one at a time, every
 * child costs three or four cache and TLB misses in a row. So the child
 * three ahead is fetched, the channel of the one two ahead, and the
 * waiter of the next one's channel (each a step after the line it is
 * read from was requested).
 */
static void prefetch_next_children(struct goc__dlink *next)
{
    if (!next)
        return;
    struct goc_ctx *c1 = goc__container_of(next, struct goc_ctx, sib);
    /* Acquire: the prefetch reads the channel's queue head, which its
     * creation initialised on another thread. */
    goc_chan *done = atomic_load_explicit(&c1->done, memory_order_acquire);
    if (done)
        goc__chan_prefetch_waiter(done);
    struct goc__dlink *n2 = next->next;
    if (!n2)
        return;
    struct goc_ctx *c2 = goc__container_of(n2, struct goc_ctx, sib);
    done = atomic_load_explicit(&c2->done, memory_order_relaxed);
    if (done)
        goc__chan_prefetch(done);
    if (n2->next) {
        struct goc_ctx *c3 = goc__container_of(n2->next, struct goc_ctx, sib);
        __builtin_prefetch(c3, 1);
        __builtin_prefetch((char *)c3 + 64, 1);
    }
}

/*
 * Under top->lock: cancel top's subtree, each child unlinked first. The
 * walk holds the locks of the path it is on, as a recursion would, but
 * keeps no stack: a chain of contexts thousands deep would overflow a
 * goroutine's. It goes down to a child, and back up through the
 * cancel_parent links, which are the lists it came from.
 */
static void cancel_children_locked(struct goc_ctx *top,
                                   int err,
                                   int cause,
                                   struct goc__dlink **afters)
{
    struct goc_ctx *cur = top;
    for (;;) {
        struct goc__dlink *l = goc__dlist_pop(&cur->children);
        if (l) {
            struct goc_ctx *child = goc__container_of(l, struct goc_ctx, sib);
            prefetch_next_children(cur->children);
            goc__lock_acquire(&child->lock);
            if (atomic_load(&child->err) == 0)
                fire_locked(child, err, cause, afters);
            cur = child;
            continue;
        }
        if (cur == top)
            return;
        struct goc_ctx *up = cur->cancel_parent;
        goc__lock_release(&cur->lock);
        /* The walk's last touch of cur. Until it, a release of cur that
         * runs meanwhile finds it linked and waits for up's lock, which
         * the walk holds: cur is not freed under the walk. */
        atomic_store_explicit(&cur->in_parent, false, memory_order_release);
        cur = up;
    }
}

/* While c is linked its parent is alive: a heap one held by c, a local
 * one by contract. Once unlinked, c never touches it again. */
static void unlink_from_parent(struct goc_ctx *c)
{
    struct goc_ctx *p = c->cancel_parent;
    if (!p || !atomic_load_explicit(&c->in_parent, memory_order_acquire))
        return;
    goc__lock_acquire(&p->lock);
    if (atomic_load_explicit(&c->in_parent, memory_order_relaxed)) {
        goc__dlist_remove(&p->children, &c->sib);
        atomic_store_explicit(&c->in_parent, false, memory_order_relaxed);
    }
    goc__lock_release(&p->lock);
}

static void cancel(struct goc_ctx *c, int err, int cause)
{
    struct goc__dlink *afters = NULL;
    goc__lock_acquire(&c->lock);
    if (atomic_load(&c->err) != 0) {
        goc__lock_release(&c->lock);
        return;
    }
    fire_locked(c, err, cause, &afters);
    cancel_children_locked(c, err, cause, &afters);
    goc__lock_release(&c->lock);
    unlink_from_parent(c);
    /* Its deadline can do nothing more: off the wheel now, not at the
     * last release (a cancelled context kept long held its timer armed,
     * for as long as its deadline was far). */
    if (atomic_load(&c->timer_busy))
        goc__timer_stop(&c->timer);
    spawn_all(afters);
}

void goc_ctx_cancel_cause(goc_ctx *ctx, int cause)
{
    if (cause > 0)
        cause = -EINVAL;
    if (ctx && ctx->kind == GOC__CTX_CANCEL)
        cancel(ctx, -ECANCELED, cause);
}

void goc_ctx_cancel(goc_ctx *ctx)
{
    goc_ctx_cancel_cause(ctx, 0);
}

static void deadline_fire(void *arg)
{
    struct goc_ctx *c = arg;
    cancel(c, -ETIMEDOUT, c->deadline_cause);
}

/* ---- construction ----------------------------------------------------- */

/* Link a new CANCEL context under its canceller, or inherit its end. */
static void attach(struct goc_ctx *c)
{
    struct goc_ctx *p = goc__ctx_canceller(c->parent);
    if (!p)
        return;
    goc__lock_acquire(&p->lock);
    int err = atomic_load(&p->err);
    if (err == 0) {
        c->cancel_parent = p;
        atomic_store_explicit(&c->in_parent, true, memory_order_relaxed);
        goc__dlist_push(&p->children, &c->sib);
    } else {
        atomic_store(&c->err, err);
        c->cause = p->cause;
    }
    goc__lock_release(&p->lock);
}

static void init_common(struct goc_ctx *c,
                        goc_ctx *parent,
                        int kind,
                        bool local)
{
    memset(c, 0, sizeof(*c));
    c->lock = (goc__lock)GOC__LOCK_INIT;
    c->kind = (uint8_t)kind;
    c->local = local;
    c->parent = parent ? parent : &background;
    atomic_init(&c->refs, 1);
    c->deadline = kind == GOC__CTX_DETACHED ? INT64_MAX : c->parent->deadline;
}

/* The cause that the deadline d of x, set by x or an ancestor whose
 * timer ends it, gives. */
static int inherited_deadline_cause(struct goc_ctx *x, int64_t d)
{
    for (; x; x = x->parent)
        if (x->kind == GOC__CTX_CANCEL && x->deadline == d &&
            atomic_load(&x->timer_busy))
            return x->deadline_cause;
    return 0;
}

static void init_cancel(struct goc_ctx *c,
                        goc_ctx *parent,
                        int64_t deadline,
                        int deadline_cause,
                        bool local)
{
    init_common(c, parent, GOC__CTX_CANCEL, local);
    c->deadline_cause = deadline_cause;
    if (deadline < c->deadline)
        c->deadline = deadline;
    attach(c);
    if (atomic_load(&c->err) != 0)
        return;
    /* Past: done at once, even when it inherits an earlier deadline, past
     * too, whose timer has yet to fire (waiting for it, a timeout of 0
     * blocked). Its cause is then the one that deadline gives. */
    if (deadline != INT64_MAX && deadline <= goc_now()) {
        cancel(c, -ETIMEDOUT,
               deadline < c->parent->deadline
                   ? deadline_cause
                   : inherited_deadline_cause(c->parent, c->deadline));
        return;
    }
    if (deadline >= c->parent->deadline)
        return;
    atomic_store(&c->timer_busy, 1);
    goc__timer_start(&c->timer, deadline, deadline_fire, c);
}

static struct goc_ctx *ctx_alloc(void)
{
    return goc__malloc(sizeof(struct goc_ctx));
}

/* Heap children keep their parent alive. */
static void hold_parent(struct goc_ctx *c)
{
    c->parent_held = !c->parent->local && c->parent != &background;
    if (c->parent_held)
        goc_ctx_retain(c->parent);
}

int goc_ctx_with_deadline(goc_ctx *parent, int64_t deadline, goc_ctx **out)
{
    return goc_ctx_with_deadline_cause(parent, deadline, 0, out);
}

int goc_ctx_with_deadline_cause(goc_ctx *parent,
                                int64_t deadline,
                                int cause,
                                goc_ctx **out)
{
    if (!out || cause > 0)
        return -EINVAL;
    int err = goc__rt_ensure();
    if (err)
        return err; /* the runtime's own start failure, as goc_init says */
    struct goc_ctx *c = ctx_alloc();
    if (!c)
        return -ENOMEM;
    init_cancel(c, parent, deadline, cause, false);
    hold_parent(c);
    *out = c;
    return 0;
}

int goc_ctx_with_cancel(goc_ctx *parent, goc_ctx **out)
{
    return goc_ctx_with_deadline(parent, INT64_MAX, out);
}

int goc_ctx_with_timeout(goc_ctx *parent, int64_t timeout, goc_ctx **out)
{
    return goc_ctx_with_timeout_cause(parent, timeout, 0, out);
}

int goc_ctx_with_timeout_cause(goc_ctx *parent,
                               int64_t timeout,
                               int cause,
                               goc_ctx **out)
{
    int64_t now = goc_now();
    int64_t d = timeout > INT64_MAX - now ? INT64_MAX - 1 : now + timeout;
    return goc_ctx_with_deadline_cause(parent, d, cause, out);
}

static int with_kind(
    goc_ctx *parent, int kind, const void *key, void *value, goc_ctx **out)
{
    if (!out)
        return -EINVAL;
    struct goc_ctx *c = ctx_alloc();
    if (!c)
        return -ENOMEM;
    init_common(c, parent, kind, false);
    c->key = key;
    c->value = value;
    hold_parent(c);
    *out = c;
    return 0;
}

int goc_ctx_with_value(goc_ctx *parent,
                       const void *key,
                       void *value,
                       goc_ctx **out)
{
    if (!key)
        return -EINVAL;
    return with_kind(parent, GOC__CTX_VALUE, key, value, out);
}

int goc_ctx_without_cancel(goc_ctx *parent, goc_ctx **out)
{
    return with_kind(parent, GOC__CTX_DETACHED, NULL, NULL, out);
}

goc_ctx *goc_ctx_init_deadline(goc_ctx_local *local,
                               goc_ctx *parent,
                               int64_t deadline)
{
    struct goc_ctx *c = (struct goc_ctx *)local;
    if (!c)
        goc__null_argument(__func__); /* no deadline dropped unseen */
    int err = goc__rt_ensure();
    /* Without a runtime there is no timer to arm: the context ends at
     * once, its cause the start's failure. */
    init_cancel(c, parent, err ? INT64_MAX : deadline, 0, true);
    if (err)
        cancel(c, -ECANCELED, err);
    return c;
}

goc_ctx *goc_ctx_init_cancel(goc_ctx_local *local, goc_ctx *parent)
{
    return goc_ctx_init_deadline(local, parent, INT64_MAX);
}

goc_ctx *goc_ctx_init_timeout(goc_ctx_local *local,
                              goc_ctx *parent,
                              int64_t timeout)
{
    int64_t now = goc_now();
    int64_t d = timeout > INT64_MAX - now ? INT64_MAX - 1 : now + timeout;
    return goc_ctx_init_deadline(local, parent, d);
}

/* ---- teardown --------------------------------------------------------- */

/* Cancel, detach, stop the timer: nothing refers to c afterwards. */
static void quiesce(struct goc_ctx *c)
{
    if (c->kind != GOC__CTX_CANCEL)
        return;
    cancel(c, -ECANCELED, 0);
    unlink_from_parent(c);
    if (atomic_load(&c->timer_busy))
        goc__timer_stop_sync(&c->timer);
}

int goc_ctx_destroy(goc_ctx *ctx)
{
    if (!ctx)
        return 0;
    if (!ctx->local)
        return -EINVAL;
    quiesce(ctx);
    goc_chan *done = atomic_load_explicit(&ctx->done, memory_order_relaxed);
    if (done)
        goc_chan_release(done);
    atomic_store_explicit(&ctx->done, NULL, memory_order_relaxed);
    return 0;
}

goc_ctx *goc_ctx_retain(goc_ctx *ctx)
{
    if (ctx && ctx != &background && !ctx->local)
        atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

void goc_ctx_release(goc_ctx *ctx)
{
    /* A loop, not a call for the parent: the last release of a chain
     * held by its leaf alone frees every ancestor, however deep. */
    while (ctx && ctx != &background && !ctx->local) {
        /* Acq_rel: the last releaser sees every other holder's writes. */
        if (atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1)
            return;
        quiesce(ctx);
        /* Not a local parent: it may be gone (a child may outlive it once
         * cancelled and unlinked, as a future's producer does). */
        struct goc_ctx *parent = ctx->parent_held ? ctx->parent : NULL;
        goc_chan *done = atomic_load_explicit(&ctx->done, memory_order_relaxed);
        if (done)
            goc_chan_release(done);
        goc__free(ctx);
        ctx = parent;
    }
}

/* ---- queries ---------------------------------------------------------- */

int goc_ctx_err(goc_ctx *ctx)
{
    struct goc_ctx *c = goc__ctx_canceller(ctx);
    return c ? atomic_load_explicit(&c->err, memory_order_acquire) : 0;
}

int goc_ctx_cause(goc_ctx *ctx)
{
    struct goc_ctx *c = goc__ctx_canceller(ctx);
    if (!c || atomic_load_explicit(&c->err, memory_order_acquire) == 0)
        return 0;
    goc__lock_acquire(&c->lock);
    int cause = c->cause;
    goc__lock_release(&c->lock);
    return cause;
}

bool goc_ctx_deadline(goc_ctx *ctx, int64_t *deadline)
{
    int64_t d = ctx ? ctx->deadline : INT64_MAX;
    if (deadline)
        *deadline = d;
    return d != INT64_MAX;
}

void *goc_ctx_value(goc_ctx *ctx, const void *key)
{
    for (; ctx; ctx = ctx->parent)
        if (ctx->kind == GOC__CTX_VALUE && ctx->key == key)
            return ctx->value;
    return NULL;
}

goc_chan *goc_ctx_done(goc_ctx *ctx)
{
    struct goc_ctx *c = goc__ctx_canceller(ctx);
    if (!c)
        return NULL;
    goc__lock_acquire(&c->lock);
    goc_chan *done = atomic_load_explicit(&c->done, memory_order_relaxed);
    if (!done && goc_chan_new(0, 0, &done) == 0) {
        done->recv_only = true; /* the context alone closes it */
        if (atomic_load(&c->err) != 0)
            goc__chan_close_owned(done);
        /* Release: a cancelling parent's prefetch may read it unlocked. */
        atomic_store_explicit(&c->done, done, memory_order_release);
    }
    goc__lock_release(&c->lock);
    return done;
}

/* ---- waiting ---------------------------------------------------------- */

int goc__ctx_watch(goc_ctx *ctx,
                   struct goc__ctx_watch *cw,
                   struct goc__wait *w,
                   int index)
{
    struct goc_ctx *c = goc__ctx_canceller(ctx);
    cw->cc = c;
    cw->linked = false;
    if (!c)
        return 0;
    int err = atomic_load_explicit(&c->err, memory_order_acquire);
    if (err)
        return err;
    cw->w = w;
    cw->index = index;
    goc__lock_acquire(&c->lock);
    err = atomic_load(&c->err);
    if (!err) {
        goc__dlist_push(&c->watchers, &cw->link);
        cw->linked = true;
    }
    goc__lock_release(&c->lock);
    return err;
}

void goc__ctx_unwatch(struct goc__ctx_watch *cw)
{
    struct goc_ctx *c = cw->cc;
    if (!c)
        return;
    goc__lock_acquire(&c->lock);
    if (cw->linked) {
        goc__dlist_remove(&c->watchers, &cw->link);
        cw->linked = false;
    }
    goc__lock_release(&c->lock);
}

int goc_ctx_after_func(goc_ctx *ctx, goc_fn fn, void *arg, goc_ctx_after *after)
{
    if (!fn || !after)
        return -EINVAL;
    struct goc__ctx_after *a = (struct goc__ctx_after *)after;
    struct goc_ctx *c = goc__ctx_canceller(ctx);
    memset(a, 0, sizeof(*a));
    a->fn = fn;
    a->arg = arg;
    a->cc = c;
    /* Never cancellable: registered forever, so that stop reports true. */
    atomic_init(&a->state, c ? GOC__AFTER_SPAWNING : GOC__AFTER_LINKED);
    if (!c)
        return 0;
    goc__lock_acquire(&c->lock);
    bool done = atomic_load(&c->err) != 0;
    if (!done) {
        goc__lock *al = goc__ctx_after_lock(c);
        goc__lock_acquire(al);
        goc__dlist_push(&c->afters, &a->link);
        atomic_store(&a->state, GOC__AFTER_LINKED);
        goc__lock_release(al);
        c->has_afters = true;
    }
    goc__lock_release(&c->lock);
    if (done)
        run_after(a);
    return 0;
}

#define AFTER_LOCKS 64
static goc__lock after_locks[AFTER_LOCKS];

goc__lock *goc__ctx_after_lock(const struct goc_ctx *c)
{
    return &after_locks[((uintptr_t)c >> 6) % AFTER_LOCKS];
}

bool goc_ctx_after_stop(goc_ctx_after *after)
{
    struct goc__ctx_after *a = (struct goc__ctx_after *)after;
    if (!a)
        return false;
    struct goc_ctx *c = a->cc;
    if (!c) {
        uint32_t linked = GOC__AFTER_LINKED;
        return atomic_compare_exchange_strong(&a->state, &linked,
                                              GOC__AFTER_IDLE);
    }
    /* Not linked: the context has ended, and may be gone already (or
     * this was stopped); it never links the record again. Linked, under
     * the after lock (which lives outside the context), the context is
     * alive: its cancel, which comes before any free, takes the records
     * under that lock. c's address alone picks the lock. */
    bool stopped = false;
    if (atomic_load(&a->state) == GOC__AFTER_LINKED) {
        goc__lock *al = goc__ctx_after_lock(c);
        goc__lock_acquire(al);
        stopped = atomic_load(&a->state) == GOC__AFTER_LINKED;
        if (stopped) {
            goc__dlist_remove(&c->afters, &a->link);
            atomic_store(&a->state, GOC__AFTER_IDLE);
        }
        goc__lock_release(al);
    }
    /* A cancel (or sysmon's retry) may still be reading the record: wait
     * until it is done with it. A spawn that fails meanwhile defers the
     * record, which is then still stoppable (and still in use). */
    for (unsigned spins = 0;;) {
        uint32_t st = atomic_load_explicit(&a->state, memory_order_acquire);
        if (st == GOC__AFTER_DEFERRED && stop_deferred(a))
            return true;
        if (st != GOC__AFTER_SPAWNING && st != GOC__AFTER_DEFERRED)
            return stopped;
        goc__yield_to_peer(&spins);
    }
}
