/* SPDX-License-Identifier: MIT */
/*
 * Tests of goc__fastclock: it stays close to goc_now() across anchor
 * renewals from goroutines on every P and from plain threads, before the
 * runtime starts too; GOC_FASTCLOCK=0 turns it into goc_now(); and the
 * rate limiter's default clock, which reads it, admits its rate.
 */
#include "test.h"

#include "../src/internal/fastclock.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

/* The real error is well under a microsecond. Generous bounds all the
 * same: 50 us natively on a noisy machine, 1 ms under sanitizers,
 * valgrind and qemu. */
#define BOUND_NATIVE (50 * GOC_MICROSECOND)
#define BOUND_SLOW   GOC_MILLISECOND
#define ROUNDS       3
#define STEP         (2 * GOC_MILLISECOND)   /* samples span an anchor's life */
#define SPAN         (100 * GOC_MILLISECOND) /* longer than an anchor's life */
#define NAP          (80 * GOC_MILLISECOND)  /* the anchor goes stale */
#define SAMPLES      200

static int64_t bound(void)
{
    return test_instrumented() ? BOUND_SLOW : BOUND_NATIVE;
}

/* Whether this machine lets goc__fastclock read the counter: the same
 * conditions, found independently. */
static bool counter_expected(void)
{
    const char *env = getenv("GOC_FASTCLOCK");
    if (env && strcmp(env, "0") == 0)
        return false;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
        return false;
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/"
                    "current_clocksource",
                    "r");
    if (!f)
        return false;
    char name[32] = "";
    bool tsc = fscanf(f, "%31s", name) == 1 && strcmp(name, "tsc") == 0;
    fclose(f);
    return tsc;
#elif defined(__aarch64__)
    return true;
#else
    return false;
#endif
}

/* One fastclock reading bracketed by goc_now(): its distance outside. */
static int64_t off_bracket(void)
{
    int64_t a = goc_now();
    int64_t f = goc__fastclock();
    int64_t b = goc_now();
    return f < a ? a - f : f > b ? f - b : 0;
}

static void plain_nap(int64_t ns)
{
    struct timespec ts = { ns / GOC_SECOND, ns % GOC_SECOND };
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static void nap(bool goroutine, int64_t ns)
{
    if (goroutine)
        ASSERT_OK(goc_sleep(ns, NULL));
    else
        plain_nap(ns);
}

/*
 * The worst error over rounds of: samples every STEP for SPAN (so at
 * every age of an anchor, and through renewals by this caller or
 * others), then a nap that lets the anchor go stale.
 */
static int64_t track(bool goroutine)
{
    int64_t worst = 0;
    for (int r = 0; r < ROUNDS; r++) {
        int64_t end = goc_now() + SPAN;
        while (goc_now() < end) {
            int64_t e = off_bracket();
            worst = e > worst ? e : worst;
            nap(goroutine, STEP);
        }
        nap(goroutine, NAP);
    }
    return worst;
}

/* Call until the first frequency is measured (10 ms on x86-64). */
static void warm_up(bool goroutine)
{
    int64_t end = goc_now() + 500 * GOC_MILLISECOND;
    while (!goc__fastclock_counting() && goc_now() < end) {
        (void)goc__fastclock();
        nap(goroutine, GOC_MILLISECOND);
    }
}

struct tracker {
    bool goroutine;
    int64_t worst;
    goc_wg *wg;
};

static void track_g(void *arg)
{
    struct tracker *t = arg;
    t->worst = track(true);
    goc_wg_done(t->wg);
}

static void *track_thread(void *arg)
{
    struct tracker *t = arg;
    t->worst = track(false);
    return NULL;
}

TEST_G(fastclock, tracks_goc_now_across_renewals)
{
    enum { G = 4 };
    warm_up(true);
    ASSERT_EQ(goc__fastclock_counting(), counter_expected());
    goc_wg wg = GOC_WG_INIT;
    struct tracker ts[G + 1];
    goc_wg_add(&wg, G);
    for (int i = 0; i < G; i++) {
        ts[i] = (struct tracker){ .goroutine = true, .wg = &wg };
        ASSERT_OK(goc_go(track_g, &ts[i]));
    }
    ts[G] = (struct tracker){ .goroutine = false };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, track_thread, &ts[G]));
    ASSERT_OK(goc_wg_wait(&wg, NULL));
    ASSERT_OK(test_join(th, NULL));
    for (int i = 0; i <= G; i++)
        ASSERT_LE(ts[i].worst, bound());
    /* Still reading the counter: renewals kept succeeding. */
    ASSERT_EQ(goc__fastclock_counting(), counter_expected());
}

/* No goc_run, no goroutine: a plain process's first calls. */
TEST(fastclock, works_before_the_runtime_starts)
{
    ASSERT_LE(off_bracket(), bound()); /* the very first call */
    warm_up(false);
    ASSERT_EQ(goc__fastclock_counting(), counter_expected());
    ASSERT_LE(track(false), bound());
}

/* The runner forks each test, and the clock decides on first use: setting
 * the variable here comes before any call in this process. */
TEST(fastclock, disabled_by_env_is_goc_now)
{
    ASSERT_OK(setenv("GOC_FASTCLOCK", "0", 1));
    for (int r = 0; r < 3; r++) {
        for (int i = 0; i < SAMPLES; i++) {
            int64_t a = goc_now();
            int64_t f = goc__fastclock();
            int64_t b = goc_now();
            ASSERT_LE(a, f); /* goc_now() itself: exact */
            ASSERT_LE(f, b);
        }
        plain_nap(NAP);
    }
    ASSERT(!goc__fastclock_counting());
}

/*
 * The limiter's default clock is goc__fastclock(): over a stretch that
 * renews the anchor several times, a busy caller is admitted the rate
 * (never more than burst + rate x elapsed on goc_now()'s clock).
 */
TEST_G(fastclock, limiter_default_clock_admits_its_rate)
{
    const double rate = 2000;
    /* 50 ms of tokens: a caller the machine keeps off the CPU for less
     * than that loses none, and a clock running twice as fast would still
     * overshoot the bound by 500. */
    const int64_t burst = 100;
    goc_limiter *l;
    ASSERT_OK(goc_limiter_new(rate, burst, NULL, &l));
    int64_t t0 = goc_now(), allowed = 0, elapsed;
    for (long i = 1;; i++) {
        allowed += goc_limiter_allow(l);
        elapsed = goc_now() - t0;
        if (elapsed >= 300 * GOC_MILLISECOND)
            break;
        if ((i & 1023) == 0)
            goc_yield(); /* not a hog */
    }
    int64_t most = burst + (int64_t)(rate * (double)(elapsed + bound()) / 1e9);
    ASSERT_LE(allowed, most);
    ASSERT_GE(allowed, (int64_t)(rate * (double)elapsed / 1e9) / 2);
    goc_limiter_free(l);
}
