/* SPDX-License-Identifier: MIT */
/*
 * WaitGroup. The counter and the number of waiters share one 64-bit word
 * (counter in the high half, waiters in the low half), so Add and Done are
 * a single CAS and only the transition to zero with waiters takes the lock.
 */
#include "goc/sync.h"
#include "../runtime/runtime.h"

#include <assert.h>

struct wg {
    _Atomic uint64_t state; /* counter << 32 | waiters */
    goc__lock lock;
    struct goc__waiter *head; /* waiters, under lock */
};

static_assert(sizeof(struct wg) <= sizeof(goc_wg), "goc_wg too small");

#define COUNTER(s) ((int32_t)((s) >> 32))
#define WAITERS(s) ((uint32_t)(s))

void goc_wg_init(goc_wg *wg)
{
    *wg = (goc_wg)GOC_WG_INIT;
}

/* The counter reached zero with waiters: release all of them. */
static void wake_all(struct wg *w)
{
    goc__lock_acquire(&w->lock);
    struct goc__waiter *list = w->head;
    w->head = NULL;
    uint64_t n = 0;
    for (struct goc__waiter *x = list; x; x = x->next)
        n++;
    /* Waiters join the list and the count together under the lock; an
     * Add racing with this wake keeps its increment. */
    atomic_fetch_sub(&w->state, n);
    goc__lock_release(&w->lock);
    while (list) {
        struct goc__waiter *next = list->next;
        goc__waiter_wake(list);
        list = next;
    }
}

int goc_wg_add(goc_wg *wg, int64_t delta)
{
    struct wg *w = (struct wg *)wg;
    uint64_t s = atomic_load(&w->state);
    int64_t c;
    do {
        c = (int64_t)COUNTER(s) + delta;
        if (c < 0)
            return GOC_EMISUSE;
        if (c > INT32_MAX)
            return -EOVERFLOW;
    } while (!atomic_compare_exchange_weak(&w->state, &s,
                                           ((uint64_t)c << 32) | WAITERS(s)));
    if (c == 0 && WAITERS(s) > 0)
        wake_all(w);
    return 0;
}

int goc_wg_done(goc_wg *wg)
{
    return goc_wg_add(wg, -1);
}

int goc_wg_wait(goc_wg *wg)
{
    struct wg *w = (struct wg *)wg;
    if (COUNTER(atomic_load(&w->state)) == 0)
        return 0;
    struct goc__waiter waiter;
    goc__waiter_init(&waiter);
    goc__lock_acquire(&w->lock);
    /* Count ourselves in only while the counter is still non-zero. */
    uint64_t s = atomic_load(&w->state);
    do {
        if (COUNTER(s) == 0) {
            goc__lock_release(&w->lock);
            return 0;
        }
    } while (!atomic_compare_exchange_weak(&w->state, &s, s + 1));
    waiter.next = w->head;
    w->head = &waiter;
    goc__waiter_sleep(&waiter, &w->lock);
    return 0;
}
