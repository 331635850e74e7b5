/* SPDX-License-Identifier: MIT */
/* Tests of sleeping and of the timer wheels. */
#include "test.h"
#include "../src/internal/alloc.h"
#include "../src/runtime/runtime.h"

#include <errno.h>
#include <limits.h>
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
    /* Deadlines 40 ms apart (50 ms under valgrind, which runs one thread
     * at a time): a woken goroutine must not be overtaken by the next one,
     * but it may wait for a thread, and on a loaded 2-CPU machine (the
     * suite runs two tests at once) 20 ms was once not enough. */
    int64_t gap = (test_instrumented() ? 50 : 40) * GOC_MILLISECOND;
    int64_t base = goc_now() + 20 * GOC_MILLISECOND;
    goc_wg_add(&o.wg, 16);
    /* Spawned in scrambled order. */
    for (int i = 0; i < 16; i++) {
        int k = (i * 7) % 16;
        s[k] = (struct sleeper){ &o, k, base + k * gap };
        ASSERT_OK(goc_go(sleeper_fn, &s[k]));
    }
    goc_wg_wait(&o.wg, NULL);
    bool in_order = true;
    for (int i = 0; i < 16; i++)
        in_order = in_order && o.woke[i] == i;
    if (!in_order) /* how late each one was, to tell a stall from a bug */
        for (int i = 0; i < 16; i++)
            printf("# woke %d: sleeper %d, %.2f ms late\n", i, o.woke[i],
                   (double)o.late[i] / 1e6);
    ASSERT(in_order);
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
    test_join(t, NULL);
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

/* ---- a private wheel, driven by hand ---------------------------------- *
 *
 * These tests arm timers on a wheel no P owns and call goc__wheel_run with
 * a "now" of their choosing, so what fires when is exact. A tick is
 * 2^16 ns; deadlines below are whole ticks.
 */

#define TICK(n) ((int64_t)(n) << 16)

static void bump(void *arg)
{
    (*(int *)arg)++;
}

/* Every timer in the slot's array is where its index says. */
static void check_slot(const struct goc__wheel_slot *sl)
{
    ASSERT_LE(sl->n, sl->cap);
    for (uint32_t i = 0; i < sl->n; i++)
        ASSERT_EQ(sl->v[i]->idx, i);
    for (const struct goc__timer *t = sl->spill; t; t = t->next)
        ASSERT_EQ(t->idx, GOC__TIMER_SPILLED);
}

static const struct goc__wheel_slot *slot_of(const struct goc__wheel *w,
                                             const struct goc__timer *t)
{
    ASSERT_LT(t->level, GOC__WHEEL_LEVELS);
    return &w->slots[t->level][t->slot];
}

/* A tick a few ticks ahead of the wheel, and on level 0. */
static uint64_t level0_tick(const struct goc__wheel *w)
{
    uint64_t tick = w->elapsed + 3;
    if ((tick >> 6) != (w->elapsed >> 6))
        tick = w->elapsed; /* would cross into level 1: due at once */
    return tick;
}

/* A fresh wheel with n timers in one level-0 slot; returns their tick. */
static uint64_t arm_one_slot(struct goc__wheel *w,
                             struct goc__timer *t,
                             int *fired,
                             int n)
{
    goc__wheel_init(w);
    uint64_t tick = level0_tick(w);
    for (int i = 0; i < n; i++)
        goc__wheel_start(w, &t[i], TICK(tick), bump, &fired[i]);
    return tick;
}

TEST_G(timer, slot_cancels_from_the_middle)
{
    enum { N = 1500 };
    static struct goc__wheel w;
    static struct goc__timer t[N];
    static int fired[N];
    uint64_t tick = arm_one_slot(&w, t, fired, N);
    const struct goc__wheel_slot *sl = slot_of(&w, &t[0]);
    ASSERT_EQ(sl->n, N);
    /* Cancel from the middle, the front and the back; each cancel moves
     * the last entry into the hole. */
    int stopped = 0;
    for (int i = 0; i < N; i++) {
        if (i % 3 == 1 || i == 0 || i == N - 1 || (i > 700 && i < 720)) {
            ASSERT(goc__timer_stop(&t[i]));
            ASSERT(!goc__timer_stop(&t[i]));
            stopped++;
            if (i % 97 == 0)
                check_slot(sl);
        }
    }
    check_slot(sl);
    ASSERT_EQ(sl->n, N - stopped);
    ASSERT_EQ(atomic_load(&w.count), N - stopped);
    /* Not due one tick early; all due at their tick. */
    ASSERT_EQ(goc__wheel_run(&w, TICK(tick) - 1, INT_MAX), 0);
    ASSERT_EQ(goc__wheel_run(&w, TICK(tick), INT_MAX), N - stopped);
    for (int i = 0; i < N; i++) {
        bool was_stopped =
            i % 3 == 1 || i == 0 || i == N - 1 || (i > 700 && i < 720);
        ASSERT_EQ(fired[i], was_stopped ? 0 : 1);
        ASSERT(!goc__timer_stop(&t[i]));
    }
    ASSERT_EQ(atomic_load(&w.count), 0);
    ASSERT_EQ(atomic_load(&w.next_when), INT64_MAX);
    ASSERT_OK(goc__wheel_destroy(&w));
}

TEST_G(timer, slot_arrays_grow_and_shrink)
{
    static struct goc__wheel w;
    static struct goc__timer t[40000];
    static int fired[40000];
    int n = (int)test_scale(40000);
    goc__wheel_init(&w);
    uint64_t tick = level0_tick(&w);
    /* A slot that holds a few timers keeps its array once empty. */
    for (int i = 0; i < 5; i++)
        goc__wheel_start(&w, &t[i], TICK(tick), bump, &fired[i]);
    const struct goc__wheel_slot *sl = slot_of(&w, &t[0]);
    struct goc__timer **small = sl->v;
    ASSERT(small != NULL);
    for (int i = 0; i < 5; i++)
        ASSERT(goc__timer_stop(&t[i]));
    ASSERT_EQ(sl->n, 0);
    ASSERT(sl->v == small);
    ASSERT_EQ(w.occupied[0], 0);
    /* Tens of thousands in one slot, cancelled: the big array goes. */
    for (int i = 0; i < n; i++)
        goc__wheel_start(&w, &t[i], TICK(tick), bump, &fired[i]);
    ASSERT_EQ(sl->n, n);
    ASSERT_GE(sl->cap, n);
    check_slot(sl);
    ASSERT_EQ(goc__wheel_destroy(&w), -EBUSY);
    for (int i = n - 1; i >= 0; i -= 2)
        ASSERT(goc__timer_stop(&t[i]));
    check_slot(sl);
    for (int i = n - 2; i >= 0; i -= 2)
        ASSERT(goc__timer_stop(&t[i]));
    ASSERT_EQ(sl->n, 0);
    ASSERT(sl->v == NULL);
    ASSERT_EQ(sl->cap, 0);
    /* And again, this time all firing: the drained slot lets go too. */
    for (int i = 0; i < n; i++)
        goc__wheel_start(&w, &t[i], TICK(tick), bump, &fired[i]);
    ASSERT_EQ(goc__wheel_run(&w, TICK(tick), INT_MAX), n);
    ASSERT(sl->v == NULL);
    for (int i = 0; i < n; i++)
        ASSERT_EQ(fired[i], 1);
    ASSERT_EQ(atomic_load(&w.count), 0);
    ASSERT_OK(goc__wheel_destroy(&w));
}

/* Arm with every allocation failing: the timer still goes in. */
static void start_failing(struct goc__wheel *w,
                          struct goc__timer *t,
                          int64_t when,
                          int *fired)
{
    goc__fault_after(0);
    goc__wheel_start(w, t, when, bump, fired);
    goc__fault_after(-1);
}

TEST_G(timer, arming_survives_allocation_failure)
{
    enum { N = 300 };
    static struct goc__wheel w;
    static struct goc__timer t[N];
    static int fired[N];
    goc__wheel_init(&w);
    uint64_t tick = level0_tick(&w);
    /* Next level-1 boundary but one: level 1 (or 2), due after a cascade
     * into level 0 slots that have no array yet. */
    uint64_t far = ((w.elapsed >> 6) + 2) << 6;
    for (int i = 0; i < N; i++) {
        int64_t when = i % 2 ? TICK(tick) : TICK(far + (uint64_t)i % 40);
        if (i < N / 2)
            start_failing(&w, &t[i], when, &fired[i]);
        else
            goc__wheel_start(&w, &t[i], when, bump, &fired[i]);
    }
    const struct goc__wheel_slot *near = slot_of(&w, &t[1]);
    check_slot(near);
    ASSERT(near->spill != NULL);
    ASSERT_EQ(t[1].idx, GOC__TIMER_SPILLED);
    ASSERT_NE(t[N - 1].idx, GOC__TIMER_SPILLED);
    ASSERT_EQ(atomic_load(&w.count), N);
    /* Cancel spilled and arrayed ones alike. */
    for (int i = 0; i < N; i += 5)
        ASSERT(goc__timer_stop(&t[i]));
    check_slot(near);
    ASSERT_EQ(goc__wheel_run(&w, TICK(tick), INT_MAX), N / 2 - N / 10);
    /* The cascade out of level 1 cannot allocate either: the timers
     * spill into their new slots and still fire, once each. */
    goc__fault_after(0);
    int late = goc__wheel_run(&w, TICK(far + 40), INT_MAX);
    goc__fault_after(-1);
    ASSERT_EQ(late, N / 2 - N / 10);
    for (int i = 0; i < N; i++)
        ASSERT_EQ(fired[i], i % 5 ? 1 : 0);
    ASSERT_EQ(atomic_load(&w.count), 0);
    ASSERT_OK(goc__wheel_destroy(&w));
}

TEST_G(timer, full_batch_leaves_the_rest_due)
{
    enum { N = 1000 };
    static struct goc__wheel w;
    static struct goc__timer t[N];
    static int fired[N];
    uint64_t tick = arm_one_slot(&w, t, fired, N);
    /* More due than max, and more than one internal batch of 64. */
    ASSERT_EQ(goc__wheel_run(&w, TICK(tick), 150), 150);
    ASSERT_EQ(atomic_load(&w.count), N - 150);
    check_slot(slot_of(&w, &t[0]));
    /* The rest is still due now, and published as such. */
    ASSERT_LE(atomic_load(&w.next_when), TICK(tick));
    int stopped = 0;
    for (int i = 0; i < N; i += 7)
        if (goc__timer_stop(&t[i]))
            stopped++;
    ASSERT_EQ(goc__wheel_run(&w, TICK(tick), 1), 1);
    ASSERT_EQ(goc__wheel_run(&w, TICK(tick), INT_MAX), N - 151 - stopped);
    int total = 0;
    for (int i = 0; i < N; i++) {
        ASSERT_LE(fired[i], 1);
        total += fired[i];
    }
    ASSERT_EQ(total, N - stopped);
    ASSERT_EQ(atomic_load(&w.count), 0);
    ASSERT_OK(goc__wheel_destroy(&w));
}

TEST_G(timer, full_batch_above_level_0_is_resumed_first)
{
    enum { DUE = 300, LATER = 40 };
    static struct goc__wheel w;
    static struct goc__timer t[DUE + LATER];
    static int fired[DUE + LATER];
    goc__wheel_init(&w);
    /* A level-1 slot's start tick: timers on it are due when time gets
     * there; others in its range fall to level 0 then. */
    uint64_t start = ((w.elapsed >> 6) + 2) << 6;
    for (int i = 0; i < DUE + LATER; i++) {
        uint64_t tick = i < DUE ? start : start + 5 + (uint64_t)i % 3;
        goc__wheel_start(&w, &t[i], TICK(tick), bump, &fired[i]);
    }
    ASSERT_GT(t[0].level, 0);
    ASSERT_EQ(goc__wheel_run(&w, TICK(start), 100), 100);
    /* The later timers have moved down a level; the due rest must not
     * wait behind them. */
    ASSERT_EQ(atomic_load(&w.next_when), TICK(start));
    ASSERT_EQ(goc__wheel_run(&w, TICK(start), INT_MAX), DUE - 100);
    for (int i = 0; i < DUE + LATER; i++)
        ASSERT_EQ(fired[i], i < DUE ? 1 : 0);
    ASSERT_EQ(atomic_load(&w.next_when), TICK(start + 5));
    ASSERT_EQ(goc__wheel_run(&w, TICK(start + 7), INT_MAX), LATER);
    ASSERT_EQ(atomic_load(&w.count), 0);
    ASSERT_OK(goc__wheel_destroy(&w));
}

struct forever {
    goc_ctx *ctx;
    goc_wg *wg;
};

static void sleep_forever(void *arg)
{
    struct forever *f = arg;
    goc_sleep(INT64_MAX, f->ctx); /* "for ever": until the test ends it */
    goc_wg_done(f->wg);
}

static void spin_200us(void *arg)
{
    (void)arg;
    int64_t end = goc_now() + 200 * GOC_MICROSECOND;
    while (goc_now() < end)
        ;
}

/*
 * Sleeps "for ever" (INT64_MAX) arm timers whose tick rounds up past
 * INT64_MAX; shifted back to a time, it wrapped to INT64_MIN, and an M
 * going idle then slept as the poller for centuries: no timer of the
 * process fired again. Short sleeps alongside must keep their time.
 */
TEST_G(timer, sleep_for_ever_does_not_stop_other_timers)
{
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    goc_wg wg = GOC_WG_INIT;
    enum { N = 1000 };
    static struct forever f[N];
    int64_t worst = 0, n = test_scale(N);
    for (int i = 0; i < n; i++) {
        f[i] = (struct forever){ ctx, &wg };
        goc_wg_add(&wg, 1);
        ASSERT_OK(goc_go(sleep_forever, &f[i]));
        ASSERT_OK(goc_go(spin_200us, NULL));
        int64_t t0 = goc_now();
        goc_sleep(GOC_MILLISECOND, NULL);
        int64_t took = goc_now() - t0;
        worst = took > worst ? took : worst;
        if (took > 2 * GOC_SECOND)
            break;
    }
    goc_ctx_cancel(ctx);
    ASSERT_OK(goc_wg_wait(&wg, NULL));
    goc_ctx_release(ctx);
    ASSERT_LT(worst, 2 * GOC_SECOND);
}

struct deadline_waiter {
    goc_ctx *ctx;
    goc_chan *never;
    _Atomic int rc;
    _Atomic int done;
};

/* A plain thread waiting for a context's deadline. */
static void *wait_for_deadline(void *arg)
{
    struct deadline_waiter *w = arg;
    atomic_store(&w->rc, goc_chan_recv(w->never, NULL, w->ctx));
    atomic_store(&w->done, 1);
    return NULL;
}

static int hog_main(void *arg)
{
    struct deadline_waiter *w = arg;
    /* The deadline's timer goes on our P, which then never switches. */
    ASSERT_OK(goc_ctx_with_timeout(NULL, 5 * GOC_MILLISECOND, &w->ctx));
    ASSERT_OK(goc_chan_new(0, 0, &w->never));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, wait_for_deadline, w));
    int64_t end = goc_now() + 3 * GOC_SECOND;
    while (!atomic_load(&w->done) && goc_now() < end)
        ; /* computes without a goc call */
    int woke = atomic_load(&w->done);
    ASSERT_EQ(woke, 1);
    test_join(t, NULL);
    ASSERT_EQ(atomic_load(&w->rc), -ETIMEDOUT);
    goc_ctx_release(w->ctx);
    goc_chan_release(w->never);
    return 0;
}

/*
 * A P whose goroutine computes without switching does not hold up its
 * timers for ever: sysmon fires the overdue ones, and a plain thread
 * waiting on a deadline there wakes.
 */
TEST(timer, overdue_timers_of_a_busy_p_still_fire)
{
    if (test_under_valgrind()) {
        printf("# skipped under valgrind: one thread at a time\n");
        return;
    }
    static struct deadline_waiter w;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(hog_main, &w));
}

/* What an unsynced timer's owner does once it is woken: the memory goes
 * to someone else (here, a pattern of theirs). */
static void hand_memory_on(void *arg)
{
    memset(arg, 0xa5, sizeof(struct goc__timer));
}

/* A sleeping goroutine's timer fired and readied it, and the wheel then
 * marked the timer's firing over, writing into a G that may have gone to
 * a new goroutine meanwhile. An unsynced timer (a sleep's) is not
 * touched once its function runs. */
TEST_G(timer, unsynced_timer_is_untouched_once_it_fires)
{
    static struct goc__wheel w;
    static struct goc__timer t;
    goc__wheel_init(&w);
    uint64_t tick = level0_tick(&w);
    memset(&t, 0, sizeof(t));
    t.unsynced = true;
    goc__wheel_start(&w, &t, TICK(tick), hand_memory_on, &t);
    ASSERT_EQ(goc__wheel_run(&w, TICK(tick), INT_MAX), 1);
    const unsigned char *b = (const unsigned char *)&t;
    for (size_t i = 0; i < sizeof(t); i++)
        if (b[i] != 0xa5)
            ASSERT_FAIL("byte %zu of the timer written after it fired", i);
    ASSERT_OK(goc__wheel_destroy(&w));
}
