/* SPDX-License-Identifier: MIT */
/*
 * Tests of the circuit breaker: gobreaker's transition table on a fake
 * clock, generations, windows, resilience4j rates, manual states, and the
 * concurrency guarantees (calls overlap, exact half-open probe budget,
 * callbacks outside the lock and in order).
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

static _Atomic int64_t bnow = GOC_SECOND;

static int64_t bclock(void *arg)
{
    (void)arg;
    return atomic_load(&bnow);
}

static const goc_clock BFAKE = { bclock, NULL };

static void tick(int64_t ns)
{
    atomic_fetch_add(&bnow, ns);
}

static _Atomic int ran;

static int ok_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return 0;
}

static int fail_fn(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
    return -EIO;
}

#define MAXLOG 64
struct log {
    _Atomic int n;
    goc_breaker_state from[MAXLOG], to[MAXLOG];
    goc_breaker *b;
    _Atomic int inside, overlap;
};

static void log_change(const char *name,
                       goc_breaker_state from,
                       goc_breaker_state to,
                       void *arg)
{
    struct log *lg = arg;
    (void)name;
    if (atomic_fetch_add(&lg->inside, 1) != 0)
        atomic_store(&lg->overlap, 1);
    /* Calling back into the breaker must not deadlock. */
    if (lg->b) {
        struct goc_breaker_counts c;
        goc_breaker_state_now(lg->b);
        goc_breaker_counts(lg->b, &c);
    }
    int i = atomic_fetch_add(&lg->n, 1);
    if (i < MAXLOG) {
        lg->from[i] = from;
        lg->to[i] = to;
    }
    atomic_fetch_sub(&lg->inside, 1);
}

static goc_breaker *mkb(struct goc_breaker_settings *s)
{
    goc_breaker *b;
    atomic_store(&bnow, GOC_SECOND);
    s->clock = &BFAKE;
    ASSERT_OK(goc_breaker_new(s, &b));
    return b;
}

TEST(breaker, defaults_and_bad_settings)
{
    goc_breaker *b;
    struct goc_breaker_settings s = { 0 };
    s.half_open_successes = 2; /* more than max_requests (1) */
    ASSERT_EQ(goc_breaker_new(&s, &b), -EINVAL);
    s = (struct goc_breaker_settings){ .bucket_period = GOC_SECOND };
    ASSERT_EQ(goc_breaker_new(&s, &b), -EINVAL); /* needs an interval */
    s = (struct goc_breaker_settings){ .window = GOC_BREAKER_WINDOW_COUNT,
                                       .failure_rate_threshold = 101 };
    ASSERT_EQ(goc_breaker_new(&s, &b), -EINVAL);
    s = (struct goc_breaker_settings){ .window = 7 };
    ASSERT_EQ(goc_breaker_new(&s, &b), -EINVAL);
    ASSERT_EQ(goc_breaker_new(NULL, NULL), -EINVAL);
    /* The window's settings are judged without a window too (they were
     * taken as they came), and over 2^24 calls of window is refused. */
    struct goc_breaker_settings bad[] = {
        { .minimum_calls = -1 },
        { .failure_rate_threshold = 101 },
        { .failure_rate_threshold = -5 },
        { .slow_call_rate_threshold = 500 },
        { .window_size = -1 },
        { .window = GOC_BREAKER_WINDOW_COUNT, .window_size = (1 << 24) + 1 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ASSERT_EQ(goc_breaker_new(&bad[i], &b), -EINVAL);

    /* Zero and negative settings take gobreaker's defaults. */
    s = (struct goc_breaker_settings){ .timeout = -5, .interval = -1 };
    b = mkb(&s);
    ASSERT_STR(goc_breaker_name(b), "");
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(goc_breaker_execute(b, fail_fn, NULL), -EIO);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED); /* 5 is not > 5 */
    ASSERT_EQ(goc_breaker_execute(b, fail_fn, NULL), -EIO);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    tick(60 * GOC_SECOND); /* timeout 60 s: not yet (strictly after) */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    tick(1);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);
    /* max_requests 0 means 1: one probe, one success closes. */
    goc_breaker_token t1, t2;
    ASSERT_OK(goc_breaker_allow(b, &t1));
    ASSERT_EQ(goc_breaker_allow(b, &t2), GOC_ETOOMANY);
    ASSERT_OK(goc_breaker_done(b, &t1, 0));
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    ASSERT_EQ(goc_breaker_execute(b, NULL, NULL), -EINVAL);
    goc_breaker_free(b);
    goc_breaker_free(NULL);
}

static bool trip_at_3(const struct goc_breaker_counts *c, void *arg)
{
    (void)arg;
    return c->consecutive_failures >= 3;
}

TEST(breaker, transition_table_on_fake_clock)
{
    static struct log lg;
    struct goc_breaker_settings s = {
        .name = "db",
        .max_requests = 3,
        .timeout = 10 * GOC_SECOND,
        .ready_to_trip = trip_at_3,
        .on_state_change = log_change,
        .arg = &lg,
    };
    goc_breaker *b = mkb(&s);
    lg.b = b;
    ASSERT_STR(goc_breaker_name(b), "db");
    atomic_store(&ran, 0);
    goc_breaker_execute(b, fail_fn, NULL);
    goc_breaker_execute(b, ok_fn, NULL); /* resets consecutive failures */
    for (int i = 0; i < 3; i++)
        goc_breaker_execute(b, fail_fn, NULL);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    /* Open: rejected without running fn. */
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), GOC_EOPEN);
    ASSERT_EQ(atomic_load(&ran), 5);
    tick(10 * GOC_SECOND + 1);
    /* Half-open: exactly 3 probes; one failure re-opens at once. */
    goc_breaker_token t[4];
    for (int i = 0; i < 3; i++)
        ASSERT_OK(goc_breaker_allow(b, &t[i]));
    ASSERT_EQ(goc_breaker_allow(b, &t[3]), GOC_ETOOMANY);
    ASSERT_OK(goc_breaker_done(b, &t[0], 0));
    ASSERT_OK(goc_breaker_done(b, &t[1], -EIO));
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    ASSERT_OK(goc_breaker_done(b, &t[2], 0)); /* stale: ignored */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    ASSERT_EQ(goc_breaker_done(b, &t[2], 0), GOC_EMISUSE); /* twice */
    /* The open time restarts at the transition (not at call start). */
    tick(10 * GOC_SECOND);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    tick(1);
    /* Closing needs max_requests consecutive successes. */
    for (int i = 0; i < 3; i++)
        ASSERT_OK(goc_breaker_allow(b, &t[i]));
    ASSERT_OK(goc_breaker_done(b, &t[0], 0));
    ASSERT_OK(goc_breaker_done(b, &t[1], 0));
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);
    ASSERT_OK(goc_breaker_done(b, &t[2], 0));
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    static const goc_breaker_state want[][2] = {
        { GOC_BREAKER_CLOSED, GOC_BREAKER_OPEN },
        { GOC_BREAKER_OPEN, GOC_BREAKER_HALF_OPEN },
        { GOC_BREAKER_HALF_OPEN, GOC_BREAKER_OPEN },
        { GOC_BREAKER_OPEN, GOC_BREAKER_HALF_OPEN },
        { GOC_BREAKER_HALF_OPEN, GOC_BREAKER_CLOSED },
    };
    ASSERT_EQ(atomic_load(&lg.n), 5);
    for (int i = 0; i < 5; i++) {
        ASSERT_EQ(lg.from[i], want[i][0]);
        ASSERT_EQ(lg.to[i], want[i][1]);
    }
    struct goc_breaker_counts c;
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.requests, 0); /* cleared at the change */
    ASSERT_EQ(c.in_flight, 0);
    goc_breaker_free(b);
}

TEST(breaker, interval_clears_and_rolling_window_decays)
{
    struct goc_breaker_settings s = { .interval = 10 * GOC_SECOND };
    goc_breaker *b = mkb(&s);
    struct goc_breaker_counts c;
    for (int i = 0; i < 4; i++)
        goc_breaker_execute(b, fail_fn, NULL);
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.total_failures, 4);
    tick(10 * GOC_SECOND + 1); /* the window ends: a new generation */
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.total_failures, 0);
    ASSERT_EQ(c.consecutive_failures, 0);
    goc_breaker_free(b);

    /* Rolling: 10 s in 1 s buckets (interval rounded up to 10 s). */
    s = (struct goc_breaker_settings){ .interval = 9500 * GOC_MILLISECOND,
                                       .bucket_period = GOC_SECOND };
    b = mkb(&s);
    goc_breaker_execute(b, fail_fn, NULL); /* bucket 0 */
    goc_breaker_execute(b, ok_fn, NULL);
    tick(3 * GOC_SECOND);
    goc_breaker_execute(b, fail_fn, NULL); /* bucket 3 */
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.requests, 3);
    ASSERT_EQ(c.total_failures, 2);
    tick(7 * GOC_SECOND); /* bucket 10: bucket 0 leaves */
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.requests, 1);
    ASSERT_EQ(c.total_failures, 1);
    ASSERT_EQ(c.total_successes, 0);
    /* A call admitted in bucket 10 and finished after it aged out only
     * moves the consecutive counts. */
    goc_breaker_token t;
    ASSERT_OK(goc_breaker_allow(b, &t));
    tick(12 * GOC_SECOND);
    ASSERT_OK(goc_breaker_done(b, &t, 0));
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.requests, 0);
    ASSERT_EQ(c.total_successes, 0);
    ASSERT_EQ(c.consecutive_successes, 1);
    goc_breaker_free(b);
}

static bool excl_canceled(int err, void *arg)
{
    (void)arg;
    return err == -ECANCELED;
}

static bool ok_unless_eio(int err, void *arg)
{
    (void)arg;
    return err != -EIO;
}

static int cancel_fn(void *arg)
{
    (void)arg;
    return -ECANCELED;
}

static int not_found_fn(void *arg)
{
    (void)arg;
    return -ENOENT;
}

static int panic_fn(void *arg)
{
    (void)arg;
    return GOC_EPANIC;
}

TEST(breaker, classifiers_exclusions_and_stale_results)
{
    struct goc_breaker_settings s = { .is_excluded = excl_canceled,
                                      .is_successful = ok_unless_eio,
                                      .max_requests = 1 };
    goc_breaker *b = mkb(&s);
    struct goc_breaker_counts c;
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(goc_breaker_execute(b, cancel_fn, NULL), -ECANCELED);
    ASSERT_EQ(goc_breaker_execute(b, not_found_fn, NULL), -ENOENT);
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.total_exclusions, 10);
    ASSERT_EQ(c.total_successes, 1); /* an error counted as success */
    ASSERT_EQ(c.total_failures, 0);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    /* A "panic" result is a failure. */
    for (int i = 0; i < 6; i++)
        goc_breaker_execute(b, panic_fn, NULL);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    /* Half-open: an excluded probe gives its slot back. */
    ASSERT_OK(goc_breaker_transition(b, GOC_BREAKER_HALF_OPEN));
    goc_breaker_token t;
    ASSERT_OK(goc_breaker_allow(b, &t));
    ASSERT_OK(goc_breaker_done(b, &t, -ECANCELED));
    ASSERT_OK(goc_breaker_allow(b, &t));
    /* A late result of an earlier generation is ignored. */
    goc_breaker_reset(b);
    ASSERT_OK(goc_breaker_done(b, &t, -EIO));
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.total_failures, 0);
    ASSERT_EQ(c.in_flight, 0);
    goc_breaker_token never = { 0 };
    ASSERT_EQ(goc_breaker_done(b, &never, 0), GOC_EMISUSE);
    /* A NULL object is bad input, as for every call with a code. */
    ASSERT_EQ(goc_breaker_done(NULL, &never, 0), -EINVAL);
    ASSERT_EQ(goc_breaker_done(b, NULL, 0), -EINVAL);
    ASSERT_EQ(goc_breaker_transition(b, 99), -EINVAL);
    goc_breaker_free(b);
}

static int64_t backoff_fn(int64_t attempt, void *arg)
{
    (void)arg;
    return attempt * GOC_SECOND; /* 1 s, 2 s, 3 s, ... */
}

TEST(breaker, manual_states_and_open_backoff)
{
    static struct log lg;
    struct goc_breaker_settings s = { .open_backoff = backoff_fn,
                                      .on_state_change = log_change,
                                      .arg = &lg };
    goc_breaker *b = mkb(&s);
    ASSERT_OK(goc_breaker_trip(b));
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), GOC_EOPEN);
    tick(GOC_SECOND + 1);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);
    ASSERT_EQ(goc_breaker_execute(b, fail_fn, NULL), -EIO); /* attempt 2 */
    tick(GOC_SECOND + 1);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    tick(GOC_SECOND);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);

    ASSERT_OK(goc_breaker_transition(b, GOC_BREAKER_FORCED_OPEN));
    tick(1000 * GOC_SECOND);
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), GOC_EOPEN);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_FORCED_OPEN);

    ASSERT_OK(goc_breaker_transition(b, GOC_BREAKER_DISABLED));
    for (int i = 0; i < 20; i++)
        ASSERT_EQ(goc_breaker_execute(b, fail_fn, NULL), -EIO);
    struct goc_breaker_counts c;
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.requests, 0); /* nothing counted */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_DISABLED);

    ASSERT_OK(goc_breaker_transition(b, GOC_BREAKER_METRICS_ONLY));
    for (int i = 0; i < 20; i++)
        goc_breaker_execute(b, fail_fn, NULL);
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.total_failures, 20); /* counted, never trips */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_METRICS_ONLY);

    goc_breaker_reset(b);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), 0);
    ASSERT_STR(goc_breaker_state_name(GOC_BREAKER_HALF_OPEN), "half-open");
    ASSERT_EQ(atomic_load(&lg.n), 8);
    goc_breaker_free(b);
}

static int slow_fake_fn(void *arg)
{
    tick(*(int64_t *)arg); /* the call "takes" this long */
    return 0;
}

TEST(breaker, rate_based_count_and_time_windows)
{
    struct goc_breaker_settings s = { .window = GOC_BREAKER_WINDOW_COUNT,
                                      .window_size = 10,
                                      .minimum_calls = 10 };
    goc_breaker *b = mkb(&s);
    for (int i = 0; i < 9; i++) /* 4 failures in 9: under minimum */
        goc_breaker_execute(b, i % 2 ? fail_fn : ok_fn, NULL);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    goc_breaker_execute(b, fail_fn, NULL); /* 5 of 10 = 50 % */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    goc_breaker_reset(b);
    /* The count window slides: old failures fall out. */
    for (int i = 0; i < 4; i++)
        goc_breaker_execute(b, fail_fn, NULL);
    for (int i = 0; i < 20; i++)
        goc_breaker_execute(b, ok_fn, NULL);
    for (int i = 0; i < 4; i++)
        goc_breaker_execute(b, fail_fn, NULL);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED); /* 4 of 10 */
    goc_breaker_free(b);

    /* Time window, 10 s; slow calls (>= 2 s) at 50 % trip it. */
    s = (struct goc_breaker_settings){ .window = GOC_BREAKER_WINDOW_TIME,
                                       .window_size = 10,
                                       .minimum_calls = 4,
                                       .slow_call_rate_threshold = 50,
                                       .slow_call_duration = 2 * GOC_SECOND };
    b = mkb(&s);
    int64_t fast = GOC_MILLISECOND, slow = 3 * GOC_SECOND;
    goc_breaker_execute(b, slow_fake_fn, &slow);
    goc_breaker_execute(b, fail_fn, NULL);
    tick(20 * GOC_SECOND); /* both leave the window */
    goc_breaker_execute(b, slow_fake_fn, &fast);
    goc_breaker_execute(b, slow_fake_fn, &fast);
    goc_breaker_execute(b, slow_fake_fn, &slow);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED); /* 3 calls */
    goc_breaker_execute(b, slow_fake_fn, &slow);             /* 2 of 4 */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    goc_breaker_free(b);
}

struct par {
    goc_breaker *b;
    goc_wg wg;
    _Atomic int admitted, rejected, other;
    goc_breaker_token tok[64];
};

static _Atomic int inside, peak_inside;

/* A 50 ms call that also waits (up to 2 s) until all ten are inside at
 * once: under a breaker lock they could never be. */
static int sleep50(void *arg)
{
    (void)arg;
    int n = atomic_fetch_add(&inside, 1) + 1;
    for (int p = atomic_load(&peak_inside); n > p;)
        atomic_compare_exchange_weak(&peak_inside, &p, n);
    for (int i = 0; i < 2000 && atomic_load(&peak_inside) < 10; i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    int rc = goc_sleep(50 * GOC_MILLISECOND, NULL);
    atomic_fetch_sub(&inside, 1);
    return rc;
}

static void slow_caller(void *arg)
{
    struct par *p = arg;
    ASSERT_OK(goc_breaker_execute(p->b, sleep50, NULL));
    goc_wg_done(&p->wg);
}

/* The seed held the lock around fn: 10 x 50 ms took 500 ms. */
TEST_G(breaker, concurrent_calls_are_not_serialised)
{
    static struct par p;
    ASSERT_OK(goc_breaker_new(NULL, &p.b)); /* real clock */
    int64_t t = goc_now();
    goc_wg_add(&p.wg, 10);
    for (int i = 0; i < 10; i++)
        ASSERT_OK(goc_go(slow_caller, &p));
    struct goc_breaker_counts c;
    for (int i = 0; i < 2000 && atomic_load(&peak_inside) < 10; i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    goc_breaker_counts(p.b, &c);
    if (!test_instrumented())
        ASSERT_EQ(c.in_flight, 10); /* all admitted, none finished */
    goc_wg_wait(&p.wg, NULL);
    ASSERT_EQ(atomic_load(&peak_inside), 10); /* all inside fn at once */
    if (!test_instrumented())
        ASSERT_LT(goc_now() - t, 250 * GOC_MILLISECOND);
    goc_breaker_counts(p.b, &c);
    ASSERT_EQ(c.total_successes, 10);
    ASSERT_EQ(c.in_flight, 0);
    goc_breaker_free(p.b);
}

static void prober(void *arg)
{
    struct par *p = arg;
    goc_breaker_token t;
    int rc = goc_breaker_allow(p->b, &t);
    if (rc == 0) {
        int i = atomic_fetch_add(&p->admitted, 1);
        p->tok[i] = t;
    } else if (rc == GOC_ETOOMANY) {
        atomic_fetch_add(&p->rejected, 1);
    } else {
        atomic_fetch_add(&p->other, 1);
    }
    goc_wg_done(&p->wg);
}

static void *prober_thread(void *arg)
{
    prober(arg);
    return NULL;
}

TEST_G(breaker, half_open_admits_exactly_max_requests)
{
    static struct par p;
    struct goc_breaker_settings s = { .max_requests = 3 };
    for (int round = 0; round < test_scale(50) + 1; round++) {
        p.b = mkb(&s);
        atomic_store(&p.admitted, 0);
        atomic_store(&p.rejected, 0);
        ASSERT_OK(goc_breaker_transition(p.b, GOC_BREAKER_HALF_OPEN));
        goc_wg_add(&p.wg, 33);
        pthread_t th;
        ASSERT_OK(pthread_create(&th, NULL, prober_thread, &p));
        for (int i = 0; i < 32; i++)
            ASSERT_OK(goc_go(prober, &p));
        goc_wg_wait(&p.wg, NULL);
        ASSERT_OK(test_join(th, NULL));
        ASSERT_EQ(atomic_load(&p.admitted), 3);
        ASSERT_EQ(atomic_load(&p.rejected), 30);
        ASSERT_EQ(atomic_load(&p.other), 0);
        for (int i = 0; i < 3; i++)
            ASSERT_OK(goc_breaker_done(p.b, &p.tok[i], 0));
        ASSERT_EQ(goc_breaker_state_now(p.b), GOC_BREAKER_CLOSED);
        goc_breaker_free(p.b);
    }
}

struct storm {
    goc_breaker *b;
    goc_wg wg;
    int64_t iters;
};

static void flipper(void *arg)
{
    struct storm *st = arg;
    for (int64_t i = 0; i < st->iters; i++) {
        if (i % 2)
            goc_breaker_trip(st->b);
        else
            goc_breaker_reset(st->b);
        goc_breaker_execute(st->b, ok_fn, NULL);
    }
    goc_wg_done(&st->wg);
}

/* Callbacks that call back in never deadlock, never overlap, and arrive
 * in transition order (each one starts where the previous one ended). */
TEST_G(breaker, callbacks_in_order_outside_the_lock)
{
    static struct log lg;
    static struct storm st;
    struct goc_breaker_settings s = { .on_state_change = log_change,
                                      .arg = &lg };
    ASSERT_OK(goc_breaker_new(&s, &st.b));
    lg.b = st.b;
    st.iters = 16; /* 8 goroutines x 16 flips: MAXLOG holds the first 64 */
    goc_wg_add(&st.wg, 8);
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_go(flipper, &st));
    goc_wg_wait(&st.wg, NULL);
    goc_breaker_state_now(st.b); /* flush */
    int n = atomic_load(&lg.n);
    ASSERT_GT(n, 1);
    ASSERT_EQ(atomic_load(&lg.overlap), 0);
    ASSERT_EQ(lg.from[0], GOC_BREAKER_CLOSED);
    for (int i = 1; i < n && i < MAXLOG; i++)
        ASSERT_EQ(lg.from[i], lg.to[i - 1]);
    goc_breaker_free(st.b);
}

/* An interval of INT64_MAX ("never clear") must not wrap the expiry
 * negative, which started a new generation on every call and threw
 * every result away as stale. */
TEST_G(breaker, huge_interval_does_not_wrap)
{
    struct goc_breaker_settings s = { .interval = INT64_MAX };
    goc_breaker *b;
    ASSERT_OK(goc_breaker_new(&s, &b));
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(goc_breaker_execute(b, fail_fn, NULL), -EIO);
    struct goc_breaker_counts c;
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.total_failures, 3);
    ASSERT_EQ(c.consecutive_failures, 3);
    goc_breaker_free(b);
    /* Rounded up to whole buckets, it would overflow: refused. */
    s = (struct goc_breaker_settings){ .interval = INT64_MAX,
                                       .bucket_period = 1000 };
    ASSERT_EQ(goc_breaker_new(&s, &b), -EINVAL);
}

static int panics_fn(void *arg)
{
    (void)arg;
    goc_panic(-EIO, "probe blew up");
    return 0;
}

static goc_breaker *panic_b;

static int execute_panicking(void *arg)
{
    (void)arg;
    return goc_breaker_execute(panic_b, panics_fn, NULL);
}

/* A probe that panics is a failure like any other: it is counted (the
 * breaker opens again) and its place is given back, then the panic goes
 * on. It used to keep the only probe's place for good. */
TEST_G(breaker, panic_in_a_probe_is_counted_and_frees_its_place)
{
    struct goc_breaker_settings s = { .max_requests = 1 };
    goc_breaker *b = mkb(&s);
    panic_b = b;
    ASSERT_OK(goc_breaker_transition(b, GOC_BREAKER_HALF_OPEN));
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(execute_panicking, NULL, &p), GOC_EPANIC);
    ASSERT(p != NULL);
    ASSERT_STR(goc_panic_info_message(p), "probe blew up");
    goc_panic_info_free(p);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    ASSERT_OK(goc_breaker_transition(b, GOC_BREAKER_HALF_OPEN));
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), 0);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    goc_breaker_free(b);
}

static _Atomic int backoff_asked;
static goc_breaker *curious_b;

/* An open_backoff that looks at the breaker it serves. */
static int64_t curious_backoff(int64_t attempt, void *arg)
{
    (void)attempt;
    (void)arg;
    if (atomic_fetch_add(&backoff_asked, 1) > 100)
        return GOC_SECOND; /* asked from inside itself: cut it short */
    goc_breaker_state_now(curious_b);
    struct goc_breaker_counts c;
    goc_breaker_counts(curious_b, &c);
    return GOC_SECOND;
}

/* open_backoff may call the breaker back: it is asked once per opening
 * (it used to be asked again from inside itself, without end). */
TEST(breaker, open_backoff_may_call_the_breaker)
{
    struct goc_breaker_settings s = { .open_backoff = curious_backoff };
    goc_breaker *b = mkb(&s);
    curious_b = b;
    atomic_store(&backoff_asked, 0);
    ASSERT_OK(goc_breaker_trip(b));
    goc_breaker_state_now(b);
    int asked = atomic_load(&backoff_asked);
    ASSERT_EQ(asked, 1);
    goc_breaker_free(b);
}

/* The closed state's interval clears gobreaker's counts, not the
 * sliding window: that covers the last window_size calls, however many
 * intervals they span. */
TEST(breaker, interval_keeps_the_sliding_window)
{
    struct goc_breaker_settings s = { .window = GOC_BREAKER_WINDOW_COUNT,
                                      .window_size = 10,
                                      .minimum_calls = 10,
                                      .interval = GOC_SECOND };
    goc_breaker *b = mkb(&s);
    for (int i = 0; i < 6; i++)
        goc_breaker_execute(b, fail_fn, NULL);
    tick(2 * GOC_SECOND); /* a new interval */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    for (int i = 0; i < 4; i++)
        goc_breaker_execute(b, fail_fn, NULL);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN); /* 10 of 10 */
    goc_breaker_free(b);
}

/* A TIME window slides across the closed state's intervals: it counted
 * seconds from the interval's start, so after the first interval every
 * call landed in one second and an old failure never left. */
TEST(breaker, time_window_slides_across_intervals)
{
    struct goc_breaker_settings s = { .window = GOC_BREAKER_WINDOW_TIME,
                                      .window_size = 2, /* seconds */
                                      .minimum_calls = 2,
                                      .failure_rate_threshold = 50,
                                      .interval = 3 * GOC_SECOND };
    goc_breaker *b = mkb(&s);
    tick(2 * GOC_SECOND + GOC_SECOND / 2); /* 2.5 s into the generation */
    goc_breaker_execute(b, fail_fn, NULL); /* 1 call in window: no trip */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    tick(100 * GOC_SECOND); /* the failure is 100 s old: out of a 2 s window */
    goc_breaker_execute(b, ok_fn, NULL);
    /* Only one call (a success) in the last 2 s: below minimum_calls. */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    goc_breaker_free(b);
}

/* A token another breaker admitted was counted here (both at generation
 * 1), and in_flight went negative: it is GOC_EMISUSE, nothing changes. */
TEST(breaker, another_breakers_token_is_misuse)
{
    struct goc_breaker_settings s = { 0 };
    goc_breaker *a = mkb(&s);
    goc_breaker *b = mkb(&s);
    goc_breaker_token tok;
    ASSERT_OK(goc_breaker_allow(a, &tok));
    int rc = goc_breaker_done(b, &tok, -EIO);
    struct goc_breaker_counts c;
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.in_flight, 0);
    ASSERT_EQ(c.total_failures, 0);
    ASSERT_EQ(rc, GOC_EMISUSE);
    ASSERT_OK(goc_breaker_done(a, &tok, 0)); /* still a's to complete */
    ASSERT_EQ(goc_breaker_done(a, &tok, 0), GOC_EMISUSE);
    goc_breaker_counts(a, &c);
    ASSERT_EQ(c.in_flight, 0);
    goc_breaker_free(a);
    goc_breaker_free(b);
}

/* A classifier that panics on a code it did not expect. */
static bool picky_is_successful(int err, void *arg)
{
    (void)arg;
    if (err == -EDOM)
        goc_panic(err, "unexpected code");
    return err == 0;
}

static int edom_fn(void *arg)
{
    (void)arg;
    return -EDOM;
}

static int execute_edom(void *arg)
{
    return goc_breaker_execute(arg, edom_fn, NULL);
}

/*
 * A classifier that panics counts the call as a failure, and the panic
 * goes on once the call is done, as in gobreaker. The call used to stay
 * in flight for good: the only half-open probe's place was lost and the
 * breaker answered GOC_ETOOMANY for ever.
 */
TEST(breaker, panicking_classifier_counts_a_failure_and_frees_the_probe)
{
    struct goc_breaker_settings s = { .max_requests = 1,
                                      .timeout = GOC_SECOND,
                                      .is_successful = picky_is_successful };
    goc_breaker *b = mkb(&s);
    ASSERT_OK(goc_breaker_trip(b));
    tick(2 * GOC_SECOND);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(execute_edom, b, &p), GOC_EPANIC);
    ASSERT_EQ(goc_panic_info_code(p), -EDOM);
    goc_panic_info_free(p);
    struct goc_breaker_counts c;
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.in_flight, 0);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN); /* a failure */
    tick(2 * GOC_SECOND);
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), 0);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    goc_breaker_free(b);
}

static _Atomic int backoff_calls;

/* An open_backoff that panics the first time it is asked. */
static int64_t backoff_panics_once(int64_t attempt, void *arg)
{
    (void)attempt;
    (void)arg;
    if (atomic_fetch_add(&backoff_calls, 1) == 0)
        goc_panic(-EIO, "backoff bug");
    return 5 * GOC_SECOND;
}

static int trip(void *arg)
{
    return goc_breaker_trip(arg);
}

/*
 * An open_backoff that panics gives that opening the plain timeout, and
 * is asked again at the next opening. It used to leave its question
 * asked for good: the breaker never half-opened again, not even after a
 * reset and a new trip.
 */
TEST(breaker, panicking_open_backoff_falls_back_to_the_timeout)
{
    atomic_store(&backoff_calls, 0);
    struct goc_breaker_settings s = { .timeout = GOC_SECOND,
                                      .open_backoff = backoff_panics_once };
    goc_breaker *b = mkb(&s);
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(trip, b, &p), GOC_EPANIC);
    ASSERT_STR(goc_panic_info_message(p), "backoff bug");
    goc_panic_info_free(p);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    tick(GOC_SECOND + 1); /* the open state ends once its time is past */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);
    ASSERT_OK(goc_breaker_trip(b)); /* asked again: 5 s this time */
    tick(4 * GOC_SECOND);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    tick(GOC_SECOND + 1);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);
    int calls = atomic_load(&backoff_calls);
    ASSERT_EQ(calls, 2);
    goc_breaker_free(b);
}

static struct log panicky_log;

/* log_change, but the first notice panics. */
static void log_change_panics_once(const char *name,
                                   goc_breaker_state from,
                                   goc_breaker_state to,
                                   void *arg)
{
    log_change(name, from, to, arg);
    if (atomic_load(&panicky_log.n) == 1)
        goc_panic(-EIO, "notice bug");
}

/*
 * A notice callback that panics loses only its own notice's delivery:
 * later ones are delivered, in order. Delivery used to stop for good,
 * every later notice queued and leaked until the breaker was freed.
 */
TEST(breaker, panicking_notice_callback_does_not_stop_later_notices)
{
    memset(&panicky_log, 0, sizeof(panicky_log));
    struct goc_breaker_settings s = { .timeout = GOC_SECOND,
                                      .on_state_change = log_change_panics_once,
                                      .arg = &panicky_log };
    goc_breaker *b = mkb(&s);
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(trip, b, &p), GOC_EPANIC);
    goc_panic_info_free(p);
    tick(2 * GOC_SECOND);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), 0);
    int n = atomic_load(&panicky_log.n);
    ASSERT_EQ(n, 3);
    ASSERT_EQ(panicky_log.to[0], GOC_BREAKER_OPEN);
    ASSERT_EQ(panicky_log.to[1], GOC_BREAKER_HALF_OPEN);
    ASSERT_EQ(panicky_log.to[2], GOC_BREAKER_CLOSED);
    goc_breaker_free(b);
}

static void notice_panics(const char *name,
                          goc_breaker_state from,
                          goc_breaker_state to,
                          void *arg)
{
    (void)name;
    (void)from;
    (void)to;
    (void)arg;
    goc_panic(-EIO, "notice bug");
}

static int state_now(void *arg)
{
    return (int)goc_breaker_state_now(arg);
}

/* A probe that panics and reopens the breaker, whose notice callback
 * panics too: the probe's panic is the one that goes on, the other is
 * freed, and the breaker is whole. */
TEST(breaker, probe_and_notice_panicking_pass_on_the_probes_panic)
{
    struct goc_breaker_settings s = { .max_requests = 1,
                                      .timeout = GOC_SECOND,
                                      .on_state_change = notice_panics };
    goc_breaker *b = mkb(&s);
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(trip, b, &p), GOC_EPANIC); /* closed -> open */
    goc_panic_info_free(p);
    tick(2 * GOC_SECOND);
    ASSERT_EQ(goc_try(state_now, b, &p), GOC_EPANIC); /* -> half-open */
    goc_panic_info_free(p);
    panic_b = b;
    ASSERT_EQ(goc_try(execute_panicking, NULL, &p), GOC_EPANIC);
    ASSERT_STR(goc_panic_info_message(p), "probe blew up");
    goc_panic_info_free(p);
    struct goc_breaker_counts c;
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.in_flight, 0);
    ASSERT_EQ(goc_try(state_now, b, &p), GOC_BREAKER_OPEN);
    goc_breaker_free(b);
}

/* A notice callback that panics on the way to half-open. */
static void panics_on_half_open(const char *name,
                                goc_breaker_state from,
                                goc_breaker_state to,
                                void *arg)
{
    (void)name;
    (void)from;
    (void)arg;
    if (to == GOC_BREAKER_HALF_OPEN)
        goc_panic(-EIO, "notice bug");
}

static int execute_ok(void *arg)
{
    return goc_breaker_execute(arg, ok_fn, NULL);
}

/*
 * The allow that half-opens the breaker delivers the notice after it has
 * admitted its call: a notice callback that panicked there took the call
 * with it, and with it the only probe's place, for good (GOC_ETOOMANY
 * ever after). The call is taken back before the panic goes on.
 */
TEST(breaker, notice_panicking_in_allow_takes_back_the_admitted_call)
{
    atomic_store(&ran, 0);
    struct goc_breaker_settings s = { .max_requests = 1,
                                      .timeout = GOC_SECOND,
                                      .on_state_change = panics_on_half_open };
    goc_breaker *b = mkb(&s);
    ASSERT_OK(goc_breaker_trip(b));
    tick(2 * GOC_SECOND); /* the next allow half-opens */
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(execute_ok, b, &p), GOC_EPANIC);
    ASSERT_STR(goc_panic_info_message(p), "notice bug");
    goc_panic_info_free(p);
    ASSERT_EQ(atomic_load(&ran), 0);
    struct goc_breaker_counts c;
    goc_breaker_counts(b, &c);
    ASSERT_EQ(c.in_flight, 0);
    ASSERT_EQ(c.requests, 0);
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), 0); /* the probe */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_CLOSED);
    goc_breaker_free(b);
}

static bool classifier_panics(int err, void *arg)
{
    (void)err;
    (void)arg;
    goc_panic(-EDOM, "classifier bug");
    return false;
}

static bool ready_to_trip_panics(const struct goc_breaker_counts *c, void *arg)
{
    (void)c;
    (void)arg;
    goc_panic(-EIO, "trip bug");
    return false;
}

struct completion {
    goc_breaker *b;
    goc_breaker_token tok;
};

static int complete_with_eio(void *arg)
{
    struct completion *k = arg;
    return goc_breaker_done(k->b, &k->tok, -EIO);
}

/* A classifier and then ready_to_trip both panicking in one completion:
 * the second panic went on and the first's record leaked, one block per
 * call. The first goes on, the second is freed. */
TEST(breaker, classifier_and_ready_to_trip_panicking_leak_nothing)
{
    struct goc_breaker_settings s = { .is_successful = classifier_panics,
                                      .ready_to_trip = ready_to_trip_panics };
    goc_breaker *b = mkb(&s);
    int64_t before = 0;
    for (int i = 0; i < 101; i++) {
        if (i == 1) /* after any first-use allocations */
            before = test_lib_objects();
        struct completion k = { .b = b };
        ASSERT_OK(goc_breaker_allow(b, &k.tok));
        goc_panic_info *p = NULL;
        ASSERT_EQ(goc_try(complete_with_eio, &k, &p), GOC_EPANIC);
        ASSERT_STR(goc_panic_info_message(p), "classifier bug");
        goc_panic_info_free(p);
    }
    ASSERT_LT(test_lib_objects() - before, 10);
    goc_breaker_free(b);
}

static goc_breaker *aging_b;
static int aging_step;

/*
 * The first notice queues another (a reset to closed) and panics; the
 * second, delivered by the next allow after it admitted its call, moves
 * the clock past the call's rolling bucket, lets the breaker age it out,
 * and panics: the call is then taken back.
 */
static void notice_ages_the_bucket(const char *name,
                                   goc_breaker_state from,
                                   goc_breaker_state to,
                                   void *arg)
{
    (void)name;
    (void)from;
    (void)to;
    (void)arg;
    if (aging_step == 1) {
        aging_step = 2;
        goc_breaker_reset(aging_b);
        goc_panic(-EIO, "first notice");
    } else if (aging_step == 2) {
        aging_step = 0;
        tick(10 * GOC_SECOND);
        struct goc_breaker_counts c;
        goc_breaker_counts(aging_b, &c); /* ages the bucket out */
        goc_panic(-EIO, "second notice");
    }
}

static int trip_b(void *arg)
{
    return goc_breaker_trip(arg);
}

static int allow_b(void *arg)
{
    goc_breaker_token tok;
    return goc_breaker_allow(arg, &tok);
}

/* A call taken back after its rolling bucket aged out was taken off the
 * counts twice (requests went to -1 and stayed wrong). */
TEST(breaker, call_taken_back_after_its_bucket_aged_out_is_counted_once)
{
    struct goc_breaker_settings s = { .interval = 3 * GOC_SECOND,
                                      .bucket_period = GOC_SECOND,
                                      .on_state_change =
                                          notice_ages_the_bucket };
    aging_b = mkb(&s);
    aging_step = 1;
    ASSERT_EQ(goc_try(trip_b, aging_b, NULL), GOC_EPANIC);
    ASSERT_EQ(goc_try(allow_b, aging_b, NULL), GOC_EPANIC);
    struct goc_breaker_counts c;
    goc_breaker_counts(aging_b, &c);
    ASSERT_EQ(c.in_flight, 0);
    ASSERT_EQ(c.requests, 0);
    goc_breaker_free(aging_b);
}

/* A failure that takes longer than the open timeout. */
static int slow_fail_fn(void *arg)
{
    tick(*(int64_t *)arg); /* the call's own duration, on the fake clock */
    return -EIO;
}

/*
 * The open timeout runs from the trip, not from the start of the call
 * that tripped it: a failing call longer than the timeout still leaves
 * the breaker open after it (seed D-066: the seed stamped the failure
 * before fn ran, so a long call's open state expired at once).
 */
TEST(breaker, open_timeout_runs_from_the_trip_not_the_slow_call_d066)
{
    struct goc_breaker_settings s = { .timeout = GOC_SECOND,
                                      .ready_to_trip = trip_at_3 };
    goc_breaker *b = mkb(&s);
    ASSERT_EQ(goc_breaker_execute(b, fail_fn, NULL), -EIO);
    ASSERT_EQ(goc_breaker_execute(b, fail_fn, NULL), -EIO);
    int64_t slow = 20 * GOC_SECOND;
    ASSERT_EQ(goc_breaker_execute(b, slow_fail_fn, &slow), -EIO);
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_OPEN);
    atomic_store(&ran, 0);
    ASSERT_EQ(goc_breaker_execute(b, ok_fn, NULL), GOC_EOPEN);
    ASSERT_EQ(atomic_load(&ran), 0);
    tick(GOC_SECOND + 1); /* now the timeout has passed since the trip */
    ASSERT_EQ(goc_breaker_state_now(b), GOC_BREAKER_HALF_OPEN);
    goc_breaker_free(b);
}

/*
 * A rolling window of more buckets than 2^24 (the cap on window_size) is
 * a bad setting: refused as one, not taken as an allocation of gigabytes
 * (1 s of 1 ns buckets gave -ENOMEM; 100 ms of them took 3 GB and many
 * seconds of clearing at each state change).
 */
TEST(breaker, rolling_window_of_too_many_buckets_is_refused)
{
    goc_breaker *b = NULL;
    struct goc_breaker_settings s = { .interval = GOC_SECOND,
                                      .bucket_period = 1 };
    ASSERT_EQ(goc_breaker_new(&s, &b), -EINVAL);
    s = (struct goc_breaker_settings){ .interval = (1 << 24) + 1,
                                       .bucket_period = 1 };
    ASSERT_EQ(goc_breaker_new(&s, &b), -EINVAL);
    ASSERT(b == NULL);
    /* Judged once rounded up to whole buckets: 2^24 + 1 of them. */
    s = (struct goc_breaker_settings){ .interval = ((int64_t)1 << 24) * 10 + 1,
                                       .bucket_period = 10 };
    ASSERT_EQ(goc_breaker_new(&s, &b), -EINVAL);
    ASSERT(b == NULL);
    s = (struct goc_breaker_settings){ .interval = GOC_SECOND,
                                       .bucket_period = GOC_MILLISECOND };
    ASSERT_OK(goc_breaker_new(&s, &b));
    goc_breaker_free(b);
}
