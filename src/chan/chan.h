/* SPDX-License-Identifier: MIT */
/* Private side of channels, shared by chan.c and select.c. */
#ifndef GOC_CHAN_PRIVATE_H
#define GOC_CHAN_PRIVATE_H

#include "goc/chan.h"
#include "../context/ctx.h"
#include "../runtime/runtime.h"

/*
 * A blocked send or receive: lives on the waiter's stack, linked in the
 * channel's queue while the channel lock is held. On an unbuffered
 * channel the peer that dequeues it claims its wait, moves the value and
 * sets success; on a buffered one it only claims and wakes it, and the
 * waiter retries the ring.
 */
struct goc__sudog {
    struct goc__sudog *next, *prev;
    struct goc__wait *w;
    void *elem;   /* recv: destination (may be NULL); send: source */
    int index;    /* case index reported to the wait */
    bool success; /* a value moved; false: woken by close */
    bool linked;
};

struct goc__waitq {
    /* Written under the channel lock; read without it only to prefetch
     * (goc__chan_prefetch_waiter), hence atomic, always relaxed. */
    struct goc__sudog *_Atomic head;
    struct goc__sudog *tail;
    /* Records queued. Written under the channel lock; buffered channels'
     * lock-free operations read it to learn whether anyone must be woken. */
    _Atomic uint32_t n;
};

/*
 * A buffered channel's ring slot: the stamp says whose turn it is (see
 * chan.c), the value follows it.
 */
struct goc__slot {
    _Atomic uint64_t stamp;
};

struct goc_chan {
    /*
     * Buffered channels only: the ring's next send and receive positions,
     * each on a line of its own so senders and receivers do not share
     * one. A position is lap | index; tail also carries the closed mark.
     */
    _Alignas(64) _Atomic uint64_t tail;
    _Alignas(64) _Atomic uint64_t head;
    /* The lock has a cache line to itself: a waiter spinning on it must
     * not steal the line that the holder is updating. */
    _Alignas(64) goc__lock lock;
    _Alignas(64) bool closed;
    struct goc__waitq recvq, sendq;
    /* Read-mostly from here on. */
    _Alignas(64) _Atomic int refs;
    size_t elem_size;
    size_t cap;
    /* Its owner (a registry, a broadcaster) alone sends on it and closes
     * it, through the goc__*_owned calls: set before the channel is
     * handed out, never changed after. */
    bool recv_only;
    size_t stride;    /* bytes per slot */
    uint64_t mark;    /* closed bit of tail; index bits below it */
    uint64_t one_lap; /* a position's lap unit */
    char *buf;
};

/* Start loading the lines a close of c writes (for callers about to
 * close many channels in a row). */
/* Send, try-send, close and select of a channel's owner: recv_only does
 * not stop them. */
int goc__chan_send_owned(goc_chan *c, const void *elem, goc_ctx *ctx);
int goc__chan_try_send_owned(goc_chan *c, const void *elem);
int goc__chan_close_owned(goc_chan *c);
int goc__select_owned(struct goc_select_case *cases,
                      int n,
                      unsigned flags,
                      goc_ctx *ctx);

void goc__chan_prefetch(struct goc_chan *c);
/* Then, once those lines are in, the first waiting receiver's record. */
void goc__chan_prefetch_waiter(struct goc_chan *c);

void goc__waitq_push(struct goc__waitq *q, struct goc__sudog *s);
void goc__waitq_remove(struct goc__waitq *q, struct goc__sudog *s);
/* Dequeue the first waiter whose wait we can still win; NULL if none. */
struct goc__sudog *goc__waitq_claim(struct goc__waitq *q);

/*
 * Unbuffered channels, under c->lock: the ways an operation completes
 * without waiting. Each returns true if it did; results as for
 * goc_chan_send/recv.
 */
bool goc__chan_try_send_locked(struct goc_chan *c,
                               const void *elem,
                               int *result,
                               struct goc__sudog **wake);
bool goc__chan_try_recv_locked(struct goc_chan *c,
                               void *elem,
                               int *result,
                               struct goc__sudog **wake);

/*
 * Buffered channels, lock-free (c->lock may be held or not): 0 sent,
 * -EPIPE closed, -EAGAIN full; 1 received, 0 closed and drained (value
 * zeroed), -EAGAIN empty. A completed operation must be followed by
 * goc__ring_notify() once the caller holds no channel lock.
 */
int goc__ring_send(struct goc_chan *c, const void *elem);
int goc__ring_recv(struct goc_chan *c, void *elem);
/*
 * A ring operation found c closed with no channel lock held: wait until
 * the close has let go of the channel, so that the caller may free it.
 */
void goc__ring_closed_sync(struct goc_chan *c);
/* Wake the first waiter of q we can claim (goc__ring_notify's slow path). */
void goc__ring_wake(struct goc_chan *c, struct goc__waitq *q);

/*
 * After a completed ring operation (its seq_cst CAS is before this load):
 * if a waiter of the other side is queued, wake the first one we can
 * claim. It retries the ring. A waiter that queued itself after our CAS
 * re-checks the ring after its fence and sees our operation.
 */
static inline void goc__ring_notify(struct goc_chan *c, bool sent)
{
    struct goc__waitq *q = sent ? &c->recvq : &c->sendq;
    if (atomic_load_explicit(&q->n, memory_order_seq_cst) != 0)
        goc__ring_wake(c, q);
}
/*
 * Under c->lock, after queueing a waiter and a seq_cst fence: could the
 * operation complete now (closed counts as complete)?
 */
bool goc__ring_ready(struct goc_chan *c, bool send);

/* goc__ctx_unwatch without the call when no context was watched. */
static inline void chan_unwatch(struct goc__ctx_watch *cw)
{
    if (cw->cc)
        goc__ctx_unwatch(cw);
}

/*
 * A buffered slot's size for @elem_size, in *@stride; -EINVAL if a
 * channel of @cap such slots cannot exist (goc_chan_new() refuses it).
 */
int goc__chan_stride(size_t elem_size, size_t cap, size_t *stride);

#endif /* GOC_CHAN_PRIVATE_H */
