/* SPDX-License-Identifier: MIT */
/* Tests of the WaitGroup. */
#include "test.h"
#include "../src/internal/alloc.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

struct counted {
    goc_wg wg;
    _Atomic int64_t ran;
};

static void count_and_done(void *arg)
{
    struct counted *c = arg;
    goc_sleep((goc_id() % 3) * GOC_MILLISECOND, NULL);
    atomic_fetch_add(&c->ran, 1);
    goc_wg_done(&c->wg);
}

TEST_G(wg, wait_for_all)
{
    struct counted c = { .wg = GOC_WG_INIT };
    int64_t n = test_scale(10000);
    ASSERT_OK(goc_wg_add(&c.wg, n));
    for (int64_t i = 0; i < n; i++)
        ASSERT_OK(goc_go(count_and_done, &c));
    ASSERT_OK(goc_wg_wait(&c.wg, NULL));
    ASSERT_EQ(atomic_load(&c.ran), n);
}

TEST_G(wg, negative_counter_is_misuse)
{
    goc_wg wg = GOC_WG_INIT;
    ASSERT_EQ(goc_wg_done(&wg), GOC_EMISUSE);
    ASSERT_EQ(goc_wg_add(&wg, -3), GOC_EMISUSE);
    ASSERT_OK(goc_wg_add(&wg, 2));
    ASSERT_EQ(goc_wg_add(&wg, -3), GOC_EMISUSE);
    /* Nothing changed: exactly two Done calls bring it to zero. */
    ASSERT_OK(goc_wg_done(&wg));
    ASSERT_OK(goc_wg_done(&wg));
    ASSERT_EQ(goc_wg_done(&wg), GOC_EMISUSE);
    ASSERT_OK(goc_wg_wait(&wg, NULL));
}

TEST_G(wg, overflow_is_rejected)
{
    goc_wg wg;
    goc_wg_init(&wg);
    ASSERT_OK(goc_wg_add(&wg, INT32_MAX));
    ASSERT_EQ(goc_wg_add(&wg, 1), -EOVERFLOW);
    ASSERT_OK(goc_wg_add(&wg, -(int64_t)INT32_MAX));
    ASSERT_OK(goc_wg_wait(&wg, NULL));
    /* A delta so large that counter + delta would overflow int64. */
    ASSERT_OK(goc_wg_add(&wg, 1));
    ASSERT_EQ(goc_wg_add(&wg, INT64_MAX), -EOVERFLOW);
    ASSERT_OK(goc_wg_done(&wg));
    ASSERT_OK(goc_wg_wait(&wg, NULL));
}

static void *thread_waiter(void *arg)
{
    goc_wg_wait(arg, NULL);
    return NULL;
}

TEST(wg, wait_from_plain_thread)
{
    struct counted c = { .wg = GOC_WG_INIT };
    ASSERT_OK(goc_wg_add(&c.wg, 100));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, thread_waiter, &c.wg));
    for (int i = 0; i < 100; i++)
        ASSERT_OK(goc_go(count_and_done, &c));
    ASSERT_OK(goc_wg_wait(&c.wg, NULL));
    for (int i = 0; i < 4; i++)
        test_join(t[i], NULL);
    ASSERT_EQ(atomic_load(&c.ran), 100);
    test_no_leaks();
}

struct waiters {
    goc_wg gate, done;
    _Atomic int released;
};

static void gate_waiter(void *arg)
{
    struct waiters *w = arg;
    goc_wg_wait(&w->gate, NULL);
    atomic_fetch_add(&w->released, 1);
    goc_wg_done(&w->done);
}

TEST_G(wg, many_waiters_released)
{
    struct waiters w = { GOC_WG_INIT, GOC_WG_INIT, 0 };
    int n = (int)test_scale(5000);
    goc_wg_add(&w.gate, 1);
    goc_wg_add(&w.done, n);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(gate_waiter, &w));
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&w.released), 0);
    ASSERT_OK(goc_wg_done(&w.gate));
    goc_wg_wait(&w.done, NULL);
    ASSERT_EQ(atomic_load(&w.released), n);
}

TEST_G(wg, wait_on_zero_returns)
{
    goc_wg wg = GOC_WG_INIT;
    ASSERT_OK(goc_wg_wait(&wg, NULL));
    /* Reuse after reaching zero. */
    for (int round = 0; round < 3; round++) {
        struct counted c = { .wg = GOC_WG_INIT };
        goc_wg_add(&c.wg, 10);
        for (int i = 0; i < 10; i++)
            goc_go(count_and_done, &c);
        ASSERT_OK(goc_wg_wait(&c.wg, NULL));
        ASSERT_EQ(atomic_load(&c.ran), 10);
    }
}

/*
 * A group is reused (Add) while the waiters of its last round are still
 * being released. A Wait that arrived during that release, when the
 * counter was zero, must return: it used to wait for the release to end
 * by waiting for the whole state word to be zero, so the next round's
 * Add kept it spinning until that round ended, its context ignored.
 */
struct wake_race {
    goc_wg wg, parked;
    _Atomic bool returned;
    _Atomic int rc;
};

static uint64_t wg_state(goc_wg *wg)
{
    /* White box: the state word (counter << 32 | waiters) comes first. */
    return __atomic_load_n(&wg->opaque_[0], __ATOMIC_ACQUIRE);
}

/* Spins until the counter is zero with waiters still being released
 * (true), or until the release is over (false). */
static bool catch_the_wake(goc_wg *wg)
{
    int64_t end = goc_now() + 2 * GOC_SECOND;
    for (;;) {
        uint64_t s = wg_state(wg);
        if ((uint32_t)s == 0)
            return false; /* over (and maybe the next round begun) */
        if (s >> 32 == 0)
            return true;
        if (goc_now() > end)
            return false;
    }
}

static void *late_waiter(void *arg)
{
    struct wake_race *r = arg;
    catch_the_wake(&r->wg);
    goc_ctx *ctx;
    goc_ctx_with_timeout(NULL, 20 * GOC_MILLISECOND, &ctx);
    atomic_store(&r->rc, goc_wg_wait(&r->wg, ctx));
    atomic_store(&r->returned, true);
    goc_ctx_release(ctx);
    return NULL;
}

static void *next_round(void *arg)
{
    struct wake_race *r = arg;
    catch_the_wake(&r->wg);
    goc_wg_add(&r->wg, 1); /* the next round begins */
    return NULL;
}

static void parked_waiter(void *arg)
{
    struct wake_race *r = arg;
    goc_wg_wait(&r->wg, NULL);
    goc_wg_done(&r->parked);
}

TEST_G(wg, add_during_a_wake_does_not_hold_a_late_waiter)
{
    int rounds = test_instrumented() ? 5 : 30;
    int64_t n = test_scale(2000);
    for (int round = 0; round < rounds; round++) {
        struct wake_race r = { GOC_WG_INIT, GOC_WG_INIT, false, 99 };
        ASSERT_OK(goc_wg_add(&r.wg, 1));
        ASSERT_OK(goc_wg_add(&r.parked, n));
        for (int64_t i = 0; i < n; i++)
            ASSERT_OK(goc_go(parked_waiter, &r));
        for (int i = 0; i < 5000 && (uint32_t)wg_state(&r.wg) != n; i++)
            goc_sleep(GOC_MILLISECOND, NULL);
        ASSERT_EQ((uint32_t)wg_state(&r.wg), n); /* all parked */
        pthread_t late, adder;
        ASSERT_OK(pthread_create(&late, NULL, late_waiter, &r));
        ASSERT_OK(pthread_create(&adder, NULL, next_round, &r));
        goc_sleep(GOC_MILLISECOND, NULL); /* both spinning */
        ASSERT_OK(goc_wg_done(&r.wg));
        for (int i = 0; i < 2000 && !atomic_load(&r.returned); i++)
            goc_sleep(GOC_MILLISECOND, NULL);
        ASSERT(atomic_load(&r.returned));
        int rc = atomic_load(&r.rc);
        ASSERT(rc == 0 || rc == -ETIMEDOUT);
        test_join(late, NULL);
        test_join(adder, NULL);
        ASSERT_OK(goc_wg_wait(&r.parked, NULL));
        ASSERT_OK(goc_wg_done(&r.wg)); /* ends the next round */
        ASSERT_OK(goc_wg_wait(&r.wg, NULL));
    }
}

/*
 * White box: struct wg { uint64_t state; goc__lock lock; ... }. Holding
 * the lock word from the test stalls a thread at its next acquire, as a
 * preemption would; letting go of it without a wake keeps that thread
 * stalled until the test wakes it.
 */
static _Atomic uint32_t *wg_lockword(goc_wg *wg)
{
    return (_Atomic uint32_t *)&wg->opaque_[1];
}

static void wg_hold_lock(goc_wg *wg)
{
    /* A waiter seen in the state may not have let go of the lock yet
     * (slow under emulation): take it once it has. */
    for (int i = 0; i < 5000; i++) {
        uint32_t zero = 0;
        if (atomic_compare_exchange_strong(wg_lockword(wg), &zero, 1))
            return;
        usleep(1000);
    }
    ASSERT_FAIL("%s", "the wait group's lock was never free");
}

/* Wait until another thread sleeps on the held lock, then let go of it
 * without waking that thread. Not under valgrind: it runs one thread at
 * a time, and may take longer than this to get that one into its system
 * call, which then finds the lock free and the test waits for ever. */
static void wg_stall_the_next_locker(goc_wg *wg)
{
    while (atomic_load(wg_lockword(wg)) != 2)
        usleep(1000);
    usleep(50000); /* it is on the futex now */
    atomic_store(wg_lockword(wg), 0);
}

static void wg_resume_the_stalled(goc_wg *wg)
{
    syscall(SYS_futex, wg_lockword(wg), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1,
            NULL, NULL, 0);
}

struct rounds {
    goc_wg wg;
    goc_ctx *ctx;
    _Atomic int rc;
    _Atomic bool returned;
};

static void *round_waiter(void *arg)
{
    struct rounds *r = arg;
    goc_wg_wait(&r->wg, NULL);
    return NULL;
}

static void *round_done(void *arg)
{
    goc_wg_done(&((struct rounds *)arg)->wg);
    return NULL;
}

static void *round_timed_waiter(void *arg)
{
    struct rounds *r = arg;
    atomic_store(&r->rc, goc_wg_wait(&r->wg, r->ctx));
    atomic_store(&r->returned, true);
    return NULL;
}

/*
 * The wake of a round that reached zero took every waiter on the list
 * when it got the lock, after the zeroing: a waiter that joined between
 * the two, once an Add had begun the next round, was released with the
 * counter at 1. The zeroing and the taking of the list are one step now.
 */
TEST(wg, a_waiter_of_the_next_round_stays_until_its_round_ends)
{
    if (test_under_valgrind()) {
        printf("# skipped under valgrind (see wg_stall_the_next_locker)\n");
        return;
    }
    struct rounds r = { .wg = GOC_WG_INIT, .rc = 99 };
    ASSERT_OK(goc_ctx_with_timeout(NULL, 300 * GOC_MILLISECOND, &r.ctx));
    ASSERT_OK(goc_wg_add(&r.wg, 1));
    pthread_t w1, t0, t2;
    ASSERT_OK(pthread_create(&w1, NULL, round_waiter, &r));
    while ((uint32_t)wg_state(&r.wg) != 1)
        usleep(1000);
    wg_hold_lock(&r.wg);
    ASSERT_OK(pthread_create(&t0, NULL, round_done, &r)); /* stalls */
    wg_stall_the_next_locker(&r.wg);
    ASSERT_OK(goc_wg_add(&r.wg, 1));
    ASSERT_OK(pthread_create(&t2, NULL, round_timed_waiter, &r));
    while ((uint32_t)wg_state(&r.wg) != 2)
        usleep(1000);
    wg_resume_the_stalled(&r.wg);
    test_join(t0, NULL);
    test_join(t2, NULL);
    /* One Done against two Adds: the counter never reached zero while
     * the second waiter waited. */
    ASSERT_EQ(atomic_load(&r.rc), -ETIMEDOUT);
    ASSERT_OK(goc_wg_done(&r.wg));
    test_join(w1, NULL);
    ASSERT_EQ(wg_state(&r.wg), 0);
    goc_ctx_release(r.ctx);
}

static __attribute__((noinline)) void scribble_stack(void)
{
    volatile char junk[16384];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = 0x41;
}

static void *cancelled_waiter(void *arg)
{
    struct rounds *r = arg;
    atomic_store(&r->rc, goc_wg_wait(&r->wg, r->ctx));
    atomic_store(&r->returned, true);
    scribble_stack(); /* reuse the frame that held the wait record */
    return NULL;
}

/*
 * A waiter whose context ended once the counter was zero, but before the
 * wake took the list, stayed linked and returned as soon as an Add began
 * the next round: the wake then unlinked a record on a dead stack.
 */
TEST(wg, a_cancelled_waiter_is_never_left_on_the_list)
{
    if (test_under_valgrind()) {
        printf("# skipped under valgrind (see wg_stall_the_next_locker)\n");
        return;
    }
    struct rounds r = { .wg = GOC_WG_INIT, .rc = 99 };
    ASSERT_OK(goc_ctx_with_cancel(NULL, &r.ctx));
    ASSERT_OK(goc_wg_add(&r.wg, 1));
    pthread_t w, t0;
    ASSERT_OK(pthread_create(&w, NULL, cancelled_waiter, &r));
    while ((uint32_t)wg_state(&r.wg) != 1)
        usleep(1000);
    wg_hold_lock(&r.wg);
    ASSERT_OK(pthread_create(&t0, NULL, round_done, &r)); /* stalls */
    wg_stall_the_next_locker(&r.wg);
    goc_ctx_cancel(r.ctx);
    usleep(50000);
    ASSERT_OK(goc_wg_add(&r.wg, 1));
    for (int i = 0; i < 5000 && !atomic_load(&r.returned); i++)
        usleep(1000);
    ASSERT(atomic_load(&r.returned));
    test_join(w, NULL);
    ASSERT_EQ(atomic_load(&r.rc), -ECANCELED); /* the counter was 1 */
    ASSERT(r.wg.opaque_[2] == 0); /* struct wg's list head: empty */
    wg_resume_the_stalled(&r.wg);
    test_join(t0, NULL);
    ASSERT_OK(goc_wg_done(&r.wg));
    ASSERT_EQ(wg_state(&r.wg), 0);
    goc_ctx_release(r.ctx);
}

static void bump(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

struct wg_go_run {
    goc_wg wg;
    _Atomic int ran;
};

static void *wg_go_from_thread(void *arg)
{
    struct wg_go_run *r = arg;
    for (int i = 0; i < 100; i++)
        ASSERT_OK(goc_wg_go(&r->wg, bump, (void *)&r->ran));
    return NULL;
}

/* goc_wg_go adds, runs and marks done; from goroutines and threads; a
 * spawn that fails leaves the counter as it was. */
TEST_G(wg, go_adds_runs_and_marks_done)
{
    struct wg_go_run r = { .wg = GOC_WG_INIT };
    ASSERT_EQ(goc_wg_go(NULL, bump, NULL), -EINVAL);
    ASSERT_EQ(goc_wg_go(&r.wg, NULL, NULL), -EINVAL);
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(goc_wg_go(&r.wg, bump, (void *)&r.ran));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, wg_go_from_thread, &r));
    ASSERT_OK(test_join(t, NULL));
    ASSERT_OK(goc_wg_wait(&r.wg, NULL));
    ASSERT_EQ(atomic_load(&r.ran), 1100);
    goc__fault_after(0);
    int rc = goc_wg_go(&r.wg, bump, (void *)&r.ran);
    goc__fault_after(-1);
    ASSERT_EQ(rc, -ENOMEM);
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, GOC_SECOND);
    ASSERT_OK(goc_wg_wait(&r.wg, c)); /* nothing was added */
    goc_ctx_destroy(c);
    ASSERT_EQ(atomic_load(&r.ran), 1100);
}
