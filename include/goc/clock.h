/* SPDX-License-Identifier: MIT */
/*
 * goc/clock.h: an injectable clock for the time-dependent patterns (rate
 * limiter, circuit breaker, retry), so tests can drive time by hand.
 */
#ifndef GOC_CLOCK_H
#define GOC_CLOCK_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * goc_clock - a source of "now" in nanoseconds.
 * @now: returns the current time; called from any thread, possibly
 *       concurrently, and never under a lock that matters to it. It must
 *       not block.
 * @arg: passed to @now.
 *
 * Objects copy the struct at creation; passing NULL instead of a clock
 * means goc_now() (CLOCK_MONOTONIC). Times from a clock are compared with
 * each other only: a deadline of a goc_ctx is always on goc_now().
 */
typedef struct goc_clock {
    int64_t (*now)(void *arg);
    void *arg;
} goc_clock;

#ifdef __cplusplus
}
#endif

#endif /* GOC_CLOCK_H */
