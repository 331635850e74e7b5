/* SPDX-License-Identifier: MIT */
/*
 * The text exposition format 0.0.4: families sorted by name, each with
 * HELP and TYPE, its series sorted by label values; Go's shortest
 * round-trip float formatting; and the writers.
 */
#include "metrics_int.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void goc__tbuf_put(struct tbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n)
            cap *= 2;
        char *p = goc__malloc(cap);
        if (!p) {
            b->oom = true;
            return;
        }
        if (b->n)
            memcpy(p, b->p, b->n);
        goc__free(b->p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

void goc__tbuf_str(struct tbuf *b, const char *s)
{
    goc__tbuf_put(b, s, strlen(s));
}

/* ---- floats ---- */

/*
 * Shortest round trip: the fewest significant digits (1..17) whose
 * decimal form reads back as the same double, laid out as Go's
 * strconv.FormatFloat(v, 'g', -1, 64): exponent form when the decimal
 * exponent is < -4 or >= 6 ("1e+06", "1.5e-05"), plain otherwise
 * ("100", "0.001"). %.17g is not it: it prints 0.1 as
 * 0.10000000000000001.
 */
/* "%.*e" text: its digits (the point may be any locale's) and exponent. */
static int split_e(const char *t, char *dig, int *exp)
{
    int nd = 0;
    for (; *t && *t != 'e'; t++)
        if (*t >= '0' && *t <= '9')
            dig[nd++] = *t;
    *exp = atoi(t + 1);
    return nd;
}

/* Do the digits dig[0, nd) times 10^(exp - nd + 1) read back as a? */
static bool reads_back(const char *dig, int nd, int exp, double a)
{
    char t[48];
    snprintf(t, sizeof t, "%.*se%d", nd, dig, exp - nd + 1);
    return strtod(t, NULL) == a;
}

/* The digits one unit up, or down, in the last place (*exp follows a
 * carry out of the first digit); false when they would lose a digit. */
static bool step(char *d, int nd, int *exp, int dir)
{
    int i = nd - 1;
    char wrap = dir > 0 ? '9' : '0';
    while (i >= 0 && d[i] == wrap)
        d[i--] = dir > 0 ? '0' : '9';
    if (i < 0) {
        if (dir < 0)
            return false; /* was 0: not a float's digits */
        d[0] = '1';       /* 99..9 + 1 = 100..0, one place up */
        ++*exp;
        return true;
    }
    d[i] = (char)(d[i] + dir);
    return d[0] != '0'; /* 100..0 - 1 has a digit fewer */
}

/*
 * The digits and decimal exponent of the shortest decimal that reads
 * back as a (> 0), as Go's shortest formatting finds it. At each length
 * the correctly rounded digits are tried, then their neighbours one unit
 * away: where a power of two meets the binade below, its rounding
 * interval is lopsided, and the one that reads back may be a neighbour
 * (2^-24 is 5.960464477539063e-08, not ...0625).
 */
static int shortest_digits(double a, char *dig, int *exp)
{
    char t[48];
    int nd = 0;
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(t, sizeof t, "%.*e", prec - 1, a);
        nd = split_e(t, dig, exp);
        if (strtod(t, NULL) == a)
            return nd;
        for (int dir = -1; dir <= 1 && prec < 17; dir += 2) {
            char n[24];
            int e = *exp;
            memcpy(n, dig, (size_t)nd);
            if (step(n, nd, &e, dir) && reads_back(n, nd, e, a)) {
                memcpy(dig, n, (size_t)nd);
                *exp = e;
                return nd;
            }
        }
    }
    return nd; /* 17 digits always read back */
}

int goc_format_double(double v, char *buf)
{
    if (isnan(v))
        return (int)strlen(strcpy(buf, "NaN"));
    if (isinf(v))
        return (int)strlen(strcpy(buf, v > 0 ? "+Inf" : "-Inf"));
    if (v == 0)
        return (int)strlen(strcpy(buf, signbit(v) ? "-0" : "0"));
    char dig[24];
    int exp, nd = shortest_digits(fabs(v), dig, &exp);
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    char *o = buf;
    if (v < 0)
        *o++ = '-';
    if (exp < -4 || exp >= 6) {
        *o++ = dig[0];
        if (nd > 1) {
            *o++ = '.';
            memcpy(o, dig + 1, (size_t)nd - 1);
            o += nd - 1;
        }
        o += sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        return (int)(o - buf);
    }
    int dp = exp + 1; /* digits before the point */
    if (dp <= 0) {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -dp; i++)
            *o++ = '0';
        memcpy(o, dig, (size_t)nd);
        o += nd;
    } else {
        for (int i = 0; i < dp; i++)
            *o++ = i < nd ? dig[i] : '0';
        if (nd > dp) {
            *o++ = '.';
            memcpy(o, dig + dp, (size_t)(nd - dp));
            o += nd - dp;
        }
    }
    *o = '\0';
    return (int)(o - buf);
}

static void put_double(struct tbuf *b, double v)
{
    char s[40];
    goc__tbuf_put(b, s, (size_t)goc_format_double(v, s));
}

static void put_u64(struct tbuf *b, uint64_t v)
{
    char s[24];
    goc__tbuf_put(b, s, (size_t)snprintf(s, sizeof s, "%" PRIu64, v));
}

/* ---- rendering ---- */

static const char *type_name(int t)
{
    static const char *const n[] = { "counter", "gauge", "histogram", "summary",
                                     "untyped" };
    return n[t];
}

/* HELP text: backslash and newline escaped. */
static void put_help(struct tbuf *b, const struct family *f)
{
    goc__tbuf_str(b, "# HELP ");
    goc__tbuf_str(b, f->name);
    goc__tbuf_put(b, " ", 1);
    for (const char *p = f->help; *p; p++)
        if (*p == '\\')
            goc__tbuf_put(b, "\\\\", 2);
        else if (*p == '\n')
            goc__tbuf_put(b, "\\n", 2);
        else
            goc__tbuf_put(b, p, 1);
    goc__tbuf_str(b, "\n# TYPE ");
    goc__tbuf_str(b, f->name);
    goc__tbuf_put(b, " ", 1);
    goc__tbuf_str(b, type_name(f->type));
    goc__tbuf_put(b, "\n", 1);
}

/* name+suffix{labels[,extra="val"]} */
static void put_series(struct tbuf *b,
                       const struct family *f,
                       const char *suffix,
                       const struct sample *x,
                       const char *extra,
                       double extra_v)
{
    goc__tbuf_str(b, f->name);
    goc__tbuf_str(b, suffix);
    if (!*x->labels && !extra) {
        goc__tbuf_put(b, " ", 1);
        return;
    }
    goc__tbuf_put(b, "{", 1);
    goc__tbuf_str(b, x->labels);
    if (extra) {
        if (*x->labels)
            goc__tbuf_put(b, ",", 1);
        goc__tbuf_str(b, extra);
        goc__tbuf_put(b, "=\"", 2);
        put_double(b, extra_v);
        goc__tbuf_put(b, "\"", 1);
    }
    goc__tbuf_put(b, "} ", 2);
}

static void put_histogram(struct tbuf *b,
                          const struct family *f,
                          const struct sample *x)
{
    for (size_t i = 0; i <= x->nb; i++) {
        put_series(b, f, "_bucket", x, "le",
                   i < x->nb ? x->bounds[i] : INFINITY);
        put_u64(b, x->cum[i]);
        goc__tbuf_put(b, "\n", 1);
    }
}

static void put_sample(struct tbuf *b,
                       const struct family *f,
                       const struct sample *x)
{
    if (f->type == GOC_METRIC_HISTOGRAM)
        put_histogram(b, f, x);
    if (f->type == GOC_METRIC_SUMMARY)
        for (size_t i = 0; i < f->nobj; i++) {
            put_series(b, f, "", x, "quantile", f->obj[i].q);
            put_double(b, x->qv[i]);
            goc__tbuf_put(b, "\n", 1);
        }
    if (f->type != GOC_METRIC_HISTOGRAM && f->type != GOC_METRIC_SUMMARY) {
        put_series(b, f, "", x, NULL, 0);
        put_double(b, x->v);
        goc__tbuf_put(b, "\n", 1);
        return;
    }
    put_series(b, f, "_sum", x, NULL, 0);
    put_double(b, x->v);
    goc__tbuf_put(b, "\n", 1);
    put_series(b, f, "_count", x, NULL, 0);
    put_u64(b, x->count);
    goc__tbuf_put(b, "\n", 1);
}

static int cmp_sample(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);
    return c ? c : (x->keylen > y->keylen) - (x->keylen < y->keylen);
}

static int cmp_family(const void *a, const void *b)
{
    const struct family *const *x = a, *const *y = b;
    int c = strcmp((*x)->name, (*y)->name);
    return c ? c : (*x > *y) - (*x < *y); /* stable: sink order */
}

/* A collector's family that reuses a sample name of an earlier family is
 * dropped (registered families cannot clash: registration refuses it). */
static void drop_clashes(struct goc_metric_sink *s)
{
    for (size_t i = s->nreg; i < s->n; i++)
        for (size_t j = 0; j < i && !s->f[i].bad; j++)
            if (!s->f[j].bad && goc__names_clash(s->f[i].name, s->f[i].type,
                                                 s->f[j].name, s->f[j].type))
                s->f[i].bad = true;
    for (size_t i = s->nreg; i < s->n; i++)
        if (s->f[i].bad)
            atomic_fetch_add(&s->reg->dropped_families, 1);
}

static void put_family(struct goc_metric_sink *s,
                       struct tbuf *b,
                       struct family *f)
{
    qsort(f->s, f->n, sizeof *f->s, cmp_sample);
    put_help(b, f);
    for (size_t i = 0; i < f->n; i++) {
        if (i && cmp_sample(&f->s[i - 1], &f->s[i]) == 0) {
            atomic_fetch_add(&s->reg->dropped_samples, 1); /* repeated */
            continue;
        }
        put_sample(b, f, &f->s[i]);
    }
}

int goc__render_text(struct goc_metric_sink *s, struct tbuf *b)
{
    drop_clashes(s);
    struct family **order = goc__malloc((s->n ? s->n : 1) * sizeof *order);
    if (!order)
        return -ENOMEM;
    for (size_t i = 0; i < s->n; i++)
        order[i] = &s->f[i];
    qsort(order, s->n, sizeof *order, cmp_family);
    for (size_t i = 0; i < s->n; i++)
        if (!order[i]->bad && order[i]->n) /* empty families are omitted */
            put_family(s, b, order[i]);
    goc__free(order);
    return b->oom ? -ENOMEM : 0;
}

/* ---- writers ---- */

static int scrape(goc_registry *r, struct tbuf *b)
{
    struct goc_metric_sink s;
    goc__sink_init(&s, r ? r : goc_registry_default());
    int err = goc__registry_gather(s.reg, &s);
    if (!err && !s.panic)
        err = goc__render_text(&s, b);
    goc__sink_destroy(&s);
    if (s.panic) { /* a callback's, now that nothing is held */
        goc__free(b->p);
        b->p = NULL;
        goc__panic_again(s.panic);
    }
    if (!err)
        goc__tbuf_put(b, "", 1); /* NUL, not counted */
    if (!err && b->oom)
        err = -ENOMEM;
    if (err) {
        goc__free(b->p);
        b->p = NULL;
        return err;
    }
    b->n--;
    return 0;
}

int goc_metrics_text(goc_registry *r, char **out, size_t *len)
{
    if (!out)
        return -EINVAL;
    struct tbuf b = { 0 };
    int err = scrape(r, &b);
    if (err)
        return err;
    goc__heap_disown(b.p); /* the caller frees it with free() */
    *out = b.p;
    if (len)
        *len = b.n;
    return 0;
}

int goc_metrics_write_file(goc_registry *r, FILE *f)
{
    if (!f)
        return -EINVAL;
    struct tbuf b = { 0 };
    int err = scrape(r, &b);
    if (err)
        return err;
    if (fwrite(b.p, 1, b.n, f) != b.n || fflush(f) != 0)
        err = -EIO;
    goc__free(b.p);
    return err;
}

int goc_metrics_write_fd(goc_registry *r, int fd)
{
    if (fd < 0)
        return -EINVAL;
    struct tbuf b = { 0 };
    int err = scrape(r, &b);
    if (err)
        return err;
    for (size_t off = 0; off < b.n;) {
        ssize_t n = write(fd, b.p + off, b.n - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            break;
        }
        off += (size_t)n;
    }
    goc__free(b.p);
    return err;
}
