/* SPDX-License-Identifier: MIT */
/*
 * The fan-out and fan-in parts of the seed's section 2.1 in C: a
 * generator feeds 4 workers (each doubles its values), a merge gathers
 * their outputs, the consumer sums them; then the same pipeline is
 * cancelled midway.
 *
 * Fixed against the original: the worker function is a parameter (the
 * original hard-coded v*2); every send and receive of every stage takes
 * the pipeline's context, so after cancel no worker stays blocked on a
 * consumer that left and the merge does not wait forever on an input
 * that never closes (the original leaked both); the merged output is
 * closed once, after every input; the order across workers is not the
 * input order, and the sum shows nothing was lost or duplicated.
 */
#include <goc.h>

#include <stdio.h>

struct counter {
    long next, n;
};

static int count_up(void *arg, void *out)
{
    struct counter *c = arg;
    if (c->n && c->next >= c->n)
        return 0; /* n = 0: endless */
    *(long *)out = c->next++;
    return 1;
}

static int twice(void *arg, const void *in, void *out)
{
    (void)arg;
    *(long *)out = *(const long *)in * 2;
    return 0;
}

/* generator -> fan-out(4) -> merge; returns the merged channel. */
static goc_chan *build(goc_group *g, struct counter *c, goc_chan *outs[5])
{
    goc_chan *merged;
    for (int i = 0; i < 5; i++)
        goc_chan_new(sizeof(long), 0, &outs[i]);
    goc_chan_new(sizeof(long), 0, &merged);
    goc_pipe_generator(g, outs[4], count_up, c);
    goc_pipe_fan_out(g, outs[4], outs, 4, twice, NULL);
    goc_pipe_merge(g, outs, 4, merged);
    return merged;
}

static void release(goc_chan *outs[5], goc_chan *merged)
{
    for (int i = 0; i < 5; i++)
        goc_chan_release(outs[i]);
    goc_chan_release(merged);
}

static int example(void *unused)
{
    (void)unused;
    goc_group *g;
    goc_chan *outs[5], *merged;
    struct counter c = { 1, 1001 };
    goc_group_new(NULL, &g);
    merged = build(g, &c, outs);
    long v, sum = 0, n = 0;
    while (goc_chan_recv(merged, &v, NULL) > 0) {
        sum += v;
        n++;
    }
    printf("fan-out/fan-in: %ld values, sum %ld (want %ld), result %s\n", n,
           sum, 1000L * 1001, goc_strerror(goc_group_wait(g, NULL)));
    goc_group_free(g);
    release(outs, merged);

    goc_ctx *ctx;
    goc_ctx_with_cancel(NULL, &ctx);
    goc_group_new(ctx, &g);
    struct counter endless = { 0, 0 };
    merged = build(g, &endless, outs);
    for (int i = 0; i < 5; i++)
        goc_chan_recv(merged, &v, NULL);
    goc_ctx_cancel(ctx); /* the consumer walks away after 5 values */
    int err = goc_group_wait(g, NULL);
    /* A task the group has counted out still exists until it returns. */
    goc_leakcheck(0, GOC_SECOND);
    printf("cancelled midway: pipeline ended with \"%s\"; "
           "goroutines left besides main: %lld\n",
           goc_strerror(err), (long long)goc_num_goroutine() - 1);
    goc_group_free(g);
    goc_ctx_release(ctx);
    release(outs, merged);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
