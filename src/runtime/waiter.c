/* SPDX-License-Identifier: MIT */
/*
 * Wait records that work for goroutines and plain threads alike: a
 * goroutine parks (its lock is released only once it is off its stack), a
 * plain thread releases the lock and sleeps on a futex word.
 */
#include "runtime.h"
#include "../internal/futex.h"

void goc__waiter_init(struct goc__waiter *w)
{
    w->next = NULL;
    w->g = goc__g_current();
    atomic_init(&w->woken, 0);
}

void goc__waiter_sleep(struct goc__waiter *w, goc__lock *lock)
{
    if (w->g) {
        atomic_store_explicit(&w->g->status, GOC__G_WAITING,
                              memory_order_relaxed);
        goc__park(goc__commit_unlock, lock);
        return;
    }
    goc__lock_release(lock);
    /* Acquire pairs with the release store in goc__waiter_wake. */
    while (atomic_load_explicit(&w->woken, memory_order_acquire) == 0)
        goc__futex_wait(&w->woken, 0, -1);
}

void goc__waiter_wake(struct goc__waiter *w)
{
    struct goc__g *g = w->g;
    if (g) {
        goc__ready(g, true);
        return;
    }
    atomic_store_explicit(&w->woken, 1, memory_order_release);
    /* The record may be gone already; a stray wake is harmless. */
    goc__futex_wake(&w->woken, 1);
}
