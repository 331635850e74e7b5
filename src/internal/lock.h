/* SPDX-License-Identifier: MIT */
/*
 * goc__lock: the runtime's internal mutex. Three-state futex lock
 * (0 free, 1 locked, 2 locked with sleepers), spinning briefly before it
 * sleeps. It has no owner, so a goroutine can take it and the context that
 * runs after the goroutine has switched out can release it: that is how a
 * parking goroutine keeps its wait record consistent until it is off its
 * stack. Only C11 atomics are used, so TSan sees every edge.
 */
#ifndef GOC_INTERNAL_LOCK_H
#define GOC_INTERNAL_LOCK_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct goc__lock {
    _Atomic uint32_t state;
} goc__lock;

#define GOC__LOCK_INIT \
    {                  \
        0              \
    }

void goc__lock_slow(goc__lock *l);
void goc__lock_wake(goc__lock *l);

static inline void goc__lock_acquire(goc__lock *l)
{
    uint32_t free = 0;
    /* Pairs with the release exchange in goc__lock_release. */
    if (atomic_compare_exchange_strong_explicit(
            &l->state, &free, 1, memory_order_acquire, memory_order_relaxed))
        return;
    goc__lock_slow(l);
}

static inline int goc__lock_try(goc__lock *l)
{
    uint32_t free = 0;
    return atomic_compare_exchange_strong_explicit(
        &l->state, &free, 1, memory_order_acquire, memory_order_relaxed);
}

static inline void goc__lock_release(goc__lock *l)
{
    if (atomic_exchange_explicit(&l->state, 0, memory_order_release) == 2)
        goc__lock_wake(l);
}

#endif /* GOC_INTERNAL_LOCK_H */
