/* SPDX-License-Identifier: MIT */
/*
 * singleflight: a hash table from key to the flight in progress, under
 * one mutex. A flight is a future; joiners wait on it, so the outcome
 * reaches every caller exactly once and nothing is ever closed twice.
 */
#include "goc/singleflight.h"
#include "patterns.h"
#include "goc/sync.h"
#include "../internal/alloc.h"

#include <string.h>

#define BUCKETS 64

struct flight {
    struct flight *next;
    char *key;
    goc_future *f; /* the table's reference */
    int64_t dups;  /* callers that joined, under mu */
};

struct goc_sf {
    goc_mutex mu;
    struct flight *bucket[BUCKETS];
};

int goc_sf_new(goc_sf **out)
{
    if (!out)
        return -EINVAL;
    *out = goc__calloc(1, sizeof(**out));
    return *out ? 0 : -ENOMEM;
}

static void flight_free(struct flight *fl)
{
    goc_future_release(fl->f);
    goc__free(fl->key);
    goc__free(fl);
}

void goc_sf_free(goc_sf *g)
{
    if (!g)
        return;
    for (int i = 0; i < BUCKETS; i++)
        for (struct flight *fl = g->bucket[i], *next; fl; fl = next) {
            next = fl->next;
            flight_free(fl);
        }
    goc__free(g);
}

static struct flight **slot(goc_sf *g, const char *key)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const char *p = key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    struct flight **pp = &g->bucket[h % BUCKETS];
    while (*pp && strcmp((*pp)->key, key) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Under mu: unlink @fl if it is still the flight of its key. */
static bool unlink_locked(goc_sf *g, struct flight *fl)
{
    struct flight **pp = slot(g, fl->key);
    if (*pp != fl)
        return false;
    *pp = fl->next;
    return true;
}

/*
 * Under mu: the flight for @key, joined (*@leader false) or new (*@leader
 * true, registered). NULL on ENOMEM.
 */
static struct flight *find_or_add_locked(goc_sf *g,
                                         const char *key,
                                         goc_value_free_fn free_value,
                                         bool *leader)
{
    struct flight **pp = slot(g, key);
    if (*pp) {
        (*pp)->dups++;
        *leader = false;
        return *pp;
    }
    struct flight *fl = goc__calloc(1, sizeof(*fl));
    size_t len = strlen(key) + 1;
    if (fl)
        fl->key = goc__malloc(len);
    if (!fl || !fl->key || goc_future_new(free_value, &fl->f) != 0) {
        if (fl)
            goc__free(fl->key);
        goc__free(fl);
        return NULL;
    }
    memcpy(fl->key, key, len);
    *pp = fl;
    *leader = true;
    return fl;
}

/* Runs the flight's function and retires the flight. */
static void run_flight(goc_sf *g,
                       struct flight *fl,
                       goc_task_fn fn,
                       void *arg,
                       goc_value_free_fn free_value,
                       goc_ctx *ctx)
{
    void *value = NULL;
    int rc = goc__safe_task(fn, ctx, arg, &value);
    /* Retire the key first, so a caller that comes after the outcome
     * starts a new flight instead of joining a finished one. */
    goc_mutex_lock(&g->mu, NULL);
    unlink_locked(g, fl); /* unless forgotten meanwhile */
    goc_mutex_unlock(&g->mu);
    if (goc_future_complete(fl->f, rc > 0 ? -EINVAL : rc, value) == 0 &&
        value && free_value)
        free_value(value);
}

int goc_sf_do(goc_sf *g,
              const char *key,
              goc_task_fn fn,
              void *arg,
              goc_value_free_fn free_value,
              goc_future **out,
              bool *shared,
              goc_ctx *ctx)
{
    if (!g || !key || !fn || !out)
        return -EINVAL;
    bool leader;
    goc_mutex_lock(&g->mu, NULL);
    struct flight *fl = find_or_add_locked(g, key, free_value, &leader);
    goc_future *f = fl ? goc_future_retain(fl->f) : NULL;
    goc_mutex_unlock(&g->mu);
    if (!fl)
        return -ENOMEM;
    if (leader) {
        run_flight(g, fl, fn, arg, free_value, ctx);
    } else {
        int st, rc = goc_future_get(f, &st, NULL, ctx);
        if (rc) {
            goc_future_release(f);
            return rc;
        }
    }
    bool dup = !leader; /* a joiner must not touch fl: the leader frees it */
    if (leader) {
        goc_mutex_lock(&g->mu, NULL);
        dup = fl->dups > 0; /* unlinked: no one can join any more */
        goc_mutex_unlock(&g->mu);
        flight_free(fl); /* the leader owns the flight; f is ours */
    }
    if (shared)
        *shared = dup;
    *out = f;
    return 0;
}

struct async_flight {
    goc_sf *g;
    struct flight *fl;
    goc_task_fn fn;
    void *arg;
    goc_value_free_fn free_value;
    goc_ctx *ctx;
};

static void async_main(void *p)
{
    struct async_flight *a = p;
    run_flight(a->g, a->fl, a->fn, a->arg, a->free_value, a->ctx);
    flight_free(a->fl);
    goc__free(a);
}

int goc_sf_do_async(goc_sf *g,
                    const char *key,
                    goc_task_fn fn,
                    void *arg,
                    goc_value_free_fn free_value,
                    goc_future **out,
                    goc_ctx *ctx)
{
    if (!g || !key || !fn || !out)
        return -EINVAL;
    struct async_flight *a = goc__malloc(sizeof(*a));
    if (!a)
        return -ENOMEM;
    bool leader = false;
    int rc = 0;
    goc_mutex_lock(&g->mu, NULL);
    struct flight *fl = find_or_add_locked(g, key, free_value, &leader);
    if (fl && leader) {
        *a = (struct async_flight){ g, fl, fn, arg, free_value, ctx };
        if ((rc = goc_go(async_main, a)) != 0) {
            unlink_locked(g, fl);
            flight_free(fl);
            fl = NULL;
        }
    }
    *out = fl ? goc_future_retain(fl->f) : NULL;
    goc_mutex_unlock(&g->mu);
    if (!leader || !fl)
        goc__free(a);
    return fl ? 0 : rc ? rc : -ENOMEM;
}

int goc_sf_forget(goc_sf *g, const char *key)
{
    if (!g || !key)
        return -EINVAL;
    goc_mutex_lock(&g->mu, NULL);
    struct flight **pp = slot(g, key);
    struct flight *fl = *pp;
    if (fl)
        *pp = fl->next;
    goc_mutex_unlock(&g->mu);
    return fl ? 1 : 0;
}

int64_t goc_sf_joined(goc_sf *g, const char *key)
{
    if (!g || !key)
        return 0;
    goc_mutex_lock(&g->mu, NULL);
    struct flight *fl = *slot(g, key);
    int64_t n = fl ? fl->dups : 0;
    goc_mutex_unlock(&g->mu);
    return n;
}
