/* SPDX-License-Identifier: MIT */
/*
 * goc_sleep with a context: a timer and the context race to claim one
 * wait. Without a context that can end, it is the runtime's plain sleep.
 */
#include "ctx.h"
#include "goc/time.h"

static void sleep_fire(void *arg)
{
    struct goc__wait *w = arg;
    if (goc__wait_claim(w, 0))
        goc__wait_finish(w);
}

int goc_sleep(int64_t ns, goc_ctx *ctx)
{
    struct goc_ctx *c = goc__ctx_canceller(ctx);
    int err = c ? goc_ctx_err(c) : 0;
    if (err)
        return err;
    if (ns <= 0)
        return 0;
    int64_t now = goc_now();
    int64_t deadline = ns > INT64_MAX - now ? INT64_MAX : now + ns;
    if (!c) {
        goc__sleep_until(deadline);
        return 0;
    }
    struct goc__wait w;
    struct goc__ctx_watch cw;
    struct goc__timer t = { 0 };
    if ((err = goc__rt_ensure()) != 0)
        return err;
    goc__wait_init(&w, GOC__WAIT_SLEEP);
    if ((err = goc__ctx_watch(c, &cw, &w, 1)) != 0)
        return err;
    goc__timer_start(&t, deadline, sleep_fire, &w);
    int won = goc__wait_block(&w, NULL, NULL);
    /* The timer lives in this frame: make sure it is done with it. */
    goc__timer_stop_sync(&t);
    goc__ctx_unwatch(&cw);
    return won == 0 ? 0 : goc_ctx_err(c);
}
