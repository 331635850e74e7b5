/* SPDX-License-Identifier: MIT */
/*
 * Keyed rate limiter: a hash table of token buckets with an LRU list, so
 * memory stays bounded by max_keys however many keys arrive. The list is
 * kept in order of last use, so buckets idle for idle_ttl are dropped
 * from its tail on the next call. One mutex
 * covers the table; the bucket arithmetic is goc_limiter's.
 */
#include "goc/ratelimit.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../internal/fastclock.h"
#include "../internal/lock.h"
#include "patterns.h"

#include <math.h>
#include <string.h>

struct kentry {
    struct kentry *hnext;       /* hash chain */
    struct kentry *prev, *next; /* LRU list, most recent first */
    goc_limiter *lim;
    uint64_t hash;
    int64_t used; /* last use, on the clock */
    size_t len;
    unsigned char key[];
};

struct goc_keyed_limiter {
    goc__lock mu;
    double limit;
    int64_t burst, max_keys, idle_ttl;
    goc_clock clock;
    struct kentry **table;
    size_t nbuckets;
    struct kentry *head, *tail;
    struct goc_keyed_limiter_stats st;
};

/* now - then, clamped: _at times may be anywhere in int64_t. */
static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static uint64_t hash_key(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

int goc_keyed_limiter_new(double limit,
                          int64_t burst,
                          int64_t max_keys,
                          int64_t idle_ttl,
                          const goc_clock *clock,
                          goc_keyed_limiter **out)
{
    /* Every bucket is a goc_limiter: refuse what goc_limiter_new() would. */
    if (!out || !isfinite(limit) || limit < 0 || burst < 0 || max_keys < 1 ||
        max_keys > ((int64_t)1 << 40))
        return -EINVAL;
    goc_keyed_limiter *kl = goc__calloc(1, sizeof *kl);
    if (!kl)
        return -ENOMEM;
    size_t nb = 16;
    while ((int64_t)nb < max_keys && nb < ((size_t)1 << 30))
        nb <<= 1;
    kl->table = goc__calloc(nb, sizeof *kl->table);
    if (!kl->table) {
        goc__free(kl);
        return -ENOMEM;
    }
    kl->nbuckets = nb;
    kl->limit = limit;
    kl->burst = burst;
    kl->max_keys = max_keys;
    kl->idle_ttl = idle_ttl;
    if (clock)
        kl->clock = *clock;
    *out = kl;
    return 0;
}

static void lru_unlink(goc_keyed_limiter *kl, struct kentry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        kl->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        kl->tail = e->prev;
    e->prev = e->next = NULL;
}

/*
 * Link e where its last use puts it, newest first, so that the tail is
 * always the bucket idle longest, which expiry relies on. Usually that is
 * the head; a call's time may be older than others already in, though:
 * the _at variants take any time, and concurrent callers read the clock
 * before they take the lock.
 */
static void lru_place(goc_keyed_limiter *kl, struct kentry *e)
{
    struct kentry *prev = NULL, *next = kl->head;
    while (next && next->used > e->used) {
        prev = next;
        next = next->next;
    }
    e->prev = prev;
    e->next = next;
    *(prev ? &prev->next : &kl->head) = e;
    *(next ? &next->prev : &kl->tail) = e;
}

static void drop(goc_keyed_limiter *kl, struct kentry *e)
{
    struct kentry **pp = &kl->table[e->hash & (kl->nbuckets - 1)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    lru_unlink(kl, e);
    goc_limiter_free(e->lim);
    goc__free(e);
    kl->st.keys--;
}

void goc_keyed_limiter_free(goc_keyed_limiter *kl)
{
    if (!kl)
        return;
    while (kl->tail)
        drop(kl, kl->tail);
    goc__free(kl->table);
    goc__free(kl);
}

static struct kentry *find(goc_keyed_limiter *kl,
                           const void *key,
                           size_t len,
                           uint64_t h)
{
    struct kentry *e = kl->table[h & (kl->nbuckets - 1)];
    for (; e; e = e->hnext)
        /* The empty key may come as NULL: memcmp() takes no NULL. */
        if (e->hash == h && e->len == len &&
            (!len || memcmp(e->key, key, len) == 0))
            return e;
    return NULL;
}

static struct kentry *insert(
    goc_keyed_limiter *kl, const void *key, size_t len, uint64_t h, int64_t now)
{
    struct kentry *e = goc__malloc(sizeof *e + len);
    if (!e)
        return NULL;
    memset(e, 0, sizeof *e);
    /* Started at the call's own time: reading the clock here would call
     * the user's clock under the lock. */
    goc_clock *c = kl->clock.now ? &kl->clock : NULL;
    if (goc__limiter_new_at(kl->limit, kl->burst, c, now, &e->lim) != 0) {
        goc__free(e);
        return NULL;
    }
    if (kl->st.keys >= kl->max_keys) {
        drop(kl, kl->tail);
        kl->st.evicted++;
    }
    e->hash = h;
    e->len = len;
    e->used = now;
    if (len)
        memcpy(e->key, key, len);
    struct kentry **slot = &kl->table[h & (kl->nbuckets - 1)];
    e->hnext = *slot;
    *slot = e;
    lru_place(kl, e);
    kl->st.keys++;
    return e;
}

bool goc_keyed_limiter_allow_n_at(
    goc_keyed_limiter *kl, const void *key, size_t len, int64_t now, int64_t n)
{
    if (!kl || (!key && len) || n < 0)
        return false;
    uint64_t h = hash_key(key, len);
    goc__lock_acquire(&kl->mu);
    /* It can never pass (as goc_limiter_allow_n_at() says): no bucket is
     * made for it, so no other key is evicted and handed a new burst. */
    if (n > kl->burst && kl->limit != GOC_RATE_INF) {
        kl->st.rejected++;
        goc__lock_release(&kl->mu);
        return false;
    }
    /* Expire idle buckets from the cold end. */
    while (kl->idle_ttl > 0 && kl->tail &&
           sat_sub(now, kl->tail->used) >= kl->idle_ttl) {
        drop(kl, kl->tail);
        kl->st.expired++;
    }
    struct kentry *e = find(kl, key, len, h);
    if (!e)
        e = insert(kl, key, len, h, now);
    bool ok = false;
    if (e) {
        ok = goc_limiter_allow_n_at(e->lim, now, n);
        if (now >= e->used) { /* an older time does not make it idler */
            e->used = now;
            lru_unlink(kl, e);
            lru_place(kl, e);
        }
    }
    if (ok)
        kl->st.allowed++;
    else
        kl->st.rejected++;
    goc__lock_release(&kl->mu);
    return ok;
}

bool goc_keyed_limiter_allow(goc_keyed_limiter *kl, const void *key, size_t len)
{
    if (!kl)
        return false;
    /* The same default clock as its buckets (see ratelimit.c). */
    int64_t now =
        kl->clock.now ? kl->clock.now(kl->clock.arg) : goc__fastclock();
    return goc_keyed_limiter_allow_n_at(kl, key, len, now, 1);
}

void goc_keyed_limiter_stats(goc_keyed_limiter *kl,
                             struct goc_keyed_limiter_stats *st)
{
    if (!kl || !st)
        return;
    goc__lock_acquire(&kl->mu);
    *st = kl->st;
    goc__lock_release(&kl->mu);
}
