/* SPDX-License-Identifier: MIT */
/*
 * singleflight: a hash table from key to the flight in progress, under
 * one mutex. A flight is a future; goc_sf_do() joiners wait on it, and
 * each goc_sf_do_async() caller gets a future of its own that a settle
 * callback of the flight's completes. So the outcome reaches every caller
 * exactly once, nothing is ever closed twice, and a caller that cancels
 * its future settles only itself.
 */
#include "goc/singleflight.h"
#include "patterns.h"
#include "goc/sync.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

#include <string.h>

#define BUCKETS 64

struct flight {
    struct flight *next;
    char *key;
    goc_future *f;   /* the table's reference */
    int64_t dups;    /* callers that joined, under mu */
    int64_t gave_up; /* goc_sf_do joiners gone before the outcome, under mu */
    bool counted;    /* its leader is a goc_sf_do() call, which reads them */
};

struct goc_sf {
    goc_mutex mu;
    goc_cond idle_cv; /* active reached 0 */
    /* Calls and flight goroutines that will still touch the group, under
     * mu: goc_sf_free() waits for them. */
    int64_t active;
    bool closed;
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

/* Under mu: one user of the group is done with it. */
static void leave_locked(goc_sf *g)
{
    if (--g->active == 0)
        goc_cond_broadcast(&g->idle_cv);
}

/* Under mu: a new call may use the group (0), or it is closed. */
static int enter_locked(goc_sf *g)
{
    if (g->closed)
        return GOC_ECLOSED;
    g->active++;
    return 0;
}

int goc_sf_close(goc_sf *g)
{
    if (!g)
        return -EINVAL;
    goc_mutex_lock(&g->mu, NULL);
    int rc = g->closed ? GOC_ECLOSED : 0;
    g->closed = true;
    goc_mutex_unlock(&g->mu);
    return rc;
}

void goc_sf_free(goc_sf *g)
{
    if (!g)
        return;
    goc_mutex_lock(&g->mu, NULL);
    g->closed = true;
    while (g->active)
        goc_cond_wait(&g->idle_cv, &g->mu, NULL);
    goc_mutex_unlock(&g->mu);
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

/* Runs the flight's function and retires the flight. Returns the panic
 * to raise again (GOC_RECOVER_RETHROW) once the caller has let go of
 * what it holds, or NULL. */
static goc_panic_info *run_flight(goc_sf *g,
                                  struct flight *fl,
                                  goc_task_fn fn,
                                  void *arg,
                                  goc_value_free_fn free_value,
                                  goc_ctx *ctx,
                                  bool last_touch)
{
    void *value = NULL;
    goc_panic_info *rethrow, *panic;
    int rc = goc__safe_task_inline(fn, ctx, arg, &value, &rethrow, &panic);
    /* Retire the key first, so a caller that comes after the outcome
     * starts a new flight instead of joining a finished one. */
    goc_mutex_lock(&g->mu, NULL);
    unlink_locked(g, fl); /* unless forgotten meanwhile */
    if (last_touch)       /* a flight goroutine: the group is not used again */
        leave_locked(g);
    goc_mutex_unlock(&g->mu);
    /* A panic goes to every caller with its info (goc_future_panic()),
     * as Go panics again in each of them. */
    if (panic)
        goc__future_fail_panic(fl->f, panic);
    else if (goc_future_complete(fl->f, rc > 0 ? -EINVAL : rc, value) == 0 &&
             value && free_value)
        free_value(value);
    return rethrow;
}

/*
 * A joiner's wait for the flight's outcome in f; 0, or @ctx's error if
 * it gave up first. For a goc_sf_do() leader (@counted, read at the
 * join), the giving up is counted under mu while the outcome is still to
 * come, so the leader, which reads the count under mu once the outcome is
 * there, sees every caller that did not get it, and fl is alive then:
 * the leader frees it after that read. A goc_sf_do_async() leader reads
 * no count, and frees fl as soon as the outcome is out: fl is not touched
 * for it. An outcome that arrived meanwhile is taken, as
 * goc_future_get() would.
 */
static int join_wait(
    goc_sf *g, struct flight *fl, bool counted, goc_future *f, goc_ctx *ctx)
{
    int st, rc = goc_future_get(f, &st, NULL, ctx);
    goc_mutex_lock(&g->mu, NULL);
    bool done = rc == 0 || goc_future_is_done(f);
    if (!done && counted)
        fl->gave_up++;
    leave_locked(g); /* a joiner touches the group no more */
    goc_mutex_unlock(&g->mu);
    return done ? 0 : rc;
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
    /* Done at entry: neither joined nor started (a flight led under it
     * would fail every joiner with this caller's cancel). */
    int err = goc_ctx_err(ctx);
    if (err)
        return err;
    bool leader;
    goc_mutex_lock(&g->mu, NULL);
    int rc = enter_locked(g);
    struct flight *fl =
        rc ? NULL : find_or_add_locked(g, key, free_value, &leader);
    goc_future *f = fl ? goc_future_retain(fl->f) : NULL;
    bool counted = false;
    if (fl) {
        if (leader)
            fl->counted = true;
        counted = fl->counted;
    } else if (!rc) {
        rc = -ENOMEM;
        leave_locked(g);
    }
    goc_mutex_unlock(&g->mu);
    if (rc)
        return rc;
    goc_panic_info *rethrow = NULL;
    if (leader) {
        rethrow = run_flight(g, fl, fn, arg, free_value, ctx, false);
    } else {
        rc = join_wait(g, fl, counted, f, ctx);
        if (rc) {
            goc_future_release(f);
            return rc;
        }
    }
    bool dup = !leader; /* a joiner must not touch fl: the leader frees it */
    if (leader) {
        goc_mutex_lock(&g->mu, NULL);
        /* Unlinked: no one can join any more, nor give up (the outcome
         * is there). */
        dup = fl->dups > fl->gave_up;
        leave_locked(g);
        goc_mutex_unlock(&g->mu);
        flight_free(fl); /* the leader owns the flight; f is ours */
    }
    if (rethrow) {
        /* The joined callers have their GOC_EPANIC; the leader panics
         * on, as the recovery handler's policy says (Go's does too). */
        goc_future_release(f);
        goc__panic_again(rethrow);
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
    goc_panic_info *rethrow =
        run_flight(a->g, a->fl, a->fn, a->arg, a->free_value, a->ctx, true);
    flight_free(a->fl);
    goc__free(a);
    if (rethrow)
        goc__panic_again(rethrow); /* on a goroutine of its own: the end */
}

static void release_flight(void *flight_future)
{
    goc_future_release(flight_future);
}

/*
 * The flight settled: pass its outcome on to one async caller's future
 * (@p, whose reference this callback holds). The caller's future borrows
 * the value, so it keeps the flight's future, the value's owner, alive.
 * A caller that cancelled its future keeps nothing: the outcome is the
 * others'.
 */
static void relay_outcome(goc_future *flight, void *p)
{
    goc_future *mine = p;
    int st;
    void *v = NULL;
    goc_future_try_get(flight, &st, &v);
    const goc_panic_info *panic = goc_future_panic(flight);
    if (panic) { /* a copy of its own (lost only if memory ran out) */
        goc__future_fail_panic(mine, goc__panic_info_dup(panic));
        goc_future_release(mine);
        return;
    }
    /* Until the release below, this callback's reference keeps mine from
     * being freed, so the owner can be attached after the outcome. */
    if (goc_future_complete(mine, st, v) == 1 && v)
        goc__future_on_free(mine, release_flight, goc_future_retain(flight));
    goc_future_release(mine);
}

/*
 * Under mu: join or start the flight for @key and subscribe @mine to it.
 * Return: 0, with *@started true if a goroutine now owns @a; -ENOMEM or
 * goc_go()'s error, with nothing joined or started.
 */
static int subscribe_locked(goc_sf *g,
                            const char *key,
                            struct async_flight *a,
                            goc_future *mine,
                            bool *started)
{
    bool leader;
    *started = false;
    struct flight *fl = find_or_add_locked(g, key, a->free_value, &leader);
    if (!fl)
        return -ENOMEM;
    /* The callback's reference: the caller may release mine before the
     * flight ends. A flight in the table is pending, so the callback is
     * not run here, under mu. */
    int rc = goc_future_on_settle(fl->f, relay_outcome, mine);
    if (rc == 0)
        goc_future_retain(mine);
    if (!leader) {
        if (rc)
            fl->dups--; /* it did not join after all */
        return rc;
    }
    a->fl = fl;
    if (rc == 0) {
        g->active++; /* the flight's goroutine, until it unlinks fl */
        if ((rc = goc_go(async_main, a)) == 0) {
            *started = true;
            return 0;
        }
        g->active--; /* the caller's own entry still holds it above 0 */
    }
    /* Nothing started. A registered relay runs when the table's reference
     * goes (the flight's future is abandoned) and lets go of mine. */
    unlink_locked(g, fl);
    flight_free(fl);
    return rc;
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
    int err = goc_ctx_err(ctx); /* as goc_sf_do() */
    if (err)
        return err;
    /* Each caller gets a future of its own, so that cancelling it settles
     * that caller only, never the others of the flight. Its value is
     * borrowed from the flight's future: no destructor. */
    goc_future *mine;
    struct async_flight *a = goc__malloc(sizeof(*a));
    if (!a || goc_future_new(NULL, &mine) != 0) {
        goc__free(a);
        return -ENOMEM;
    }
    *a = (struct async_flight){ g, NULL, fn, arg, free_value, ctx };
    bool started = false;
    goc_mutex_lock(&g->mu, NULL);
    int rc = enter_locked(g);
    if (!rc) {
        rc = subscribe_locked(g, key, a, mine, &started);
        leave_locked(g); /* this caller touches the group no more */
    }
    goc_mutex_unlock(&g->mu);
    if (!started)
        goc__free(a); /* joined, or failed: no goroutine owns it */
    if (rc) {
        goc_future_release(mine);
        mine = NULL;
    }
    *out = mine;
    return rc;
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
