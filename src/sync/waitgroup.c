/* SPDX-License-Identifier: MIT */
/*
 * WaitGroup. The counter and the number of waiters share one 64-bit word
 * (counter in the high half, waiters in the low half), so Add and Done are
 * a single CAS and only the transition to zero with waiters takes the lock.
 */
#include "goc/sync.h"
#include "../context/ctx.h"
#include "../internal/alloc.h"

#include <assert.h>

/* A waiter's entry in the group's list, on the waiter's stack. */
struct wg_waiter {
    struct goc__dlink link;
    struct goc__wait *w;
    bool linked;
};

struct wg {
    _Atomic uint64_t state; /* counter << 32 | waiters */
    goc__lock lock;
    struct goc__dlink *head; /* under lock: wg_waiter links */
};

static_assert(sizeof(struct wg) <= sizeof(goc_wg), "goc_wg too small");

#define COUNTER(s) ((int32_t)((s) >> 32))
#define WAITERS(s) ((uint32_t)(s))

void goc_wg_init(goc_wg *wg)
{
    if (!wg)
        goc__null_argument(__func__);
    *wg = (goc_wg)GOC_WG_INIT;
}

/*
 * The Add that brings the counter to zero with waiters: under the lock,
 * so that the zeroing and the taking of the list are one step for the
 * waiters, which join and leave under the lock. A waiter of a new round
 * (an Add since) is never on the list taken, and a waiter still linked
 * always sees a counter above zero.
 *
 * The wake counts itself as one more waiter being woken, and its last
 * touch of the group is the subtraction of all of them from the state
 * word, after the lock is released: a Wait returns on a zero state only
 * after it, so a group freed right after its Wait returns is never
 * touched again here. (Without its own count, a wake that found the list
 * empty, the waiters counted being an earlier wake's, left nothing for a
 * Wait to wait for: the Wait could return, and free the group, before
 * this wake released the lock.)
 */
__attribute__((noinline)) static int add_and_wake(struct wg *g, int64_t delta)
{
    struct goc__dlink *won = NULL, *l;
    goc__lock_acquire(&g->lock);
    uint64_t s = atomic_load(&g->state);
    int64_t c;
    do {
        c = (int64_t)COUNTER(s) + delta;
        if (c < 0 || c > INT32_MAX) {
            goc__lock_release(&g->lock);
            return c < 0 ? goc__misuse("goc_wg_add: negative counter")
                         : -EOVERFLOW;
        }
    } while (!atomic_compare_exchange_weak(
        &g->state, &s, ((uint64_t)c << 32) | (WAITERS(s) + (c == 0))));
    uint64_t n = c == 0; /* this wake's own count */
    while (c == 0 && (l = goc__dlist_pop(&g->head))) {
        struct wg_waiter *x = goc__container_of(l, struct wg_waiter, link);
        x->linked = false;
        n++;
        /* Claim under the lock: a waiter its context woke may leave as
         * soon as the lock is free, and must not be touched after. */
        if (goc__wait_claim(x->w, 0))
            goc__dlist_push(&won, l);
    }
    goc__lock_release(&g->lock);
    /* Waiters join the list and the count together under the lock; an
     * Add racing with this wake keeps its increment. */
    if (n)
        atomic_fetch_sub(&g->state, n);
    while (won) {
        struct goc__wait *w = goc__container_of(won, struct wg_waiter, link)->w;
        won = won->next; /* the waiter may leave once finished */
        goc__wait_finish(w);
    }
    return 0;
}

int goc_wg_add(goc_wg *wg, int64_t delta)
{
    struct wg *g = (struct wg *)wg;
    if (!g)
        return -EINVAL;
    if (delta > INT32_MAX)
        return -EOVERFLOW; /* so that the sum below cannot overflow */
    uint64_t s = atomic_load(&g->state);
    int64_t c;
    do {
        c = (int64_t)COUNTER(s) + delta;
        if (c < 0)
            return goc__misuse("goc_wg_add: negative counter");
        if (c > INT32_MAX)
            return -EOVERFLOW;
        if (c == 0 && WAITERS(s) > 0)
            return add_and_wake(g, delta);
    } while (!atomic_compare_exchange_weak(&g->state, &s,
                                           ((uint64_t)c << 32) | WAITERS(s)));
    return 0;
}

int goc_wg_done(goc_wg *wg)
{
    return goc_wg_add(wg, -1);
}

static void wg_unlock(void *lock)
{
    goc__lock_release(lock);
}

enum join { JOINED, DONE, WAKING };

/*
 * Under g->lock: join the waiters, unless the counter is zero already
 * (DONE), or zero with a wake of earlier waiters still running (WAKING).
 */
static enum join join(struct wg *g, struct wg_waiter *x)
{
    uint64_t s = atomic_load(&g->state);
    do {
        if (COUNTER(s) == 0)
            return WAITERS(s) ? WAKING : DONE;
    } while (!atomic_compare_exchange_weak(&g->state, &s, s + 1));
    goc__dlist_push(&g->head, &x->link);
    x->linked = true;
    return JOINED;
}

/*
 * A wake is finishing: wait for its last touch of the group, the
 * subtraction that leaves no waiter counted, unless the counter rises
 * first. The group was done when we looked; an Add since then begins a
 * round this wait is no part of (and whoever added keeps the group
 * alive, so the wake's last touch is safe without us).
 */
static void await_wake(struct wg *g)
{
    uint64_t s;
    unsigned spins = 0;
    while (s = atomic_load(&g->state), COUNTER(s) == 0 && WAITERS(s) != 0)
        goc__yield_to_peer(&spins);
}

/*
 * The context ended first: leave the group as if we never waited. Taken
 * off the list already, we were counted out by a wake: the group is done,
 * which an observation reports even with its context ended. Returns true
 * then, once that wake no longer touches the group.
 */
static bool leave(struct wg *g, struct wg_waiter *x)
{
    goc__lock_acquire(&g->lock);
    bool done = !x->linked;
    if (!done) {
        /* Still linked: the counter is above zero (a zeroing Add takes
         * the list), so the state stays non-zero. */
        goc__dlist_remove(&g->head, &x->link);
        x->linked = false;
        atomic_fetch_sub(&g->state, 1);
    }
    goc__lock_release(&g->lock);
    if (done)
        await_wake(g);
    return done;
}

int goc_wg_wait(goc_wg *wg, goc_ctx *ctx)
{
    struct wg *g = (struct wg *)wg;
    if (!g)
        return -EINVAL;
    /* A finished group is reported even when ctx is done. */
    if (atomic_load(&g->state) == 0)
        return 0;
    if (COUNTER(atomic_load(&g->state)) == 0) {
        await_wake(g);
        return 0;
    }
    struct goc__wait w;
    struct goc__ctx_watch cw;
    struct wg_waiter x = { .w = &w };
    goc__wait_init(&w, GOC__WAIT_WG);
    int err = goc__ctx_watch(ctx, &cw, &w, 1);
    if (err)
        return err;
    goc__lock_acquire(&g->lock);
    enum join j = join(g, &x);
    if (j != JOINED) {
        goc__lock_release(&g->lock);
        goc__ctx_unwatch(&cw);
        if (j == WAKING)
            await_wake(g);
        return 0;
    }
    int won = goc__wait_block(&w, wg_unlock, &g->lock);
    goc__ctx_unwatch(&cw);
    if (won == 0 || leave(g, &x))
        return 0;
    return goc_ctx_err(ctx);
}

struct wg_task {
    goc_wg *wg;
    goc_fn fn;
    void *arg;
};

static void wg_task_main(void *p)
{
    struct wg_task t = *(struct wg_task *)p;
    goc__free(p);
    t.fn(t.arg);
    goc_wg_done(t.wg);
}

int goc_wg_go(goc_wg *wg, goc_fn fn, void *arg)
{
    if (!wg || !fn)
        return -EINVAL;
    struct wg_task *t = goc__malloc(sizeof(*t));
    if (!t)
        return -ENOMEM;
    *t = (struct wg_task){ wg, fn, arg };
    int err = goc_wg_add(wg, 1);
    if (!err && (err = goc_go(wg_task_main, t)) != 0)
        goc_wg_add(wg, -1); /* nothing runs: as it was */
    if (err)
        goc__free(t);
    return err;
}
