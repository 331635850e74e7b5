/* SPDX-License-Identifier: MIT */
/*
 * The sink a scrape fills: registered families are snapshotted into it
 * (each under its own lock, briefly), collectors append theirs through the
 * goc_sink_* calls. Everything is copied, so rendering needs no lock.
 */
#include "metrics_int.h"
#include "goc/panic.h"
#include "../internal/alloc.h"

#include <math.h>
#include <string.h>

void goc__sink_init(struct goc_metric_sink *s, struct goc_registry *r)
{
    memset(s, 0, sizeof *s);
    s->reg = r;
    s->cur = -1;
}

static void sample_free(struct sample *x)
{
    goc__free(x->key);
    goc__free(x->labels);
    goc__free(x->cum);
    goc__free(x->qv);
    if (x->owned_bounds)
        goc__free(x->bounds);
}

void goc__sink_destroy(struct goc_metric_sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        struct family *f = &s->f[i];
        for (size_t j = 0; j < f->n; j++)
            sample_free(&f->s[j]);
        goc__free(f->s);
        goc__free(f->name);
        goc__free(f->help);
    }
    goc__free(s->f);
    goc__sink_release(s);
}

struct family *goc__sink_add_family(struct goc_metric_sink *s,
                                    const char *name,
                                    const char *help,
                                    int type)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct family *f = goc__malloc(cap * sizeof *f);
        if (!f)
            goto oom;
        if (s->n)
            memcpy(f, s->f, s->n * sizeof *f);
        goc__free(s->f);
        s->f = f;
        s->cap = cap;
    }
    struct family *f = &s->f[s->n];
    memset(f, 0, sizeof *f);
    f->type = type;
    f->name = goc__strdup(name);
    f->help = goc__strdup(help);
    if (!f->name || !f->help) {
        goc__free(f->name);
        goc__free(f->help);
        goto oom;
    }
    s->n++;
    return f;
oom:
    s->oom = true;
    return NULL;
}

struct sample *goc__family_add_sample(struct goc_metric_sink *s,
                                      struct family *f)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct sample *v = goc__malloc(cap * sizeof *v);
        if (!v) {
            s->oom = true;
            return NULL;
        }
        if (f->n)
            memcpy(v, f->s, f->n * sizeof *v);
        goc__free(f->s);
        f->s = v;
        f->cap = cap;
    }
    struct sample *x = &f->s[f->n++];
    memset(x, 0, sizeof *x);
    return x;
}

char *goc__render_labels(const char *const *names,
                         const char *const *values,
                         const size_t *order,
                         size_t n)
{
    struct tbuf b = { 0 };
    for (size_t i = 0; i < n; i++) {
        size_t k = order[i];
        if (i)
            goc__tbuf_put(&b, ",", 1);
        goc__tbuf_str(&b, names[k]);
        goc__tbuf_put(&b, "=\"", 2);
        for (const char *p = values[k]; *p; p++) {
            if (*p == '\\')
                goc__tbuf_put(&b, "\\\\", 2);
            else if (*p == '"')
                goc__tbuf_put(&b, "\\\"", 2);
            else if (*p == '\n')
                goc__tbuf_put(&b, "\\n", 2);
            else
                goc__tbuf_put(&b, p, 1);
        }
        goc__tbuf_put(&b, "\"", 1);
    }
    goc__tbuf_put(&b, "", 1); /* NUL */
    if (b.oom) {
        goc__free(b.p);
        return NULL;
    }
    return b.p;
}

/*
 * Key and rendered labels of a sample; false on ENOMEM. The key is the
 * name/value pairs in name order, each string NUL-ended: a collector's
 * samples of one family may use different label names, and
 * foo{a="x"} and foo{b="x"} are distinct series (values alone would make
 * them one). Within a registered family the names are the same for every
 * child, so the order is that of the values.
 */
static bool label_sample(struct goc_metric_sink *s,
                         struct sample *x,
                         const char *const *names,
                         const char *const *values,
                         const size_t *order,
                         size_t n)
{
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(names[order[i]]) + strlen(values[order[i]]) + 2;
    x->key = goc__malloc(len ? len : 1);
    x->labels = goc__render_labels(names, values, order, n);
    if (!x->key || !x->labels) {
        s->oom = true;
        return false;
    }
    char *p = x->key;
    for (size_t i = 0; i < n; i++) {
        size_t ln = strlen(names[order[i]]) + 1;
        size_t lv = strlen(values[order[i]]) + 1;
        memcpy(p, names[order[i]], ln);
        memcpy(p + ln, values[order[i]], lv);
        p += ln + lv;
    }
    x->keylen = len;
    return true;
}

static void collect_child(struct goc_metric *m,
                          struct child *k,
                          struct goc_metric_sink *s,
                          struct sample *x,
                          int64_t now)
{
    if (!label_sample(s, x, (const char *const *)m->labels,
                      (const char *const *)k->values, m->order, m->nlabels))
        return;
    switch (m->type) {
    case GOC_METRIC_COUNTER:
        x->v = goc_counter_value((goc_counter *)(void *)k);
        break;
    case GOC_METRIC_GAUGE:
        x->v = goc_gauge_value((goc_gauge *)(void *)k);
        break;
    case GOC_METRIC_HISTOGRAM:
        x->nb = m->nbounds;
        x->bounds = m->bounds; /* the family is held until rendered */
        x->cum = goc__malloc((m->nbounds + 1) * sizeof *x->cum);
        if (!x->cum) {
            s->oom = true;
            return;
        }
        goc__hcore_read(k->u.h, x->cum, &x->count, &x->v);
        break;
    default:
        goc__hcore_read(k->u.h, NULL, &x->count, &x->v);
        if (!m->nobj)
            break;
        x->qv = goc__malloc(m->nobj * sizeof *x->qv);
        if (!x->qv) {
            s->oom = true;
            return;
        }
        goc__qwindow_query(k->q, now, m->obj, m->nobj, x->qv);
    }
}

void goc__metric_collect(struct goc_metric *m, struct goc_metric_sink *s)
{
    if (m->fn) { /* outside every lock */
        double v;
        if (!goc__metric_call(m, &v, s))
            return; /* unregistered since the scrape began, or panicked */
        struct family *f = goc__sink_add_family(s, m->name, m->help, m->type);
        struct sample *x = f ? goc__family_add_sample(s, f) : NULL;
        if (x && label_sample(s, x, NULL, NULL, NULL, 0))
            x->v = v;
        return;
    }
    if (atomic_load(&m->dead))
        return;
    /* The quantiles' time, read before the lock: a user clock is a
     * callback, run as the others are (goc__metric_clock). */
    int64_t now = 0;
    if (m->nobj && !goc__metric_clock(m, &now, s))
        return;
    struct family *f = goc__sink_add_family(s, m->name, m->help, m->type);
    if (!f)
        return;
    f->obj = m->obj;
    f->nobj = m->nobj;
    goc__lock_acquire(&m->mu);
    for (size_t i = 0; i < m->nkids && !s->oom; i++) {
        struct sample *x = goc__family_add_sample(s, f);
        if (x)
            collect_child(m, m->kids[i], s, x, now);
    }
    goc__lock_release(&m->mu);
}

/* ---- the collector API ---- */

static void drop_sample(struct goc_metric_sink *s)
{
    atomic_fetch_add(&s->reg->dropped_samples, 1);
}

int goc_sink_family(goc_metric_sink *s,
                    const char *name,
                    const char *help,
                    int type)
{
    if (!s)
        return -EINVAL;
    s->cur = -1;
    if (!goc__metric_name_ok(name) || !goc__help_ok(help) ||
        type < GOC_METRIC_COUNTER || type > GOC_METRIC_UNTYPED ||
        type == GOC_METRIC_SUMMARY) {
        atomic_fetch_add(&s->reg->dropped_families, 1);
        return -EINVAL;
    }
    if (!goc__sink_add_family(s, name, help, type))
        return -ENOMEM;
    s->cur = (long)s->n - 1;
    return 0;
}

/* Validate labels and sort them by name into order[]. */
static bool labels_ok(const char *const *names,
                      const char *const *values,
                      size_t n,
                      int type,
                      size_t *order)
{
    if (n > GOC_METRIC_MAX_LABELS || (n && (!names || !values)))
        return false;
    for (size_t i = 0; i < n; i++) {
        if (!goc__label_name_ok(names[i]) || !values[i] ||
            !goc__utf8_ok(values[i]))
            return false;
        if (type == GOC_METRIC_HISTOGRAM && strcmp(names[i], "le") == 0)
            return false;
        order[i] = i;
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0; j--) {
            int c = strcmp(names[order[j - 1]], names[order[j]]);
            if (c == 0)
                return false; /* repeated name */
            if (c < 0)
                break;
            size_t t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    return true;
}

/* A new sample of the current family, or NULL with the reason in *err
 * (the sink's earlier out-of-memory does not make bad input -ENOMEM). */
static struct sample *start_sample(goc_metric_sink *s,
                                   const char *const *names,
                                   const char *const *values,
                                   size_t n,
                                   bool histogram,
                                   int *err)
{
    size_t order[GOC_METRIC_MAX_LABELS];
    *err = -EINVAL;
    if (!s)
        return NULL;
    struct family *f = s->cur >= 0 ? &s->f[s->cur] : NULL;
    if (!f || (f->type == GOC_METRIC_HISTOGRAM) != histogram ||
        !labels_ok(names, values, n, f->type, order)) {
        drop_sample(s);
        return NULL;
    }
    struct sample *x = goc__family_add_sample(s, f);
    if (!x || !label_sample(s, x, names, values, order, n)) {
        if (x) { /* take it back */
            sample_free(x);
            f->n--;
        }
        drop_sample(s);
        *err = -ENOMEM;
        return NULL;
    }
    return x;
}

int goc_sink_sample(goc_metric_sink *s,
                    const char *const *names,
                    const char *const *values,
                    size_t n,
                    double v)
{
    int err;
    struct sample *x = start_sample(s, names, values, n, false, &err);
    if (!x)
        return err;
    x->v = v;
    return 0;
}

static bool hist_ok(const double *bounds,
                    const uint64_t *cum,
                    size_t nb,
                    uint64_t count)
{
    if (nb && (!bounds || !cum))
        return false;
    for (size_t i = 0; i < nb; i++)
        if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])) ||
            (i && cum[i] < cum[i - 1]) || cum[i] > count)
            return false;
    return true;
}

int goc_sink_histogram(goc_metric_sink *s,
                       const char *const *names,
                       const char *const *values,
                       size_t n,
                       const double *bounds,
                       const uint64_t *cumulative,
                       size_t nb,
                       double sum,
                       uint64_t count)
{
    if (s && !hist_ok(bounds, cumulative, nb, count)) {
        drop_sample(s);
        return -EINVAL;
    }
    int err;
    struct sample *x = start_sample(s, names, values, n, true, &err);
    if (!x)
        return err;
    x->bounds = goc__malloc((nb ? nb : 1) * sizeof *x->bounds);
    x->cum = goc__malloc((nb + 1) * sizeof *x->cum);
    x->owned_bounds = true;
    if (!x->bounds || !x->cum) {
        s->oom = true;
        return -ENOMEM; /* freed with the sink; not rendered */
    }
    if (nb) {
        memcpy(x->bounds, bounds, nb * sizeof *bounds);
        memcpy(x->cum, cumulative, nb * sizeof *cumulative);
    }
    x->cum[nb] = count;
    x->nb = nb;
    x->count = count;
    x->v = sum;
    return 0;
}
