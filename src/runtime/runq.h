/* SPDX-License-Identifier: MIT */
/*
 * The per-P run queue's hot paths, inline: every park, yield and spawn
 * goes through them. Included by runtime.h after struct goc__p.
 */
#ifndef GOC_RUNTIME_RUNQ_H
#define GOC_RUNTIME_RUNQ_H

#define GOC__RUNQ_MASK (GOC__RUNQ_SIZE - 1)

static inline struct goc__g *goc__runq_slot_load(struct goc__p *p, uint32_t i)
{
    return atomic_load_explicit(&p->ring[i & GOC__RUNQ_MASK],
                                memory_order_relaxed);
}

static inline void goc__runq_slot_store(struct goc__p *p,
                                        uint32_t i,
                                        struct goc__g *g)
{
    atomic_store_explicit(&p->ring[i & GOC__RUNQ_MASK], g,
                          memory_order_relaxed);
}

/*
 * Queue g at the tail of p's ring (owner only); false if it is full.
 * Acquire on head pairs with the thieves' release CAS; release on tail
 * publishes the slot, and all written before, to consumers.
 */
static inline bool goc__runq_try_put(struct goc__p *p, struct goc__g *g)
{
    uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
    if (__builtin_expect(t - h >= GOC__RUNQ_SIZE, 0))
        return false;
    goc__runq_slot_store(p, t, g);
    atomic_store_explicit(&p->tail, t + 1, memory_order_release);
    return true;
}

/* goc__runq_put found the ring full: retry until queued (runq.c). */
bool goc__runq_put_retry(struct goc__p *p, struct goc__g *g);

/*
 * Queue g on p (owner only). next: put it in runnext, where it runs before
 * the ring; the goroutine it displaces goes to the ring's tail. Returns
 * false if the ring overflowed into the global queue. The full case is a
 * tail call, so callers need no frame for it.
 */
static inline bool goc__runq_put(struct goc__p *p, struct goc__g *g, bool next)
{
    if (next) {
        g = atomic_exchange_explicit(&p->runnext, g, memory_order_acq_rel);
        if (!g)
            return true;
    }
    return goc__runq_try_put(p, g) || goc__runq_put_retry(p, g);
}

/* Take the oldest goroutine of p's ring (owner only), or NULL. */
static inline struct goc__g *goc__runq_get_ring(struct goc__p *p)
{
    for (;;) {
        uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
        uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
        if (t == h)
            return NULL;
        struct goc__g *g = goc__runq_slot_load(p, h);
        /* Release: the slot may be reused only after this. */
        if (atomic_compare_exchange_weak_explicit(&p->head, &h, h + 1,
                                                  memory_order_release,
                                                  memory_order_relaxed))
            return g;
    }
}

/* Take the next goroutine of p (owner only): runnext, then the ring. */
static inline struct goc__g *goc__runq_get(struct goc__p *p)
{
    struct goc__g *next =
        atomic_load_explicit(&p->runnext, memory_order_relaxed);
    if (next && atomic_compare_exchange_strong_explicit(
                    &p->runnext, &next, NULL, memory_order_acquire,
                    memory_order_relaxed))
        return next;
    return goc__runq_get_ring(p);
}

/* Steal half of victim's ring into p's; returns one to run, or NULL. */
struct goc__g *goc__runq_steal(struct goc__p *p,
                               struct goc__p *victim,
                               bool take_runnext);

static inline bool goc__runq_empty(struct goc__p *p)
{
    uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->tail, memory_order_acquire);
    return h == t &&
           atomic_load_explicit(&p->runnext, memory_order_relaxed) == NULL;
}

static inline uint32_t goc__runq_len(struct goc__p *p)
{
    uint32_t h = atomic_load_explicit(&p->head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
    return t - h;
}

#endif /* GOC_RUNTIME_RUNQ_H */
