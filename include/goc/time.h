/* SPDX-License-Identifier: MIT */
/*
 * goc/time.h: the monotonic clock, sleeping, timers and tickers.
 *
 * Time is int64_t nanoseconds. A parameter named `deadline` is an absolute
 * goc_now() value; one named `timeout`, `ns`, `d` or `period` is relative.
 */
#ifndef GOC_TIME_H
#define GOC_TIME_H

#include <stdbool.h>

#include "common.h"
#include "runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

#define GOC_NANOSECOND  ((int64_t)1)
#define GOC_MICROSECOND ((int64_t)1000)
#define GOC_MILLISECOND ((int64_t)1000000)
#define GOC_SECOND      ((int64_t)1000000000)

/**
 * goc_now - the monotonic clock (CLOCK_MONOTONIC) in nanoseconds.
 *
 * Never blocks; callable from any thread.
 */
GOC_API int64_t goc_now(void);

/**
 * goc_sleep - pause the caller for at least @ns nanoseconds.
 * @ns:  how long; zero or negative returns at once.
 * @ctx: cancellation; NULL sleeps the whole time.
 *
 * A goroutine parks on a timer of its P and frees its thread for others; it
 * never wakes early. A plain thread blocks.
 *
 * Return: 0 after the full sleep; -ECANCELED or -ETIMEDOUT if @ctx ended
 * first (or had ended at entry); with a @ctx that can end, the runtime's
 * start error (-ENOMEM, -EAGAIN) if it was not running and could not
 * start: the sleep's timer needs it.
 */
GOC_API int goc_sleep(int64_t ns, goc_ctx *ctx);

/*
 * Timers and tickers (Go's time.Timer and time.Ticker). They live on the
 * runtime's per-P timer wheels: arming, stopping and resetting one are
 * O(1), and a stopped or reset one delivers nothing of its old schedule
 * once the call returns (Go 1.23's guarantee). Their channels carry the
 * goc_now() time of each firing (int64_t) and are never closed; read or
 * select on them like any channel, until the object is freed. Every call
 * works from goroutines and plain threads alike.
 *
 * A deadline context is the simpler tool for a one-off timeout on a wait
 * (goc_ctx_init_timeout, see docs/channels.md); these are for a time that
 * is a case among others in a select, and for periodic work.
 */
typedef struct goc_timer goc_timer;
typedef struct goc_ticker goc_ticker;

/**
 * goc_timer_new - a timer that sends the time on its channel once, @d ns
 * from now (Go's time.NewTimer).
 * @d: delay; zero or negative fires as soon as possible (never during
 *     this call).
 *
 * Return: 0; -EINVAL for a NULL @out; -ENOMEM; the runtime's start error.
 */
GOC_API int goc_timer_new(int64_t d, goc_timer **out);

/**
 * goc_timer_after_func - a timer that runs @fn(@arg) in a goroutine of its
 * own, @d ns from now (Go's time.AfterFunc). A goroutine that cannot be
 * made then (out of memory) is tried again every millisecond until it
 * starts or the timer is stopped: @fn is never dropped. *@out is set
 * before the timer is armed, so @fn may use it (to reset its own timer).
 *
 * Return: 0; -EINVAL for a NULL @fn or @out; -ENOMEM; the runtime's start
 * error.
 */
GOC_API int goc_timer_after_func(int64_t d,
                                 goc_fn fn,
                                 void *arg,
                                 goc_timer **out);

/** goc_timer_chan - the timer's channel (NULL for an after-func timer). */
GOC_API goc_chan *goc_timer_chan(goc_timer *t);

/**
 * goc_timer_stop - stop the timer.
 *
 * Once this returns, its channel holds no value and gets none, and an
 * after-func timer starts no goroutine, until a reset. A goroutine it
 * started already runs on: stop does not wait for it.
 *
 * Return: true if this call stopped a firing (for a channel timer: also
 * one whose time was sent but not yet received, which is taken back);
 * false if it had fired already, or was stopped (and for NULL).
 */
GOC_API bool goc_timer_stop(goc_timer *t);

/**
 * goc_timer_stop_sync - goc_timer_stop(), then, for an after-func timer,
 * wait until no run of its function is under way (Go's Stop does not
 * wait; this is the one to call before freeing what the function uses).
 * Waits from a goroutine or a plain thread.
 *
 * Return: 1 if it stopped a firing, 0 if not (as goc_timer_stop());
 * -EDEADLK from the timer's own function (it would wait for itself:
 * nothing is stopped); -EINVAL for NULL.
 */
GOC_API int goc_timer_stop_sync(goc_timer *t);

/**
 * goc_timer_reset - goc_timer_stop(), then arm the timer to fire @d ns
 * from now.
 *
 * Return: what goc_timer_stop() would have.
 */
GOC_API bool goc_timer_reset(goc_timer *t, int64_t d);

/**
 * goc_timer_free - stop the timer and free it (NULL ignored). No other
 * call on @t may be in progress or follow; its channel goes with it. A
 * run of an after-func timer's function under way goes on (it may free
 * its own timer).
 */
GOC_API void goc_timer_free(goc_timer *t);

/**
 * goc_ticker_new - a ticker that sends the time on its channel every
 * @period ns, the first @period ns from now (Go's time.NewTicker).
 *
 * The channel holds one tick: a tick that finds it full (the receiver is
 * slow) is dropped, and counted (goc_ticker_dropped()), never queued up
 * to come in a burst; the schedule keeps its phase.
 *
 * Return: 0; -EINVAL for @period <= 0 (Go panics) or a NULL @out;
 * -ENOMEM; the runtime's start error.
 */
GOC_API int goc_ticker_new(int64_t period, goc_ticker **out);

/** goc_ticker_chan - the ticker's channel. */
GOC_API goc_chan *goc_ticker_chan(goc_ticker *t);

/**
 * goc_ticker_reset - stop the ticker and start it anew with @period, the
 * next tick @period ns from now. A tick of the old schedule that was not
 * received is taken back.
 *
 * Return: 0; -EINVAL for @period <= 0 or a NULL @t (nothing changes).
 */
GOC_API int goc_ticker_reset(goc_ticker *t, int64_t period);

/**
 * goc_ticker_stop - no more ticks after this returns (the one not yet
 * received is taken back); the channel is not closed. NULL is ignored.
 */
GOC_API void goc_ticker_stop(goc_ticker *t);

/** goc_ticker_dropped - ticks dropped because the channel was full. */
GOC_API int64_t goc_ticker_dropped(goc_ticker *t);

/** goc_ticker_free - stop the ticker and free it (NULL ignored). */
GOC_API void goc_ticker_free(goc_ticker *t);

#ifdef __cplusplus
}
#endif

#endif /* GOC_TIME_H */
