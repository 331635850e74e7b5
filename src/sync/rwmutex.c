/* SPDX-License-Identifier: MIT */
/*
 * Reader/writer lock with Go's writer preference. The state lives under
 * a short internal lock: active readers, an active writer, and two FIFO
 * queues. A waiting writer stops new readers; a writer's unlock admits
 * the readers that queued meanwhile before the next writer, so neither
 * side starves. Grants are made by the releaser before the waiter wakes.
 */
#include "goc/sync.h"
#include "../context/ctx.h"
#include "../internal/list.h"

#include <assert.h>

struct rw_waiter {
    struct goc__dlink link;
    struct goc__wait *w;
    bool linked;
};

struct rwmutex {
    goc__lock lock;
    bool writer;     /* the write lock is held */
    int32_t readers; /* read locks held */
    int32_t writers_waiting;
    struct goc__dqueue rq, wq; /* under lock */
};

static_assert(sizeof(struct rwmutex) <= sizeof(goc_rwmutex),
              "goc_rwmutex too small");

static void q_remove(struct goc__dqueue *q, struct rw_waiter *x)
{
    goc__dqueue_remove(q, &x->link);
    x->linked = false;
}

/* Under lock: pop waiters of q we can claim, up to max; link them to *won. */
static int claim(struct goc__dqueue *q, int max, struct goc__dlink **won)
{
    int n = 0;
    while (q->head && n < max) {
        struct rw_waiter *x =
            goc__container_of(q->head, struct rw_waiter, link);
        q_remove(q, x);
        if (goc__wait_claim(x->w, 0)) {
            goc__dlist_push(won, &x->link);
            n++;
        }
    }
    return n;
}

/* Under lock, with nothing held: admit queued readers, else a writer. */
static void grant(struct rwmutex *m,
                  bool readers_first,
                  struct goc__dlink **won)
{
    if (readers_first || m->writers_waiting == 0)
        m->readers += claim(&m->rq, INT32_MAX, won);
    if (m->readers == 0 && !m->writer && m->wq.head) {
        int n = claim(&m->wq, 1, won);
        /* Waiters that lost to their context count themselves out. */
        m->writer = n > 0;
        m->writers_waiting -= n;
    }
}

static void wake(struct goc__dlink *won)
{
    while (won) {
        struct goc__wait *w = goc__container_of(won, struct rw_waiter, link)->w;
        won = won->next; /* the waiter may leave once finished */
        goc__wait_finish(w);
    }
}

static void rw_unlock(void *lock)
{
    goc__lock_release(lock);
}

/* Queue on q (lock held) and wait; on a lost race with ctx, leave. */
static int wait_on(struct rwmutex *m,
                   struct goc__dqueue *q,
                   bool writer,
                   goc_ctx *ctx)
{
    struct goc__wait w;
    struct goc__ctx_watch cw;
    struct rw_waiter x = { .w = &w };
    goc__wait_init(&w, GOC__WAIT_RWMUTEX);
    int err = goc__ctx_watch(ctx, &cw, &w, 1);
    if (err) {
        goc__lock_release(&m->lock);
        return err;
    }
    if (writer)
        m->writers_waiting++;
    goc__dqueue_push_back(q, &x.link);
    x.linked = true;
    int won = goc__wait_block(&w, rw_unlock, &m->lock);
    goc__ctx_unwatch(&cw);
    if (won == 0)
        return 0; /* granted: the lock was counted for us */
    struct goc__dlink *woken = NULL;
    goc__lock_acquire(&m->lock);
    /* A grant may have popped us already (its claim failed): either way
     * a writer that lost to its context counts itself out here. */
    if (x.linked)
        q_remove(q, &x);
    if (writer && --m->writers_waiting == 0 && !m->writer)
        grant(m, true, &woken); /* readers held back by us may go */
    goc__lock_release(&m->lock);
    wake(woken);
    return goc_ctx_err(ctx);
}

int goc_rwmutex_rlock(goc_rwmutex *rw, goc_ctx *ctx)
{
    if (!rw)
        return -EINVAL;
    struct rwmutex *m = (struct rwmutex *)rw;
    int err = goc_ctx_err(ctx);
    if (err)
        return err;
    goc__lock_acquire(&m->lock);
    if (!m->writer && m->writers_waiting == 0) {
        m->readers++;
        goc__lock_release(&m->lock);
        return 0;
    }
    return wait_on(m, &m->rq, false, ctx);
}

int goc_rwmutex_lock(goc_rwmutex *rw, goc_ctx *ctx)
{
    if (!rw)
        return -EINVAL;
    struct rwmutex *m = (struct rwmutex *)rw;
    int err = goc_ctx_err(ctx);
    if (err)
        return err;
    goc__lock_acquire(&m->lock);
    if (!m->writer && m->readers == 0 && !m->wq.head) {
        m->writer = true;
        goc__lock_release(&m->lock);
        return 0;
    }
    return wait_on(m, &m->wq, true, ctx);
}

int goc_rwmutex_runlock(goc_rwmutex *rw)
{
    if (!rw)
        return -EINVAL;
    struct rwmutex *m = (struct rwmutex *)rw;
    struct goc__dlink *won = NULL;
    goc__lock_acquire(&m->lock);
    if (m->readers == 0) {
        goc__lock_release(&m->lock);
        return goc__misuse("goc_rwmutex_runlock: not read-locked");
    }
    if (--m->readers == 0)
        grant(m, false, &won);
    goc__lock_release(&m->lock);
    wake(won);
    return 0;
}

int goc_rwmutex_unlock(goc_rwmutex *rw)
{
    if (!rw)
        return -EINVAL;
    struct rwmutex *m = (struct rwmutex *)rw;
    struct goc__dlink *won = NULL;
    goc__lock_acquire(&m->lock);
    if (!m->writer) {
        goc__lock_release(&m->lock);
        return goc__misuse("goc_rwmutex_unlock: not locked");
    }
    m->writer = false;
    grant(m, true, &won);
    goc__lock_release(&m->lock);
    wake(won);
    return 0;
}
