/* SPDX-License-Identifier: MIT */
/*
 * Timers and tickers: Go's time.NewTimer, time.AfterFunc and
 * time.NewTicker, on the runtime's per-P timer wheels.
 *
 * Each object holds one runtime timer, whose callback runs on a scheduler
 * thread (or on sysmon's, for a timer overdue on a busy P). So it does
 * only short work that never waits: a try-send of the time on a channel
 * of capacity 1, or the start of a goroutine.
 *
 * Stop and reset agree with the callback through @lock: they set
 * @stopping, disarm the runtime timer and wait out any run of the
 * callback under way, which does nothing once it sees @stopping. Then
 * @armed tells whether the firing was prevented, and the channel is
 * drained: once stop or reset returns, nothing of the schedule before it
 * is delivered (Go 1.23's guarantee). @op serialises stop, reset and
 * free among themselves.
 */
#include "ctx.h"
#include "goc/chan.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../internal/lock.h"

#include <errno.h>

enum kind { CHAN_TIMER, FUNC_TIMER, TICKER };

/* A goroutine that could not be started is tried again this much later. */
#define SPAWN_RETRY_NS (1000 * 1000)

struct goc_timer {
    struct goc__timer t;
    goc__lock lock; /* with the callback: what follows */
    bool stopping;  /* a stop or reset is under way: do nothing */
    bool armed;     /* a firing of the current schedule is to come */
    int64_t period; /* tickers */
    int64_t next;   /* tickers: the tick due */
    goc_mutex op;   /* stop, reset and free, one at a time */
    enum kind kind;
    goc_chan *ch; /* CHAN_TIMER, TICKER */
    goc_fn fn;    /* FUNC_TIMER */
    void *arg;
    _Atomic int64_t dropped; /* ticks a full channel refused */
    /* FUNC_TIMER: runs of fn under way, counted from the callback, which
     * must never wait (a WaitGroup's add and done never do); and, under
     * runs_mu, the goroutines running them. goc_timer_stop_sync() waits
     * for them, and refuses to wait for the one it is called from. A run
     * holds a reference on the timer, so a free may come first; the last
     * reference frees it. */
    goc_wg runs;
    _Atomic uint64_t arms; /* schedules armed: a run re-arming shows */
    goc_mutex runs_mu;
    struct fn_run *running;
    _Atomic int refs;
};

struct fn_run {
    struct fn_run *next;
    int64_t gid;
};

struct goc_ticker {
    struct goc_timer tm;
};

/* now + d, without overflow; d <= 0 is now. */
static int64_t deadline_in(int64_t now, int64_t d)
{
    if (d <= 0)
        return now;
    return d > INT64_MAX - now ? INT64_MAX : now + d;
}

/* The tick after the one due at @due that is still to come at @now: the
 * schedule keeps its phase, and ticks a slow receiver missed are skipped
 * rather than sent in a burst. */
static int64_t next_tick(int64_t due, int64_t period, int64_t now)
{
    if (due > INT64_MAX - period)
        return INT64_MAX;
    int64_t next = due + period;
    if (next > now)
        return next;
    int64_t late = (now - next) / period + 1;
    return late > (INT64_MAX - next) / period ? INT64_MAX
                                              : next + late * period;
}

static void fire(void *arg);

static void send_time(struct goc_timer *tm, int64_t now)
{
    if (goc_chan_try_send(tm->ch, &now) != 0)
        atomic_fetch_add_explicit(&tm->dropped, 1, memory_order_relaxed);
}

static void timer_release(struct goc_timer *tm)
{
    if (atomic_fetch_sub(&tm->refs, 1) != 1)
        return;
    goc_chan_release(tm->ch);
    goc__free(tm);
}

/* One run of an after-func timer's fn, counted while it runs. */
static void run_fn(void *arg)
{
    struct goc_timer *tm = arg;
    struct fn_run me = { .gid = goc_id() };
    goc_mutex_lock(&tm->runs_mu, NULL);
    me.next = tm->running;
    tm->running = &me;
    goc_mutex_unlock(&tm->runs_mu);
    tm->fn(tm->arg);
    goc_mutex_lock(&tm->runs_mu, NULL);
    struct fn_run **at = &tm->running;
    while (*at != &me)
        at = &(*at)->next;
    *at = me.next;
    goc_mutex_unlock(&tm->runs_mu);
    goc_wg_done(&tm->runs);
    timer_release(tm);
}

/* FUNC_TIMER: start fn; if no goroutine can be made now, try again a
 * little later, for as long as the timer is not stopped. */
static void start_fn(struct goc_timer *tm, int64_t now)
{
    atomic_fetch_add(&tm->refs, 1); /* the run's */
    goc_wg_add(&tm->runs, 1);       /* counted before it can start */
    int err = goc_go(run_fn, tm);
    if (err) {
        goc_wg_done(&tm->runs);
        atomic_fetch_sub(&tm->refs, 1); /* never the last: the owner's */
    }
    goc__lock_acquire(&tm->lock);
    if (err == 0)
        tm->armed = false;
    else if (!tm->stopping)
        goc__timer_start(&tm->t, deadline_in(now, SPAWN_RETRY_NS), fire, tm);
    goc__lock_release(&tm->lock);
}

static void fire(void *arg)
{
    struct goc_timer *tm = arg;
    int64_t now = goc_now();
    goc__lock_acquire(&tm->lock);
    if (tm->stopping || !tm->armed) {
        goc__lock_release(&tm->lock);
        return;
    }
    switch (tm->kind) {
    case CHAN_TIMER:
        tm->armed = false;
        goc__lock_release(&tm->lock);
        send_time(tm, now);
        return;
    case FUNC_TIMER:
        goc__lock_release(&tm->lock);
        start_fn(tm, now);
        return;
    case TICKER:
        tm->next = next_tick(tm->next, tm->period, now);
        goc__timer_start(&tm->t, tm->next, fire, tm);
        goc__lock_release(&tm->lock);
        send_time(tm, now);
        return;
    }
}

/*
 * Under op: end the current schedule. True if a firing of it was to come
 * (for a channel timer: also one sent but not yet received).
 */
static bool stop_schedule(struct goc_timer *tm)
{
    goc__lock_acquire(&tm->lock);
    tm->stopping = true;
    goc__lock_release(&tm->lock);
    goc__timer_stop_sync(&tm->t); /* no run of fire() is under way */
    goc__lock_acquire(&tm->lock);
    bool was_armed = tm->armed;
    tm->armed = false;
    tm->stopping = false;
    goc__lock_release(&tm->lock);
    int64_t stale;
    if (tm->ch && goc_chan_try_recv(tm->ch, &stale) == 1 &&
        tm->kind == CHAN_TIMER)
        was_armed = true; /* its time was not received: not fired */
    return was_armed;
}

/* Under op (or before anyone else knows tm): a schedule firing at @when. */
static void arm(struct goc_timer *tm, int64_t when)
{
    atomic_fetch_add(&tm->arms, 1);
    goc__lock_acquire(&tm->lock);
    tm->armed = true;
    tm->next = when;
    goc__timer_start(&tm->t, when, fire, tm);
    goc__lock_release(&tm->lock);
}

static int timer_make(enum kind kind, bool with_chan, struct goc_timer **out)
{
    int err = goc__rt_ensure();
    if (err)
        return err;
    struct goc_timer *tm = goc__calloc(1, sizeof(*tm));
    if (!tm)
        return -ENOMEM;
    tm->lock = (goc__lock)GOC__LOCK_INIT;
    tm->op = (goc_mutex)GOC_MUTEX_INIT;
    tm->runs = (goc_wg)GOC_WG_INIT;
    tm->runs_mu = (goc_mutex)GOC_MUTEX_INIT;
    atomic_init(&tm->refs, 1); /* the owner's */
    tm->kind = kind;
    if (with_chan && (err = goc_chan_new(sizeof(int64_t), 1, &tm->ch)) != 0) {
        goc__free(tm);
        return err;
    }
    *out = tm;
    return 0;
}

int goc_timer_new(int64_t d, goc_timer **out)
{
    if (!out)
        return -EINVAL;
    struct goc_timer *tm;
    int err = timer_make(CHAN_TIMER, true, &tm);
    if (err)
        return err;
    arm(tm, deadline_in(goc_now(), d));
    *out = tm;
    return 0;
}

int goc_timer_after_func(int64_t d, goc_fn fn, void *arg, goc_timer **out)
{
    if (!fn || !out)
        return -EINVAL;
    struct goc_timer *tm;
    int err = timer_make(FUNC_TIMER, false, &tm);
    if (err)
        return err;
    tm->fn = fn;
    tm->arg = arg;
    *out = tm; /* before arming: fn may use its own handle */
    arm(tm, deadline_in(goc_now(), d));
    return 0;
}

goc_chan *goc_timer_chan(goc_timer *tm)
{
    return tm ? tm->ch : NULL;
}

bool goc_timer_stop(goc_timer *tm)
{
    if (!tm)
        return false;
    goc_mutex_lock(&tm->op, NULL);
    bool stopped = stop_schedule(tm);
    goc_mutex_unlock(&tm->op);
    return stopped;
}

bool goc_timer_reset(goc_timer *tm, int64_t d)
{
    if (!tm)
        return false;
    goc_mutex_lock(&tm->op, NULL);
    bool was_active = stop_schedule(tm);
    arm(tm, deadline_in(goc_now(), d));
    goc_mutex_unlock(&tm->op);
    return was_active;
}

static bool runs_from_here(struct goc_timer *tm)
{
    int64_t me = goc_id();
    for (struct fn_run *r = tm->running; r && me; r = r->next)
        if (r->gid == me)
            return true;
    return false;
}

int goc_timer_stop_sync(goc_timer *tm)
{
    if (!tm)
        return -EINVAL;
    goc_mutex_lock(&tm->runs_mu, NULL);
    bool self = runs_from_here(tm);
    goc_mutex_unlock(&tm->runs_mu);
    if (self)
        return -EDEADLK; /* it would wait for its own return */
    /* A run under way may arm the timer again (a function that resets
     * its own timer): stop again after it, until no run re-armed. */
    int stopped = -1; /* the first stop's answer is the caller's */
    uint64_t arms;
    do {
        arms = atomic_load(&tm->arms);
        bool s = goc_timer_stop(tm);
        if (stopped < 0)
            stopped = s;
        goc_wg_wait(&tm->runs, NULL); /* stop started no run after it */
    } while (atomic_load(&tm->arms) != arms);
    return stopped;
}

void goc_timer_free(goc_timer *tm)
{
    if (!tm)
        return;
    goc_mutex_lock(&tm->op, NULL);
    stop_schedule(tm);
    goc_mutex_unlock(&tm->op);
    timer_release(tm); /* a run under way holds its own reference */
}

int goc_ticker_new(int64_t period, goc_ticker **out)
{
    if (period <= 0 || !out)
        return -EINVAL;
    struct goc_timer *tm;
    int err = timer_make(TICKER, true, &tm);
    if (err)
        return err;
    tm->period = period;
    arm(tm, deadline_in(goc_now(), period));
    *out = (goc_ticker *)tm;
    return 0;
}

goc_chan *goc_ticker_chan(goc_ticker *tk)
{
    return tk ? tk->tm.ch : NULL;
}

int goc_ticker_reset(goc_ticker *tk, int64_t period)
{
    if (!tk || period <= 0)
        return -EINVAL;
    struct goc_timer *tm = &tk->tm;
    goc_mutex_lock(&tm->op, NULL);
    stop_schedule(tm);
    tm->period = period;
    arm(tm, deadline_in(goc_now(), period));
    goc_mutex_unlock(&tm->op);
    return 0;
}

void goc_ticker_stop(goc_ticker *tk)
{
    if (tk)
        goc_timer_stop(&tk->tm);
}

int64_t goc_ticker_dropped(goc_ticker *tk)
{
    return tk ? atomic_load_explicit(&tk->tm.dropped, memory_order_relaxed) : 0;
}

void goc_ticker_free(goc_ticker *tk)
{
    if (tk)
        goc_timer_free(&tk->tm);
}
