/* SPDX-License-Identifier: MIT */
/* Tests of the weighted semaphore (the x/sync/semaphore cases). */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

TEST(sem, bad_input_and_over_release)
{
    goc_sem s;
    ASSERT_EQ(goc_sem_init(&s, 0), -EINVAL);
    ASSERT_OK(goc_sem_init(&s, 3));
    ASSERT_EQ(goc_sem_acquire(&s, -1, NULL), -EINVAL);
    ASSERT_EQ(goc_sem_acquire(&s, 4, NULL), -EINVAL); /* can never fit */
    ASSERT_EQ(goc_sem_try_acquire(&s, 4), -EINVAL);
    ASSERT_OK(goc_sem_acquire(&s, 2, NULL));
    ASSERT_EQ(goc_sem_release(&s, 3), GOC_EMISUSE);
    ASSERT_EQ(goc_sem_held(&s), 2); /* unchanged */
    ASSERT_EQ(goc_sem_release(&s, -1), -EINVAL);
    ASSERT_OK(goc_sem_release(&s, 2));
    ASSERT_EQ(goc_sem_held(&s), 0);
}

struct order {
    goc_sem s;
    _Atomic int next;
    int got[8];
    int64_t want[8];
    goc_wg done;
};

struct taker {
    struct order *o;
    int id;
};

static void take(void *arg)
{
    struct taker *t = arg;
    ASSERT_OK(goc_sem_acquire(&t->o->s, t->o->want[t->id], NULL));
    t->o->got[atomic_fetch_add(&t->o->next, 1)] = t->id;
    ASSERT_OK(goc_sem_release(&t->o->s, t->o->want[t->id]));
    goc_wg_done(&t->o->done);
}

/* Until n callers are queued on s. */
static void wait_waiters(goc_sem *s, int64_t n)
{
    while (goc_sem_waiters(s) < n)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
}

TEST_G(sem, fifo_with_mixed_weights_and_no_barging)
{
    static struct order o;
    static struct taker t[4];
    /* One grant at a time: the 1 at the back fits early (while 3 is
     * held) but must wait for everyone queued before it. */
    int64_t want[4] = { 3, 2, 4, 1 };
    ASSERT_OK(goc_sem_init(&o.s, 4));
    ASSERT_OK(goc_sem_acquire(&o.s, 4, NULL)); /* everyone must queue */
    goc_wg_add(&o.done, 4);
    for (int i = 0; i < 4; i++) {
        o.want[i] = want[i];
        t[i] = (struct taker){ &o, i };
        ASSERT_OK(goc_go(take, &t[i]));
        wait_waiters(&o.s, i + 1); /* queue in this order */
    }
    /* A small request does not overtake the queue, even if it fits. */
    ASSERT_EQ(goc_sem_try_acquire(&o.s, 0), -EAGAIN);
    ASSERT_OK(goc_sem_release(&o.s, 4));
    goc_wg_wait(&o.done, NULL);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(o.got[i], i);
    ASSERT_EQ(goc_sem_held(&o.s), 0);
}

struct big {
    goc_sem s;
    _Atomic int stop;
    _Atomic int big_done;
    goc_wg wg;
};

static void small_stream(void *arg)
{
    struct big *b = arg;
    while (!atomic_load(&b->stop)) {
        goc_sem_acquire(&b->s, 1, NULL);
        goc_yield();
        goc_sem_release(&b->s, 1);
    }
    goc_wg_done(&b->wg);
}

TEST_G(sem, large_request_not_starved)
{
    static struct big b;
    ASSERT_OK(goc_sem_init(&b.s, 4));
    goc_wg_add(&b.wg, 6);
    for (int i = 0; i < 6; i++)
        ASSERT_OK(goc_go(small_stream, &b));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT_OK(goc_sem_acquire(&b.s, 4, NULL)); /* gets in despite them */
    ASSERT_EQ(goc_sem_held(&b.s), 4);
    ASSERT_OK(goc_sem_release(&b.s, 4));
    atomic_store(&b.stop, 1);
    goc_wg_wait(&b.wg, NULL);
}

struct queued {
    goc_sem *s;
    int64_t n;
    goc_ctx *ctx;
    int rc;
    goc_wg done;
};

static void acquire_fn(void *arg)
{
    struct queued *q = arg;
    q->rc = goc_sem_acquire(q->s, q->n, q->ctx);
    goc_wg_done(&q->done);
}

TEST_G(sem, cancelled_front_lets_others_in)
{
    goc_sem s;
    ASSERT_OK(goc_sem_init(&s, 4));
    ASSERT_OK(goc_sem_acquire(&s, 3, NULL)); /* 1 free */
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    struct queued front = { &s, 3, ctx, 99, GOC_WG_INIT };
    struct queued behind = { &s, 1, NULL, 99, GOC_WG_INIT };
    goc_wg_add(&front.done, 1);
    goc_wg_add(&behind.done, 1);
    ASSERT_OK(goc_go(acquire_fn, &front));
    wait_waiters(&s, 1);
    ASSERT_OK(goc_go(acquire_fn, &behind)); /* fits, but queues behind */
    wait_waiters(&s, 2);
    ASSERT_EQ(behind.rc, 99);
    goc_ctx_cancel(ctx); /* the front leaves: behind now gets its 1 */
    goc_wg_wait(&front.done, NULL);
    goc_wg_wait(&behind.done, NULL);
    ASSERT_EQ(front.rc, -ECANCELED);
    ASSERT_OK(behind.rc);
    ASSERT_EQ(goc_sem_held(&s), 4);
    ASSERT_OK(goc_sem_release(&s, 4));
    /* Done at entry: fails even with weight free. */
    ASSERT_EQ(goc_sem_acquire(&s, 1, ctx), -ECANCELED);
    ASSERT_EQ(goc_sem_held(&s), 0);
    goc_ctx_release(ctx);
}

static void *thread_acquire(void *arg)
{
    acquire_fn(arg);
    return NULL;
}

TEST(sem, timeout_from_plain_thread)
{
    goc_sem s;
    ASSERT_OK(goc_sem_init(&s, 1));
    ASSERT_OK(goc_sem_acquire(&s, 1, NULL));
    goc_ctx_local l;
    struct queued q = { &s, 1, NULL, 99, GOC_WG_INIT };
    q.ctx = goc_ctx_init_timeout(&l, NULL, 10 * GOC_MILLISECOND);
    goc_wg_add(&q.done, 1);
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, thread_acquire, &q));
    test_join(t, NULL);
    ASSERT_EQ(q.rc, -ETIMEDOUT);
    goc_ctx_destroy(q.ctx);
    ASSERT_EQ(goc_sem_held(&s), 1);
    ASSERT_OK(goc_sem_release(&s, 1));
}

struct race {
    goc_sem s;
    _Atomic long granted, cancelled;
    goc_wg wg;
};

/* Acquire with tiny deadlines while others release: every outcome must
 * leave the weight accounted for exactly. */
static void racer(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 2000; i++) {
        goc_ctx_local l;
        goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, (i % 7) * 1000);
        int rc = goc_sem_acquire(&r->s, 1 + i % 2, ctx);
        goc_ctx_destroy(ctx);
        if (rc == 0) {
            atomic_fetch_add(&r->granted, 1);
            goc_yield();
            ASSERT_OK(goc_sem_release(&r->s, 1 + i % 2));
        } else {
            ASSERT(rc == -ETIMEDOUT);
            atomic_fetch_add(&r->cancelled, 1);
        }
    }
    goc_wg_done(&r->wg);
}

TEST_G(sem, cancellation_racing_grants_keeps_count)
{
    static struct race r;
    ASSERT_OK(goc_sem_init(&r.s, 3));
    goc_wg_add(&r.wg, 8);
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_go(racer, &r));
    goc_wg_wait(&r.wg, NULL);
    ASSERT_EQ(goc_sem_held(&r.s), 0);
    ASSERT_EQ(atomic_load(&r.granted) + atomic_load(&r.cancelled), 8 * 2000);
}

/* goc_sem_available() is size minus held. */
TEST(sem, available_is_size_minus_held)
{
    goc_sem s;
    ASSERT_OK(goc_sem_init(&s, 5));
    ASSERT_EQ(goc_sem_available(&s), 5);
    ASSERT_OK(goc_sem_acquire(&s, 3, NULL));
    ASSERT_EQ(goc_sem_available(&s), 2);
    ASSERT_OK(goc_sem_release(&s, 3));
    ASSERT_EQ(goc_sem_available(&s), 5);
}
