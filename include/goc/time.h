/* SPDX-License-Identifier: MIT */
/*
 * goc/time.h: the monotonic clock and sleeping.
 *
 * Time is int64_t nanoseconds. A parameter named `deadline` is an absolute
 * goc_now() value; one named `timeout` or `ns` is relative.
 */
#ifndef GOC_TIME_H
#define GOC_TIME_H

#include "common.h"

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
 * first (or had ended at entry).
 */
GOC_API int goc_sleep(int64_t ns, goc_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* GOC_TIME_H */
