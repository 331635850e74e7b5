/* SPDX-License-Identifier: MIT */
/* The monotonic clock and goc_sleep. */
#include "runtime.h"
#include "goc/time.h"

#include <errno.h>
#include <time.h>

int64_t goc__nanotime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t goc_now(void)
{
    return goc__nanotime();
}

static void sleep_fire(void *arg)
{
    goc__ready(arg, false);
}

/* Runs once the sleeper is off its stack, so the timer cannot fire early
 * enough to ready a goroutine that is still running. Nothing stops the
 * timer: once it readies the sleeper, which may exit and leave its G to
 * a new goroutine at once, the wheel must not write to it. */
static void sleep_commit(struct goc__m *m, void *arg)
{
    (void)m;
    struct goc__g *g = arg;
    g->timer.unsynced = true;
    goc__timer_start(&g->timer, g->timer.when, sleep_fire, g);
}

static void thread_sleep_until(int64_t deadline)
{
    struct timespec ts = { .tv_sec = deadline / 1000000000,
                           .tv_nsec = deadline % 1000000000 };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

void goc__sleep_until(int64_t deadline)
{
    struct goc__g *g = goc__g_current();
    if (!g) {
        thread_sleep_until(deadline);
        return;
    }
    g->timer.when = deadline;
    g->wait_reason = GOC__WAIT_SLEEP;
    g->wait_since =
        atomic_load_explicit(&goc__sched.coarse_now, memory_order_relaxed);
    atomic_store_explicit(&g->status, GOC__G_WAITING, memory_order_relaxed);
    goc__park(sleep_commit, g);
}
