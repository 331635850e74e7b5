/* SPDX-License-Identifier: MIT */
/* Thin wrappers over the futex system call (private futexes only). */
#ifndef GOC_INTERNAL_FUTEX_H
#define GOC_INTERNAL_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

/*
 * Sleep while *word == expected, until woken or, when deadline >= 0, until
 * the monotonic clock passes deadline (ns). Spurious returns are possible:
 * callers re-check their condition.
 */
void goc__futex_wait(_Atomic uint32_t *word,
                     uint32_t expected,
                     int64_t deadline);

/* Wake up to n sleepers on word. */
void goc__futex_wake(_Atomic uint32_t *word, int n);

#endif /* GOC_INTERNAL_FUTEX_H */
