/* SPDX-License-Identifier: MIT */
/*
 * Summary quantiles over a sliding window: client_golang's design.
 *
 * Estimator: CKMS "targeted quantiles" (Cormode, Korn, Muthukrishnan,
 * Srivastava, ICDE 2005), as beorn7/perks implements it for client_golang.
 * For each objective {q, eps} the value returned has a rank within
 * [ (q - eps) n, (q + eps) n ] of the n observations in the window, while
 * the stream keeps O((1/eps) log(eps n)) samples instead of n.
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

int goc__qwindow_new(const struct goc_metric_opts *o, struct qwindow **out)
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
    q->head_exp = q->buf_exp = after(now_of(q), q->dur);
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

/* The allowed rank error at rank r: the tightest over the objectives. */
static double invariant(const struct qwindow *q, double n, double r)
{
    double m = INFINITY;
    for (size_t i = 0; i < q->nobj; i++) {
        double qq = q->obj[i].q, e = q->obj[i].eps, f;
        if (qq == 0)
            f = 2 * e * n; /* the minimum: the uniform bound (the biased
                              one, 2er/q, allowed any merge) */
        else if (qq * n <= r)
            f = 2 * e * r / qq;
        else
            f = 2 * e * (n - r) / (1 - qq);
        if (f < m) /* NaN (0/0 at the ends) never tightens */
            m = f;
    }
    return m;
}

/* Merge adjacent samples while the invariant allows. */
static void compress(const struct qwindow *q, struct stream *s)
{
    if (s->n < 2)
        return;
    size_t xi = s->n - 1;
    struct qsample x = s->l[xi];
    double r = s->cnt - 1 - x.w;
    for (size_t i = s->n - 1; i-- > 0;) {
        struct qsample c = s->l[i];
        if (c.w + x.w + x.d <= invariant(q, s->cnt, r)) {
            x.w += c.w;
            s->l[xi] = x;
            memmove(&s->l[i], &s->l[i + 1], (s->n - i - 1) * sizeof *s->l);
            s->n--;
            xi--;
        } else {
            x = c;
            xi = i;
        }
        r -= c.w;
    }
}

/* Merge the sorted values v[0..n) into s. False on ENOMEM (s unchanged). */
static bool merge(const struct qwindow *q,
                  struct stream *s,
                  const double *v,
                  size_t n)
{
    if (s->n + n > s->cap) {
        size_t cap = (s->n + n) * 2;
        struct qsample *l = goc__malloc(cap * sizeof *l);
        if (!l)
            return false;
        if (s->n)
            memcpy(l, s->l, s->n * sizeof *l);
        goc__free(s->l);
        s->l = l;
        s->cap = cap;
    }
    /* Walk backwards so the merge happens in place. */
    struct qsample *l = s->l;
    size_t i = s->n, j = n, k = s->n + n;
    while (j > 0) {
        if (i > 0 && l[i - 1].v > v[j - 1])
            l[--k] = l[--i];
        else
            l[--k] = (struct qsample){ v[--j], 1, -1 }; /* delta below */
    }
    s->n += n;
    /* Deltas need the rank of each new sample: one forward pass. As in
     * perks, a sample placed before an old one gets the invariant at its
     * rank (with the count before it) less one; one placed after every
     * old sample is exact. */
    size_t last_old = 0;
    bool any_old = false;
    for (size_t x = 0; x < s->n; x++)
        if (l[x].d >= 0) {
            last_old = x;
            any_old = true;
        }
    double r = 0, cnt = s->cnt;
    for (size_t x = 0; x < s->n; x++) {
        if (l[x].d < 0) {
            double d = 0;
            if (any_old && x < last_old)
                d = floor(invariant(q, cnt, r)) - 1;
            l[x].d = d > 0 ? d : 0;
            cnt += 1;
        }
        r += l[x].w;
    }
    s->cnt = cnt;
    compress(q, s);
    return true;
}

static double query(const struct qwindow *q, const struct stream *s, double p)
{
    if (s->n == 0)
        return NAN;
    double t = ceil(p * s->cnt);
    t += ceil(invariant(q, s->cnt, t) / 2);
    struct qsample prev = s->l[0];
    double r = 0;
    for (size_t i = 1; i < s->n; i++) {
        struct qsample c = s->l[i];
        r += prev.w;
        if (r + c.w + c.d > t)
            return prev.v;
        prev = c;
    }
    return prev.v;
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
                        const struct goc_quantile *obj,
                        size_t n,
                        double *vals)
{
    int64_t now = now_of(q);
    goc__lock_acquire(&q->mu);
    flush(q, now);
    const struct stream *h = &q->s[q->head];
    for (size_t i = 0; i < n; i++)
        vals[i] = query(q, h, obj[i].q);
    bool any = h->n > 0;
    goc__lock_release(&q->mu);
    return any;
}

int goc_summary_quantile(goc_summary *s, double q, double *out)
{
    struct child *k = (struct child *)(void *)s;
    if (!s || !out || !k->q)
        return -EINVAL;
    const struct goc_metric *m = k->fam;
    for (size_t i = 0; i < m->nobj; i++)
        if (m->obj[i].q == q) {
            if (!goc__qwindow_query(k->q, &m->obj[i], 1, out)) {
                *out = NAN;
                return -ENODATA;
            }
            return 0;
        }
    return -EINVAL;
}
