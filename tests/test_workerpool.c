/* SPDX-License-Identifier: MIT */
/* Tests of the worker pool with a task queue (pond v2 semantics). */
#include "test.h"

#include "../src/internal/alloc.h"
#include "../src/patterns/patterns.h" /* goc__workerpool_inside */

#include <pthread.h>
#include <stdatomic.h>

static _Atomic int64_t ran;

/* Blocks until the gate channel is closed (or its ctx ends). */
static int gated(goc_ctx *ctx, void *arg, void **result)
{
    (void)result;
    atomic_fetch_add(&ran, 1);
    int rc = goc_chan_recv(arg, NULL, ctx);
    return rc < 0 ? rc : 0;
}

static int count_task(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    atomic_fetch_add(&ran, 1);
    return 0;
}

static goc_chan *gate(void)
{
    goc_chan *c;
    ASSERT_OK(goc_chan_new(0, 0, &c));
    return c;
}

static goc_workerpool *pool(int64_t workers, int64_t queue, unsigned flags)
{
    struct goc_workerpool_config cfg = { .max_workers = workers,
                                         .queue_size = queue,
                                         .flags = flags };
    goc_workerpool *p;
    ASSERT_OK(goc_workerpool_new(&cfg, &p));
    return p;
}

static void wait_running(goc_workerpool *p, int64_t n)
{
    struct goc_workerpool_stats st;
    do {
        goc_sleep(100 * GOC_MICROSECOND, NULL);
        ASSERT_OK(goc_workerpool_stats(p, &st));
    } while (st.running < n);
}

static int status_of(goc_future *f)
{
    int st = 1;
    ASSERT_OK(goc_future_get(f, &st, NULL, NULL));
    return st;
}

TEST(workerpool, zero_and_negative_sizes_rejected_d019_d077)
{
    goc_workerpool *p = NULL;
    struct goc_workerpool_config bad[] = { { .max_workers = -1 },
                                           { .queue_size = -2 },
                                           { .flags = 8 } };
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(goc_workerpool_new(&bad[i], &p), -EINVAL);
    ASSERT_EQ(goc_workerpool_new(NULL, NULL), -EINVAL);
    /* Zero means the documented default, never a pool that hangs. */
    ASSERT_OK(goc_workerpool_new(NULL, &p));
    goc_future *f;
    ASSERT_EQ(goc_workerpool_submit(p, NULL, NULL, NULL, &f, NULL), -EINVAL);
    ASSERT(f == NULL);
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, &f, NULL));
    ASSERT_EQ(status_of(f), 0);
    goc_future_release(f);
    ASSERT_EQ(goc_workerpool_resize(p, -1), -EINVAL);
    goc_workerpool_free(p);
    test_no_leaks();
}

static int outcome_task(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    intptr_t i = (intptr_t)arg;
    if (i % 3 == 1)
        return -EIO;
    if (i % 3 == 2)
        *result = malloc(8);
    return 0; /* i % 3 == 0: no value and no error: still an outcome */
}

TEST_G(workerpool, nil_result_still_completes_d018)
{
    enum { N = 300 };
    goc_workerpool *p = pool(4, 0, 0);
    goc_future *f[N];
    for (intptr_t i = 0; i < N; i++)
        ASSERT_OK(goc_workerpool_submit(p, outcome_task, (void *)i, free, &f[i],
                                        NULL));
    for (int i = 0; i < N; i++) {
        void *v = (void *)1;
        int st;
        ASSERT_OK(goc_future_get(f[i], &st, &v, NULL));
        ASSERT_EQ(st, i % 3 == 1 ? -EIO : 0);
        ASSERT((i % 3 == 2) == (v != NULL));
        goc_future_release(f[i]); /* frees the value */
    }
    /* A handle settles before its worker books the outcome: wait. */
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    struct goc_workerpool_stats st;
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.succeeded, 200);
    ASSERT_EQ(st.failed, 100);
    ASSERT_EQ(st.submitted, N);
    goc_workerpool_free(p);
}

TEST_G(workerpool, stop_runs_queued_tasks_d014_d072)
{
    goc_workerpool *p = pool(1, 0, 0);
    goc_chan *g = gate();
    goc_future *f[11];
    atomic_store(&ran, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, &f[0], NULL));
    for (int i = 1; i < 11; i++)
        ASSERT_OK(
            goc_workerpool_submit(p, count_task, NULL, NULL, &f[i], NULL));
    wait_running(p, 1);
    ASSERT_OK(goc_workerpool_stop(p));
    ASSERT_OK(goc_workerpool_stop(p)); /* idempotent */
    goc_chan_close(g);
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 11);
    for (int i = 0; i < 11; i++) {
        ASSERT_EQ(goc_future_state(f[i]), GOC_FUTURE_FULFILLED);
        goc_future_release(f[i]);
    }
    goc_workerpool_free(p);
    goc_chan_release(g);
}

TEST_G(workerpool, cancel_settles_queued_without_running)
{
    goc_workerpool *p = pool(1, 0, 0);
    goc_chan *g = gate();
    goc_future *f[6];
    atomic_store(&ran, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, &f[0], NULL));
    for (int i = 1; i < 6; i++)
        ASSERT_OK(
            goc_workerpool_submit(p, count_task, NULL, NULL, &f[i], NULL));
    wait_running(p, 1);
    ASSERT_EQ(goc_workerpool_cancel(p), 5);
    ASSERT_EQ(goc_workerpool_cancel(p), 0); /* idempotent */
    /* The running task saw its ctx end; the queued ones never ran. */
    ASSERT_EQ(status_of(f[0]), -ECANCELED);
    for (int i = 1; i < 6; i++)
        ASSERT_EQ(status_of(f[i]), -ECANCELED);
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 1);
    ASSERT_EQ(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, NULL),
              GOC_ECLOSED);
    struct goc_workerpool_stats st;
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.canceled, 6);
    for (int i = 0; i < 6; i++)
        goc_future_release(f[i]);
    goc_workerpool_free(p);
    goc_chan_release(g);
}

TEST_G(workerpool, submit_after_stop_always_closed_d015_d073)
{
    for (int i = 0; i < test_scale(10000); i++) {
        goc_workerpool *p = pool(2, 4, 0);
        ASSERT_OK(goc_workerpool_stop(p));
        goc_future *f = (goc_future *)1;
        ASSERT_EQ(goc_workerpool_submit(p, count_task, NULL, NULL, &f, NULL),
                  GOC_ECLOSED);
        ASSERT(f == NULL);
        ASSERT_EQ(goc_workerpool_try_submit(p, count_task, NULL, NULL, NULL),
                  GOC_ECLOSED);
        if (i == 0) { /* every entry point: these two were accepted */
            ASSERT_EQ(goc_workerpool_resize(p, 8), GOC_ECLOSED);
            goc_wpgroup *g = (goc_wpgroup *)1;
            ASSERT_EQ(goc_wpgroup_new(p, &g), GOC_ECLOSED);
        }
        goc_workerpool_free(p);
    }
}

TEST_G(workerpool, worker_never_blocks_on_user_channel_d017_d078)
{
    /* Nobody ever reads the outcomes: the workers still finish. */
    goc_workerpool *p = pool(2, 0, 0);
    for (intptr_t i = 0; i < 100; i++)
        ASSERT_OK(goc_workerpool_submit(p, outcome_task, (void *)i, free, NULL,
                                        NULL));
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    struct goc_workerpool_stats st;
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.succeeded + st.failed, 100);
    goc_workerpool_free(p);
}

struct blocked_submit {
    goc_workerpool *p;
    goc_ctx *ctx;
    _Atomic int rc;
};

static void submit_blocked(void *arg)
{
    struct blocked_submit *b = arg;
    atomic_store(&b->rc, goc_workerpool_submit(b->p, count_task, NULL, NULL,
                                               NULL, b->ctx));
}

static void *submit_thread(void *arg)
{
    submit_blocked(arg);
    return NULL;
}

static void wait_waiting(goc_workerpool *p, int64_t queued, int64_t blocked)
{
    struct goc_workerpool_stats st;
    (void)blocked;
    do {
        goc_sleep(200 * GOC_MICROSECOND, NULL);
        goc_workerpool_stats(p, &st);
    } while (st.waiting < queued);
    goc_sleep(5 * GOC_MILLISECOND, NULL); /* let the blocked ones park */
}

TEST_G(workerpool, shutdown_with_queued_running_and_blocked_tasks)
{
    goc_workerpool *p = pool(1, 2, 0);
    goc_chan *g = gate();
    goc_future *f[3];
    atomic_store(&ran, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, &f[0], NULL));
    wait_running(p, 1);
    for (int i = 1; i < 3; i++)
        ASSERT_OK(
            goc_workerpool_submit(p, count_task, NULL, NULL, &f[i], NULL));
    ASSERT_EQ(goc_workerpool_try_submit(p, count_task, NULL, NULL, NULL),
              GOC_EOVERLOAD);
    static struct blocked_submit b1, b2;
    b1 = (struct blocked_submit){ p, NULL, 1 };
    b2 = (struct blocked_submit){ p, NULL, 1 };
    ASSERT_OK(goc_go(submit_blocked, &b1));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, submit_thread, &b2));
    wait_waiting(p, 2, 2);
    ASSERT_EQ(atomic_load(&b1.rc), 1); /* still blocked */
    ASSERT_EQ(goc_workerpool_cancel(p), 2);
    test_join(th, NULL);
    while (atomic_load(&b1.rc) == 1)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&b1.rc), GOC_ECLOSED);
    ASSERT_EQ(atomic_load(&b2.rc), GOC_ECLOSED);
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    /* Accepted 3: one ran (and saw its ctx cancelled), two cancelled. */
    struct goc_workerpool_stats st;
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.submitted, 3);
    ASSERT_EQ(st.succeeded + st.failed + st.canceled, 3);
    ASSERT_EQ(st.refused, 3);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(status_of(f[i]), -ECANCELED);
        goc_future_release(f[i]);
    }
    ASSERT_EQ(atomic_load(&ran), 1);
    goc_workerpool_free(p);
    goc_chan_release(g);
}

/* Fill a 1-worker, 1-slot pool: one running (gated), one queued. */
static goc_workerpool *full_pool(goc_chan *g)
{
    goc_workerpool *p = pool(1, 1, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, NULL, NULL));
    wait_running(p, 1);
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, NULL));
    return p;
}

TEST_G(workerpool, blocking_submit_timeout_cancel_and_entry)
{
    goc_chan *g = gate();
    goc_workerpool *p = full_pool(g);
    goc_ctx_local l;
    /* timeout */
    goc_ctx *c = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, c),
              -ETIMEDOUT);
    goc_ctx_destroy(c);
    /* cancel while waiting */
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, k),
              -ECANCELED);
    /* cancel before entry: refused even once there is room */
    goc_chan_close(g);
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    ASSERT_EQ(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, k),
              -ECANCELED);
    goc_ctx_release(k);
    struct goc_workerpool_stats st;
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.submitted, 2); /* nothing of the refused ones stayed */
    /* success once there is room */
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, NULL));
    goc_workerpool_free(p);
    goc_chan_release(g);
}

TEST_G(workerpool, blocking_submit_close_while_waiting_and_plain_thread)
{
    goc_chan *g = gate();
    goc_workerpool *p = full_pool(g);
    static struct blocked_submit b;
    b = (struct blocked_submit){ p, NULL, 1 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, submit_thread, &b));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT_OK(goc_workerpool_stop(p)); /* close while it waits */
    test_join(th, NULL);
    ASSERT_EQ(atomic_load(&b.rc), GOC_ECLOSED);
    goc_chan_close(g);
    goc_workerpool_free(p);
    goc_chan_release(g);
    /* plain thread succeeding */
    p = pool(1, 1, 0);
    b = (struct blocked_submit){ p, NULL, 1 };
    ASSERT_OK(pthread_create(&th, NULL, submit_thread, &b));
    test_join(th, NULL);
    ASSERT_OK(atomic_load(&b.rc));
    goc_workerpool_free(p);
}

TEST_G(workerpool, pool_ctx_end_cancels_queued_tasks)
{
    goc_ctx *parent;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &parent));
    struct goc_workerpool_config cfg = { .max_workers = 1, .ctx = parent };
    goc_workerpool *p;
    ASSERT_OK(goc_workerpool_new(&cfg, &p));
    goc_chan *g = gate();
    goc_future *f[4];
    atomic_store(&ran, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, &f[0], NULL));
    wait_running(p, 1);
    for (int i = 1; i < 4; i++)
        ASSERT_OK(
            goc_workerpool_submit(p, count_task, NULL, NULL, &f[i], NULL));
    goc_ctx_cancel(parent);
    for (int i = 0; i < 4; i++) {
        ASSERT_EQ(status_of(f[i]), -ECANCELED);
        goc_future_release(f[i]);
    }
    ASSERT_EQ(atomic_load(&ran), 1);
    ASSERT_EQ(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, NULL),
              GOC_ECLOSED);
    goc_workerpool_free(p);
    goc_ctx_release(parent);
    goc_chan_release(g);
}

/* Blocks until the gate closes, deaf to its ctx. */
static int gated_deaf(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)result;
    atomic_fetch_add(&ran, 1);
    goc_chan_recv(arg, NULL, NULL);
    return 0;
}

/* The pool's ctx ending settles the queue at once, even while every
 * worker is busy with a task that does not watch its ctx. */
TEST_G(workerpool, pool_ctx_end_settles_the_queue_while_workers_are_busy)
{
    goc_ctx *parent;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &parent));
    struct goc_workerpool_config cfg = { .max_workers = 1, .ctx = parent };
    goc_workerpool *p;
    ASSERT_OK(goc_workerpool_new(&cfg, &p));
    goc_chan *g = gate();
    goc_future *a, *b;
    ASSERT_OK(goc_workerpool_submit(p, gated_deaf, g, NULL, &a, NULL));
    wait_running(p, 1);
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, &b, NULL));
    goc_ctx_cancel(parent);
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 2 * GOC_SECOND);
    int st = 1;
    ASSERT_OK(goc_future_get(b, &st, NULL, t)); /* while a still runs */
    goc_ctx_destroy(t);
    ASSERT_EQ(st, -ECANCELED);
    ASSERT_EQ(goc_future_is_done(a), false);
    goc_chan_close(g);
    ASSERT_EQ(status_of(a), 0);
    goc_future_release(a);
    goc_future_release(b);
    goc_workerpool_free(p);
    goc_ctx_release(parent);
    goc_chan_release(g);
}

/* wait_idle returns once the pool is idle, also when the last queued
 * task was cancelled and only skipped: that skip used to wake nobody. */
TEST_G(workerpool, wait_idle_ends_after_a_skipped_cancelled_task)
{
    goc_workerpool *p = pool(1, 0, 0);
    goc_chan *g = gate();
    goc_future *a, *b;
    ASSERT_OK(goc_workerpool_submit(p, gated_deaf, g, NULL, &a, NULL));
    wait_running(p, 1);
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, &b, NULL));
    ASSERT_EQ(goc_future_cancel(b), 1);
    goc_chan_close(g);
    /* Idle as soon as a ends and b is skipped: long before the bound (a
     * wait that nobody wakes returns 0 only at its ctx's end). */
    int64_t t0 = goc_now();
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 5 * GOC_SECOND);
    ASSERT_OK(goc_workerpool_wait_idle(p, t));
    goc_ctx_destroy(t);
    ASSERT_LT(goc_now() - t0, 3 * GOC_SECOND);
    goc_future_release(a);
    goc_future_release(b);
    goc_workerpool_free(p);
    goc_chan_release(g);
}

TEST_G(workerpool, handle_cancel_skips_a_queued_task)
{
    goc_workerpool *p = pool(1, 0, 0);
    goc_chan *g = gate();
    goc_future *a, *b;
    atomic_store(&ran, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, &a, NULL));
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, &b, NULL));
    ASSERT_EQ(goc_future_cancel(b), 1);
    ASSERT_EQ(goc_future_cancel(b), 0);
    goc_chan_close(g);
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 1); /* only the gated one */
    ASSERT_EQ(status_of(a), 0);
    ASSERT_EQ(status_of(b), -ECANCELED);
    goc_future_release(a);
    goc_future_release(b);
    goc_workerpool_free(p);
    goc_chan_release(g);
}

TEST_G(workerpool, nonblocking_and_no_queue_refuse_with_overload)
{
    goc_chan *g = gate();
    goc_workerpool *p = pool(1, GOC_WP_NO_QUEUE, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, NULL, NULL));
    wait_running(p, 1);
    ASSERT_EQ(goc_workerpool_try_submit(p, count_task, NULL, NULL, NULL),
              GOC_EOVERLOAD);
    goc_chan_close(g);
    goc_workerpool_free(p);
    goc_chan_release(g);
    g = gate();
    p = pool(1, 1, GOC_WP_NONBLOCKING);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, NULL, NULL));
    wait_running(p, 1);
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, NULL));
    ASSERT_EQ(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, NULL),
              GOC_EOVERLOAD);
    goc_chan_close(g);
    goc_workerpool_free(p);
    goc_chan_release(g);
}

static _Atomic int64_t live, peak;

static int peak_task(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    int64_t n = atomic_fetch_add(&live, 1) + 1;
    int64_t m = atomic_load(&peak);
    while (n > m && !atomic_compare_exchange_weak(&peak, &m, n))
        ;
    goc_sleep(200 * GOC_MICROSECOND, NULL);
    atomic_fetch_sub(&live, 1);
    return 0;
}

TEST_G(workerpool, resize_bounds_concurrency_and_timing_stats)
{
    goc_workerpool *p = pool(3, 0, 0);
    atomic_store(&peak, 0);
    for (int i = 0; i < 60; i++)
        ASSERT_OK(goc_workerpool_submit(p, peak_task, NULL, NULL, NULL, NULL));
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    ASSERT_LE(atomic_load(&peak), 3);
    ASSERT_OK(goc_workerpool_resize(p, 6));
    atomic_store(&peak, 0);
    for (int i = 0; i < 120; i++)
        ASSERT_OK(goc_workerpool_submit(p, peak_task, NULL, NULL, NULL, NULL));
    ASSERT_OK(goc_workerpool_resize(p, 1)); /* shrink mid-flight */
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    ASSERT_LE(atomic_load(&peak), 6);
    atomic_store(&peak, 0);
    for (int i = 0; i < 20; i++)
        ASSERT_OK(goc_workerpool_submit(p, peak_task, NULL, NULL, NULL, NULL));
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&peak), 1);
    /* A handle settles before its worker books the outcome: wait. */
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    struct goc_workerpool_stats st;
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.succeeded, 200);
    ASSERT_GE(st.run_ns_total, 200 * 200 * GOC_MICROSECOND);
    ASSERT_GE(st.run_ns_max, 200 * GOC_MICROSECOND);
    ASSERT_GT(st.wait_ns_total, 0);
    ASSERT_LE(st.workers, 1);
    goc_workerpool_free(p);
}

struct feeder {
    goc_workerpool *p;
    int n;
    goc_wg wg;
};

static void feed(void *arg)
{
    struct feeder *f = arg;
    for (int i = 0; i < f->n; i++)
        ASSERT_OK(
            goc_workerpool_submit(f->p, count_task, NULL, NULL, NULL, NULL));
}

static void feed_g(void *arg)
{
    struct feeder *f = arg;
    feed(f);
    goc_wg_done(&f->wg);
}

static void *feed_thread(void *arg)
{
    feed_g(arg);
    return NULL;
}

TEST_G(workerpool, stress_from_goroutines_and_threads_counts_balance)
{
    goc_workerpool *p = pool(4, 16, 0);
    int n = (int)test_scale(20000);
    atomic_store(&ran, 0);
    static struct feeder fd;
    fd = (struct feeder){ .p = p, .n = n };
    goc_wg_add(&fd.wg, 6);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ASSERT_OK(pthread_create(&th[i], NULL, feed_thread, &fd));
    for (int i = 0; i < 4; i++)
        ASSERT_OK(goc_go(feed_g, &fd));
    goc_wg_wait(&fd.wg, NULL); /* parks, unlike pthread_join */
    for (int i = 0; i < 2; i++)
        test_join(th[i], NULL);
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 6 * (int64_t)n);
    struct goc_workerpool_stats st;
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.submitted, 6 * (int64_t)n);
    ASSERT_EQ(st.succeeded, 6 * (int64_t)n);
    goc_workerpool_free(p);
}

static goc_workerpool *self_pool;

static int calls_back_in(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    /* No pool lock is held while a task runs. */
    struct goc_workerpool_stats st;
    ASSERT_OK(goc_workerpool_stats(self_pool, &st));
    ASSERT_EQ(st.running, 1);
    return goc_workerpool_submit(self_pool, count_task, NULL, NULL, NULL, NULL);
}

TEST_G(workerpool, task_may_call_back_into_its_pool)
{
    self_pool = pool(1, 0, 0);
    goc_future *f;
    atomic_store(&ran, 0);
    ASSERT_OK(
        goc_workerpool_submit(self_pool, calls_back_in, NULL, NULL, &f, NULL));
    ASSERT_EQ(status_of(f), 0);
    goc_future_release(f);
    ASSERT_OK(goc_workerpool_stop_wait(self_pool, NULL));
    ASSERT_EQ(atomic_load(&ran), 1);
    goc_workerpool_free(self_pool);
}

struct waiter_call {
    goc_workerpool *p;
    _Atomic int rc;
};

static void *stop_wait_thread(void *arg)
{
    struct waiter_call *w = arg;
    atomic_store(&w->rc, goc_workerpool_stop_wait(w->p, NULL));
    return NULL;
}

TEST_G(workerpool, stop_wait_and_wait_idle_timeout_cancel_and_thread)
{
    goc_chan *g = gate();
    goc_workerpool *p = pool(1, 0, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, NULL, NULL));
    wait_running(p, 1);
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_workerpool_wait_idle(p, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_workerpool_stop_wait(p, k), -ECANCELED);
    ASSERT_EQ(goc_workerpool_stop_wait(p, k), -ECANCELED); /* at entry */
    goc_ctx_release(k);
    /* stopped by the call above, still draining: a plain thread waits */
    static struct waiter_call w;
    w = (struct waiter_call){ p, 1 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, stop_wait_thread, &w));
    goc_sleep(3 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&w.rc), 1);
    goc_chan_close(g);
    test_join(th, NULL);
    ASSERT_OK(atomic_load(&w.rc));
    /* a finished state wins over a done ctx */
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_ctx_cancel(k);
    ASSERT_OK(goc_workerpool_wait_idle(p, k));
    ASSERT_OK(goc_workerpool_stop_wait(p, k));
    goc_ctx_release(k);
    goc_workerpool_free(p);
    goc_chan_release(g);
}

static goc_chan *group_gate;

static int group_task(goc_ctx *ctx, void *arg, void **result)
{
    intptr_t v = (intptr_t)arg;
    atomic_fetch_add(&ran, 1);
    if (v < 0) { /* fails once the test has queued everything */
        goc_chan_recv(group_gate, NULL, NULL);
        return (int)v;
    }
    if (v == 1000) /* a long one: runs until the group is cancelled */
        return goc_sleep(10 * GOC_SECOND, ctx);
    int *r = malloc(sizeof(*r));
    *r = (int)v * 10;
    *result = r;
    return 0;
}

TEST_G(workerpool, group_results_in_submission_order)
{
    goc_workerpool *p = pool(4, 0, 0);
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new(p, &g));
    for (intptr_t i = 0; i < 50; i++)
        ASSERT_OK(goc_wpgroup_submit(g, group_task, (void *)i, free, NULL));
    ASSERT_OK(goc_wpgroup_wait(g, NULL));
    ASSERT_EQ(goc_wpgroup_len(g), 50);
    for (size_t i = 0; i < 50; i++) {
        int st;
        void *v;
        ASSERT_OK(goc_future_get(goc_wpgroup_task(g, i), &st, &v, NULL));
        ASSERT_EQ(st, 0);
        ASSERT_EQ(*(int *)v, (int)i * 10);
    }
    ASSERT(goc_wpgroup_task(g, 50) == NULL);
    goc_wpgroup_free(g);
    goc_workerpool_free(p);
}

TEST_G(workerpool, group_first_error_cancels_queued_and_running)
{
    goc_workerpool *p = pool(2, 0, 0);
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new(p, &g));
    atomic_store(&ran, 0);
    group_gate = gate();
    /* worker 1: a long task; worker 2: fails; 10 more wait in the queue */
    ASSERT_OK(goc_wpgroup_submit(g, group_task, (void *)1000, free, NULL));
    ASSERT_OK(
        goc_wpgroup_submit(g, group_task, (void *)(intptr_t)-EIO, free, NULL));
    for (intptr_t i = 0; i < 10; i++)
        ASSERT_OK(goc_wpgroup_submit(g, group_task, (void *)i, free, NULL));
    goc_chan_close(group_gate);
    ASSERT_EQ(goc_wpgroup_wait(g, NULL), -EIO); /* at the first error */
    ASSERT_EQ(goc_ctx_cause(goc_wpgroup_ctx(g)), -EIO);
    ASSERT_EQ(goc_wpgroup_submit(g, group_task, (void *)1, free, NULL),
              GOC_ECLOSED);
    goc_wpgroup_free(g);             /* waits for the long one to see its ctx */
    ASSERT_EQ(atomic_load(&ran), 2); /* the queued ten never ran */
    struct goc_workerpool_stats st;
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.canceled, 11); /* ten queued + the long one */
    ASSERT_EQ(st.failed, 1);
    goc_workerpool_free(p);
    goc_chan_release(group_gate);
}

static void *group_wait_thread(void *arg)
{
    return (void *)(intptr_t)goc_wpgroup_wait(arg, NULL);
}

TEST_G(workerpool, group_wait_timeout_cancel_entry_and_plain_thread)
{
    goc_workerpool *p = pool(1, 0, 0);
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new(p, &g));
    goc_chan *gt = gate();
    ASSERT_OK(goc_wpgroup_submit(g, gated, gt, NULL, NULL));
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_wpgroup_wait(g, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_wpgroup_wait(g, k), -ECANCELED);
    ASSERT_EQ(goc_wpgroup_wait(g, k), -ECANCELED); /* at entry */
    pthread_t th;
    void *res;
    ASSERT_OK(pthread_create(&th, NULL, group_wait_thread, g));
    goc_sleep(3 * GOC_MILLISECOND, NULL);
    goc_chan_close(gt);
    test_join(th, &res);
    ASSERT_EQ((intptr_t)res, 0);
    ASSERT_OK(goc_wpgroup_wait(g, k)); /* settled: wins over a done ctx */
    goc_ctx_release(k);
    goc_wpgroup_free(g);
    goc_workerpool_free(p);
    goc_chan_release(gt);
}

/* Submits to one group from many goroutines at once, while the pool is
 * full so that they all wait inside the pool's submit: every handle
 * is kept (each used to hold no place, and they wrote past the array). */
static goc_chan *hold_gate;

static int hold_task(goc_ctx *ctx, void *arg, void **result)
{
    (void)arg;
    (void)result;
    goc_chan_recv(hold_gate, NULL, ctx);
    return 0;
}

struct group_submitter {
    goc_wpgroup *g;
    goc_wg *wg;
};

static void submit_to_group(void *arg)
{
    struct group_submitter *s = arg;
    ASSERT_OK(
        goc_wpgroup_submit(s->g, group_task, (void *)(intptr_t)1, free, NULL));
    goc_wg_done(s->wg);
}

TEST_G(workerpool, group_concurrent_submits_keep_every_handle)
{
    enum { N = 40 };
    ASSERT_OK(goc_chan_new(0, 0, &hold_gate));
    goc_workerpool *p = pool(1, 1, 0);
    ASSERT_OK(goc_workerpool_submit(p, hold_task, NULL, NULL, NULL, NULL));
    wait_running(p, 1);
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new(p, &g));
    goc_wg wg = GOC_WG_INIT;
    struct group_submitter s = { g, &wg };
    goc_wg_add(&wg, N);
    for (int i = 0; i < N; i++)
        ASSERT_OK(goc_go(submit_to_group, &s));
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* most wait in the pool */
    goc_chan_close(hold_gate);
    ASSERT_OK(goc_wg_wait(&wg, NULL));
    ASSERT_OK(goc_wpgroup_wait(g, NULL));
    ASSERT_EQ(goc_wpgroup_len(g), N);
    for (int i = 0; i < N; i++)
        ASSERT(goc_wpgroup_task(g, i) != NULL);
    goc_wpgroup_free(g);
    goc_workerpool_free(p);
    goc_chan_release(hold_gate);
}

/* Opens the gate a moment after the test has begun waiting. */
static void close_later(void *arg)
{
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    goc_chan_close(arg);
}

/* Without a queue, a blocking submit waits for a free worker: it must be
 * woken when the busy one finishes (it waited for a dequeue, which a pool
 * without a queue never makes, until its ctx ended). */
TEST_G(workerpool, no_queue_blocking_submit_gets_the_freed_worker)
{
    goc_chan *g = gate();
    goc_workerpool *p = pool(1, GOC_WP_NO_QUEUE, 0);
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, NULL, NULL));
    wait_running(p, 1);
    ASSERT_OK(goc_go(close_later, g));
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_SECOND);
    int64_t t0 = goc_now();
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, ctx));
    ASSERT_LT(goc_now() - t0, 4 * GOC_SECOND);
    goc_ctx_destroy(ctx);
    goc_workerpool_free(p);
    goc_chan_release(g);
}

/*
 * A pool cancel (here its context's end) takes the whole queue under the
 * lock and settles the handles after: stop_wait returned in between,
 * with handles still pending. Tasks taken count as settling now.
 */
TEST_G(workerpool, stop_wait_returns_with_every_cancelled_handle_settled)
{
    enum { N = 20000 };
    static goc_future *fs[N];
    for (int round = 0; round < 3; round++) {
        goc_ctx *parent;
        ASSERT_OK(goc_ctx_with_cancel(NULL, &parent));
        struct goc_workerpool_config cfg = { .max_workers = 1, .ctx = parent };
        goc_workerpool *p;
        ASSERT_OK(goc_workerpool_new(&cfg, &p));
        goc_chan *g = gate();
        ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, &fs[0], NULL));
        for (int i = 1; i < N; i++)
            ASSERT_OK(
                goc_workerpool_submit(p, count_task, NULL, NULL, &fs[i], NULL));
        goc_ctx_cancel(parent);
        ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
        for (int i = 0; i < N; i++)
            ASSERT(goc_future_state(fs[i]) != GOC_FUTURE_PENDING);
        goc_workerpool_free(p);
        for (int i = 0; i < N; i++)
            goc_future_release(fs[i]);
        goc_chan_release(g);
        goc_ctx_release(parent);
    }
}

/* goc_workerpool_cancel() counts the queued tasks it settled; one whose
 * handle was cancelled first was counted too. */
TEST_G(workerpool, cancel_counts_only_the_tasks_it_settled)
{
    goc_workerpool *p = pool(1, 0, 0);
    goc_chan *g = gate();
    goc_future *f[4];
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, &f[0], NULL));
    wait_running(p, 1);
    for (int i = 1; i < 4; i++)
        ASSERT_OK(
            goc_workerpool_submit(p, count_task, NULL, NULL, &f[i], NULL));
    ASSERT_EQ(goc_future_cancel(f[3]), 1);
    ASSERT_EQ(goc_workerpool_cancel(p), 2);
    for (int i = 1; i < 4; i++)
        ASSERT_EQ(goc_future_cancel(f[i]), 0); /* all settled already */
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    for (int i = 0; i < 4; i++)
        goc_future_release(f[i]);
    goc_workerpool_free(p);
    goc_chan_release(g);
}

struct group_call {
    goc_wpgroup *g;
    int64_t timeout;
    _Atomic int rc;
    _Atomic bool done;
};

static void group_submit_timed(void *arg)
{
    struct group_call *c = arg;
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, c->timeout);
    atomic_store(&c->rc, goc_wpgroup_submit(c->g, count_task, NULL, NULL, ctx));
    goc_ctx_destroy(ctx);
    atomic_store(&c->done, true);
}

static void group_wait_timed(void *arg)
{
    struct group_call *c = arg;
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, c->timeout);
    atomic_store(&c->rc, goc_wpgroup_wait(c->g, ctx));
    goc_ctx_destroy(ctx);
    atomic_store(&c->done, true);
}

/*
 * A group's wait sleeps while submits are pending; the last pending one
 * failing (its own context ended while it waited for room) lowered the
 * count without a wake, and the wait slept on with nothing pending.
 */
TEST_G(workerpool, group_wait_wakes_when_the_last_pending_submit_fails)
{
    goc_workerpool *p = pool(1, GOC_WP_NO_QUEUE, 0);
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new(p, &g));
    goc_chan *gt = gate();
    ASSERT_OK(goc_wpgroup_submit(g, gated_deaf, gt, NULL, NULL));
    wait_running(p, 1);
    struct group_call s = { .g = g, .timeout = 300 * GOC_MILLISECOND };
    ASSERT_OK(goc_go(group_submit_timed, &s)); /* waits for room */
    goc_sleep(50 * GOC_MILLISECOND, NULL);
    struct group_call w = { .g = g, .timeout = 5 * GOC_SECOND };
    ASSERT_OK(goc_go(group_wait_timed, &w));
    goc_sleep(50 * GOC_MILLISECOND, NULL);
    /* The running task's handle settles (the task itself runs on, deaf
     * to its ctx): only the blocked submit is pending now. */
    ASSERT_EQ(goc_future_cancel(goc_wpgroup_task(g, 0)), 1);
    while (!atomic_load(&s.done))
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&s.rc), -ETIMEDOUT);
    int64_t t0 = goc_now();
    while (!atomic_load(&w.done))
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_LT(goc_now() - t0, GOC_SECOND); /* not its own 5 s timeout */
    ASSERT_OK(atomic_load(&w.rc));         /* nothing pending, nothing failed */
    goc_chan_close(gt);
    goc_wpgroup_free(g);
    goc_workerpool_free(p);
    goc_chan_release(gt);
}

/* A group submit that fails for memory changes nothing: it left the task
 * queued in the pool and in the group, cancelled, with -ENOMEM. */
TEST_G(workerpool, group_submit_out_of_memory_leaves_no_task_behind)
{
    goc_workerpool *p = pool(1, 0, 0);
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new(p, &g));
    goc_chan *gt = gate();
    ASSERT_OK(goc_wpgroup_submit(g, gated, gt, NULL, NULL));
    wait_running(p, 1);
    int failures = 0;
    for (int64_t n = 0;; n++) {
        struct goc_workerpool_stats before, after;
        ASSERT_OK(goc_workerpool_stats(p, &before));
        goc__fault_after(n);
        int rc = goc_wpgroup_submit(g, count_task, NULL, NULL, NULL);
        goc__fault_after(-1);
        if (rc == 0)
            break;
        ASSERT_EQ(rc, -ENOMEM);
        failures++;
        ASSERT_EQ(goc_wpgroup_len(g), 1);
        ASSERT_OK(goc_workerpool_stats(p, &after));
        ASSERT_EQ(after.submitted, before.submitted);
    }
    ASSERT_GT(failures, 2);
    ASSERT_EQ(goc_wpgroup_len(g), 2);
    goc_chan_close(gt);
    ASSERT_OK(goc_wpgroup_wait(g, NULL));
    goc_wpgroup_free(g);
    goc_workerpool_free(p);
    goc_chan_release(gt);
}

static int no_queue_spawn_fails(void *arg)
{
    (void)arg;
    atomic_store(&ran, 0);
    goc_workerpool *p = pool(2, GOC_WP_NO_QUEUE, 0);
    goc_chan *g = gate();
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, NULL, NULL));
    wait_running(p, 1);
    /* Each goroutine takes a slab of its own at this stack size, so the
     * second worker's spawn allocates: fail each allocation in turn. A
     * refused submit leaves nothing queued; the accepted one runs at
     * once, beside the busy worker. */
    int failures = 0, rc;
    for (int64_t n = 0;; n++) {
        goc__fault_after(n);
        rc = goc_workerpool_try_submit(p, count_task, NULL, NULL, NULL);
        goc__fault_after(-1);
        if (rc == 0)
            break;
        ASSERT_EQ(rc, -ENOMEM);
        failures++;
        struct goc_workerpool_stats st;
        ASSERT_OK(goc_workerpool_stats(p, &st));
        ASSERT_EQ(st.waiting, 0);
        ASSERT_EQ(st.refused, failures);
    }
    ASSERT_GT(failures, 3); /* the task, its handle, its ctx, the spawn */
    for (int i = 0; i < 2000 && atomic_load(&ran) < 2; i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&ran), 2); /* the gate is still closed */
    goc_chan_close(g);
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    goc_workerpool_free(p);
    goc_chan_release(g);
    return 0;
}

/* Without a queue a task is accepted only if a worker takes it now: one
 * whose worker could not start was queued behind the busy ones. */
TEST(workerpool, no_queue_submit_whose_worker_cannot_start_is_refused)
{
    test_run_with_spawns_that_allocate(no_queue_spawn_fails);
}

struct deaf_then_done {
    goc_chan *gate;
    _Atomic bool done;
};

/* Runs until its gate closes, deaf to its context, then says so. */
static int deaf_until_closed(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)result;
    struct deaf_then_done *d = arg;
    atomic_fetch_add(&ran, 1);
    goc_chan_recv(d->gate, NULL, NULL);
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* late after the close */
    atomic_store(&d->done, true);
    return 0;
}

/*
 * A group task whose handle the caller cancelled runs on until it looks
 * at its context (this one never does). goc_wpgroup_free() returned as
 * soon as the handle settled, with the body still running, though it
 * promises to wait for running tasks: a caller freeing the tasks'
 * arguments next freed them under the task. Its wait still returns once
 * every handle is settled, as it promises.
 */
TEST_G(workerpool, group_free_waits_for_a_cancelled_task_still_running)
{
    atomic_store(&ran, 0);
    goc_workerpool *p = pool(2, 0, 0);
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new(p, &g));
    static struct deaf_then_done d;
    d.gate = gate();
    ASSERT_OK(goc_wpgroup_submit(g, deaf_until_closed, &d, NULL, NULL));
    wait_running(p, 1);
    ASSERT_EQ(goc_future_cancel(goc_wpgroup_task(g, 0)), 1);
    ASSERT_OK(goc_wpgroup_wait(g, NULL)); /* settled: it returns */
    ASSERT(!atomic_load(&d.done));
    ASSERT_OK(goc_go(close_later, d.gate));
    goc_wpgroup_free(g);
    ASSERT(atomic_load(&d.done)); /* the body ended before the free did */
    goc_workerpool_free(p);
    goc_chan_release(d.gate);
}

/*
 * Without a queue, a task is accepted only if a worker can start it now.
 * Just after a shrink, the idle workers told to leave still counted as
 * idle: a task was accepted, then the worker left, and the task waited
 * for a busy one (for ever, if that one never ends).
 */
TEST_G(workerpool, no_queue_shrink_accepts_only_what_a_worker_will_start)
{
    atomic_store(&ran, 0);
    goc_workerpool *p = pool(2, GOC_WP_NO_QUEUE, 0);
    goc_chan *gt = gate();
    goc_future *busy, *quick;
    /* The busy one first, so the quick one needs a second worker (the
     * other way round, a quick one done already left one worker for
     * both); then one busy, one idle. */
    ASSERT_OK(goc_workerpool_submit(p, gated_deaf, gt, NULL, &busy, NULL));
    wait_running(p, 1);
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, &quick, NULL));
    ASSERT_EQ(status_of(quick), 0);
    while (atomic_load(&ran) < 2)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    goc_sleep(2 * GOC_MILLISECOND, NULL); /* the quick one's worker waits */
    struct goc_workerpool_stats st;
    ASSERT_OK(goc_workerpool_stats(p, &st));
    ASSERT_EQ(st.workers, 2);
    ASSERT_OK(goc_workerpool_resize(p, 1)); /* the idle one must leave */
    goc_future *late = NULL;
    int rc = goc_workerpool_try_submit(p, count_task, NULL, NULL, &late);
    int started = -1;
    if (rc == 0) {
        int s;
        started =
            goc_future_get_timeout(late, &s, NULL, 200 * GOC_MILLISECOND) == 0;
    }
    goc_chan_close(gt);
    if (late) {
        status_of(late);
        goc_future_release(late);
    }
    ASSERT_EQ(status_of(busy), 0);
    goc_future_release(busy);
    goc_future_release(quick);
    goc_workerpool_free(p);
    goc_chan_release(gt);
    if (rc == 0 && !started)
        ASSERT_FAIL("%s", "accepted, and no worker started it in 200 ms");
    ASSERT(rc == 0 || rc == GOC_EOVERLOAD);
}

static goc_workerpool *fan_pool;

/* A pool task that fans out into a group on its own pool, gives up
 * waiting, cancels its sub-task's handle and frees the group. */
static int fan_out_and_abandon(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new(fan_pool, &g));
    ASSERT_OK(goc_wpgroup_submit(g, count_task, NULL, NULL, NULL));
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 20 * GOC_MILLISECOND);
    /* It cannot run: this task holds the pool's only worker. */
    ASSERT_EQ(goc_wpgroup_wait(g, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    ASSERT_EQ(goc_future_cancel(goc_wpgroup_task(g, 0)), 1);
    goc_wpgroup_free(g);
    return 0;
}

/* Freeing a group waited for a worker to take its tasks cancelled while
 * queued off the queue, only to throw them away: from the pool's own
 * task, holding its last free worker, for ever. */
TEST_G(workerpool, group_free_drops_its_cancelled_queued_tasks_at_once)
{
    atomic_store(&ran, 0);
    fan_pool = pool(1, 0, 0);
    goc_future *f;
    ASSERT_OK(goc_workerpool_submit(fan_pool, fan_out_and_abandon, NULL, NULL,
                                    &f, NULL));
    int st = 1;
    ASSERT_EQ(goc_future_get_timeout(f, &st, NULL, 5 * GOC_SECOND), 0);
    ASSERT_EQ(st, 0);
    goc_future_release(f);
    ASSERT_EQ(atomic_load(&ran), 0); /* the sub-task never ran */
    goc_workerpool_free(fan_pool);
}

/* ---- on_discard -----------------------------------------------------------
 */

static _Atomic int discards;

static _Atomic int discard_test_ran;

static int frees_its_arg(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx, (void)result;
    atomic_fetch_add(&discard_test_ran, 1);
    goc__free(arg);
    return 0;
}

static void discard_arg(goc_task_fn fn, void *arg, void *discard_arg_)
{
    ASSERT(fn == frees_its_arg);
    ASSERT(discard_arg_ == &discards);
    atomic_fetch_add(&discards, 1);
    goc__free(arg); /* what the task would have freed */
}

/*
 * Tasks accepted and never run give their argument to on_discard: on the
 * pool's cancel, and for a task whose handle was cancelled while queued.
 * A task that owns a heap argument leaked it otherwise (nobody told, no
 * handle to learn it from).
 */
TEST_G(workerpool, discarded_tasks_give_back_their_arguments)
{
    atomic_store(&discards, 0);
    atomic_store(&discard_test_ran, 0);
    goc_chan *g = gate();
    struct goc_workerpool_config cfg = { .max_workers = 1,
                                         .on_discard = discard_arg,
                                         .discard_arg = &discards };
    goc_workerpool *p;
    ASSERT_OK(goc_workerpool_new(&cfg, &p));
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, NULL, NULL));
    wait_running(p, 1);
    goc_future *f;
    ASSERT_OK(goc_workerpool_submit(p, frees_its_arg, goc__malloc(32), NULL, &f,
                                    NULL));
    ASSERT_EQ(goc_future_cancel(f), 1); /* while queued */
    goc_future_release(f);
    goc_chan_close(g); /* the worker meets it, dead, and gives it back */
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&discards), 1);
    goc_chan_release(g);
    g = gate();
    ASSERT_OK(goc_workerpool_submit(p, gated, g, NULL, NULL, NULL));
    wait_running(p, 1);
    for (int i = 0; i < 5; i++)
        ASSERT_OK(goc_workerpool_submit(p, frees_its_arg, goc__malloc(32), NULL,
                                        NULL, NULL));
    ASSERT_EQ(goc_workerpool_cancel(p), 5);
    ASSERT_EQ(atomic_load(&discards), 6);
    goc_chan_close(g);
    goc_workerpool_free(p);
    ASSERT_EQ(atomic_load(&discards), 6);
    goc_chan_release(g);
    /* Six arguments: none ran, each given back once (and freed there;
     * ASan and valgrind see any left). */
    ASSERT_EQ(atomic_load(&discard_test_ran), 0);
}

/* pond's NewGroupContext: the caller's ctx ending fails the group. */
TEST_G(workerpool, group_with_ctx_fails_when_the_ctx_ends)
{
    goc_workerpool *p = pool(1, 0, 0);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new_ctx(p, k, &g));
    goc_chan *gt = gate();
    atomic_store(&ran, 0);
    ASSERT_OK(goc_wpgroup_submit(g, gated, gt, NULL, NULL));
    for (int i = 0; i < 5; i++)
        ASSERT_OK(goc_wpgroup_submit(g, count_task, NULL, NULL, NULL));
    wait_running(p, 1);
    test_cancel_after(k, 2 * GOC_MILLISECOND);
    ASSERT_EQ(goc_wpgroup_wait(g, NULL), -ECANCELED);
    ASSERT_EQ(goc_ctx_cause(goc_wpgroup_ctx(g)), -ECANCELED);
    ASSERT_EQ(goc_wpgroup_submit(g, count_task, NULL, NULL, NULL), GOC_ECLOSED);
    goc_wpgroup_free(g);
    ASSERT_EQ(atomic_load(&ran), 1); /* the queued five never ran */
    struct goc_workerpool_stats st;
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    goc_workerpool_stats(p, &st);
    ASSERT_EQ(st.canceled, 6);
    goc_ctx_release(k);

    /* A deadline: the group fails with -ETIMEDOUT. The task it cancels
     * settles at once: the wait must still see the failure, not a group
     * with nothing pending and no error yet. */
    for (int64_t i = 0; i < test_scale(200); i++) {
        goc_ctx *t;
        ASSERT_OK(goc_ctx_with_timeout(NULL, 100 * GOC_MICROSECOND, &t));
        ASSERT_OK(goc_wpgroup_new_ctx(p, t, &g));
        int rc = goc_wpgroup_submit(g, gated, gt, NULL, NULL);
        ASSERT(rc == 0 || rc == GOC_ECLOSED); /* failed already (slow) */
        ASSERT_EQ(goc_wpgroup_wait(g, NULL), -ETIMEDOUT);
        goc_wpgroup_free(g);
        goc_ctx_release(t);
    }

    /* Done before: failed from the start, nothing accepted. */
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_ctx_cancel(k);
    ASSERT_OK(goc_wpgroup_new_ctx(p, k, &g));
    ASSERT_EQ(goc_wpgroup_wait(g, NULL), -ECANCELED);
    ASSERT_EQ(goc_wpgroup_submit(g, count_task, NULL, NULL, NULL), GOC_ECLOSED);
    goc_wpgroup_free(g);
    goc_ctx_release(k);

    /* A ctx that never ends: the group works as any other, and its
     * watch is gone with it (the leak check after the test). */
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    ASSERT_OK(goc_wpgroup_new_ctx(p, k, &g));
    ASSERT_OK(goc_wpgroup_submit(g, count_task, NULL, NULL, NULL));
    ASSERT_OK(goc_wpgroup_wait(g, NULL));
    goc_wpgroup_free(g);
    goc_ctx_cancel(k);
    goc_ctx_release(k);
    ASSERT_EQ(goc_wpgroup_new_ctx(NULL, NULL, &g), -EINVAL);
    ASSERT_EQ(goc_wpgroup_new_ctx(p, NULL, NULL), -EINVAL);
    ASSERT_OK(goc_wpgroup_new_ctx(p, NULL, &g)); /* as goc_wpgroup_new */
    goc_wpgroup_free(g);
    goc_workerpool_stop(p);
    ASSERT_EQ(goc_wpgroup_new_ctx(p, NULL, &g), GOC_ECLOSED);
    goc_workerpool_free(p);
    goc_chan_release(gt);
}

static void cancel_it(void *arg)
{
    goc_ctx_cancel(arg);
    goc_ctx_release(arg);
}

/* The watch may be running its failure as the group is freed. */
TEST_G(workerpool, group_with_ctx_freed_while_its_ctx_ends)
{
    goc_workerpool *p = pool(2, 0, 0);
    for (int64_t i = 0; i < test_scale(300); i++) {
        goc_ctx *k;
        ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
        goc_wpgroup *g;
        ASSERT_OK(goc_wpgroup_new_ctx(p, k, &g));
        ASSERT_OK(goc_wpgroup_submit(g, count_task, NULL, NULL, NULL));
        ASSERT_OK(goc_go(cancel_it, goc_ctx_retain(k)));
        if (i % 2)
            goc_yield();
        goc_wpgroup_free(g);
        goc_ctx_release(k);
    }
    goc_workerpool_free(p);
}

/* ---- freeing a worker pool with calls blocked on it --------------------- */

struct wp_blocked {
    goc_workerpool *p;
    goc_chan *gate; /* the running task waits for it to close */
    _Atomic int submit_rc, idle_rc, freed;
    goc_wg calls;
};

static int wp_gated(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)result;
    goc_chan_recv(((struct wp_blocked *)arg)->gate, NULL, NULL);
    return 0;
}

static int wp_nothing(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    return 0;
}

static void wp_blocked_submitter(void *arg)
{
    struct wp_blocked *b = arg;
    atomic_store(&b->submit_rc, goc_workerpool_submit(b->p, wp_nothing, NULL,
                                                      NULL, NULL, NULL));
    goc_wg_done(&b->calls);
}

static void wp_idle_waiter(void *arg)
{
    struct wp_blocked *b = arg;
    atomic_store(&b->idle_rc, goc_workerpool_wait_idle(b->p, NULL));
    goc_wg_done(&b->calls);
}

static void wp_freer(void *arg)
{
    struct wp_blocked *b = arg;
    goc_workerpool_free(b->p);
    atomic_store(&b->freed, 1);
    goc_wg_done(&b->calls);
}

/*
 * goc_workerpool_free() with a submit blocked on a full queue and a
 * wait_idle blocked: once the workers had exited it freed the pool, and
 * the two woke into it (ASan). It now waits for them; the submit, refused
 * by the stop, gets GOC_ECLOSED.
 */
TEST_G(workerpool, free_waits_for_blocked_submits_and_waits)
{
    int rounds = (int)test_scale(50);
    for (int i = 0; i < rounds; i++) {
        struct wp_blocked b = { .calls = GOC_WG_INIT };
        atomic_init(&b.submit_rc, 99);
        atomic_init(&b.idle_rc, 99);
        ASSERT_OK(goc_chan_new(0, 0, &b.gate));
        struct goc_workerpool_config cfg = { .max_workers = 1,
                                             .queue_size = 1 };
        ASSERT_OK(goc_workerpool_new(&cfg, &b.p));
        ASSERT_OK(goc_workerpool_submit(b.p, wp_gated, &b, NULL, NULL, NULL));
        struct goc_workerpool_stats st;
        int64_t t0 = goc_now();
        do { /* the gated task runs: the next one fills the queue */
            ASSERT_LT(goc_now() - t0, 30 * GOC_SECOND);
            goc_sleep(100 * GOC_MICROSECOND, NULL);
            ASSERT_OK(goc_workerpool_stats(b.p, &st));
        } while (st.running < 1);
        ASSERT_OK(
            goc_workerpool_submit(b.p, wp_nothing, NULL, NULL, NULL, NULL));
        goc_wg_add(&b.calls, 3);
        ASSERT_OK(goc_go(wp_blocked_submitter, &b));
        ASSERT_OK(goc_go(wp_idle_waiter, &b));
        WAIT_UNTIL(goc__workerpool_inside(b.p) >= 2); /* both blocked */
        ASSERT_OK(goc_go(wp_freer, &b));
        WAIT_UNTIL(atomic_load(&b.submit_rc) != 99); /* the stop refused it */
        ASSERT_EQ(atomic_load(&b.submit_rc), GOC_ECLOSED);
        ASSERT_EQ(atomic_load(&b.freed), 0); /* the gated task runs */
        goc_sleep((i % 3) * 100 * GOC_MICROSECOND, NULL);
        ASSERT_OK(goc_chan_close(b.gate));
        goc_wg_wait(&b.calls, NULL);
        ASSERT_EQ(atomic_load(&b.idle_rc), 0);
        ASSERT_EQ(atomic_load(&b.freed), 1);
        goc_chan_release(b.gate);
    }
}

/* A pool whose ctx has ended is cancelled from then on, whether or not
 * the pool has yet settled its queue for it: resize and a new group are
 * refused with GOC_ECLOSED, as submits are. */
TEST_G(workerpool, ended_pool_ctx_refuses_resize_and_groups_at_once)
{
    goc_ctx *parent;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &parent));
    goc_ctx_cancel(parent);
    struct goc_workerpool_config cfg = { .max_workers = 1, .ctx = parent };
    for (int i = 0; i < 20; i++) {
        goc_workerpool *p;
        ASSERT_OK(goc_workerpool_new(&cfg, &p));
        goc_wpgroup *g = NULL;
        ASSERT_EQ(goc_wpgroup_new(p, &g), GOC_ECLOSED);
        ASSERT_EQ(goc_wpgroup_new_ctx(p, NULL, &g), GOC_ECLOSED);
        ASSERT(g == NULL);
        ASSERT_EQ(goc_workerpool_resize(p, 2), GOC_ECLOSED);
        ASSERT_EQ(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, NULL),
                  GOC_ECLOSED);
        goc_workerpool_free(p);
    }
    goc_ctx_release(parent);
}

struct group_submit_call {
    goc_wpgroup *g;
    _Atomic int rc;
};

static void group_submit_goroutine(void *arg)
{
    struct group_submit_call *c = arg;
    atomic_store(&c->rc,
                 goc_wpgroup_submit(c->g, count_task, NULL, NULL, NULL));
}

/* A group submit waiting for queue space when the group fails is closed
 * with it: GOC_ECLOSED at once, not a wait for room that other tasks
 * hold, then a task accepted only to be cancelled. */
TEST_G(workerpool, group_submit_waiting_for_room_ends_when_group_fails)
{
    goc_workerpool *p = pool(1, 1, 0);
    goc_chan *gt = gate();
    atomic_store(&ran, 0);
    /* Tasks of no group: one runs, one fills the queue. */
    ASSERT_OK(goc_workerpool_submit(p, gated, gt, NULL, NULL, NULL));
    wait_running(p, 1);
    ASSERT_OK(goc_workerpool_submit(p, count_task, NULL, NULL, NULL, NULL));
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_wpgroup *g;
    ASSERT_OK(goc_wpgroup_new_ctx(p, k, &g));
    static struct group_submit_call c;
    c = (struct group_submit_call){ g, 1 };
    ASSERT_OK(goc_go(group_submit_goroutine, &c));
    WAIT_UNTIL(goc__workerpool_inside(p) == 1);
    goc_ctx_cancel(k); /* the group fails */
    ASSERT_EQ(goc_wpgroup_wait(g, NULL), -ECANCELED);
    for (int i = 0; i < 2000 && atomic_load(&c.rc) == 1; i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&c.rc), GOC_ECLOSED);
    ASSERT_EQ(goc_wpgroup_len(g), 0);
    goc_wpgroup_free(g); /* nothing of the group is pending */
    goc_chan_close(gt);
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 2);
    struct goc_workerpool_stats st;
    ASSERT_OK(goc_workerpool_stats(p, &st));
    ASSERT_EQ(st.submitted, 2);
    ASSERT_EQ(st.refused, 1);
    goc_workerpool_free(p);
    goc_ctx_release(k);
    goc_chan_release(gt);
}

struct waited_group {
    goc_wpgroup *g;
    goc_wg calls;
    _Atomic int rc;
};

static void group_waiter(void *arg)
{
    struct waited_group *b = arg;
    atomic_store(&b->rc, goc_wpgroup_wait(b->g, NULL));
    goc_wg_done(&b->calls);
}

static void group_freer(void *arg)
{
    struct waited_group *b = arg;
    goc_wpgroup_free(b->g);
    goc_wg_done(&b->calls);
}

/* A free under way waits for the waits on the group: woken by the last
 * task to settle, one relocked the group's mutex after the free had let
 * the group go (ASan: heap-use-after-free). */
TEST_G(workerpool, group_free_waits_for_waits_under_way)
{
    goc_workerpool *p = pool(2, 0, 0);
    for (int64_t i = 0; i < test_scale(200); i++) {
        static struct waited_group b;
        b = (struct waited_group){ .calls = GOC_WG_INIT, .rc = 99 };
        goc_chan *gt = gate();
        ASSERT_OK(goc_wpgroup_new(p, &b.g));
        ASSERT_OK(goc_wpgroup_submit(b.g, gated, gt, NULL, NULL));
        goc_wg_add(&b.calls, 2);
        ASSERT_OK(goc_go(group_waiter, &b));
        WAIT_UNTIL(goc__wpgroup_waiting(b.g) == 1);
        ASSERT_OK(goc_go(group_freer, &b));
        goc_sleep((i % 4) * 100 * GOC_MICROSECOND, NULL);
        goc_chan_close(gt); /* the task settles: both wake */
        goc_wg_wait(&b.calls, NULL);
        ASSERT_OK(atomic_load(&b.rc));
        goc_chan_release(gt);
    }
    goc_workerpool_free(p);
}
