/* SPDX-License-Identifier: MIT */
/* Tests of the goroutine pool (ants v2 semantics, FIFO hand-off). */
#include "test.h"

#include "../src/internal/alloc.h"
#include "../src/patterns/patterns.h" /* goc__pool_inside */

#include <pthread.h>
#include <stdatomic.h>

static _Atomic int64_t ran;
static goc_chan *gate_ch;

static int count(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return 0;
}

static int gated(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    goc_chan_recv(gate_ch, NULL, NULL);
    return 0;
}

static goc_pool *pool(int64_t cap, int64_t max_blocking, unsigned flags)
{
    struct goc_pool_config cfg = { .capacity = cap,
                                   .max_blocking = max_blocking,
                                   .flags = flags };
    goc_pool *p;
    ASSERT_OK(goc_pool_new(&cfg, &p));
    return p;
}

static void open_gate(void)
{
    ASSERT_OK(goc_chan_new(0, 0, &gate_ch));
}

static void close_gate(void)
{
    goc_chan_close(gate_ch);
}

static void wait_until(goc_pool *p, int64_t running, int64_t waiting)
{
    while (goc_pool_running(p) < running || goc_pool_waiting(p) < waiting)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
}

TEST_G(pool, zero_and_negative_config_d019)
{
    goc_pool *p;
    struct goc_pool_config bad[] = { { .expiry = -1 },
                                     { .max_blocking = -1 },
                                     { .flags = 64 } };
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(goc_pool_new(&bad[i], &p), -EINVAL);
    ASSERT_EQ(goc_pool_new(NULL, NULL), -EINVAL);
    ASSERT_OK(goc_pool_new(NULL, &p)); /* capacity 0: unlimited */
    ASSERT_EQ(goc_pool_cap(p), -1);
    ASSERT_EQ(goc_pool_free_slots(p), -1);
    ASSERT_EQ(goc_pool_submit(p, NULL, NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_pool_tune(p, 4), -EPERM);
    atomic_store(&ran, 0);
    for (int i = 0; i < 100; i++)
        ASSERT_OK(goc_pool_submit(p, count, NULL, NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 100);
    goc_pool_free(p);
}

static int fail(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return -EIO;
}

TEST_G(pool, reuses_idle_workers_and_survives_failed_tasks)
{
    goc_pool *p = pool(4, 0, 0);
    atomic_store(&ran, 0);
    for (int i = 0; i < 50; i++) {
        ASSERT_OK(goc_pool_submit(p, i % 2 ? fail : count, NULL, NULL));
        ASSERT_OK(goc_pool_wait_idle(p, NULL));
    }
    struct goc_pool_stats st;
    ASSERT_OK(goc_pool_stats(p, &st));
    ASSERT_EQ(st.workers, 1); /* one worker, reused, never killed */
    ASSERT_EQ(st.completed, 50);
    ASSERT_EQ(st.failed, 25);
    ASSERT_EQ(st.submitted, 50);
    ASSERT_EQ(atomic_load(&ran), 50);
    goc_pool_free(p);
}

static int order[16];
static _Atomic int order_n;

static int record(void *arg)
{
    order[atomic_fetch_add(&order_n, 1)] = (int)(intptr_t)arg;
    return 0;
}

struct sub {
    goc_pool *p;
    goc_pool_fn fn;
    void *arg;
    goc_ctx *ctx;
    _Atomic int rc;
};

static void submitter(void *arg)
{
    struct sub *s = arg;
    atomic_store(&s->rc, goc_pool_submit(s->p, s->fn, s->arg, s->ctx));
}

/* The submitter's result, once its call has returned. */
static int sub_rc(struct sub *s)
{
    while (atomic_load(&s->rc) == 1)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    return atomic_load(&s->rc);
}

static void *submit_thread(void *arg)
{
    submitter(arg);
    return NULL;
}

TEST_G(pool, capacity_bounds_workers_and_waiters_are_served_fifo)
{
    /* One worker: the waiters' tasks then run one after another, so the
     * order they record is the order they were handed over. */
    goc_pool *p = pool(1, 0, 0);
    open_gate();
    atomic_store(&order_n, 0);
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    wait_until(p, 1, 0);
    ASSERT_EQ(goc_pool_free_slots(p), 0);
    static struct sub s[4];
    for (int i = 0; i < 4; i++) {
        s[i] = (struct sub){ p, record, (void *)(intptr_t)i, NULL, 1 };
        ASSERT_OK(goc_go(submitter, &s[i]));
        wait_until(p, 1, i + 1); /* queue in this order */
    }
    ASSERT_EQ(goc_pool_running(p), 1);
    close_gate();
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    for (int i = 0; i < 4; i++) {
        ASSERT_OK(sub_rc(&s[i]));
        ASSERT_EQ(order[i], i); /* first come, first served */
    }
    struct goc_pool_stats st;
    goc_pool_stats(p, &st);
    ASSERT_LE(st.workers, 1);
    goc_pool_free(p);
    goc_chan_release(gate_ch);
}

TEST_G(pool, nonblocking_and_max_blocking_refuse_with_overload)
{
    goc_pool *p = pool(1, 0, GOC_POOL_NONBLOCKING);
    open_gate();
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    wait_until(p, 1, 0);
    ASSERT_EQ(goc_pool_submit(p, count, NULL, NULL), GOC_EOVERLOAD);
    close_gate();
    goc_pool_free(p);
    goc_chan_release(gate_ch);

    p = pool(1, 1, 0);
    open_gate();
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    static struct sub s;
    s = (struct sub){ p, count, NULL, NULL, 1 };
    ASSERT_OK(goc_go(submitter, &s));
    wait_until(p, 1, 1);
    ASSERT_EQ(goc_pool_submit(p, count, NULL, NULL), GOC_EOVERLOAD);
    struct goc_pool_stats st;
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.refused, 1);
    close_gate();
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_OK(sub_rc(&s));
    goc_pool_free(p);
    goc_chan_release(gate_ch);
}

TEST_G(pool, blocking_submit_timeout_cancel_entry_close_and_thread)
{
    goc_pool *p = pool(1, 0, 0);
    open_gate();
    atomic_store(&ran, 0);
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    wait_until(p, 1, 0);
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_pool_submit(p, count, NULL, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_pool_submit(p, count, NULL, k), -ECANCELED);
    ASSERT_EQ(goc_pool_waiting(p), 0); /* as if never called */
    /* a plain thread waits, and is served when the worker frees */
    static struct sub s;
    s = (struct sub){ p, count, NULL, NULL, 1 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, submit_thread, &s));
    wait_until(p, 1, 1);
    close_gate();
    test_join(th, NULL);
    ASSERT_OK(atomic_load(&s.rc));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    /* cancelled at entry: refused although a worker is idle */
    ASSERT_EQ(goc_pool_submit(p, count, NULL, k), -ECANCELED);
    goc_ctx_release(k);
    ASSERT_EQ(atomic_load(&ran), 2);
    goc_chan_release(gate_ch);
    /* close while waiting */
    open_gate();
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    s = (struct sub){ p, count, NULL, NULL, 1 };
    ASSERT_OK(goc_go(submitter, &s));
    wait_until(p, 1, 1);
    ASSERT_OK(goc_pool_release(p));
    ASSERT_EQ(sub_rc(&s), GOC_ECLOSED);
    close_gate();
    goc_pool_free(p);
    goc_chan_release(gate_ch);
    ASSERT_EQ(atomic_load(&ran), 3); /* the refused task never ran */
}

TEST_G(pool, idle_workers_expire)
{
    struct goc_pool_config cfg = { .capacity = 4,
                                   .expiry = 5 * GOC_MILLISECOND };
    goc_pool *p;
    ASSERT_OK(goc_pool_new(&cfg, &p));
    open_gate();
    for (int i = 0; i < 3; i++)
        ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    wait_until(p, 3, 0);
    close_gate();
    struct goc_pool_stats st;
    do {
        goc_sleep(2 * GOC_MILLISECOND, NULL);
        goc_pool_stats(p, &st);
    } while (st.workers > 0);
    ASSERT_EQ(st.expired, 3);
    ASSERT_OK(goc_pool_submit(p, count, NULL, NULL)); /* starts anew */
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    goc_pool_free(p);
    goc_chan_release(gate_ch);
}

TEST_G(pool, tune_grows_for_waiters_and_shrinks_as_tasks_end)
{
    goc_pool *p = pool(1, 0, 0);
    open_gate();
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    wait_until(p, 1, 0);
    static struct sub s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = (struct sub){ p, gated, NULL, NULL, 1 };
        ASSERT_OK(goc_go(submitter, &s[i]));
    }
    wait_until(p, 1, 3);
    ASSERT_EQ(goc_pool_tune(p, 0), -EINVAL);
    ASSERT_OK(goc_pool_tune(p, 4));
    wait_until(p, 4, 0); /* the three waiters got new workers */
    ASSERT_EQ(goc_pool_waiting(p), 0);
    ASSERT_OK(goc_pool_tune(p, 1)); /* never pre-empts */
    ASSERT_EQ(goc_pool_running(p), 4);
    close_gate();
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    struct goc_pool_stats st;
    goc_pool_stats(p, &st);
    ASSERT_LE(st.workers, 1); /* surplus left as they finished */
    ASSERT_EQ(goc_pool_cap(p), 1);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(sub_rc(&s[i]));
    goc_pool_free(p);
    goc_chan_release(gate_ch);
}

TEST_G(pool, release_timeout_and_reboot)
{
    goc_pool *p = pool(2, 0, 0);
    open_gate();
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    wait_until(p, 1, 0);
    ASSERT_EQ(goc_pool_release_timeout(p, 3 * GOC_MILLISECOND), -ETIMEDOUT);
    ASSERT(goc_pool_is_closed(p));
    ASSERT_EQ(goc_pool_release(p), GOC_ECLOSED); /* idempotent */
    ASSERT_EQ(goc_pool_release_timeout(p, GOC_SECOND), GOC_ECLOSED);
    ASSERT_EQ(goc_pool_submit(p, count, NULL, NULL), GOC_ECLOSED);
    ASSERT_EQ(goc_pool_tune(p, 5), GOC_ECLOSED); /* it was accepted */
    ASSERT_EQ(goc_pool_cap(p), 2);
    close_gate(); /* the running task was not interrupted */
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_OK(goc_pool_reboot(p));
    ASSERT(!goc_pool_is_closed(p));
    atomic_store(&ran, 0);
    ASSERT_OK(goc_pool_submit(p, count, NULL, NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 1);
    ASSERT_OK(goc_pool_release_timeout(p, 5 * GOC_SECOND));
    goc_pool_free(p);
    goc_chan_release(gate_ch);
}

static goc_pool *nest_pool;
static _Atomic int nested_rc;

static int nests(void *arg)
{
    (void)arg;
    atomic_store(&nested_rc, goc_pool_submit(nest_pool, count, NULL, NULL));
    return 0;
}

TEST_G(pool, nested_submit_when_full_is_refused_not_deadlocked)
{
    nest_pool = pool(1, 0, 0);
    atomic_store(&nested_rc, 1);
    ASSERT_OK(goc_pool_submit(nest_pool, nests, NULL, NULL));
    ASSERT_OK(goc_pool_wait_idle(nest_pool, NULL));
    ASSERT_EQ(atomic_load(&nested_rc), GOC_EOVERLOAD);
    goc_pool_free(nest_pool);
}

TEST_G(pool, submit_after_release_always_closed_d015)
{
    for (int i = 0; i < test_scale(10000); i++) {
        goc_pool *p = pool(2, 0, 0);
        ASSERT_OK(goc_pool_release(p));
        ASSERT_EQ(goc_pool_submit(p, count, NULL, NULL), GOC_ECLOSED);
        goc_pool_free(p);
    }
}

struct feeder {
    goc_pool *p;
    int n;
    goc_wg wg;
};

static void feed(void *arg)
{
    struct feeder *f = arg;
    for (int i = 0; i < f->n; i++)
        ASSERT_OK(goc_pool_submit(f->p, count, NULL, NULL));
    goc_wg_done(&f->wg);
}

static void *feed_thread(void *arg)
{
    feed(arg);
    return NULL;
}

TEST_G(pool, stress_every_accepted_task_runs_exactly_once)
{
    goc_pool *p = pool(3, 0, 0);
    static struct feeder f;
    f = (struct feeder){ .p = p, .n = (int)test_scale(20000) };
    atomic_store(&ran, 0);
    goc_wg_add(&f.wg, 6);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ASSERT_OK(pthread_create(&th[i], NULL, feed_thread, &f));
    for (int i = 0; i < 4; i++)
        ASSERT_OK(goc_go(feed, &f));
    goc_wg_wait(&f.wg, NULL);
    for (int i = 0; i < 2; i++)
        test_join(th[i], NULL);
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 6 * (int64_t)f.n);
    struct goc_pool_stats st;
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.submitted, 6 * (int64_t)f.n);
    ASSERT_EQ(st.completed, 6 * (int64_t)f.n);
    ASSERT_LE(st.workers, 3);
    goc_pool_free(p);
}

static void *wait_idle_thread(void *arg)
{
    return (void *)(intptr_t)goc_pool_wait_idle(arg, NULL);
}

TEST_G(pool, wait_idle_timeout_cancel_entry_and_thread)
{
    goc_pool *p = pool(1, 0, 0);
    open_gate();
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    wait_until(p, 1, 0);
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_pool_wait_idle(p, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_pool_wait_idle(p, k), -ECANCELED);
    pthread_t th;
    void *res;
    ASSERT_OK(pthread_create(&th, NULL, wait_idle_thread, p));
    goc_sleep(3 * GOC_MILLISECOND, NULL);
    close_gate();
    test_join(th, &res);
    ASSERT_EQ((intptr_t)res, 0);
    ASSERT_OK(goc_pool_wait_idle(p, k)); /* idle wins over a done ctx */
    goc_ctx_release(k);
    goc_pool_free(p);
    goc_chan_release(gate_ch);
}

TEST_G(pool, with_func_invokes_the_fixed_function)
{
    goc_pool *p = pool(2, 0, 0);
    ASSERT_EQ(goc_pool_invoke(p, NULL, NULL), -EINVAL); /* no fn */
    goc_pool_free(p);
    struct goc_pool_config cfg = { .capacity = 2, .fn = count };
    ASSERT_OK(goc_pool_new(&cfg, &p));
    atomic_store(&ran, 0);
    for (int i = 0; i < 20; i++)
        ASSERT_OK(goc_pool_invoke(p, NULL, NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 20);
    goc_pool_free(p);
}

TEST_G(pool, multipool_spreads_and_retries_on_overload)
{
    goc_multipool *m;
    struct goc_pool_config cfg = { .capacity = 1,
                                   .flags = GOC_POOL_NONBLOCKING };
    ASSERT_EQ(goc_multipool_new(0, &cfg, GOC_LB_ROUND_ROBIN, &m), -EINVAL);
    ASSERT_EQ(goc_multipool_new(2, &cfg, (enum goc_lb)7, &m), -EINVAL);
    ASSERT_OK(goc_multipool_new(3, &cfg, GOC_LB_ROUND_ROBIN, &m));
    ASSERT(goc_multipool_pool(m, 3) == NULL);
    ASSERT(goc_multipool_pool(m, -1) == NULL);
    open_gate();
    /* Three gated tasks fill the three pools one each. */
    for (int i = 0; i < 3; i++)
        ASSERT_OK(goc_multipool_submit(m, gated, NULL, NULL));
    while (goc_multipool_running(m) < 3)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(goc_pool_running(goc_multipool_pool(m, i)), 1);
    ASSERT_EQ(goc_multipool_submit(m, count, NULL, NULL), GOC_EOVERLOAD);
    close_gate();
    for (int i = 0; i < 3; i++)
        ASSERT_OK(goc_pool_wait_idle(goc_multipool_pool(m, i), NULL));
    /* Pools 0 and 1 busy: whatever round robin picks, the task lands
     * on pool 2, by the one retry on the least running pool. */
    goc_chan_release(gate_ch);
    open_gate();
    atomic_store(&ran, 0);
    ASSERT_OK(goc_pool_submit(goc_multipool_pool(m, 0), gated, NULL, NULL));
    ASSERT_OK(goc_pool_submit(goc_multipool_pool(m, 1), gated, NULL, NULL));
    while (atomic_load(&ran) < 2) /* both gated tasks have started */
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    atomic_store(&ran, 0);
    for (int i = 0; i < 6; i++) {
        ASSERT_OK(goc_multipool_submit(m, count, NULL, NULL));
        ASSERT_OK(goc_pool_wait_idle(goc_multipool_pool(m, 2), NULL));
    }
    ASSERT_EQ(atomic_load(&ran), 6); /* all six ran, none refused */
    close_gate();
    ASSERT_OK(goc_multipool_release_timeout(m, 5 * GOC_SECOND));
    ASSERT_EQ(goc_multipool_waiting(m), 0);
    goc_multipool_free(m);
    goc_chan_release(gate_ch);
}

/* INT64_MAX is "no limit": deadline arithmetic saturates instead of
 * overflowing (undefined behaviour; the sanitizer build aborts on it).
 * A negative timeout polls. */
TEST_G(pool, multipool_release_timeout_infinite_and_negative)
{
    goc_multipool *m;
    struct goc_pool_config cfg = { 0 };
    ASSERT_OK(goc_multipool_new(2, &cfg, GOC_LB_ROUND_ROBIN, &m));
    ASSERT_OK(goc_multipool_submit(m, count, NULL, NULL));
    ASSERT_OK(goc_multipool_release_timeout(m, INT64_MAX));
    ASSERT_EQ(goc_multipool_release_timeout(m, INT64_MAX), GOC_ECLOSED);
    goc_multipool_free(m);

    ASSERT_OK(goc_multipool_new(2, &cfg, GOC_LB_ROUND_ROBIN, &m));
    open_gate();
    ASSERT_OK(goc_multipool_submit(m, gated, NULL, NULL));
    while (goc_multipool_running(m) < 1)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    ASSERT_EQ(goc_multipool_release_timeout(m, INT64_MIN), -ETIMEDOUT);
    close_gate();
    goc_multipool_free(m);
    goc_chan_release(gate_ch);
}

struct releasing {
    goc_multipool *m;
    goc_wg done;
};

static void release_multipool(void *arg)
{
    struct releasing *r = arg;
    ASSERT_OK(goc_multipool_release_timeout(r->m, 5 * GOC_SECOND));
    goc_wg_done(&r->done);
}

/*
 * While a release waits for one pool's busy worker, a submit is refused
 * whichever pool round robin picks: the pools were released one by one,
 * each waited for before the next, so the others still took tasks.
 */
TEST_G(pool, multipool_release_closes_every_pool_before_it_waits)
{
    goc_multipool *m;
    struct goc_pool_config cfg = { 0 };
    ASSERT_OK(goc_multipool_new(3, &cfg, GOC_LB_ROUND_ROBIN, &m));
    open_gate();
    atomic_store(&ran, 0);
    ASSERT_OK(goc_pool_submit(goc_multipool_pool(m, 0), gated, NULL, NULL));
    while (atomic_load(&ran) < 1)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    struct releasing r = { .m = m, .done = GOC_WG_INIT };
    goc_wg_add(&r.done, 1);
    ASSERT_OK(goc_go(release_multipool, &r));
    while (!goc_pool_is_closed(goc_multipool_pool(m, 0)))
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* now waiting for pool 0 */
    for (int i = 0; i < 6; i++)
        ASSERT_EQ(goc_multipool_submit(m, count, NULL, NULL), GOC_ECLOSED);
    ASSERT_EQ(atomic_load(&ran), 1);
    close_gate();
    ASSERT_OK(goc_wg_wait(&r.done, NULL));
    goc_multipool_free(m);
    goc_chan_release(gate_ch);
}

static int nothing(void *arg)
{
    (void)arg;
    return 0;
}

/*
 * release() tells the idle worker to leave, reboot() reopens the pool at
 * once, and a submit then finds the pool at capacity (the leaving worker
 * still counts) and waits. When that worker leaves, it must start one
 * for the waiter: nobody else will.
 */
TEST_G(pool, submit_after_release_and_reboot_is_served)
{
    for (int i = 0; i < 20; i++) {
        struct goc_pool_config c = { .capacity = 1 };
        goc_pool *p;
        ASSERT_OK(goc_pool_new(&c, &p));
        ASSERT_OK(goc_pool_submit(p, nothing, NULL, NULL));
        ASSERT_OK(goc_pool_wait_idle(p, NULL)); /* its worker is idle */
        ASSERT_OK(goc_pool_release(p));
        ASSERT_OK(goc_pool_reboot(p));
        goc_ctx_local l;
        goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_SECOND);
        ASSERT_OK(goc_pool_submit(p, nothing, NULL, ctx));
        goc_ctx_destroy(ctx);
        ASSERT_OK(goc_pool_wait_idle(p, NULL));
        goc_pool_free(p);
    }
}

/*
 * A submitter blocked when the pool is released gets GOC_ECLOSED, even
 * if it wakes only after a reboot: it used to see the pool open again and
 * wait on, with no worker left to serve it.
 */
TEST_G(pool, submitter_blocked_at_release_gets_closed_after_a_reboot)
{
    for (int i = 0; i < (int)test_scale(50); i++) {
        goc_pool *p = pool(1, 0, 0);
        open_gate();
        ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
        wait_until(p, 1, 0);
        static struct sub s;
        s = (struct sub){ .p = p, .fn = nothing, .rc = 1 };
        pthread_t t;
        ASSERT_OK(pthread_create(&t, NULL, submit_thread, &s));
        wait_until(p, 1, 1);
        ASSERT_OK(goc_pool_release(p));
        close_gate(); /* the worker ends, and leaves the closed pool */
        struct goc_pool_stats st;
        do {
            goc_sleep(100 * GOC_MICROSECOND, NULL);
            ASSERT_OK(goc_pool_stats(p, &st));
        } while (st.workers > 0);
        ASSERT_OK(goc_pool_reboot(p));
        test_join(t, NULL);
        ASSERT_EQ(atomic_load(&s.rc), GOC_ECLOSED);
        goc_chan_release(gate_ch);
        goc_pool_free(p);
    }
}

/* After a shrink, idle workers left over from the old capacity take no
 * more tasks than the new one allows. */
TEST_G(pool, shrink_bounds_the_tasks_idle_workers_take)
{
    goc_pool *p = pool(4, 0, GOC_POOL_DISABLE_PURGE | GOC_POOL_NONBLOCKING);
    for (int i = 0; i < 4; i++) /* four workers, all idle after */
        ASSERT_OK(goc_pool_submit(p, nothing, NULL, NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_OK(goc_pool_tune(p, 1));
    open_gate();
    ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    ASSERT_EQ(goc_pool_submit(p, gated, NULL, NULL), GOC_EOVERLOAD);
    ASSERT_EQ(goc_pool_running(p), 1);
    close_gate();
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    goc_chan_release(gate_ch);
    goc_pool_free(p);
}

static int gated_panic(void *arg)
{
    (void)arg;
    goc_chan_recv(gate_ch, NULL, NULL);
    goc_panic(-EIO, "boom");
}

/* The recovery callback runs before the worker leaves: from here on no
 * allocation succeeds, so no replacement worker can start. */
static void fail_allocations(const struct goc_panic_record *r, void *arg)
{
    (void)r;
    (void)arg;
    goc__fault_after(0);
}

struct stranded {
    goc_pool *p;
    goc_ctx *ctx;
    _Atomic int rc;
    _Atomic bool done;
};

struct idle_wait {
    goc_pool *p;
    _Atomic int rc;
    _Atomic bool done;
};

static void wait_for_idle(void *arg)
{
    struct idle_wait *w = arg;
    goc_ctx_local l;
    goc_ctx *c = goc_ctx_init_timeout(&l, NULL, 3 * GOC_SECOND);
    atomic_store(&w->rc, goc_pool_wait_idle(w->p, c));
    goc_ctx_destroy(c);
    atomic_store(&w->done, true);
}

static void stranded_submit(void *arg)
{
    struct stranded *s = arg;
    atomic_store(&s->rc, goc_pool_submit(s->p, count, NULL, s->ctx));
    atomic_store(&s->done, true);
}

/*
 * A worker left (its task panicked, WORKER_EXIT) and no replacement
 * could start: the submitter queued behind it waited on a pool with no
 * worker, which nothing would ever start. It gets the error now.
 */
TEST_G(pool, waiter_fails_when_no_worker_is_left_and_none_can_start)
{
    atomic_store(&ran, 0);
    open_gate();
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(4, fail_allocations, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_WORKER_EXIT));
    goc_pool *p = pool(1, 0, 0);
    ASSERT_OK(goc_pool_set_recovery(p, h));
    goc_recovery_free(h);
    ASSERT_OK(goc_pool_submit(p, gated_panic, NULL, NULL));
    struct stranded s[2] = { { .p = p }, { .p = p } };
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(goc_ctx_with_timeout(NULL, 5 * GOC_SECOND, &s[i].ctx));
        ASSERT_OK(goc_go(stranded_submit, &s[i]));
        wait_until(p, 1, i + 1);
    }
    struct idle_wait iw = { .p = p };
    ASSERT_OK(goc_go(wait_for_idle, &iw));
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* it waits */
    close_gate(); /* the task panics, its worker leaves */
    while (goc_pool_waiting(p) > 0)
        goc_yield();
    goc__fault_after(-1);
    /* The pool is idle once the last waiter is failed: said at once. */
    int64_t t0 = goc_now();
    while (!atomic_load(&iw.done))
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_OK(atomic_load(&iw.rc));
    ASSERT_LT(goc_now() - t0, 2 * GOC_SECOND);
    /* Each queued submitter is told, the second too. */
    for (int i = 0; i < 2; i++) {
        while (!atomic_load(&s[i].done))
            goc_sleep(GOC_MILLISECOND, NULL);
        ASSERT_EQ(atomic_load(&s[i].rc), -ENOMEM);
        goc_ctx_release(s[i].ctx);
    }
    ASSERT_EQ(goc_pool_waiting(p), 0);
    ASSERT_EQ(atomic_load(&ran), 0);
    /* Memory is back: the pool serves again. */
    ASSERT_OK(goc_pool_submit(p, count, NULL, NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 1);
    goc_pool_free(p);
    goc_chan_release(gate_ch);
}

/* ants' PreAlloc: every worker made with the pool, kept, fixed. */
TEST_G(pool, prealloc_starts_every_worker_up_front_and_keeps_them)
{
    struct goc_pool_config cfg = { .capacity = 4,
                                   .expiry = 2 * GOC_MILLISECOND,
                                   .flags = GOC_POOL_PREALLOC };
    goc_pool *p;
    ASSERT_OK(goc_pool_new(&cfg, &p));
    struct goc_pool_stats st;
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.workers, 4); /* before any submit */
    ASSERT_EQ(goc_pool_running(p), 0);
    ASSERT_EQ(goc_pool_free_slots(p), 4);
    open_gate();
    atomic_store(&ran, 0);
    for (int i = 0; i < 4; i++)
        ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
    wait_until(p, 4, 0);
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.workers, 4); /* the tasks went to the ones made */
    ASSERT_EQ(goc_pool_tune(p, 8), -EPERM);
    close_gate();
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* ten expiry periods */
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.workers, 4);
    ASSERT_EQ(st.expired, 0);
    /* Released, they leave; rebooted, they are made again. */
    ASSERT_OK(goc_pool_release_timeout(p, 5 * GOC_SECOND));
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.workers, 0);
    ASSERT_OK(goc_pool_reboot(p));
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.workers, 4);
    ASSERT_OK(goc_pool_submit(p, count, NULL, NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&ran), 5);
    goc_pool_free(p);
    goc_chan_release(gate_ch);

    cfg.capacity = 0; /* unlimited: nothing to make up front */
    ASSERT_EQ(goc_pool_new(&cfg, &p), -EINVAL);
}

TEST_G(pool, prealloc_out_of_memory_leaves_nothing_behind)
{
    struct goc_pool_config cfg = { .capacity = 3, .flags = GOC_POOL_PREALLOC };
    goc_pool *p = NULL;
    int rc = -ENOMEM;
    /* Every allocation along the way fails once, in turn: each gives
     * -ENOMEM, workers already made leave, and the leak checks after
     * the test find nothing. */
    for (int n = 0; rc == -ENOMEM; n++) {
        ASSERT_LT(n, 64);
        goc__fault_after(n);
        rc = goc_pool_new(&cfg, &p);
        goc__fault_after(-1);
    }
    ASSERT_OK(rc);
    struct goc_pool_stats st;
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.workers, 3);
    goc_pool_free(p);
}

/* Idle workers told to leave by a release take no task: a reboot right
 * after it has the whole capacity at once, with or without prealloc. */
TEST_G(pool, reboot_right_after_release_has_the_whole_capacity)
{
    for (int pre = 0; pre < 2; pre++) {
        struct goc_pool_config cfg = { .capacity = 4,
                                       .flags = GOC_POOL_NONBLOCKING |
                                                (pre ? GOC_POOL_PREALLOC : 0) };
        goc_pool *p;
        ASSERT_OK(goc_pool_new(&cfg, &p));
        atomic_store(&ran, 0);
        for (int i = 0; i < 4; i++)
            ASSERT_OK(goc_pool_submit(p, count, NULL, NULL));
        ASSERT_OK(goc_pool_wait_idle(p, NULL));
        ASSERT_OK(goc_pool_release(p)); /* four idle workers told to go */
        ASSERT_OK(goc_pool_reboot(p));
        open_gate();
        for (int i = 0; i < 4; i++) /* nonblocking: no waiting for room */
            ASSERT_OK(goc_pool_submit(p, gated, NULL, NULL));
        ASSERT_EQ(goc_pool_submit(p, count, NULL, NULL), GOC_EOVERLOAD);
        close_gate();
        ASSERT_OK(goc_pool_wait_idle(p, NULL));
        if (pre) { /* the preallocated ones are all back, and stay */
            struct goc_pool_stats st;
            do {
                goc_sleep(GOC_MILLISECOND, NULL);
                goc_pool_stats(p, &st);
            } while (st.workers > 4);
            ASSERT_EQ(st.workers, 4);
        }
        goc_pool_free(p);
        goc_chan_release(gate_ch);
    }
}

static _Atomic int panic_gate;

static int panics_when_let(void *arg)
{
    (void)arg;
    while (!atomic_load(&panic_gate))
        goc_sleep(GOC_MILLISECOND, NULL);
    goc_panic(-EIO, "a task panicked");
}

/* A preallocated worker leaving by the recovery policy: the submitter
 * waiting for room gets its place first, then the rest is remade idle. */
TEST_G(pool, prealloc_worker_exit_serves_the_waiting_submitter_first)
{
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_WORKER_EXIT));
    struct goc_pool_config cfg = { .capacity = 1, .flags = GOC_POOL_PREALLOC };
    goc_pool *p;
    ASSERT_OK(goc_pool_new(&cfg, &p));
    ASSERT_OK(goc_pool_set_recovery(p, h));
    goc_recovery_free(h);
    atomic_store(&panic_gate, 0);
    atomic_store(&ran, 0);
    ASSERT_OK(goc_pool_submit(p, panics_when_let, NULL, NULL));
    static struct sub s;
    s = (struct sub){ p, count, NULL, NULL, 1 };
    ASSERT_OK(goc_go(submitter, &s));
    wait_until(p, 1, 1); /* it waits for room */
    atomic_store(&panic_gate, 1);
    ASSERT_OK(goc_pool_wait_idle(p, NULL)); /* it ran: nobody waits */
    ASSERT_OK(sub_rc(&s));
    ASSERT_EQ(atomic_load(&ran), 1);
    struct goc_pool_stats st;
    goc_pool_stats(p, &st);
    ASSERT_EQ(st.workers_replaced, 1);
    ASSERT_EQ(st.workers, 1);
    goc_pool_free(p);
}

struct pool_blocked {
    goc_pool *p;
    _Atomic int submit_rc, idle_rc, freed;
    goc_wg calls;
};

static void pool_blocked_submitter(void *arg)
{
    struct pool_blocked *b = arg;
    atomic_store(&b->submit_rc, goc_pool_submit(b->p, count, NULL, NULL));
    goc_wg_done(&b->calls);
}

static void pool_idle_waiter(void *arg)
{
    struct pool_blocked *b = arg;
    atomic_store(&b->idle_rc, goc_pool_wait_idle(b->p, NULL));
    goc_wg_done(&b->calls);
}

static void pool_freer(void *arg)
{
    struct pool_blocked *b = arg;
    goc_pool_free(b->p);
    atomic_store(&b->freed, 1);
    goc_wg_done(&b->calls);
}

/*
 * goc_pool_free() with a submit blocked for a worker and a wait_idle
 * blocked: once the workers had exited it freed the pool, and the two
 * woke into it (ASan). It now waits for them; the submit, refused by the
 * release, gets GOC_ECLOSED.
 */
TEST_G(pool, free_waits_for_blocked_submits_and_waits)
{
    int rounds = (int)test_scale(50);
    for (int i = 0; i < rounds; i++) {
        struct pool_blocked b = { .calls = GOC_WG_INIT };
        atomic_init(&b.submit_rc, 99);
        atomic_init(&b.idle_rc, 99);
        b.p = pool(1, 0, 0);
        open_gate();
        ASSERT_OK(goc_pool_submit(b.p, gated, NULL, NULL));
        goc_wg_add(&b.calls, 3);
        ASSERT_OK(goc_go(pool_blocked_submitter, &b));
        ASSERT_OK(goc_go(pool_idle_waiter, &b));
        WAIT_UNTIL(goc__pool_inside(b.p) >= 2); /* both blocked */
        ASSERT_OK(goc_go(pool_freer, &b));
        /* The release refused it. */
        WAIT_UNTIL(atomic_load(&b.submit_rc) != 99);
        ASSERT_EQ(atomic_load(&b.submit_rc), GOC_ECLOSED);
        ASSERT_EQ(atomic_load(&b.freed), 0); /* the gated task runs */
        goc_sleep((i % 3) * 100 * GOC_MICROSECOND, NULL);
        close_gate();
        goc_wg_wait(&b.calls, NULL);
        ASSERT_EQ(atomic_load(&b.idle_rc), 0);
        ASSERT_EQ(atomic_load(&b.freed), 1);
        goc_chan_release(gate_ch);
    }
}

struct multipool_freeing {
    goc_multipool *m;
    _Atomic int released, freed;
    goc_wg done;
};

static void multipool_releaser(void *arg)
{
    struct multipool_freeing *f = arg;
    ASSERT_OK(goc_multipool_release_timeout(f->m, INT64_MAX));
    atomic_store(&f->released, 1);
    goc_wg_done(&f->done);
}

static void multipool_freer(void *arg)
{
    struct multipool_freeing *f = arg;
    goc_multipool_free(f->m);
    atomic_store(&f->freed, 1);
    goc_wg_done(&f->done);
}

/*
 * goc_multipool_free() while a release_timeout waits on its first pool
 * for a busy worker: the free freed the other pools and the multipool,
 * and the release went on to read them (ASan, now and then). The free
 * now waits for the release.
 */
TEST_G(pool, multipool_free_waits_for_a_release_under_way)
{
    int rounds = (int)test_scale(30);
    for (int i = 0; i < rounds; i++) {
        struct multipool_freeing f = { .done = GOC_WG_INIT };
        struct goc_pool_config cfg = { .capacity = 1 };
        ASSERT_OK(goc_multipool_new(3, &cfg, GOC_LB_ROUND_ROBIN, &f.m));
        goc_pool *first = goc_multipool_pool(f.m, 0);
        open_gate();
        ASSERT_OK(goc_pool_submit(first, gated, NULL, NULL));
        goc_wg_add(&f.done, 2);
        ASSERT_OK(goc_go(multipool_releaser, &f));
        WAIT_UNTIL(goc__pool_inside(first) >= 1); /* waiting for the worker */
        ASSERT_OK(goc_go(multipool_freer, &f));
        goc_sleep((i % 3) * 100 * GOC_MICROSECOND, NULL);
        ASSERT_EQ(atomic_load(&f.freed), 0); /* the gated task runs */
        close_gate();
        goc_wg_wait(&f.done, NULL);
        ASSERT_EQ(atomic_load(&f.released), 1);
        ASSERT_EQ(atomic_load(&f.freed), 1);
        goc_chan_release(gate_ch);
    }
}

/* A submit refused for bad input, or a ctx ended at entry, changes
 * nothing: not the round robin's turn either. */
TEST_G(pool, multipool_bad_submit_leaves_the_round_robin_alone)
{
    goc_multipool *m;
    struct goc_pool_config cfg = { .capacity = 2 };
    ASSERT_OK(goc_multipool_new(3, &cfg, GOC_LB_ROUND_ROBIN, &m));
    open_gate();
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_ctx_cancel(k);
    for (int i = 0; i < 3; i++) {
        /* Pool i's turn, whatever was refused before. */
        ASSERT_OK(goc_multipool_submit(m, gated, NULL, NULL));
        ASSERT_EQ(goc_pool_running(goc_multipool_pool(m, i)), 1);
        ASSERT_EQ(goc_multipool_submit(m, NULL, NULL, NULL), -EINVAL);
        ASSERT_EQ(goc_multipool_submit(m, gated, NULL, k), -ECANCELED);
    }
    goc_ctx_release(k);
    close_gate();
    ASSERT_OK(goc_multipool_release_timeout(m, 5 * GOC_SECOND));
    goc_multipool_free(m);
    goc_chan_release(gate_ch);
}
