/* SPDX-License-Identifier: MIT */
/*
 * One blocking operation of a goroutine or a plain thread, woken by
 * whichever of its sources (channels of a select, a WaitGroup, a timer, a
 * context) claims it first.
 *
 * The state word decides the race:
 *
 *   IDLE ----(waiter parked)----> PARKED
 *     \                              |
 *      `---(a source claims it)---> CLAIMED ---(source done)---> DONE
 *
 * A source claims with a CAS from IDLE or PARKED, does its part (copies a
 * value, records a result) and then publishes DONE. If it claimed a parked
 * goroutine it also readies it; if the goroutine was still on its way to
 * parking, the goroutine's own park commit sees the claim and readies
 * itself. Either way the goroutine runs again exactly once, and reads the
 * result only after DONE.
 *
 * An exclusive wait (an unbuffered channel operation with no context) has
 * one lock that every claimer holds and that the waiter holds until its
 * park commit has stored PARKED: nothing races, so plain stores replace
 * both CASes, two atomic read-modify-writes fewer per hand-off.
 */
#include "runtime.h"
#include "../internal/cpu.h"
#include "../internal/futex.h"

#include <sched.h>

const char *const goc__wait_reason_names[GOC__WAIT_REASONS] = {
    [GOC__WAIT_NONE] = "waiting",        [GOC__WAIT_CHAN_RECV] = "chan receive",
    [GOC__WAIT_CHAN_SEND] = "chan send", [GOC__WAIT_SELECT] = "select",
    [GOC__WAIT_SLEEP] = "sleep",         [GOC__WAIT_MUTEX] = "mutex",
    [GOC__WAIT_RWMUTEX] = "rwmutex",     [GOC__WAIT_COND] = "cond",
    [GOC__WAIT_SEM] = "semaphore",       [GOC__WAIT_WG] = "waitgroup",
    [GOC__WAIT_IO] = "io wait",          [GOC__WAIT_BLOCKING] = "blocking call",
    [GOC__WAIT_CTX] = "context",
};

static inline void wait_finish(struct goc__wait *w, bool handoff)
{
    struct goc__g *g = w->g;
    bool parked = w->parked;
    /* Release: the result and any copied value are visible with DONE.
     * After this store the waiter may return: touch w no more. */
    atomic_store_explicit(&w->state, GOC__WAIT_STATE_DONE,
                          memory_order_release);
    if (g && parked) {
        if (handoff)
            goc__ready_handoff(g);
        else
            goc__ready(g, true);
        return;
    }
    if (handoff)
        goc__handoff_flush();
    if (!g)
        goc__futex_wake(&w->state, 1);
}

void goc__wait_finish(struct goc__wait *w)
{
    wait_finish(w, false);
}

void goc__wait_finish_handoff(struct goc__wait *w)
{
    wait_finish(w, true);
}

void goc__yield_to_peer(unsigned *spins)
{
    if (*spins < 100) {
        ++*spins;
        goc_yield();
    } else {
        sched_yield();
    }
}

bool goc__wait_claim_self(struct goc__wait *w, int index)
{
    uint32_t idle = GOC__WAIT_STATE_IDLE;
    if (!atomic_compare_exchange_strong_explicit(
            &w->state, &idle, GOC__WAIT_STATE_DONE, memory_order_acq_rel,
            memory_order_acquire))
        return false;
    w->index = index;
    return true;
}

struct park_commit {
    struct goc__wait *w;
    void (*unlock)(void *);
    void *unlock_arg;
};

/*
 * Runs once the waiter is off its stack: release the sources' locks, then
 * announce that the goroutine is parked. A source that claimed it in the
 * meantime did not ready it, so it is readied here. An exclusive wait
 * cannot have been claimed while we held the lock: it announces first,
 * with a plain store, and the unlock publishes it.
 */
static void park_commit(struct goc__m *m, void *arg)
{
    (void)m;
    struct park_commit *pc = arg;
    struct goc__wait *w = pc->w;
    struct goc__g *g = w->g;
    if (w->exclusive) {
        atomic_store_explicit(&w->state, GOC__WAIT_STATE_PARKED,
                              memory_order_relaxed);
        pc->unlock(pc->unlock_arg);
        return;
    }
    if (pc->unlock)
        pc->unlock(pc->unlock_arg);
    uint32_t idle = GOC__WAIT_STATE_IDLE;
    if (!atomic_compare_exchange_strong_explicit(
            &w->state, &idle, GOC__WAIT_STATE_PARKED, memory_order_acq_rel,
            memory_order_acquire))
        goc__ready(g, true);
}

int goc__wait_block(struct goc__wait *w, void (*unlock)(void *), void *arg)
{
    if (w->g) {
        struct park_commit pc = { w, unlock, arg };
        atomic_store_explicit(&w->g->status, GOC__G_WAITING,
                              memory_order_relaxed);
        goc__park(park_commit, &pc);
    } else {
        if (unlock)
            unlock(arg);
        uint32_t s;
        while ((s = atomic_load_explicit(&w->state, memory_order_acquire)) !=
               GOC__WAIT_STATE_DONE)
            goc__futex_wait(&w->state, s, -1);
    }
    /*
     * A claimer that raced our park may still be finishing its part: a
     * few instructions, unless its thread was preempted, so spin a
     * little, then give it the CPU. (Spinning on, this thread kept a
     * preempted claimer off a busy CPU, and off valgrind's only one, for
     * seconds.)
     */
    for (int spins = 0; atomic_load_explicit(&w->state, memory_order_acquire) !=
                        GOC__WAIT_STATE_DONE;
         spins++) {
        if (spins < 100)
            goc__cpu_relax();
        else
            sched_yield();
    }
    return w->index;
}
