/* SPDX-License-Identifier: MIT */
/*
 * ctx_cancel: N children of one root context, each watched by a goroutine
 * blocked on its child's done channel. Time from cancelling the root until
 * every watcher has seen it, in microseconds.
 */
#include "bench.h"

struct watch {
    goc_ctx *ctx;
    goc_wg *started, *done;
};

static void watcher(void *arg)
{
    struct watch *w = arg;
    goc_chan *done = goc_ctx_done(w->ctx);
    goc_wg_done(w->started);
    goc_chan_recv(done, NULL, NULL);
    goc_wg_done(w->done);
}

static int64_t once(long n)
{
    goc_ctx *root;
    goc_wg started = GOC_WG_INIT, done = GOC_WG_INIT;
    struct watch *w = calloc((size_t)n, sizeof(*w));
    BENCH_CHECK(w && goc_ctx_with_cancel(NULL, &root) == 0, "setup");
    goc_wg_add(&started, n);
    goc_wg_add(&done, n);
    for (long i = 0; i < n; i++) {
        w[i] = (struct watch){ NULL, &started, &done };
        BENCH_CHECK(goc_ctx_with_cancel(root, &w[i].ctx) == 0, "child");
        goc_go(watcher, &w[i]);
    }
    goc_wg_wait(&started, NULL);
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    int64_t t0 = goc_now();
    goc_ctx_cancel(root);
    goc_wg_wait(&done, NULL);
    int64_t ns = goc_now() - t0;
    for (long i = 0; i < n; i++) {
        BENCH_CHECK(goc_ctx_err(w[i].ctx) == -ECANCELED, "child %ld", i);
        goc_ctx_release(w[i].ctx);
    }
    goc_ctx_release(root);
    free(w);
    return ns;
}

static int bench(void *arg)
{
    long n = bench_n(10000);
    (void)arg;
    once(n);
    printf("ctx_cancel %.1f us\n", (double)once(n) / 1e3);
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
