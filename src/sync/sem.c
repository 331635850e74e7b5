/* SPDX-License-Identifier: MIT */
/*
 * Weighted semaphore, with golang.org/x/sync/semaphore's rules: strict
 * FIFO grants that stop at the first waiter that does not fit, no barging
 * past waiters, and a cancelled front waiter lets those behind it in.
 * Grants are made by the releaser, under the lock, before the waiter
 * wakes: a granted weight is counted before anyone sees it.
 */
#include "goc/sync.h"
#include "../context/ctx.h"
#include "../internal/list.h"

#include <assert.h>

struct sem_waiter {
    struct goc__dlink link;
    struct goc__wait *w;
    int64_t n;
    bool linked;
};

struct sem {
    goc__lock lock;
    int64_t size, cur;
    struct goc__dqueue q; /* waiters, FIFO, under lock */
};

static_assert(sizeof(struct sem) <= sizeof(goc_sem), "goc_sem too small");

int goc_sem_init(goc_sem *s, int64_t size)
{
    if (!s || size < 1)
        return -EINVAL;
    struct sem *m = (struct sem *)s;
    *m = (struct sem){ .lock = GOC__LOCK_INIT, .size = size };
    return 0;
}

static void dequeue(struct sem *m, struct sem_waiter *x)
{
    goc__dqueue_remove(&m->q, &x->link);
    x->linked = false;
}

/*
 * Under lock: grant waiters in order while the head fits. Returns the
 * granted ones, to be woken once the lock is released.
 */
static struct goc__dlink *grant_locked(struct sem *m)
{
    struct goc__dlink *granted = NULL;
    while (m->q.head) {
        struct sem_waiter *x =
            goc__container_of(m->q.head, struct sem_waiter, link);
        if (m->size - m->cur < x->n)
            break; /* FIFO: nobody overtakes the head */
        dequeue(m, x);
        if (goc__wait_claim(x->w, 0)) {
            m->cur += x->n;
            goc__dlist_push(&granted, &x->link);
        }
    }
    return granted;
}

static void wake(struct goc__dlink *granted)
{
    while (granted) {
        struct goc__wait *w =
            goc__container_of(granted, struct sem_waiter, link)->w;
        granted = granted->next; /* the waiter may leave once finished */
        goc__wait_finish(w);
    }
}

static bool fits_now(struct sem *m, int64_t n)
{
    return m->size - m->cur >= n && !m->q.head;
}

int goc_sem_try_acquire(goc_sem *s, int64_t n)
{
    struct sem *m = (struct sem *)s;
    if (!m || n < 0 || n > m->size)
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    bool ok = fits_now(m, n);
    if (ok)
        m->cur += n;
    goc__lock_release(&m->lock);
    return ok ? 0 : -EAGAIN;
}

static void sem_unlock(void *lock)
{
    goc__lock_release(lock);
}

/* The context ended first: leave, letting in those behind if we led. */
static void leave(struct sem *m, struct sem_waiter *x)
{
    struct goc__dlink *granted = NULL;
    goc__lock_acquire(&m->lock);
    if (x->linked) {
        bool front = m->q.head == &x->link;
        dequeue(m, x);
        if (front)
            granted = grant_locked(m);
    }
    goc__lock_release(&m->lock);
    wake(granted);
}

int goc_sem_acquire(goc_sem *s, int64_t n, goc_ctx *ctx)
{
    struct sem *m = (struct sem *)s;
    if (!m || n < 0 || n > m->size)
        return -EINVAL;
    int err = goc_ctx_err(ctx);
    if (err)
        return err;
    goc__lock_acquire(&m->lock);
    if (fits_now(m, n)) {
        m->cur += n;
        goc__lock_release(&m->lock);
        return 0;
    }
    struct goc__wait w;
    struct goc__ctx_watch cw;
    struct sem_waiter x = { .w = &w, .n = n };
    goc__wait_init(&w, GOC__WAIT_SEM);
    /* Lock order semaphore -> context: a cancel never takes ours. */
    if ((err = goc__ctx_watch(ctx, &cw, &w, 1)) != 0) {
        goc__lock_release(&m->lock);
        return err;
    }
    goc__dqueue_push_back(&m->q, &x.link);
    x.linked = true;
    int won = goc__wait_block(&w, sem_unlock, &m->lock);
    goc__ctx_unwatch(&cw);
    if (won == 0)
        return 0; /* granted: the weight was counted for us */
    leave(m, &x);
    return goc_ctx_err(ctx);
}

int goc_sem_release(goc_sem *s, int64_t n)
{
    struct sem *m = (struct sem *)s;
    if (!m || n < 0)
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    if (n > m->cur) {
        goc__lock_release(&m->lock);
        return goc__misuse("goc_sem_release: released more than held");
    }
    m->cur -= n;
    struct goc__dlink *granted = grant_locked(m);
    goc__lock_release(&m->lock);
    wake(granted);
    return 0;
}

int64_t goc_sem_held(goc_sem *s)
{
    if (!s)
        return -EINVAL;
    struct sem *m = (struct sem *)s;
    goc__lock_acquire(&m->lock);
    int64_t cur = m->cur;
    goc__lock_release(&m->lock);
    return cur;
}

int64_t goc_sem_available(goc_sem *s)
{
    if (!s)
        return -EINVAL;
    struct sem *m = (struct sem *)s;
    goc__lock_acquire(&m->lock);
    int64_t free = m->size - m->cur;
    goc__lock_release(&m->lock);
    return free;
}

int64_t goc_sem_waiters(goc_sem *s)
{
    if (!s)
        return -EINVAL;
    struct sem *m = (struct sem *)s;
    int64_t n = 0;
    goc__lock_acquire(&m->lock);
    for (struct goc__dlink *l = m->q.head; l; l = l->next)
        n++;
    goc__lock_release(&m->lock);
    return n;
}
