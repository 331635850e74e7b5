/* SPDX-License-Identifier: MIT */
/*
 * select: Go's algorithm. Lock every channel of the select in address
 * order, poll the cases in random order and run the first ready one;
 * otherwise queue a wait record on every channel and park. The peer that
 * claims the shared wait first decides which case ran; on waking, the
 * records left in the other queues are removed.
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
static __thread uint32_t select_rand;

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

static void poll_order(int n, unsigned flags, uint16_t *order)
{
    for (int i = 0; i < n; i++)
        order[i] = (uint16_t)i;
    if (flags & GOC_SELECT_PRIORITY)
        return;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)(next_rand() % (uint32_t)(i + 1));
        uint16_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* Under all locks: run the first ready case in order; -1 if none. */
static int poll(struct goc_select_case *cases,
                const uint16_t *order,
                int n,
                struct goc__sudog **wake)
{
    for (int k = 0; k < n; k++) {
        struct goc_select_case *cs = &cases[order[k]];
        if (!cs->chan)
            continue;
        bool ran = cs->op == GOC_SELECT_SEND
                       ? goc__chan_try_send_locked(cs->chan, cs->elem,
                                                   &cs->result, wake)
                       : goc__chan_try_recv_locked(cs->chan, cs->elem,
                                                   &cs->result, wake);
        if (ran)
            return order[k];
    }
    return -1;
}

static int validate(struct goc_select_case *cases, int n)
{
    if (n < 0 || n > SELECT_MAX || (n > 0 && !cases))
        return -EINVAL;
    for (int i = 0; i < n; i++)
        if (cases[i].op != GOC_SELECT_RECV && cases[i].op != GOC_SELECT_SEND)
            return -EINVAL;
    return 0;
}

struct scratch {
    uint16_t *order;
    struct goc_chan **chans;
    struct goc__sudog *sg;
};

/* Park on every case's channel (all locks held on entry). */
static int wait_all(struct goc_select_case *cases,
                    int n,
                    struct scratch *s,
                    struct locks *l,
                    struct goc__wait *w,
                    struct goc__ctx_watch *cw)
{
    for (int i = 0; i < n; i++) {
        struct goc_chan *c = cases[i].chan;
        s->sg[i] =
            (struct goc__sudog){ .w = w, .elem = cases[i].elem, .index = i };
        if (c)
            goc__waitq_push(cases[i].op == GOC_SELECT_SEND ? &c->sendq
                                                           : &c->recvq,
                            &s->sg[i]);
    }
    int won = goc__wait_block(w, unlock_all, l);
    /* Take our records out of the queues that did not run. */
    lock_all(l);
    for (int i = 0; i < n; i++) {
        struct goc_chan *c = cases[i].chan;
        if (c && s->sg[i].linked)
            goc__waitq_remove(cases[i].op == GOC_SELECT_SEND ? &c->sendq
                                                             : &c->recvq,
                              &s->sg[i]);
    }
    unlock_all(l);
    goc__ctx_unwatch(cw);
    if (won == n)
        return -1; /* the context */
    bool ok = s->sg[won].success;
    if (cases[won].op == GOC_SELECT_SEND)
        cases[won].result = ok ? 0 : -EPIPE;
    else
        cases[won].result = ok ? 1 : 0;
    return won;
}

/* Block until a case runs or ctx ends (all locks held on entry). */
static int run_slow(struct goc_select_case *cases,
                    int n,
                    goc_ctx *ctx,
                    struct scratch *s,
                    struct locks *l)
{
    struct goc__wait w;
    struct goc__ctx_watch cw = { .cc = NULL };
    struct goc__sudog *wake = NULL;
    int r = -1;
    goc__wait_init(&w, GOC__WAIT_SELECT);
    if (goc__ctx_canceller(ctx)) {
        /* Register with the context with no channel locked, re-poll. */
        unlock_all(l);
        int err = goc__ctx_watch(ctx, &cw, &w, n);
        if (err)
            return err;
        lock_all(l);
        r = poll(cases, s->order, n, &wake);
    }
    if (r >= 0) {
        unlock_all(l);
        if (wake)
            goc__wait_finish(wake->w);
        goc__ctx_unwatch(&cw);
        return r;
    }
    r = wait_all(cases, n, s, l, &w, &cw);
    return r >= 0 ? r : goc_ctx_err(ctx);
}

static int run_select(struct goc_select_case *cases,
                      int n,
                      unsigned flags,
                      goc_ctx *ctx,
                      struct scratch *s)
{
    struct locks l = { s->chans, lock_order(cases, n, s->chans) };
    struct goc__sudog *wake = NULL;
    poll_order(n, flags, s->order);
    lock_all(&l);
    int r = poll(cases, s->order, n, &wake);
    if (r >= 0) {
        unlock_all(&l);
        if (wake)
            goc__wait_finish(wake->w);
        return r;
    }
    if (flags & GOC_SELECT_DEFAULT) {
        unlock_all(&l);
        return -EAGAIN;
    }
    return run_slow(cases, n, ctx, s, &l);
}

int goc_select(struct goc_select_case *cases,
               int n,
               unsigned flags,
               goc_ctx *ctx)
{
    int err = validate(cases, n);
    if (err)
        return err;
    if (ctx && (err = goc_ctx_err(ctx)) != 0)
        return err;
    if (n <= SELECT_STACK) {
        uint16_t order[SELECT_STACK];
        struct goc_chan *chans[SELECT_STACK];
        struct goc__sudog sg[SELECT_STACK];
        struct scratch s = { order, chans, sg };
        return run_select(cases, n, flags, ctx, &s);
    }
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
