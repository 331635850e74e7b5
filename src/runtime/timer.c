/* SPDX-License-Identifier: MIT */
/*
 * Per-P hierarchical timing wheels.
 *
 * Level l has 64 slots of 64^l ticks; a tick is 2^16 ns (65.5 us), so the
 * six levels reach 2^52 ns (52 days). A timer goes to the level at which
 * its deadline tick first differs from the wheel's elapsed tick; when time
 * reaches a slot of level l > 0, its timers are re-inserted and fall to
 * lower levels. Arming and cancelling are O(1) list operations, which
 * matters because most deadlines (timeouts, contexts) are cancelled long
 * before they fire.
 *
 * A timer fires at the end of its tick, never before its deadline.
 */
#include "runtime.h"

#define TICK_SHIFT 16
#define LEVEL_BITS 6
#define SLOT_MASK  (GOC__WHEEL_SLOTS - 1)
#define FIRE_BATCH 64

void goc__wheel_init(struct goc__wheel *w)
{
    *w = (struct goc__wheel){ .lock = GOC__LOCK_INIT };
    w->elapsed = (uint64_t)goc__nanotime() >> TICK_SHIFT;
    atomic_store(&w->next_when, INT64_MAX);
}

static int level_for(uint64_t elapsed, uint64_t tick)
{
    uint64_t masked = (elapsed ^ tick) | SLOT_MASK;
    int significant = 63 - __builtin_clzll(masked);
    return significant / LEVEL_BITS;
}

/* The head of the list t is (or goes) on. */
/* The wheel's count changes under its lock; statistics read it without. */
static void count_add(struct goc__wheel *w, int64_t n)
{
    GOC__STAT_INC(w->count, n);
}

static struct goc__timer **list_of(struct goc__wheel *w, struct goc__timer *t)
{
    if (t->level == GOC__WHEEL_LEVELS)
        return &w->overflow;
    return &w->slots[t->level][t->slot];
}

static void slot_link(struct goc__wheel *w, struct goc__timer *t)
{
    uint64_t tick = t->tick < w->elapsed ? w->elapsed : t->tick;
    int level = level_for(w->elapsed, tick);
    if (level >= GOC__WHEEL_LEVELS) {
        t->level = GOC__WHEEL_LEVELS;
        t->slot = 0;
        if (!w->overflow)
            w->overflow_recheck = ((w->elapsed >> (LEVEL_BITS * 5)) + 1)
                                  << (LEVEL_BITS * 5);
    } else {
        t->level = (uint8_t)level;
        t->slot = (uint8_t)(tick >> (level * LEVEL_BITS)) & SLOT_MASK;
        w->occupied[level] |= 1ULL << t->slot;
    }
    struct goc__timer **head = list_of(w, t);
    t->prev = NULL;
    t->next = *head;
    if (*head)
        (*head)->prev = t;
    *head = t;
    count_add(w, 1);
}

static void slot_unlink(struct goc__wheel *w, struct goc__timer *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        *list_of(w, t) = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else if (!t->prev && t->level < GOC__WHEEL_LEVELS)
        w->occupied[t->level] &= ~(1ULL << t->slot);
    t->next = t->prev = NULL;
    count_add(w, -1);
}

/*
 * The earliest non-empty slot. Levels hold disjoint, increasing ranges of
 * deadlines, so the first non-empty level has it. Returns its deadline tick
 * and sets *level and *slot; UINT64_MAX when the wheel is empty.
 */
static uint64_t next_expiry(struct goc__wheel *w, int *level, unsigned *slot)
{
    uint64_t best = UINT64_MAX;
    for (int l = 0; l < GOC__WHEEL_LEVELS; l++) {
        uint64_t occ = w->occupied[l];
        if (!occ)
            continue;
        int shift = l * LEVEL_BITS;
        unsigned now_slot = (unsigned)(w->elapsed >> shift) & SLOT_MASK;
        uint64_t rot =
            now_slot ? (occ >> now_slot) | (occ << (64 - now_slot)) : occ;
        unsigned s = (now_slot + (unsigned)__builtin_ctzll(rot)) & SLOT_MASK;
        uint64_t level_range = 1ULL << (shift + LEVEL_BITS);
        best = (w->elapsed & ~(level_range - 1)) + ((uint64_t)s << shift);
        if (s < now_slot)
            best += level_range;
        *level = l;
        *slot = s;
        break;
    }
    /* The overflow list is re-examined at each top-level slot boundary. */
    if (w->overflow && w->overflow_recheck < best) {
        best = w->overflow_recheck;
        *level = GOC__WHEEL_LEVELS;
        *slot = 0;
    }
    return best;
}

static void publish_next(struct goc__wheel *w)
{
    int l;
    unsigned s;
    uint64_t tick = next_expiry(w, &l, &s);
    int64_t when =
        tick == UINT64_MAX ? INT64_MAX : (int64_t)(tick << TICK_SHIFT);
    atomic_store(&w->next_when, when);
}

static struct goc__wheel *current_wheel(void)
{
    struct goc__m *m = goc__m_current();
    struct goc__p *p = m ? m->p : NULL;
    if (!p) {
        /* A plain thread: any wheel will do; spread by thread. */
        static _Atomic unsigned rr;
        p = &goc__sched.allp[atomic_fetch_add(&rr, 1) % goc__sched.nprocs];
    }
    return &p->wheel;
}

void goc__timer_start(struct goc__timer *t,
                      int64_t when,
                      void (*fn)(void *),
                      void *arg)
{
    struct goc__wheel *w = current_wheel();
    t->when = when;
    t->fn = fn;
    t->arg = arg;
    /* Round up: the timer fires when its whole tick has passed. */
    t->tick = ((uint64_t)when + (1ULL << TICK_SHIFT) - 1) >> TICK_SHIFT;
    goc__lock_acquire(&w->lock);
    slot_link(w, t);
    atomic_store_explicit(&t->wheel, w, memory_order_relaxed);
    int64_t fire = (int64_t)(t->tick << TICK_SHIFT);
    bool earliest = fire < atomic_load(&w->next_when);
    if (earliest)
        atomic_store(&w->next_when, fire);
    goc__lock_release(&w->lock);
    if (earliest)
        goc__poll_kick(fire);
}

bool goc__timer_stop(struct goc__timer *t)
{
    struct goc__wheel *w =
        atomic_load_explicit(&t->wheel, memory_order_acquire);
    if (!w)
        return false;
    goc__lock_acquire(&w->lock);
    /* A timer stays on one wheel; firing clears t->wheel under its lock. */
    bool armed = atomic_load_explicit(&t->wheel, memory_order_relaxed) == w;
    if (armed) {
        slot_unlink(w, t);
        atomic_store_explicit(&t->wheel, NULL, memory_order_relaxed);
    }
    goc__lock_release(&w->lock);
    return armed;
}

bool goc__timer_stop_sync(struct goc__timer *t)
{
    if (goc__timer_stop(t))
        return true;
    /* It fired: its callback may still run on another thread. */
    while (atomic_load_explicit(&t->firing, memory_order_acquire))
        goc_yield();
    return false;
}

struct fired {
    struct goc__timer *t;
    void (*fn)(void *);
    void *arg;
};

/* Put the rest of a slot's list back, untouched, as that slot's list. */
static void slot_restore(struct goc__wheel *w,
                         int level,
                         unsigned slot,
                         struct goc__timer *rest)
{
    rest->prev = NULL;
    if (level == GOC__WHEEL_LEVELS) {
        w->overflow = rest;
    } else {
        w->slots[level][slot] = rest;
        w->occupied[level] |= 1ULL << slot;
    }
}

/*
 * Fire the due timers of the earliest slot into out[] (at most max) and
 * re-insert the others one level down. If out[] fills up, the rest of the
 * slot stays where it is for the next call. Returns the count in out.
 */
static int expire_slot(struct goc__wheel *w,
                       int level,
                       unsigned slot,
                       uint64_t start,
                       int64_t now,
                       struct fired *out,
                       int max)
{
    int n = 0;
    struct goc__timer *t;
    if (level == GOC__WHEEL_LEVELS) {
        t = w->overflow;
        w->overflow = NULL;
    } else {
        t = w->slots[level][slot];
        w->slots[level][slot] = NULL;
        w->occupied[level] &= ~(1ULL << slot);
    }
    w->elapsed = start;
    while (t) {
        struct goc__timer *next = t->next;
        if (t->tick <= start && t->when <= now) {
            if (n == max) {
                slot_restore(w, level, slot, t);
                return n;
            }
            out[n].t = t;
            out[n].fn = t->fn;
            out[n].arg = t->arg;
            atomic_store_explicit(&t->firing, 1, memory_order_relaxed);
            n++;
            count_add(w, -1);
            t->next = t->prev = NULL;
            atomic_store_explicit(&t->wheel, NULL, memory_order_release);
        } else {
            count_add(w, -1);
            slot_link(w, t);
        }
        t = next;
    }
    return n;
}

int goc__wheel_run(struct goc__wheel *w, int64_t now, int max)
{
    int total = 0;
    uint64_t now_tick = (uint64_t)now >> TICK_SHIFT;
    while (total < max) {
        struct fired batch[FIRE_BATCH];
        int want = max - total < FIRE_BATCH ? max - total : FIRE_BATCH;
        int n = 0;
        goc__lock_acquire(&w->lock);
        while (n < want) {
            int l;
            unsigned s;
            uint64_t start = next_expiry(w, &l, &s);
            if (start == UINT64_MAX || start > now_tick)
                break;
            n += expire_slot(w, l, s, start, now, batch + n, want - n);
        }
        if (n < want && w->elapsed < now_tick)
            w->elapsed = now_tick;
        publish_next(w);
        goc__lock_release(&w->lock);
        for (int i = 0; i < n; i++) {
            batch[i].fn(batch[i].arg);
            /* Release pairs with goc__timer_stop_sync's acquire. */
            atomic_store_explicit(&batch[i].t->firing, 0, memory_order_release);
        }
        total += n;
        if (n < want)
            break;
    }
    return total;
}
