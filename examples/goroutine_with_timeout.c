/* SPDX-License-Identifier: MIT */
/*
 * The seed's GoroutineWithTimeout (section 1.1) in C: run work in a
 * goroutine and give up after a timeout.
 *
 * Fixed against the original: the work is a parameter instead of a
 * hard-coded 2 s sleep, it receives the derived context and stops as soon
 * as the timeout cancels it (the original left it running), and it is not
 * started at all if the context is already done. The result channel has
 * room for one value, so the worker never blocks on a caller that left.
 */
#include <goc.h>

#include <stdio.h>
#include <stdlib.h>

typedef int (*work_fn)(goc_ctx *ctx, void *arg);

struct job {
    work_fn work;
    void *arg;
    goc_ctx *ctx;
    goc_chan *done; /* capacity 1: the result, never blocks */
};

/* The job outlives the caller when it times out: the goroutine owns it. */
static void run_job(void *p)
{
    struct job *j = p;
    int rc = j->work(j->ctx, j->arg);
    goc_chan_send(j->done, &rc, NULL);
    goc_chan_release(j->done);
    goc_ctx_release(j->ctx);
    free(j);
}

/*
 * Runs work(ctx, arg) in a goroutine; returns its result, or the context's
 * error (-ETIMEDOUT, -ECANCELED) if that comes first. The work sees the
 * same context and is expected to return when it ends.
 */
static int goroutine_with_timeout(goc_ctx *parent,
                                  int64_t timeout,
                                  work_fn work,
                                  void *arg)
{
    goc_ctx *ctx;
    int err = goc_ctx_with_timeout(parent, timeout, &ctx);
    if (err)
        return err;
    struct job *j = malloc(sizeof(*j));
    if (!j) {
        goc_ctx_release(ctx);
        return -ENOMEM;
    }
    *j = (struct job){ work, arg, ctx, NULL };
    /* Not started at all when the context is already done. */
    if ((err = goc_ctx_err(ctx)) != 0 ||
        (err = goc_chan_new(sizeof(int), 1, &j->done)) != 0) {
        goc_ctx_release(ctx);
        free(j);
        return err;
    }
    goc_chan *done = goc_chan_retain(j->done);
    goc_ctx_retain(ctx); /* one reference each for us and the job */
    if ((err = goc_go(run_job, j)) != 0) {
        goc_chan_release(j->done);
        goc_ctx_release(ctx);
        free(j);
    } else {
        int rc = 0;
        err = goc_chan_recv(done, &rc, ctx);
        if (err > 0)
            err = rc;
    }
    goc_chan_release(done);
    goc_ctx_release(ctx); /* the work keeps its own reference */
    return err;
}

/* Work that takes @arg milliseconds, and notices cancellation. */
static int slow_work(goc_ctx *ctx, void *arg)
{
    int64_t ms = (int64_t)(intptr_t)arg;
    int err = goc_sleep(ms * GOC_MILLISECOND, ctx);
    if (err) {
        printf("  work: stopped early (%s)\n", goc_strerror(err));
        return err;
    }
    printf("  work: finished after %lld ms\n", (long long)ms);
    return 0;
}

static int example(void *unused)
{
    (void)unused;
    int rc = goroutine_with_timeout(NULL, 200 * GOC_MILLISECOND, slow_work,
                                    (void *)(intptr_t)20);
    printf("20 ms of work, 200 ms timeout: %s\n", goc_strerror(rc));
    rc = goroutine_with_timeout(NULL, 30 * GOC_MILLISECOND, slow_work,
                                (void *)(intptr_t)2000);
    printf("2 s of work, 30 ms timeout: %s\n", goc_strerror(rc));
    goc_leakcheck(0, GOC_SECOND); /* the work reports and ends */
    printf("goroutines left: %lld\n", (long long)goc_num_goroutine() - 1);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
