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
 * Contended path. Critical sections are a few dozen instructions, so spin
 * first: a futex sleep and wake cost ~10 us on a VM. The pauses between
 * looks double (1, 2, 4 ... 64): a waiter that polls the lock's cache line
 * too often keeps taking it away from the holder, which needs it back to
 * release the lock (2.7x on chan_mpmc against a fixed one-pause poll).
 */
void goc__lock_slow(goc__lock *l)
{
    for (int i = 0, pause = 1; i < 12; i++) {
        if (atomic_load_explicit(&l->state, memory_order_relaxed) == 0 &&
            goc__lock_try(l))
            return;
        for (int k = 0; k < pause; k++)
            goc__cpu_relax();
        if (pause < 64)
            pause *= 2;
    }
    /* State 2 tells the releaser that someone may sleep on the word. */
    while (atomic_exchange_explicit(&l->state, 2, memory_order_acquire) != 0)
        goc__futex_wait(&l->state, 2, -1);
}

void goc__lock_wake(goc__lock *l)
{
    goc__futex_wake(&l->state, 1);
}
