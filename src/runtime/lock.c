/* SPDX-License-Identifier: MIT */
/* The runtime's internal futex lock and the futex wrappers under it. */
#include "../internal/cpu.h"
#include "../internal/futex.h"
#include "../internal/lock.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

void goc__futex_wait(_Atomic uint32_t *word,
                     uint32_t expected,
                     int64_t deadline)
{
    struct timespec ts, *tp = NULL;
    if (deadline >= 0) {
        ts.tv_sec = deadline / 1000000000;
        ts.tv_nsec = deadline % 1000000000;
        tp = &ts;
    }
    /* FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline. */
    syscall(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected,
            tp, NULL, FUTEX_BITSET_MATCH_ANY);
}

void goc__futex_wake(_Atomic uint32_t *word, int n)
{
    syscall(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n, NULL, NULL, 0);
}

/*
 * Contended path. Critical sections are a few dozen instructions, so spin a
 * little first: on this kind of VM a futex sleep and wake cost ~10 us.
 */
void goc__lock_slow(goc__lock *l)
{
    for (int i = 0; i < 100; i++) {
        if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
            goc__lock_try(l))
            return;
        goc__cpu_relax();
    }
    /* State 2 tells the releaser that someone may sleep on the word. */
    while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
        goc__futex_wait(&l->state, 2, -1);
}

void goc__lock_wake(goc__lock *l)
{
    goc__futex_wake(&l->state, 1);
}
