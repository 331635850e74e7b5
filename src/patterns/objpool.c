/* SPDX-License-Identifier: MIT */
/*
 * Object pool with sync.Pool's shape: one cache per thread (so per P for
 * goroutines, see home()), a shared overflow for full caches, stealing on
 * a miss, and a victim generation that goc_objpool_trim() rotates.
 *
 * Each shard has its own short lock. It is uncontended in the common case
 * (one CAS to take it), and it is needed: a goroutine can lose its P to
 * sysmon or move between Ps, so "the current P's cache" is only a hint.
 * Callbacks (new, reset, destroy, size) always run outside the locks.
 */
#include "goc/objpool.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"
#include "../internal/lock.h"

#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#define PER_P_MAX 128 /* a P cache spills to the shared one beyond this */

struct stack {
    void **v;
    size_t n, cap;
};

/*
 * The hot counters live in the shards, under their locks, so a get+put
 * pair touches no shared cache line; the rare events (misses, drops) are
 * shared atomics.
 */
struct shard {
    _Alignas(64) goc__lock mu;
    struct stack cur, victim;
    int64_t hits, kept; /* under mu: gets served here, puts kept here */
};

/* Debug mode: a put under way, on its caller's stack. */
struct putting {
    void *obj;
    struct putting *next;
};

struct goc_objpool {
    struct goc_objpool_opts o;
    goc__lock debug_mu;   /* debug mode: over puts and the check */
    struct putting *puts; /* under debug_mu: puts under way */
    size_t nshards;       /* per-P shards; shards[nshards] is the shared one */
    _Atomic int64_t retained; /* only kept up with a max_cached bound */
    _Atomic int64_t misses, put_drops, trim_drops, trims;
    _Atomic uint64_t rnd;
    struct shard shards[];
};

static bool push(struct stack *s, void *obj)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        void **v = goc__malloc(cap * sizeof *v);
        if (!v)
            return false;
        if (s->n)
            memcpy(v, s->v, s->n * sizeof *v);
        goc__free(s->v);
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = obj;
    return true;
}

static void *pop(struct stack *s)
{
    return s->n ? s->v[--s->n] : NULL;
}

int goc_objpool_new(const struct goc_objpool_opts *opts, goc_objpool **out)
{
    if (!out || (opts && opts->max_retained_size && !opts->size_fn))
        return -EINVAL;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    size_t n = ncpu > 0 && ncpu < 1024 ? (size_t)ncpu : 8;
    goc_objpool *p =
        goc__aligned_alloc(64, sizeof *p + (n + 1) * sizeof(struct shard));
    if (!p)
        return -ENOMEM;
    memset(p, 0, sizeof *p + (n + 1) * sizeof(struct shard));
    if (opts)
        p->o = *opts;
    p->nshards = n;
    atomic_init(&p->rnd, (uint64_t)goc_now() | 1);
    *out = p;
    return 0;
}

static void destroy(goc_objpool *p, void *obj)
{
    if (p->o.destroy_fn)
        p->o.destroy_fn(obj, p->o.arg);
}

static void destroy_stack(goc_objpool *p, struct stack *s)
{
    for (size_t i = 0; i < s->n; i++)
        destroy(p, s->v[i]);
    goc__free(s->v);
}

void goc_objpool_free(goc_objpool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i <= p->nshards; i++) {
        destroy_stack(p, &p->shards[i].cur);
        destroy_stack(p, &p->shards[i].victim);
    }
    goc__free(p);
}

/*
 * The caller's cache: one per OS thread, assigned round-robin on first
 * use. A goroutine runs on an M that holds a P, so this is a per-P cache
 * in practice, and a thread-local read is cheaper than goc_p_index()
 * (measured: ~1 ns against ~7.5 ns, paid twice per get+put). It is only a
 * hint: the shard lock makes a stale value (a goroutine that moved to
 * another thread inside a callback) harmless.
 */
static _Thread_local unsigned tl_slot;
static _Atomic unsigned next_slot;

static struct shard *home(goc_objpool *p)
{
    unsigned s = tl_slot;
    if (!s) {
        s = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) + 1;
        if (!s) /* wrapped: 0 means unassigned */
            s = 1;
        tl_slot = s;
    }
    return &p->shards[(s - 1) % p->nshards];
}

/* Take one object from @s (primary first, then victim), or NULL. A get
 * is counted once its outcome is known, as a hit here or as a miss, so
 * that the counts never show a get half done. */
static void *take(struct shard *s, bool wait)
{
    if (wait)
        goc__lock_acquire(&s->mu);
    else if (!goc__lock_try(&s->mu))
        return NULL;
    void *obj = pop(&s->cur);
    if (!obj)
        obj = pop(&s->victim);
    s->hits += obj != NULL;
    goc__lock_release(&s->mu);
    return obj;
}

void *goc_objpool_get(goc_objpool *p)
{
    if (!p)
        return NULL;
    struct shard *mine = home(p);
    void *obj = take(mine, true);
    if (!obj && mine != &p->shards[p->nshards])
        obj = take(&p->shards[p->nshards], true);
    /* Steal from the other Ps (skipping busy ones, as Go's pool would). */
    for (size_t i = 0; !obj && i < p->nshards; i++)
        if (&p->shards[i] != mine)
            obj = take(&p->shards[i], false);
    if (obj) {
        if (p->o.max_cached)
            atomic_fetch_sub_explicit(&p->retained, 1, memory_order_relaxed);
        return obj;
    }
    atomic_fetch_add_explicit(&p->misses, 1, memory_order_relaxed);
    return p->o.new_fn ? p->o.new_fn(p->o.arg) : NULL;
}

/* Debug: is @obj cached anywhere? */
static bool cached(goc_objpool *p, void *obj)
{
    bool found = false;
    for (size_t i = 0; i <= p->nshards && !found; i++) {
        struct shard *s = &p->shards[i];
        goc__lock_acquire(&s->mu);
        for (size_t k = 0; k < s->cur.n && !found; k++)
            found = s->cur.v[k] == obj;
        for (size_t k = 0; k < s->victim.n && !found; k++)
            found = s->victim.v[k] == obj;
        goc__lock_release(&s->mu);
    }
    return found;
}

/*
 * Debug: claim @obj for this put unless it is cached or being put
 * already. The claim is what catches two puts racing: each would find
 * the object absent from the caches while the other one resets it. It
 * ends as the object is published (pushed, under the shard's lock too,
 * or about to be destroyed): a claim that outlived the push would catch
 * the next owner's own put.
 */
static bool debug_claim(goc_objpool *p, struct putting *me, void *obj)
{
    goc__lock_acquire(&p->debug_mu);
    bool twice = cached(p, obj);
    for (struct putting *q = p->puts; q && !twice; q = q->next)
        twice = q->obj == obj;
    if (!twice) {
        me->obj = obj;
        me->next = p->puts;
        p->puts = me;
    }
    goc__lock_release(&p->debug_mu);
    return !twice;
}

/* Under debug_mu: end the claim. */
static void unclaim_locked(goc_objpool *p, struct putting *me)
{
    struct putting **q = &p->puts;
    while (*q != me)
        q = &(*q)->next;
    *q = me->next;
}

static void debug_unclaim(goc_objpool *p, struct putting *me)
{
    if (!me)
        return;
    goc__lock_acquire(&p->debug_mu);
    unclaim_locked(p, me);
    goc__lock_release(&p->debug_mu);
}

/* Reserve a retained slot under max_cached; false if full. */
static bool reserve(goc_objpool *p)
{
    int64_t n =
        atomic_fetch_add_explicit(&p->retained, 1, memory_order_relaxed);
    /* Unsigned: a bound above INT64_MAX (SIZE_MAX for "any") is none. */
    if (p->o.max_cached && (uint64_t)n >= (uint64_t)p->o.max_cached) {
        atomic_fetch_sub_explicit(&p->retained, 1, memory_order_relaxed);
        return false;
    }
    return true;
}

static bool random_drop(goc_objpool *p)
{
    uint64_t x = atomic_load_explicit(&p->rnd, memory_order_relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    atomic_store_explicit(&p->rnd, x, memory_order_relaxed);
    return (x & 3) == 0;
}

/* Drop @obj (its claim ends first: destroy_fn may free it, and its
 * address may come back from the next new_fn). */
static int drop(goc_objpool *p, void *obj, struct putting *me)
{
    debug_unclaim(p, me);
    atomic_fetch_add_explicit(&p->put_drops, 1, memory_order_relaxed);
    destroy(p, obj);
    return 1;
}

/* Push @obj on @s's cache (within PER_P_MAX if @bounded); a debug claim
 * ends with the push, under the same locks. */
static bool push_on(goc_objpool *p,
                    struct shard *s,
                    void *obj,
                    bool bounded,
                    struct putting *me)
{
    if (me)
        goc__lock_acquire(&p->debug_mu); /* before the shard's, as cached() */
    goc__lock_acquire(&s->mu);
    bool ok = (!bounded || s->cur.n < PER_P_MAX) && push(&s->cur, obj);
    s->kept += ok;
    goc__lock_release(&s->mu);
    if (me) {
        if (ok)
            unclaim_locked(p, me);
        goc__lock_release(&p->debug_mu);
    }
    return ok;
}

/* @me: the debug claim on @obj, or NULL. */
static int put(goc_objpool *p, void *obj, struct putting *me)
{
    if (p->o.max_retained_size &&
        p->o.size_fn(obj, p->o.arg) > p->o.max_retained_size)
        return drop(p, obj, me);
    if ((me && random_drop(p)) || !reserve(p))
        return drop(p, obj, me);
    /* Kept: only now is it worth resetting (the seed reset and then
     * threw away). */
    if (p->o.reset_fn)
        p->o.reset_fn(obj, p->o.arg);
    struct shard *s = home(p), *shared = &p->shards[p->nshards];
    bool ok = push_on(p, s, obj, true, me);
    if (!ok && s != shared)
        ok = push_on(p, shared, obj, false, me);
    if (!ok) {
        if (p->o.max_cached)
            atomic_fetch_sub_explicit(&p->retained, 1, memory_order_relaxed);
        return drop(p, obj, me);
    }
    return 0;
}

int goc_objpool_put(goc_objpool *p, void *obj)
{
    if (!p)
        return -EINVAL;
    if (!obj)
        return 0;
    if (!p->o.debug)
        return put(p, obj, NULL);
    struct putting me;
    if (!debug_claim(p, &me, obj))
        return goc__misuse("goc_objpool_put: an object put twice");
    return put(p, obj, &me); /* the claim ends as obj is published */
}

int64_t goc_objpool_trim(goc_objpool *p)
{
    if (!p)
        return 0;
    int64_t n = 0;
    for (size_t i = 0; i <= p->nshards; i++) {
        struct shard *s = &p->shards[i];
        goc__lock_acquire(&s->mu);
        struct stack old = s->victim;
        s->victim = s->cur;
        s->cur = (struct stack){ 0 };
        goc__lock_release(&s->mu);
        if (p->o.max_cached)
            atomic_fetch_sub_explicit(&p->retained, (int64_t)old.n,
                                      memory_order_relaxed);
        n += (int64_t)old.n;
        destroy_stack(p, &old); /* outside the lock */
    }
    atomic_fetch_add_explicit(&p->trims, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&p->trim_drops, n, memory_order_relaxed);
    return n;
}

void goc_objpool_stats(goc_objpool *p, struct goc_objpool_stats *st)
{
    if (!p || !st)
        return;
    int64_t hits = 0, kept = 0, retained = 0;
    for (size_t i = 0; i <= p->nshards; i++) {
        struct shard *s = &p->shards[i];
        goc__lock_acquire(&s->mu);
        hits += s->hits;
        kept += s->kept;
        retained += (int64_t)(s->cur.n + s->victim.n);
        goc__lock_release(&s->mu);
    }
    int64_t put_drops = atomic_load(&p->put_drops);
    st->hits = hits;
    st->misses = atomic_load(&p->misses);
    st->gets = hits + st->misses;
    st->puts = kept + put_drops;
    st->drops = put_drops + atomic_load(&p->trim_drops);
    st->trims = atomic_load(&p->trims);
    st->retained = retained;
}
