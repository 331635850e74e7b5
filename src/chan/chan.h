/* SPDX-License-Identifier: MIT */
/* Private side of channels, shared by chan.c and select.c. */
#ifndef GOC_CHAN_PRIVATE_H
#define GOC_CHAN_PRIVATE_H

#include "goc/chan.h"
#include "../context/ctx.h"
#include "../runtime/runtime.h"

/*
 * A blocked send or receive: lives on the waiter's stack, linked in the
 * channel's queue while the channel lock is held. The peer that dequeues
 * it claims its wait, moves the value, and sets success.
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
    struct goc__sudog *head, *tail;
};

struct goc_chan {
    /* The lock has a cache line to itself: a waiter spinning on it must
     * not steal the line that the holder is updating. */
    _Alignas(64) goc__lock lock;
    _Alignas(64) bool closed;
    _Atomic int refs;
    size_t elem_size;
    size_t cap;
    size_t count;        /* values in buf */
    size_t sendx, recvx; /* ring positions in buf */
    struct goc__waitq recvq, sendq;
    char *buf;
};

void goc__waitq_push(struct goc__waitq *q, struct goc__sudog *s);
void goc__waitq_remove(struct goc__waitq *q, struct goc__sudog *s);
/* Dequeue the first waiter whose wait we can still win; NULL if none. */
struct goc__sudog *goc__waitq_claim(struct goc__waitq *q);

/*
 * Under c->lock, the four ways an operation completes without waiting.
 * Each returns true if it did; results as for goc_chan_send/recv.
 */
bool goc__chan_try_send_locked(struct goc_chan *c,
                               const void *elem,
                               int *result,
                               struct goc__sudog **wake);
bool goc__chan_try_recv_locked(struct goc_chan *c,
                               void *elem,
                               int *result,
                               struct goc__sudog **wake);

#endif /* GOC_CHAN_PRIVATE_H */
