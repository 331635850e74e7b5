/* SPDX-License-Identifier: MIT */
/*
 * Channels: Go's algorithm. One lock per channel, FIFO queues of blocked
 * senders and receivers, and a value handed straight from a sender to a
 * parked receiver (or back) without passing through the buffer. The wait
 * records live on the blocked party's own stack; the peer that dequeues
 * one claims the wait first, so a receiver in a select, or one whose
 * context just ended, is never handed two values or a value and an error.
 */
#include "chan.h"
#include "../internal/alloc.h"

#include <string.h>

/* ---- wait queues ------------------------------------------------------ */

void goc__waitq_push(struct goc__waitq *q, struct goc__sudog *s)
{
    s->next = NULL;
    s->prev = q->tail;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    s->linked = true;
}

void goc__waitq_remove(struct goc__waitq *q, struct goc__sudog *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        q->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        q->tail = s->prev;
    s->next = s->prev = NULL;
    s->linked = false;
}

struct goc__sudog *goc__waitq_claim(struct goc__waitq *q)
{
    struct goc__sudog *s;
    while ((s = q->head)) {
        goc__waitq_remove(q, s);
        /* Lost: its select or context already woke it. Skip it. */
        if (goc__wait_claim(s->w, s->index))
            return s;
    }
    return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

int goc_chan_new(size_t elem_size, size_t cap, goc_chan **out)
{
    if (!out)
        return -EINVAL;
    if (elem_size && cap > (SIZE_MAX - sizeof(struct goc_chan)) / elem_size)
        return -EINVAL;
    struct goc_chan *c = goc__aligned_alloc(_Alignof(struct goc_chan),
                                            sizeof(*c) + elem_size * cap);
    if (!c)
        return -ENOMEM;
    memset(c, 0, sizeof(*c));
    c->lock = (goc__lock)GOC__LOCK_INIT;
    atomic_init(&c->refs, 1);
    c->elem_size = elem_size;
    c->cap = cap;
    c->buf = (char *)(c + 1);
    *out = c;
    return 0;
}

goc_chan *goc_chan_retain(goc_chan *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void goc_chan_release(goc_chan *c)
{
    if (!c)
        return;
    /* Acq_rel: the last releaser sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) == 1)
        goc__free(c);
}

/* ---- completing without waiting --------------------------------------- */

static inline void copy_elem(struct goc_chan *c, void *dst, const void *src)
{
    if (!dst)
        return;
    /* Word-sized elements are the common case: no call to memcpy. */
    switch (c->elem_size) {
    case 0:
        break;
    case sizeof(uint64_t):
        memcpy(dst, src, sizeof(uint64_t));
        break;
    case sizeof(uint32_t):
        memcpy(dst, src, sizeof(uint32_t));
        break;
    default:
        memcpy(dst, src, c->elem_size);
    }
}

bool goc__chan_try_send_locked(struct goc_chan *c,
                               const void *elem,
                               int *result,
                               struct goc__sudog **wake)
{
    if (c->closed) {
        *result = -EPIPE;
        return true;
    }
    struct goc__sudog *r = c->recvq.head ? goc__waitq_claim(&c->recvq) : NULL;
    if (r) {
        copy_elem(c, r->elem, elem);
        r->success = true;
        *wake = r;
        *result = 0;
        return true;
    }
    if (c->count < c->cap) {
        copy_elem(c, c->buf + c->sendx * c->elem_size, elem);
        if (++c->sendx == c->cap)
            c->sendx = 0;
        c->count++;
        *result = 0;
        return true;
    }
    return false;
}

bool goc__chan_try_recv_locked(struct goc_chan *c,
                               void *elem,
                               int *result,
                               struct goc__sudog **wake)
{
    struct goc__sudog *s = c->sendq.head ? goc__waitq_claim(&c->sendq) : NULL;
    if (s) {
        if (c->cap == 0) {
            copy_elem(c, elem, s->elem);
        } else {
            /* Full buffer: take its head, the sender's value goes last. */
            char *slot = c->buf + c->recvx * c->elem_size;
            copy_elem(c, elem, slot);
            copy_elem(c, slot, s->elem);
            if (++c->recvx == c->cap)
                c->recvx = 0;
            c->sendx = c->recvx;
        }
        s->success = true;
        *wake = s;
        *result = 1;
        return true;
    }
    if (c->count > 0) {
        copy_elem(c, elem, c->buf + c->recvx * c->elem_size);
        if (++c->recvx == c->cap)
            c->recvx = 0;
        c->count--;
        *result = 1;
        return true;
    }
    if (c->closed) {
        if (elem && c->elem_size)
            memset(elem, 0, c->elem_size);
        *result = 0;
        return true;
    }
    return false;
}

/* ---- blocking --------------------------------------------------------- */

static void chan_unlock(void *c)
{
    goc__lock_release(&((struct goc_chan *)c)->lock);
}

static bool try_locked(struct goc_chan *c,
                       bool send,
                       void *elem,
                       int *result,
                       struct goc__sudog **wake)
{
    return send ? goc__chan_try_send_locked(c, elem, result, wake)
                : goc__chan_try_recv_locked(c, elem, result, wake);
}

/* Unlock c, then wake the peer a completed operation took. */
static int done_unlock(struct goc_chan *c, int result, struct goc__sudog *wake)
{
    goc__lock_release(&c->lock);
    if (wake)
        goc__wait_finish(wake->w);
    return result;
}

/*
 * Entered with c->lock held and the operation unable to complete. A
 * context is registered with the channel unlocked (a context's cancel
 * closes its done channel under the context's lock, so the two locks are
 * never held together this way round), then the channel is re-checked.
 */
static int block(struct goc_chan *c, bool send, void *elem, goc_ctx *ctx)
{
    struct goc__wait w;
    struct goc__ctx_watch cw = { .cc = NULL };
    struct goc__sudog s = { .w = &w, .elem = elem, .index = 0 };
    int result = 0;
    struct goc__sudog *wake = NULL;
    goc__wait_init(&w, send ? GOC__WAIT_CHAN_SEND : GOC__WAIT_CHAN_RECV);
    if (goc__ctx_canceller(ctx)) {
        goc__lock_release(&c->lock);
        int err = goc__ctx_watch(ctx, &cw, &w, 1);
        if (err)
            return err;
        goc__lock_acquire(&c->lock);
        if (try_locked(c, send, elem, &result, &wake)) {
            done_unlock(c, result, wake);
            goc__ctx_unwatch(&cw);
            return result;
        }
    }
    struct goc__waitq *q = send ? &c->sendq : &c->recvq;
    goc__waitq_push(q, &s);
    if (goc__wait_block(&w, chan_unlock, c) == 0) {
        goc__ctx_unwatch(&cw);
        if (send)
            return s.success ? 0 : -EPIPE;
        return s.success ? 1 : 0;
    }
    /* The context ended first: leave the channel as if never called. */
    goc__lock_acquire(&c->lock);
    if (s.linked)
        goc__waitq_remove(q, &s);
    goc__lock_release(&c->lock);
    return goc_ctx_err(ctx);
}

static int chan_op(
    struct goc_chan *c, bool send, void *elem, goc_ctx *ctx, bool may_block)
{
    if (!c)
        return -EINVAL;
    if (ctx) {
        int err = goc_ctx_err(ctx);
        if (err)
            return err;
    }
    int result = 0;
    struct goc__sudog *wake = NULL;
    goc__lock_acquire(&c->lock);
    if (try_locked(c, send, elem, &result, &wake))
        return done_unlock(c, result, wake);
    if (!may_block) {
        goc__lock_release(&c->lock);
        return -EAGAIN;
    }
    return block(c, send, elem, ctx);
}

int goc_chan_send(goc_chan *c, const void *elem, goc_ctx *ctx)
{
    return chan_op(c, true, (void *)elem, ctx, true);
}

int goc_chan_recv(goc_chan *c, void *elem, goc_ctx *ctx)
{
    return chan_op(c, false, elem, ctx, true);
}

int goc_chan_try_send(goc_chan *c, const void *elem)
{
    return chan_op(c, true, (void *)elem, NULL, false);
}

int goc_chan_try_recv(goc_chan *c, void *elem)
{
    return chan_op(c, false, elem, NULL, false);
}

/* ---- close and queries ------------------------------------------------ */

int goc_chan_close(goc_chan *c)
{
    if (!c)
        return GOC_EMISUSE;
    goc__lock_acquire(&c->lock);
    if (c->closed) {
        goc__lock_release(&c->lock);
        return GOC_EMISUSE;
    }
    c->closed = true;
    struct goc__sudog *woken = NULL, *s;
    while ((s = goc__waitq_claim(&c->recvq))) {
        if (s->elem && c->elem_size)
            memset(s->elem, 0, c->elem_size);
        s->success = false;
        s->next = woken;
        woken = s;
    }
    while ((s = goc__waitq_claim(&c->sendq))) {
        s->success = false;
        s->next = woken;
        woken = s;
    }
    goc__lock_release(&c->lock);
    while (woken) {
        s = woken;
        woken = s->next; /* s may vanish once finished */
        goc__wait_finish(s->w);
    }
    return 0;
}

size_t goc_chan_len(goc_chan *c)
{
    if (!c)
        return 0;
    goc__lock_acquire(&c->lock);
    size_t n = c->count;
    goc__lock_release(&c->lock);
    return n;
}

size_t goc_chan_cap(goc_chan *c)
{
    return c ? c->cap : 0;
}

size_t goc_chan_elem_size(goc_chan *c)
{
    return c ? c->elem_size : 0;
}
