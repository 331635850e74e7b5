/* SPDX-License-Identifier: MIT */
/* Tests of the task group (x/sync/errgroup semantics). */
#include "test.h"

#include "../src/internal/alloc.h"
#include "../src/patterns/patterns.h" /* goc__group_blocked */

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static _Atomic int64_t live, peak, finished;

/* Fails with arg (a negative code) at once, or waits for the ctx. */
static int member(goc_ctx *ctx, void *arg)
{
    intptr_t code = (intptr_t)arg;
    if (code < 0) {
        goc_sleep(2 * GOC_MILLISECOND, NULL);
        return (int)code;
    }
    int rc = goc_sleep(10 * GOC_SECOND, ctx); /* until cancelled */
    atomic_fetch_add(&finished, 1);
    return rc == -ECANCELED ? 0 : rc;
}

TEST_G(group, first_error_cancels_the_rest_and_wait_returns_it)
{
    goc_group *g;
    atomic_store(&finished, 0);
    ASSERT_OK(goc_group_new(NULL, &g));
    for (int i = 0; i < 5; i++)
        ASSERT_OK(goc_group_go(g, member, NULL, NULL));
    ASSERT_OK(goc_group_go(g, member, (void *)(intptr_t)-EIO, NULL));
    ASSERT_EQ(goc_group_wait(g, NULL), -EIO);
    ASSERT_EQ(atomic_load(&finished), 5);
    ASSERT_EQ(goc_ctx_err(goc_group_ctx(g)), -ECANCELED);
    ASSERT_EQ(goc_ctx_cause(goc_group_ctx(g)), -EIO);
    ASSERT_EQ(goc_group_failed(g), 1);
    goc_group_free(g);
}

TEST_G(group, wait_cancels_ctx_and_returns_zero_when_all_succeed)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_wait(g, NULL)); /* empty group */
    ASSERT_EQ(goc_ctx_err(goc_group_ctx(g)), -ECANCELED);
    goc_group_free(g);
    ASSERT_EQ(goc_group_go(NULL, member, NULL, NULL), -EINVAL);
}

static int peak_member(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    int64_t n = atomic_fetch_add(&live, 1) + 1;
    int64_t m = atomic_load(&peak);
    while (n > m && !atomic_compare_exchange_weak(&peak, &m, n))
        ;
    goc_sleep(200 * GOC_MICROSECOND, NULL);
    atomic_fetch_sub(&live, 1);
    return 0;
}

TEST_G(group, set_limit_bounds_concurrency_and_try_go)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_limit(g, 3));
    atomic_store(&peak, 0);
    for (int i = 0; i < 50; i++)
        ASSERT_OK(goc_group_go(g, peak_member, NULL, NULL));
    ASSERT_EQ(goc_group_set_limit(g, 5), GOC_EMISUSE); /* tasks active */
    ASSERT_OK(goc_group_wait(g, NULL));
    ASSERT_LE(atomic_load(&peak), 3);
    ASSERT_GE(atomic_load(&peak), 1);
    goc_group_free(g);

    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_limit(g, 0)); /* nothing may start */
    ASSERT_EQ(goc_group_try_go(g, peak_member, NULL), -EAGAIN);
    ASSERT_OK(goc_group_set_limit(g, 1));
    ASSERT_OK(goc_group_try_go(g, member, NULL));
    ASSERT_EQ(goc_group_try_go(g, peak_member, NULL), -EAGAIN);
    goc_ctx_cancel(goc_group_ctx(g));
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_group_free(g);
}

struct go_call {
    goc_group *g;
    goc_ctx *ctx;
    _Atomic int rc;
};

static void *go_thread(void *arg)
{
    struct go_call *c = arg;
    atomic_store(&c->rc, goc_group_go(c->g, peak_member, NULL, c->ctx));
    return NULL;
}

TEST_G(group, go_waits_for_a_slot_timeout_cancel_entry_plain_thread)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_limit(g, 1));
    ASSERT_OK(goc_group_go(g, member, NULL, NULL)); /* holds the slot */
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_group_go(g, peak_member, NULL, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_group_go(g, peak_member, NULL, k), -ECANCELED);
    ASSERT_EQ(goc_group_go(g, peak_member, NULL, k), -ECANCELED); /* entry */
    goc_ctx_release(k);
    /* A plain thread waits for the slot and gets it when it frees. */
    static struct go_call c;
    c = (struct go_call){ g, NULL, 1 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, go_thread, &c));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&c.rc), 1);
    goc_ctx_cancel(goc_group_ctx(g)); /* the holder returns */
    test_join(th, NULL);
    ASSERT_OK(atomic_load(&c.rc));
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_group_free(g);
}

TEST_G(group, wait_with_ctx_times_out_without_cancelling)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_go(g, member, NULL, NULL));
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_group_wait(g, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    ASSERT_OK(goc_ctx_err(goc_group_ctx(g))); /* still running */
    goc_ctx_cancel(goc_group_ctx(g));
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_group_free(g);
}

static void *wait_thread(void *arg)
{
    return (void *)(intptr_t)goc_group_wait(arg, NULL);
}

TEST_G(group, wait_cancel_entry_and_plain_thread)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_go(g, member, NULL, NULL));
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 3 * GOC_MILLISECOND);
    ASSERT_EQ(goc_group_wait(g, k), -ECANCELED);
    ASSERT_EQ(goc_group_wait(g, k), -ECANCELED); /* at entry */
    pthread_t th;
    void *res;
    ASSERT_OK(pthread_create(&th, NULL, wait_thread, g));
    goc_sleep(3 * GOC_MILLISECOND, NULL);
    goc_ctx_cancel(goc_group_ctx(g)); /* the member returns 0 */
    test_join(th, &res);
    ASSERT_EQ((intptr_t)res, 0);
    ASSERT_OK(goc_group_wait(g, k)); /* done: wins over the done ctx */
    goc_ctx_release(k);
    goc_group_free(g);
}

static void *go_limited(void *arg)
{
    struct go_call *c = arg;
    atomic_store(&c->rc,
                 goc_group_go(c->g, member, (void *)(intptr_t)-EIO, c->ctx));
    return NULL;
}

/* go() waiting under a limit of 0 is admitted when the limit is raised,
 * without waiting for some other task to finish. */
TEST_G(group, raising_the_limit_from_zero_admits_waiting_go_calls)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_limit(g, 0));
    ASSERT_EQ(goc_group_try_go(g, member, NULL), -EAGAIN);
    static struct go_call c;
    c = (struct go_call){ g, NULL, 1 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, go_limited, &c));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&c.rc), 1); /* still waiting */
    ASSERT_OK(goc_group_set_limit(g, 2));
    test_join(th, NULL);
    ASSERT_OK(atomic_load(&c.rc));
    ASSERT_EQ(goc_group_wait(g, NULL), -EIO);
    goc_group_free(g);
}

/* ---- conc's options: error values, every failure, panics -------------- */

/* Fails with arg (a negative code) once @gate failures are in, so that
 * the order of failures is the order of the gates. */
struct ordered {
    goc_group *g;
    int code;
    int64_t after; /* fail once this many have failed */
};

static int fail_in_turn(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    struct ordered *o = arg;
    while (goc_group_failed(o->g) < o->after)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    return o->code;
}

/* Succeeds once every failing task has failed, telling (through arg)
 * whether the group's context was cancelled by then. */
struct bystander {
    goc_group *g;
    int64_t failures;
    _Atomic int saw;
};

static int bystand(goc_ctx *ctx, void *arg)
{
    struct bystander *b = arg;
    while (goc_group_failed(b->g) < b->failures)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    atomic_store(&b->saw, goc_ctx_err(ctx));
    return 0;
}

TEST_G(group, wait_err_gives_the_first_failure_by_default)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    struct ordered o[3] = { { g, -EIO, 0 },
                            { g, -EPIPE, 1 },
                            { g, -EBADF, 2 } };
    for (int i = 2; i >= 0; i--)
        ASSERT_OK(goc_group_go(g, fail_in_turn, &o[i], NULL));
    goc_error *err = (goc_error *)1;
    ASSERT_EQ(goc_group_wait_err(g, NULL, &err), -EIO);
    ASSERT(err != NULL);
    ASSERT_EQ(goc_error_code(err), -EIO);
    ASSERT_EQ(goc_error_nchildren(err), 0);
    ASSERT(!goc_error_is(err, -EPIPE));
    ASSERT_EQ(goc_group_failed(g), 3);
    goc_error_release(err);
    /* Asked again: the same answer. */
    ASSERT_EQ(goc_group_wait_err(g, NULL, &err), -EIO);
    ASSERT_EQ(goc_error_code(err), -EIO);
    goc_error_release(err);
    ASSERT_EQ(goc_group_wait_err(g, NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_group_wait_err(NULL, NULL, &err), -EINVAL);
    ASSERT(err == NULL);
    goc_group_free(g);
}

TEST_G(group, all_errors_joins_every_failure_in_order_without_cancelling)
{
    enum { FAILING = 6, BYSTANDERS = 4 };
    static const int codes[FAILING] = { -EIO,    -EPIPE,  -EBADF,
                                        -ENOENT, -EACCES, -ENOSPC };
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_options(g, GOC_GROUP_ALL_ERRORS |
                                           GOC_GROUP_NO_CANCEL_ON_ERROR));
    struct ordered o[FAILING];
    struct bystander b = { g, FAILING, 1 };
    for (int i = 0; i < BYSTANDERS; i++)
        ASSERT_OK(goc_group_go(g, bystand, &b, NULL));
    for (int i = FAILING - 1; i >= 0; i--) {
        o[i] = (struct ordered){ g, codes[i], i };
        ASSERT_OK(goc_group_go(g, fail_in_turn, &o[i], NULL));
    }
    goc_error *err;
    ASSERT_EQ(goc_group_wait_err(g, NULL, &err), -EIO);
    ASSERT_OK(atomic_load(&b.saw)); /* failures did not cancel */
    ASSERT_EQ(goc_error_nchildren(err), FAILING);
    for (int i = 0; i < FAILING; i++) {
        ASSERT_EQ(goc_error_code(goc_error_child(err, i)), codes[i]);
        ASSERT(goc_error_is(err, codes[i]));
    }
    goc_error_release(err);
    /* Wait still cancels the context when it returns. */
    ASSERT_EQ(goc_ctx_err(goc_group_ctx(g)), -ECANCELED);
    goc_group_free(g);

    /* By default the first failure cancels: a bystander sees it. */
    ASSERT_OK(goc_group_new(NULL, &g));
    struct bystander c = { g, 1, 1 };
    struct ordered one = { g, -EIO, 0 };
    ASSERT_OK(goc_group_go(g, bystand, &c, NULL));
    ASSERT_OK(goc_group_go(g, fail_in_turn, &one, NULL));
    ASSERT_EQ(goc_group_wait(g, NULL), -EIO);
    ASSERT_EQ(atomic_load(&c.saw), -ECANCELED);
    goc_group_free(g);
}

static goc_error *own_error;

static goc_error *fail_with_value(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    intptr_t how = (intptr_t)arg;
    if (how == 0)
        return NULL;
    if (how == 1)
        return goc_error_retain(own_error);
    return goc_error_new(7, "a positive code"); /* not a failure code */
}

TEST_G(group, go_err_hands_back_the_tasks_own_error)
{
    own_error = goc_error_new(-ECONNRESET, "peer went away");
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_go_err(g, fail_with_value, (void *)0, NULL));
    ASSERT_OK(goc_group_try_go_err(g, fail_with_value, (void *)0));
    goc_error *err;
    ASSERT_OK(goc_group_wait_err(g, NULL, &err));
    ASSERT(err == NULL);
    ASSERT_OK(goc_group_reset(g));
    ASSERT_OK(goc_group_go_err(g, fail_with_value, (void *)1, NULL));
    ASSERT_EQ(goc_group_wait_err(g, NULL, &err), -ECONNRESET);
    ASSERT(err == own_error); /* the task's own, not a copy */
    ASSERT_EQ(goc_ctx_cause(goc_group_ctx(g)), -ECONNRESET);
    goc_error_release(err);
    ASSERT_OK(goc_group_reset(g));
    ASSERT_OK(goc_group_try_go_err(g, fail_with_value, (void *)2));
    ASSERT_EQ(goc_group_wait_err(g, NULL, &err), -EINVAL);
    ASSERT_STR(goc_error_message(err), "a positive code");
    goc_error_release(err);
    ASSERT_EQ(goc_group_go_err(g, NULL, NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_group_try_go_err(NULL, fail_with_value, NULL), -EINVAL);
    goc_group_free(g);
    goc_error_release(own_error);
}

static int panics(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    int64_t after = (intptr_t)arg;
    goc_sleep(after * GOC_MILLISECOND, NULL);
    goc_panic(-EIO, "boom %d", (int)after);
}

TEST_G(group, a_panic_becomes_an_error_value_carrying_it)
{
    goc_recovery *quiet;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &quiet));
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_recovery(g, quiet));
    ASSERT_OK(goc_group_set_options(g, GOC_GROUP_ALL_ERRORS));
    ASSERT_OK(goc_group_go(g, panics, (void *)0, NULL));
    goc_error *err;
    ASSERT_EQ(goc_group_wait_err(g, NULL, &err), GOC_EPANIC);
    ASSERT_EQ(goc_error_nchildren(err), 1);
    ASSERT_EQ(goc_error_code(goc_error_child(err, 0)), GOC_EPANIC);
    ASSERT_STR(goc_error_message(err), "panic: boom 0");
    const goc_panic_info *p = goc_error_panic(err); /* found in the join */
    ASSERT(p != NULL);
    ASSERT_STR(goc_panic_info_message(p), "boom 0");
    ASSERT_EQ(goc_panic_info_code(p), -EIO);
    goc_error_release(err);
    ASSERT_EQ(goc_recovery_count(quiet, NULL), 1); /* reported as well */
    goc_group_free(g);
    goc_recovery_free(quiet);
    ASSERT(goc_panic_error(NULL) == NULL);
    ASSERT(goc_error_panic(NULL) == NULL);
}

/* Panics once @after failures are in, so panics come in a known order. */
static int panic_in_turn(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    struct ordered *o = arg;
    while (goc_group_failed(o->g) < o->after)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    goc_panic(-EIO, "boom %d", (int)o->after);
}

struct waiter {
    goc_group *g;
    goc_error *err;
};

static int wait_in_try(void *arg)
{
    struct waiter *w = arg;
    return goc_group_wait_err(w->g, NULL, &w->err);
}

TEST_G(group, propagate_panic_raises_the_first_panic_in_the_waiter)
{
    goc_recovery *quiet;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &quiet));
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_recovery(g, quiet));
    ASSERT_OK(goc_group_set_options(g, GOC_GROUP_PROPAGATE_PANIC));
    struct ordered o = { g, -EPIPE, 0 }, first = { g, 0, 1 };
    struct ordered second = { g, 0, 2 };
    ASSERT_OK(goc_group_go(g, fail_in_turn, &o, NULL)); /* fails first */
    ASSERT_OK(goc_group_go(g, panic_in_turn, &second, NULL));
    ASSERT_OK(goc_group_go(g, panic_in_turn, &first, NULL));
    struct waiter w = { g, NULL };
    goc_panic_info *p;
    ASSERT_EQ(goc_try(wait_in_try, &w, &p), GOC_EPANIC);
    ASSERT(p != NULL);
    ASSERT_STR(goc_panic_info_message(p), "boom 1"); /* the first panic */
    ASSERT(w.err == NULL); /* not left to leak when raised */
    goc_panic_info_free(p);
    /* Raised once: later waits report it as the failure it was. */
    ASSERT_EQ(goc_try(wait_in_try, &w, &p), -EPIPE);
    ASSERT(p == NULL);
    ASSERT_EQ(goc_error_code(w.err), -EPIPE);
    goc_error_release(w.err);
    /* A group freed before any wait does not raise it. */
    ASSERT_OK(goc_group_reset(g));
    ASSERT_OK(goc_group_go(g, panics, (void *)0, NULL));
    goc_group_free(g);
    goc_recovery_free(quiet);
}

static int until_cancelled(goc_ctx *ctx, void *arg)
{
    (void)arg;
    return goc_sleep(10 * GOC_SECOND, ctx) == -ECANCELED ? 0 : -EIO;
}

TEST_G(group, reset_makes_a_finished_group_ready_for_another_round)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    struct ordered o = { g, -EIO, 0 };
    ASSERT_OK(goc_group_go(g, fail_in_turn, &o, NULL));
    ASSERT_EQ(goc_group_wait(g, NULL), -EIO);
    goc_ctx *old = goc_group_ctx(g);
    ASSERT_EQ(goc_ctx_err(old), -ECANCELED);
    ASSERT_OK(goc_group_reset(g));
    ASSERT(goc_group_ctx(g) != NULL);
    ASSERT_OK(goc_ctx_err(goc_group_ctx(g)));
    ASSERT_EQ(goc_group_failed(g), 0);
    /* While a task runs: options, limit and reset are refused. */
    ASSERT_OK(goc_group_go(g, until_cancelled, NULL, NULL));
    ASSERT_EQ(goc_group_reset(g), GOC_EMISUSE);
    ASSERT_EQ(goc_group_set_options(g, GOC_GROUP_ALL_ERRORS), GOC_EMISUSE);
    goc_ctx_cancel(goc_group_ctx(g));
    goc_error *err;
    ASSERT_OK(goc_group_wait_err(g, NULL, &err));
    ASSERT(err == NULL); /* the first round's failure is forgotten */
    ASSERT_EQ(goc_group_set_options(g, 1u << 9), -EINVAL);
    ASSERT_EQ(goc_group_set_options(NULL, 0), -EINVAL);
    ASSERT_EQ(goc_group_reset(NULL), -EINVAL);
    goc_group_free(g);

    /* The new context is a child of the group's parent. */
    goc_ctx *parent;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &parent));
    ASSERT_OK(goc_group_new(parent, &g));
    ASSERT_OK(goc_group_wait(g, NULL));
    ASSERT_OK(goc_group_reset(g));
    goc_ctx_cancel(parent);
    ASSERT_EQ(goc_ctx_err(goc_group_ctx(g)), -ECANCELED);
    goc_group_free(g);
    goc_ctx_release(parent);
}

static goc_chan *round_gate;

static int gated_member(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    goc_chan_recv(round_gate, NULL, NULL);
    return 0;
}

struct late_waiter {
    goc_group *g;
    goc_chan *done;
};

static void waits_for_round_one(void *arg)
{
    struct late_waiter *w = arg;
    goc_group_wait(w->g, NULL);
    goc_chan_close(w->done);
}

/* Two waiters of one round: a reset waits for both to be done with it,
 * and the late one ends the round it waited for, never the next. */
TEST_G(group, a_late_waiter_of_the_last_round_leaves_the_next_alone)
{
    int rounds = (int)test_scale(200), bad = 0;
    for (int i = 0; i < rounds; i++) {
        ASSERT_OK(goc_chan_new(0, 0, &round_gate));
        goc_group *g;
        ASSERT_OK(goc_group_new(NULL, &g));
        ASSERT_OK(goc_group_go(g, gated_member, NULL, NULL));
        struct late_waiter w = { g, NULL };
        ASSERT_OK(goc_chan_new(0, 0, &w.done));
        ASSERT_OK(goc_go(waits_for_round_one, &w));
        int64_t t0 = goc_now();
        while (goc__group_blocked(g) < 1) { /* inside its wait */
            ASSERT_LT(goc_now() - t0, 30 * GOC_SECOND);
            goc_sleep(100 * GOC_MICROSECOND, NULL);
        }
        goc_chan_close(round_gate);
        ASSERT_OK(goc_group_wait(g, NULL));
        /* Refused while the late waiter is still inside its wait;
         * accepted once it has left (perhaps not yet returned). */
        int rc = goc_group_reset(g);
        ASSERT(rc == 0 || rc == GOC_EMISUSE);
        goc_chan_recv(w.done, NULL, NULL);
        if (rc)
            ASSERT_OK(goc_group_reset(g));
        bad += goc_ctx_err(goc_group_ctx(g)) != 0;
        goc_group_free(g);
        goc_chan_release(w.done);
        goc_chan_release(round_gate);
    }
    ASSERT_EQ(bad, 0);
}

static int fails_out_of_memory(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    goc__fault_after((intptr_t)arg); /* the group's records of it fail */
    return -EIO;
}

/* A failure whose error cannot be kept still gets an error value. */
TEST_G(group, wait_err_out_of_memory_still_reports_the_failure)
{
    unsigned modes[2] = { 0, GOC_GROUP_ALL_ERRORS };
    for (int m = 0; m < 2; m++)
        for (intptr_t n = 0; n < 4; n++) {
            goc_group *g;
            ASSERT_OK(goc_group_new(NULL, &g));
            ASSERT_OK(goc_group_set_options(g, modes[m]));
            ASSERT_OK(goc_group_go(g, fails_out_of_memory, (void *)n, NULL));
            goc_error *err = NULL;
            int rc = goc_group_wait_err(g, NULL, &err);
            goc__fault_after(-1);
            ASSERT_EQ(rc, -EIO);
            ASSERT(err != NULL);
            ASSERT(goc_error_is(err, -EIO) || goc_error_is(err, -ENOMEM));
            goc_error_release(err);
            goc_group_free(g);
        }
}

static int fails_eio_array_lost(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    goc__fault_after(1); /* its error is made; the group's array is not */
    return -EIO;
}

static int fails_epipe(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return -EPIPE;
}

/* First-only mode: the first failure's error, lost for want of memory,
 * is not replaced by a later failure's: wait_err says it was lost, with
 * the first failure's code. */
TEST_G(group, a_lost_first_error_is_not_replaced_by_a_later_one)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_options(g, GOC_GROUP_NO_CANCEL_ON_ERROR));
    ASSERT_OK(goc_group_go(g, fails_eio_array_lost, NULL, NULL));
    while (goc_group_failed(g) < 1)
        goc_yield();
    goc__fault_after(-1);
    ASSERT_OK(goc_group_go(g, fails_epipe, NULL, NULL));
    goc_error *err = NULL;
    ASSERT_EQ(goc_group_wait_err(g, NULL, &err), -EIO);
    ASSERT(goc_error_is(err, -EIO));
    ASSERT(!goc_error_is(err, -EPIPE));
    ASSERT(strstr(goc_error_message(err), "lost") != NULL);
    goc_error_release(err);
    goc_group_free(g);
}

/* ---- freeing a group that calls are blocked on ------------------------- */

struct blocked_group {
    goc_group *g;
    goc_chan *gate; /* the first task waits for it to close */
    _Atomic int wait_rc, go_rc;
    goc_wg calls;
};

static int gated_task(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    goc_chan_recv(((struct blocked_group *)arg)->gate, NULL, NULL);
    return 0;
}

static int quick_task(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return 0;
}

static void blocked_waiter(void *arg)
{
    struct blocked_group *b = arg;
    atomic_store(&b->wait_rc, goc_group_wait(b->g, NULL));
    goc_wg_done(&b->calls);
}

static void blocked_starter(void *arg)
{
    struct blocked_group *b = arg;
    atomic_store(&b->go_rc, goc_group_go(b->g, quick_task, b, NULL));
    goc_wg_done(&b->calls);
}

static void group_freer(void *arg)
{
    struct blocked_group *b = arg;
    goc_group_free(b->g);
    goc_wg_done(&b->calls);
}

/*
 * goc_group_free() with a waiter inside goc_group_wait() and a caller
 * inside goc_group_go() waiting for a slot: once the last task ended the
 * free went ahead, and the two woke into a freed group (ASan). It now
 * waits for them to leave.
 */
TEST_G(group, free_waits_for_calls_blocked_on_the_group)
{
    int rounds = (int)test_scale(100);
    for (int i = 0; i < rounds; i++) {
        struct blocked_group b = { .gate = NULL, .calls = GOC_WG_INIT };
        atomic_init(&b.wait_rc, 99);
        atomic_init(&b.go_rc, 99);
        ASSERT_OK(goc_chan_new(0, 0, &b.gate));
        ASSERT_OK(goc_group_new(NULL, &b.g));
        ASSERT_OK(goc_group_set_limit(b.g, 1));
        ASSERT_OK(goc_group_go(b.g, gated_task, &b, NULL));
        goc_wg_add(&b.calls, 3);
        ASSERT_OK(goc_go(blocked_waiter, &b));
        ASSERT_OK(goc_go(blocked_starter, &b));
        int64_t t0 = goc_now();
        while (goc__group_blocked(b.g) < 2) { /* both inside */
            ASSERT_LT(goc_now() - t0, 30 * GOC_SECOND);
            goc_sleep(GOC_MICROSECOND * 100, NULL);
        }
        ASSERT_OK(goc_go(group_freer, &b));
        goc_sleep(GOC_MICROSECOND * (i % 4) * 100, NULL);
        ASSERT_OK(goc_chan_close(b.gate)); /* the tasks end, in turn */
        goc_wg_wait(&b.calls, NULL);
        ASSERT_EQ(atomic_load(&b.wait_rc), 0);
        ASSERT_EQ(atomic_load(&b.go_rc), 0);
        goc_chan_release(b.gate);
    }
}

static int slot_given_back_when_the_spawn_fails(void *arg)
{
    (void)arg;
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_OK(goc_group_set_limit(g, 1));
    ASSERT_OK(goc_group_go(g, member, NULL, NULL)); /* holds the slot */
    /* Plain threads: a spawn from one takes no G its P has cached (the
     * holder's, once it exits), so it allocates. */
    static struct go_call c[2];
    pthread_t th[2];
    for (int i = 0; i < 2; i++) {
        c[i] = (struct go_call){ g, NULL, 1 };
        ASSERT_OK(pthread_create(&th[i], NULL, go_thread, &c[i]));
    }
    WAIT_UNTIL(goc__group_blocked(g) == 2);
    /* The first waiter gets the freed slot, and cannot start its task. */
    goc__fault_after(0);
    goc_ctx_cancel(goc_group_ctx(g)); /* the holder returns */
    WAIT_UNTIL(atomic_load(&c[0].rc) != 1 || atomic_load(&c[1].rc) != 1);
    goc__fault_after(-1);
    int first = atomic_load(&c[0].rc) != 1 ? 0 : 1;
    ASSERT_EQ(atomic_load(&c[first].rc), -ENOMEM);
    /* The slot it gave back goes to the other one, which starts its task
     * or, if it came before the allocations work again, fails in turn. */
    for (int i = 0; i < 2000 && atomic_load(&c[!first].rc) == 1; i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    int rc = atomic_load(&c[!first].rc);
    ASSERT(rc == 0 || rc == -ENOMEM);
    for (int i = 0; i < 2; i++)
        test_join(th[i], NULL);
    ASSERT_OK(goc_group_wait(g, NULL));
    ASSERT_OK(goc_group_try_go(g, peak_member, NULL)); /* the slot is free */
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_group_free(g);
    return 0;
}

/* A go() that took a freed slot but whose goroutine could not start
 * hands the slot on: the next go() waiting for one is not left waiting
 * with a slot free. */
TEST(group, a_slot_whose_spawn_fails_goes_to_the_next_waiter)
{
    test_run_with_spawns_that_allocate(slot_given_back_when_the_spawn_fails);
}
