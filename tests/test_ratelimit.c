/* SPDX-License-Identifier: MIT */
/*
 * Tests of the token-bucket limiter: x/time/rate's own test vectors
 * (rate_test.go), run on explicit times, plus waits, concurrency and the
 * keyed limiter.
 */
#include "test.h"

#include <math.h>
#include <pthread.h>
#include <unistd.h>
#include <stdatomic.h>

#define D    (100 * GOC_MILLISECOND)
#define T0   ((int64_t)1000 * GOC_SECOND)
#define T(k) (T0 + (k)*D)

static _Atomic int64_t fake_now = T0;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return atomic_load(&fake_now);
}

static const goc_clock FAKE = { fake_clock, NULL };

static goc_limiter *mk(double limit, int64_t burst)
{
    goc_limiter *l;
    atomic_store(&fake_now, T0);
    ASSERT_OK(goc_limiter_new(limit, burst, &FAKE, &l));
    return l;
}

struct allow_step {
    int k;       /* time t_k */
    double toks; /* tokens expected before the call */
    int64_t n;
    bool ok;
};

static void run_allow(goc_limiter *l, const struct allow_step *s, int count)
{
    for (int i = 0; i < count; i++) {
        double toks = goc_limiter_tokens_at(l, T(s[i].k));
        if (toks != s[i].toks)
            ASSERT_FAIL("step %d: tokens %g want %g", i, toks, s[i].toks);
        if (goc_limiter_allow_n_at(l, T(s[i].k), s[i].n) != s[i].ok)
            ASSERT_FAIL("step %d: allow_n(t%d, %" PRId64 ") != %d", i, s[i].k,
                        s[i].n, s[i].ok);
    }
}

TEST(rate, allow_vectors_burst1_burst3_jump_back)
{
    static const struct allow_step b1[] = {
        { 0, 1, 1, true },  { 0, 0, 1, false }, { 0, 0, 1, false },
        { 1, 1, 1, true },  { 1, 0, 1, false }, { 1, 0, 1, false },
        { 2, 1, 2, false }, /* n > burst always fails */
        { 2, 1, 1, true },  { 2, 0, 1, false },
    };
    static const struct allow_step b3[] = {
        { 0, 3, 2, true },  { 0, 1, 2, false }, { 0, 1, 1, true },
        { 0, 0, 1, false }, { 1, 1, 4, false }, { 2, 2, 1, true },
        { 3, 2, 1, true },  { 4, 2, 1, true },  { 4, 1, 1, true },
        { 4, 0, 1, false }, { 4, 0, 1, false }, { 9, 3, 3, true },
        { 9, 0, 0, true },
    };
    static const struct allow_step jb[] = {
        { 1, 3, 1, true }, /* start at t1 */
        { 0, 2, 1, true }, /* back to t0: no refill, two left */
        { 0, 1, 1, true }, { 0, 0, 1, false }, { 0, 0, 1, false },
        { 1, 1, 1, true }, { 1, 0, 1, false }, { 1, 0, 1, false },
        { 2, 1, 1, true }, { 2, 0, 1, false }, { 2, 0, 1, false },
    };
    goc_limiter *l = mk(10, 1);
    run_allow(l, b1, sizeof b1 / sizeof b1[0]);
    goc_limiter_free(l);
    l = mk(10, 3);
    run_allow(l, b3, sizeof b3 / sizeof b3[0]);
    goc_limiter_free(l);
    l = mk(10, 3);
    run_allow(l, jb, sizeof jb / sizeof jb[0]);
    goc_limiter_free(l);
}

/* Reserve at t_k for n; want OK and time to act t_want (-1: not OK). */
static goc_reservation rsv_max(
    goc_limiter *l, int k, int64_t n, int want, int64_t max_wait)
{
    goc_reservation r;
    ASSERT_OK(goc_limiter_reserve_max_at(l, T(k), n, max_wait, &r));
    if (want < 0) {
        ASSERT(!goc_reservation_ok(&r));
        ASSERT_EQ(goc_reservation_delay_from(&r, T(k)), GOC_INF_DURATION);
    } else {
        ASSERT(goc_reservation_ok(&r));
        ASSERT_EQ(goc_reservation_delay_from(&r, T(k)), T(want) - T(k));
    }
    return r;
}

static goc_reservation rsv(goc_limiter *l, int k, int64_t n, int want)
{
    return rsv_max(l, k, n, want, GOC_INF_DURATION);
}

TEST(rate, reserve_and_cancel_vectors)
{
    goc_limiter *l = mk(10, 2); /* SimpleReserve */
    rsv(l, 0, 2, 0);
    rsv(l, 0, 2, 2);
    rsv(l, 3, 2, 4);
    goc_limiter_free(l);

    l = mk(10, 2); /* Mix */
    rsv(l, 0, 3, -1);
    rsv(l, 0, 2, 0);
    ASSERT_EQ(goc_limiter_tokens_at(l, T(1)), 1);
    ASSERT(!goc_limiter_allow_n_at(l, T(1), 2));
    rsv(l, 1, 2, 2);
    ASSERT_EQ(goc_limiter_tokens_at(l, T(1)), -1);
    ASSERT(!goc_limiter_allow_n_at(l, T(1), 1));
    ASSERT_EQ(goc_limiter_tokens_at(l, T(3)), 1);
    ASSERT(goc_limiter_allow_n_at(l, T(3), 1));
    goc_limiter_free(l);

    l = mk(10, 2); /* CancelInvalid */
    rsv(l, 0, 2, 0);
    goc_reservation r = rsv(l, 0, 3, -1);
    goc_reservation_cancel_at(&r, T(0));
    rsv(l, 0, 2, 2);
    goc_limiter_free(l);

    l = mk(10, 2); /* CancelLast */
    rsv(l, 0, 2, 0);
    r = rsv(l, 0, 2, 2);
    goc_reservation_cancel_at(&r, T(1));
    rsv(l, 1, 2, 2);
    goc_limiter_free(l);

    l = mk(10, 2); /* CancelTooLate */
    rsv(l, 0, 2, 0);
    r = rsv(l, 0, 2, 2);
    goc_reservation_cancel_at(&r, T(3));
    rsv(l, 3, 2, 4);
    goc_limiter_free(l);

    l = mk(10, 2); /* Cancel0Tokens */
    rsv(l, 0, 2, 0);
    r = rsv(l, 0, 1, 1);
    rsv(l, 0, 1, 2);
    goc_reservation_cancel_at(&r, T(0));
    rsv(l, 0, 1, 3);
    goc_limiter_free(l);

    l = mk(10, 2); /* Cancel1Token */
    rsv(l, 0, 2, 0);
    r = rsv(l, 0, 2, 2);
    rsv(l, 0, 1, 3);
    goc_reservation_cancel_at(&r, T(2));
    rsv(l, 2, 2, 4);
    goc_limiter_free(l);

    l = mk(10, 4); /* CancelMulti */
    rsv(l, 0, 4, 0);
    goc_reservation ra = rsv(l, 0, 3, 3);
    rsv(l, 0, 1, 4);
    goc_reservation rc = rsv(l, 0, 1, 5);
    goc_reservation_cancel_at(&rc, T(1));
    goc_reservation_cancel_at(&ra, T(1));
    rsv(l, 1, 3, 5);
    goc_limiter_free(l);
}

TEST(rate, reserve_jump_back_set_limit_burst_and_max)
{
    goc_limiter *l = mk(10, 2); /* ReserveJumpBack */
    rsv(l, 1, 2, 1);
    rsv(l, 0, 1, 1);
    rsv(l, 2, 2, 3);
    rsv(l, 0, 3, -1); /* n > burst: state unchanged */
    rsv(l, 2, 1, 4);
    rsv_max(l, 0, 2, -1, D); /* wait too long: state unchanged */
    rsv(l, 2, 1, 5);
    goc_limiter_free(l);

    l = mk(10, 2); /* ReserveJumpBackCancel */
    rsv(l, 1, 2, 1);
    goc_reservation r = rsv(l, 1, 2, 3);
    rsv(l, 1, 1, 4);
    goc_reservation_cancel_at(&r, T(0));
    rsv(l, 1, 2, 4);
    goc_limiter_free(l);

    l = mk(5, 2); /* ReserveSetLimit */
    rsv(l, 0, 2, 0);
    rsv(l, 0, 2, 4);
    ASSERT_OK(goc_limiter_set_limit_at(l, T(2), 10));
    rsv(l, 2, 1, 4);
    goc_limiter_free(l);

    l = mk(5, 2); /* ReserveSetBurst */
    rsv(l, 0, 2, 0);
    rsv(l, 0, 2, 4);
    ASSERT_OK(goc_limiter_set_burst_at(l, T(3), 4));
    rsv(l, 0, 4, 9);
    goc_limiter_free(l);

    l = mk(5, 2); /* ReserveSetLimitCancel */
    rsv(l, 0, 2, 0);
    r = rsv(l, 0, 2, 4);
    ASSERT_OK(goc_limiter_set_limit_at(l, T(2), 10));
    goc_reservation_cancel_at(&r, T(2));
    rsv(l, 2, 2, 3);
    goc_limiter_free(l);

    l = mk(10, 2); /* ReserveMax */
    rsv_max(l, 0, 2, 0, D);
    rsv_max(l, 0, 1, 1, D);
    rsv_max(l, 0, 1, -1, D);
    ASSERT_EQ(goc_limiter_tokens_at(l, T(0)), -1); /* only the OK ones */
    goc_limiter_free(l);
}

TEST(rate, infinite_zero_and_tiny_limits)
{
    goc_limiter *l = mk(GOC_RATE_INF, 0);
    ASSERT_OK(goc_limiter_wait_n(l, 3, NULL)); /* burst ignored */
    for (int i = 0; i < 1000; i++)
        ASSERT(goc_limiter_allow_n_at(l, T(0), 1000));
    goc_limiter_free(l);

    l = mk(0, 0); /* zero value: rejects everything */
    ASSERT(!goc_limiter_allow_n_at(l, T(0), 1));
    ASSERT(!goc_limiter_allow_n_at(l, T(100), 1));
    goc_limiter_free(l);

    l = mk(0, 3); /* exactly burst events, then none */
    for (int i = 0; i < 3; i++)
        ASSERT(goc_limiter_allow_n_at(l, T(i), 1));
    ASSERT(!goc_limiter_allow_n_at(l, T(1000), 1));
    goc_limiter_free(l);

    ASSERT_OK(goc_limiter_new(0, 1, NULL, &l)); /* real clock */
    ASSERT(goc_limiter_allow(l));
    ASSERT(!goc_limiter_allow(l));
    ASSERT_OK(goc_limiter_set_limit(l, 10));
    int64_t t = goc_now();
    ASSERT_OK(goc_limiter_wait(l, NULL));
    ASSERT_GE(goc_now() - t, 90 * GOC_MILLISECOND);
    goc_limiter_free(l);

    l = mk(1e-10, 1); /* no overflow of 1e10 s */
    ASSERT(goc_limiter_allow_n_at(l, T(0), 1));
    ASSERT(!goc_limiter_allow_n_at(l, T(0), 1));
    goc_reservation r;
    ASSERT_OK(goc_limiter_reserve_n_at(l, T(0), 1, &r));
    /* A wait past what a duration holds is "never": not OK, nothing
     * taken, rather than a debt due in 292 years. */
    ASSERT(!goc_reservation_ok(&r));
    ASSERT_EQ(goc_reservation_delay_from(&r, T(0)), GOC_INF_DURATION);
    ASSERT(goc_limiter_tokens_at(l, T(0)) == 0);
    goc_limiter_free(l);

    l = mk(0.7692307692307693, 1); /* no truncation error (go#34861) */
    ASSERT(goc_limiter_allow(l));
    goc_limiter_free(l);
}

TEST(rate, every_and_bad_input)
{
    ASSERT(goc_rate_every(0) == GOC_RATE_INF);
    ASSERT(goc_rate_every(-5) == GOC_RATE_INF);
    ASSERT(goc_rate_every(100 * GOC_MILLISECOND) == 10.0);
    ASSERT(fabs(goc_rate_every(3 * GOC_SECOND) - 1.0 / 3) < 1e-15);
    goc_limiter *l = NULL;
    ASSERT_EQ(goc_limiter_new(-1, 1, NULL, &l), -EINVAL);
    ASSERT_EQ(goc_limiter_new(NAN, 1, NULL, &l), -EINVAL);
    ASSERT_EQ(goc_limiter_new(1, -1, NULL, &l), -EINVAL);
    ASSERT_EQ(goc_limiter_new(1, 1, NULL, NULL), -EINVAL);
    ASSERT(l == NULL);
    l = mk(10, 2);
    goc_reservation r;
    ASSERT_EQ(goc_limiter_reserve_n_at(l, T(0), -1, &r), -EINVAL);
    ASSERT(!goc_limiter_allow_n_at(l, T(0), -1));
    ASSERT_EQ(goc_limiter_set_limit_at(l, T(0), -1), -EINVAL);
    ASSERT_EQ(goc_limiter_set_burst_at(l, T(0), -1), -EINVAL);
    ASSERT_EQ(goc_limiter_wait_n(l, -1, NULL), -EINVAL);
    ASSERT_EQ(goc_limiter_wait_n(l, 3, NULL), GOC_EBURST);
    ASSERT(goc_limiter_limit(l) == 10);
    ASSERT_EQ(goc_limiter_burst(l), 2);
    ASSERT_EQ(goc_limiter_tokens_at(l, T(0)), 2); /* nothing changed */
    goc_limiter_free(l);
    goc_limiter_free(NULL);
}

/* INFINITY is not GOC_RATE_INF: taken as a limit it turned the tokens
 * into NaN, and every allow() passed for ever after. */
TEST(rate, an_infinite_limit_is_refused_and_changes_nothing)
{
    goc_limiter *l = NULL;
    ASSERT_EQ(goc_limiter_new(INFINITY, 1, &FAKE, &l), -EINVAL);
    ASSERT_EQ(goc_limiter_new(-INFINITY, 1, &FAKE, &l), -EINVAL);
    ASSERT(l == NULL);
    l = mk(1, 1);
    ASSERT(goc_limiter_allow_n_at(l, T(0), 1));
    ASSERT_EQ(goc_limiter_set_limit_at(l, T(0), INFINITY), -EINVAL);
    ASSERT(goc_limiter_limit(l) == 1);
    ASSERT_EQ(goc_limiter_tokens_at(l, T(0)), 0);
    ASSERT(!goc_limiter_allow_n_at(l, T(0), 1));
    goc_limiter_free(l);

    goc_keyed_limiter *kl = NULL;
    ASSERT_EQ(goc_keyed_limiter_new(INFINITY, 1, 4, 0, &FAKE, &kl), -EINVAL);
    ASSERT(kl == NULL);
}

TEST_G(rate, wait_deadline_cancel_and_entry)
{
    goc_limiter *l;
    ASSERT_OK(goc_limiter_new(1, 1, NULL, &l)); /* real clock, 1/s */
    ASSERT_OK(goc_limiter_wait(l, NULL));       /* the full bucket */

    /* The next token is ~1 s away; a 300 ms deadline fails at once. */
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, 300 * GOC_MILLISECOND);
    int64_t t = goc_now();
    ASSERT_EQ(goc_limiter_wait(l, c), GOC_EWOULDEXCEED);
    ASSERT_LT(goc_now() - t, 200 * GOC_MILLISECOND); /* did not wait */
    goc_ctx_destroy(c);

    /* Cancelled before entry: the ctx error every time, even with a
     * token there, and the token is not taken. */
    goc_limiter *full;
    ASSERT_OK(goc_limiter_new(10, 1, NULL, &full));
    c = goc_ctx_init_cancel(&lc, NULL);
    goc_ctx_cancel(c);
    for (int i = 0; i < 10000; i++)
        ASSERT_EQ(goc_limiter_wait(full, c), -ECANCELED);
    goc_ctx_destroy(c);
    ASSERT(goc_limiter_allow(full));
    goc_limiter_free(full);

    /* Cancelled while waiting: the reservation is given back. */
    c = goc_ctx_init_cancel(&lc, NULL);
    test_cancel_after(c, 20 * GOC_MILLISECOND);
    ASSERT_EQ(goc_limiter_wait(l, c), -ECANCELED);
    test_cancel_after_join();
    goc_ctx_destroy(c);
    ASSERT(goc_limiter_tokens(l) > -0.5); /* the debt of 1 was restored */

    /* A faster limit and a deadline long enough: it waits, then succeeds. */
    ASSERT_OK(goc_limiter_set_limit(l, 20));
    c = goc_ctx_init_timeout(&lc, NULL, 5 * GOC_SECOND);
    ASSERT_OK(goc_limiter_wait(l, c));
    ASSERT_OK(goc_limiter_wait(l, c)); /* ~50 ms later */
    goc_ctx_destroy(c);
    goc_limiter_free(l);
}

static void *plain_wait(void *arg)
{
    goc_limiter *l = arg;
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, 500 * GOC_MILLISECOND);
    intptr_t rc = goc_limiter_wait(l, c); /* 10 s away: would exceed */
    goc_ctx_destroy(c);
    if (rc != GOC_EWOULDEXCEED)
        return (void *)1;
    c = goc_ctx_init_cancel(&lc, NULL);
    test_cancel_after(c, 20 * GOC_MILLISECOND);
    rc = goc_limiter_wait(l, c); /* 10 s away: cancelled first */
    test_cancel_after_join();
    goc_ctx_destroy(c);
    if (rc != -ECANCELED)
        return (void *)2;
    goc_limiter_set_limit(l, 1000);
    return (void *)(intptr_t)goc_limiter_wait(l, NULL);
}

TEST_G(rate, wait_from_plain_thread)
{
    goc_limiter *l;
    ASSERT_OK(goc_limiter_new(0.1, 1, NULL, &l)); /* one per 10 s */
    ASSERT(goc_limiter_allow(l));
    pthread_t th;
    void *res;
    ASSERT_OK(pthread_create(&th, NULL, plain_wait, l));
    ASSERT_OK(test_join(th, &res));
    ASSERT_EQ((intptr_t)res, 0);
    goc_limiter_free(l);
}

/* Waiters of a limiter that gives one token per 100 s: each waits
 * until the limiter closes. */
struct closing {
    goc_limiter *l;
    goc_ctx *ctx; /* never ends; some waiters watch it */
    _Atomic int closed_rc, other_rc;
    goc_wg wg;
};

static void close_waiter(void *arg)
{
    struct closing *c = arg;
    goc_ctx *ctx = goc_id() % 2 ? c->ctx : NULL;
    int rc = goc_limiter_wait(c->l, ctx);
    atomic_fetch_add(rc == GOC_ECLOSED ? &c->closed_rc : &c->other_rc, 1);
    goc_wg_done(&c->wg);
}

static void *close_waiter_thread(void *arg)
{
    close_waiter(arg);
    return NULL;
}

/* Start @n goroutine waiters and one plain thread; return when all
 * have reserved (the bucket's debt says so). */
static void start_close_waiters(struct closing *c, int n, pthread_t *th)
{
    goc_wg_add(&c->wg, n + 1);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(close_waiter, c));
    ASSERT_OK(pthread_create(th, NULL, close_waiter_thread, c));
    int64_t t0 = goc_now();
    while (goc_limiter_tokens(c->l) > -(double)n - 0.5) {
        ASSERT_LT(goc_now() - t0, 30 * GOC_SECOND);
        goc_sleep(GOC_MILLISECOND, NULL);
    }
}

TEST_G(rate, close_wakes_waiters_and_refuses_every_later_event)
{
    struct closing c = { .wg = GOC_WG_INIT };
    goc_ctx_local lc;
    c.ctx = goc_ctx_init_cancel(&lc, NULL);
    ASSERT_OK(goc_limiter_new(0.01, 1, NULL, &c.l));
    ASSERT(goc_limiter_allow(c.l)); /* the bucket's one token */
    pthread_t th;
    start_close_waiters(&c, 8, &th);
    int64_t t0 = goc_now();
    ASSERT_OK(goc_limiter_close(c.l));
    goc_wg_wait(&c.wg, NULL);
    ASSERT_OK(test_join(th, NULL));
    ASSERT_LT(goc_now() - t0, 10 * GOC_SECOND); /* not their 100 s */
    ASSERT_EQ(atomic_load(&c.closed_rc), 9);
    ASSERT_EQ(atomic_load(&c.other_rc), 0);

    /* Every later event is refused, whatever the bucket holds. */
    ASSERT_OK(goc_limiter_set_limit(c.l, GOC_RATE_INF));
    ASSERT(!goc_limiter_allow(c.l));
    ASSERT(!goc_limiter_allow_n(c.l, 0));
    goc_reservation r;
    ASSERT_EQ(goc_limiter_reserve(c.l, &r), GOC_ECLOSED);
    ASSERT(!goc_reservation_ok(&r));
    ASSERT_EQ(goc_reservation_delay(&r), GOC_INF_DURATION);
    goc_reservation_cancel(&r); /* not OK: no effect */
    ASSERT_EQ(goc_limiter_wait(c.l, NULL), GOC_ECLOSED);
    ASSERT_EQ(goc_limiter_wait_n(c.l, 5, c.ctx), GOC_ECLOSED);
    ASSERT_EQ(goc_limiter_wait_n(c.l, -1, NULL), -EINVAL);
    ASSERT_EQ(goc_limiter_close(c.l), GOC_ECLOSED); /* once */
    ASSERT_EQ(goc_limiter_close(NULL), -EINVAL);
    /* Reading and setting still work. */
    ASSERT_OK(goc_limiter_set_burst(c.l, 3));
    ASSERT_EQ(goc_limiter_burst(c.l), 3);
    ASSERT(goc_limiter_limit(c.l) == GOC_RATE_INF);
    goc_limiter_free(c.l);
    goc_ctx_destroy(c.ctx);
}

/* A reservation granted before the close keeps its time to act. */
TEST(rate, close_leaves_granted_reservations_and_cancels_to_them)
{
    goc_limiter *l = mk(10, 2);
    goc_reservation r1, r2;
    ASSERT_OK(goc_limiter_reserve_n_at(l, T(0), 2, &r1));
    ASSERT_OK(goc_limiter_reserve_n_at(l, T(0), 2, &r2)); /* acts at t2 */
    ASSERT_OK(goc_limiter_close(l));
    ASSERT_EQ(goc_reservation_delay_from(&r2, T(1)), D);
    goc_reservation_cancel_at(&r2, T(1)); /* 2 tokens back */
    ASSERT(goc_limiter_tokens_at(l, T(1)) == 1.0);
    ASSERT(!goc_limiter_allow_n_at(l, T(1), 1));
    goc_limiter_free(l);
}

/*
 * goc_limiter_free() closes the limiter and waits for the waiters it
 * woke: each of them still cancels its reservation in it. ASan sees a
 * waiter that touches it after the free.
 */
TEST_G(rate, free_wakes_its_waiters_and_waits_for_them)
{
    int rounds = test_scale(20);
    for (int i = 0; i < rounds; i++) {
        struct closing c = { .wg = GOC_WG_INIT };
        goc_ctx_local lc;
        c.ctx = goc_ctx_init_cancel(&lc, NULL);
        ASSERT_OK(goc_limiter_new(0.01, 1, NULL, &c.l));
        ASSERT(goc_limiter_allow(c.l));
        pthread_t th;
        start_close_waiters(&c, 16, &th);
        goc_limiter_free(c.l);
        goc_wg_wait(&c.wg, NULL);
        ASSERT_OK(test_join(th, NULL));
        ASSERT_EQ(atomic_load(&c.closed_rc), 17);
        ASSERT_EQ(atomic_load(&c.other_rc), 0);
        goc_ctx_destroy(c.ctx);
    }
}

/* Waits starting while the limiter closes: each ends, with a token or
 * GOC_ECLOSED, and none after the close gets a token. */
struct close_race {
    goc_limiter *l;
    _Atomic bool closed;
    _Atomic int late_tokens, bad;
    goc_wg wg;
};

static void close_race_waiter(void *arg)
{
    struct close_race *c = arg;
    for (;;) {
        bool was_closed = atomic_load(&c->closed);
        int rc = goc_limiter_wait(c->l, NULL);
        if (rc == GOC_ECLOSED)
            break;
        if (rc != 0)
            atomic_fetch_add(&c->bad, 1);
        else if (was_closed)
            atomic_fetch_add(&c->late_tokens, 1);
    }
    goc_wg_done(&c->wg);
}

TEST_G(rate, waits_racing_a_close_all_end)
{
    int rounds = test_scale(50);
    for (int i = 0; i < rounds; i++) {
        struct close_race c = { .wg = GOC_WG_INIT };
        ASSERT_OK(goc_limiter_new(20000, 4, NULL, &c.l));
        goc_wg_add(&c.wg, 8);
        for (int k = 0; k < 8; k++)
            ASSERT_OK(goc_go(close_race_waiter, &c));
        goc_sleep(GOC_MILLISECOND, NULL);
        ASSERT_OK(goc_limiter_close(c.l));
        atomic_store(&c.closed, true); /* a wait begun after it: refused */
        goc_wg_wait(&c.wg, NULL);
        ASSERT_EQ(atomic_load(&c.bad), 0);
        ASSERT_EQ(atomic_load(&c.late_tokens), 0);
        goc_limiter_free(c.l);
    }
}

struct hammer {
    goc_limiter *l;
    _Atomic int64_t allowed;
    int64_t per;
    goc_wg wg;
};

static void hammer_allow(void *arg)
{
    struct hammer *h = arg;
    int64_t ok = 0;
    for (int64_t i = 0; i < h->per; i++) {
        ok += goc_limiter_allow(h->l);
        if (i % 64 == 0)
            goc_limiter_set_limit(h->l, 10); /* same value: no change */
        if (i % 97 == 0 && i < h->per / 2) {
            /* A no-wait reservation cancelled at its own time gives back
             * everything; the later allow() calls drain the bucket. */
            goc_reservation r;
            goc_limiter_reserve_max_at(h->l, fake_clock(NULL), 1, 0, &r);
            goc_reservation_cancel(&r);
        }
    }
    atomic_fetch_add(&h->allowed, ok);
    goc_wg_done(&h->wg);
}

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    goc_wg_add(&h->wg, 1);
    hammer_allow(h);
    return NULL;
}

/* Concurrent allow() from every P and a plain thread: the budget holds. */
TEST_G(rate, concurrent_allow_spends_exactly_the_budget)
{
    static struct hammer h;
    h.l = mk(10, 500);
    h.per = test_scale(20000);
    for (int round = 0; round < 2; round++) {
        atomic_store(&h.allowed, 0);
        goc_wg_add(&h.wg, 8);
        for (int i = 0; i < 8; i++)
            ASSERT_OK(goc_go(hammer_allow, &h));
        pthread_t th;
        ASSERT_OK(pthread_create(&th, NULL, hammer_thread, &h));
        ASSERT_OK(test_join(th, NULL));
        goc_wg_wait(&h.wg, NULL);
        /* Frozen clock: exactly the bucket, then exactly the refill. */
        ASSERT_EQ(atomic_load(&h.allowed), round == 0 ? 500 : 10);
        atomic_fetch_add(&fake_now, GOC_SECOND);
    }
    goc_limiter_free(h.l);
}

TEST(rate, keyed_limiter_buckets_lru_and_ttl)
{
    goc_keyed_limiter *kl;
    ASSERT_EQ(goc_keyed_limiter_new(1, 1, 0, 0, &FAKE, &kl), -EINVAL);
    atomic_store(&fake_now, T0);
    ASSERT_OK(goc_keyed_limiter_new(10, 2, 3, 10 * GOC_SECOND, &FAKE, &kl));
    ASSERT(goc_keyed_limiter_allow(kl, "a", 1));
    ASSERT(goc_keyed_limiter_allow(kl, "a", 1));
    ASSERT(!goc_keyed_limiter_allow(kl, "a", 1)); /* a's bucket is empty */
    ASSERT(goc_keyed_limiter_allow(kl, "b", 1));  /* b has its own */
    ASSERT(goc_keyed_limiter_allow(kl, "c", 1));
    struct goc_keyed_limiter_stats st;
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.keys, 3);
    ASSERT_EQ(st.allowed, 4);
    ASSERT_EQ(st.rejected, 1);
    /* A fourth key evicts the least recently used ("a"). */
    ASSERT(goc_keyed_limiter_allow(kl, "d", 1));
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.keys, 3);
    ASSERT_EQ(st.evicted, 1);
    ASSERT(goc_keyed_limiter_allow(kl, "a", 1)); /* forgotten: full again */
    /* Idle buckets expire after the TTL. */
    atomic_fetch_add(&fake_now, 11 * GOC_SECOND);
    ASSERT(goc_keyed_limiter_allow(kl, "e", 1));
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.keys, 1);
    ASSERT_EQ(st.expired, 3);
    /* Memory stays bounded with many keys. */
    for (int i = 0; i < 1000; i++)
        goc_keyed_limiter_allow(kl, &i, sizeof i);
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.keys, 3);
    goc_keyed_limiter_free(kl);
}

/* n > burst can never pass: it once made a bucket for its key, evicting
 * the least recently used one, which came back with a full burst. */
TEST(rate, keyed_n_above_burst_is_refused_without_evicting)
{
    goc_keyed_limiter *kl;
    atomic_store(&fake_now, T0);
    ASSERT_OK(goc_keyed_limiter_new(1, 2, 1, 0, &FAKE, &kl));
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "a", 1, T0, 2)); /* a: empty */
    ASSERT(!goc_keyed_limiter_allow_n_at(kl, "b", 1, T0, 3));
    struct goc_keyed_limiter_stats st;
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.keys, 1);
    ASSERT_EQ(st.evicted, 0);
    ASSERT_EQ(st.rejected, 1);
    ASSERT(!goc_keyed_limiter_allow_n_at(kl, "a", 1, T0, 1)); /* still empty */
    goc_keyed_limiter_free(kl);

    ASSERT_OK(goc_keyed_limiter_new(GOC_RATE_INF, 2, 1, 0, &FAKE, &kl));
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "a", 1, T0, 3)); /* burst ignored */
    goc_keyed_limiter_free(kl);
}

/* The idle time of a bucket is now - last use: with _at times far apart
 * it overflowed, keeping a bucket idle for ages or expiring a fresh one. */
TEST(rate, keyed_idle_time_saturates_at_extreme_times)
{
    goc_keyed_limiter *kl;
    ASSERT_OK(goc_keyed_limiter_new(1, 1, 4, GOC_SECOND, &FAKE, &kl));
    struct goc_keyed_limiter_stats st;
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "a", 1, INT64_MIN, 1));
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "b", 1, INT64_MAX, 1));
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.expired, 1); /* "a", idle for the whole range */
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "c", 1, -2, 1));
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.expired, 1); /* "b" was used later than that */
    ASSERT_EQ(st.keys, 2);
    goc_keyed_limiter_free(kl);
}

/* A call with an older time than the bucket's last use moved its last
 * use back, and put it first in the list with an older time than the
 * buckets behind it: the first bucket was expired although used later,
 * and an idle one in front of the tail outlived idle_ttl. */
TEST(rate, keyed_expiry_follows_last_use_whatever_order_times_come_in)
{
    /* One token a second: at these times (ns) a bucket that let one call
     * through lets no other, and only a new bucket does. */
    goc_keyed_limiter *kl;
    struct goc_keyed_limiter_stats st;
    ASSERT_OK(goc_keyed_limiter_new(1, 1, 8, 100, &FAKE, &kl));
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "a", 1, 1000, 1));
    ASSERT(!goc_keyed_limiter_allow_n_at(kl, "a", 1, 500, 1)); /* older */
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "b", 1, 970, 1));
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "c", 1, 1060, 1));
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.expired, 0); /* "a" was used at 1000 */
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "d", 1, 900, 1)); /* older */
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "e", 1, 1055, 1));
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.expired, 1); /* "d", idle for 155 */
    ASSERT_EQ(st.keys, 4);
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "d", 1, 1056, 1));  /* anew */
    ASSERT(!goc_keyed_limiter_allow_n_at(kl, "a", 1, 1057, 1)); /* kept */
    goc_keyed_limiter_free(kl);
}

static goc_keyed_limiter *watched;

/* A clock that looks at the limiter it serves, as one that logs load
 * might: under the limiter's lock it would wait for that lock. */
static int64_t watching_clock(void *arg)
{
    (void)arg;
    struct goc_keyed_limiter_stats st;
    goc_keyed_limiter_stats(watched, &st);
    return GOC_SECOND;
}

static void *allow_new_key(void *arg)
{
    atomic_store((_Atomic bool *)arg, goc_keyed_limiter_allow(watched, "k", 1));
    return NULL;
}

/* A new key's bucket read the user's clock under the table lock: a clock
 * that called the limiter deadlocked on the first new key. */
TEST(rate, keyed_limiter_never_runs_the_clock_under_its_lock)
{
    goc_clock ck = { watching_clock, NULL };
    ASSERT_OK(goc_keyed_limiter_new(10, 5, 100, 0, &ck, &watched));
    static _Atomic bool allowed;
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, allow_new_key, (void *)&allowed));
    for (int i = 0; i < 5000 && !atomic_load(&allowed); i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT(atomic_load(&allowed)); /* else it hangs: the thread is stuck */
    ASSERT_OK(pthread_join(t, NULL));
    goc_keyed_limiter_free(watched);
}

/* With limit 0 and the burst spent, a reservation can never act: it was
 * "OK" with an infinite delay and left a debt that delayed the events
 * after the limit was raised (x/time/rate 772484e refuses it too). */
TEST(rate, zero_limit_with_burst_spent_reserves_nothing)
{
    goc_limiter *l = mk(0, 1);
    ASSERT(goc_limiter_allow_n_at(l, T(0), 1));
    goc_reservation r;
    ASSERT_OK(goc_limiter_reserve_n_at(l, T(0), 1, &r));
    ASSERT(!goc_reservation_ok(&r));
    ASSERT_EQ(goc_reservation_delay_from(&r, T(0)), GOC_INF_DURATION);
    ASSERT(goc_limiter_tokens_at(l, T(0)) == 0);            /* nothing taken */
    ASSERT_EQ(goc_limiter_wait(l, NULL), GOC_EWOULDEXCEED); /* no hang */
    ASSERT_OK(goc_limiter_set_limit_at(l, T(0), 10));
    goc_reservation r2;
    ASSERT_OK(goc_limiter_reserve_n_at(l, T(0), 1, &r2));
    int64_t d2 = goc_reservation_delay_from(&r2, T(0));
    ASSERT_EQ(d2, D);
    goc_limiter_free(l);
}

/* A clock whose second reading (wait_n's, after it found the limiter
 * open) starts a free on another thread and gives it time to finish. */
struct free_in_clock {
    goc_limiter *l;
    _Atomic int calls;
    _Atomic int freed;
    pthread_t th;
};

static void *free_limiter_thread(void *arg)
{
    struct free_in_clock *f = arg;
    goc_limiter_free(f->l);
    atomic_store(&f->freed, 1);
    return NULL;
}

static int64_t clock_that_frees(void *arg)
{
    struct free_in_clock *f = arg;
    if (atomic_fetch_add(&f->calls, 1) == 1) {
        if (pthread_create(&f->th, NULL, free_limiter_thread, f) != 0)
            abort();
        usleep(20000); /* the free would be over by now */
    }
    return goc_now();
}

/*
 * A free while a wait had checked the limiter but not yet gone to sleep:
 * the free found no waiter and freed it under the wait (ASan). The wait
 * now counts from its check, and gets GOC_ECLOSED.
 */
TEST_G(rate, free_waits_for_a_wait_that_has_not_slept_yet)
{
    struct free_in_clock f = { 0 };
    goc_clock c = { clock_that_frees, &f };
    ASSERT_OK(goc_limiter_new(1, 1, &c, &f.l));
    ASSERT_EQ(atomic_load(&f.calls), 1); /* new read it once */
    ASSERT_EQ(goc_limiter_wait(f.l, NULL), GOC_ECLOSED);
    ASSERT_OK(test_join(f.th, NULL));
    ASSERT_EQ(atomic_load(&f.freed), 1);
}

/*
 * The empty key may be given as NULL (its length is 0): looking it up
 * again compared it with memcmp(key, NULL, 0), undefined behaviour that
 * UBSan reports (memcmp's arguments are declared non-null).
 */
TEST(rate, keyed_empty_key_may_be_null)
{
    goc_keyed_limiter *kl;
    ASSERT_OK(goc_keyed_limiter_new(0, 2, 4, 0, NULL, &kl));
    ASSERT(goc_keyed_limiter_allow_n_at(kl, NULL, 0, 0, 1));
    ASSERT(goc_keyed_limiter_allow_n_at(kl, NULL, 0, 0, 1));  /* found */
    ASSERT(!goc_keyed_limiter_allow_n_at(kl, "", 0, 0, 1));   /* same key */
    ASSERT(goc_keyed_limiter_allow_n_at(kl, "a", 1, 0, 1));   /* another */
    ASSERT(!goc_keyed_limiter_allow_n_at(kl, NULL, 1, 0, 1)); /* bad */
    struct goc_keyed_limiter_stats st;
    goc_keyed_limiter_stats(kl, &st);
    ASSERT_EQ(st.keys, 2);
    ASSERT_EQ(st.allowed, 3);
    goc_keyed_limiter_free(kl);
}
