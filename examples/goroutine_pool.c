/* SPDX-License-Identifier: MIT */
/*
 * The seed's PoolExample (section 1.2) in C: 100 tasks through a pool of
 * at most 10 goroutines.
 *
 * Fixed against the original: the pool runs the caller's function (the
 * original's work was hard-coded); submit blocks as backpressure instead
 * of one goroutine per submit; there is one deadline for the whole batch
 * instead of 5 s per task; every accepted task runs exactly once and is
 * counted; a submit after release is refused every time (the original
 * accepted and lost it at random); a failed task does not kill its worker.
 */
#include <goc.h>

#include <stdatomic.h>
#include <stdio.h>

static int results[100];
static _Atomic int failed;

static int task(void *arg)
{
    int id = (int)(intptr_t)arg;
    goc_sleep(GOC_MILLISECOND, NULL); /* the work */
    if (id % 25 == 24) {
        atomic_fetch_add(&failed, 1);
        return -EIO; /* counted; the worker lives on */
    }
    results[id] = id * id;
    return 0;
}

static int example(void *unused)
{
    (void)unused;
    struct goc_pool_config cfg = { .capacity = 10 };
    goc_pool *pool;
    if (goc_pool_new(&cfg, &pool) != 0)
        return 1;
    goc_ctx_local local; /* one deadline for the whole batch */
    goc_ctx *batch = goc_ctx_init_timeout(&local, NULL, 5 * GOC_SECOND);
    int64_t t0 = goc_now();
    for (intptr_t i = 0; i < 100; i++) {
        int err = goc_pool_submit(pool, task, (void *)i, batch);
        if (err)
            printf("task %d: %s\n", (int)i, goc_strerror(err));
    }
    int err = goc_pool_wait_idle(pool, batch);
    goc_ctx_destroy(batch);
    if (err) {
        printf("batch missed its deadline: %s\n", goc_strerror(err));
        goc_pool_free(pool); /* the running tasks finish first */
        return 1;
    }
    struct goc_pool_stats st;
    goc_pool_stats(pool, &st);
    printf("100 tasks of 1 ms on at most %lld goroutines: %lld completed "
           "(%lld failed) in %.1f ms; workers alive %lld\n",
           (long long)goc_pool_cap(pool), (long long)st.completed,
           (long long)st.failed, (double)(goc_now() - t0) / 1e6,
           (long long)st.workers);
    printf("results[7] = %d, results[98] = %d\n", results[7], results[98]);
    goc_pool_release(pool);
    printf("submit after release: %s\n",
           goc_strerror(goc_pool_submit(pool, task, NULL, NULL)));
    goc_pool_free(pool);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
