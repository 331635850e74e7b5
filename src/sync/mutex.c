/* SPDX-License-Identifier: MIT */
/*
 * Mutex, after Go's sync.Mutex.
 *
 * The state word holds LOCKED, STARVING and the number of queued waiters.
 * In normal mode an unlock releases the lock and wakes the first waiter,
 * which then competes with goroutines arriving right now (they are on a
 * CPU already, so letting them barge in keeps throughput high); a woken
 * waiter that loses goes back to the front of the queue. A waiter that
 * has waited over 1 ms switches the mutex to starvation mode: unlock then
 * hands the lock directly to the first waiter, arrivals queue at the tail,
 * and the mode ends when the queue drains or a waiter got it quickly.
 *
 * A waiter counts itself in the state word with a CAS that also checks
 * that the mutex is still held, under the queue lock, so an unlock either
 * sees the waiter (and takes the slow path, which needs the queue lock) or
 * the waiter sees the mutex free.
 */
#include "goc/sync.h"
#include "goc/time.h"
#include "../context/ctx.h"
#include "mutex_int.h"
#include "../internal/list.h"

#include <assert.h>

#define LOCKED      1u
#define STARVING    2u
#define WAITER      4u /* one queued waiter */
#define STARVE_NS   1000000
#define SPIN_ROUNDS 4
#define SPIN_PAUSES 30

struct mutex_waiter {
    struct goc__dlink link;
    struct goc__wait *w;
    int64_t since;
    bool linked;
    bool handoff; /* starvation mode: the lock was handed to us */
};

struct mutex {
    _Atomic uint32_t state;
    goc__lock qlock;
    struct goc__dqueue q; /* waiters, under qlock */
};

static_assert(sizeof(struct mutex) <= sizeof(goc_mutex), "goc_mutex small");

static bool try_acquire(struct mutex *m)
{
    uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
    while (!(s & (LOCKED | STARVING)))
        if (atomic_compare_exchange_weak_explicit(&m->state, &s, s | LOCKED,
                                                  memory_order_acquire,
                                                  memory_order_relaxed))
            return true;
    return false;
}

int goc_mutex_try_lock(goc_mutex *mu)
{
    if (!mu)
        return -EINVAL;
    return try_acquire((struct mutex *)mu) ? 0 : -EAGAIN;
}

/* ---- the queue (under qlock) ------------------------------------------ */

static void enqueue(struct mutex *m, struct mutex_waiter *x, bool front)
{
    if (front)
        goc__dqueue_push_front(&m->q, &x->link);
    else
        goc__dqueue_push_back(&m->q, &x->link);
    x->linked = true;
}

static void dequeue(struct mutex *m, struct mutex_waiter *x)
{
    goc__dqueue_remove(&m->q, &x->link);
    x->linked = false;
    atomic_fetch_sub(&m->state, WAITER);
}

/* The first waiter whose wait we win (others were cancelled), or NULL. */
static struct mutex_waiter *claim_first(struct mutex *m)
{
    while (m->q.head) {
        struct mutex_waiter *x =
            goc__container_of(m->q.head, struct mutex_waiter, link);
        dequeue(m, x);
        if (goc__wait_claim(x->w, 0))
            return x;
    }
    return NULL;
}

/* ---- lock ------------------------------------------------------------- */

/*
 * Under qlock: count ourselves in while the mutex is held, or take it if
 * it has just been released. Returns true if we took it.
 */
static bool join_or_take(struct mutex *m, bool starving)
{
    uint32_t s = atomic_load(&m->state);
    for (;;) {
        if (!(s & (LOCKED | STARVING))) {
            if (atomic_compare_exchange_weak(&m->state, &s, s | LOCKED))
                return true;
            continue;
        }
        uint32_t ns = s + WAITER;
        if (starving && (s & LOCKED))
            ns |= STARVING;
        if (atomic_compare_exchange_weak(&m->state, &s, ns))
            return false;
    }
}

static void unlock_q(void *lock)
{
    goc__lock_release(lock);
}

/* Spin while the holder is probably about to let go. */
static bool spin_acquire(struct mutex *m)
{
    /* nprocs is read only once the runtime's start is seen: a plain
     * thread may lock while another thread starts the runtime. */
    if (!goc__rt_started() || goc__sched.nprocs < 2)
        return false;
    for (int round = 0; round < SPIN_ROUNDS; round++) {
        for (int i = 0; i < SPIN_PAUSES; i++)
            goc__cpu_relax();
        uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
        if (s & STARVING)
            return false;
        if (!(s & LOCKED) && try_acquire(m))
            return true;
    }
    return false;
}

/* Leave starvation mode when the queue is empty or we did not starve. */
static void after_handoff(struct mutex *m, struct mutex_waiter *x)
{
    goc__lock_acquire(&m->qlock);
    if (!m->q.head || goc_now() - x->since < STARVE_NS)
        atomic_fetch_and(&m->state, ~STARVING);
    goc__lock_release(&m->qlock);
}

static int lock_slow(struct mutex *m, goc_ctx *ctx)
{
    struct goc__wait w;
    struct goc__ctx_watch cw;
    struct mutex_waiter x = { .w = &w, .since = 0 };
    bool front = false, starving = false;
    for (;;) {
        if (spin_acquire(m))
            return 0;
        goc__wait_init(&w, GOC__WAIT_MUTEX);
        int err = goc__ctx_watch(ctx, &cw, &w, 1);
        if (err)
            return err;
        goc__lock_acquire(&m->qlock);
        if (join_or_take(m, starving)) {
            goc__lock_release(&m->qlock);
            goc__ctx_unwatch(&cw);
            return 0;
        }
        if (!x.since)
            x.since = goc_now();
        x.handoff = false;
        enqueue(m, &x, front);
        int won = goc__wait_block(&w, unlock_q, &m->qlock);
        goc__ctx_unwatch(&cw);
        if (won != 0) {
            goc__lock_acquire(&m->qlock);
            if (x.linked)
                dequeue(m, &x);
            goc__lock_release(&m->qlock);
            return goc_ctx_err(ctx);
        }
        if (x.handoff) {
            after_handoff(m, &x);
            return 0;
        }
        /* Woken in normal mode: compete again, first in line if we lose. */
        starving = goc_now() - x.since > STARVE_NS;
        front = true;
        if (try_acquire(m))
            return 0;
    }
}

int goc_mutex_lock(goc_mutex *mu, goc_ctx *ctx)
{
    if (!mu)
        return -EINVAL;
    struct mutex *m = (struct mutex *)mu;
    if (ctx) {
        int err = goc_ctx_err(ctx);
        if (err)
            return err;
    }
    uint32_t unlocked = 0;
    if (atomic_compare_exchange_strong_explicit(&m->state, &unlocked, LOCKED,
                                                memory_order_acquire,
                                                memory_order_relaxed))
        return 0;
    return lock_slow(m, ctx);
}

/* ---- unlock ----------------------------------------------------------- */

/* An unlock of a mutex not locked: reported unless @quiet. */
static int not_locked(bool quiet)
{
    return quiet ? GOC_EMISUSE : goc__misuse("goc_mutex_unlock: not locked");
}

/*
 * Waiters are queued, or the mutex starves. Two rules:
 *  - LOCKED is checked again under qlock: of two unlocks of one lock that
 *    both passed the check in goc_mutex_unlock(), the second is misuse;
 *  - with nobody to wake, the write that frees the mutex comes after
 *    qlock is released, as our last touch of it: from then on a locker
 *    may take it, let it go and free it (the last user of an object
 *    freeing the object, as POSIX allows for its mutexes). A waiter we
 *    wake keeps it alive meanwhile: its lock call has not returned.
 */
static int unlock_slow(struct mutex *m, bool quiet)
{
    for (;;) {
        goc__lock_acquire(&m->qlock);
        uint32_t s = atomic_load(&m->state);
        if (!(s & LOCKED)) {
            goc__lock_release(&m->qlock);
            return not_locked(quiet);
        }
        struct mutex_waiter *x = claim_first(m);
        if (x) {
            if (s & STARVING) /* hand it over: LOCKED stays for x */
                x->handoff = true;
            else /* release it, and wake x to compete for it */
                atomic_fetch_and_explicit(&m->state, ~LOCKED,
                                          memory_order_release);
            goc__lock_release(&m->qlock);
            goc__wait_finish(x->w); /* x may vanish: read nothing after */
            return 0;
        }
        /* Unlocked, out of starvation mode; unless a waiter joins first
         * (under qlock, so after our load), then it is woken instead. */
        s = atomic_load(&m->state);
        goc__lock_release(&m->qlock);
        if (atomic_compare_exchange_strong_explicit(
                &m->state, &s, 0, memory_order_release, memory_order_relaxed))
            return 0;
    }
}

bool goc__mutex_locked(goc_mutex *mu)
{
    struct mutex *m = (struct mutex *)mu;
    return atomic_load_explicit(&m->state, memory_order_relaxed) & LOCKED;
}

/* goc_mutex_unlock; quiet: GOC_EMISUSE unreported, the caller reports
 * it. The slow path stays a tail call: the fast one needs no frame. */
static inline int unlock(struct mutex *m, bool quiet)
{
    uint32_t s = atomic_load_explicit(&m->state, memory_order_relaxed);
    if (!(s & LOCKED))
        return not_locked(quiet);
    uint32_t locked = LOCKED;
    /* Release pairs with the acquire CAS of the next locker. */
    if (atomic_compare_exchange_strong_explicit(
            &m->state, &locked, 0, memory_order_release, memory_order_relaxed))
        return 0;
    return unlock_slow(m, quiet);
}

int goc__mutex_unlock_quiet(goc_mutex *mu)
{
    return unlock((struct mutex *)mu, true);
}

int goc_mutex_unlock(goc_mutex *mu)
{
    if (!mu)
        return -EINVAL;
    return unlock((struct mutex *)mu, false);
}
