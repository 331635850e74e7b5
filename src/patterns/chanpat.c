/* SPDX-License-Identifier: MIT */
/*
 * Pipeline stages (generator, stage, fan-out, merge) and timed channel
 * operations. Every stage runs in a goc_group: it receives and sends
 * with the group's context, so cancellation reaches it wherever it
 * blocks, and it closes its own output on every exit path.
 */
#include "goc/pattern.h"
#include "../chan/chan.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

#include <stdatomic.h>
#include <stdlib.h>

static _Atomic int64_t dropped_total;

int64_t goc_pipe_dropped(void)
{
    return atomic_load(&dropped_total);
}

struct stage {
    goc_chan *in, *out;
    goc_stage_fn fn;
    goc_gen_fn gen;
    void *arg;
    void *buf_in, *buf_out;
    struct goc__defer end; /* runs stage_end on every exit, a panic too */
};

static void stage_free(struct stage *s)
{
    goc_chan_release(s->in);
    goc_chan_release(s->out);
    goc__free(s->buf_in);
    goc__free(s->buf_out);
    goc__free(s);
}

/* Sends *buf on out; a value the ctx stops is counted as dropped. */
static int emit(goc_chan *out, const void *buf, goc_ctx *ctx)
{
    int rc = goc_chan_send(out, buf, ctx);
    if (rc)
        atomic_fetch_add(&dropped_total, 1);
    return rc == -EPIPE ? GOC_ECLOSED : rc;
}

/* A stage's end: its output closes exactly once, however it ended. */
static void stage_end(void *arg)
{
    struct stage *s = arg;
    goc_chan_close(s->out);
    stage_free(s);
}

/*
 * Registered in the group task's panic scope: a user callback that
 * panics unwinds past the loops below, and its stage must still close
 * its output (a consumer outside the group would wait for ever) and
 * free itself. The record is the stage's own, so this cannot fail.
 */
static void end_on_exit(struct stage *s)
{
    if (goc__defer_in(&s->end, stage_end, s) != 0)
        abort(); /* group tasks always run inside a scope */
}

static int gen_main(goc_ctx *ctx, void *arg)
{
    struct stage *s = arg;
    end_on_exit(s);
    int rc;
    while ((rc = s->gen(s->arg, s->buf_out)) > 0)
        if ((rc = emit(s->out, s->buf_out, ctx)) != 0)
            break;
    return rc;
}

static int stage_main(goc_ctx *ctx, void *arg)
{
    struct stage *s = arg;
    end_on_exit(s);
    int rc;
    while ((rc = goc_chan_recv(s->in, s->buf_in, ctx)) > 0) {
        rc = s->fn(s->arg, s->buf_in, s->buf_out);
        if (rc == GOC_STAGE_SKIP)
            continue;
        if (rc < 0 || (rc = emit(s->out, s->buf_out, ctx)) != 0)
            break;
    }
    return rc > 0 ? 0 : rc;
}

static int stage_new(goc_chan *in, goc_chan *out, struct stage **res)
{
    struct stage *s = goc__calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    size_t isz = in ? goc_chan_elem_size(in) : 0;
    s->buf_in = goc__malloc(isz ? isz : 1);
    s->buf_out = goc__calloc(1, goc_chan_elem_size(out) + 1);
    s->in = in ? goc_chan_retain(in) : NULL;
    s->out = goc_chan_retain(out);
    if (!s->buf_in || !s->buf_out) {
        stage_free(s);
        return -ENOMEM;
    }
    *res = s;
    return 0;
}

/*
 * Stages never wait for a slot of a group with a limit: each holds its
 * slot for its whole life, so a stage waiting for one would wait for the
 * stages it is to feed or drain (a pipeline longer than the limit hung,
 * in a call that takes no context). At the limit it is refused.
 */
static int start(goc_group *g, struct stage *s, goc_group_fn fn)
{
    int rc = goc_group_try_go(g, fn, s);
    if (rc)
        stage_free(s);
    return rc;
}

int goc_pipe_generator(goc_group *g, goc_chan *out, goc_gen_fn fn, void *arg)
{
    if (!g || !out || !fn)
        return -EINVAL;
    if (out->recv_only)
        return goc__misuse("goc_pipe_generator: a receive-only output");
    struct stage *s;
    int rc = stage_new(NULL, out, &s);
    if (rc)
        return rc;
    s->gen = fn;
    s->arg = arg;
    return start(g, s, gen_main);
}

int goc_pipe_stage(
    goc_group *g, goc_chan *in, goc_chan *out, goc_stage_fn fn, void *arg)
{
    /* in == out would feed the stage its own output: it never ends. */
    if (!g || !in || !out || !fn || in == out)
        return -EINVAL;
    if (out->recv_only)
        return goc__misuse("goc_pipe_stage: a receive-only output");
    struct stage *s;
    int rc = stage_new(in, out, &s);
    if (rc)
        return rc;
    s->fn = fn;
    s->arg = arg;
    return start(g, s, stage_main);
}

/* Whether c is among the n channels of cs. */
static bool appears_in(goc_chan *const *cs, int n, const goc_chan *c)
{
    for (int i = 0; i < n; i++)
        if (cs[i] == c)
            return true;
    return false;
}

int goc_pipe_fan_out(goc_group *g,
                     goc_chan *in,
                     goc_chan *const *outs,
                     int n,
                     goc_stage_fn fn,
                     void *arg)
{
    if (!g || !in || !outs || n <= 0 || !fn)
        return -EINVAL;
    for (int i = 0; i < n; i++)
        if (outs[i] && outs[i]->recv_only)
            return goc__misuse("goc_pipe_fan_out: a receive-only output");
    /* An output given twice would be closed by one stage while the other
     * still sends on it; the input as an output would never end. */
    for (int i = 0; i < n; i++)
        if (!outs[i] || outs[i] == in || appears_in(outs, i, outs[i]))
            return -EINVAL;
    for (int i = 0; i < n; i++) {
        int rc = goc_pipe_stage(g, in, outs[i], fn, arg);
        if (rc) {
            /* The stages started close their outputs when they end; the
             * rest are closed here, so a merge over all of them ends. */
            for (int j = i; j < n; j++)
                goc_chan_close(outs[j]);
            return rc;
        }
    }
    return 0;
}

/* ---- merge --------------------------------------------------------- */

struct merge {
    _Atomic int left; /* forwarders still running; the last closes out */
    goc_chan *out;
};

struct forwarder {
    struct merge *m;
    goc_chan *in;
    void *buf;
};

static void merge_done(struct merge *m)
{
    if (atomic_fetch_sub(&m->left, 1) != 1)
        return;
    goc_chan_close(m->out); /* after all inputs: exactly once */
    goc_chan_release(m->out);
    goc__free(m);
}

static int forward_main(goc_ctx *ctx, void *arg)
{
    struct forwarder *f = arg;
    int rc;
    while ((rc = goc_chan_recv(f->in, f->buf, ctx)) > 0)
        if ((rc = emit(f->m->out, f->buf, ctx)) != 0)
            break;
    merge_done(f->m);
    goc_chan_release(f->in);
    goc__free(f->buf);
    goc__free(f);
    return rc > 0 ? 0 : rc;
}

static int start_forwarder(goc_group *g, struct merge *m, goc_chan *in)
{
    struct forwarder *f = goc__calloc(1, sizeof(*f));
    size_t sz = goc_chan_elem_size(in);
    if (f)
        f->buf = goc__malloc(sz ? sz : 1);
    if (!f || !f->buf) {
        goc__free(f);
        return -ENOMEM;
    }
    f->m = m;
    f->in = goc_chan_retain(in);
    int rc = goc_group_try_go(g, forward_main, f);
    if (rc) {
        goc_chan_release(f->in);
        goc__free(f->buf);
        goc__free(f);
    }
    return rc;
}

int goc_pipe_merge(goc_group *g, goc_chan *const *ins, int n, goc_chan *out)
{
    if (!g || !out || n < 0 || (n && !ins))
        return -EINVAL;
    if (out->recv_only)
        return goc__misuse("goc_pipe_merge: a receive-only output");
    /* out among the inputs: its forwarder would wait for out to close,
     * which only the last forwarder's end does. */
    for (int i = 0; i < n; i++)
        if (!ins[i] || ins[i] == out ||
            goc_chan_elem_size(ins[i]) != goc_chan_elem_size(out))
            return -EINVAL;
    if (n == 0)
        return goc_chan_close(out) ? -EINVAL : 0;
    struct merge *m = goc__calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    atomic_init(&m->left, n + 1); /* +1: ours, until all are started */
    m->out = goc_chan_retain(out);
    int rc = start_forwarder(g, m, ins[0]);
    if (rc) { /* nothing started: out stays open, as for a stage */
        goc_chan_release(m->out);
        goc__free(m);
        return rc;
    }
    for (int i = 1; i < n && !rc; i++)
        if ((rc = start_forwarder(g, m, ins[i])) != 0)
            atomic_fetch_sub(&m->left, n - i); /* never started */
    merge_done(m);
    return rc;
}

/* ---- timed send and receive --------------------------------------- */

int goc_chan_recv_timeout(goc_chan *c,
                          void *elem,
                          int64_t timeout,
                          goc_ctx *ctx)
{
    if (!c)
        return -EINVAL;
    int rc = goc_chan_try_recv(c, elem); /* a ready value wins */
    if (rc != -EAGAIN)
        return rc > 0 ? 0 : rc == 0 ? -EPIPE : rc;
    if ((rc = goc_ctx_err(ctx)) != 0)
        return rc;
    if (timeout <= 0)
        return -ETIMEDOUT;
    goc_ctx_local local;
    goc_ctx *t = goc_ctx_init_timeout(&local, ctx, timeout);
    rc = goc_chan_recv(c, elem, t);
    goc_ctx_destroy(t); /* the timer goes on every path */
    if (rc < 0 && goc_ctx_err(ctx))
        rc = goc_ctx_err(ctx); /* the caller's ctx, not our timer */
    return rc > 0 ? 0 : rc == 0 ? -EPIPE : rc;
}

int goc_chan_send_timeout(goc_chan *c,
                          const void *elem,
                          int64_t timeout,
                          goc_ctx *ctx)
{
    if (!c)
        return -EINVAL;
    int rc = goc_chan_try_send(c, elem); /* room ready at entry wins */
    if (rc != -EAGAIN)
        return rc;
    if ((rc = goc_ctx_err(ctx)) != 0)
        return rc;
    if (timeout <= 0)
        return -ETIMEDOUT;
    goc_ctx_local local;
    goc_ctx *t = goc_ctx_init_timeout(&local, ctx, timeout);
    rc = goc_chan_send(c, elem, t);
    goc_ctx_destroy(t);
    if (rc < 0 && rc != -EPIPE && goc_ctx_err(ctx))
        rc = goc_ctx_err(ctx);
    return rc;
}
