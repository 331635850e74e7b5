/* SPDX-License-Identifier: MIT */
/*
 * Channels. Unbuffered ones follow Go's algorithm: one lock per channel,
 * FIFO queues of blocked senders and receivers, and a value handed
 * straight from a sender to a parked receiver (or back). The wait records
 * live on the blocked party's own stack; the peer that dequeues one claims
 * the wait first, so a receiver in a select, or one whose context just
 * ended, is never handed two values or a value and an error.
 *
 * Buffered ones keep their values in a lock-free bounded ring (Vyukov's
 * MPMC queue, with the lap-stamped positions and closed mark of
 * crossbeam's array channel), so a send or receive that need not wait
 * takes no lock: producers and consumers on different threads then touch
 * only the slots and the position they move. The lock guards only the
 * queues of parked waiters, which are wake-up lists here: a waker claims
 * a waiter and readies it, and the waiter retries the ring.
 */
#include "chan.h"
#include "goc/panic.h"
#include "../internal/alloc.h"

#include <sched.h>
#include <string.h>

/* ---- wait queues ------------------------------------------------------ */

void goc__waitq_push(struct goc__waitq *q, struct goc__sudog *s)
{
    s->next = NULL;
    s->prev = q->tail;
    if (q->tail)
        q->tail->next = s;
    else
        atomic_store_explicit(&q->head, s, memory_order_relaxed);
    q->tail = s;
    s->linked = true;
    /* Under the lock: only its holders write n. */
    atomic_store_explicit(&q->n,
                          atomic_load_explicit(&q->n, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

void goc__waitq_remove(struct goc__waitq *q, struct goc__sudog *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        atomic_store_explicit(&q->head, s->next, memory_order_relaxed);
    if (s->next)
        s->next->prev = s->prev;
    else
        q->tail = s->prev;
    s->next = s->prev = NULL;
    s->linked = false;
    atomic_store_explicit(&q->n,
                          atomic_load_explicit(&q->n, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

static inline struct goc__sudog *waitq_first(struct goc__waitq *q)
{
    return atomic_load_explicit(&q->head, memory_order_relaxed);
}

/* goc__waitq_remove for the first record: the channel ops' hot path. */
static inline void waitq_pop(struct goc__waitq *q, struct goc__sudog *s)
{
    struct goc__sudog *next = s->next;
    atomic_store_explicit(&q->head, next, memory_order_relaxed);
    if (next)
        next->prev = NULL;
    else
        q->tail = NULL;
    s->next = NULL;
    s->linked = false;
    atomic_store_explicit(&q->n,
                          atomic_load_explicit(&q->n, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

struct goc__sudog *goc__waitq_claim(struct goc__waitq *q)
{
    struct goc__sudog *s;
    while ((s = atomic_load_explicit(&q->head, memory_order_relaxed))) {
        waitq_pop(q, s);
        /* Lost: its select or context already woke it. Skip it. */
        if (goc__wait_claim(s->w, s->index))
            return s;
    }
    return NULL;
}

/* ---- life cycle ------------------------------------------------------- */

/* Smallest power of two above x (x < 2^62). */
static uint64_t pow2_above(uint64_t x)
{
    uint64_t p = 1;
    while (p <= x)
        p <<= 1;
    return p;
}

int goc__chan_stride(size_t elem_size, size_t cap, size_t *stride)
{
    /* A slot is its stamp and the value, rounded up to whole stamps. */
    *stride = sizeof(struct goc__slot);
    if (!cap)
        return 0;
    if (elem_size > SIZE_MAX / 2)
        return -EINVAL;
    *stride += (elem_size + sizeof(struct goc__slot) - 1) /
               sizeof(struct goc__slot) * sizeof(struct goc__slot);
    if (cap > ((size_t)1 << 40) ||
        cap > (SIZE_MAX - sizeof(struct goc_chan)) / *stride)
        return -EINVAL;
    return 0;
}

int goc_chan_new(size_t elem_size, size_t cap, goc_chan **out)
{
    size_t stride;
    if (!out || goc__chan_stride(elem_size, cap, &stride) != 0)
        return -EINVAL;
    struct goc_chan *c = goc__aligned_alloc(_Alignof(struct goc_chan),
                                            sizeof(*c) + stride * cap);
    if (!c)
        return -ENOMEM;
    memset(c, 0, sizeof(*c));
    c->lock = (goc__lock)GOC__LOCK_INIT;
    atomic_init(&c->refs, 1);
    c->elem_size = elem_size;
    c->cap = cap;
    c->stride = stride;
    c->buf = (char *)(c + 1);
    c->mark = pow2_above(cap);
    c->one_lap = c->mark * 2;
    atomic_init(&c->head, 0);
    atomic_init(&c->tail, 0);
    /* Slot i is free for the send at lap 0, index i. */
    for (size_t i = 0; i < cap; i++)
        atomic_init(&((struct goc__slot *)(c->buf + i * stride))->stamp, i);
    *out = c;
    return 0;
}

goc_chan *goc_chan_retain(goc_chan *c)
{
    if (c)
        atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

/* Calls queued on c (receives, sends, selects). Each comes back to c's
 * lock, even one that its context or another select case woke. */
static uint32_t queued_calls(struct goc_chan *c)
{
    goc__lock_acquire(&c->lock);
    uint32_t n = atomic_load_explicit(&c->recvq.n, memory_order_relaxed) +
                 atomic_load_explicit(&c->sendq.n, memory_order_relaxed);
    goc__lock_release(&c->lock);
    return n;
}

void goc_chan_release(goc_chan *c)
{
    if (!c)
        return;
    /* Acq_rel: the last releaser sees every other holder's writes. */
    if (atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    uint32_t n = queued_calls(c);
    if (n) {
        /* Freed, it would be written by those calls: a misuse, which
         * panics as Go's do, with the channel whole again (whoever
         * recovers may close it and release it once more). */
        atomic_store_explicit(&c->refs, 1, memory_order_relaxed);
        goc_panic(GOC_EMISUSE,
                  "goc_chan_release: last reference dropped with %u "
                  "call(s) blocked on the channel",
                  n);
    }
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

/* Inline in chan_op; select calls the exported copies below. */
static inline bool try_send_locked(struct goc_chan *c,
                                   const void *elem,
                                   int *result,
                                   struct goc__sudog **wake)
{
    if (c->closed) {
        *result = -EPIPE;
        return true;
    }
    struct goc__sudog *r =
        waitq_first(&c->recvq) ? goc__waitq_claim(&c->recvq) : NULL;
    if (!r)
        return false;
    copy_elem(c, r->elem, elem);
    r->success = true;
    *wake = r;
    *result = 0;
    return true;
}

static inline bool try_recv_locked(struct goc_chan *c,
                                   void *elem,
                                   int *result,
                                   struct goc__sudog **wake)
{
    struct goc__sudog *s =
        waitq_first(&c->sendq) ? goc__waitq_claim(&c->sendq) : NULL;
    if (s) {
        copy_elem(c, elem, s->elem);
        s->success = true;
        *wake = s;
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

bool goc__chan_try_send_locked(struct goc_chan *c,
                               const void *elem,
                               int *result,
                               struct goc__sudog **wake)
{
    return try_send_locked(c, elem, result, wake);
}

bool goc__chan_try_recv_locked(struct goc_chan *c,
                               void *elem,
                               int *result,
                               struct goc__sudog **wake)
{
    return try_recv_locked(c, elem, result, wake);
}

/* ---- the buffered ring ------------------------------------------------ */

/*
 * Positions are lap | index, index < cap < mark, lap a multiple of
 * one_lap = 2 * mark. Slot index's stamp says whose turn it is: equal to
 * a sender's tail position, the slot is free for that send; equal to a
 * receiver's head position + 1, it holds that receive's value. A sender
 * moves tail with a CAS (which also fails once close has set the mark),
 * writes the value, then publishes it with a release store of the stamp
 * (tail + 1); a receiver moves head with a CAS, copies the value out and
 * frees the slot for the next lap's sender (head + one_lap). Acquire
 * loads of the stamp pair with those stores, so the value is read only
 * after it was written and overwritten only after it was read.
 *
 * The CASes on head and tail are seq_cst: with the waiters' fence (see
 * buf_wait) they make the wake-up protocol a Dekker handshake.
 */

static inline struct goc__slot *slot_at(struct goc_chan *c, uint64_t pos)
{
    return (struct goc__slot *)(c->buf + (pos & (c->mark - 1)) * c->stride);
}

static inline void *slot_value(struct goc__slot *s)
{
    return s + 1;
}

static inline uint64_t ring_next(struct goc_chan *c, uint64_t pos)
{
    if ((pos & (c->mark - 1)) + 1 < c->cap)
        return pos + 1;
    return (pos & ~(c->one_lap - 1)) + c->one_lap;
}

/*
 * A peer is between its CAS and its stamp store: a few instructions,
 * unless its thread was preempted, so spin a little, then yield the CPU.
 */
static void ring_backoff(int *spins)
{
    if (*spins < 10) {
        for (int i = 0; i < 1 << *spins; i++)
            goc__cpu_relax();
        ++*spins;
    } else {
        sched_yield();
    }
}

/* The rest of goc__ring_send: retry until done, full or closed. */
__attribute__((noinline)) static int ring_send_retry(struct goc_chan *c,
                                                     const void *elem)
{
    int spins = 0;
    uint64_t tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
    for (;;) {
        if (tail & c->mark)
            return -EPIPE;
        struct goc__slot *s = slot_at(c, tail);
        uint64_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (stamp == tail) {
            if (atomic_compare_exchange_weak_explicit(
                    &c->tail, &tail, ring_next(c, tail), memory_order_seq_cst,
                    memory_order_relaxed)) {
                copy_elem(c, slot_value(s), elem);
                atomic_store_explicit(&s->stamp, tail + 1,
                                      memory_order_release);
                return 0;
            }
            continue; /* the failed CAS reloaded tail */
        }
        if (stamp + c->one_lap == tail + 1) {
            /* Last lap's value is still there: full, unless a receiver
             * has moved head and not yet freed the slot. */
            uint64_t head =
                atomic_load_explicit(&c->head, memory_order_seq_cst);
            if (head + c->one_lap == tail)
                return -EAGAIN;
        }
        ring_backoff(&spins);
        tail = atomic_load_explicit(&c->tail, memory_order_relaxed);
    }
}

/* The rest of goc__ring_recv: retry until done, empty or closed. */
__attribute__((noinline)) static int ring_recv_retry(struct goc_chan *c,
                                                     void *elem)
{
    int spins = 0;
    uint64_t head = atomic_load_explicit(&c->head, memory_order_relaxed);
    for (;;) {
        struct goc__slot *s = slot_at(c, head);
        uint64_t stamp = atomic_load_explicit(&s->stamp, memory_order_acquire);
        if (stamp == head + 1) {
            if (atomic_compare_exchange_weak_explicit(
                    &c->head, &head, ring_next(c, head), memory_order_seq_cst,
                    memory_order_relaxed)) {
                copy_elem(c, elem, slot_value(s));
                atomic_store_explicit(&s->stamp, head + c->one_lap,
                                      memory_order_release);
                return 1;
            }
            continue;
        }
        if (stamp == head) {
            /* Nothing written here this lap: empty, unless a sender has
             * moved tail and not yet published its value. */
            uint64_t tail =
                atomic_load_explicit(&c->tail, memory_order_seq_cst);
            if ((tail & ~c->mark) == head) {
                if (!(tail & c->mark))
                    return -EAGAIN;
                if (elem && c->elem_size)
                    memset(elem, 0, c->elem_size);
                return 0;
            }
        }
        ring_backoff(&spins);
        head = atomic_load_explicit(&c->head, memory_order_relaxed);
    }
}

/*
 * One attempt at the next send (receive) position: true with *slot and
 * *pos set if we claimed it; false if it is not ready or another sender
 * (receiver) took it first. A send needs the slot free for this lap
 * (stamp == tail), a receive needs it filled (stamp == head + 1). A closed
 * tail carries the mark, which no stamp has, so the stamp test fails for
 * it. The next position is worked out before the acquire load, which the
 * compiler does not look across.
 */
static inline bool ring_claim(struct goc_chan *c,
                              bool send,
                              struct goc__slot **slot,
                              uint64_t *pos)
{
    _Atomic uint64_t *end = send ? &c->tail : &c->head;
    uint64_t at = atomic_load_explicit(end, memory_order_relaxed);
    uint64_t next = ring_next(c, at);
    struct goc__slot *s = slot_at(c, at);
    if (atomic_load_explicit(&s->stamp, memory_order_acquire) != at + !send ||
        !atomic_compare_exchange_strong_explicit(
            end, &at, next, memory_order_seq_cst, memory_order_relaxed))
        return false;
    *slot = s;
    *pos = at;
    return true;
}

/*
 * Fill (empty) a claimed slot and publish it; with notify, then wake a
 * waiter of the other side (goc__ring_notify). Word-sized values are
 * copied inline; other sizes and the wake are tail calls, so a fast path
 * built on these needs no frame and saves no registers.
 */
__attribute__((noinline)) static int fill_any(struct goc_chan *c,
                                              struct goc__slot *s,
                                              const void *elem,
                                              uint64_t tail,
                                              bool notify)
{
    copy_elem(c, slot_value(s), elem);
    atomic_store_explicit(&s->stamp, tail + 1, memory_order_release);
    if (notify)
        goc__ring_notify(c, true);
    return 0;
}

__attribute__((noinline)) static int empty_any(struct goc_chan *c,
                                               struct goc__slot *s,
                                               void *elem,
                                               uint64_t head,
                                               bool notify)
{
    copy_elem(c, elem, slot_value(s));
    atomic_store_explicit(&s->stamp, head + c->one_lap, memory_order_release);
    if (notify)
        goc__ring_notify(c, false);
    return 1;
}

__attribute__((noinline)) static int wake_after(struct goc_chan *c, bool sent)
{
    goc__ring_wake(c, sent ? &c->recvq : &c->sendq);
    return sent ? 0 : 1;
}

static inline int slot_fill(struct goc_chan *c,
                            struct goc__slot *s,
                            const void *elem,
                            uint64_t tail,
                            bool notify)
{
    if (c->elem_size != sizeof(uint64_t))
        return fill_any(c, s, elem, tail, notify);
    memcpy(slot_value(s), elem, sizeof(uint64_t));
    atomic_store_explicit(&s->stamp, tail + 1, memory_order_release);
    if (notify && atomic_load_explicit(&c->recvq.n, memory_order_seq_cst))
        return wake_after(c, true);
    return 0;
}

static inline int slot_empty(struct goc_chan *c,
                             struct goc__slot *s,
                             void *elem,
                             uint64_t head,
                             bool notify)
{
    if (c->elem_size != sizeof(uint64_t) || !elem)
        return empty_any(c, s, elem, head, notify);
    memcpy(elem, slot_value(s), sizeof(uint64_t));
    atomic_store_explicit(&s->stamp, head + c->one_lap, memory_order_release);
    if (notify && atomic_load_explicit(&c->sendq.n, memory_order_seq_cst))
        return wake_after(c, false);
    return 1;
}

int goc__ring_send(struct goc_chan *c, const void *elem)
{
    uint64_t tail;
    struct goc__slot *s;
    if (!ring_claim(c, true, &s, &tail))
        return ring_send_retry(c, elem);
    return slot_fill(c, s, elem, tail, false);
}

int goc__ring_recv(struct goc_chan *c, void *elem)
{
    uint64_t head;
    struct goc__slot *s;
    if (!ring_claim(c, false, &s, &head))
        return ring_recv_retry(c, elem);
    return slot_empty(c, s, elem, head, false);
}

bool goc__ring_ready(struct goc_chan *c, bool send)
{
    uint64_t head = atomic_load_explicit(&c->head, memory_order_seq_cst);
    uint64_t tail = atomic_load_explicit(&c->tail, memory_order_seq_cst);
    if (tail & c->mark)
        return true;
    return send ? head + c->one_lap != tail : head != tail;
}

/*
 * The close sets the mark under c->lock and releases the lock last
 * (waking its waiters touches only their own records), so taking the
 * lock once orders our return after the close's last touch of c: a
 * receiver that sees the close may free the channel (Go's idiom of a
 * close that says "done"), as with unbuffered channels.
 */
void goc__ring_closed_sync(struct goc_chan *c)
{
    goc__lock_acquire(&c->lock);
    goc__lock_release(&c->lock);
}

void goc__ring_wake(struct goc_chan *c, struct goc__waitq *q)
{
    goc__lock_acquire(&c->lock);
    struct goc__sudog *s = goc__waitq_claim(q);
    goc__lock_release(&c->lock);
    if (s)
        goc__wait_finish(s->w);
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
    return send ? try_send_locked(c, elem, result, wake)
                : try_recv_locked(c, elem, result, wake);
}

/*
 * Unlock c, then wake the peer a completed operation took. The peer goes
 * to our P's runnext as a hand-off (see goc__ready_handoff): on an
 * unbuffered channel we usually park next, and it runs here. We did not
 * park for this operation: an earlier hand-off still waiting for us to
 * park gets an M woken for it now (by goc__ready_handoff or the flush).
 */
static int done_unlock(struct goc_chan *c, int result, struct goc__sudog *wake)
{
    goc__lock_release(&c->lock);
    if (wake)
        goc__wait_finish_handoff(wake->w);
    else
        goc__handoff_flush();
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
    bool watched = ctx && goc__ctx_canceller(ctx);
    /* Unwatched, only peers, under c->lock, can claim w. Set before the
     * watch publishes w to the context's canceller. */
    w.exclusive = !watched;
    if (watched) {
        goc__lock_release(&c->lock);
        int err = goc__ctx_watch(ctx, &cw, &w, 1);
        if (err)
            return err;
        goc__lock_acquire(&c->lock);
        if (try_locked(c, send, elem, &result, &wake)) {
            done_unlock(c, result, wake);
            chan_unwatch(&cw);
            return result;
        }
    }
    struct goc__waitq *q = send ? &c->sendq : &c->recvq;
    goc__waitq_push(q, &s);
    if (goc__wait_block(&w, chan_unlock, c) == 0) {
        chan_unwatch(&cw);
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

/*
 * A buffered operation found the ring full (send) or empty (receive):
 * queue a wait record and park until a peer's operation or a close wakes
 * us, or ctx ends. 0: retry the ring; else ctx's error.
 *
 * No wake-up is lost: we store the queue's new length, then a seq_cst
 * fence, then re-read head and tail (seq_cst); a peer moves head or tail
 * with a seq_cst CAS, then reads the length (seq_cst). Either our re-read
 * sees its operation, and we retry at once, or its read sees us queued,
 * and it takes the lock (after we have parked) and wakes us.
 */
__attribute__((noinline)) static int buf_wait(struct goc_chan *c,
                                              bool send,
                                              goc_ctx *ctx)
{
    struct goc__wait w;
    struct goc__ctx_watch cw = { .cc = NULL };
    struct goc__sudog s = { .w = &w, .index = 0 };
    struct goc__waitq *q = send ? &c->sendq : &c->recvq;
    goc__wait_init(&w, send ? GOC__WAIT_CHAN_SEND : GOC__WAIT_CHAN_RECV);
    if (ctx && goc__ctx_canceller(ctx)) {
        int err = goc__ctx_watch(ctx, &cw, &w, 1);
        if (err)
            return err;
    }
    goc__lock_acquire(&c->lock);
    goc__waitq_push(q, &s);
    atomic_thread_fence(memory_order_seq_cst);
    if (goc__ring_ready(c, send)) {
        goc__waitq_remove(q, &s);
        goc__lock_release(&c->lock);
        /* Only the context can have claimed w: wakers need the lock. */
        bool mine = goc__wait_claim_self(&w, 0);
        chan_unwatch(&cw); /* after it, the context is done with w */
        return mine ? 0 : goc_ctx_err(ctx);
    }
    if (goc__wait_block(&w, chan_unlock, c) == 0) {
        chan_unwatch(&cw);
        return 0;
    }
    /* The context ended first: leave the queue as if never called. */
    goc__lock_acquire(&c->lock);
    if (s.linked)
        goc__waitq_remove(q, &s);
    goc__lock_release(&c->lock);
    return goc_ctx_err(ctx);
}

/*
 * Buffered send or receive. Woken by a peer, we retry even if ctx has
 * ended meanwhile: the peer woke us rather than another waiter, so we
 * must not leave its value (or its free slot) unclaimed.
 */
__attribute__((noinline)) static int buf_op(
    struct goc_chan *c, bool send, void *elem, goc_ctx *ctx, bool may_block)
{
    for (;;) {
        int r = send ? goc__ring_send(c, elem) : goc__ring_recv(c, elem);
        if (r != -EAGAIN) {
            if (r == (send ? 0 : 1))
                goc__ring_notify(c, send);
            else
                goc__ring_closed_sync(c);
            return r;
        }
        if (!may_block)
            return -EAGAIN;
        int err = buf_wait(c, send, ctx);
        if (err)
            return err;
    }
}

static int chan_op(
    struct goc_chan *c, bool send, void *elem, goc_ctx *ctx, bool may_block)
{
    if (!c || (send && !elem && c->elem_size))
        return -EINVAL; /* nothing to copy a value from */
    if (ctx) {
        int err = goc_ctx_err(ctx);
        if (err)
            return err;
    }
    if (c->cap)
        return buf_op(c, send, elem, ctx, may_block);
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

/*
 * The common case first, with no frame: a buffered channel, no context,
 * and one attempt at the ring that succeeds. Anything else (a full, empty
 * or closed ring, a lost race for the position) takes the general path,
 * which tries the ring again.
 */
int goc_chan_send(goc_chan *c, const void *elem, goc_ctx *ctx)
{
    uint64_t tail;
    struct goc__slot *s;
    if (!c || !c->cap || ctx || c->recv_only || (!elem && c->elem_size) ||
        !ring_claim(c, true, &s, &tail))
        return c && c->recv_only
                   ? goc__misuse("goc_chan_send: a receive-only channel")
                   : chan_op(c, true, (void *)elem, ctx, true);
    return slot_fill(c, s, elem, tail, true);
}

int goc__chan_send_owned(goc_chan *c, const void *elem, goc_ctx *ctx)
{
    return chan_op(c, true, (void *)elem, ctx, true);
}

int goc_chan_recv(goc_chan *c, void *elem, goc_ctx *ctx)
{
    uint64_t head;
    struct goc__slot *s;
    if (!c || !c->cap || ctx || !ring_claim(c, false, &s, &head))
        return chan_op(c, false, elem, ctx, true);
    return slot_empty(c, s, elem, head, true);
}

int goc_chan_try_send(goc_chan *c, const void *elem)
{
    if (c && c->recv_only)
        return goc__misuse("goc_chan_try_send: a receive-only channel");
    return chan_op(c, true, (void *)elem, NULL, false);
}

int goc__chan_try_send_owned(goc_chan *c, const void *elem)
{
    return chan_op(c, true, (void *)elem, NULL, false);
}

int goc_chan_try_recv(goc_chan *c, void *elem)
{
    return chan_op(c, false, elem, NULL, false);
}

/* ---- close and queries ------------------------------------------------ */

void goc__chan_prefetch(struct goc_chan *c)
{
    __builtin_prefetch(&c->lock, 1);
    __builtin_prefetch(&c->closed, 1);
    __builtin_prefetch(&c->refs, 0);
}

void goc__chan_prefetch_waiter(struct goc_chan *c)
{
    /* Unlocked: the record may be gone by the time it arrives, which
     * costs nothing but the prefetch. It lies on the waiter's stack, so
     * this also loads the TLB entry its G and wait record share. */
    __builtin_prefetch(waitq_first(&c->recvq), 1);
}

int goc_chan_close(goc_chan *c)
{
    if (!c)
        return goc__misuse("goc_chan_close: a NULL channel");
    if (c->recv_only)
        return goc__misuse("goc_chan_close: a receive-only channel");
    int rc = goc__chan_close_owned(c);
    return rc ? goc__misuse("goc_chan_close: closed twice") : 0;
}

int goc__chan_close_owned(goc_chan *c)
{
    goc__lock_acquire(&c->lock);
    if (c->closed) {
        goc__lock_release(&c->lock);
        return GOC_EMISUSE;
    }
    c->closed = true;
    /* Sends that have not moved tail yet fail from here on; those that
     * have complete, and their values are received before the close. */
    if (c->cap)
        atomic_fetch_or_explicit(&c->tail, c->mark, memory_order_seq_cst);
    struct goc__sudog *woken = NULL, *s;
    while ((s = goc__waitq_claim(&c->recvq))) {
        /* Buffered waiters retry the ring and find it closed there. */
        if (!c->cap && s->elem && c->elem_size)
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
    if (!c || !c->cap)
        return 0;
    for (;;) {
        uint64_t tail = atomic_load_explicit(&c->tail, memory_order_seq_cst);
        uint64_t head = atomic_load_explicit(&c->head, memory_order_seq_cst);
        /* A consistent pair: tail did not move while head was read. */
        if (atomic_load_explicit(&c->tail, memory_order_seq_cst) != tail)
            continue;
        tail &= ~c->mark;
        uint64_t hix = head & (c->mark - 1), tix = tail & (c->mark - 1);
        if (hix < tix)
            return tix - hix;
        if (hix > tix)
            return c->cap - hix + tix;
        return tail == head ? 0 : c->cap;
    }
}

size_t goc_chan_cap(goc_chan *c)
{
    return c ? c->cap : 0;
}

size_t goc_chan_elem_size(goc_chan *c)
{
    return c ? c->elem_size : 0;
}
