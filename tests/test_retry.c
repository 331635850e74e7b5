/* SPDX-License-Identifier: MIT */
/*
 * Tests of retry with backoff: cenkalti's formulas on a seeded random
 * source and a fake clock, the policies, validation (seed defects D-108,
 * D-109, D-111), and the loop (last error kept, permanent, retry-after,
 * time budget, cancellation before and during the wait).
 */
#include "test.h"

#include "../src/internal/alloc.h"

#include <pthread.h>
#include <stdatomic.h>

static _Atomic int64_t rnow;

static int64_t rclock(void *arg)
{
    (void)arg;
    return atomic_load(&rnow);
}

/* A seeded LCG: the same sequence every run. */
static double lcg(void *arg)
{
    uint64_t *s = arg;
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) * 0x1.0p-53;
}

static double fixed(void *arg)
{
    return *(double *)arg;
}

TEST(retry, exponential_defaults_and_formula)
{
    goc_backoff b;
    goc_backoff_exponential(&b);
    ASSERT_EQ(b.initial_interval, 500 * GOC_MILLISECOND);
    ASSERT(b.randomization_factor == 0.5 && b.multiplier == 1.5);
    ASSERT_EQ(b.max_interval, 60 * GOC_SECOND);
    ASSERT_EQ(b.max_elapsed_time, 15 * 60 * GOC_SECOND);
    ASSERT_OK(goc_backoff_validate(&b));
    b.clock = (goc_clock){ rclock, NULL };

    /* u = 0 gives the low end, u = 0.5 the middle (+0.5 ns, truncated). */
    double u = 0;
    b.rand = fixed;
    b.rand_arg = &u;
    goc_backoff_reset(&b);
    ASSERT_EQ(goc_backoff_next(&b), 250 * GOC_MILLISECOND);
    u = 0.5;
    ASSERT_EQ(goc_backoff_next(&b), 750 * GOC_MILLISECOND);

    /* The documented table of ranges, on a seeded source. */
    static const double lo[] = { 0.25, 0.375, 0.5625, 0.84375, 1.265625 };
    static const double hi[] = { 0.75, 1.125, 1.6875, 2.53125, 3.796875 };
    uint64_t seed = 42;
    b.rand = lcg;
    b.rand_arg = &seed;
    for (int round = 0; round < 200; round++) {
        goc_backoff_reset(&b);
        for (int i = 0; i < 5; i++) {
            int64_t d = goc_backoff_next(&b);
            ASSERT_GE(d, (int64_t)(lo[i] * 1e9));
            ASSERT_LE(d, (int64_t)(hi[i] * 1e9) + 1);
        }
    }
    /* Same seed, same sequence. */
    uint64_t s1 = 7, s2 = 7;
    int64_t first[8];
    b.rand_arg = &s1;
    goc_backoff_reset(&b);
    for (int i = 0; i < 8; i++)
        first[i] = goc_backoff_next(&b);
    b.rand_arg = &s2;
    goc_backoff_reset(&b);
    for (int i = 0; i < 8; i++)
        ASSERT_EQ(goc_backoff_next(&b), first[i]);

    /* max_interval caps the interval before randomisation. */
    goc_backoff_reset(&b);
    for (int i = 0; i < 30; i++)
        goc_backoff_next(&b);
    for (int i = 0; i < 50; i++) {
        int64_t d = goc_backoff_next(&b);
        ASSERT_GE(d, 30 * GOC_SECOND);
        ASSERT_LE(d, 90 * GOC_SECOND + 1);
    }

    /* Factor 0: exactly the interval, no randomness used. */
    b.randomization_factor = 0;
    b.rand = NULL;
    goc_backoff_reset(&b);
    ASSERT_EQ(goc_backoff_next(&b), 500 * GOC_MILLISECOND);
    ASSERT_EQ(goc_backoff_next(&b), 750 * GOC_MILLISECOND);
    ASSERT_EQ(goc_backoff_next(&b), 1125 * GOC_MILLISECOND);

    /* max_elapsed_time: STOP once elapsed + next would pass it. */
    atomic_store(&rnow, 0);
    goc_backoff_reset(&b);
    atomic_store(&rnow, 15 * 60 * GOC_SECOND - 400 * GOC_MILLISECOND);
    ASSERT_EQ(goc_backoff_next(&b), GOC_BACKOFF_STOP);

    /* max_interval 0 = no cap, and huge growth saturates, never wraps. */
    b.max_interval = 0;
    b.max_elapsed_time = 0;
    b.multiplier = 1e6;
    goc_backoff_reset(&b);
    int64_t prev = 0;
    for (int i = 0; i < 10; i++) {
        int64_t d = goc_backoff_next(&b);
        ASSERT_GE(d, prev);
        prev = d;
    }
    ASSERT_EQ(prev, INT64_MAX);
}

static int64_t custom_fn(int64_t retry, void *arg)
{
    (void)arg;
    return retry < 3 ? retry * 10 : GOC_BACKOFF_STOP;
}

TEST(retry, policies_jitters_and_validation)
{
    goc_backoff b;
    goc_backoff_constant(&b, 7);
    b.max_elapsed_time = 0;
    b.max_retries = 3; /* 3 retries, then STOP */
    goc_backoff_reset(&b);
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(goc_backoff_next(&b), 7);
    ASSERT_EQ(goc_backoff_next(&b), GOC_BACKOFF_STOP);
    goc_backoff_reset(&b);
    ASSERT_EQ(goc_backoff_next(&b), 7);

    goc_backoff_zero(&b);
    goc_backoff_reset(&b);
    ASSERT_EQ(goc_backoff_next(&b), 0);
    goc_backoff_never(&b);
    goc_backoff_reset(&b);
    ASSERT_EQ(goc_backoff_next(&b), GOC_BACKOFF_STOP);
    goc_backoff_custom(&b, custom_fn, NULL);
    goc_backoff_reset(&b);
    ASSERT_EQ(goc_backoff_next(&b), 10);
    ASSERT_EQ(goc_backoff_next(&b), 20);
    ASSERT_EQ(goc_backoff_next(&b), GOC_BACKOFF_STOP);

    /* Jitter variants stay in their ranges. */
    uint64_t seed = 3;
    for (int j = GOC_JITTER_FULL; j <= GOC_JITTER_DECORRELATED; j++) {
        goc_backoff_exponential(&b);
        b.jitter = j;
        b.rand = lcg;
        b.rand_arg = &seed;
        b.max_elapsed_time = 0;
        goc_backoff_reset(&b);
        int64_t cur = b.initial_interval;
        for (int i = 0; i < 40; i++) {
            int64_t d = goc_backoff_next(&b);
            ASSERT_GE(d, j == GOC_JITTER_EQUAL ? cur / 2 : 0);
            ASSERT_LE(d, j == GOC_JITTER_DECORRELATED ? b.max_interval : cur);
            if (j == GOC_JITTER_DECORRELATED)
                ASSERT_GE(d, b.initial_interval);
            cur = cur >= b.max_interval / 1.5 ? b.max_interval
                                              : (int64_t)(cur * 1.5);
        }
    }

    /* Validation: the seed's zero MaxDelay and multiplier < 1. */
    goc_backoff_exponential(&b);
    b.max_interval = 100; /* < initial: would "cap at 0"-like */
    ASSERT_EQ(goc_backoff_validate(&b), -EINVAL);
    goc_backoff_exponential(&b);
    b.multiplier = 0.5;
    ASSERT_EQ(goc_backoff_validate(&b), -EINVAL);
    goc_backoff_exponential(&b);
    b.randomization_factor = 1.5;
    ASSERT_EQ(goc_backoff_validate(&b), -EINVAL);
    goc_backoff_exponential(&b);
    b.initial_interval = 0;
    ASSERT_EQ(goc_backoff_validate(&b), -EINVAL);
    goc_backoff_custom(&b, NULL, NULL);
    ASSERT_EQ(goc_backoff_validate(&b), -EINVAL);
    goc_backoff_constant(&b, -1);
    ASSERT_EQ(goc_backoff_validate(&b), -EINVAL);
}

struct op_state {
    _Atomic int calls;
    int succeed_at;   /* attempt that succeeds (0: never) */
    int permanent_at; /* attempt that fails for good */
    int after_at;     /* attempt that asks for a retry-after */
    int64_t after;
    int notified;
    int64_t notified_wait;
};

static int op(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)ctx;
    struct op_state *s = arg;
    int n = atomic_fetch_add(&s->calls, 1) + 1;
    if (n == s->succeed_at)
        return 0;
    if (n == s->permanent_at) {
        *err = goc_retry_permanent(goc_error_new(-EACCES, "denied"));
        return -EACCES;
    }
    if (n == s->after_at) {
        *err = goc_retry_after(s->after, goc_error_new(-EAGAIN, "busy"));
        return -EAGAIN;
    }
    *err = goc_error_new(-EIO, "attempt %d failed", n);
    return -EIO;
}

static void notify(const goc_error *err, int64_t wait, void *arg)
{
    struct op_state *s = arg;
    ASSERT_NE(goc_error_code(err), 0);
    s->notified++;
    s->notified_wait = wait;
}

TEST_G(retry, attempts_last_error_and_permanent)
{
    goc_backoff b;
    goc_backoff_constant(&b, GOC_MILLISECOND);
    struct op_state s = { .succeed_at = 3 };
    struct goc_retry_opts o = {
        .backoff = &b, .max_tries = 10, .notify = notify, .notify_arg = &s
    };
    struct goc_retry_result r;
    ASSERT_OK(goc_retry(op, &s, &o, &r, NULL));
    ASSERT_EQ(r.attempts, 3);
    ASSERT(r.err == NULL);
    ASSERT_EQ(s.notified, 2);

    /* Exhausted: the result keeps the last error and the count. */
    s = (struct op_state){ 0 };
    o.max_tries = 4;
    ASSERT_EQ(goc_retry(op, &s, &o, &r, NULL), GOC_EEXHAUSTED);
    ASSERT_EQ(r.attempts, 4);
    ASSERT_EQ(atomic_load(&s.calls), 4);
    ASSERT_EQ(r.last_code, -EIO);
    ASSERT(goc_error_is(r.err, GOC_EEXHAUSTED));
    ASSERT(goc_error_is(r.err, -EIO));
    ASSERT_STR(goc_error_message(goc_error_cause(r.err)), "attempt 4 failed");
    ASSERT_EQ(s.notified, 3); /* not called when stopping */
    goc_error_release(r.err);

    /* Permanent: stops at once, reports the wrapped error. */
    s = (struct op_state){ .permanent_at = 2 };
    o.max_tries = GOC_RETRY_FOREVER;
    ASSERT_EQ(goc_retry(op, &s, &o, &r, NULL), GOC_EPERMANENT);
    ASSERT_EQ(r.attempts, 2);
    ASSERT(goc_error_is(r.err, -EACCES));
    ASSERT_STR(goc_error_message(goc_error_cause(r.err)), "denied");
    goc_error_release(r.err);

    /* The policy stopping counts as exhausted. */
    goc_backoff_never(&b);
    s = (struct op_state){ 0 };
    ASSERT_EQ(goc_retry(op, &s, &o, &r, NULL), GOC_EEXHAUSTED);
    ASSERT_EQ(r.attempts, 1);
    goc_error_release(r.err);
}

TEST_G(retry, never_success_without_running)
{
    struct op_state s = { .succeed_at = 1 };
    struct goc_retry_opts o = { .max_tries = 0 }; /* the seed: success */
    struct goc_retry_result r;
    ASSERT_EQ(goc_retry(op, &s, &o, &r, NULL), -EINVAL);
    o.max_tries = -3;
    ASSERT_EQ(goc_retry(op, &s, &o, &r, NULL), -EINVAL);
    goc_backoff b;
    goc_backoff_exponential(&b);
    b.max_interval = 1; /* invalid policy */
    o = (struct goc_retry_opts){ .backoff = &b, .max_tries = 3 };
    ASSERT_EQ(goc_retry(op, &s, &o, &r, NULL), -EINVAL);
    ASSERT_EQ(goc_retry(NULL, &s, NULL, &r, NULL), -EINVAL);
    ASSERT_EQ(atomic_load(&s.calls), 0); /* nothing ran */
    /* max_tries 1: exactly one attempt, even with default options. */
    o = (struct goc_retry_opts){ .max_tries = 1 };
    s = (struct op_state){ 0 };
    ASSERT_EQ(goc_retry(op, &s, &o, &r, NULL), GOC_EEXHAUSTED);
    ASSERT_EQ(r.attempts, 1);
    goc_error_release(r.err);
    s = (struct op_state){ .succeed_at = 1 };
    ASSERT_OK(goc_retry(op, &s, NULL, NULL, NULL));
    ASSERT_EQ(atomic_load(&s.calls), 1);
}

TEST_G(retry, retry_after_and_time_budget)
{
    goc_backoff b;
    goc_backoff_constant(&b, GOC_MILLISECOND);
    struct op_state s = { .after_at = 1,
                          .after = 40 * GOC_MILLISECOND,
                          .succeed_at = 2 };
    struct goc_retry_opts o = {
        .backoff = &b, .max_tries = 5, .notify = notify, .notify_arg = &s
    };
    int64_t t = goc_now();
    ASSERT_OK(goc_retry(op, &s, &o, NULL, NULL));
    ASSERT_GE(goc_now() - t, 40 * GOC_MILLISECOND);
    ASSERT_EQ(s.notified_wait, 40 * GOC_MILLISECOND);

    /* A 60 ms budget with 10 s waits: the wait is shortened to the rest
     * of the budget (not given up), then the loop stops with
     * GOC_EMAXELAPSED and the last error. */
    goc_backoff_constant(&b, 10 * GOC_SECOND);
    s = (struct op_state){ 0 };
    o = (struct goc_retry_opts){ .backoff = &b,
                                 .max_tries = GOC_RETRY_FOREVER,
                                 .max_elapsed_time = 60 * GOC_MILLISECOND,
                                 .notify = notify,
                                 .notify_arg = &s };
    struct goc_retry_result r;
    t = goc_now();
    ASSERT_EQ(goc_retry(op, &s, &o, &r, NULL), GOC_EMAXELAPSED);
    int64_t took = goc_now() - t;
    ASSERT_GE(took, 60 * GOC_MILLISECOND);
    ASSERT_LT(took, 5 * GOC_SECOND);
    ASSERT_EQ(r.attempts, 2);
    ASSERT_LE(s.notified_wait, 60 * GOC_MILLISECOND); /* clamped */
    ASSERT_GT(s.notified_wait, 0);
    ASSERT(goc_error_is(r.err, -EIO));
    goc_error_release(r.err);
}

struct plain_arg {
    struct op_state s;
    int rc;
    struct goc_retry_result r;
};

static void *plain_retry(void *arg)
{
    struct plain_arg *p = arg;
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, 30 * GOC_MILLISECOND);
    goc_backoff b;
    goc_backoff_constant(&b, 10 * GOC_SECOND);
    struct goc_retry_opts o = { .backoff = &b, .max_tries = 5 };
    p->rc = goc_retry(op, &p->s, &o, &p->r, c);
    goc_ctx_destroy(c);
    return NULL;
}

TEST_G(retry, context_before_entry_and_during_wait)
{
    goc_backoff b;
    goc_backoff_constant(&b, 10 * GOC_SECOND);
    struct goc_retry_opts o = { .backoff = &b, .max_tries = 5 };
    struct op_state s = { 0 };
    struct goc_retry_result r;
    goc_ctx_local lc;

    /* Ended at entry: nothing runs, the ctx error, never success. */
    for (int i = 0; i < 10000; i++) {
        goc_ctx *c = goc_ctx_init_cancel(&lc, NULL);
        goc_ctx_cancel(c);
        ASSERT_EQ(goc_retry(op, &s, &o, &r, c), -ECANCELED);
        goc_ctx_destroy(c);
        ASSERT_EQ(r.attempts, 0);
        ASSERT(goc_error_is(r.err, -ECANCELED));
        goc_error_release(r.err);
    }
    ASSERT_EQ(atomic_load(&s.calls), 0);

    /* Cancelled during the 10 s wait: ctx error plus the last error. */
    goc_ctx *c = goc_ctx_init_cancel(&lc, NULL);
    test_cancel_after(c, 20 * GOC_MILLISECOND);
    int64_t t = goc_now();
    ASSERT_EQ(goc_retry(op, &s, &o, &r, c), -ECANCELED);
    ASSERT_LT(goc_now() - t, 5 * GOC_SECOND);
    test_cancel_after_join();
    goc_ctx_destroy(c);
    ASSERT_EQ(r.attempts, 1);
    ASSERT(goc_error_is(r.err, -ECANCELED));
    ASSERT(goc_error_is(r.err, -EIO)); /* the seed dropped this (D-113) */
    goc_error_release(r.err);

    /* A deadline, from a plain thread. */
    static struct plain_arg p;
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, plain_retry, &p));
    ASSERT_OK(test_join(th, NULL));
    ASSERT_EQ(p.rc, -ETIMEDOUT);
    ASSERT_EQ(p.r.attempts, 1);
    ASSERT(goc_error_is(p.r.err, -EIO));
    goc_error_release(p.r.err);
}

static int always_after(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)ctx;
    atomic_fetch_add((_Atomic int *)arg, 1);
    *err = goc_retry_after(100 * GOC_MICROSECOND, goc_error_new(-EBUSY, NULL));
    return -EBUSY;
}

/* An operation that always asks to retry after a delay still meets the
 * policy's limits: its retry count, its time budget, never-retry. */
TEST_G(retry, retry_after_still_obeys_the_policy)
{
    goc_backoff b;
    goc_backoff_constant(&b, GOC_MILLISECOND);
    b.max_retries = 3;
    struct goc_retry_opts o = { .backoff = &b, .max_tries = GOC_RETRY_FOREVER };
    _Atomic int calls = 0;
    struct goc_retry_result r;
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_SECOND);
    ASSERT_EQ(goc_retry(always_after, &calls, &o, &r, ctx), GOC_EEXHAUSTED);
    ASSERT_EQ(atomic_load(&calls), 4); /* the first try and 3 retries */
    ASSERT(goc_error_is(r.err, -EBUSY));
    goc_error_release(r.err);

    /* A budget of 100 ms: retries come every 100 us, so there are some
     * even under valgrind, whose first call alone can take 5 ms. */
    goc_backoff_exponential(&b);
    b.max_elapsed_time = 100 * GOC_MILLISECOND;
    atomic_store(&calls, 0);
    int64_t t = goc_now();
    ASSERT_EQ(goc_retry(always_after, &calls, &o, &r, ctx), GOC_EMAXELAPSED);
    ASSERT_LT(goc_now() - t, 3 * GOC_SECOND);
    ASSERT_GT(atomic_load(&calls), 1);
    goc_error_release(r.err);

    goc_backoff_never(&b);
    atomic_store(&calls, 0);
    ASSERT_EQ(goc_retry(always_after, &calls, &o, &r, ctx), GOC_EEXHAUSTED);
    ASSERT_EQ(atomic_load(&calls), 1);
    goc_error_release(r.err);
    goc_ctx_destroy(ctx);
}

/* Fails after ending its own context, as a caller's cancel racing the
 * attempt would. */
static int cancel_then_fail(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)arg;
    goc_ctx_cancel(ctx);
    *err = goc_error_new(-EIO, "failed while cancelled");
    return -EIO;
}

/* A ctx that ends during an attempt stops the loop without announcing a
 * retry that will never happen. */
TEST_G(retry, ctx_ended_in_an_attempt_announces_no_retry)
{
    goc_backoff b;
    goc_backoff_constant(&b, GOC_MILLISECOND);
    struct op_state s = { 0 };
    struct goc_retry_opts o = {
        .backoff = &b, .max_tries = 5, .notify = notify, .notify_arg = &s
    };
    struct goc_retry_result r;
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_cancel(&lc, NULL);
    ASSERT_EQ(goc_retry(cancel_then_fail, NULL, &o, &r, c), -ECANCELED);
    goc_ctx_destroy(c);
    ASSERT_EQ(s.notified, 0);
    ASSERT_EQ(r.attempts, 1);
    ASSERT(goc_error_is(r.err, -EIO));
    goc_error_release(r.err);
}

/* Cancels its context in the attempt that the policy stops after. */
static int cancel_in_last_then_fail(goc_ctx *ctx, void *arg, goc_error **err)
{
    _Atomic int *calls = arg;
    if (atomic_fetch_add(calls, 1) == 1)
        goc_ctx_cancel(ctx);
    *err = goc_error_new(-EIO, "failed");
    return -EIO;
}

static int cancel_then_fail_for_good(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)arg;
    goc_ctx_cancel(ctx);
    *err = goc_retry_permanent(goc_error_new(-EIO, "failed for good"));
    return -EIO;
}

/* A cancel during the attempt after which the policy stops as well is
 * still reported as the cancel, as in any other attempt: it used to come
 * out as GOC_EEXHAUSTED, which goc_error_is() did not match to it. */
TEST_G(retry, ctx_ended_in_the_last_attempt_is_the_reason_not_exhaustion)
{
    goc_backoff b;
    goc_backoff_constant(&b, GOC_MILLISECOND);
    b.max_retries = 1; /* two attempts */
    _Atomic int calls = 0;
    struct goc_retry_opts o = { .backoff = &b, .max_tries = GOC_RETRY_FOREVER };
    struct goc_retry_result r;
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_cancel(&lc, NULL);
    ASSERT_EQ(goc_retry(cancel_in_last_then_fail, &calls, &o, &r, c),
              -ECANCELED);
    goc_ctx_destroy(c);
    ASSERT_EQ(r.attempts, 2);
    ASSERT(goc_error_is(r.err, -ECANCELED));
    ASSERT(goc_error_is(r.err, -EIO));
    goc_error_release(r.err);
    /* A permanent error still goes before the cancel. */
    c = goc_ctx_init_cancel(&lc, NULL);
    ASSERT_EQ(goc_retry(cancel_then_fail_for_good, NULL, &o, &r, c),
              GOC_EPERMANENT);
    goc_ctx_destroy(c);
    ASSERT_EQ(r.attempts, 1);
    goc_error_release(r.err);
}

static _Atomic int payloads_made, payloads_freed;

static void payload_free(void *p)
{
    (void)p;
    atomic_fetch_add(&payloads_freed, 1);
}

/* Fails once with an error carrying a payload, then panics. */
static int fail_then_panic(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)ctx;
    _Atomic int *calls = arg;
    if (atomic_fetch_add(calls, 1) > 0)
        goc_panic(0, "second attempt panicked");
    atomic_fetch_add(&payloads_made, 1);
    *err = goc_error_new_payload(-EIO, &payloads_made, payload_free, "one");
    return -EIO;
}

static void notify_panics(const goc_error *err, int64_t wait, void *arg)
{
    (void)err, (void)wait, (void)arg;
    goc_panic(0, "notify panicked");
}

struct panicking_retry {
    _Atomic int calls;
    bool notify;
};

static int retry_that_panics(void *arg)
{
    struct panicking_retry *pr = arg;
    goc_backoff b;
    goc_backoff_constant(&b, GOC_MICROSECOND);
    struct goc_retry_opts o = { .backoff = &b,
                                .max_tries = 5,
                                .notify = pr->notify ? notify_panics : NULL };
    struct goc_retry_result r;
    int rc = goc_retry(fail_then_panic, &pr->calls, &o, &r, NULL);
    goc_error_release(r.err);
    return rc;
}

/* A panic of the operation (holding the last attempt's error) or of
 * notify (holding the attempt's own) passes through goc_retry() with
 * both released: they leaked, payloads and all. */
TEST_G(retry, panic_in_an_attempt_or_notify_releases_the_errors_held)
{
    for (int i = 0; i < 2; i++) {
        struct panicking_retry pr = { .notify = i == 1 };
        goc_panic_info *p = NULL;
        ASSERT_EQ(goc_try(retry_that_panics, &pr, &p), GOC_EPANIC);
        ASSERT(strstr(goc_panic_info_message(p), i ? "notify" : "second"));
        goc_panic_info_free(p);
        ASSERT_EQ(atomic_load(&pr.calls), i ? 1 : 2);
    }
    ASSERT_EQ(atomic_load(&payloads_made), 2);
    ASSERT_EQ(atomic_load(&payloads_freed), 2);
}

/* A retry-after wait takes the interval's place, so the policy's time
 * budget judges it: a 10 s wait was taken in full against a 50 ms
 * budget, because the policy's own 1 ms interval fitted. */
TEST_G(retry, retry_after_is_judged_by_the_policy_budget)
{
    goc_backoff b;
    goc_backoff_constant(&b, GOC_MILLISECOND);
    b.max_elapsed_time = 50 * GOC_MILLISECOND;
    struct op_state s = { .after_at = 1,
                          .after = 10 * GOC_SECOND,
                          .succeed_at = 2 };
    struct goc_retry_opts o = { .backoff = &b,
                                .max_tries = GOC_RETRY_FOREVER,
                                .notify = notify,
                                .notify_arg = &s };
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 300 * GOC_MILLISECOND);
    struct goc_retry_result r;
    int64_t t = goc_now();
    int rc = goc_retry(op, &s, &o, &r, ctx);
    int64_t took = goc_now() - t;
    goc_error_release(r.err);
    goc_ctx_destroy(ctx);
    ASSERT_EQ(rc, GOC_EMAXELAPSED);
    ASSERT_EQ(r.attempts, 1);
    ASSERT_EQ(s.notified_wait, 0); /* no wait was announced */
    ASSERT_LT(took, 250 * GOC_MILLISECOND);
}

/* A policy straight from its initialiser gave 0 for ever (or STOP once
 * the machine had been up 15 minutes): its start was 0. The first next()
 * resets it, with the clock set by then. */
TEST(retry, fresh_policy_resets_on_first_next)
{
    goc_backoff b;
    goc_backoff_exponential(&b);
    b.randomization_factor = 0;
    int64_t d1 = goc_backoff_next(&b);
    int64_t d2 = goc_backoff_next(&b);
    ASSERT_EQ(d1, 500 * GOC_MILLISECOND);
    ASSERT_EQ(d2, 750 * GOC_MILLISECOND);
    goc_backoff_exponential(&b);
    b.randomization_factor = 0;
    b.clock = (goc_clock){ rclock, NULL };
    atomic_store(&rnow, 5 * GOC_SECOND);
    ASSERT_EQ(goc_backoff_next(&b), 500 * GOC_MILLISECOND);
    atomic_store(&rnow, 5 * GOC_SECOND + 15 * 60 * GOC_SECOND);
    ASSERT_EQ(goc_backoff_next(&b), GOC_BACKOFF_STOP);
}

/* ZERO is "retry at once, for ever" and CONSTANT "always @interval", as
 * cenkalti's ZeroBackOff and ConstantBackOff, which never stop on time:
 * both had the exponential policy's 15 min budget. */
TEST(retry, zero_and_constant_policies_have_no_time_budget)
{
    goc_backoff b;
    goc_backoff_zero(&b);
    b.clock = (goc_clock){ rclock, NULL };
    atomic_store(&rnow, 0);
    goc_backoff_reset(&b);
    atomic_store(&rnow, 16 * 60 * GOC_SECOND); /* 16 minutes later */
    int64_t z = goc_backoff_next(&b);
    goc_backoff_constant(&b, GOC_SECOND);
    b.clock = (goc_clock){ rclock, NULL };
    atomic_store(&rnow, 0);
    goc_backoff_reset(&b);
    atomic_store(&rnow, 16 * 60 * GOC_SECOND);
    int64_t c = goc_backoff_next(&b);
    ASSERT_EQ(z, 0);
    ASSERT_EQ(c, GOC_SECOND);
}

/* A permanent marker that cannot be allocated still stops the loop: it
 * was the static -ENOMEM error, which the loop retried. */
static int permanent_without_memory(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)ctx;
    atomic_fetch_add((_Atomic int *)arg, 1);
    goc_error *cause = goc_error_new(-EIO, "disk gone");
    goc__fault_after(0);
    *err = goc_retry_permanent(cause);
    goc__fault_after(-1);
    return -EIO;
}

TEST_G(retry, permanent_marker_out_of_memory_still_stops)
{
    goc_error *cause = goc_error_new(-EIO, "x");
    goc__fault_after(0);
    goc_error *e = goc_retry_permanent(cause);
    goc__fault_after(-1);
    ASSERT_EQ(goc_error_code(e), GOC_EPERMANENT);
    goc_error_release(e);
    _Atomic int calls = 0;
    goc_backoff b;
    goc_backoff_zero(&b);
    struct goc_retry_opts o = { .backoff = &b, .max_tries = 5 };
    struct goc_retry_result r;
    ASSERT_EQ(goc_retry(permanent_without_memory, &calls, &o, &r, NULL),
              GOC_EPERMANENT);
    ASSERT_EQ(atomic_load(&calls), 1);
    ASSERT_EQ(r.attempts, 1);
    goc_error_release(r.err);
}

/* ---- the backoff ticker ----------------------------------------------- */

static int64_t tick(goc_backoff_ticker *t)
{
    int64_t at = 0;
    int rc = goc_chan_recv(goc_backoff_ticker_chan(t), &at, NULL);
    return rc > 0 ? at : -1;
}

TEST_G(retry, backoff_ticker_ticks_at_the_intervals_then_closes)
{
    goc_backoff b;
    goc_backoff_constant(&b, 2 * GOC_MILLISECOND);
    b.max_retries = 3;
    goc_backoff_ticker *t;
    int64_t t0 = goc_now();
    ASSERT_OK(goc_backoff_ticker_new(&b, NULL, &t));
    int64_t prev = tick(t); /* the first at once */
    ASSERT_GE(prev, t0);
    ASSERT_OK(goc_backoff_ticker_reason(t));
    for (int i = 0; i < 3; i++) {
        int64_t at = tick(t);
        ASSERT_GE(at - prev, 2 * GOC_MILLISECOND); /* never early */
        prev = at;
    }
    ASSERT_EQ(tick(t), -1); /* the policy said stop: closed */
    ASSERT_EQ(goc_backoff_ticker_reason(t), GOC_EEXHAUSTED);
    /* Users only receive. */
    int64_t v = 0;
    ASSERT_EQ(goc_chan_send(goc_backoff_ticker_chan(t), &v, NULL), GOC_EMISUSE);
    goc_backoff_ticker_free(t);

    /* A tick waits for its receiver; the next interval starts then. */
    ASSERT_OK(goc_backoff_ticker_new(&b, NULL, &t));
    tick(t);
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    int64_t taken = tick(t); /* offered before the sleep ended */
    int64_t after = tick(t);
    ASSERT_GE(after - taken, 2 * GOC_MILLISECOND);
    goc_backoff_ticker_free(t);
}

static void *ticks_on_a_thread(void *arg)
{
    goc_backoff_ticker *t = arg;
    intptr_t n = 0;
    while (tick(t) >= 0)
        n++;
    return (void *)n;
}

TEST_G(retry, backoff_ticker_stop_ctx_bad_input_and_plain_thread)
{
    goc_backoff b;
    goc_backoff_constant(&b, GOC_SECOND);
    goc_backoff_ticker *t;
    ASSERT_OK(goc_backoff_ticker_new(&b, NULL, &t));
    tick(t);
    int64_t t0 = goc_now();
    goc_backoff_ticker_stop(t); /* ends the one-second sleep at once */
    goc_backoff_ticker_stop(t); /* idempotent */
    ASSERT_LT(goc_now() - t0, GOC_SECOND / 2);
    ASSERT_EQ(tick(t), -1);
    ASSERT_EQ(goc_backoff_ticker_reason(t), -ECANCELED);
    goc_backoff_ticker_free(t);

    /* The context's deadline ends the ticks. */
    goc_ctx *c;
    ASSERT_OK(goc_ctx_with_timeout(NULL, 5 * GOC_MILLISECOND, &c));
    ASSERT_OK(goc_backoff_ticker_new(&b, c, &t));
    tick(t);
    ASSERT_EQ(tick(t), -1);
    ASSERT_EQ(goc_backoff_ticker_reason(t), -ETIMEDOUT);
    goc_backoff_ticker_free(t);
    goc_ctx_release(c);

    /* Cancelled before: the first tick is not even sent. */
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c));
    goc_ctx_cancel(c);
    ASSERT_OK(goc_backoff_ticker_new(&b, c, &t));
    ASSERT_EQ(tick(t), -1);
    ASSERT_EQ(goc_backoff_ticker_reason(t), -ECANCELED);
    goc_backoff_ticker_free(t);
    goc_ctx_release(c);

    /* A plain thread receives the ticks. */
    goc_backoff_constant(&b, GOC_MILLISECOND);
    b.max_retries = 4;
    ASSERT_OK(goc_backoff_ticker_new(&b, NULL, &t));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, ticks_on_a_thread, t));
    void *n;
    test_join(th, &n);
    ASSERT_EQ((intptr_t)n, 5);
    goc_backoff_ticker_free(t);

    goc_backoff_exponential(&b);
    b.initial_interval = 0; /* refused by goc_backoff_validate() */
    ASSERT_EQ(goc_backoff_ticker_new(&b, NULL, &t), -EINVAL);
    ASSERT_EQ(goc_backoff_ticker_new(NULL, NULL, &t), -EINVAL);
    goc_backoff_exponential(&b);
    ASSERT_EQ(goc_backoff_ticker_new(&b, NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_backoff_ticker_reason(NULL), -EINVAL);
    goc_backoff_ticker_free(NULL);
    goc_backoff_ticker_stop(NULL);
}
