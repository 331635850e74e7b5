/* SPDX-License-Identifier: MIT */
/*
 * Condition variable. A waiter joins the queue before it unlocks the
 * mutex, so a signal sent after the unlock always finds it; signals wake
 * waiters in FIFO order.
 */
#include "goc/sync.h"
#include "../context/ctx.h"
#include "mutex_int.h"
#include "../internal/list.h"

#include <assert.h>

struct cond_waiter {
    struct goc__dlink link;
    struct goc__wait *w;
    bool linked;
};

struct cond {
    goc__lock lock;
    struct goc__dqueue q; /* waiters, under lock */
};

static_assert(sizeof(struct cond) <= sizeof(goc_cond), "goc_cond small");

static void cond_unlock(void *lock)
{
    goc__lock_release(lock);
}

static void remove_waiter(struct cond *c, struct cond_waiter *x)
{
    goc__dqueue_remove(&c->q, &x->link);
    x->linked = false;
}

int goc_cond_wait(goc_cond *cv, goc_mutex *mu, goc_ctx *ctx)
{
    if (!cv || !mu)
        return -EINVAL;
    struct cond *c = (struct cond *)cv;
    struct goc__wait w;
    struct goc__ctx_watch cw;
    struct cond_waiter x = { .w = &w };
    /* Misuse first: a caller told that its context ended would go on
     * as if it held mu. (Held by another is found only by the unlock.) */
    if (!goc__mutex_locked(mu))
        return goc__misuse("goc_cond_wait: the mutex is not locked");
    goc__wait_init(&w, GOC__WAIT_COND);
    int err = goc__ctx_watch(ctx, &cw, &w, 1);
    if (err)
        return err; /* still holding mu, as on every return */
    goc__lock_acquire(&c->lock);
    goc__dqueue_push_back(&c->q, &x.link);
    x.linked = true;
    if (goc__mutex_unlock_quiet(mu) != 0) { /* never blocks */
        /* mu was not locked: leave as if never called, and only then
         * report it (it may panic). Signals claim under c->lock, so only
         * the context can have claimed w. */
        remove_waiter(c, &x);
        goc__lock_release(&c->lock);
        goc__wait_claim_self(&w, 0);
        goc__ctx_unwatch(&cw); /* after it, the context is done with w */
        return goc__misuse("goc_cond_wait: the mutex is not locked");
    }
    int won = goc__wait_block(&w, cond_unlock, &c->lock);
    goc__ctx_unwatch(&cw);
    if (won != 0) {
        goc__lock_acquire(&c->lock);
        if (x.linked)
            remove_waiter(c, &x);
        goc__lock_release(&c->lock);
    }
    goc_mutex_lock(mu, NULL);
    return won == 0 ? 0 : goc_ctx_err(ctx);
}

/* Wake up to max waiters (claimed under the lock, woken after it). */
static void wake(struct cond *c, int max)
{
    struct goc__dlink *won = NULL;
    goc__lock_acquire(&c->lock);
    while (c->q.head && max > 0) {
        struct cond_waiter *x =
            goc__container_of(c->q.head, struct cond_waiter, link);
        remove_waiter(c, x);
        if (goc__wait_claim(x->w, 0)) {
            goc__dlist_push(&won, &x->link);
            max--;
        }
    }
    goc__lock_release(&c->lock);
    while (won) {
        struct goc__wait *w =
            goc__container_of(won, struct cond_waiter, link)->w;
        won = won->next; /* the waiter may leave once finished */
        goc__wait_finish(w);
    }
}

void goc_cond_signal(goc_cond *cv)
{
    if (!cv)
        goc__null_argument(__func__);
    wake((struct cond *)cv, 1);
}

void goc_cond_broadcast(goc_cond *cv)
{
    if (!cv)
        goc__null_argument(__func__);
    wake((struct cond *)cv, INT32_MAX);
}
