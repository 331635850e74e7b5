/* SPDX-License-Identifier: MIT */
/*
 * A ticker that ticks at a backoff policy's intervals (cenkalti/backoff's
 * Ticker): one goroutine sends a tick, waits until it is taken, asks the
 * policy for the next interval and sleeps it; it closes the channel when
 * the policy says stop, the context ends or the ticker is stopped.
 */
#include "goc/retry.h"
#include "goc/chan.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "patterns.h"
#include "../chan/chan.h"
#include "../internal/alloc.h"

struct goc_backoff_ticker {
    goc_backoff b;      /* the goroutine's own copy */
    goc_chan *c;        /* receive-only for users */
    goc_ctx *ctx;       /* the caller's, plus stop */
    goc_wg done;        /* the goroutine has closed c */
    _Atomic int reason; /* why the ticks ended; 0 while they go on */
};

static void ticker_main(void *arg)
{
    struct goc_backoff_ticker *t = arg;
    int why = 0;
    for (;;) {
        int64_t now = goc_now();
        /* A tick waits for its receiver: the next interval starts when
         * the previous attempt could begin, as in cenkalti's. */
        int rc = goc__chan_send_owned(t->c, &now, t->ctx);
        if (rc) {
            why = rc == -EPIPE ? -ECANCELED : rc;
            break;
        }
        int64_t d = goc_backoff_next(&t->b);
        if (d == GOC_BACKOFF_STOP) {
            why = GOC_EEXHAUSTED;
            break;
        }
        if ((rc = goc_sleep(d, t->ctx)) != 0) {
            why = rc;
            break;
        }
    }
    atomic_store(&t->reason, why);
    goc__chan_close_owned(t->c);
    goc_wg_done(&t->done);
}

int goc_backoff_ticker_new(const goc_backoff *b,
                           goc_ctx *ctx,
                           goc_backoff_ticker **out)
{
    if (!b || !out || goc_backoff_validate(b) != 0)
        return -EINVAL;
    struct goc_backoff_ticker *t = goc__calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    t->b = *b;
    goc_backoff_reset(&t->b);
    goc_wg_init(&t->done);
    int rc = goc_chan_new(sizeof(int64_t), 0, &t->c);
    if (!rc && (rc = goc_ctx_with_cancel(ctx, &t->ctx)) != 0)
        goc_chan_release(t->c);
    if (rc) {
        goc__free(t);
        return rc;
    }
    t->c->recv_only = true; /* before it is handed out */
    goc_wg_add(&t->done, 1);
    if ((rc = goc_go(ticker_main, t)) != 0) {
        goc_ctx_release(t->ctx);
        goc_chan_release(t->c);
        goc__free(t);
        return rc;
    }
    *out = t;
    return 0;
}

goc_chan *goc_backoff_ticker_chan(goc_backoff_ticker *t)
{
    if (!t)
        goc__null_argument(__func__);
    return t->c;
}

void goc_backoff_ticker_stop(goc_backoff_ticker *t)
{
    if (!t)
        return;
    goc_ctx_cancel(t->ctx);
    goc_wg_wait(&t->done, NULL);
}

int goc_backoff_ticker_reason(goc_backoff_ticker *t)
{
    return t ? atomic_load(&t->reason) : -EINVAL;
}

void goc_backoff_ticker_free(goc_backoff_ticker *t)
{
    if (!t)
        return;
    goc_backoff_ticker_stop(t);
    goc_ctx_release(t->ctx);
    goc_chan_release(t->c);
    goc__free(t);
}
