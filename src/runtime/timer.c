/* SPDX-License-Identifier: MIT */
/*
 * Per-P hierarchical timing wheels.
 *
 * Level l has 64 slots of 64^l ticks; a tick is 2^16 ns (65.5 us), so the
 * six levels reach 2^52 ns (52 days). A timer goes to the level at which
 * its deadline tick first differs from the wheel's elapsed tick; when time
 * reaches a slot of level l > 0, its timers are re-inserted and fall to
 * lower levels. Arming and cancelling are O(1), which matters because most
 * deadlines (timeouts, contexts) are cancelled long before they fire.
 *
 * A slot is an array of timer pointers, each timer knowing its index:
 * arming appends, cancelling moves the last entry into the hole. Timers
 * live in their owners' memory (a goroutine's descriptor at the top of its
 * stack, a context), so each one is a cache and TLB miss; expiry walks the
 * array and prefetches a few entries ahead, so that those misses overlap
 * instead of following one another down a linked list.
 *
 * A timer fires at the end of its tick, never before its deadline.
 */
#include "runtime.h"
#include "../internal/alloc.h"

#include <errno.h>
#include <string.h>

#define TICK_SHIFT 16
#define LEVEL_BITS 6
#define SLOT_MASK  (GOC__WHEEL_SLOTS - 1)
#define FIRE_BATCH 64

/* The first array a slot gets, in entries. */
#define SLOT_MIN       16
/*
 * A slot that empties keeps its array up to this many entries (512
 * bytes), so the steady arm/cancel traffic of deadlines allocates nothing.
 * A larger array is freed when its slot empties: one burst of 100,000
 * sleepers must not pin a megabyte per P for good. The next burst grows it
 * again by doubling, which copies each pointer about once more: sequential
 * memory, cheap next to the timers' own cache misses.
 */
#define SLOT_KEEP      64
/* How many entries ahead of the one it handles expiry prefetches. */
#define PREFETCH_AHEAD 8

void goc__wheel_init(struct goc__wheel *w)
{
    *w = (struct goc__wheel){ .lock = GOC__LOCK_INIT, .resume_level = -1 };
    w->elapsed = (uint64_t)goc__nanotime() >> TICK_SHIFT;
    atomic_store(&w->next_when, INT64_MAX);
}

int goc__wheel_destroy(struct goc__wheel *w)
{
    if (atomic_load(&w->count) != 0)
        return -EBUSY;
    for (int l = 0; l < GOC__WHEEL_LEVELS; l++)
        for (int s = 0; s < GOC__WHEEL_SLOTS; s++)
            goc__free(w->slots[l][s].v);
    goc__free(w->overflow.v);
    *w = (struct goc__wheel){ .lock = GOC__LOCK_INIT, .resume_level = -1 };
    atomic_store(&w->next_when, INT64_MAX);
    return 0;
}

static int level_for(uint64_t elapsed, uint64_t tick)
{
    uint64_t masked = (elapsed ^ tick) | SLOT_MASK;
    int significant = 63 - __builtin_clzll(masked);
    return significant / LEVEL_BITS;
}

/* The wheel's count changes under its lock; statistics read it without. */
static void count_add(struct goc__wheel *w, int64_t n)
{
    GOC__STAT_INC(w->count, n);
}

/* Level GOC__WHEEL_LEVELS is the overflow. */
static struct goc__wheel_slot *slot_at(struct goc__wheel *w,
                                       int level,
                                       unsigned slot)
{
    if (level == GOC__WHEEL_LEVELS)
        return &w->overflow;
    return &w->slots[level][slot];
}

static bool slot_empty(const struct goc__wheel_slot *sl)
{
    return sl->n == 0 && !sl->spill;
}

/* Double the slot's array; false if the memory is not there. */
static bool slot_grow(struct goc__wheel_slot *sl)
{
    if (sl->cap >= UINT32_MAX / 2)
        return false;
    uint32_t cap = sl->cap ? sl->cap * 2 : SLOT_MIN;
    struct goc__timer **v = goc__malloc((size_t)cap * sizeof(*v));
    if (!v)
        return false;
    if (sl->n)
        memcpy(v, sl->v, (size_t)sl->n * sizeof(*v));
    goc__free(sl->v);
    sl->v = v;
    sl->cap = cap;
    return true;
}

/*
 * Append t. Arming cannot fail (sleep, contexts and poll deadlines rely on
 * it), so when the array cannot grow t goes on the slot's spill list,
 * which expiry walks too.
 */
static void slot_push(struct goc__wheel_slot *sl, struct goc__timer *t)
{
    if (sl->n < sl->cap || slot_grow(sl)) {
        t->idx = sl->n;
        sl->v[sl->n++] = t;
        return;
    }
    t->idx = GOC__TIMER_SPILLED;
    t->prev = NULL;
    t->next = sl->spill;
    if (sl->spill)
        sl->spill->prev = t;
    sl->spill = t;
}

static void slot_remove(struct goc__wheel_slot *sl, struct goc__timer *t)
{
    if (t->idx == GOC__TIMER_SPILLED) {
        if (t->prev)
            t->prev->next = t->next;
        else
            sl->spill = t->next;
        if (t->next)
            t->next->prev = t->prev;
        t->next = t->prev = NULL;
        return;
    }
    struct goc__timer *last = sl->v[--sl->n];
    sl->v[t->idx] = last;
    last->idx = t->idx;
}

/* An emptied slot keeps a small array for reuse and frees a large one. */
static void slot_trim(struct goc__wheel_slot *sl)
{
    if (sl->n == 0 && sl->cap > SLOT_KEEP) {
        goc__free(sl->v);
        sl->v = NULL;
        sl->cap = 0;
    }
}

static void slot_link(struct goc__wheel *w, struct goc__timer *t)
{
    uint64_t tick = t->tick < w->elapsed ? w->elapsed : t->tick;
    int level = level_for(w->elapsed, tick);
    if (level >= GOC__WHEEL_LEVELS) {
        t->level = GOC__WHEEL_LEVELS;
        t->slot = 0;
        if (slot_empty(&w->overflow))
            w->overflow_recheck = ((w->elapsed >> (LEVEL_BITS * 5)) + 1)
                                  << (LEVEL_BITS * 5);
    } else {
        t->level = (uint8_t)level;
        t->slot = (uint8_t)(tick >> (level * LEVEL_BITS)) & SLOT_MASK;
        w->occupied[level] |= 1ULL << t->slot;
    }
    slot_push(slot_at(w, t->level, t->slot), t);
    count_add(w, 1);
}

static void slot_unlink(struct goc__wheel *w, struct goc__timer *t)
{
    struct goc__wheel_slot *sl = slot_at(w, t->level, t->slot);
    slot_remove(sl, t);
    if (slot_empty(sl)) {
        if (t->level < GOC__WHEEL_LEVELS)
            w->occupied[t->level] &= ~(1ULL << t->slot);
        if (w->resume_level == t->level && w->resume_slot == t->slot)
            w->resume_level = -1;
        slot_trim(sl);
    }
    count_add(w, -1);
}

/*
 * The earliest non-empty slot. Levels hold disjoint, increasing ranges of
 * deadlines, so the first non-empty level has it. Returns its deadline tick
 * and sets *level and *slot; UINT64_MAX when the wheel is empty.
 */
static uint64_t next_expiry(struct goc__wheel *w, int *level, unsigned *slot)
{
    /* A slot whose expiry was cut short still holds timers due at
     * elapsed, while lower levels took its later ones: it goes first. */
    if (w->resume_level >= 0) {
        *level = w->resume_level;
        *slot = w->resume_slot;
        return w->elapsed;
    }
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
    if (!slot_empty(&w->overflow) && w->overflow_recheck < best) {
        best = w->overflow_recheck;
        *level = GOC__WHEEL_LEVELS;
        *slot = 0;
    }
    return best;
}

/*
 * When a tick's timers fire: the tick's start, saturated short of
 * INT64_MAX (which means "no timer"). A deadline within a tick of
 * INT64_MAX (a sleep "for ever") rounds up past it, and shifted back
 * it wrapped to INT64_MIN: the idle poller then slept for centuries and
 * no timer of the process fired again.
 */
static int64_t tick_time(uint64_t tick)
{
    if (tick > (uint64_t)(INT64_MAX - 1) >> TICK_SHIFT)
        return INT64_MAX - 1;
    return (int64_t)(tick << TICK_SHIFT);
}

static void publish_next(struct goc__wheel *w)
{
    int l;
    unsigned s;
    uint64_t tick = next_expiry(w, &l, &s);
    int64_t when = tick == UINT64_MAX ? INT64_MAX : tick_time(tick);
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

void goc__wheel_start(struct goc__wheel *w,
                      struct goc__timer *t,
                      int64_t when,
                      void (*fn)(void *),
                      void *arg)
{
    t->when = when;
    t->fn = fn;
    t->arg = arg;
    /* Round up: the timer fires when its whole tick has passed. */
    t->tick = ((uint64_t)when + (1ULL << TICK_SHIFT) - 1) >> TICK_SHIFT;
    goc__lock_acquire(&w->lock);
    slot_link(w, t);
    atomic_store_explicit(&t->wheel, w, memory_order_relaxed);
    int64_t fire = tick_time(t->tick);
    bool earliest = fire < atomic_load(&w->next_when);
    if (earliest)
        atomic_store(&w->next_when, fire);
    goc__lock_release(&w->lock);
    if (earliest)
        goc__poll_kick(fire);
}

void goc__timer_start(struct goc__timer *t,
                      int64_t when,
                      void (*fn)(void *),
                      void *arg)
{
    goc__wheel_start(current_wheel(), t, when, fn, arg);
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
    bool armed = goc__timer_stop(t);
    /* Runs of fn may still be under way on other threads: even with t
     * armed, if fn re-armed it. */
    unsigned spins = 0;
    while (atomic_load_explicit(&t->firing, memory_order_acquire))
        goc__yield_to_peer(&spins);
    return armed;
}

struct fired {
    struct goc__timer *t; /* NULL: unsynced, not marked firing */
    void (*fn)(void *);
    void *arg;
};

/* One slot's expiry in progress: the slot's contents, taken out of it. */
struct expiry {
    struct goc__wheel *w;
    uint64_t start;
    int64_t now;
    struct fired *out;
    int n, max;
};

/*
 * Fire t (into out[]) if it is due, else re-insert it one level down.
 * Returns false, leaving t alone, when it is due but out[] is full.
 */
static bool expire_one(struct expiry *e, struct goc__timer *t)
{
    if (t->tick <= e->start && t->when <= e->now) {
        if (e->n == e->max)
            return false;
        struct fired *f = &e->out[e->n++];
        f->t = t->unsynced ? NULL : t;
        f->fn = t->fn;
        f->arg = t->arg;
        /* The callback runs after the lock is dropped and mostly works on
         * its argument (a goroutine to make ready): fetch it meanwhile. */
        __builtin_prefetch(f->arg, 1, 3);
        /* A count: fn may re-arm t, which may fire again on another
         * thread before this run of fn is over. */
        if (f->t)
            atomic_fetch_add_explicit(&t->firing, 1, memory_order_relaxed);
        count_add(e->w, -1);
        /* Only a spilled timer's links mean anything; leave the cache
         * line that holds them alone otherwise. */
        if (t->idx == GOC__TIMER_SPILLED)
            t->next = t->prev = NULL;
        atomic_store_explicit(&t->wheel, NULL, memory_order_release);
    } else {
        count_add(e->w, -1);
        slot_link(e->w, t);
    }
    return true;
}

static void prefetch_timer(const struct goc__timer *t)
{
    /* Expiry reads and writes the fields from tick to slot: one line
     * where the timer sits well, two at worst. For writing. */
    __builtin_prefetch(&t->tick, 1, 3);
    __builtin_prefetch(&t->slot, 1, 3);
}

/*
 * Walk the array from its end, so that what is left when out[] fills up
 * is a prefix whose indices are still right. Returns false if it stopped.
 */
static bool expire_array(struct expiry *e, struct goc__wheel_slot *mine)
{
    struct goc__timer **v = mine->v;
    uint32_t i = mine->n;
    while (i > 0) {
        if (i > PREFETCH_AHEAD)
            prefetch_timer(v[i - 1 - PREFETCH_AHEAD]);
        if (!expire_one(e, v[i - 1]))
            break;
        i--;
    }
    mine->n = i;
    return i == 0;
}

static bool expire_spill(struct expiry *e, struct goc__wheel_slot *mine)
{
    struct goc__timer *t = mine->spill;
    while (t) {
        struct goc__timer *next = t->next;
        if (!expire_one(e, t))
            break;
        t = next;
    }
    mine->spill = t;
    if (t)
        t->prev = NULL;
    return t == NULL;
}

/*
 * Give the slot back what expiry left of it (and its array). Re-inserted
 * timers land in the slot being expired only when it is the overflow;
 * then the leftovers join them one by one.
 */
static void slot_put_back(struct goc__wheel *w,
                          int level,
                          unsigned slot,
                          struct goc__wheel_slot *mine)
{
    struct goc__wheel_slot *sl = slot_at(w, level, slot);
    if (!sl->v && !sl->spill) {
        *sl = *mine;
        slot_trim(sl);
    } else {
        for (uint32_t i = 0; i < mine->n; i++)
            slot_push(sl, mine->v[i]);
        goc__free(mine->v);
        while (mine->spill) {
            struct goc__timer *t = mine->spill;
            mine->spill = t->next;
            slot_push(sl, t);
        }
    }
    if (level < GOC__WHEEL_LEVELS && !slot_empty(sl))
        w->occupied[level] |= 1ULL << slot;
}

/*
 * Fire the due timers of the earliest slot into out[] (at most max) and
 * re-insert the others one level down. If out[] fills up, the rest of the
 * slot stays where it is, due, for the next call. Returns the count in out.
 */
static int expire_slot(struct goc__wheel *w,
                       int level,
                       unsigned slot,
                       uint64_t start,
                       int64_t now,
                       struct fired *out,
                       int max)
{
    struct goc__wheel_slot *sl = slot_at(w, level, slot);
    struct goc__wheel_slot mine = *sl;
    *sl = (struct goc__wheel_slot){ 0 };
    if (level < GOC__WHEEL_LEVELS)
        w->occupied[level] &= ~(1ULL << slot);
    w->resume_level = -1;
    w->elapsed = start;
    struct expiry e = { w, start, now, out, 0, max };
    bool done = expire_array(&e, &mine) && expire_spill(&e, &mine);
    slot_put_back(w, level, slot, &mine);
    /* Left over at level 0, the rest is found first anyway: its slot is
     * elapsed's own. Higher up, lower levels now hold later deadlines. */
    if (!done && level > 0) {
        w->resume_level = (int8_t)level;
        w->resume_slot = (uint8_t)slot;
    }
    return e.n;
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
            if (batch[i].t)
                atomic_fetch_sub_explicit(&batch[i].t->firing, 1,
                                          memory_order_release);
        }
        total += n;
        if (n < want)
            break;
    }
    return total;
}
