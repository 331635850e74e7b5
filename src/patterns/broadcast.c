/* SPDX-License-Identifier: MIT */
/*
 * Broadcaster. Each subscription is a buffered goc channel that only the
 * broadcaster sends on and closes; subscribers receive.
 *
 * Locks: pub_mu serialises publishes (so every subscriber sees one total
 * order); mu guards the subscriber list and the closed flag. A publish
 * takes a snapshot of the list (with references) under mu and sends with
 * mu released, so subscribe and unsubscribe never wait for a slow
 * subscriber. The invariant that makes closing safe: a subscription's
 * channel is closed exactly once, by whoever unlinks it from the list
 * under mu; a publish still holding it in its snapshot then gets -EPIPE
 * from the closed channel and counts the message as dropped. goc
 * channels, unlike Go's, report a send on a closed channel instead of
 * crashing, so no send can race a close into a crash.
 *
 * Close first marks the broadcaster closed and closes the closing
 * channel, which ends the GOC_BLOCK waits of the publish in flight; then
 * it waits for that publish to finish, so that every other subscriber it
 * had at entry still gets the message; only then does it unlink and close
 * the subscriptions.
 */
#include "goc/pattern.h"
#include "goc/sync.h"
#include "patterns.h"
#include "../chan/chan.h"
#include "../internal/alloc.h"

#include <stdatomic.h>

struct goc_sub {
    _Atomic int refs;
    struct goc_sub *next; /* in the list, under the broadcaster's mu */
    goc_chan *ch;
    enum goc_overflow policy;
    int64_t block_timeout;
    bool linked; /* under mu */
    _Atomic int64_t delivered, dropped, evicted;
    _Atomic bool disconnected;
};

struct goc_bcast {
    goc_mutex mu, pub_mu;
    goc_chan *closing;    /* closed by close: ends GOC_BLOCK waits */
    struct goc_sub *subs; /* under mu */
    int64_t nsubs;
    size_t elem_size;
    bool closed;
    void *scratch; /* DROP_OLDEST eviction buffer, under pub_mu */
    /* goc_bcast_close_on(): bound once, under mu; the watch's run is
     * counted in watch_wg until it has closed us. */
    bool ctx_bound;
    goc_ctx_after ctx_after;
    goc_wg watch_wg;
    /* Under mu: publishes queued for pub_mu, which free waits for (one
     * may get it after close). */
    int64_t publishing;
    bool freeing;
    goc_cond quiet_cv;
};

int goc_bcast_new(size_t elem_size, goc_bcast **out)
{
    if (!out)
        return -EINVAL;
    goc_bcast *b = goc__calloc(1, sizeof(*b));
    if (b)
        b->scratch = goc__malloc(elem_size ? elem_size : 1);
    if (!b || !b->scratch || goc_chan_new(0, 0, &b->closing) != 0) {
        if (b)
            goc__free(b->scratch);
        goc__free(b);
        return -ENOMEM;
    }
    b->elem_size = elem_size;
    *out = b;
    return 0;
}

static goc_sub *sub_retain(goc_sub *s)
{
    atomic_fetch_add(&s->refs, 1);
    return s;
}

void goc_sub_release(goc_sub *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    goc_chan_release(s->ch);
    goc__free(s);
}

int goc_bcast_subscribe(goc_bcast *b,
                        size_t buf_cap,
                        enum goc_overflow policy,
                        int64_t block_timeout,
                        goc_sub **out)
{
    /* A timeout for a policy that never waits is a mistaken policy. */
    if (!b || !out || buf_cap < 1 || (unsigned)policy > GOC_DISCONNECT ||
        block_timeout < 0 || (block_timeout && policy != GOC_BLOCK))
        return -EINVAL;
    goc_sub *s = goc__calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    int rc = goc_chan_new(b->elem_size, buf_cap, &s->ch);
    if (rc) {
        goc__free(s);
        return rc;
    }
    s->ch->recv_only = true;  /* the subscriber receives; we send, close */
    atomic_init(&s->refs, 2); /* the caller's and the list's */
    s->policy = policy;
    s->block_timeout = block_timeout;
    goc_mutex_lock(&b->mu, NULL);
    if (!(rc = b->closed ? GOC_ECLOSED : 0)) {
        s->next = b->subs;
        b->subs = s;
        s->linked = true;
        b->nsubs++;
    }
    goc_mutex_unlock(&b->mu);
    if (rc) {
        atomic_store(&s->refs, 1);
        goc_sub_release(s);
        return rc;
    }
    *out = s;
    return 0;
}

int goc_sub_recv(goc_sub *s, void *elem, goc_ctx *ctx)
{
    return s ? goc_chan_recv(s->ch, elem, ctx) : -EINVAL;
}

goc_chan *goc_sub_chan(goc_sub *s)
{
    return s ? s->ch : NULL;
}

int goc_sub_stats(goc_sub *s, struct goc_sub_stats *st)
{
    if (!s || !st)
        return -EINVAL;
    *st = (struct goc_sub_stats){ atomic_load(&s->delivered),
                                  atomic_load(&s->dropped),
                                  atomic_load(&s->evicted),
                                  atomic_load(&s->disconnected) };
    return 0;
}

/* Under mu: unlink @s if it is in the list; the caller closes it. */
static bool unlink_locked(goc_bcast *b, goc_sub *s)
{
    for (goc_sub **pp = &b->subs; *pp; pp = &(*pp)->next) {
        if (*pp != s)
            continue;
        *pp = s->next;
        s->linked = false;
        b->nsubs--;
        return true;
    }
    return false; /* compared by address only: foreign handles are safe */
}

/* After unlinking: close the channel and drop the list's reference. */
static void retire(goc_sub *s)
{
    goc__chan_close_owned(s->ch);
    goc_sub_release(s);
}

int goc_bcast_unsubscribe(goc_bcast *b, goc_sub *s)
{
    if (!b || !s)
        return -EINVAL;
    goc_mutex_lock(&b->mu, NULL);
    bool found = unlink_locked(b, s);
    goc_mutex_unlock(&b->mu);
    if (!found)
        return -EINVAL;
    retire(s);
    return 0;
}

static void disconnect(goc_bcast *b, goc_sub *s)
{
    goc_mutex_lock(&b->mu, NULL);
    bool found = unlink_locked(b, s);
    goc_mutex_unlock(&b->mu);
    if (found) {
        atomic_store(&s->disconnected, true);
        retire(s);
    }
}

/*
 * GOC_DROP_OLDEST on a full buffer: evict the oldest and send. Only we
 * send, so once one is evicted there is room, unless the subscriber took
 * one first: either way the retry fits. Under mu, while still linked: an
 * unsubscribe closes the channel only after unlinking it, and the values
 * buffered then are the receiver's to drain, not ours to evict.
 */
static int deliver_evicting(goc_bcast *b, goc_sub *s, const void *msg)
{
    int rc = GOC_ECLOSED;
    goc_mutex_lock(&b->mu, NULL);
    if (s->linked) {
        if (goc_chan_try_recv(s->ch, b->scratch) > 0)
            atomic_fetch_add(&s->evicted, 1);
        rc = goc__chan_try_send_owned(s->ch, msg);
    }
    goc_mutex_unlock(&b->mu);
    return rc;
}

/* GOC_BLOCK: wait for room, until ctx, the subscriber's timeout or a
 * close of the broadcaster ends the wait. 0 if sent. */
static int deliver_blocking(goc_bcast *b,
                            goc_sub *s,
                            const void *msg,
                            goc_ctx *ctx)
{
    goc_ctx_local local;
    goc_ctx *c = ctx;
    if (s->block_timeout)
        c = goc_ctx_init_timeout(&local, ctx, s->block_timeout);
    struct goc_select_case cases[2] = {
        { .chan = s->ch, .op = GOC_SELECT_SEND, .elem = (void *)msg },
        { .chan = b->closing, .op = GOC_SELECT_RECV },
    };
    int rc = goc__select_owned(cases, 2, GOC_SELECT_PRIORITY, c);
    if (c != ctx)
        goc_ctx_destroy(c);
    if (rc == 0)
        return cases[0].result;
    return rc < 0 ? rc : GOC_ECLOSED;
}

/* One subscriber, by its policy. Returns true if it got the message. */
static bool deliver(goc_bcast *b, goc_sub *s, const void *msg, goc_ctx *ctx)
{
    int rc = goc__chan_try_send_owned(s->ch, msg);
    if (rc == -EAGAIN && s->policy == GOC_DROP_OLDEST) {
        rc = deliver_evicting(b, s, msg);
    } else if (rc == -EAGAIN && s->policy == GOC_BLOCK) {
        rc = deliver_blocking(b, s, msg, ctx);
    } else if (rc == -EAGAIN && s->policy == GOC_DISCONNECT) {
        disconnect(b, s);
    }
    atomic_fetch_add(rc == 0 ? &s->delivered : &s->dropped, 1);
    return rc == 0;
}

/* Under mu: the subscribers now, each with a reference. */
static int snapshot_locked(goc_bcast *b, goc_sub ***out, int64_t *n)
{
    *n = 0;
    *out = NULL;
    if (!b->nsubs)
        return 0;
    goc_sub **v = goc__malloc((size_t)b->nsubs * sizeof(*v));
    if (!v)
        return -ENOMEM;
    *n = b->nsubs;
    int64_t i = 0;
    for (goc_sub *s = b->subs; s; s = s->next)
        v[i++] = sub_retain(s);
    *out = v;
    return 0;
}

int goc_bcast_publish(goc_bcast *b,
                      const void *msg,
                      int64_t *dropped,
                      goc_ctx *ctx)
{
    if (!b || (!msg && b->elem_size))
        return -EINVAL;
    /* Behind another publish the wait is bounded by ctx; alone, a
     * publish runs even with ctx done, which then only ends GOC_BLOCK
     * waits. Only a publish that waits is counted for free: one holding
     * pub_mu is waited for by close, and touches nothing after. */
    int err = goc_mutex_try_lock(&b->pub_mu);
    bool queued = err != 0;
    if (queued) {
        goc_mutex_lock(&b->mu, NULL);
        b->publishing++;
        goc_mutex_unlock(&b->mu);
        err = goc_mutex_lock(&b->pub_mu, ctx);
    }
    goc_sub **v = NULL;
    int64_t n = 0, got = 0;
    int rc = err;
    if (!err) {
        goc_mutex_lock(&b->mu, NULL);
        rc = b->closed ? GOC_ECLOSED : snapshot_locked(b, &v, &n);
        goc_mutex_unlock(&b->mu);
        for (int64_t i = 0; i < n; i++) {
            got += deliver(b, v[i], msg, ctx);
            goc_sub_release(v[i]);
        }
        goc_mutex_unlock(&b->pub_mu);
    }
    if (queued) {
        goc_mutex_lock(&b->mu, NULL);
        if (--b->publishing == 0 && b->freeing)
            goc_cond_broadcast(&b->quiet_cv);
        goc_mutex_unlock(&b->mu);
    }
    goc__free(v);
    if (dropped)
        *dropped = rc ? 0 : n - got;
    return rc ? rc : (int)got;
}

int goc_bcast_close(goc_bcast *b)
{
    if (!b)
        return -EINVAL;
    goc_mutex_lock(&b->mu, NULL);
    bool was = b->closed;
    b->closed = true;
    goc_mutex_unlock(&b->mu);
    if (was)
        return GOC_ECLOSED;
    goc_chan_close(b->closing); /* a GOC_BLOCK wait in flight ends */
    /* The publish in flight finishes with every other subscriber. */
    goc_mutex_lock(&b->pub_mu, NULL);
    goc_mutex_lock(&b->mu, NULL);
    goc_sub *all = b->subs;
    b->subs = NULL;
    b->nsubs = 0;
    for (goc_sub *s = all; s; s = s->next)
        s->linked = false;
    goc_mutex_unlock(&b->mu);
    goc_mutex_unlock(&b->pub_mu);
    while (all) {
        goc_sub *next = all->next;
        retire(all);
        all = next;
    }
    return 0;
}

int64_t goc_bcast_subscribers(goc_bcast *b)
{
    if (!b)
        return 0;
    goc_mutex_lock(&b->mu, NULL);
    int64_t n = b->nsubs;
    goc_mutex_unlock(&b->mu);
    return n;
}

static void close_on_ctx(void *arg)
{
    goc_bcast *b = arg;
    goc_bcast_close(b);
    goc_wg_done(&b->watch_wg);
}

int goc_bcast_close_on(goc_bcast *b, goc_ctx *ctx)
{
    if (!b || !ctx)
        return -EINVAL;
    goc_mutex_lock(&b->mu, NULL);
    bool busy = b->ctx_bound;
    b->ctx_bound = true;
    goc_mutex_unlock(&b->mu);
    if (busy)
        return -EBUSY;
    goc_wg_add(&b->watch_wg, 1);
    return goc_ctx_after_func(ctx, close_on_ctx, b, &b->ctx_after);
}

void goc_bcast_free(goc_bcast *b)
{
    if (!b)
        return;
    goc_mutex_lock(&b->mu, NULL);
    bool bound = b->ctx_bound;
    goc_mutex_unlock(&b->mu);
    if (bound) {
        if (goc_ctx_after_stop(&b->ctx_after))
            goc_wg_done(&b->watch_wg);   /* its close will never run */
        goc_wg_wait(&b->watch_wg, NULL); /* or has ended */
    }
    goc_bcast_close(b);
    /* A publish queued for pub_mu behind the close gets it after: wait
     * until every publish has left. */
    goc_mutex_lock(&b->mu, NULL);
    b->freeing = true;
    while (b->publishing)
        goc_cond_wait(&b->quiet_cv, &b->mu, NULL);
    goc_mutex_unlock(&b->mu);
    goc_chan_release(b->closing);
    goc__free(b->scratch);
    goc__free(b);
}

int64_t goc__bcast_publishing(goc_bcast *b)
{
    goc_mutex_lock(&b->mu, NULL);
    int64_t n = b->publishing;
    goc_mutex_unlock(&b->mu);
    return n;
}
