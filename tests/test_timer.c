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

/* ---- public timers and tickers ----------------------------------------- */

TEST_G(timer, channel_timer_fires_once_never_early)
{
    int64_t t0 = goc_now();
    goc_timer *t;
    ASSERT_OK(goc_timer_new(20 * GOC_MILLISECOND, &t));
    int64_t at;
    ASSERT_EQ(goc_chan_recv(goc_timer_chan(t), &at, NULL), 1);
    ASSERT_GE(goc_now() - t0, 20 * GOC_MILLISECOND);
    ASSERT_GE(at - t0, 20 * GOC_MILLISECOND);
    goc_sleep(30 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_chan_try_recv(goc_timer_chan(t), &at), -EAGAIN); /* once */
    ASSERT(!goc_timer_stop(t)); /* fired and received */
    goc_timer_free(t);
    ASSERT_EQ(goc_timer_new(1, NULL), -EINVAL);
}

TEST_G(timer, stop_prevents_firing_and_reset_arms_anew)
{
    goc_timer *t;
    ASSERT_OK(goc_timer_new(50 * GOC_MILLISECOND, &t));
    ASSERT(goc_timer_stop(t));
    ASSERT(!goc_timer_stop(t)); /* stopped already */
    goc_sleep(80 * GOC_MILLISECOND, NULL);
    int64_t at;
    ASSERT_EQ(goc_chan_try_recv(goc_timer_chan(t), &at), -EAGAIN);
    int64_t t0 = goc_now();
    ASSERT(!goc_timer_reset(t, 10 * GOC_MILLISECOND)); /* was not active */
    ASSERT_EQ(goc_chan_recv(goc_timer_chan(t), &at, NULL), 1);
    ASSERT_GE(at - t0, 10 * GOC_MILLISECOND);
    /* Reset while armed: the old time never comes. */
    ASSERT(!goc_timer_reset(t, 5 * GOC_MILLISECOND));
    t0 = goc_now();
    ASSERT(goc_timer_reset(t, 30 * GOC_MILLISECOND));
    ASSERT_EQ(goc_chan_recv(goc_timer_chan(t), &at, NULL), 1);
    ASSERT_GE(at - t0, 30 * GOC_MILLISECOND);
    goc_timer_free(t);
    goc_timer_free(NULL);
    ASSERT(!goc_timer_stop(NULL));
}

/* Go 1.23: a time sent but not received is taken back by stop or reset,
 * and stop then says the firing was prevented. */
TEST_G(timer, stop_takes_back_a_time_not_received)
{
    goc_timer *t;
    ASSERT_OK(goc_timer_new(GOC_MILLISECOND, &t));
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* fired: the time waits */
    ASSERT_EQ(goc_chan_len(goc_timer_chan(t)), 1);
    ASSERT(goc_timer_stop(t));
    int64_t at;
    ASSERT_EQ(goc_chan_try_recv(goc_timer_chan(t), &at), -EAGAIN);
    ASSERT(!goc_timer_reset(t, GOC_MILLISECOND));
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    ASSERT(goc_timer_reset(t, GOC_SECOND)); /* took the unreceived time */
    ASSERT_EQ(goc_chan_try_recv(goc_timer_chan(t), &at), -EAGAIN);
    goc_timer_free(t);
}

/* Stop or reset racing the firing, on any P: after the call returns the
 * channel holds nothing of the old schedule, and gets nothing of it. */
TEST_G(timer, stop_and_reset_racing_the_firing_leave_nothing_stale)
{
    int64_t n = test_scale(2000);
    goc_timer *t;
    ASSERT_OK(goc_timer_new(GOC_SECOND, &t));
    goc_chan *c = goc_timer_chan(t);
    int64_t at, prevented = 0;
    for (int64_t i = 0; i < n; i++) {
        goc_timer_reset(t, (i * 37) % 200 * GOC_MICROSECOND);
        if (i % 3 == 0)
            goc_sleep((i * 53) % 150 * GOC_MICROSECOND, NULL);
        if (i % 2)
            prevented += goc_timer_stop(t);
        else
            prevented += goc_timer_reset(t, GOC_SECOND * 10);
        ASSERT_EQ(goc_chan_try_recv(c, &at), -EAGAIN);
    }
    goc_sleep(2 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_chan_try_recv(c, &at), -EAGAIN);
    printf("# %lld of %lld firings prevented\n", (long long)prevented,
           (long long)n);
    goc_timer_free(t);
}

TEST_G(timer, after_func_runs_once_in_a_goroutine_of_its_own)
{
    static struct test_run_note r;
    goc_timer *t;
    int64_t t0 = goc_now();
    ASSERT_OK(
        goc_timer_after_func(10 * GOC_MILLISECOND, test_note_run, &r, &t));
    ASSERT(goc_timer_chan(t) == NULL);
    while (atomic_load(&r.runs) == 0)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_GE(goc_now() - t0, 10 * GOC_MILLISECOND);
    ASSERT_NE(atomic_load(&r.goid), goc_id());
    ASSERT_NE(atomic_load(&r.goid), 0);
    ASSERT(!goc_timer_stop(t)); /* it ran */
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&r.runs), 1);
    /* Stopped in time: never runs. */
    ASSERT(!goc_timer_reset(t, GOC_SECOND * 3600));
    ASSERT(goc_timer_stop(t));
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&r.runs), 1);
    goc_timer_free(t);
    ASSERT_EQ(goc_timer_after_func(1, NULL, NULL, &t), -EINVAL);
}

static int after_func_without_memory(void *arg)
{
    (void)arg;
    static struct test_run_note r;
    goc_timer *t;
    ASSERT_OK(goc_timer_after_func(GOC_SECOND * 3600, test_note_run, &r, &t));
    goc__fault_after(0); /* every allocation fails: no goroutine */
    /* Armed only now: it cannot fire before the fault is in place (a
     * reset allocates nothing; a wheel slot that cannot grow spills). */
    ASSERT(goc_timer_reset(t, GOC_MILLISECOND));
    goc_sleep(30 * GOC_MILLISECOND, NULL);
    int runs_without = atomic_load(&r.runs);
    goc__fault_after(-1);
    while (atomic_load(&r.runs) == 0)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(runs_without, 0);
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&r.runs), 1);
    goc_timer_free(t);
    return 0;
}

/* The goroutine of an after-func that could not be made is not dropped:
 * it starts once memory is there again, once. */
TEST(timer, after_func_that_cannot_spawn_starts_later)
{
    test_run_with_spawns_that_allocate(after_func_without_memory);
}

TEST_G(timer, ticker_keeps_its_period_and_drops_for_a_slow_receiver)
{
    const int64_t period = 5 * GOC_MILLISECOND;
    int64_t t0 = goc_now(), at, prev = 0;
    goc_ticker *tk;
    ASSERT_OK(goc_ticker_new(period, &tk));
    for (int k = 1; k <= 5; k++) {
        ASSERT_EQ(goc_chan_recv(goc_ticker_chan(tk), &at, NULL), 1);
        ASSERT_GE(at - t0, k * period); /* never early, phase kept */
        ASSERT_GT(at, prev);
        prev = at;
    }
    /* A slow receiver: ticks are dropped, one is kept, none queue up. */
    goc_sleep(12 * period, NULL);
    ASSERT_EQ(goc_chan_len(goc_ticker_chan(tk)), 1);
    ASSERT_GE(goc_ticker_dropped(tk), 5);
    goc_ticker_stop(tk);
    ASSERT_EQ(goc_chan_try_recv(goc_ticker_chan(tk), &at), -EAGAIN);
    goc_sleep(4 * period, NULL);
    ASSERT_EQ(goc_chan_try_recv(goc_ticker_chan(tk), &at), -EAGAIN);
    /* Reset: ticks again, at the new period. */
    t0 = goc_now();
    ASSERT_OK(goc_ticker_reset(tk, 2 * period));
    ASSERT_EQ(goc_chan_recv(goc_ticker_chan(tk), &at, NULL), 1);
    ASSERT_GE(at - t0, 2 * period);
    ASSERT_EQ(goc_ticker_reset(tk, 0), -EINVAL);
    ASSERT_EQ(goc_ticker_reset(NULL, period), -EINVAL);
    goc_ticker_free(tk);
    ASSERT_EQ(goc_ticker_new(0, &tk), -EINVAL);
    ASSERT_EQ(goc_ticker_new(-1, &tk), -EINVAL);
    ASSERT_EQ(goc_ticker_new(period, NULL), -EINVAL);
}

struct monitor_loop {
    goc_ctx *ctx;
    _Atomic int samples;
    goc_wg wg;
};

/* The seed's MemoryMonitor loop: a ticker and a stop signal in one
 * select. */
static void sample_until_cancelled(void *arg)
{
    struct monitor_loop *m = arg;
    goc_ticker *tk;
    ASSERT_OK(goc_ticker_new(2 * GOC_MILLISECOND, &tk));
    for (;;) {
        int64_t at;
        struct goc_select_case cs[2] = {
            { goc_ticker_chan(tk), GOC_SELECT_RECV, &at, 0 },
            { goc_ctx_done(m->ctx), GOC_SELECT_RECV, NULL, 0 },
        };
        int k = goc_select(cs, 2, 0, NULL);
        ASSERT_GE(k, 0);
        if (k == 1)
            break;
        atomic_fetch_add(&m->samples, 1);
    }
    goc_ticker_free(tk);
    goc_wg_done(&m->wg);
}

TEST_G(timer, ticker_in_a_select_with_a_stop_signal)
{
    static struct monitor_loop m = { .wg = GOC_WG_INIT };
    ASSERT_OK(goc_ctx_with_cancel(NULL, &m.ctx));
    goc_wg_add(&m.wg, 1);
    ASSERT_OK(goc_go(sample_until_cancelled, &m));
    int64_t end = goc_now() + 5 * GOC_SECOND;
    while (atomic_load(&m.samples) < 3 && goc_now() < end)
        goc_sleep(GOC_MILLISECOND, NULL);
    goc_ctx_cancel(m.ctx);
    goc_wg_wait(&m.wg, NULL); /* the stop signal ends the loop */
    ASSERT_GE(atomic_load(&m.samples), 3);
    goc_ctx_release(m.ctx);
}

static void *timers_from_a_thread(void *arg)
{
    (void)arg;
    goc_timer *t;
    ASSERT_OK(goc_timer_new(5 * GOC_MILLISECOND, &t));
    int64_t at;
    ASSERT_EQ(goc_chan_recv(goc_timer_chan(t), &at, NULL), 1);
    ASSERT(goc_timer_reset(t, GOC_SECOND) == false);
    ASSERT(goc_timer_stop(t));
    goc_timer_free(t);
    goc_ticker *tk;
    ASSERT_OK(goc_ticker_new(2 * GOC_MILLISECOND, &tk));
    for (int i = 0; i < 3; i++)
        ASSERT_EQ(goc_chan_recv(goc_ticker_chan(tk), &at, NULL), 1);
    goc_ticker_free(tk);
    return NULL;
}

TEST(timer, timers_and_tickers_from_a_plain_thread)
{
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, timers_from_a_thread, NULL));
    ASSERT_OK(pthread_join(th, NULL));
}

struct self_timer {
    goc_timer *t;
    _Atomic int runs, saw_none;
};

/* An after-func that looks at its own handle, as one that resets itself
 * must. */
static void looks_at_its_handle(void *arg)
{
    struct self_timer *s = arg;
    if (*(goc_timer *volatile *)&s->t == NULL)
        atomic_fetch_add(&s->saw_none, 1);
    atomic_fetch_add(&s->runs, 1);
}

/* goc_timer_after_func() set *out after arming the timer: a short one
 * could fire on another thread first, and its function found its own
 * handle unset (a self-resetting timer stopped repeating, a self-freeing
 * one leaked). */
TEST_G(timer, after_func_finds_its_own_handle_set)
{
    enum { N = 200000 };
    static struct self_timer s[N];
    int n = (int)test_scale(N);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_timer_after_func(0, looks_at_its_handle, &s[i], &s[i].t));
    int saw_none = 0;
    for (int i = 0; i < n; i++) {
        while (atomic_load(&s[i].runs) == 0)
            goc_yield();
        saw_none += atomic_load(&s[i].saw_none);
        goc_timer_free(s[i].t);
    }
    ASSERT_EQ(saw_none, 0);
}

/* ---- stop_sync ------------------------------------------------------- */

struct slow_fn {
    goc_chan *started, *gate;
    goc_timer *self;
    _Atomic int finished, self_rc;
};

static void slow_timer_fn(void *arg)
{
    struct slow_fn *s = arg;
    atomic_store(&s->self_rc, goc_timer_stop_sync(s->self));
    goc_chan_send(s->started, NULL, NULL);
    goc_chan_recv(s->gate, NULL, NULL);
    atomic_store(&s->finished, 1);
}

static void *stop_sync_thread(void *arg)
{
    struct slow_fn *s = arg;
    ASSERT_EQ(goc_timer_stop_sync(s->self), 0); /* it had fired */
    ASSERT_EQ(atomic_load(&s->finished), 1);    /* and it waited */
    return NULL;
}

static void open_gate_later(void *arg)
{
    goc_sleep(30 * GOC_MILLISECOND, NULL);
    goc_chan_close(arg);
}

/*
 * goc_timer_stop_sync waits for a run of the function under way (stop
 * does not), from a goroutine or a thread; from the function itself it
 * refuses, rather than wait for its own return.
 */
TEST_G(timer, stop_sync_waits_for_a_running_function)
{
    static struct slow_fn s;
    ASSERT_OK(goc_chan_new(0, 0, &s.started));
    ASSERT_OK(goc_chan_new(0, 0, &s.gate));
    ASSERT_EQ(goc_timer_stop_sync(NULL), -EINVAL);
    ASSERT_OK(
        goc_timer_after_func(GOC_MILLISECOND, slow_timer_fn, &s, &s.self));
    ASSERT_EQ(goc_chan_recv(s.started, NULL, NULL), 1);
    ASSERT_EQ(atomic_load(&s.self_rc), -EDEADLK);
    ASSERT_OK(goc_go(open_gate_later, s.gate));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, stop_sync_thread, &s));
    ASSERT_EQ(goc_timer_stop_sync(s.self), 0);
    ASSERT_EQ(atomic_load(&s.finished), 1);
    ASSERT_OK(test_join(t, NULL));
    goc_timer_free(s.self);
    /* Stopped before it fired: 1, and nothing runs. */
    goc_timer *quiet;
    ASSERT_OK(goc_timer_after_func(GOC_SECOND, slow_timer_fn, &s, &quiet));
    ASSERT_EQ(goc_timer_stop_sync(quiet), 1);
    goc_timer_free(quiet);
    goc_chan_release(s.started);
    goc_chan_release(s.gate);
}

static void frees_its_timer(void *arg)
{
    goc_timer_free(*(goc_timer **)arg);
}

/* A function may free its own timer, and a free may come while the
 * function runs: the last of them frees it. */
TEST_G(timer, after_func_may_free_its_own_timer)
{
    static goc_timer *t;
    ASSERT_OK(goc_timer_after_func(GOC_MILLISECOND, frees_its_timer, &t, &t));
    goc_sleep(30 * GOC_MILLISECOND, NULL);
}

struct rearming {
    goc_timer *t;
    _Atomic int runs;
    _Atomic bool stopped;
    _Atomic int after_stop;
};

static void rearms_itself(void *arg)
{
    struct rearming *r = arg;
    if (atomic_load(&r->stopped))
        atomic_fetch_add(&r->after_stop, 1);
    atomic_fetch_add(&r->runs, 1);
    goc_sleep(GOC_MILLISECOND, NULL); /* a stop_sync finds it running */
    goc_timer_reset(r->t, 0);         /* periodic work: fire again now */
}

/* A function that re-arms its own timer is stopped for good too: it ran
 * again after stop_sync returned, every round. */
TEST_G(timer, stop_sync_stops_a_function_that_rearms_its_timer)
{
    for (int round = 0; round < test_scale(20); round++) {
        static struct rearming r;
        atomic_store(&r.runs, 0);
        atomic_store(&r.stopped, false);
        atomic_store(&r.after_stop, 0);
        ASSERT_OK(goc_timer_after_func(0, rearms_itself, &r, &r.t));
        while (atomic_load(&r.runs) < 2)
            goc_yield();
        ASSERT_GE(goc_timer_stop_sync(r.t), 0);
        atomic_store(&r.stopped, true);
        goc_sleep(5 * GOC_MILLISECOND, NULL);
        ASSERT_EQ(atomic_load(&r.after_stop), 0);
        goc_timer_free(r.t);
    }
}
