/* SPDX-License-Identifier: MIT */
/*
 * Registries and families.
 *
 * Locks: a registry's lock guards its lists of families and collectors; a
 * family's lock guards its sorted array of children. Neither is ever held
 * while a callback runs: a scrape copies the lists with a reference on
 * each entry, drops the registry lock, then calls func metrics and
 * collectors.
 *
 * Lifetime: unregistering unlinks the entry, marks it dead and drops the
 * registry's reference; whoever drops the last one frees it (deferred
 * free). A scrape holding a dead entry skips it. So unregistering never
 * waits for scrapes, only for the entry's own callback running on another
 * goroutine or thread (each call is counted in `calls`, the Dekker pair
 * calls++/dead-load against dead-store/calls-load, all seq_cst), so that
 * the callback never runs after the unregister call returns. A callback
 * may thus unregister any other entry; only its own is refused.
 */
#include "metrics_int.h"
#include "goc/panic.h"
#include "goc/runtime.h"
#include "goc/time.h"
#include "../internal/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static goc_registry def_reg = { .is_default = true };

/*
 * The callbacks running now, each with who runs it (a goroutine's id, or
 * a plain thread's marker), so that unregistering a callback from inside
 * itself is refused instead of waiting for itself forever. A thread-local
 * would not do: a callback that blocks may resume on another thread, and
 * another goroutine may run on this one meanwhile.
 */
struct running {
    struct running *next;
    const void *cb;
    int64_t who;
};
static goc__lock running_mu = GOC__LOCK_INIT;
static struct running *running_head;
static _Thread_local char tl_marker;

static int64_t self_id(void)
{
    int64_t g = goc_id();
    return g ? g : -(int64_t)(intptr_t)&tl_marker;
}

static void running_push(struct running *r, const void *cb)
{
    r->cb = cb;
    r->who = self_id();
    goc__lock_acquire(&running_mu);
    r->next = running_head;
    running_head = r;
    goc__lock_release(&running_mu);
}

static void running_pop(struct running *r)
{
    goc__lock_acquire(&running_mu);
    struct running **pp = &running_head;
    while (*pp != r)
        pp = &(*pp)->next;
    *pp = r->next;
    goc__lock_release(&running_mu);
}

static bool running_here(const void *cb)
{
    int64_t me = self_id();
    bool yes = false;
    goc__lock_acquire(&running_mu);
    for (struct running *r = running_head; r && !yes; r = r->next)
        yes = r->cb == cb && r->who == me;
    goc__lock_release(&running_mu);
    return yes;
}

goc_registry *goc_registry_default(void)
{
    return &def_reg;
}

int goc_registry_new(goc_registry **out)
{
    if (!out)
        return -EINVAL;
    goc_registry *r = goc__calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    *out = r;
    return 0;
}

void goc_registry_get_stats(goc_registry *r, struct goc_registry_stats *st)
{
    if (!st)
        return;
    if (!r)
        r = &def_reg;
    st->dropped_families = atomic_load(&r->dropped_families);
    st->dropped_samples = atomic_load(&r->dropped_samples);
}

/* ---- children ---- */

static void child_free(struct child *k)
{
    if (!k)
        return;
    switch (k->fam->type) {
    case GOC_METRIC_COUNTER:
        goc__free(k->u.c);
        break;
    case GOC_METRIC_GAUGE:
        goc__free(k->u.g);
        break;
    default:
        if (k->u.h)
            goc__hcore_destroy(k->u.h);
        goc__free(k->u.h);
        goc__qwindow_free(k->q);
    }
    for (size_t i = 0; k->values && i < k->fam->nlabels; i++)
        goc__free(k->values[i]);
    goc__free(k->values);
    goc__free(k->key);
    goc__free(k);
}

static int cells_new(struct goc_metric *m, struct child *k, int64_t now)
{
    switch (m->type) {
    case GOC_METRIC_COUNTER:
        k->u.c = goc__aligned_alloc(CACHE_LINE, m->sh.n * sizeof *k->u.c);
        if (!k->u.c)
            return -ENOMEM;
        memset(k->u.c, 0, m->sh.n * sizeof *k->u.c);
        return 0;
    case GOC_METRIC_GAUGE:
        k->u.g = goc__aligned_alloc(CACHE_LINE, sizeof *k->u.g);
        if (!k->u.g)
            return -ENOMEM;
        memset(k->u.g, 0, sizeof *k->u.g);
        k->u.g->track = m->o.track;
        return 0;
    default:
        k->u.h = goc__calloc(1, sizeof *k->u.h);
        if (!k->u.h)
            return -ENOMEM;
        if (goc__hcore_init(k->u.h, m->bounds, m->nbounds) != 0) {
            goc__free(k->u.h);
            k->u.h = NULL;
            return -ENOMEM;
        }
        if (m->type == GOC_METRIC_SUMMARY && m->nobj)
            return goc__qwindow_new(&m->o, now, &k->q);
        return 0;
    }
}

/* The sort key: values in label-name order, each NUL-terminated. */
static char *make_key(const struct goc_metric *m,
                      const char *const *values,
                      size_t *len)
{
    size_t n = 0;
    for (size_t i = 0; i < m->nlabels; i++)
        n += strlen(values[i]) + 1;
    char *key = goc__malloc(n ? n : 1);
    if (!key)
        return NULL;
    char *p = key;
    for (size_t i = 0; i < m->nlabels; i++) {
        size_t l = strlen(values[m->order[i]]) + 1;
        memcpy(p, values[m->order[i]], l);
        p += l;
    }
    *len = n;
    return key;
}

static int key_cmp(const char *a, size_t la, const char *b, size_t lb)
{
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la > lb) - (la < lb);
}

/* Index of the first child whose key is >= key. */
static size_t find(const struct goc_metric *m, const char *key, size_t len)
{
    size_t lo = 0, hi = m->nkids;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct child *k = m->kids[mid];
        if (key_cmp(k->key, k->keylen, key, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool found(const struct goc_metric *m,
                  size_t i,
                  const char *key,
                  size_t len)
{
    return i < m->nkids &&
           key_cmp(m->kids[i]->key, m->kids[i]->keylen, key, len) == 0;
}

static struct child *child_new(struct goc_metric *m,
                               const char *const *values,
                               char *key,
                               size_t keylen,
                               int64_t now)
{
    struct child *k = goc__calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->fam = m;
    k->values = goc__calloc(m->nlabels ? m->nlabels : 1, sizeof(char *));
    if (!k->values)
        goto fail;
    for (size_t i = 0; i < m->nlabels; i++)
        if (!(k->values[i] = goc__strdup(values[i])))
            goto fail;
    if (cells_new(m, k, now) != 0)
        goto fail;
    k->key = key;
    k->keylen = keylen;
    return k;
fail:
    child_free(k);
    return NULL;
}

static int insert(struct goc_metric *m, size_t at, struct child *k)
{
    if (m->nkids == m->capkids) {
        size_t cap = m->capkids ? m->capkids * 2 : 4;
        struct child **v = goc__malloc(cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        if (m->nkids)
            memcpy(v, m->kids, m->nkids * sizeof *v);
        goc__free(m->kids);
        m->kids = v;
        m->capkids = cap;
    }
    memmove(&m->kids[at + 1], &m->kids[at], (m->nkids - at) * sizeof *m->kids);
    m->kids[at] = k;
    m->nkids++;
    return 0;
}

static bool values_ok(const struct goc_metric *m, const char *const *values)
{
    if (m->nlabels && !values)
        return false;
    for (size_t i = 0; i < m->nlabels; i++)
        if (!values[i] || !goc__utf8_ok(values[i]))
            return false;
    return true;
}

static int with(goc_metric *m,
                int type,
                const char *const *values,
                struct child **out)
{
    if (!m || !out || m->type != type || m->fn || !values_ok(m, values))
        return -EINVAL;
    /* A new child's quantile window starts now, read before the lock (a
     * user clock must not run under it) and before anything is allocated
     * (a clock that panics leaks nothing). */
    int64_t now =
        type == GOC_METRIC_SUMMARY && m->nobj ? goc__qwindow_now(&m->o) : 0;
    size_t len;
    char *key = make_key(m, values, &len);
    if (!key)
        return -ENOMEM;
    int err = 0;
    goc__lock_acquire(&m->mu);
    size_t i = find(m, key, len);
    if (found(m, i, key, len)) {
        *out = m->kids[i];
        goc__free(key);
    } else {
        struct child *k = child_new(m, values, key, len, now);
        if (!k) {
            goc__free(key);
            err = -ENOMEM;
        } else if ((err = insert(m, i, k)) != 0) {
            child_free(k);
        } else {
            *out = k;
        }
    }
    goc__lock_release(&m->mu);
    return err;
}

int goc_counter_with(goc_metric *m,
                     const char *const *values,
                     goc_counter **out)
{
    return with(m, GOC_METRIC_COUNTER, values, (struct child **)(void *)out);
}

int goc_gauge_with(goc_metric *m, const char *const *values, goc_gauge **out)
{
    return with(m, GOC_METRIC_GAUGE, values, (struct child **)(void *)out);
}

int goc_histogram_with(goc_metric *m,
                       const char *const *values,
                       goc_histogram **out)
{
    return with(m, GOC_METRIC_HISTOGRAM, values, (struct child **)(void *)out);
}

int goc_summary_with(goc_metric *m,
                     const char *const *values,
                     goc_summary **out)
{
    return with(m, GOC_METRIC_SUMMARY, values, (struct child **)(void *)out);
}

int goc_metric_remove(goc_metric *m, const char *const *values)
{
    if (!m || m->fn || !values_ok(m, values))
        return -EINVAL;
    size_t len;
    char *key = make_key(m, values, &len);
    if (!key)
        return -ENOMEM;
    struct child *k = NULL;
    goc__lock_acquire(&m->mu);
    size_t i = find(m, key, len);
    if (found(m, i, key, len)) {
        k = m->kids[i];
        memmove(&m->kids[i], &m->kids[i + 1],
                (m->nkids - i - 1) * sizeof *m->kids);
        m->nkids--;
    }
    goc__lock_release(&m->mu);
    goc__free(key);
    if (!k)
        return -ENOENT;
    child_free(k);
    return 0;
}

void goc_metric_clear(goc_metric *m)
{
    if (!m)
        return;
    goc__lock_acquire(&m->mu);
    struct child **kids = m->kids;
    size_t n = m->nkids;
    m->kids = NULL;
    m->nkids = m->capkids = 0;
    goc__lock_release(&m->mu);
    for (size_t i = 0; i < n; i++)
        child_free(kids[i]);
    goc__free(kids);
}

/* ---- families ---- */

static void metric_free(struct goc_metric *m)
{
    if (!m)
        return;
    goc_metric_clear(m);
    for (size_t i = 0; m->labels && i < m->nlabels; i++)
        goc__free(m->labels[i]);
    goc__free(m->labels);
    goc__free(m->name);
    goc__free(m->help);
    goc__free(m->bounds);
    goc__free(m->obj);
    goc__free(m);
}

static bool buckets_ok(const double *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(b[i]) || (i > 0 && !(b[i] > b[i - 1])))
            return false;
    /* +Inf is implied: a last bound of +Inf is dropped by the caller. */
    return true;
}

static bool objectives_ok(const struct goc_quantile *o, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!(o[i].q >= 0 && o[i].q <= 1) || !(o[i].eps > 0 && o[i].eps < 1))
            return false;
        for (size_t j = 0; j < i; j++)
            if (o[j].q == o[i].q)
                return false;
    }
    return true;
}

static bool labels_ok(const struct goc_metric_opts *o)
{
    if (o->nlabels > GOC_METRIC_MAX_LABELS || (o->nlabels && !o->labels))
        return false;
    for (size_t i = 0; i < o->nlabels; i++) {
        const char *l = o->labels[i];
        if (!goc__label_name_ok(l))
            return false;
        if (o->type == GOC_METRIC_HISTOGRAM && strcmp(l, "le") == 0)
            return false;
        if (o->type == GOC_METRIC_SUMMARY && strcmp(l, "quantile") == 0)
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(o->labels[j], l) == 0)
                return false;
    }
    return true;
}

static bool opts_ok(const struct goc_metric_opts *o)
{
    if (o->type < GOC_METRIC_COUNTER || o->type > GOC_METRIC_SUMMARY)
        return false;
    if (!goc__metric_name_ok(o->name) || !goc__help_ok(o->help) ||
        !labels_ok(o))
        return false;
    if (o->type != GOC_METRIC_HISTOGRAM && (o->buckets || o->nbuckets))
        return false;
    if (o->type == GOC_METRIC_HISTOGRAM &&
        ((o->nbuckets && !o->buckets) || (o->buckets && !o->nbuckets) ||
         !buckets_ok(o->buckets, o->nbuckets)))
        return false;
    if (o->type != GOC_METRIC_SUMMARY &&
        (o->nobjectives || o->max_age || o->age_buckets || o->clock))
        return false;
    if (o->type == GOC_METRIC_SUMMARY &&
        ((o->nobjectives && !o->objectives) || o->max_age < 0 ||
         o->age_buckets < 0 || o->age_buckets > 1000 ||
         !objectives_ok(o->objectives, o->nobjectives)))
        return false;
    return !(o->track && o->type != GOC_METRIC_GAUGE);
}

static int sort_labels(struct goc_metric *m)
{
    for (size_t i = 0; i < m->nlabels; i++)
        m->order[i] = i;
    for (size_t i = 1; i < m->nlabels; i++) /* insertion sort: <= 16 */
        for (size_t j = i; j > 0 && strcmp(m->labels[m->order[j - 1]],
                                           m->labels[m->order[j]]) > 0;
             j--) {
            size_t t = m->order[j];
            m->order[j] = m->order[j - 1];
            m->order[j - 1] = t;
        }
    return 0;
}

static const double def_buckets[] = { GOC_BUCKETS_DEFAULT };

static int copy_bounds(struct goc_metric *m, const struct goc_metric_opts *o)
{
    const double *b = o->buckets ? o->buckets : def_buckets;
    size_t n = o->buckets ? o->nbuckets : GOC_BUCKETS_DEFAULT_N;
    if (n && isinf(b[n - 1]) && b[n - 1] > 0)
        n--; /* an explicit +Inf is the implied one */
    m->bounds = goc__malloc((n ? n : 1) * sizeof *m->bounds);
    if (!m->bounds)
        return -ENOMEM;
    if (n)
        memcpy(m->bounds, b, n * sizeof *b);
    m->nbounds = n;
    return 0;
}

static int cmp_q(const void *a, const void *b)
{
    double x = ((const struct goc_quantile *)a)->q;
    double y = ((const struct goc_quantile *)b)->q;
    return (x > y) - (x < y);
}

static int metric_build(const struct goc_metric_opts *o,
                        struct goc_metric **out)
{
    struct goc_metric *m = goc__calloc(1, sizeof *m);
    if (!m)
        return -ENOMEM;
    m->type = o->type;
    m->o = *o;
    m->mu = (goc__lock)GOC__LOCK_INIT;
    atomic_init(&m->refs, 1);
    goc__shards_init(&m->sh);
    m->nlabels = o->nlabels;
    if (!(m->name = goc__strdup(o->name)) ||
        !(m->help = goc__strdup(o->help)) ||
        !(m->labels = goc__calloc(o->nlabels + 1, sizeof(char *))))
        goto fail;
    for (size_t i = 0; i < o->nlabels; i++)
        if (!(m->labels[i] = goc__strdup(o->labels[i])))
            goto fail;
    sort_labels(m);
    if (o->type == GOC_METRIC_HISTOGRAM && copy_bounds(m, o) != 0)
        goto fail;
    if (o->nobjectives) {
        m->obj = goc__malloc(o->nobjectives * sizeof *m->obj);
        if (!m->obj)
            goto fail;
        memcpy(m->obj, o->objectives, o->nobjectives * sizeof *m->obj);
        m->nobj = o->nobjectives;
        qsort(m->obj, m->nobj, sizeof *m->obj, cmp_q); /* exposed in order */
    }
    /* The window settings point into the family, not the caller. */
    m->o.objectives = m->obj;
    if (o->clock)
        m->clock = *o->clock;
    m->o.clock = o->clock ? &m->clock : NULL;
    m->o.labels = NULL;
    m->o.buckets = NULL;
    m->o.name = m->o.help = NULL;
    *out = m;
    return 0;
fail:
    metric_free(m);
    return -ENOMEM;
}

static int grow(void *arrp, size_t n, size_t *cap)
{
    void ***arr = arrp;
    if (n < *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 8;
    void **v = goc__malloc(c * sizeof *v);
    if (!v)
        return -ENOMEM;
    if (n)
        memcpy(v, *arr, n * sizeof *v);
    goc__free(*arr);
    *arr = v;
    *cap = c;
    return 0;
}

/* Add @m to @r unless a name clashes. */
static int attach(goc_registry *r, struct goc_metric *m)
{
    int err = 0;
    goc__lock_acquire(&r->mu);
    for (size_t i = 0; i < r->nfams && !err; i++)
        err = goc__names_clash(r->fams[i]->name, r->fams[i]->type, m->name,
                               m->type);
    if (!err)
        err = grow(&r->fams, r->nfams, &r->capfams);
    if (!err) {
        r->fams[r->nfams++] = m;
        m->reg = r;
    }
    goc__lock_release(&r->mu);
    return err;
}

int goc_metric_new(goc_registry *r,
                   const struct goc_metric_opts *o,
                   goc_metric **out)
{
    if (!o || !out || !opts_ok(o))
        return -EINVAL;
    struct goc_metric *m;
    int err = metric_build(o, &m);
    if (err)
        return err;
    if ((err = attach(r ? r : &def_reg, m)) != 0) {
        metric_free(m);
        return err;
    }
    *out = m;
    return 0;
}

int goc_metric_func(goc_registry *r,
                    int type,
                    const char *name,
                    const char *help,
                    double (*fn)(void *arg),
                    void *arg,
                    goc_metric **out)
{
    if (!fn || (type != GOC_METRIC_COUNTER && type != GOC_METRIC_GAUGE))
        return -EINVAL;
    struct goc_metric_opts o = { .type = type, .name = name, .help = help };
    if (!out || !opts_ok(&o))
        return -EINVAL;
    struct goc_metric *m;
    int err = metric_build(&o, &m);
    if (err)
        return err;
    m->fn = fn;
    m->fn_arg = arg;
    if ((err = attach(r ? r : &def_reg, m)) != 0) {
        metric_free(m);
        return err;
    }
    *out = m;
    return 0;
}

static int one_child(
    goc_registry *r, int type, const char *name, const char *help, void **out)
{
    if (!out)
        return -EINVAL;
    struct goc_metric_opts o = { .type = type, .name = name, .help = help };
    goc_metric *m;
    int err = goc_metric_new(r, &o, &m);
    if (err)
        return err;
    if ((err = with(m, type, NULL, (struct child **)out)) != 0)
        goc_metric_unregister(m);
    return err;
}

int goc_counter_new(goc_registry *r,
                    const char *name,
                    const char *help,
                    goc_counter **out)
{
    return one_child(r, GOC_METRIC_COUNTER, name, help, (void **)out);
}

int goc_gauge_new(goc_registry *r,
                  const char *name,
                  const char *help,
                  goc_gauge **out)
{
    return one_child(r, GOC_METRIC_GAUGE, name, help, (void **)out);
}

/* Wait until no call of a dead entry's callback is in progress. Calls
 * that start now see it dead and do not run it. */
static void wait_calls(_Atomic int *calls)
{
    for (int i = 0; atomic_load(calls) > 0; i++)
        goc_sleep(i < 10 ? 10 * GOC_MICROSECOND : GOC_MILLISECOND, NULL);
}

static void metric_unref(struct goc_metric *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
        metric_free(m);
}

static void collector_unref(struct goc_collector *c)
{
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        goc__free(c);
}

/* Remove @p from the array; false if absent. */
static bool unlink_ptr(void **arr, size_t *n, const void *p)
{
    for (size_t i = 0; i < *n; i++)
        if (arr[i] == p) {
            memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof *arr);
            (*n)--;
            return true;
        }
    return false;
}

int goc_metric_unregister(goc_metric *m)
{
    if (!m)
        return -EINVAL;
    if (running_here(m))
        return -EDEADLK;
    goc_registry *r = m->reg;
    goc__lock_acquire(&r->mu);
    bool was = unlink_ptr((void **)r->fams, &r->nfams, m);
    if (was)
        atomic_store(&m->dead, true);
    goc__lock_release(&r->mu);
    if (!was)
        return -EINVAL;
    wait_calls(&m->calls);
    metric_unref(m);
    return 0;
}

int goc_registry_add_collector(goc_registry *r,
                               goc_collect_fn fn,
                               void *arg,
                               goc_collector **out)
{
    if (!fn || !out)
        return -EINVAL;
    if (!r)
        r = &def_reg;
    goc_collector *c = goc__calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->reg = r;
    c->fn = fn;
    c->arg = arg;
    atomic_init(&c->refs, 1);
    goc__lock_acquire(&r->mu);
    int err = grow(&r->cols, r->ncols, &r->capcols);
    if (!err)
        r->cols[r->ncols++] = c;
    goc__lock_release(&r->mu);
    if (err)
        goc__free(c);
    else
        *out = c;
    return err;
}

int goc_collector_remove(goc_collector *c)
{
    if (!c)
        return -EINVAL;
    if (running_here(c))
        return -EDEADLK;
    goc_registry *r = c->reg;
    goc__lock_acquire(&r->mu);
    bool was = unlink_ptr((void **)r->cols, &r->ncols, c);
    if (was)
        atomic_store(&c->dead, true);
    goc__lock_release(&r->mu);
    if (!was)
        return -EINVAL;
    wait_calls(&c->calls);
    collector_unref(c);
    return 0;
}

void goc_registry_free(goc_registry *r)
{
    if (!r || r->is_default)
        return;
    for (size_t i = 0; i < r->nfams; i++)
        metric_unref(r->fams[i]);
    for (size_t i = 0; i < r->ncols; i++)
        collector_unref(r->cols[i]);
    while (r->http) {
        struct http_cfg *h = r->http;
        r->http = h->next;
        goc__free(h);
    }
    goc__free(r->fams);
    goc__free(r->cols);
    goc__free(r);
}

/* ---- gathering ---- */

/*
 * User callbacks run under goc_try(): a panic must not skip the marks
 * taken around them (a call count that unregistering waits for, a record
 * on the scraper's stack in the list of running callbacks), nor leave
 * the scrape's references held. It is kept in the sink, and goes on once
 * the scrape has let go of everything.
 */
struct callback_call {
    goc_collector *c;
    struct goc_metric *m;
    struct goc_metric_sink *s;
    bool clock; /* m's summary clock, not its fn */
    double v;
    int64_t now;
};

static int run_callback(void *arg)
{
    struct callback_call *k = arg;
    if (k->c)
        k->c->fn(k->s, k->c->arg);
    else if (k->clock)
        k->now = goc__qwindow_now(&k->m->o);
    else
        k->v = k->m->fn(k->m->fn_arg);
    return 0;
}

static void call_collector(goc_collector *c, struct goc_metric_sink *s)
{
    atomic_fetch_add(&c->calls, 1);
    if (!atomic_load(&c->dead) && !s->panic) {
        struct running r;
        running_push(&r, c);
        s->cur = -1; /* a collector starts its own families */
        struct callback_call k = { .c = c, .s = s };
        goc_try(run_callback, &k, &s->panic);
        s->cur = -1;
        running_pop(&r);
    }
    atomic_fetch_sub(&c->calls, 1);
}

/* Run m's callback @k, marked as goc__metric_call() says. */
static bool metric_run(struct goc_metric *m, struct callback_call *k)
{
    struct goc_metric_sink *s = k->s;
    atomic_fetch_add(&m->calls, 1);
    bool live = !atomic_load(&m->dead) && !s->panic;
    if (live) {
        struct running r;
        running_push(&r, m);
        goc_try(run_callback, k, &s->panic);
        running_pop(&r);
        live = !s->panic;
    }
    atomic_fetch_sub(&m->calls, 1);
    return live;
}

bool goc__metric_call(struct goc_metric *m,
                      double *v,
                      struct goc_metric_sink *s)
{
    struct callback_call k = { .m = m, .s = s };
    bool live = metric_run(m, &k);
    *v = k.v;
    return live;
}

bool goc__metric_clock(struct goc_metric *m,
                       int64_t *now,
                       struct goc_metric_sink *s)
{
    struct callback_call k = { .m = m, .s = s, .clock = true };
    bool live = metric_run(m, &k);
    *now = k.now;
    return live;
}

int goc__registry_gather(goc_registry *r, struct goc_metric_sink *s)
{
    goc__lock_acquire(&r->mu);
    size_t nf = r->nfams, nc = r->ncols;
    s->fams = goc__malloc((nf ? nf : 1) * sizeof *s->fams);
    s->cols = goc__malloc((nc ? nc : 1) * sizeof *s->cols);
    if (!s->fams || !s->cols) {
        goc__lock_release(&r->mu);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nf; i++) {
        s->fams[i] = r->fams[i];
        atomic_fetch_add(&s->fams[i]->refs, 1);
    }
    for (size_t i = 0; i < nc; i++) {
        s->cols[i] = r->cols[i];
        atomic_fetch_add(&s->cols[i]->refs, 1);
    }
    s->nheld_fams = nf;
    s->nheld_cols = nc;
    goc__lock_release(&r->mu);
    /* Registered families first: a collector's family that clashes with
     * one of them is the one dropped. */
    for (size_t i = 0; i < nf; i++)
        goc__metric_collect(s->fams[i], s);
    s->nreg = s->n;
    for (size_t i = 0; i < nc; i++)
        call_collector(s->cols[i], s);
    return s->oom ? -ENOMEM : 0;
}

void goc__sink_release(struct goc_metric_sink *s)
{
    /* The last reference to an entry unregistered meanwhile frees it. */
    for (size_t i = 0; i < s->nheld_fams; i++)
        metric_unref(s->fams[i]);
    for (size_t i = 0; i < s->nheld_cols; i++)
        collector_unref(s->cols[i]);
    goc__free(s->fams);
    goc__free(s->cols);
    s->fams = NULL;
    s->cols = NULL;
    s->nheld_fams = s->nheld_cols = 0;
}
