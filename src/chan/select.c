/* SPDX-License-Identifier: MIT */
/*
 * select: Go's algorithm, with a lock-free first pass. The cases are
 * polled in random order, buffered ones on their lock-free ring and
 * unbuffered ones under their own lock, and the first ready one runs.
 * Otherwise every channel is locked in address order, the cases polled
 * again, and a wait record queued on every channel before parking. The
 * peer that claims the shared wait first decides which case woke us: an
 * unbuffered case ran there and then; a buffered one is retried first,
 * and if a faster peer took its value or slot, the select starts over.
 * On waking, the records left in the other queues are removed.
 */
#include "chan.h"
#include "../internal/alloc.h"

#include <stdlib.h>

#define SELECT_MAX   1024
#define SELECT_STACK 8 /* cases handled without allocating */

struct locks {
    struct goc_chan **c;
    int n;
};

static void lock_all(struct locks *l)
{
    for (int i = 0; i < l->n; i++)
        goc__lock_acquire(&l->c[i]->lock);
}

static void unlock_all(void *arg)
{
    struct locks *l = arg;
    for (int i = l->n - 1; i >= 0; i--)
        goc__lock_release(&l->c[i]->lock);
}

/* Distinct channels of the cases in address order: no lock-order cycle. */
static int lock_order(struct goc_select_case *cases,
                      int n,
                      struct goc_chan **out)
{
    int m = 0;
    for (int i = 0; i < n; i++) {
        struct goc_chan *c = cases[i].chan;
        if (!c)
            continue;
        int j = m;
        while (j > 0 && (uintptr_t)out[j - 1] > (uintptr_t)c) {
            out[j] = out[j - 1];
            j--;
        }
        if (j > 0 && out[j - 1] == c) {
            /* Already there: undo the shift. */
            for (; j < m; j++)
                out[j] = out[j + 1];
            continue;
        }
        out[j] = c;
        m++;
    }
    return m;
}

/* xorshift32 per thread: select only needs a fair coin, not a good one. */
static __thread uint32_t select_rand __attribute__((tls_model("initial-exec")));

static uint32_t next_rand(void)
{
    uint32_t x = select_rand;
    if (x == 0)
        x = ((uint32_t)(uintptr_t)&select_rand ^ (uint32_t)goc__nanotime()) |
            1u;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    select_rand = x;
    return x;
}

/* Cases in order, shuffled unless GOC_SELECT_PRIORITY (Fisher-Yates). */
__attribute__((noinline)) static void poll_order_any(int n,
                                                     unsigned flags,
                                                     uint16_t *order)
{
    for (int i = 0; i < n; i++)
        order[i] = (uint16_t)i;
    if (flags & GOC_SELECT_PRIORITY)
        return;
    for (int i = n - 1; i > 0; i--) {
        /* Lemire's multiply-shift: a uniform pick without a division. */
        int j = (int)(((uint64_t)next_rand() * (uint32_t)(i + 1)) >> 32);
        uint16_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static inline void poll_order(int n, unsigned flags, uint16_t *order)
{
    if (n == 2 && !(flags & GOC_SELECT_PRIORITY)) {
        /* The common two-way select: one coin. */
        uint16_t first = (uint16_t)(next_rand() >> 31);
        order[0] = first;
        order[1] = first ^ 1;
        return;
    }
    poll_order_any(n, flags, order);
}

/* A completed buffered case: wake its peer once no lock is held. */
struct notify {
    struct goc_chan *c;
    bool sent;
};

/*
 * Buffered case cs on its ring; true if it ran (result set). locked: we
 * hold the channel's lock, so a close seen here has released it already.
 */
static bool ring_case(struct goc_select_case *cs,
                      struct notify *nt,
                      bool locked)
{
    bool send = cs->op == GOC_SELECT_SEND;
    int r = send ? goc__ring_send(cs->chan, cs->elem)
                 : goc__ring_recv(cs->chan, cs->elem);
    if (r == -EAGAIN)
        return false;
    cs->result = r;
    if (r == (send ? 0 : 1))
        *nt = (struct notify){ cs->chan, send };
    else if (!locked)
        goc__ring_closed_sync(cs->chan);
    return true;
}

static void notify_done(struct notify *nt)
{
    if (nt->c)
        goc__ring_notify(nt->c, nt->sent);
}

static bool locked_case(struct goc_select_case *cs, struct goc__sudog **wake)
{
    return cs->op == GOC_SELECT_SEND
               ? goc__chan_try_send_locked(cs->chan, cs->elem, &cs->result,
                                           wake)
               : goc__chan_try_recv_locked(cs->chan, cs->elem, &cs->result,
                                           wake);
}

/* No lock held: run the first ready case in order; -1 if none. */
__attribute__((always_inline)) static inline int poll_fast(
    struct goc_select_case *cases, const uint16_t *order, int n)
{
    for (int k = 0; k < n; k++) {
        struct goc_select_case *cs = &cases[order[k]];
        struct goc_chan *c = cs->chan;
        if (!c)
            continue;
        if (c->cap) {
            bool send = cs->op == GOC_SELECT_SEND;
            int r = send ? goc__ring_send(c, cs->elem)
                         : goc__ring_recv(c, cs->elem);
            if (r == -EAGAIN)
                continue;
            cs->result = r;
            if (r == (send ? 0 : 1))
                goc__ring_notify(c, send);
            else
                goc__ring_closed_sync(c);
            return order[k];
        }
        struct goc__sudog *wake = NULL;
        goc__lock_acquire(&c->lock);
        bool ran = locked_case(cs, &wake);
        goc__lock_release(&c->lock);
        if (wake)
            goc__wait_finish(wake->w);
        if (ran)
            return order[k];
    }
    return -1;
}

/* Under all locks: run the first ready case in order; -1 if none. */
static int poll(struct goc_select_case *cases,
                const uint16_t *order,
                int n,
                struct goc__sudog **wake,
                struct notify *nt)
{
    for (int k = 0; k < n; k++) {
        struct goc_select_case *cs = &cases[order[k]];
        if (!cs->chan)
            continue;
        bool ran =
            cs->chan->cap ? ring_case(cs, nt, true) : locked_case(cs, wake);
        if (ran)
            return order[k];
    }
    return -1;
}

static int validate(struct goc_select_case *cases, int n, bool owner)
{
    if (n < 0 || n > SELECT_MAX || (n > 0 && !cases))
        return -EINVAL;
    for (int i = 0; i < n; i++) {
        if (cases[i].op != GOC_SELECT_RECV && cases[i].op != GOC_SELECT_SEND)
            return -EINVAL;
        if (cases[i].op == GOC_SELECT_SEND && cases[i].chan &&
            cases[i].chan->recv_only && !owner)
            return goc__misuse("goc_select: a send on a receive-only "
                               "channel");
        /* A send with nothing to copy from (a NULL channel is a case
         * that never fires, as in Go). */
        if (cases[i].op == GOC_SELECT_SEND && cases[i].chan && !cases[i].elem &&
            cases[i].chan->elem_size)
            return -EINVAL;
    }
    return 0;
}

struct scratch {
    uint16_t *order;
    struct goc_chan **chans;
    struct goc__sudog *sg;
};

static struct goc__waitq *case_queue(struct goc_select_case *cs)
{
    return cs->op == GOC_SELECT_SEND ? &cs->chan->sendq : &cs->chan->recvq;
}

/* Under all locks: take our records out of the queues still holding them. */
static void unqueue_all(struct goc_select_case *cases, int n, struct scratch *s)
{
    for (int i = 0; i < n; i++)
        if (cases[i].chan && s->sg[i].linked)
            goc__waitq_remove(case_queue(&cases[i]), &s->sg[i]);
}

/*
 * Under all locks, our records queued and a seq_cst fence issued: could a
 * buffered case run now? (The Dekker half of the wake-up protocol, see
 * buf_wait in chan.c.)
 */
static bool ring_ready_any(struct goc_select_case *cases, int n)
{
    for (int i = 0; i < n; i++)
        if (cases[i].chan && cases[i].chan->cap &&
            goc__ring_ready(cases[i].chan, cases[i].op == GOC_SELECT_SEND))
            return true;
    return false;
}

/*
 * Park on every case's channel (all locks held on entry, none on return).
 * Returns the case that woke us, n for the context, or -2: a buffered
 * case became ready while we queued, poll again.
 */
static int wait_all(struct goc_select_case *cases,
                    int n,
                    struct scratch *s,
                    struct locks *l,
                    struct goc__wait *w)
{
    bool buffered = false;
    for (int i = 0; i < n; i++) {
        struct goc_chan *c = cases[i].chan;
        s->sg[i] =
            (struct goc__sudog){ .w = w, .elem = cases[i].elem, .index = i };
        if (c) {
            goc__waitq_push(case_queue(&cases[i]), &s->sg[i]);
            buffered |= c->cap != 0;
        }
    }
    if (buffered) {
        atomic_thread_fence(memory_order_seq_cst);
        if (ring_ready_any(cases, n)) {
            unqueue_all(cases, n, s);
            unlock_all(l);
            /* Only the context can have claimed w: wakers need a lock. */
            return goc__wait_claim_self(w, -1) ? -2 : n;
        }
    }
    int won = goc__wait_block(w, unlock_all, l);
    lock_all(l);
    unqueue_all(cases, n, s);
    unlock_all(l);
    return won;
}

/*
 * Block until a case runs or ctx ends (no lock held). Each round polls
 * under all locks, then queues and parks; a round that ends without a
 * case run (a buffered case's value taken by a faster peer) starts over.
 */
static int run_slow(struct goc_select_case *cases,
                    int n,
                    goc_ctx *ctx,
                    struct scratch *s,
                    struct locks *l)
{
    for (;;) {
        struct goc__wait w;
        struct goc__ctx_watch cw = { .cc = NULL };
        struct goc__sudog *wake = NULL;
        struct notify nt = { NULL, false };
        goc__wait_init(&w, GOC__WAIT_SELECT);
        /* Register with the context with no channel locked. */
        if (ctx && goc__ctx_canceller(ctx)) {
            int err = goc__ctx_watch(ctx, &cw, &w, n);
            if (err)
                return err;
        }
        lock_all(l);
        int r = poll(cases, s->order, n, &wake, &nt);
        if (r >= 0) {
            unlock_all(l);
            if (wake)
                goc__wait_finish(wake->w);
            notify_done(&nt);
            chan_unwatch(&cw);
            return r;
        }
        int won = wait_all(cases, n, s, l, &w);
        chan_unwatch(&cw);
        if (won == n)
            return goc_ctx_err(ctx);
        if (won < 0)
            continue;
        struct goc_select_case *cs = &cases[won];
        if (cs->chan->cap) {
            /* Woken for this case: try it first (see the header). */
            if (ring_case(cs, &nt, false)) {
                notify_done(&nt);
                return won;
            }
            continue;
        }
        bool ok = s->sg[won].success;
        if (cs->op == GOC_SELECT_SEND)
            cs->result = ok ? 0 : -EPIPE;
        else
            cs->result = ok ? 1 : 0;
        return won;
    }
}

static int run_select(struct goc_select_case *cases,
                      int n,
                      unsigned flags,
                      goc_ctx *ctx,
                      struct scratch *s)
{
    poll_order(n, flags, s->order);
    int r = poll_fast(cases, s->order, n);
    if (r >= 0)
        return r;
    if (flags & GOC_SELECT_DEFAULT)
        return -EAGAIN;
    struct locks l = { s->chans, lock_order(cases, n, s->chans) };
    return run_slow(cases, n, ctx, s, &l);
}

/* Park with the scratch on this frame: out of line, so that a select that
 * completes at once keeps a small frame. */
__attribute__((noinline)) static int select_slow(struct goc_select_case *cases,
                                                 int n,
                                                 goc_ctx *ctx,
                                                 uint16_t *order)
{
    struct goc_chan *chans[SELECT_STACK];
    struct goc__sudog sg[SELECT_STACK];
    struct scratch s = { order, chans, sg };
    struct locks l = { chans, lock_order(cases, n, chans) };
    return run_slow(cases, n, ctx, &s, &l);
}

/* More cases than fit on the stack: the scratch comes from the heap. */
__attribute__((noinline)) static int select_big(struct goc_select_case *cases,
                                                int n,
                                                unsigned flags,
                                                goc_ctx *ctx)
{
    size_t bytes = (size_t)n * (sizeof(uint16_t) + sizeof(struct goc_chan *) +
                                sizeof(struct goc__sudog));
    char *mem = goc__malloc(bytes);
    if (!mem)
        return -ENOMEM;
    struct scratch s = {
        .sg = (struct goc__sudog *)mem,
        .chans = (struct goc_chan **)(mem + (size_t)n * sizeof(*s.sg)),
    };
    s.order = (uint16_t *)(s.chans + n);
    int r = run_select(cases, n, flags, ctx, &s);
    goc__free(mem);
    return r;
}

static int select_checked(struct goc_select_case *cases,
                          int n,
                          unsigned flags,
                          goc_ctx *ctx,
                          bool owner)
{
    int err = validate(cases, n, owner);
    if (err)
        return err;
    if (flags & ~(GOC_SELECT_DEFAULT | GOC_SELECT_PRIORITY))
        return -EINVAL;
    if (ctx && (err = goc_ctx_err(ctx)) != 0)
        return err;
    if (n > SELECT_STACK)
        return select_big(cases, n, flags, ctx);
    uint16_t order[SELECT_STACK];
    poll_order(n, flags, order);
    int r = poll_fast(cases, order, n);
    if (r >= 0)
        return r;
    if (flags & GOC_SELECT_DEFAULT)
        return -EAGAIN;
    return select_slow(cases, n, ctx, order);
}

int goc_select(struct goc_select_case *cases,
               int n,
               unsigned flags,
               goc_ctx *ctx)
{
    return select_checked(cases, n, flags, ctx, false);
}

int goc__select_owned(struct goc_select_case *cases,
                      int n,
                      unsigned flags,
                      goc_ctx *ctx)
{
    return select_checked(cases, n, flags, ctx, true);
}
