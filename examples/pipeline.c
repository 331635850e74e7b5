/* SPDX-License-Identifier: MIT */
/*
 * The seed's PipelineExample (section 2.1) in C: generator -> square ->
 * consumer, each stage a goroutine, connected by unbuffered channels.
 *
 * Fixed against the original: every stage follows the pipeline rules. A
 * stage closes its own output when done, and every send and receive takes
 * the context, so cancelling it stops every stage, even one blocked on a
 * consumer that went away (the original ignored the context in two of its
 * three stages and used Background, so nothing could be cancelled). The
 * second run cancels half-way and shows that no goroutine is left.
 */
#include <goc.h>

#include <stdio.h>

struct stage {
    goc_ctx *ctx;
    goc_chan *in, *out;
    int count;
    goc_wg *wg; /* every stage is joined */
};

static void generator(void *arg)
{
    struct stage *s = arg;
    for (int i = 1; i <= s->count; i++)
        if (goc_chan_send(s->out, &i, s->ctx) != 0)
            break; /* cancelled */
    goc_chan_close(s->out);
    goc_wg_done(s->wg);
}

static void square(void *arg)
{
    struct stage *s = arg;
    int v;
    while (goc_chan_recv(s->in, &v, s->ctx) > 0) {
        v *= v;
        if (goc_chan_send(s->out, &v, s->ctx) != 0)
            break;
    }
    goc_chan_close(s->out);
    goc_wg_done(s->wg);
}

/* Runs the pipeline; the consumer stops after @take results. */
static void run(int count, int take)
{
    goc_ctx *ctx;
    goc_chan *c1, *c2;
    goc_ctx_with_cancel(NULL, &ctx);
    goc_chan_new(sizeof(int), 0, &c1);
    goc_chan_new(sizeof(int), 0, &c2);
    goc_wg wg = GOC_WG_INIT;
    struct stage gen = { ctx, NULL, c1, count, &wg };
    struct stage sq = { ctx, c1, c2, 0, &wg };
    goc_wg_add(&wg, 2);
    goc_go(generator, &gen);
    goc_go(square, &sq);
    int v, got = 0;
    while (got < take && goc_chan_recv(c2, &v, ctx) > 0) {
        printf("Result: %d\n", v);
        got++;
    }
    /* Done early or not: cancel, and join the stages. */
    goc_ctx_cancel(ctx);
    goc_wg_wait(&wg, NULL);
    /* A stage that called goc_wg_done() counts until it has returned. */
    goc_leakcheck(0, GOC_SECOND);
    printf("consumer took %d of %d; goroutines left: %lld\n", got, count,
           (long long)goc_num_goroutine() - 1);
    goc_chan_release(c1);
    goc_chan_release(c2);
    goc_ctx_release(ctx);
}

static int example(void *unused)
{
    (void)unused;
    run(10, 10);
    run(1000000, 3); /* the consumer leaves early: cancel stops the rest */
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
