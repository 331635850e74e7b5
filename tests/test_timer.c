/* SPDX-License-Identifier: MIT */
/* Tests of sleeping and of the timer wheels. */
#include "test.h"
#include "../src/runtime/runtime.h"

#include <pthread.h>
#include <stdatomic.h>

TEST_G(timer, sleep_never_early)
{
    int64_t durations[] = { 1,      1000,    50000,   65536,
                            100000, 1000000, 3000000, 20000000 };
    for (size_t i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
        int64_t t0 = goc_now();
        ASSERT_OK(goc_sleep(durations[i], NULL));
        ASSERT_GE(goc_now() - t0, durations[i]);
    }
    int64_t t0 = goc_now();
    ASSERT_OK(goc_sleep(0, NULL));
    ASSERT_OK(goc_sleep(-5, NULL));
    ASSERT_LT(goc_now() - t0, GOC_SECOND);
}

struct order {
    _Atomic int next;
    int woke[16];
    int64_t late[16];
    goc_wg wg;
};

struct sleeper {
    struct order *o;
    int index;
    int64_t deadline;
};

static void sleeper_fn(void *arg)
{
    struct sleeper *s = arg;
    goc_sleep(s->deadline - goc_now(), NULL);
    int64_t now = goc_now();
    ASSERT_GE(now, s->deadline);
    int slot = atomic_fetch_add(&s->o->next, 1);
    s->o->woke[slot] = s->index;
    s->o->late[slot] = now - s->deadline;
    goc_wg_done(&s->o->wg);
}

TEST_G(timer, sleeps_wake_in_deadline_order)
{
    static struct order o;
    static struct sleeper s[16];
    /* Deadlines 20 ms apart (50 ms under valgrind, which runs one thread
     * at a time): a woken goroutine on a loaded machine can wait a few
     * milliseconds for a thread, and must not overtake the next one. */
    int64_t gap = (test_instrumented() ? 50 : 20) * GOC_MILLISECOND;
    int64_t base = goc_now() + 20 * GOC_MILLISECOND;
    goc_wg_add(&o.wg, 16);
    /* Spawned in scrambled order. */
    for (int i = 0; i < 16; i++) {
        int k = (i * 7) % 16;
        s[k] = (struct sleeper){ &o, k, base + k * gap };
        ASSERT_OK(goc_go(sleeper_fn, &s[k]));
    }
    goc_wg_wait(&o.wg, NULL);
    for (int i = 0; i < 16; i++)
        ASSERT_EQ(o.woke[i], i);
}

struct many {
    goc_wg wg;
    _Atomic int64_t early;
};

static void short_sleeper(void *arg)
{
    struct many *m = arg;
    int64_t d = (goc_id() % 10 + 1) * GOC_MILLISECOND;
    int64_t t0 = goc_now();
    goc_sleep(d, NULL);
    if (goc_now() - t0 < d)
        atomic_fetch_add(&m->early, 1);
    goc_wg_done(&m->wg);
}

TEST_G(timer, many_sleepers)
{
    static struct many m;
    int64_t n = test_scale(100000);
    goc_wg_add(&m.wg, n);
    for (int64_t i = 0; i < n; i++)
        ASSERT_OK(goc_go(short_sleeper, &m));
    goc_wg_wait(&m.wg, NULL);
    ASSERT_EQ(atomic_load(&m.early), 0);
}

static void *thread_sleeper(void *arg)
{
    int64_t t0 = goc_now();
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    *(int64_t *)arg = goc_now() - t0;
    return NULL;
}

TEST(timer, sleep_from_plain_thread)
{
    int64_t took = 0;
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, thread_sleeper, &took));
    pthread_join(t, NULL);
    ASSERT_GE(took, 5 * GOC_MILLISECOND);
    /* Also from the main thread, before and after the runtime starts. */
    thread_sleeper(&took);
    ASSERT_GE(took, 5 * GOC_MILLISECOND);
}

/* ---- the wheel, through the internal API ------------------------------- */

struct fire_count {
    _Atomic int fired;
    _Atomic int64_t early;
    int64_t when;
};

static void count_fire(void *arg)
{
    struct fire_count *f = arg;
    if (goc_now() < f->when)
        atomic_fetch_add(&f->early, 1);
    atomic_fetch_add(&f->fired, 1);
}

TEST_G(timer, stopped_timers_never_fire)
{
    enum { N = 2000 };
    static struct goc__timer t[N];
    static struct fire_count f[N];
    /* Far enough out that arming all of them, even under a sanitizer,
     * finishes before the first deadline. */
    int64_t now = goc_now() + 500 * GOC_MILLISECOND;
    for (int i = 0; i < N; i++) {
        f[i].when = now + (i % 50 + 1) * GOC_MILLISECOND;
        goc__timer_start(&t[i], f[i].when, count_fire, &f[i]);
    }
    /* Stop every other one, then let all deadlines pass. */
    for (int i = 0; i < N; i += 2)
        ASSERT(goc__timer_stop(&t[i]));
    ASSERT_LT(goc_now(), now);
    goc_sleep(now - goc_now() + 80 * GOC_MILLISECOND, NULL);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(atomic_load(&f[i].fired), i % 2);
        ASSERT_EQ(atomic_load(&f[i].early), 0);
        ASSERT(!goc__timer_stop(&t[i])); /* fired or stopped: idempotent */
    }
}

TEST_G(timer, random_deadlines_fire_on_time)
{
    enum { N = 3000 };
    static struct goc__timer t[N];
    static struct fire_count f[N];
    uint32_t seed = 12345;
    int64_t now = goc_now();
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245 + 12345;
        /* 0 to ~300 ms: crosses levels 0, 1 and 2 of the wheel. */
        f[i].when = now + (int64_t)(seed % 300000) * 1000;
        goc__timer_start(&t[i], f[i].when, count_fire, &f[i]);
    }
    goc_sleep(400 * GOC_MILLISECOND, NULL);
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(atomic_load(&f[i].fired), 1);
        ASSERT_EQ(atomic_load(&f[i].early), 0);
    }
}

TEST_G(timer, far_timer_can_be_stopped)
{
    static struct goc__timer far, farther;
    static struct fire_count f;
    int64_t day = 24 * 3600 * GOC_SECOND;
    goc__timer_start(&far, goc_now() + 100 * day, count_fire, &f);
    goc__timer_start(&farther, INT64_MAX / 2, count_fire, &f);
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT(goc__timer_stop(&far));
    ASSERT(goc__timer_stop(&farther));
    ASSERT(!goc__timer_stop(&far));
    ASSERT_EQ(atomic_load(&f.fired), 0);
}
