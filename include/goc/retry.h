/* SPDX-License-Identifier: MIT */
/*
 * goc/retry.h: retry with backoff, modelled on cenkalti/backoff v4 (the
 * policies and their formulas) and its later API (a result that keeps the
 * last error, retry-after, max tries).
 *
 * An operation always runs at least once unless the context has already
 * ended at entry (then nothing runs and the result is the context's
 * error, never a success).
 */
#ifndef GOC_RETRY_H
#define GOC_RETRY_H

#include "clock.h"
#include "common.h"
#include "chan.h"
#include "context.h"
#include "errors.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** goc_backoff_next()'s "do not retry any more". */
#define GOC_BACKOFF_STOP ((int64_t)-1)

/** Policy kinds. */
enum goc_backoff_kind {
    GOC_BACKOFF_EXPONENTIAL = 0,
    GOC_BACKOFF_CONSTANT, /* always @interval */
    GOC_BACKOFF_ZERO,     /* always 0: retry at once, for ever */
    GOC_BACKOFF_NEVER,    /* always STOP: no retry */
    GOC_BACKOFF_CUSTOM,   /* @custom decides */
};

/** How an exponential policy randomises its interval. */
enum goc_jitter {
    /* cenkalti: uniform in [cur - f*cur, cur + f*cur], f = randomization */
    GOC_JITTER_PROPORTIONAL = 0,
    GOC_JITTER_FULL,         /* uniform in [0, cur] */
    GOC_JITTER_EQUAL,        /* cur/2 + uniform in [0, cur/2] */
    GOC_JITTER_DECORRELATED, /* min(max, uniform in [initial, 3*prev]) */
};

/**
 * goc_backoff - a backoff policy and its state. Fill it with one of the
 * goc_backoff_*() initialisers, then adjust fields. Not thread-safe: use
 * one per retry loop. Durations are ns.
 * @initial_interval:     first interval (> 0) [500 ms].
 * @randomization_factor: in [0, 1] [0.5]; 0 uses no randomness.
 * @multiplier:           >= 1 [1.5].
 * @max_interval:         cap on the interval before randomisation, >=
 *                        @initial_interval; 0 means no cap [60 s].
 * @max_elapsed_time:     STOP once the time since reset() plus the next
 *                        interval would pass it; 0 never stops [15 min
 *                        for an exponential policy, 0 for the others].
 * @max_retries:          STOP after this many next() calls since reset()
 *                        (k retries = k + 1 attempts); < 0: no limit [-1].
 * @custom:               for GOC_BACKOFF_CUSTOM: the delay before retry
 *                        number @retry (1, 2, ...), or GOC_BACKOFF_STOP.
 * @clock, @rand:         injectable time and uniform [0, 1) sources
 *                        (NULL: goc_now() and an internal generator).
 */
typedef struct goc_backoff {
    enum goc_backoff_kind kind;
    enum goc_jitter jitter;
    int64_t initial_interval;
    double randomization_factor;
    double multiplier;
    int64_t max_interval;
    int64_t max_elapsed_time;
    int64_t max_retries;
    int64_t interval; /* GOC_BACKOFF_CONSTANT */
    int64_t (*custom)(int64_t retry, void *arg);
    void *custom_arg;
    goc_clock clock;
    double (*rand)(void *arg);
    void *rand_arg;
    /* State (private). */
    int64_t current_, start_, prev_, calls_;
    uint64_t seed_;
    int stop_reason_;
} goc_backoff;

/** goc_backoff_exponential - cenkalti's ExponentialBackOff defaults. */
GOC_API void goc_backoff_exponential(goc_backoff *b);

/** goc_backoff_constant - the same @interval every time. */
GOC_API void goc_backoff_constant(goc_backoff *b, int64_t interval);

/** goc_backoff_zero - retry at once, for ever (ZeroBackOff). */
GOC_API void goc_backoff_zero(goc_backoff *b);

/** goc_backoff_never - never retry (StopBackOff). */
GOC_API void goc_backoff_never(goc_backoff *b);

/** goc_backoff_custom - delays from @fn(retry, @arg). */
GOC_API void goc_backoff_custom(goc_backoff *b,
                                int64_t (*fn)(int64_t retry, void *arg),
                                void *arg);

/**
 * goc_backoff_validate - check a policy's fields.
 *
 * Return: 0; -EINVAL for initial_interval <= 0, a randomization factor
 * outside [0, 1], multiplier < 1 (or NaN), max_interval neither 0 nor
 * >= initial_interval, max_elapsed_time < 0, a negative constant
 * interval, a CUSTOM policy without a function, or an unknown kind or
 * jitter.
 */
GOC_API int goc_backoff_validate(const goc_backoff *b);

/** goc_backoff_reset - start over: first interval, elapsed time from now. */
GOC_API void goc_backoff_reset(goc_backoff *b);

/**
 * goc_backoff_next - the wait before the next retry, or GOC_BACKOFF_STOP.
 * Arithmetic saturates at INT64_MAX and never goes negative. A policy
 * never reset since its initialiser is reset first (with the clock it
 * has by then). A policy goc_backoff_validate() refuses gives
 * GOC_BACKOFF_STOP at once.
 */
GOC_API int64_t goc_backoff_next(goc_backoff *b);

/**
 * goc_retry_permanent - mark @cause as not worth retrying (backoff's
 * Permanent): the loop stops at once and reports @cause as the last
 * error. Consumes @cause; NULL gives NULL. The result has code
 * GOC_EPERMANENT and unwraps to @cause (out of memory: a static
 * GOC_EPERMANENT error, without @cause, that still stops the loop).
 */
GOC_API goc_error *goc_retry_permanent(goc_error *cause);

/**
 * goc_retry_after - ask the loop to wait @delay ns (e.g. an HTTP
 * Retry-After) before the next attempt instead of the policy's interval;
 * the policy's interval starts over after that wait. The policy is still
 * asked for each retry, so its max_retries and max_elapsed_time (which
 * keep counting, and judge @delay in place of the interval) and a
 * never-retry policy can end the loop. Consumes
 * @cause (may be NULL). The result has code GOC_ERETRYAFTER and unwraps
 * to @cause.
 */
GOC_API goc_error *goc_retry_after(int64_t delay, goc_error *cause);

/**
 * goc_retry_op - one attempt.
 * @ctx: the retry's context, to pass on to blocking calls.
 * @arg: the caller's argument.
 * @err: may receive a rich error (ownership passes to the loop), such as
 *       goc_retry_permanent() or goc_retry_after(); left NULL, the return
 *       code stands for itself.
 *
 * Return: 0 for success, a negative code for failure.
 */
typedef int (*goc_retry_op)(goc_ctx *ctx, void *arg, goc_error **err);

/**
 * struct goc_retry_opts - options of goc_retry().
 * @backoff:          the policy (borrowed, used and changed by the loop);
 *                    NULL: goc_backoff_exponential() defaults.
 * @max_tries:        total attempts, >= 1 (GOC_RETRY_FOREVER: no limit).
 * @max_elapsed_time: total time budget (0: none beyond the policy's);
 *                    the last wait is shortened to fit it rather than
 *                    given up.
 * @from_first_failure: measure @max_elapsed_time from the first failure
 *                    instead of from the call.
 * @notify:           called before each wait with the failed attempt's
 *                    error and the wait, on the caller's thread; not
 *                    called when the loop stops.
 */
struct goc_retry_opts {
    goc_backoff *backoff;
    int64_t max_tries;
    int64_t max_elapsed_time;
    bool from_first_failure;
    void (*notify)(const goc_error *err, int64_t wait, void *arg);
    void *notify_arg;
};

#define GOC_RETRY_FOREVER INT64_MAX

/**
 * struct goc_retry_result - what happened.
 * @attempts:  attempts run (0 only if the ctx had ended at entry).
 * @last_code: the last attempt's return code (0 if none ran or it
 *             succeeded).
 * @err:       NULL on success; otherwise a new error (release it) whose
 *             code is the reason (GOC_EPERMANENT, GOC_EEXHAUSTED,
 *             GOC_EMAXELAPSED, -ECANCELED, -ETIMEDOUT) and whose cause is
 *             the last attempt's error, so goc_error_is() matches both.
 */
struct goc_retry_result {
    int64_t attempts;
    int last_code;
    goc_error *err;
};

/**
 * goc_retry - run @op until it succeeds, the policy or options stop it,
 * it fails permanently, or @ctx ends.
 * @ctx: checked before every attempt, after every failed one and while
 *       waiting (NULL: never ends). Waits park a goroutine or block a
 *       plain thread. Once it has ended, its error is the reason given,
 *       even if the policy stops at the same time; only a permanent
 *       error goes before it.
 *
 * A panic of @op or of a callback passes through, after the loop has
 * released the errors it held.
 * @opts: NULL for the defaults: GOC_RETRY_FOREVER tries of an exponential
 *       policy with its defaults (15 minutes at most).
 * @res: receives the result (may be NULL if only the code matters).
 *
 * Return: 0 on success; otherwise the reason, as in @res->err's code;
 * -EINVAL for a NULL @op, max_tries < 1, a negative max_elapsed_time or
 * an invalid policy (nothing runs then).
 */
GOC_API int goc_retry(goc_retry_op op,
                      void *arg,
                      const struct goc_retry_opts *opts,
                      struct goc_retry_result *res,
                      goc_ctx *ctx);

/* ---- a ticker at backoff intervals (cenkalti's Ticker) ------------------ */

/** A ticker whose ticks come at a backoff policy's intervals (opaque). */
typedef struct goc_backoff_ticker goc_backoff_ticker;

/**
 * goc_backoff_ticker_new - tick at once, then after each interval @b
 * gives, for a retry loop of the caller's own:
 *
 *     for (int64_t at; goc_chan_recv(goc_backoff_ticker_chan(t), &at,
 *                                    NULL) > 0;)
 *         if (attempt() == 0)
 *             break;
 *     goc_backoff_ticker_free(t);
 *
 * A tick waits until it is received, and the next interval starts then,
 * so ticks never pile up behind a slow attempt. The ticks end, and the
 * channel is closed, when the policy says stop, @ctx ends or the ticker
 * is stopped (goc_backoff_ticker_reason() tells which).
 * @b:   the policy (copied, then reset); its custom function and clock,
 *       if any, are called on the ticker's goroutine, but for the reset's
 *       read of the clock, made here on the caller's.
 * @ctx: ends the ticks (borrowed; must outlive the ticker); NULL: never.
 *
 * Return: 0; -EINVAL for NULL @b or @out, or a policy
 * goc_backoff_validate() refuses; -ENOMEM; goc_go()'s error.
 */
GOC_API int goc_backoff_ticker_new(const goc_backoff *b,
                                   goc_ctx *ctx,
                                   goc_backoff_ticker **out);

/**
 * goc_backoff_ticker_chan - the channel of ticks: int64_t values, the
 * goc_now() of each tick. Receive-only (a send or close is GOC_EMISUSE);
 * closed when the ticks end. Owned by the ticker. A NULL @t is a panic
 * naming the call (code -EINVAL), as for every getter without an error
 * code to return.
 */
GOC_API goc_chan *goc_backoff_ticker_chan(goc_backoff_ticker *t);

/**
 * goc_backoff_ticker_stop - end the ticks and wait until the channel is
 * closed. Idempotent; @t may be NULL.
 */
GOC_API void goc_backoff_ticker_stop(goc_backoff_ticker *t);

/**
 * goc_backoff_ticker_reason - why the ticks ended: 0 while they go on;
 * GOC_EEXHAUSTED when the policy said stop; -ECANCELED (@ctx cancelled,
 * or stopped) or -ETIMEDOUT (@ctx's deadline); -EINVAL for NULL.
 */
GOC_API int goc_backoff_ticker_reason(goc_backoff_ticker *t);

/** goc_backoff_ticker_free - stop the ticker and free it; NULL ignored. */
GOC_API void goc_backoff_ticker_free(goc_backoff_ticker *t);

#ifdef __cplusplus
}
#endif

#endif /* GOC_RETRY_H */
