/* SPDX-License-Identifier: MIT */
/*
 * goc__fastclock: goc_now()'s clock (CLOCK_MONOTONIC, ns) read from the
 * CPU's cycle counter, for hot paths that read the time on every call.
 */
#ifndef GOC_INTERNAL_FASTCLOCK_H
#define GOC_INTERNAL_FASTCLOCK_H

#include <stdbool.h>
#include <stdint.h>

/**
 * goc__fastclock - CLOCK_MONOTONIC nanoseconds, cheaply.
 *
 * On x86-64 with an invariant TSC that the kernel itself uses as its
 * clocksource, and on aarch64 (cntvct_el0), the counter is converted to
 * nanoseconds against an anchor pair {cycles, goc_now()} that is renewed
 * when it is 64 ms old, with a frequency measured over a sliding baseline
 * of a few seconds, so it follows NTP's slewing of CLOCK_MONOTONIC.
 * Elsewhere, with GOC_FASTCLOCK=0 in the environment at its first call,
 * and for its first 10 ms (while the frequency is measured) it returns
 * goc_now() itself.
 *
 * It is not a replacement for goc_now(): it may differ from it by the
 * error of its anchor (half a pair's bracket, at most 1 us) plus the
 * drift of one 64 ms anchor period (the frequency error, at most 2e-5,
 * about 1.3 us, or a change in NTP's slew, at most 32 us at 500 ppm):
 * typically well under a microsecond, a few at worst,
 * so consecutive calls may go backwards by that much when an anchor is
 * renewed, and the counter read is not ordered against other memory
 * operations (rdtsc does not serialise). Use it where that is harmless,
 * as in the rate limiter, whose arithmetic tolerates a clock stepping
 * back. Callable from any thread, before goc_init too; never blocks.
 *
 * Return: nanoseconds on goc_now()'s clock.
 */
int64_t goc__fastclock(void);

/**
 * goc__fastclock_counting - whether goc__fastclock() reads the counter.
 *
 * Return: true once its readings come from the cycle counter (a frequency
 * has been measured); false while it returns goc_now() (not yet measured,
 * not supported here, or GOC_FASTCLOCK=0).
 */
bool goc__fastclock_counting(void);

#endif /* GOC_INTERNAL_FASTCLOCK_H */
