/* SPDX-License-Identifier: MIT */
/*
 * goc/breaker.h: a circuit breaker with sony/gobreaker v2's state machine
 * (closed, open, half-open; generations; interval or rolling window;
 * two-step allow/done) and, as options, resilience4j's rate-based trip
 * over a count- or time-based sliding window, an open-state backoff, and
 * the manual states forced-open, disabled and metrics-only.
 *
 * The protected call never runs under a lock: the breaker locks only for
 * its bookkeeping before and after. State-change callbacks run after the
 * lock is released, one at a time per breaker, in transition order.
 *
 * A callback that panics leaves the breaker whole, and the panic goes on
 * to the caller (the first, if two panic in one call): a panicking
 * is_successful or is_excluded counts the call as a failure, a panicking
 * ready_to_trip does not trip, a panicking open_backoff gives that
 * opening the plain timeout, and a panicking on_state_change loses only
 * its own notice (in goc_breaker_allow(), the call it admitted is taken
 * back: it never ran).
 */
#ifndef GOC_BREAKER_H
#define GOC_BREAKER_H

#include "clock.h"
#include "common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The breaker's states. */
typedef enum goc_breaker_state {
    GOC_BREAKER_CLOSED = 0,   /* calls pass; failures are counted */
    GOC_BREAKER_HALF_OPEN,    /* a limited number of probes pass */
    GOC_BREAKER_OPEN,         /* calls fail fast until the timeout */
    GOC_BREAKER_FORCED_OPEN,  /* manual: every call fails fast */
    GOC_BREAKER_DISABLED,     /* manual: every call passes, nothing counted */
    GOC_BREAKER_METRICS_ONLY, /* manual: counted, never trips */
} goc_breaker_state;

/** goc_breaker_state_name - "closed", "half-open", "open", ... */
GOC_API const char *goc_breaker_state_name(goc_breaker_state s);

/**
 * goc_breaker_counts - gobreaker's Counts, for the current generation
 * (cleared at each state change and when a closed-state interval ends),
 * plus the calls in flight (never cleared: admitted, not yet done).
 */
struct goc_breaker_counts {
    int64_t requests;
    int64_t total_successes;
    int64_t total_failures;
    int64_t total_exclusions;
    int64_t consecutive_successes;
    int64_t consecutive_failures;
    int64_t in_flight;
};

/** Sliding-window kinds for the rate-based trip (resilience4j). */
enum goc_breaker_window {
    GOC_BREAKER_WINDOW_NONE = 0, /* gobreaker: ready_to_trip only */
    GOC_BREAKER_WINDOW_COUNT,    /* the last window_size calls */
    GOC_BREAKER_WINDOW_TIME,     /* the last window_size seconds */
};

/**
 * goc_breaker_settings - configuration; zero-filled gives gobreaker's
 * defaults. Durations are ns.
 * @name:           copied (at most 63 bytes kept); NULL for "".
 * @max_requests:   probes admitted in half-open; also the consecutive
 *                  successes that close it, unless @half_open_successes
 *                  is set. 0 means 1.
 * @half_open_successes: successes needed to close from half-open
 *                  (0: @max_requests; must not exceed @max_requests).
 * @interval:       closed state: counts are cleared every @interval
 *                  (<= 0: never).
 * @bucket_period:  > 0 turns @interval into a rolling window of
 *                  ceil(interval / bucket_period) buckets, at most
 *                  2^24 (needs @interval > 0); counts decay bucket by
 *                  bucket.
 * @timeout:        time spent open before half-open (<= 0: 60 s).
 * @open_backoff:   if set, the open time for the @attempt-th opening in a
 *                  row (1, 2, ...; reset when the breaker closes) instead
 *                  of @timeout; a result <= 0 means @timeout.
 * @ready_to_trip:  called after a failure in the closed state with the
 *                  updated counts; true opens. NULL: consecutive failures
 *                  > 5 (unless a window is set, which then decides alone).
 * @is_successful:  NULL: err == 0. True counts as a success.
 * @is_excluded:    NULL: nothing. True counts as neither (the probe slot is
 *                  given back in half-open).
 * @on_state_change: called after every transition, outside the lock, in
 *                  transition order, never two at once for one breaker, on
 *                  the thread of the call that caused the transition (or
 *                  of a call that found the delivery queue non-empty). It
 *                  may call into the breaker.
 * @arg:            passed to every callback.
 * @window:         a sliding window for the rate-based trip.
 * @window_size:    calls (COUNT) or seconds (TIME); default 100.
 * @minimum_calls:  calls in the window before rates are judged
 *                  (default 100, capped at @window_size for COUNT).
 * @failure_rate_threshold: percent in (0, 100]; default 50.
 * @slow_call_rate_threshold: percent in (0, 100]; default 100.
 * @slow_call_duration: a call at least this long is slow (default 60 s).
 * @clock:          time source (copied), NULL for goc_now().
 */
struct goc_breaker_settings {
    const char *name;
    uint32_t max_requests;
    uint32_t half_open_successes;
    int64_t interval;
    int64_t bucket_period;
    int64_t timeout;
    int64_t (*open_backoff)(int64_t attempt, void *arg);
    bool (*ready_to_trip)(const struct goc_breaker_counts *c, void *arg);
    bool (*is_successful)(int err, void *arg);
    bool (*is_excluded)(int err, void *arg);
    void (*on_state_change)(const char *name,
                            goc_breaker_state from,
                            goc_breaker_state to,
                            void *arg);
    void *arg;
    enum goc_breaker_window window;
    int64_t window_size;
    int64_t minimum_calls;
    double failure_rate_threshold;
    double slow_call_rate_threshold;
    int64_t slow_call_duration;
    const goc_clock *clock;
};

/** A circuit breaker (heap object). */
typedef struct goc_breaker goc_breaker;

/**
 * goc_breaker_token - an admitted call of the two-step API; complete it
 * with goc_breaker_done() exactly once. A plain value, fields private.
 */
typedef struct goc_breaker_token {
    uint64_t gen_;
    int64_t bucket_;
    int64_t start_;
    int live_;
    const void *owner_;
} goc_breaker_token;

/**
 * goc_breaker_new - create a closed breaker.
 * @s:   settings (borrowed; NULL for all defaults).
 * @out: receives the breaker.
 *
 * Return: 0; -EINVAL for a bad setting (half_open_successes >
 * max_requests, bucket_period without interval or making over 2^24
 * buckets, an unknown window, a window_size < 0 or above 2^24, a
 * threshold outside (0, 100] other than 0 for the default, a negative
 * minimum_calls; the window's settings are judged even with no window);
 * -ENOMEM.
 */
GOC_API int goc_breaker_new(const struct goc_breaker_settings *s,
                            goc_breaker **out);

/**
 * goc_breaker_free - free @b (NULL ignored). No call may be in progress.
 */
GOC_API void goc_breaker_free(goc_breaker *b);

/**
 * goc_breaker_execute - run @fn(@arg) if the breaker admits it.
 *
 * @fn runs on the caller's thread with no breaker lock held, so any
 * number of calls overlap in the closed state. Its result is classified
 * (excluded, success, failure; GOC_EPANIC is always a failure, whatever
 * is_successful/is_excluded say, as gobreaker counts a panic) and counted,
 * unless the breaker changed generation meanwhile. A panic in @fn (a
 * goc_panic()) is counted as a failure, then goes on to the caller's
 * goc_try(), as gobreaker re-panics.
 *
 * Return: @fn's result; GOC_EOPEN if open or forced open, GOC_ETOOMANY if
 * half-open and its probes are taken (@fn is not run then); -EINVAL if
 * @fn is NULL.
 */
GOC_API int goc_breaker_execute(goc_breaker *b, int (*fn)(void *), void *arg);

/**
 * goc_breaker_allow - step one of the two-step API: ask for admission.
 * @tok: receives the token to pass to goc_breaker_done().
 *
 * Return: 0 if admitted; GOC_EOPEN; GOC_ETOOMANY. Never blocks.
 */
GOC_API int goc_breaker_allow(goc_breaker *b, goc_breaker_token *tok);

/**
 * goc_breaker_done - step two: report the outcome @err of an admitted
 * call. A token from an earlier generation only releases its in-flight
 * count: its result belongs to a state that is gone.
 *
 * Return: 0; -EINVAL for a NULL @b or @tok; GOC_EMISUSE if @tok was
 * already completed or never admitted by @b (nothing changes). A token
 * never completed keeps its half-open probe slot until the breaker leaves
 * that generation.
 */
GOC_API int goc_breaker_done(goc_breaker *b, goc_breaker_token *tok, int err);

/** goc_breaker_state_now - the state now (may move open to half-open). */
GOC_API goc_breaker_state goc_breaker_state_now(goc_breaker *b);

/**
 * goc_breaker_counts - a snapshot of the counts of the current generation
 * and the calls in flight (may move open to half-open, as state_now).
 */
GOC_API void goc_breaker_counts(goc_breaker *b, struct goc_breaker_counts *c);

/** goc_breaker_name - the name given at creation. */
GOC_API const char *goc_breaker_name(goc_breaker *b);

/**
 * goc_breaker_transition - move to @to by hand (resilience4j's
 * transitionTo...). OPEN starts a normal open period (then half-open);
 * FORCED_OPEN holds it open until the next transition; DISABLED and
 * METRICS_ONLY never trip. Moving to the current state does nothing.
 *
 * Return: 0; -EINVAL for an unknown state.
 */
GOC_API int goc_breaker_transition(goc_breaker *b, goc_breaker_state to);

/** goc_breaker_trip - goc_breaker_transition(@b, GOC_BREAKER_OPEN). */
GOC_API int goc_breaker_trip(goc_breaker *b);

/**
 * goc_breaker_reset - back to CLOSED with every count and window cleared
 * and a new generation, from any state (a CLOSED breaker stays closed and
 * no callback runs).
 */
GOC_API void goc_breaker_reset(goc_breaker *b);

#ifdef __cplusplus
}
#endif

#endif /* GOC_BREAKER_H */
