/* SPDX-License-Identifier: MIT */
/* Internals shared by the metrics sources. */
#ifndef GOC_METRICS_INT_H
#define GOC_METRICS_INT_H

#include "goc/metrics.h"
#include "../internal/lock.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define CACHE_LINE    64
/* Shards for plain threads, after the per-P ones. */
#define THREAD_SHARDS 4

/* ---- per-P sharded cells (value.c) ---- */

struct shards {
    unsigned nprocs, n; /* n = nprocs + THREAD_SHARDS */
};

void goc__shards_init(struct shards *s);
unsigned goc__shard_index(const struct shards *s);

/* Double kept as its bits in a 64-bit atomic. */
double goc__dbl_load(_Atomic uint64_t *p);
void goc__dbl_add(_Atomic uint64_t *p, double v);

/*
 * A counter: per shard, an integer part (exact, one atomic add) and a
 * double part for fractional adds, on a cache line of its own.
 */
struct counter_cell {
    _Alignas(CACHE_LINE) _Atomic uint64_t n;
    _Atomic uint64_t frac;
};

/* A gauge cell: one value, and the tracked extremes. */
struct gauge_cell {
    _Alignas(CACHE_LINE) _Atomic uint64_t bits;
    _Atomic uint64_t min, max;
    _Atomic int64_t updated;
    bool track;
};

/*
 * Histogram (and summary count/sum) core: client_golang's hot/cold halves,
 * one pair per shard. See value.c for why.
 */
struct hcore {
    struct shards sh;
    size_t nb;            /* finite bounds */
    const double *bounds; /* the family's */
    size_t stride;        /* uint64 words per shard */
    _Atomic uint64_t *w;  /* shard words: [0] count|hot, then two halves */
    goc__lock read_mu;    /* serialises readers (flip + merge) */
};

int goc__hcore_init(struct hcore *h, const double *bounds, size_t nb);
void goc__hcore_destroy(struct hcore *h);
void goc__hcore_observe(struct hcore *h, double v);
/* cum: nb + 1 cumulative counts (may be NULL). */
void goc__hcore_read(struct hcore *h,
                     uint64_t *cum,
                     uint64_t *count,
                     double *sum);

/* ---- quantile estimation (summary.c) ---- */

struct qwindow;
/* The time on the family's clock (@o's, or goc_now()). A user clock is a
 * callback: it is read before any lock is taken, and passed on. */
int64_t goc__qwindow_now(const struct goc_metric_opts *o);
/* A window whose first period starts at @now. */
int goc__qwindow_new(const struct goc_metric_opts *o,
                     int64_t now,
                     struct qwindow **out);
void goc__qwindow_free(struct qwindow *q);
void goc__qwindow_observe(struct qwindow *q, double v);
/* Fills vals[i] for each objective of the family, as of @now; false if
 * empty. */
bool goc__qwindow_query(struct qwindow *q,
                        int64_t now,
                        const struct goc_quantile *obj,
                        size_t n,
                        double *vals);
/* The most samples any of q's streams keeps (its memory, for tests). */
size_t goc__qwindow_samples(struct qwindow *q);

/* ---- families and children (registry.c) ---- */

struct child {
    struct goc_metric *fam;
    char *key; /* values in sorted-name order, each NUL-ended */
    size_t keylen;
    char **values; /* in creation order */
    union {
        struct counter_cell *c; /* sh.n cells */
        struct gauge_cell *g;
        struct hcore *h;
    } u;
    struct qwindow *q; /* summary with objectives */
};

struct goc_metric {
    struct goc_registry *reg;
    _Atomic int refs;  /* the registry's 1 (until unlinked) + scrapes */
    _Atomic int calls; /* its callback running now (func metrics) */
    _Atomic bool dead; /* unregistered: a scrape holding it skips it */
    int type;
    char *name, *help;
    size_t nlabels;
    char **labels;                       /* creation order */
    size_t order[GOC_METRIC_MAX_LABELS]; /* label indices sorted by name */
    double *bounds;
    size_t nbounds;
    struct goc_quantile *obj;
    size_t nobj;
    struct goc_metric_opts o; /* summary window settings, gauge track */
    goc_clock clock;
    struct shards sh;
    double (*fn)(void *arg); /* func metrics */
    void *fn_arg;
    goc__lock mu;        /* children */
    struct child **kids; /* sorted by key */
    size_t nkids, capkids;
};

struct goc_collector {
    struct goc_registry *reg;
    _Atomic int refs;  /* as a family's */
    _Atomic int calls; /* its callback running now */
    _Atomic bool dead;
    goc_collect_fn fn;
    void *arg;
};

struct goc_registry {
    goc__lock mu;
    struct goc_metric **fams;
    size_t nfams, capfams;
    struct goc_collector **cols;
    size_t ncols, capcols;
    _Atomic int64_t dropped_families, dropped_samples;
    bool is_default;
    struct http_cfg *http; /* settings of its servers, freed with it */
};

/* Immutable once linked; servers with equal settings share one. */
struct http_cfg {
    struct http_cfg *next;
    struct goc_registry *reg;
    size_t max_request;
    int64_t timeout, idle_timeout;
};

/* ---- validation (names.c) ---- */

bool goc__metric_name_ok(const char *s);
bool goc__label_name_ok(const char *s);
bool goc__utf8_ok(const char *s);
bool goc__help_ok(const char *s);
/* 0, or -EEXIST if families a and b would write a sample name twice. */
int goc__names_clash(const char *a, int ta, const char *b, int tb);

/* ---- scrape (sink.c, text.c) ---- */

struct sample {
    char *key; /* name/value pairs in name order, each NUL-ended */
    size_t keylen;
    char *labels; /* rendered pairs `a="x",b="y"`, "" if none */
    double v;
    /* histogram: nb bounds and cumulative counts; summary: quantiles */
    size_t nb;
    double *bounds; /* borrowed from the family, or owned (owned=true) */
    uint64_t *cum;
    double *qv; /* summary: one value per objective */
    uint64_t count;
    bool owned_bounds;
};

struct family {
    char *name, *help;
    int type;
    struct sample *s;
    size_t n, cap;
    const struct goc_quantile *obj; /* summary objectives (borrowed) */
    size_t nobj;
    bool bad;
};

struct goc_metric_sink {
    struct goc_registry *reg;
    struct family *f;
    size_t n, cap;
    long cur;    /* index of the family a collector is filling, or -1 */
    size_t nreg; /* families [0, nreg) come from registered metrics */
    bool oom;
    /* The first callback's panic: no callback runs after it, and it goes
     * on once the scrape has let go of everything (goc__sink_finish). */
    struct goc_panic_info *panic;
    /* Entries held (referenced) by this scrape, released at its end. */
    struct goc_metric **fams;
    struct goc_collector **cols;
    size_t nheld_fams, nheld_cols;
};

void goc__sink_init(struct goc_metric_sink *s, struct goc_registry *r);
void goc__sink_destroy(struct goc_metric_sink *s);
struct family *goc__sink_add_family(struct goc_metric_sink *s,
                                    const char *name,
                                    const char *help,
                                    int type);
struct sample *goc__family_add_sample(struct goc_metric_sink *s,
                                      struct family *f);
/* Render pairs for @n labels; NULL on ENOMEM. */
char *goc__render_labels(const char *const *names,
                         const char *const *values,
                         const size_t *order,
                         size_t n);
/* Snapshot a registered family into the sink. */
void goc__metric_collect(struct goc_metric *m, struct goc_metric_sink *s);
/* Gather a whole registry into @s (holding its entries until
 * goc__sink_release). */
int goc__registry_gather(struct goc_registry *r, struct goc_metric_sink *s);
void goc__sink_release(struct goc_metric_sink *s);
/* Call a func metric's callback (marked, against self-unregistering) into
 * *v; false if @m was unregistered meanwhile, or a callback of the scrape
 * @s panicked (then or before: then the panic is kept in @s). */
bool goc__metric_call(struct goc_metric *m,
                      double *v,
                      struct goc_metric_sink *s);
/* The same for a summary family's clock (a user callback too: unregistering
 * waits for it), its time into *now. */
bool goc__metric_clock(struct goc_metric *m,
                       int64_t *now,
                       struct goc_metric_sink *s);

/* A growable text buffer. */
struct tbuf {
    char *p;
    size_t n, cap;
    bool oom;
};
void goc__tbuf_put(struct tbuf *b, const char *s, size_t n);
void goc__tbuf_str(struct tbuf *b, const char *s);
int goc__render_text(struct goc_metric_sink *s, struct tbuf *b);

#endif /* GOC_METRICS_INT_H */
