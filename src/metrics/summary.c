/* SPDX-License-Identifier: MIT */
/*
 * Summary quantiles over a sliding window: client_golang's design.
 *
 * Estimator: CKMS "targeted quantiles" (Cormode, Korn, Muthukrishnan,
 * Srivastava, ICDE 2005), as beorn7/perks implements it for client_golang,
 * with its error bound made to hold (see allowed()). For each objective
 * {q, eps} the value returned has a rank within [ (q - eps) n, (q + eps) n ]
 * of the n observations in the window. The stream keeps tens to hundreds
 * of samples on ascending, descending, random or sawtooth input; as with
 * any CKMS stream, an adversarial order (values arriving alternately from
 * both ends) can make it keep a share of the window's observations.
 *
 * Window: age_buckets streams; every observation goes into each of them,
 * and every max_age / age_buckets one of them (the oldest, the "head") is
 * queried and then reset in turn. The head thus covers between
 * max_age - max_age / age_buckets and max_age of history.
 *
 * Observations are first appended to a buffer of BUF values, sorted and
 * merged into the streams when it fills, its period ends, or someone
 * reads. One short lock per child guards all of it; count and sum do not
 * take it (they are the lock-free histogram core).
 */
#include "metrics_int.h"
#include "goc/time.h"
#include "../internal/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BUF 500

struct qsample {
    double v, w, d; /* value, width (rank gap), delta (rank uncertainty) */
};

struct stream {
    struct qsample *l;
    size_t n, cap;
    double cnt; /* observations merged */
};

struct qwindow {
    goc__lock mu;
    const struct goc_quantile *obj; /* the family's */
    size_t nobj;
    goc_clock clock;
    int64_t dur; /* one stream's period */
    int nstreams, head;
    int64_t head_exp; /* when the head stream is reset */
    int64_t buf_exp;  /* when the buffer's period ends */
    size_t nbuf;
    double buf[BUF];
    struct stream s[];
};

static int64_t now_of(const struct qwindow *q)
{
    return q->clock.now ? q->clock.now(q->clock.arg) : goc_now();
}

/* t + d (d > 0), saturating: max_age may be as long as INT64_MAX, and a
 * period end that would lie past it is never reached. */
static int64_t after(int64_t t, int64_t d)
{
    return t > INT64_MAX - d ? INT64_MAX : t + d;
}

/* The first end of a period after @now, periods ending at @end + k dur;
 * an end that was saturated never passes. */
static int64_t next_end(int64_t end, int64_t now, int64_t dur)
{
    if (now < end || end == INT64_MAX)
        return end;
    uint64_t k = ((uint64_t)now - (uint64_t)end) / (uint64_t)dur + 1;
    uint64_t room = (uint64_t)INT64_MAX - (uint64_t)end; /* end's distance */
    if (k > room / (uint64_t)dur)
        return INT64_MAX;
    return (int64_t)((uint64_t)end + k * (uint64_t)dur);
}

int64_t goc__qwindow_now(const struct goc_metric_opts *o)
{
    return o->clock && o->clock->now ? o->clock->now(o->clock->arg) : goc_now();
}

int goc__qwindow_new(const struct goc_metric_opts *o,
                     int64_t now,
                     struct qwindow **out)
{
    int64_t age = o->max_age ? o->max_age : 600 * GOC_SECOND;
    int nb = o->age_buckets ? o->age_buckets : 5;
    struct qwindow *q = goc__calloc(1, sizeof *q + (size_t)nb * sizeof q->s[0]);
    if (!q)
        return -ENOMEM;
    q->mu = (goc__lock)GOC__LOCK_INIT;
    q->obj = o->objectives;
    q->nobj = o->nobjectives;
    if (o->clock)
        q->clock = *o->clock;
    q->nstreams = nb;
    q->dur = age / nb > 0 ? age / nb : 1;
    q->head_exp = q->buf_exp = after(now, q->dur);
    *out = q;
    return 0;
}

void goc__qwindow_free(struct qwindow *q)
{
    if (!q)
        return;
    for (int i = 0; i < q->nstreams; i++)
        goc__free(q->s[i].l);
    goc__free(q);
}

/*
 * A stream keeps samples in value order. With r the widths below sample
 * i, its value's rank among the cnt observations lies in [r + w, r + w + d].
 * The invariant, w + d <= invariant(cnt, r), holds for every sample at its
 * own r. The first sample is the exact minimum (never merged away) and the
 * last the exact maximum (merges go upwards), so both have d = 0.
 *
 * For an objective {q, e} some sample's rank interval must lie within
 * (q +/- e) n (the query picks the best one). Take the first sample whose
 * highest rank exceeds (q + e) n: the one below it ranks from r to at most
 * (q + e) n, r being the first's widths below. So r >= (q - e) n must
 * follow from the invariant, that is r + f(r) <= (q + e) n wherever
 * r < (q - e) n. CKMS (and perks) allow 2e (n - r) / (1 - q) there, which
 * lets r fall to (q - e / (1 - 2e / (1 - q))) n: 0.0625 n below the median
 * for e = 0.05, reached on descending input. Here that branch is c (n - r),
 * c the largest slope keeping r + c (n - r) under (q + e) n at both ends
 * of [0, (q - e) n]; the other, CKMS's 2er/q, keeps under it too. Both
 * grow with r and with n - r, so an insertion (raising r, or n - r, or
 * both) never breaks the invariant of a sample already checked.
 */
static double allowed(double q, double e, double n, double r)
{
    if (q == 0 || q == 1) /* answered by the exact minimum, maximum */
        return INFINITY;
    double c = fmin(2 * e / (1 - q + e), q + e);
    return fmax(2 * e * r / q, c * (n - r));
}

/* The width plus delta allowed at rank r: the tightest over the objectives. */
static double invariant(const struct qwindow *q, double n, double r)
{
    double m = INFINITY;
    for (size_t i = 0; i < q->nobj; i++)
        m = fmin(m, allowed(q->obj[i].q, q->obj[i].eps, n, r));
    return m;
}

/*
 * Merge each sample into the one above it while the merged sample keeps
 * the invariant at its own rank, the lower one's (perks checks it at the
 * upper one's, which above the target allows too much). The minimum stays.
 * Kept samples are packed at the top, then moved down behind the minimum.
 */
static void compress(const struct qwindow *q, struct stream *s)
{
    if (s->n < 3)
        return;
    struct qsample *l = s->l;
    size_t top = s->n - 1;        /* l[top..n) kept; l[top] absorbs */
    double r = s->cnt - l[top].w; /* widths below l[top] */
    for (size_t i = s->n - 1; i-- > 1;) {
        r -= l[i].w; /* below l[i]: where the merged sample would sit */
        if (l[i].w + l[top].w + l[top].d <= invariant(q, s->cnt, r))
            l[top].w += l[i].w;
        else
            l[--top] = l[i];
    }
    memmove(&l[1], &l[top], (s->n - top) * sizeof *l);
    s->n = s->n - top + 1;
}

/*
 * The delta of a value inserted below the old sample @next (NULL: above
 * every old sample) and above @nbelow old ones. At either end its rank is
 * exact. Otherwise it lies below next's highest rank: next.w + next.d - 1
 * more than its lowest. (CKMS's floor(f(r, n)) - 1 is never smaller, as
 * next keeps the invariant; with only minimum and maximum objectives f is
 * infinite.)
 */
static double new_delta(const struct qsample *next, size_t nbelow)
{
    if (!next || nbelow == 0)
        return 0;
    return next->w + next->d - 1;
}

/* Room in s for n more samples. False on ENOMEM (s unchanged). */
static bool reserve(struct stream *s, size_t n)
{
    if (s->n + n <= s->cap)
        return true;
    size_t cap = (s->n + n) * 2;
    struct qsample *l = goc__malloc(cap * sizeof *l);
    if (!l)
        return false;
    if (s->n)
        memcpy(l, s->l, s->n * sizeof *l);
    goc__free(s->l);
    s->l = l;
    s->cap = cap;
    return true;
}

/* Merge the sorted values v[0..n) into s. False on ENOMEM (s unchanged). */
static bool merge(const struct qwindow *q,
                  struct stream *s,
                  const double *v,
                  size_t n)
{
    if (!reserve(s, n))
        return false;
    /* Backwards, so the merge happens in place. Equal values go above
     * the old ones. */
    struct qsample *l = s->l, next;
    size_t i = s->n, j = n, k = s->n + n;
    bool any_next = false;
    while (j > 0) {
        if (i > 0 && l[i - 1].v > v[j - 1]) {
            next = l[--i];
            any_next = true;
            l[--k] = next;
        } else {
            j--;
            l[--k] = (struct qsample){ v[j], 1,
                                       new_delta(any_next ? &next : NULL, i) };
        }
    }
    s->n += n;
    s->cnt += (double)n;
    compress(q, s);
    return true;
}

/* The value whose rank interval lies closest around p cnt: its widest
 * distance from it is smallest. */
static double query(const struct stream *s, double p)
{
    double t = p * s->cnt, r = 0, best = INFINITY, v = NAN;
    for (size_t i = 0; i < s->n; i++) {
        const struct qsample *c = &s->l[i];
        double lo = r + c->w, hi = lo + c->d; /* c's rank lies within */
        if (lo - t >= best)                   /* and so will the rest's */
            break;
        double err = fmax(t - lo, hi - t);
        if (err < best) {
            best = err;
            v = c->v;
        }
        r += c->w;
    }
    return v;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sort the buffer into every stream, then reset the streams whose
 * period is over. NaN values cannot be ranked: they only count in the
 * sum and count (client_golang's stream would misplace them). */
static void flush(struct qwindow *q, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < q->nbuf; i++)
        if (!isnan(q->buf[i]))
            q->buf[n++] = q->buf[i];
    qsort(q->buf, n, sizeof q->buf[0], cmp_dbl);
    for (int i = 0; i < q->nstreams && n; i++)
        if (!merge(q, &q->s[i], q->buf, n)) /* rare: drop this batch */
            break;
    q->nbuf = 0;
    /* Whole periods passed: a jump, not a loop. */
    q->buf_exp = next_end(q->buf_exp, now, q->dur);
    for (int steps = 0; q->head_exp != q->buf_exp; steps++) {
        struct stream *h = &q->s[q->head];
        h->n = 0;
        h->cnt = 0;
        q->head = (q->head + 1) % q->nstreams;
        q->head_exp = after(q->head_exp, q->dur);
        if (steps >= q->nstreams) /* every stream is empty: jump */
            q->head_exp = q->buf_exp;
    }
}

void goc__qwindow_observe(struct qwindow *q, double v)
{
    int64_t now = now_of(q);
    goc__lock_acquire(&q->mu);
    if (now >= q->buf_exp)
        flush(q, now);
    q->buf[q->nbuf++] = v;
    if (q->nbuf == BUF)
        flush(q, now);
    goc__lock_release(&q->mu);
}

bool goc__qwindow_query(struct qwindow *q,
                        int64_t now,
                        const struct goc_quantile *obj,
                        size_t n,
                        double *vals)
{
    goc__lock_acquire(&q->mu);
    flush(q, now);
    const struct stream *h = &q->s[q->head];
    for (size_t i = 0; i < n; i++)
        vals[i] = query(h, obj[i].q);
    bool any = h->n > 0;
    goc__lock_release(&q->mu);
    return any;
}

size_t goc__qwindow_samples(struct qwindow *q)
{
    int64_t now = now_of(q);
    goc__lock_acquire(&q->mu);
    flush(q, now);
    size_t n = 0;
    for (int i = 0; i < q->nstreams; i++)
        n = q->s[i].n > n ? q->s[i].n : n;
    goc__lock_release(&q->mu);
    return n;
}

int goc_summary_quantile(goc_summary *s, double q, double *out)
{
    struct child *k = (struct child *)(void *)s;
    if (!s || !out || !k->q)
        return -EINVAL;
    const struct goc_metric *m = k->fam;
    for (size_t i = 0; i < m->nobj; i++)
        if (m->obj[i].q == q) {
            if (!goc__qwindow_query(k->q, now_of(k->q), &m->obj[i], 1, out)) {
                *out = NAN;
                return -ENODATA;
            }
            return 0;
        }
    return -EINVAL;
}
