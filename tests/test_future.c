/* SPDX-License-Identifier: MIT */
/*
 * Tests of futures, the combinators, continuations, run-with-timeout and
 * singleflight.
 */
#include "test.h"

#include "../src/internal/alloc.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

/* Inside a TEST_G: wait until only the main goroutine is left. */
static void wait_only_main(void)
{
    for (int i = 0; i < 500 && goc_num_goroutine() > 1; i++)
        goc_sleep(10 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_num_goroutine(), 1);
}

static goc_future *fut(void)
{
    goc_future *f;
    ASSERT_OK(goc_future_new(free, &f));
    return f;
}

static int status_of(goc_future *f)
{
    int st = 1;
    ASSERT_OK(goc_future_get(f, &st, NULL, NULL));
    return st;
}

static void *boxed(int v)
{
    int *p = malloc(sizeof(*p));
    ASSERT(p != NULL);
    *p = v;
    return p;
}

TEST(future, complete_once_reports_the_winner_d088)
{
    goc_future *f = fut();
    ASSERT_EQ(goc_future_state(f), GOC_FUTURE_PENDING);
    ASSERT(!goc_future_is_done(f));
    ASSERT_EQ(goc_future_complete(f, 1, NULL), -EINVAL);
    ASSERT_EQ(goc_future_complete(f, 0, boxed(7)), 1);
    int other = 8;
    ASSERT_EQ(goc_future_complete(f, -EIO, &other), 0); /* seen, not hidden */
    ASSERT_EQ(goc_future_cancel(f), 0);
    int st;
    void *v;
    ASSERT_OK(goc_future_try_get(f, &st, &v));
    ASSERT_EQ(st, 0);
    ASSERT_EQ(*(int *)v, 7);
    ASSERT_EQ(goc_future_state(f), GOC_FUTURE_FULFILLED);
    goc_future_release(f);
    f = fut();
    ASSERT_EQ(goc_future_try_get(f, &st, &v), -EAGAIN);
    ASSERT_EQ(goc_future_cancel(f), 1);
    ASSERT_EQ(goc_future_state(f), GOC_FUTURE_CANCELED);
    goc_future_release(f);
    f = fut();
    ASSERT_EQ(goc_future_complete(f, -EIO, NULL), 1);
    ASSERT_EQ(goc_future_state(f), GOC_FUTURE_REJECTED);
    goc_future_release(f);
}

TEST(future, settled_result_wins_over_done_ctx_d084)
{
    goc_future *f = fut();
    ASSERT_EQ(goc_future_complete(f, 0, boxed(1)), 1);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_ctx_cancel(k);
    for (int i = 0; i < 10000; i++) {
        int st = 1;
        ASSERT_OK(goc_future_get(f, &st, NULL, k));
        ASSERT_EQ(st, 0);
        ASSERT_OK(goc_future_get_timeout(f, &st, NULL, 0));
    }
    goc_future_release(f);
    /* And a pending one with a done ctx fails the same way every time. */
    f = fut();
    for (int i = 0; i < 10000; i++) {
        int st;
        ASSERT_EQ(goc_future_get(f, &st, NULL, k), -ECANCELED);
        ASSERT_EQ(goc_future_get_timeout(f, &st, NULL, 0), -ETIMEDOUT);
    }
    goc_future_release(f);
    goc_ctx_release(k);
}

struct setter {
    goc_future *f;
    int64_t after;
    int status;
};

static void set_later(void *arg)
{
    /* A copy: the test reuses its setter once this one has settled. */
    struct setter s = *(struct setter *)arg;
    goc_sleep(s.after, NULL);
    if (s.status == -ECANCELED)
        goc_future_cancel(s.f);
    else
        goc_future_complete(s.f, s.status, boxed(3));
    goc_future_release(s.f); /* a settler holds a reference */
}

struct getter {
    goc_future *f;
    _Atomic int rc;
    int st;
};

static void *get_thread(void *arg)
{
    struct getter *g = arg;
    atomic_store(&g->rc, goc_future_get(g->f, &g->st, NULL, NULL));
    return NULL;
}

TEST_G(future, get_blocks_until_settled_timeout_cancel_entry_thread)
{
    static struct setter s;
    goc_future *f = fut();
    int st;
    /* timeout */
    ASSERT_EQ(goc_future_get_timeout(f, &st, NULL, 3 * GOC_MILLISECOND),
              -ETIMEDOUT);
    /* cancel while waiting, then before entry: f is unaffected */
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_future_get(f, &st, NULL, k), -ECANCELED);
    ASSERT_EQ(goc_future_get(f, &st, NULL, k), -ECANCELED);
    goc_ctx_release(k);
    ASSERT(!goc_future_is_done(f));
    /* close while waiting: the future is cancelled under the waiter */
    s = (struct setter){ goc_future_retain(f), 3 * GOC_MILLISECOND,
                         -ECANCELED };
    ASSERT_OK(goc_go(set_later, &s));
    ASSERT_EQ(status_of(f), -ECANCELED);
    goc_future_release(f);
    /* success, from a goroutine and from a plain thread */
    f = fut();
    static struct getter g;
    g = (struct getter){ f, 1, 1 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, get_thread, &g));
    s = (struct setter){ goc_future_retain(f), 3 * GOC_MILLISECOND, 0 };
    ASSERT_OK(goc_go(set_later, &s));
    void *v;
    ASSERT_OK(goc_future_get(f, &st, &v, NULL));
    ASSERT_EQ(st, 0);
    ASSERT_EQ(*(int *)v, 3);
    test_join(th, NULL);
    ASSERT_OK(atomic_load(&g.rc));
    ASSERT_EQ(g.st, 0);
    goc_future_release(f);
}

static _Atomic int cb_calls;

static void call_back_in(goc_future *f, void *arg)
{
    (void)arg;
    /* No lock is held: calling into the future must not deadlock. */
    int st;
    ASSERT_OK(goc_future_try_get(f, &st, NULL));
    ASSERT_EQ(goc_future_complete(f, 0, NULL), 0);
    atomic_fetch_add(&cb_calls, 1);
}

TEST(future, settle_callbacks_run_once_without_a_lock)
{
    goc_future *f = fut();
    atomic_store(&cb_calls, 0);
    ASSERT_OK(goc_future_on_settle(f, call_back_in, NULL));
    ASSERT_OK(goc_future_on_settle(f, call_back_in, NULL));
    ASSERT_EQ(atomic_load(&cb_calls), 0);
    ASSERT_EQ(goc_future_complete(f, -EIO, NULL), 1);
    ASSERT_EQ(atomic_load(&cb_calls), 2);
    ASSERT_OK(goc_future_on_settle(f, call_back_in, NULL)); /* at once */
    ASSERT_EQ(atomic_load(&cb_calls), 3);
    ASSERT_EQ(goc_future_on_settle(f, NULL, NULL), -EINVAL);
    goc_future_release(f);
}

static int slow_value(goc_ctx *ctx, void *arg, void **result)
{
    int64_t ms = (intptr_t)arg;
    int rc = goc_sleep(ms * GOC_MILLISECOND, ctx);
    if (rc)
        return rc;
    *result = boxed((int)ms);
    return 0;
}

static int fails(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)result;
    return (int)(intptr_t)arg;
}

TEST_G(future, async_settles_every_exit_and_cancel_stops_the_work_d089)
{
    goc_future *f;
    ASSERT_OK(goc_future_async(slow_value, (void *)1, free, NULL, &f));
    void *v;
    int st;
    ASSERT_OK(goc_future_get(f, &st, &v, NULL));
    ASSERT_EQ(st, 0);
    ASSERT_EQ(*(int *)v, 1);
    goc_future_release(f);
    ASSERT_OK(goc_future_async(fails, (void *)(intptr_t)-EIO, NULL, NULL, &f));
    ASSERT_EQ(status_of(f), -EIO);
    goc_future_release(f);
    /* cancel reaches the work through its ctx: it stops at once */
    ASSERT_OK(goc_future_async(slow_value, (void *)10000, free, NULL, &f));
    int64_t t0 = goc_now();
    ASSERT_EQ(goc_future_cancel(f), 1);
    ASSERT_EQ(status_of(f), -ECANCELED);
    goc_future_release(f);
    wait_only_main(); /* the goroutine ended long before 10 s */
    ASSERT_LT(goc_now() - t0, 5 * GOC_SECOND);
    /* a done ctx at entry starts nothing */
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_ctx_cancel(k);
    f = NULL;
    ASSERT_EQ(goc_future_async(slow_value, (void *)1, free, k, &f), -ECANCELED);
    ASSERT(f == NULL);
    goc_ctx_release(k);
}

struct racer {
    goc_future *f;
    int status;
    _Atomic int *go;
};

static void complete_now(void *arg)
{
    struct racer *r = arg;
    /* Copy: the next round reuses *r once every input has settled. */
    goc_future *f = r->f;
    int status = r->status;
    while (!atomic_load(r->go))
        goc_yield();
    if (goc_future_complete(f, status, boxed(status)) == 0)
        ASSERT_FAIL("%s", "input completed twice");
    goc_future_release(f); /* a completer holds a reference */
}

static _Atomic int race_settles;

static void count_settle(goc_future *f, void *arg)
{
    (void)f;
    (void)arg;
    atomic_fetch_add(&race_settles, 1);
}

/*
 * A getter may return before the settle callbacks have run: the completer
 * wakes getters first and runs the callbacks after it lets go of the
 * future. Wait (bounded) for the one callback, so that a late one cannot
 * count into the next round either.
 */
static int settles_after_get(void)
{
    int64_t t0 = goc_now();
    while (atomic_load(&race_settles) == 0 && goc_now() - t0 < GOC_SECOND)
        goc_yield();
    return atomic_load(&race_settles);
}

/* n inputs completed at once from n goroutines; returns the result. */
static goc_future *race_inputs(int kind, int n, const int *status)
{
    goc_future *in[8];
    static struct racer r[8];
    static _Atomic int go;
    atomic_store(&go, 0);
    for (int i = 0; i < n; i++) {
        in[i] = fut();
        r[i] = (struct racer){ goc_future_retain(in[i]), status[i], &go };
    }
    goc_future *out = NULL;
    if (kind == 0)
        ASSERT_OK(goc_future_race(in, (size_t)n, 0, &out));
    else
        ASSERT_OK(goc_future_any(in, (size_t)n, 0, &out));
    ASSERT_OK(goc_future_on_settle(out, count_settle, NULL));
    goc_wg wg = GOC_WG_INIT;
    (void)wg;
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(complete_now, &r[i]));
    atomic_store(&go, 1);
    for (int i = 0; i < n; i++) {
        status_of(in[i]);
        goc_future_release(in[i]);
    }
    return out;
}

TEST_G(future, race_exactly_one_winner_under_concurrent_completion_d083)
{
    int status[8] = { 0, -EIO, 0, -EPERM, 0, -EIO, 0, 0 };
    for (int it = 0; it < test_scale(2000); it++) {
        atomic_store(&race_settles, 0);
        goc_future *out = race_inputs(0, 8, status);
        int st;
        void *v;
        ASSERT_OK(goc_future_get(out, &st, &v, NULL));
        ASSERT_EQ(*(int *)v, st); /* the value and status of one input */
        ASSERT_EQ(settles_after_get(), 1);
        goc_future_release(out);
    }
}

TEST_G(future, any_first_fulfilment_under_concurrent_completion_d086)
{
    int status[8] = { -EIO, -EIO, 0, -EPERM, -EIO, 0, -EIO, -EIO };
    for (int it = 0; it < test_scale(2000); it++) {
        atomic_store(&race_settles, 0);
        goc_future *out = race_inputs(1, 8, status);
        int st;
        void *v;
        ASSERT_OK(goc_future_get(out, &st, &v, NULL));
        ASSERT_EQ(st, 0);
        ASSERT_EQ(*(int *)v, 0);
        ASSERT_EQ(settles_after_get(), 1);
        goc_future_release(out);
    }
    /* all fail: the aggregate, with every status in input order */
    int bad[3] = { -EIO, -EPERM, -ENOENT };
    goc_future *out = race_inputs(1, 3, bad);
    int st;
    void *v;
    ASSERT_OK(goc_future_get(out, &st, &v, NULL));
    ASSERT_EQ(st, GOC_EAGGREGATE);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(((int *)v)[i], bad[i]);
    goc_future_release(out);
}

TEST(future, empty_inputs_defined_d085)
{
    goc_future *out = NULL;
    ASSERT_EQ(goc_future_race(NULL, 0, 0, &out), GOC_EEMPTY);
    ASSERT(out == NULL);
    ASSERT_OK(goc_future_any(NULL, 0, 0, &out));
    ASSERT_EQ(status_of(out), GOC_EEMPTY);
    goc_future_release(out);
    ASSERT_OK(goc_future_all(NULL, 0, 0, &out));
    ASSERT_EQ(status_of(out), 0);
    goc_future_release(out);
    ASSERT_OK(goc_future_all_settled(NULL, 0, &out));
    ASSERT_EQ(status_of(out), 0);
    goc_future_release(out);
    goc_future *in[1] = { NULL };
    ASSERT_EQ(goc_future_all(in, 1, 0, &out), -EINVAL);
}

TEST(future, race_with_settled_inputs_first_in_input_order_wins_d091)
{
    goc_future *in[3] = { fut(), fut(), fut() };
    goc_future_complete(in[2], 0, boxed(2));
    goc_future_complete(in[1], -EIO, NULL);
    goc_future *out;
    ASSERT_OK(goc_future_race(in, 3, 0, &out));
    ASSERT_EQ(status_of(out), -EIO);
    goc_future_release(out);
    for (int i = 0; i < 3; i++)
        goc_future_release(in[i]);
}

TEST(future, all_fails_fast_with_the_first_error_d087)
{
    goc_future *in[3] = { fut(), fut(), fut() };
    goc_future *out;
    ASSERT_OK(goc_future_all(in, 3, GOC_FUTURE_CANCEL_REST, &out));
    goc_future_complete(in[0], 0, boxed(0));
    ASSERT(!goc_future_is_done(out));
    goc_future_complete(in[2], -EPERM, NULL); /* in[1] still pending */
    ASSERT_EQ(status_of(out), -EPERM);
    ASSERT_EQ(goc_future_state(in[1]), GOC_FUTURE_CANCELED); /* the rest */
    goc_future_release(out);
    for (int i = 0; i < 3; i++)
        goc_future_release(in[i]);
    /* all fulfil: the values in input order */
    for (int i = 0; i < 3; i++)
        in[i] = fut();
    ASSERT_OK(goc_future_all(in, 3, 0, &out));
    for (int i = 2; i >= 0; i--)
        goc_future_complete(in[i], 0, boxed(i * 10));
    void **vals;
    int st;
    ASSERT_OK(goc_future_get(out, &st, (void **)&vals, NULL));
    ASSERT_EQ(st, 0);
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(*(int *)vals[i], i * 10);
        goc_future_release(in[i]); /* out holds them */
    }
    ASSERT_EQ(*(int *)vals[2], 20);
    goc_future_release(out);
}

TEST(future, all_settled_reports_every_outcome_in_order)
{
    goc_future *in[3] = { fut(), fut(), fut() };
    goc_future *out;
    ASSERT_OK(goc_future_all_settled(in, 3, &out));
    goc_future_complete(in[1], -EIO, NULL);
    goc_future_cancel(in[2]);
    ASSERT(!goc_future_is_done(out));
    goc_future_complete(in[0], 0, boxed(5));
    struct goc_settled *s;
    int st;
    ASSERT_OK(goc_future_get(out, &st, (void **)&s, NULL));
    ASSERT_EQ(st, 0);
    ASSERT_EQ(s[0].status, 0);
    ASSERT_EQ(*(int *)s[0].value, 5);
    ASSERT_EQ(s[1].status, -EIO);
    ASSERT_EQ(s[2].status, -ECANCELED);
    for (int i = 0; i < 3; i++)
        goc_future_release(in[i]);
    goc_future_release(out);
}

static int times_two(const void *value, void *arg, void **result)
{
    (void)arg;
    *result = boxed(*(const int *)value * 2);
    return 0;
}

TEST_G(future, then_maps_values_and_passes_failures_through)
{
    goc_future *a = fut(), *b, *c;
    ASSERT_OK(goc_future_then(a, times_two, NULL, free, &b));
    ASSERT_OK(goc_future_then(b, times_two, NULL, free, &c));
    goc_future_complete(a, 0, boxed(5));
    void *v;
    int st;
    ASSERT_OK(goc_future_get(c, &st, &v, NULL));
    ASSERT_EQ(st, 0);
    ASSERT_EQ(*(int *)v, 20);
    goc_future_release(a);
    goc_future_release(b);
    goc_future_release(c);
    a = fut();
    ASSERT_OK(goc_future_then(a, times_two, NULL, free, &b));
    goc_future_complete(a, -EIO, NULL);
    ASSERT_EQ(status_of(b), -EIO);
    goc_future_release(a);
    goc_future_release(b);
}

static _Atomic int saw_cancel;
static goc_chan *late_gate; /* if set, the work returns once it closes */

static int notices_cancel(goc_ctx *ctx, void *arg, void **result)
{
    (void)arg;
    int rc = goc_sleep(10 * GOC_SECOND, ctx);
    if (rc)
        atomic_store(&saw_cancel, rc);
    /* Return after the caller gave up: otherwise the result, there at
     * the deadline, would rightly win. */
    if (late_gate)
        goc_chan_recv(late_gate, NULL, NULL);
    *result = boxed(1); /* a late value: must be freed exactly once */
    return rc;
}

TEST_G(future, run_timeout_cancels_the_work_and_drops_its_late_result_d011)
{
    int64_t before = goc_run_timeout_abandoned();
    void *v = (void *)1;
    atomic_store(&saw_cancel, 0);
    ASSERT_OK(goc_chan_new(0, 0, &late_gate));
    /* Long enough for the work to start before its deadline, which it
     * would not, past it, even under valgrind. */
    int64_t timeout = (test_instrumented() ? 200 : 5) * GOC_MILLISECOND;
    ASSERT_EQ(goc_run_timeout(notices_cancel, NULL, free, &v, timeout, 0, NULL),
              -ETIMEDOUT);
    ASSERT(v == NULL);
    goc_chan_close(late_gate); /* now the late value comes */
    wait_only_main();          /* the work stopped: it got the deadline ctx */
    ASSERT_EQ(atomic_load(&saw_cancel), -ETIMEDOUT);
    ASSERT_EQ(goc_run_timeout_abandoned(), before + 1);
    goc_chan_release(late_gate);
    late_gate = NULL;
    /* with WAIT_ABANDONED the work has returned when the call does (the
     * same timeout: a work not started by its deadline never runs) */
    atomic_store(&saw_cancel, 0);
    ASSERT_EQ(goc_run_timeout(notices_cancel, NULL, free, NULL, timeout,
                              GOC_TIMEOUT_WAIT_ABANDONED, NULL),
              -ETIMEDOUT);
    ASSERT_EQ(atomic_load(&saw_cancel), -ETIMEDOUT);
    /* in time: the status and the value come back */
    ASSERT_OK(
        goc_run_timeout(slow_value, (void *)1, free, &v, GOC_SECOND, 0, NULL));
    ASSERT_EQ(*(int *)v, 1);
    free(v);
    ASSERT_EQ(goc_run_timeout(fails, (void *)(intptr_t)-EIO, NULL, NULL,
                              GOC_SECOND, 0, NULL),
              -EIO);
}

static _Atomic int started;

static int mark_started(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    atomic_fetch_add(&started, 1);
    return 0;
}

TEST_G(future, run_timeout_not_started_when_already_expired_d012)
{
    atomic_store(&started, 0);
    ASSERT_EQ(goc_run_timeout(mark_started, NULL, NULL, NULL, 0, 0, NULL),
              -ETIMEDOUT);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_ctx_cancel(k);
    ASSERT_EQ(goc_run_timeout(mark_started, NULL, NULL, NULL, GOC_SECOND, 0, k),
              -ECANCELED);
    goc_ctx_release(k);
    ASSERT_EQ(goc_run_timeout(NULL, NULL, NULL, NULL, GOC_SECOND, 0, NULL),
              -EINVAL);
    /* A deadline that passes between the entry check and the making of
     * the work's context (1 ns passes in the allocations between them):
     * not started either, rather than started with a context already
     * done. */
    for (int i = 0; i < 100; i++)
        ASSERT_EQ(goc_run_timeout(mark_started, NULL, NULL, NULL, 1,
                                  GOC_TIMEOUT_WAIT_ABANDONED, NULL),
                  -ETIMEDOUT);
    ASSERT_EQ(atomic_load(&started), 0);
    /* the work is a parameter: any duration, any function */
    ASSERT_OK(
        goc_run_timeout(mark_started, NULL, NULL, NULL, GOC_SECOND, 0, NULL));
    ASSERT_EQ(atomic_load(&started), 1);
}

/* INT64_MAX is no deadline: the deadline saturates instead of
 * overflowing (undefined behaviour; the sanitizer build aborts on it). */
TEST_G(future, run_timeout_infinite_runs_without_deadline)
{
    atomic_store(&started, 0);
    void *v = NULL;
    ASSERT_OK(
        goc_run_timeout(mark_started, NULL, free, &v, INT64_MAX, 0, NULL));
    ASSERT_EQ(atomic_load(&started), 1);
    goc_ctx_local l; /* the caller's deadline is the earlier one */
    goc_ctx *c = goc_ctx_init_timeout(&l, NULL, GOC_SECOND);
    ASSERT_OK(goc_run_timeout(mark_started, NULL, free, &v, INT64_MAX, 0, c));
    goc_ctx_destroy(c);
    ASSERT_EQ(atomic_load(&started), 2);
}

/* The work hands its context to a goroutine of its own (a child future)
 * and returns at once. */
static goc_future *rt_child;

static int sleeps_on_ctx(goc_ctx *ctx, void *arg, void **result)
{
    (void)arg;
    (void)result;
    return goc_sleep(30 * GOC_SECOND, ctx);
}

static int spawns_under_ctx(goc_ctx *ctx, void *arg, void **result)
{
    (void)arg;
    (void)result;
    return goc_future_async(sleeps_on_ctx, NULL, NULL, ctx, &rt_child);
}

/* A work that returns in time is done with its context: it ends then (as
 * Go's defer cancel()), so what the work started under it stops, instead
 * of running on until the deadline, or for ever without one. */
TEST_G(future, run_timeout_ends_the_works_context_when_it_returns)
{
    int64_t timeouts[] = { 20 * GOC_SECOND, INT64_MAX };
    for (int i = 0; i < 2; i++) {
        rt_child = NULL;
        ASSERT_OK(goc_run_timeout(spawns_under_ctx, NULL, NULL, NULL,
                                  timeouts[i], 0, NULL));
        ASSERT(rt_child != NULL);
        int st = 1;
        ASSERT_OK(goc_future_get_timeout(rt_child, &st, NULL, 5 * GOC_SECOND));
        ASSERT_EQ(st, -ECANCELED);
        goc_future_release(rt_child);
    }
}

/* ---- singleflight ---- */

static _Atomic int sf_runs;
static goc_chan *sf_gate;

static int sf_fetch(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    atomic_fetch_add(&sf_runs, 1);
    goc_chan_recv(sf_gate, NULL, NULL);
    if (arg)
        return (int)(intptr_t)arg;
    *result = boxed(42);
    return 0;
}

struct sf_call {
    goc_sf *g;
    intptr_t err;
    int st;
    bool shared;
    goc_wg *wg;
};

static void sf_caller(void *arg)
{
    struct sf_call *c = arg;
    goc_future *f;
    ASSERT_OK(goc_sf_do(c->g, "k", sf_fetch, (void *)c->err, free, &f,
                        &c->shared, NULL));
    void *v;
    ASSERT_OK(goc_future_try_get(f, &c->st, &v));
    if (c->st == 0)
        ASSERT_EQ(*(int *)v, 42);
    goc_future_release(f);
    goc_wg_done(c->wg);
}

static void sf_round(goc_sf *g, intptr_t err, int n, struct sf_call *c)
{
    goc_wg wg = GOC_WG_INIT;
    atomic_store(&sf_runs, 0);
    ASSERT_OK(goc_chan_new(0, 0, &sf_gate));
    goc_wg_add(&wg, n);
    for (int i = 0; i < n; i++) {
        c[i] = (struct sf_call){ g, err, 1, false, &wg };
        ASSERT_OK(goc_go(sf_caller, &c[i]));
    }
    while (goc_sf_joined(g, "k") < n - 1) /* one runs, the others join */
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    goc_chan_close(sf_gate);
    goc_wg_wait(&wg, NULL);
    goc_chan_release(sf_gate);
}

TEST_G(future, singleflight_shares_one_call_and_its_failure)
{
    goc_sf *g;
    ASSERT_OK(goc_sf_new(&g));
    static struct sf_call c[10];
    sf_round(g, 0, 10, c);
    ASSERT_EQ(atomic_load(&sf_runs), 1);
    for (int i = 0; i < 10; i++) {
        ASSERT_EQ(c[i].st, 0);
        ASSERT(c[i].shared);
    }
    sf_round(g, -EIO, 10, c); /* not cached: runs again; all see the error */
    ASSERT_EQ(atomic_load(&sf_runs), 1);
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(c[i].st, -EIO);
    goc_sf_free(g);
}

TEST_G(future, singleflight_forget_async_and_join_timeout)
{
    goc_sf *g;
    ASSERT_OK(goc_sf_new(&g));
    ASSERT_OK(goc_chan_new(0, 0, &sf_gate));
    atomic_store(&sf_runs, 0);
    goc_future *a, *b, *c;
    ASSERT_OK(goc_sf_do_async(g, "k", sf_fetch, NULL, free, &a, NULL));
    ASSERT_OK(goc_sf_do_async(g, "k", sf_fetch, NULL, free, &b, NULL));
    ASSERT(a != b); /* one flight, a future per caller */
    /* a joiner with a deadline gives up; the flight goes on */
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_sf_do(g, "k", sf_fetch, NULL, free, &c, NULL, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    ASSERT_EQ(goc_sf_forget(g, "k"), 1);
    ASSERT_EQ(goc_sf_forget(g, "k"), 0);
    ASSERT_OK(goc_sf_do_async(g, "k", sf_fetch, NULL, free, &c, NULL));
    ASSERT(c != a); /* forgotten: a new flight */
    goc_chan_close(sf_gate);
    ASSERT_EQ(status_of(a), 0);
    ASSERT_EQ(status_of(c), 0);
    ASSERT_EQ(atomic_load(&sf_runs), 2);
    goc_future_release(a);
    goc_future_release(b);
    goc_future_release(c);
    goc_chan_release(sf_gate);
    goc_sf_free(g);
}

TEST_G(future, run_timeout_caller_cancel_reaches_work_and_local_ctx_may_end)
{
    /* The caller's local deadline ends the call; the local context is
     * destroyed at once while the abandoned work is still unwinding. */
    atomic_store(&saw_cancel, 0);
    goc_ctx_local l;
    /* Long enough to start the work even under valgrind. */
    goc_ctx *c = goc_ctx_init_timeout(&l, NULL, 100 * GOC_MILLISECOND);
    ASSERT_EQ(
        goc_run_timeout(notices_cancel, NULL, free, NULL, GOC_SECOND, 0, c),
        -ETIMEDOUT); /* the caller's earlier deadline */
    goc_ctx_destroy(c);
    wait_only_main();
    ASSERT_EQ(atomic_load(&saw_cancel), -ETIMEDOUT);
    /* A cancel of the caller's context reaches the work. */
    atomic_store(&saw_cancel, 0);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_run_timeout(notices_cancel, NULL, free, NULL, GOC_SECOND,
                              GOC_TIMEOUT_WAIT_ABANDONED, k),
              -ECANCELED);
    ASSERT_EQ(atomic_load(&saw_cancel), -ECANCELED);
    goc_ctx_release(k);
}

struct sf_join {
    goc_sf *g;
    goc_ctx *ctx;
    int rc, st;
};

static void *sf_join_thread(void *arg)
{
    struct sf_join *j = arg;
    goc_future *f = NULL;
    j->rc = goc_sf_do(j->g, "k", sf_fetch, NULL, free, &f, NULL, j->ctx);
    if (!j->rc) {
        goc_future_try_get(f, &j->st, NULL);
        goc_future_release(f);
    }
    return NULL;
}

static _Atomic int sf_quick_runs;

static int sf_quick(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    atomic_fetch_add(&sf_quick_runs, 1);
    return 0;
}

TEST_G(future, singleflight_join_cancel_entry_and_plain_thread)
{
    goc_sf *g;
    ASSERT_OK(goc_sf_new(&g));
    ASSERT_OK(goc_chan_new(0, 0, &sf_gate));
    atomic_store(&sf_runs, 0);
    goc_future *a, *c = NULL;
    ASSERT_OK(goc_sf_do_async(g, "k", sf_fetch, NULL, free, &a, NULL));
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 2 * GOC_MILLISECOND);
    ASSERT_EQ(goc_sf_do(g, "k", sf_fetch, NULL, free, &c, NULL, k), -ECANCELED);
    ASSERT_EQ(goc_sf_do(g, "k", sf_fetch, NULL, free, &c, NULL, k),
              -ECANCELED); /* at entry: it does not even join */
    ASSERT(c == NULL);
    /* Done at entry, a would-be leader starts nothing either: its flight
     * would fail every joiner with its cancel. */
    ASSERT_EQ(goc_sf_do(g, "other", sf_quick, NULL, free, &c, NULL, k),
              -ECANCELED);
    ASSERT_EQ(goc_sf_do_async(g, "other", sf_quick, NULL, free, &c, k),
              -ECANCELED);
    ASSERT(c == NULL);
    goc_sleep(GOC_MILLISECOND, NULL); /* an async one would have run */
    ASSERT_EQ(atomic_load(&sf_quick_runs), 0);
    static struct sf_join j;
    j = (struct sf_join){ g, NULL, 1, 1 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, sf_join_thread, &j));
    while (goc_sf_joined(g, "k") < 2) /* the one that gave up, and it */
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    goc_chan_close(sf_gate);
    test_join(th, NULL);
    ASSERT_OK(j.rc);
    ASSERT_EQ(j.st, 0);
    ASSERT_EQ(status_of(a), 0);
    ASSERT_EQ(atomic_load(&sf_runs), 1); /* the thread joined, not ran */
    goc_future_release(a);
    goc_ctx_release(k);
    goc_chan_release(sf_gate);
    goc_sf_free(g);
}

static _Atomic int sf_freed;

static void sf_count_free(void *v)
{
    atomic_fetch_add(&sf_freed, 1);
    free(v);
}

struct sf_sync {
    goc_sf *g;
    goc_future *f;
    int st;
    void *v;
    goc_wg *wg;
};

/* A goc_sf_do() caller that keeps its future, to release it later. */
static void sf_sync_caller(void *arg)
{
    struct sf_sync *c = arg;
    ASSERT_OK(
        goc_sf_do(c->g, "k", sf_fetch, NULL, sf_count_free, &c->f, NULL, NULL));
    ASSERT_OK(goc_future_try_get(c->f, &c->st, &c->v));
    goc_wg_done(c->wg);
}

static void sf_start(void)
{
    atomic_store(&sf_runs, 0);
    atomic_store(&sf_freed, 0);
    ASSERT_OK(goc_chan_new(0, 0, &sf_gate));
}

/* Wait until the flight of "k" has its leader and @n joiners. */
static void sf_wait_joined(goc_sf *g, int64_t n)
{
    while (goc_sf_joined(g, "k") < n)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
}

/* Wait (bounded) until n values were freed: the flight's goroutine may
 * hold the flight a moment after settling it, and the last holder frees
 * the value. Then no more may come. */
static void sf_wait_freed(int n)
{
    int64_t end = goc_now() + 5 * GOC_SECOND;
    while (atomic_load(&sf_freed) < n && goc_now() < end)
        goc_sleep(GOC_MILLISECOND, NULL);
    goc_sleep(GOC_MILLISECOND, NULL);
    int freed = atomic_load(&sf_freed);
    ASSERT_EQ(freed, n);
}

/* The async caller that gives up cancels its own future, not the flight:
 * a goc_sf_do() joiner used to be settled as cancelled and lose the
 * value. */
TEST_G(future, singleflight_async_cancel_settles_only_that_caller)
{
    goc_sf *g;
    ASSERT_OK(goc_sf_new(&g));
    sf_start();
    goc_future *a, *b;
    ASSERT_OK(goc_sf_do_async(g, "k", sf_fetch, NULL, sf_count_free, &a, NULL));
    goc_wg wg = GOC_WG_INIT;
    static struct sf_sync s;
    s = (struct sf_sync){ g, NULL, 1, NULL, &wg };
    goc_wg_add(&wg, 1);
    ASSERT_OK(goc_go(sf_sync_caller, &s));
    ASSERT_OK(goc_sf_do_async(g, "k", sf_fetch, NULL, sf_count_free, &b, NULL));
    sf_wait_joined(g, 2);
    ASSERT_EQ(goc_future_cancel(a), 1);
    ASSERT_EQ(goc_future_state(a), GOC_FUTURE_CANCELED);
    ASSERT(!goc_future_is_done(b)); /* the others still wait */
    goc_chan_close(sf_gate);
    goc_wg_wait(&wg, NULL);
    ASSERT_EQ(s.st, 0);
    ASSERT_EQ(*(int *)s.v, 42);
    int st;
    void *v;
    ASSERT_OK(goc_future_get(b, &st, &v, NULL));
    ASSERT_EQ(st, 0);
    ASSERT(v == s.v); /* one value, shared */
    ASSERT_EQ(atomic_load(&sf_runs), 1);
    goc_future_release(a);
    goc_future_release(s.f);
    ASSERT_EQ(atomic_load(&sf_freed), 0); /* b still reads it */
    goc_future_release(b);
    sf_wait_freed(1);
    goc_chan_release(sf_gate);
    goc_sf_free(g);
}

enum { SF_ASYNC = 8, SF_SYNC = 8 };

/* Many async and sync callers of one flight; some async ones cancel,
 * one lets go before the end: the rest all get the one value, which is
 * destroyed once, when the last holder lets go. */
TEST_G(future, singleflight_many_callers_some_cancel_value_freed_once)
{
    goc_sf *g;
    ASSERT_OK(goc_sf_new(&g));
    sf_start();
    goc_future *fa[SF_ASYNC];
    for (int i = 0; i < SF_ASYNC; i++)
        ASSERT_OK(goc_sf_do_async(g, "k", sf_fetch, NULL, sf_count_free, &fa[i],
                                  NULL));
    goc_wg wg = GOC_WG_INIT;
    static struct sf_sync s[SF_SYNC];
    goc_wg_add(&wg, SF_SYNC);
    for (int i = 0; i < SF_SYNC; i++) {
        s[i] = (struct sf_sync){ g, NULL, 1, NULL, &wg };
        ASSERT_OK(goc_go(sf_sync_caller, &s[i]));
    }
    sf_wait_joined(g, SF_ASYNC - 1 + SF_SYNC);
    for (int i = 0; i < SF_ASYNC; i += 2)
        ASSERT_EQ(goc_future_cancel(fa[i]), 1);
    goc_future_release(fa[1]); /* gives up without cancelling */
    fa[1] = NULL;
    goc_chan_close(sf_gate);
    goc_wg_wait(&wg, NULL);
    void *value = s[0].v;
    for (int i = 0; i < SF_SYNC; i++) {
        ASSERT_EQ(s[i].st, 0);
        ASSERT(s[i].v == value);
    }
    ASSERT_EQ(*(int *)value, 42);
    for (int i = 0; i < SF_ASYNC; i++) {
        int st;
        void *v = NULL;
        if (!fa[i])
            continue;
        ASSERT_OK(goc_future_get(fa[i], &st, &v, NULL));
        ASSERT_EQ(st, i % 2 ? 0 : -ECANCELED);
        ASSERT(v == (i % 2 ? value : NULL));
    }
    ASSERT_EQ(atomic_load(&sf_runs), 1);
    for (int i = 0; i < SF_SYNC; i++)
        goc_future_release(s[i].f);
    for (int i = 0; i < SF_ASYNC; i++)
        goc_future_release(fa[i]);
    sf_wait_freed(1);
    goc_chan_release(sf_gate);

    /* Every caller cancels: the flight still ends and frees its value. */
    sf_start();
    ASSERT_OK(
        goc_sf_do_async(g, "k", sf_fetch, NULL, sf_count_free, &fa[0], NULL));
    ASSERT_EQ(goc_future_cancel(fa[0]), 1);
    goc_future_release(fa[0]);
    goc_chan_close(sf_gate);
    for (int i = 0; i < 5000 && atomic_load(&sf_freed) == 0; i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    wait_only_main();
    ASSERT_EQ(atomic_load(&sf_freed), 1);
    ASSERT_EQ(atomic_load(&sf_runs), 1);
    goc_chan_release(sf_gate);
    goc_sf_free(g);
}

static int keep_value(const void *in, void *arg, void **out)
{
    (void)in;
    (void)arg;
    (void)out;
    return 0;
}

/* A pending future whose owners all release it is abandoned: settled as
 * cancelled so that its continuation runs and lets go. The continuation
 * used to hold a reference of its own, so this never happened. */
TEST_G(future, then_on_an_abandoned_future_is_cancelled)
{
    goc_future *p, *d;
    ASSERT_OK(goc_future_new(NULL, &p));
    ASSERT_OK(goc_future_then(p, keep_value, NULL, NULL, &d));
    goc_future_release(p);
    int st = 0;
    ASSERT_OK(goc_future_get_timeout(d, &st, NULL, 5 * GOC_SECOND));
    ASSERT_EQ(st, -ECANCELED);
    goc_future_release(d);
}

static int64_t heap_objects_now(void)
{
    int64_t bytes, objects, allocs;
    goc__heap_counts(&bytes, &objects, &allocs);
    return objects;
}

/*
 * A combinator that ran out of memory while watching its inputs failed
 * with -ENOMEM but kept its references on them and the watches it had
 * attached: inputs released by their owners, still pending, could never
 * be abandoned, and leaked with the combinator. Each allocation fails in
 * turn here; whatever fails leaves nothing behind.
 */
TEST(future, combinator_out_of_memory_keeps_nothing_alive)
{
    int failures = 0;
    for (int64_t fault = 0;; fault++) {
        goc_future *in[3], *out = NULL;
        int64_t before = heap_objects_now();
        for (int i = 0; i < 3; i++)
            ASSERT_OK(goc_future_new(NULL, &in[i]));
        goc__fault_after(fault);
        int rc = goc_future_all(in, 3, GOC_FUTURE_CANCEL_REST, &out);
        goc__fault_after(-1);
        if (rc == 0) {
            for (int i = 0; i < 3; i++)
                goc_future_complete(in[i], -EIO, NULL);
            goc_future_release(out);
        } else {
            ASSERT_EQ(rc, -ENOMEM);
            ASSERT(out == NULL);
            failures++;
        }
        for (int i = 0; i < 3; i++)
            goc_future_release(in[i]);
        if (heap_objects_now() != before)
            ASSERT_FAIL("fault %" PRId64 ": rc %d, %" PRId64 " objects left",
                        fault, rc, heap_objects_now() - before);
        if (rc == 0)
            break;
    }
    ASSERT_GT(failures, 5);
}

/* ---- a local parent context ------------------------------------------- */

static int returns_at_once(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    (void)result;
    return 0;
}

/* future.h: a local ctx given to goc_future_async must outlive @fn. The
 * context @fn ran under stayed linked to it until the future's release,
 * which then locked the local's dead storage (a hang, or ASan's
 * heap-use-after-free). */
TEST_G(future, async_under_a_local_context_may_outlive_it)
{
    goc_ctx_local *local = malloc(sizeof(*local));
    ASSERT(local);
    goc_ctx *c = goc_ctx_init_cancel(local, NULL);
    goc_future *f;
    ASSERT_OK(goc_future_async(returns_at_once, NULL, NULL, c, &f));
    int st;
    ASSERT_OK(goc_future_get(f, &st, NULL, NULL));
    ASSERT_EQ(st, 0);
    ASSERT_OK(goc_ctx_destroy(c));
    free(local); /* @fn has returned: the local may go */
    goc_future_release(f);
}

/* The same for a worker pool's task: its context is a child of the
 * pool's, which must only outlive the pool. */
TEST_G(future, pool_task_may_outlive_the_pools_local_context)
{
    goc_ctx_local *local = malloc(sizeof(*local));
    ASSERT(local);
    goc_ctx *c = goc_ctx_init_cancel(local, NULL);
    struct goc_workerpool_config cfg = { .max_workers = 1, .ctx = c };
    goc_workerpool *p;
    ASSERT_OK(goc_workerpool_new(&cfg, &p));
    goc_future *f;
    ASSERT_OK(goc_workerpool_submit(p, returns_at_once, NULL, NULL, &f, NULL));
    int st;
    ASSERT_OK(goc_future_get(f, &st, NULL, NULL));
    ASSERT_EQ(st, 0);
    goc_workerpool_free(p);
    ASSERT_OK(goc_ctx_destroy(c));
    free(local);
    goc_future_release(f);
}

/* ---- singleflight: who got the outcome -------------------------------- */

static void close_gate_later(void *arg)
{
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* after the joiner joined */
    goc_chan_close(arg);
}

struct sf_leader {
    goc_sf *g;
    goc_future *f;
    bool shared;
    goc_wg wg;
};

static void sf_lead(void *arg)
{
    struct sf_leader *l = arg;
    ASSERT_OK(
        goc_sf_do(l->g, "k", sf_fetch, NULL, free, &l->f, &l->shared, NULL));
    goc_wg_done(&l->wg);
}

/* A joiner that gave up waiting was counted as sharing the outcome: the
 * leader was told its value had gone to another caller when none had. */
TEST_G(future, singleflight_shared_counts_only_callers_that_got_it)
{
    goc_sf *g;
    ASSERT_OK(goc_sf_new(&g));
    for (int stay = 0; stay < 2; stay++) {
        ASSERT_OK(goc_chan_new(0, 0, &sf_gate));
        atomic_store(&sf_runs, 0);
        static struct sf_leader l;
        l = (struct sf_leader){ .g = g, .wg = GOC_WG_INIT };
        goc_wg_add(&l.wg, 1);
        ASSERT_OK(goc_go(sf_lead, &l));
        while (atomic_load(&sf_runs) == 0)
            goc_sleep(100 * GOC_MICROSECOND, NULL);
        /* A joiner: gives up after 5 ms, or waits for the outcome. */
        goc_ctx_local lc;
        goc_ctx *t = goc_ctx_init_timeout(&lc, NULL, 5 * GOC_MILLISECOND);
        goc_future *mine = NULL;
        if (stay) {
            ASSERT_OK(goc_go(close_gate_later, sf_gate));
            ASSERT_OK(
                goc_sf_do(g, "k", sf_fetch, NULL, free, &mine, NULL, NULL));
        } else {
            ASSERT_EQ(goc_sf_do(g, "k", sf_fetch, NULL, free, &mine, NULL, t),
                      -ETIMEDOUT);
            goc_chan_close(sf_gate);
        }
        goc_ctx_destroy(t);
        goc_wg_wait(&l.wg, NULL);
        ASSERT_EQ(l.shared, (bool)stay);
        goc_future_release(mine);
        goc_future_release(l.f);
        goc_chan_release(sf_gate);
    }
    goc_sf_free(g);
}

/* ---- combinators let go of their losers ------------------------------- */

static void value_free(void *v)
{
    goc__free(v);
}

/* A settled input whose value goc's heap counts hold. */
static goc_future *settled_with_value(int status)
{
    goc_future *f;
    ASSERT_OK(goc_future_new(value_free, &f));
    ASSERT_EQ(goc_future_complete(f, status, status ? NULL : goc__malloc(64)),
              1);
    return f;
}

/*
 * Once a race is won, an any fulfilled or an all failed, the result lets
 * go of the inputs still pending: a loser that never settles (a shutdown
 * future raced against each piece of work) kept every call's state, its
 * result and the winner's value alive (seed D-086: the losers' waiters
 * were never removed).
 */
TEST_G(future, decided_combinators_let_go_of_pending_losers_d086)
{
    goc_future *never;
    ASSERT_OK(goc_future_new(NULL, &never));
    int64_t before = test_lib_objects();
    for (int i = 0; i < 300; i++) {
        goc_future *ok = settled_with_value(0), *bad = settled_with_value(-EIO);
        goc_future *r, *ins[2] = { never, ok };
        ASSERT_OK(goc_future_race(ins, 2, 0, &r));
        ASSERT(goc_future_is_done(r));
        goc_future_release(r);
        ASSERT_OK(goc_future_any(ins, 2, 0, &r));
        goc_future_release(r);
        goc_future *fail[2] = { never, bad };
        ASSERT_OK(goc_future_all(fail, 2, 0, &r));
        ASSERT_EQ(goc_future_state(r), GOC_FUTURE_REJECTED);
        goc_future_release(r);
        goc_future_release(ok);
        goc_future_release(bad);
    }
    ASSERT(test_lib_objects() - before < 30);
    /* The loser still settles later without harm, and nothing is left. */
    goc_future *r, *ok = settled_with_value(0), *ins[2] = { never, ok };
    ASSERT_OK(goc_future_race(ins, 2, 0, &r));
    ASSERT_EQ(goc_future_complete(never, -ECANCELED, NULL), 1);
    goc_future_release(r);
    goc_future_release(ok);
    goc_future_release(never);
    ASSERT(test_lib_objects() - before < 30);
}

/* A race whose result its owner cancels lets go of the pending inputs
 * too: it kept its state, result and callbacks on them until they
 * settled. */
TEST_G(future, cancelled_combinator_result_lets_go_of_pending_inputs)
{
    goc_future *never;
    ASSERT_OK(goc_future_new(NULL, &never));
    int64_t before = test_lib_objects();
    for (int i = 0; i < 300; i++) {
        goc_future *r, *other, *ins[2];
        ASSERT_OK(goc_future_new(NULL, &other));
        ins[0] = never;
        ins[1] = other;
        ASSERT_OK(goc_future_race(ins, 2, 0, &r));
        ASSERT_EQ(goc_future_cancel(r), 1);
        goc_future_release(r);
        goc_future_release(other); /* settled as cancelled: abandoned */
    }
    ASSERT(test_lib_objects() - before < 30);
    goc_future_release(never);
}

struct detach_race {
    goc_future *winner, *loser;
    _Atomic int round, done;
    int rounds;
};

static void *settle_winner(void *arg)
{
    struct detach_race *d = arg;
    for (int i = 1; i <= d->rounds; i++) {
        while (atomic_load(&d->round) != i)
            sched_yield();
        goc_future_complete(d->winner, 0, NULL);
        atomic_fetch_add(&d->done, 1);
    }
    return NULL;
}

static void *drop_loser(void *arg)
{
    struct detach_race *d = arg;
    for (int i = 1; i <= d->rounds; i++) {
        while (atomic_load(&d->round) != i)
            sched_yield();
        goc_future_release(d->loser); /* its last reference */
        atomic_fetch_add(&d->done, 1);
    }
    return NULL;
}

/*
 * A decided race takes its callback back from a pending loser while the
 * loser's last owner drops it on another thread: the drop waited for
 * nothing and could free the loser under the taking back (seen under
 * ASan, with a debugger holding the taker at the right line).
 */
TEST(future, taking_callbacks_back_races_the_losers_last_release)
{
    static struct detach_race d;
    d.rounds = test_scale(5000);
    pthread_t a, b;
    ASSERT_OK(pthread_create(&a, NULL, settle_winner, &d));
    ASSERT_OK(pthread_create(&b, NULL, drop_loser, &d));
    for (int i = 1; i <= d.rounds; i++) {
        goc_future *r;
        ASSERT_OK(goc_future_new(NULL, &d.winner));
        ASSERT_OK(goc_future_new(NULL, &d.loser));
        goc_future *ins[2] = { d.winner, d.loser };
        ASSERT_OK(goc_future_race(ins, 2, 0, &r));
        atomic_store(&d.done, 0);
        atomic_store(&d.round, i);
        while (atomic_load(&d.done) != 2)
            sched_yield();
        ASSERT(goc_future_is_done(r)); /* by either of them */
        goc_future_release(r);
        goc_future_release(d.winner);
    }
    ASSERT_OK(pthread_join(a, NULL));
    ASSERT_OK(pthread_join(b, NULL));
}

struct sf_freeing {
    goc_sf *g;
    _Atomic bool done;
};

static void sf_frees(void *arg)
{
    struct sf_freeing *fr = arg;
    goc_sf_free(fr->g);
    atomic_store(&fr->done, true);
}

/* Free closes the group and waits for the calls in flight: the leader
 * running, callers joined, a flight goroutine of an async call. */
TEST_G(future, singleflight_free_waits_for_calls_in_flight)
{
    goc_sf *g;
    ASSERT_OK(goc_sf_new(&g));
    goc_wg wg = GOC_WG_INIT;
    ASSERT_OK(goc_chan_new(0, 0, &sf_gate));
    atomic_store(&sf_runs, 0);
    static struct sf_call c[4];
    goc_wg_add(&wg, 4);
    for (int i = 0; i < 4; i++) {
        c[i] = (struct sf_call){ g, 0, 1, false, &wg };
        ASSERT_OK(goc_go(sf_caller, &c[i]));
    }
    goc_future *a;
    ASSERT_OK(goc_sf_do_async(g, "other", sf_fetch, NULL, free, &a, NULL));
    while (goc_sf_joined(g, "k") < 3 || atomic_load(&sf_runs) < 2)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    static struct sf_freeing fr;
    fr = (struct sf_freeing){ g, false };
    ASSERT_OK(goc_go(sf_frees, &fr));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT(!atomic_load(&fr.done)); /* the calls are still in flight */
    goc_future *f = NULL;
    ASSERT_EQ(goc_sf_do(g, "k", sf_fetch, NULL, free, &f, NULL, NULL),
              GOC_ECLOSED); /* closed: no new call joins or starts */
    ASSERT_EQ(goc_sf_do_async(g, "new", sf_fetch, NULL, free, &f, NULL),
              GOC_ECLOSED);
    ASSERT(f == NULL);
    goc_chan_close(sf_gate);
    goc_wg_wait(&wg, NULL);
    while (!atomic_load(&fr.done))
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(c[i].st, 0); /* every caller had its outcome */
    void *v;
    int st;
    ASSERT_OK(goc_future_get(a, &st, &v, NULL)); /* valid after the free */
    ASSERT_EQ(st, 0);
    ASSERT_EQ(*(int *)v, 42);
    goc_future_release(a);
    goc_chan_release(sf_gate);

    ASSERT_OK(goc_sf_new(&g));
    ASSERT_OK(goc_sf_close(g));
    ASSERT_EQ(goc_sf_close(g), GOC_ECLOSED);
    ASSERT_EQ(goc_sf_do(g, "k", sf_fetch, NULL, free, &f, NULL, NULL),
              GOC_ECLOSED);
    ASSERT_EQ(goc_sf_close(NULL), -EINVAL);
    goc_sf_free(g);
}
