/* SPDX-License-Identifier: MIT */
/*
 * Named channel registry (the seed's ChannelPool, with its ownership
 * fixed): the registry creates, sends on and closes its channels; users
 * receive. A send racing with remove or close gets GOC_ECLOSED, because
 * a goc channel closed under a blocked sender wakes it with -EPIPE.
 */
#include "goc/pattern.h"
#include "goc/sync.h"
#include "../chan/chan.h"
#include "../internal/alloc.h"

#include <string.h>

struct entry {
    struct entry *next;
    goc_chan *ch; /* the registry's reference */
    char name[];
};

struct goc_chanreg {
    goc_mutex mu;
    struct entry *list; /* under mu */
    size_t elem_size, per_cap;
    int64_t max, count;
    bool closed;
};

int goc_chanreg_new(size_t elem_size,
                    size_t per_cap,
                    int64_t max_channels,
                    goc_chanreg **out)
{
    size_t stride;
    if (!out || max_channels < 0 ||
        goc__chan_stride(elem_size, per_cap, &stride) != 0)
        return -EINVAL; /* refused now, not by every later get */
    goc_chanreg *r = goc__calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->elem_size = elem_size;
    r->per_cap = per_cap;
    r->max = max_channels;
    *out = r;
    return 0;
}

static struct entry **find_locked(goc_chanreg *r, const char *name)
{
    struct entry **pp = &r->list;
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

/* Under mu: the entry for @name, created if needed. */
static int get_locked(goc_chanreg *r, const char *name, struct entry **res)
{
    if (r->closed)
        return GOC_ECLOSED;
    struct entry **pp = find_locked(r, name);
    if (*pp) {
        *res = *pp;
        return 0;
    }
    if (r->max && r->count >= r->max)
        return GOC_EOVERLOAD;
    size_t len = strlen(name) + 1;
    struct entry *e = goc__calloc(1, sizeof(*e) + len);
    if (!e)
        return -ENOMEM;
    int rc = goc_chan_new(r->elem_size, r->per_cap, &e->ch);
    if (rc) {
        goc__free(e);
        return rc;
    }
    e->ch->recv_only = true; /* users receive; the registry sends, closes */
    memcpy(e->name, name, len);
    *pp = e;
    r->count++;
    *res = e;
    return 0;
}

static int get_ref(goc_chanreg *r, const char *name, goc_chan **out)
{
    if (!r || !name || !out)
        return -EINVAL;
    struct entry *e;
    goc_mutex_lock(&r->mu, NULL);
    int rc = get_locked(r, name, &e);
    *out = rc ? NULL : goc_chan_retain(e->ch);
    goc_mutex_unlock(&r->mu);
    return rc;
}

int goc_chanreg_get(goc_chanreg *r, const char *name, goc_chan **out)
{
    return get_ref(r, name, out);
}

int goc_chanreg_send(goc_chanreg *r,
                     const char *name,
                     const void *elem,
                     goc_ctx *ctx)
{
    goc_chan *c;
    if (!r || !name || (!elem && r->elem_size))
        return -EINVAL; /* before a channel is made for it */
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    if ((rc = get_ref(r, name, &c)) != 0)
        return rc;
    rc = goc__chan_send_owned(c, elem, ctx);
    goc_chan_release(c);
    return rc == -EPIPE ? GOC_ECLOSED : rc;
}

static void entry_close(struct entry *e)
{
    goc__chan_close_owned(e->ch);
    goc_chan_release(e->ch);
    goc__free(e);
}

int goc_chanreg_remove(goc_chanreg *r, const char *name)
{
    if (!r || !name)
        return -EINVAL;
    goc_mutex_lock(&r->mu, NULL);
    bool closed = r->closed;
    struct entry **pp = find_locked(r, name), *e = *pp;
    if (e && !closed) {
        *pp = e->next;
        r->count--;
    }
    goc_mutex_unlock(&r->mu);
    if (closed)
        return GOC_ECLOSED;
    if (!e)
        return -ENOENT;
    entry_close(e);
    return 0;
}

int goc_chanreg_close(goc_chanreg *r)
{
    if (!r)
        return -EINVAL;
    goc_mutex_lock(&r->mu, NULL);
    bool was = r->closed;
    struct entry *all = r->list;
    r->closed = true;
    r->list = NULL;
    r->count = 0;
    goc_mutex_unlock(&r->mu);
    while (all) {
        struct entry *next = all->next;
        entry_close(all);
        all = next;
    }
    return was ? GOC_ECLOSED : 0;
}

int64_t goc_chanreg_count(goc_chanreg *r)
{
    if (!r)
        return 0;
    goc_mutex_lock(&r->mu, NULL);
    int64_t n = r->count;
    goc_mutex_unlock(&r->mu);
    return n;
}

void goc_chanreg_free(goc_chanreg *r)
{
    if (!r)
        return;
    goc_chanreg_close(r);
    goc__free(r);
}
