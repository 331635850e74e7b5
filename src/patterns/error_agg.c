/* SPDX-License-Identifier: MIT */
/*
 * Concurrent error aggregator: a locked, growable array of retained
 * errors. Snapshots are errors.Join values, so every collected error stays
 * reachable by goc_error_is() (the seed formatted them with %v and lost
 * them). The lock is held only to copy pointers; joins and releases
 * happen outside it.
 */
#include "errors_int.h"
#include "../internal/alloc.h"
#include "../internal/lock.h"

#include <stdio.h>
#include <string.h>

struct goc_error_agg {
    goc__lock mu;
    struct goc_error_agg_opts o;
    goc_error **v;
    size_t n, cap;
    size_t dropped, deduped;
};

int goc_error_agg_new(const struct goc_error_agg_opts *opts,
                      goc_error_agg **out)
{
    if (!out)
        return -EINVAL;
    goc_error_agg *a = goc__calloc(1, sizeof *a);
    if (!a)
        return -ENOMEM;
    if (opts)
        a->o = *opts;
    *out = a;
    return 0;
}

void goc_error_agg_free(goc_error_agg *a)
{
    if (!a)
        return;
    goc_error_agg_reset(a);
    goc__free(a);
}

static bool same(const goc_error *x, const goc_error *y)
{
    return goc_error_code(x) == goc_error_code(y) &&
           strcmp(goc_error_message(x), goc_error_message(y)) == 0;
}

/* Under the lock: room for one more, or false. */
static bool grow_locked(goc_error_agg *a)
{
    if (a->n < a->cap)
        return true;
    size_t cap = a->cap ? a->cap * 2 : 8;
    goc_error **v = goc__malloc(cap * sizeof *v);
    if (!v)
        return false;
    if (a->n)
        memcpy(v, a->v, a->n * sizeof *v);
    goc__free(a->v);
    a->v = v;
    a->cap = cap;
    return true;
}

int goc_error_agg_add(goc_error_agg *a, goc_error *err)
{
    if (!a)
        return -EINVAL;
    if (!err)
        return 0;
    int rc = 0;
    goc__lock_acquire(&a->mu);
    if (a->o.dedupe) {
        for (size_t i = 0; i < a->n; i++) {
            if (same(a->v[i], err)) {
                a->deduped++;
                goc__lock_release(&a->mu);
                return 0;
            }
        }
    }
    if (a->o.max_errors && a->n >= a->o.max_errors) {
        a->dropped++;
    } else if (!grow_locked(a)) {
        a->dropped++;
        rc = -ENOMEM;
    } else {
        a->v[a->n++] = goc_error_retain(err);
    }
    goc__lock_release(&a->mu);
    return rc;
}

int goc_error_agg_add_code(goc_error_agg *a, int code, const char *msg)
{
    if (!a)
        return -EINVAL;
    goc_error *e =
        msg ? goc_error_new(code, "%s", msg) : goc_error_new(code, NULL);
    if (goc__error_is_oom(e)) {
        /* Not the error meant: count it as an error dropped. */
        goc__lock_acquire(&a->mu);
        a->dropped++;
        goc__lock_release(&a->mu);
        return -ENOMEM;
    }
    int rc = goc_error_agg_add(a, e);
    goc_error_release(e);
    return rc;
}

goc_error *goc_error_agg_err(goc_error_agg *a)
{
    if (!a)
        return NULL;
    goc__lock_acquire(&a->mu);
    size_t n = a->n, dropped = a->dropped;
    goc_error **copy = n ? goc__malloc(n * sizeof *copy) : NULL;
    if (copy)
        for (size_t i = 0; i < n; i++)
            copy[i] = goc_error_retain(a->v[i]);
    goc__lock_release(&a->mu);
    if (n && !copy)
        return goc_error_new(-ENOMEM, NULL);
    /* Every error was dropped for want of memory (a cap keeps at least
     * one): NULL would say that none was added. */
    if (!n && dropped)
        return goc_error_new(-ENOMEM, "%zu errors dropped: out of memory",
                             dropped);
    char more[64];
    snprintf(more, sizeof more, "... and %zu more", dropped);
    goc_error *j = goc__error_join_suffix(copy, n, dropped ? more : NULL);
    for (size_t i = 0; i < n; i++)
        goc_error_release(copy[i]);
    goc__free(copy);
    return j;
}

size_t goc_error_agg_len(goc_error_agg *a)
{
    if (!a)
        return 0;
    goc__lock_acquire(&a->mu);
    size_t n = a->n;
    goc__lock_release(&a->mu);
    return n;
}

size_t goc_error_agg_dropped(goc_error_agg *a)
{
    if (!a)
        return 0;
    goc__lock_acquire(&a->mu);
    size_t n = a->dropped;
    goc__lock_release(&a->mu);
    return n;
}

size_t goc_error_agg_deduplicated(goc_error_agg *a)
{
    if (!a)
        return 0;
    goc__lock_acquire(&a->mu);
    size_t n = a->deduped;
    goc__lock_release(&a->mu);
    return n;
}

void goc_error_agg_reset(goc_error_agg *a)
{
    if (!a)
        return;
    goc__lock_acquire(&a->mu);
    goc_error **v = a->v;
    size_t n = a->n;
    a->v = NULL;
    a->n = a->cap = a->dropped = a->deduped = 0;
    goc__lock_release(&a->mu);
    for (size_t i = 0; i < n; i++)
        goc_error_release(v[i]);
    goc__free(v);
}
