/* SPDX-License-Identifier: MIT */
/* Tests of goc_mutex. */
#include "test.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

struct counter {
    goc_mutex mu;
    long value;
    long per;
    _Atomic int inside;
    goc_wg wg;
};

static void add_many(struct counter *c)
{
    for (long i = 0; i < c->per; i++) {
        ASSERT_OK(goc_mutex_lock(&c->mu, NULL));
        ASSERT_EQ(atomic_fetch_add(&c->inside, 1), 0); /* alone inside */
        c->value++;
        atomic_fetch_sub(&c->inside, 1);
        ASSERT_OK(goc_mutex_unlock(&c->mu));
        if (i % 1000 == 0)
            goc_yield();
    }
}

static void add_g(void *arg)
{
    add_many(arg);
    goc_wg_done(&((struct counter *)arg)->wg);
}

static void *add_t(void *arg)
{
    add_many(arg);
    goc_wg_done(&((struct counter *)arg)->wg);
    return NULL;
}

TEST_G(mutex, exact_counter_from_goroutines_and_threads)
{
    static struct counter c = { .mu = GOC_MUTEX_INIT };
    c.per = test_scale(100000);
    goc_wg_add(&c.wg, 10);
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_go(add_g, &c));
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, add_t, &c));
    goc_wg_wait(&c.wg, NULL);
    for (int i = 0; i < 2; i++)
        test_join(t[i], NULL);
    ASSERT_EQ(c.value, 10 * c.per);
}

TEST(mutex, misuse_and_try_lock)
{
    goc_mutex mu = GOC_MUTEX_INIT;
    ASSERT_EQ(goc_mutex_unlock(&mu), GOC_EMISUSE);
    ASSERT_OK(goc_mutex_try_lock(&mu));
    ASSERT_EQ(goc_mutex_try_lock(&mu), -EAGAIN);
    ASSERT_OK(goc_mutex_unlock(&mu));
    ASSERT_EQ(goc_mutex_unlock(&mu), GOC_EMISUSE); /* nothing changed */
    ASSERT_OK(goc_mutex_lock(&mu, NULL));
    ASSERT_OK(goc_mutex_unlock(&mu));
}

TEST_G(mutex, timeout_and_cancel)
{
    goc_mutex mu = GOC_MUTEX_INIT;
    ASSERT_OK(goc_mutex_lock(&mu, NULL));
    goc_ctx_local l;
    int64_t t0 = goc_now();
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 10 * GOC_MILLISECOND);
    ASSERT_EQ(goc_mutex_lock(&mu, ctx), -ETIMEDOUT);
    ASSERT_GE(goc_now() - t0, 10 * GOC_MILLISECOND);
    goc_ctx_destroy(ctx);
    goc_ctx *c2;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c2));
    test_cancel_after(c2, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_mutex_lock(&mu, c2), -ECANCELED);
    /* Cancelled at entry: fails even though the mutex is free. */
    ASSERT_OK(goc_mutex_unlock(&mu));
    ASSERT_EQ(goc_mutex_lock(&mu, c2), -ECANCELED);
    goc_ctx_release(c2);
    /* The cancelled waiters left nothing behind. */
    ASSERT_OK(goc_mutex_try_lock(&mu));
    ASSERT_OK(goc_mutex_unlock(&mu));
}

struct handoff {
    goc_mutex mu;
    _Atomic int stop;
    _Atomic long hog_rounds;
    long rounds_when_waiter_got_it;
    goc_wg wg;
};

/* Takes and releases the lock in a tight loop, never parking. */
static void hog(void *arg)
{
    struct handoff *h = arg;
    while (!atomic_load(&h->stop)) {
        goc_mutex_lock(&h->mu, NULL);
        for (volatile int i = 0; i < 200; i++)
            ;
        atomic_fetch_add(&h->hog_rounds, 1);
        goc_mutex_unlock(&h->mu);
    }
    goc_wg_done(&h->wg);
}

static void *thread_waiter(void *arg)
{
    struct handoff *h = arg;
    goc_mutex_lock(&h->mu, NULL);
    h->rounds_when_waiter_got_it = atomic_load(&h->hog_rounds);
    goc_mutex_unlock(&h->mu);
    return NULL;
}

TEST_G(mutex, starving_waiter_gets_the_lock)
{
    if (goc_maxprocs() < 2) {
        /* The hogs never yield: with one P, once the thread is gone, the
         * goroutine that would stop them never runs again. */
        printf("# skipped with one P\n");
        return;
    }
    static struct handoff h = { .mu = GOC_MUTEX_INIT };
    goc_wg_add(&h.wg, 2);
    ASSERT_OK(goc_go(hog, &h));
    ASSERT_OK(goc_go(hog, &h));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    /* A plain thread competing with two hogs: starvation mode hands it
     * the lock once it has waited 1 ms, whatever the hogs do. */
    for (int i = 0; i < 20; i++) {
        pthread_t t;
        ASSERT_OK(pthread_create(&t, NULL, thread_waiter, &h));
        test_join(t, NULL);
    }
    atomic_store(&h.stop, 1);
    goc_wg_wait(&h.wg, NULL);
    ASSERT_GT(atomic_load(&h.hog_rounds), 0);
}

/* ---- two unlocks of one lock at once ----------------------------------- */

static goc_mutex race_mu = GOC_MUTEX_INIT;
static _Atomic int race_round, race_done;
static int race_rc[2];
static int64_t race_rounds;

/* Spin until *word is want; yield now and then (valgrind runs one thread
 * at a time). */
static void spin_until(_Atomic int *word, int want)
{
    for (int k = 1; atomic_load_explicit(word, memory_order_acquire) != want;
         k++)
        if (k % 1000 == 0)
            sched_yield();
}

static void *unlock_each_round(void *arg)
{
    int id = (int)(intptr_t)arg;
    for (int r = 1; r <= race_rounds; r++) {
        spin_until(&race_round, r);
        race_rc[id] = goc_mutex_unlock(&race_mu);
        atomic_fetch_add(&race_done, 1);
    }
    return NULL;
}

/* Both of two unlocks racing to release one lock returned 0: the loser of
 * the fast path's CAS went on to the slow path, which did not look at
 * LOCKED again (and with a waiter queued, or a new owner, would release
 * a lock that was not its to release). */
TEST(mutex, racing_unlocks_of_one_lock_report_the_second_as_misuse)
{
    race_rounds = test_scale(20000);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, unlock_each_round,
                                 (void *)(intptr_t)i));
    int both = 0;
    for (int r = 1; r <= race_rounds; r++) {
        ASSERT_OK(goc_mutex_try_lock(&race_mu));
        atomic_store(&race_done, 0);
        atomic_store_explicit(&race_round, r, memory_order_release);
        /* Yield: the two unlockers need both CPUs of a small machine. */
        while (atomic_load(&race_done) != 2)
            sched_yield();
        ASSERT(race_rc[0] == 0 || race_rc[0] == GOC_EMISUSE);
        ASSERT(race_rc[1] == 0 || race_rc[1] == GOC_EMISUSE);
        ASSERT(race_rc[0] == 0 || race_rc[1] == 0); /* one released it */
        both += race_rc[0] == 0 && race_rc[1] == 0;
        ASSERT_EQ(goc_mutex_unlock(&race_mu), GOC_EMISUSE);
    }
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ASSERT_EQ(both, 0);
}
