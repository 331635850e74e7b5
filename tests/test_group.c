/* SPDX-License-Identifier: MIT */
/* Tests of the task group (x/sync/errgroup semantics). */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

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
