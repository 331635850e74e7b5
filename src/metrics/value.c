/* SPDX-License-Identifier: MIT */
/*
 * The hot path: per-P sharded counters, gauges, and the histogram core.
 *
 * A counter or histogram child has one cell per P plus THREAD_SHARDS cells
 * for plain threads (hashed by thread), each on its own cache line. An
 * update touches only its shard, with relaxed atomics; a read sums the
 * shards. The shard is only a hint for speed: a goroutine that moved to
 * another P meanwhile still updates a valid cell atomically, so sums stay
 * exact.
 */
#include "metrics_int.h"
#include "goc/runtime.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

#include <math.h>
#include <sched.h>
#include <string.h>
#include <time.h>

static _Thread_local unsigned tl_slot;
static _Atomic unsigned next_slot;

/*
 * The shard of the calling thread, cached: looking up the P
 * (goc_p_index()) costs about 8 ns, more than the atomic add it picks a
 * cell for. A thread keeps its P for long stretches (an M changes P only
 * when its P is handed off around a blocking section), so the cache is
 * refreshed every REFRESH updates. A stale value only means two threads
 * share a cell for a while; every update is atomic, so sums stay exact.
 */
#define REFRESH 64
static _Thread_local unsigned tl_shard, tl_left;

void goc__shards_init(struct shards *s)
{
    int n = goc_maxprocs();
    s->nprocs = n > 0 ? (unsigned)n : 1;
    s->n = s->nprocs + THREAD_SHARDS;
}

static unsigned lookup(const struct shards *s)
{
    int p = goc_p_index();
    if (p >= 0 && (unsigned)p < s->nprocs)
        return (unsigned)p;
    unsigned t = tl_slot; /* a plain thread: hashed by thread */
    if (!t) {
        t = atomic_fetch_add_explicit(&next_slot, 1, memory_order_relaxed) + 1;
        if (!t) /* wrapped: 0 means unassigned */
            t = 1;
        tl_slot = t;
    }
    return s->nprocs + (t - 1) % THREAD_SHARDS;
}

unsigned goc__shard_index(const struct shards *s)
{
    if (tl_left == 0) {
        tl_shard = lookup(s);
        tl_left = REFRESH;
    }
    tl_left--;
    return tl_shard; /* every family has the same layout: nprocs is fixed */
}

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static double dbl_of(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

double goc__dbl_load(_Atomic uint64_t *p)
{
    return dbl_of(atomic_load_explicit(p, memory_order_relaxed));
}

/* Atomic add on a double: a CAS loop, as client_golang does. */
void goc__dbl_add(_Atomic uint64_t *p, double v)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        p, &old, bits_of(dbl_of(old) + v), memory_order_relaxed,
        memory_order_relaxed))
        ;
}

#define CHILD(x) ((struct child *)(void *)(x))

#define INT_PATH_MAX ((uint64_t)1 << 62) /* a counter cell's integer part */

/* ---- counters ---- */

void goc_counter_inc(goc_counter *c)
{
    if (!c)
        goc__null_argument(__func__);
    struct child *k = CHILD(c);
    unsigned i = goc__shard_index(&k->fam->sh);
    atomic_fetch_add_explicit(&k->u.c[i].n, 1, memory_order_relaxed);
}

int goc_counter_add(goc_counter *c, double v)
{
    if (!c || !(v >= 0)) /* negative or NaN */
        return -EINVAL;
    struct child *k = CHILD(c);
    struct counter_cell *cell = &k->u.c[goc__shard_index(&k->fam->sh)];
    /* Whole values take the exact integer path (client_golang's valInt)
     * while the cell is far from wrapping: past 2^62, where a double's
     * step is 1,024 anyway, they go to the double, so the sum never
     * falls back to zero (a counter never decreases). */
    if (v <= 9007199254740992.0 && v == (double)(uint64_t)v &&
        atomic_load_explicit(&cell->n, memory_order_relaxed) < INT_PATH_MAX)
        atomic_fetch_add_explicit(&cell->n, (uint64_t)v, memory_order_relaxed);
    else
        goc__dbl_add(&cell->frac, v);
    return 0;
}

double goc_counter_value(goc_counter *c)
{
    if (!c)
        goc__null_argument(__func__);
    struct child *k = CHILD(c);
    double sum = 0; /* in a double: the shards' integers may pass 2^64 */
    for (unsigned i = 0; i < k->fam->sh.n; i++)
        sum +=
            (double)atomic_load_explicit(&k->u.c[i].n, memory_order_relaxed) +
            goc__dbl_load(&k->u.c[i].frac);
    return sum;
}

/* ---- gauges ---- */

static int64_t wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Lower *p to v (or raise it, if @up) unless it is already past it. A
 * NaN extreme (a reset while the value was NaN) gives way to any value. */
static void extreme(_Atomic uint64_t *p, double v, bool up)
{
    uint64_t old = atomic_load_explicit(p, memory_order_relaxed);
    for (;;) {
        double cur = dbl_of(old);
        if (!isnan(cur) && (up ? !(v > cur) : !(v < cur)))
            return;
        if (atomic_compare_exchange_weak_explicit(p, &old, bits_of(v),
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
            return;
    }
}

static void track(struct gauge_cell *g, double v)
{
    if (!g->track)
        return;
    /* Orders the value's store before the extremes' loads, against the
     * reset's exchange-then-reload in goc_gauge_extremes(). */
    atomic_thread_fence(memory_order_seq_cst);
    extreme(&g->min, v, false);
    extreme(&g->max, v, true);
    atomic_store_explicit(&g->updated, wall_ns(), memory_order_relaxed);
}

void goc_gauge_set(goc_gauge *g, double v)
{
    if (!g)
        goc__null_argument(__func__);
    struct gauge_cell *cell = CHILD(g)->u.g;
    atomic_store_explicit(&cell->bits, bits_of(v), memory_order_relaxed);
    track(cell, v);
}

void goc_gauge_add(goc_gauge *g, double v)
{
    if (!g)
        goc__null_argument(__func__);
    struct gauge_cell *cell = CHILD(g)->u.g;
    uint64_t old = atomic_load_explicit(&cell->bits, memory_order_relaxed);
    double nv;
    do {
        nv = dbl_of(old) + v;
    } while (!atomic_compare_exchange_weak_explicit(
        &cell->bits, &old, bits_of(nv), memory_order_relaxed,
        memory_order_relaxed));
    track(cell, nv);
}

void goc_gauge_sub(goc_gauge *g, double v)
{
    goc_gauge_add(g, -v);
}

void goc_gauge_inc(goc_gauge *g)
{
    goc_gauge_add(g, 1);
}

void goc_gauge_dec(goc_gauge *g)
{
    goc_gauge_add(g, -1);
}

void goc_gauge_set_to_current_time(goc_gauge *g)
{
    goc_gauge_set(g, (double)wall_ns() / 1e9);
}

double goc_gauge_value(goc_gauge *g)
{
    if (!g)
        goc__null_argument(__func__);
    return goc__dbl_load(&CHILD(g)->u.g->bits);
}

int goc_gauge_extremes(goc_gauge *g, bool reset, struct goc_gauge_extremes *out)
{
    if (!g || !out || !CHILD(g)->u.g->track)
        return -EINVAL;
    struct gauge_cell *cell = CHILD(g)->u.g;
    double v = goc__dbl_load(&cell->bits);
    out->value = v;
    out->updated = atomic_load_explicit(&cell->updated, memory_order_relaxed);
    if (!reset) {
        out->min = goc__dbl_load(&cell->min);
        out->max = goc__dbl_load(&cell->max);
    } else {
        /*
         * Exchange, so an extreme set before the reset is reported now
         * and one after it lands in the next window; then apply the value
         * as it is after the exchange: an update that stored its value
         * and compared it with the old extremes before the exchange would
         * otherwise be lost, leaving min above (or max below) the value.
         */
        out->min = dbl_of(atomic_exchange(&cell->min, bits_of(v)));
        out->max = dbl_of(atomic_exchange(&cell->max, bits_of(v)));
        atomic_thread_fence(memory_order_seq_cst);
        double now = goc__dbl_load(&cell->bits);
        extreme(&cell->min, now, false);
        extreme(&cell->max, now, true);
        /* An update in flight may have stored @v but not yet compared
         * it with the extremes: report a window that holds it. */
        if (v < out->min || isnan(out->min))
            out->min = v;
        if (v > out->max || isnan(out->max))
            out->max = v;
    }
    return 0;
}

/* ---- histogram core ----
 *
 * Consistency: a scrape must see count == the +Inf bucket and a sum of
 * the same observations. We use client_golang's hot/cold halves, per
 * shard, rather than a seqlock: an observation first bumps the shard's
 * "started" word, whose top bit picks the hot half, updates that half and
 * then its "done" count. A reader flips the bit, waits only for the
 * observations already started in the now-cold half (a few ns each), reads
 * it, and folds it into the hot half. Writers never wait and never retry,
 * and a reader never retries either; a per-shard seqlock would let a
 * steady stream of writers on a shard starve the reader, and shards are
 * shared by plain threads, so writers are not exclusive.
 *
 * Shard words: [0] started | hot << 63, then two halves of
 * (done, sum bits, nb + 1 buckets).
 */

#define HOT_BIT (UINT64_C(1) << 63)

static size_t half_words(const struct hcore *h)
{
    return h->nb + 3;
}

int goc__hcore_init(struct hcore *h, const double *bounds, size_t nb)
{
    goc__shards_init(&h->sh);
    h->nb = nb;
    h->bounds = bounds;
    size_t words = 1 + 2 * (nb + 3);
    h->stride = (words + 7) & ~(size_t)7; /* whole cache lines */
    size_t size = h->stride * h->sh.n * sizeof(uint64_t);
    h->w = goc__aligned_alloc(CACHE_LINE, size);
    if (!h->w)
        return -ENOMEM;
    for (size_t i = 0; i < h->stride * h->sh.n; i++)
        atomic_init(&h->w[i], 0);
    h->read_mu = (goc__lock)GOC__LOCK_INIT;
    return 0;
}

void goc__hcore_destroy(struct hcore *h)
{
    goc__free(h->w);
}

/* The first bucket whose (inclusive) bound is >= v; nb for +Inf or NaN. */
static size_t find_bucket(const double *b, size_t nb, double v)
{
    if (nb < 16) {
        size_t i = 0;
        while (i < nb && !(v <= b[i]))
            i++;
        return i;
    }
    size_t lo = 0, hi = nb;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= b[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void goc__hcore_observe(struct hcore *h, double v)
{
    size_t b = find_bucket(h->bounds, h->nb, v);
    _Atomic uint64_t *w = h->w + goc__shard_index(&h->sh) * h->stride;
    /* Acquire: a reader's reset of this half happens before our update. */
    uint64_t n = atomic_fetch_add_explicit(&w[0], 1, memory_order_acquire);
    _Atomic uint64_t *half = w + 1 + (n >> 63) * half_words(h);
    atomic_fetch_add_explicit(&half[2 + b], 1, memory_order_relaxed);
    goc__dbl_add(&half[1], v);
    /* Release: the reader that sees this count sees the updates above. */
    atomic_fetch_add_explicit(&half[0], 1, memory_order_release);
}

/* Read one shard's cold half into the totals and fold it into the hot. */
static void read_shard(struct hcore *h,
                       _Atomic uint64_t *w,
                       uint64_t *cum,
                       uint64_t *count,
                       double *sum)
{
    uint64_t n =
        atomic_fetch_add_explicit(&w[0], HOT_BIT, memory_order_acq_rel);
    uint64_t started = n & ~HOT_BIT;
    _Atomic uint64_t *cold = w + 1 + (n >> 63) * half_words(h);
    _Atomic uint64_t *hot = w + 1 + (1 - (n >> 63)) * half_words(h);
    for (int spins = 0;
         atomic_load_explicit(&cold[0], memory_order_acquire) != started;
         spins++)
        if (spins > 64)
            sched_yield(); /* a writer's thread was preempted mid-update;
                            * not goc_yield(): we hold read_mu */
    *count += started;
    double s = goc__dbl_load(&cold[1]);
    *sum += s;
    goc__dbl_add(&hot[1], s);
    atomic_store_explicit(&cold[1], 0, memory_order_relaxed);
    for (size_t j = 0; j < h->nb + 1; j++) {
        uint64_t c = atomic_load_explicit(&cold[2 + j], memory_order_relaxed);
        if (cum)
            cum[j] += c;
        atomic_fetch_add_explicit(&hot[2 + j], c, memory_order_relaxed);
        atomic_store_explicit(&cold[2 + j], 0, memory_order_relaxed);
    }
    atomic_fetch_add_explicit(&hot[0], started, memory_order_relaxed);
    atomic_store_explicit(&cold[0], 0, memory_order_relaxed);
}

void goc__hcore_read(struct hcore *h,
                     uint64_t *cum,
                     uint64_t *count,
                     double *sum)
{
    *count = 0;
    *sum = 0;
    if (cum)
        memset(cum, 0, (h->nb + 1) * sizeof *cum);
    goc__lock_acquire(&h->read_mu);
    for (unsigned i = 0; i < h->sh.n; i++)
        read_shard(h, h->w + i * h->stride, cum, count, sum);
    goc__lock_release(&h->read_mu);
    if (cum)
        for (size_t j = 1; j < h->nb + 1; j++)
            cum[j] += cum[j - 1];
}

void goc_histogram_observe(goc_histogram *h, double v)
{
    if (!h)
        goc__null_argument(__func__);
    goc__hcore_observe(CHILD(h)->u.h, v);
}

int goc_histogram_read(goc_histogram *h, struct goc_histogram_snapshot *s)
{
    if (!h || !s)
        return -EINVAL;
    struct hcore *c = CHILD(h)->u.h;
    goc__hcore_read(c, s->cumulative, &s->count, &s->sum);
    return (int)c->nb;
}

void goc_summary_observe(goc_summary *s, double v)
{
    if (!s)
        goc__null_argument(__func__);
    struct child *k = CHILD(s);
    goc__hcore_observe(k->u.h, v);
    if (k->q)
        goc__qwindow_observe(k->q, v);
}

uint64_t goc_summary_count(goc_summary *s, double *sum)
{
    if (!s)
        goc__null_argument(__func__);
    uint64_t n;
    double su;
    goc__hcore_read(CHILD(s)->u.h, NULL, &n, &su);
    if (sum)
        *sum = su;
    return n;
}

/* ---- bucket generators ----
 * Both step as client_golang does (start += width, start *= factor), so
 * the bounds print exactly as Go's. A step too small to change the value
 * would repeat a bound: refused.
 */

/* Fill out[] with count steps from start (add or multiply by step), or
 * touch nothing and fail if a bound is not finite or does not increase. */
static int steps(double start, double step, int count, bool mul, double *out)
{
    for (int pass = 0; pass < 2; pass++) {
        double v = start, prev = -INFINITY;
        for (int i = 0; i < count; i++) {
            if (!isfinite(v) || !(v > prev))
                return -EINVAL; /* first pass only: the second repeats it */
            if (pass)
                out[i] = v;
            prev = v;
            v = mul ? v * step : v + step;
        }
    }
    return count;
}

int goc_buckets_linear(double start, double width, int count, double *out)
{
    if (!out || count < 1 || !(width > 0) || !isfinite(start) ||
        !isfinite(width))
        return -EINVAL;
    return steps(start, width, count, false, out);
}

int goc_buckets_exponential(double start, double factor, int count, double *out)
{
    if (!out || count < 1 || !(start > 0) || !(factor > 1) ||
        !isfinite(start) || !isfinite(factor))
        return -EINVAL;
    return steps(start, factor, count, true, out);
}
