/* SPDX-License-Identifier: MIT */
/*
 * goc__fastclock: CLOCK_MONOTONIC read from the cycle counter.
 *
 * ns = anchor.ns + ((cycles - anchor.cycles) * mult >> shift), where the
 * anchor is a pair read tightly (counter, clock_gettime, counter; of a few
 * tries the one with the smallest bracket) and mult / 2^shift is the
 * nanoseconds per cycle measured between two such pairs. The anchor is
 * published under a seqlock whose fields are all atomics read with relaxed
 * order, so a reader never sees a torn anchor and TSan sees no race.
 *
 * A reader that finds the anchor older than AGE_NS returns goc_now() and,
 * if no other thread is doing so (a try-lock, never waited on), takes a
 * new pair, measures the frequency again against a baseline pair a few
 * seconds old and publishes both. Renewing on the readers' own path keeps
 * the clock free of sysmon: it works on plain threads and before goc_init.
 * Because every anchor is a fresh reading of CLOCK_MONOTONIC and the
 * baseline slides, NTP's slewing of that clock is followed within seconds.
 */
#include "../internal/fastclock.h"
#include "runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#define FC_COUNTER 1
#elif defined(__aarch64__)
#define FC_COUNTER 1
#else
#define FC_COUNTER 0
#endif

#define AGE_NS      (64 * 1000000LL)   /* an anchor's longest life */
#define CALIB_NS    (10 * 1000000LL)   /* the first frequency's baseline */
#define ROTATE_NS   (2 * 1000000000LL) /* the baseline is 2-4 s old */
#define PAIR_TRIES  5
#define FREQ_TOL    0.02 /* a larger change means the counter jumped */
#define FREQ_UNC    2e-5 /* the most uncertainty a new frequency may have */
#define PAIR_MAX_NS 2000 /* the widest bracket an anchor may have */

enum { FC_UNKNOWN, FC_OFF, FC_ON };

/* The published anchor, in one cache line; fields are read under seq. */
static struct {
    _Alignas(64) _Atomic uint32_t seq; /* odd while being written */
    _Atomic uint32_t shift;
    _Atomic uint64_t cyc;
    _Atomic int64_t ns;
    _Atomic uint64_t mult;
    _Atomic uint64_t maxd; /* an anchor's life in cycles; 0: none yet */
    _Atomic int mode;
} fc;

struct pair {
    uint64_t cyc;
    int64_t ns;
    uint64_t width; /* the bracket, in cycles: cyc is good to width/2 */
};

/* The writer's state, owned by whoever holds busy. */
static _Alignas(64) _Atomic int busy;
static struct pair base, mid;
static double cyc_per_ns; /* 0 until measured */
/* cyc_per_ns came from the architecture (cntfrq_el0), not a measurement:
 * firmware may state it wrong, so the first measurement replaces it. */
static bool provisional;
/* The last frequency refused as a jump; a second one agreeing with it
 * means the rate really changed, and it is taken. */
static double refused_f;

/* The counter as the fast path reads it: not serialising. */
static inline uint64_t cycles(void)
{
#if defined(__x86_64__)
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("mrs %0, cntvct_el0" : "=r"(v));
    return v;
#else
    return 0;
#endif
}

/* The counter after every earlier instruction, for tight pairs. */
static inline uint64_t cycles_ordered(void)
{
#if defined(__x86_64__)
    __builtin_ia32_lfence();
    return __builtin_ia32_rdtsc();
#elif defined(__aarch64__)
    uint64_t v;
    __asm__ volatile("isb\n\tmrs %0, cntvct_el0" : "=r"(v)::"memory");
    return v;
#else
    return 0;
#endif
}

/* A {counter, CLOCK_MONOTONIC} pair: the counter is the middle of the
 * smallest bracket around clock_gettime of a few tries. */
static struct pair take_pair(void)
{
    struct pair best = { 0, 0, UINT64_MAX };
    for (int i = 0; i < PAIR_TRIES; i++) {
        uint64_t c1 = cycles_ordered();
        int64_t ns = goc__nanotime();
        uint64_t c2 = cycles_ordered();
        if (c2 - c1 < best.width)
            best = (struct pair){ c1 + (c2 - c1) / 2, ns, c2 - c1 };
    }
    return best;
}

#if defined(__x86_64__)
/* The kernel keeps its own time on the TSC only when it found the TSC
 * synchronised across CPUs and stable: trust it no further than that. */
static bool clocksource_is_tsc(void)
{
    int fd = open("/sys/devices/system/clocksource/clocksource0/"
                  "current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    char buf[16];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) < 0 && errno == EINTR)
        ;
    close(fd);
    return (n == 3 || (n > 3 && buf[3] == '\n')) && memcmp(buf, "tsc", 3) == 0;
}
#endif

static bool counter_usable(void)
{
    const char *env = getenv("GOC_FASTCLOCK");
    if (env && strcmp(env, "0") == 0)
        return false;
#if defined(__x86_64__)
    unsigned a, b, c, d;
    /* CPUID 0x80000007 EDX bit 8: the TSC ticks at a constant rate in
     * every P-, C- and T-state. */
    if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
        return false;
    return clocksource_is_tsc();
#else
    return FC_COUNTER;
#endif
}

/* Publish @p as the anchor with the current frequency. */
static void publish(struct pair p)
{
    double ns_per_cyc = 1.0 / cyc_per_ns;
    uint64_t maxd = (uint64_t)((double)AGE_NS * cyc_per_ns) + 1;
    /* The largest shift (at most 32) for which maxd * mult stays below
     * 2^62, so the reader's multiply cannot overflow. */
    uint32_t shift = 32;
    while (shift > 0 &&
           ns_per_cyc * (double)((uint64_t)1 << shift) * (double)maxd >= 0x1p62)
        shift--;
    uint64_t mult =
        (uint64_t)(ns_per_cyc * (double)((uint64_t)1 << shift) + 0.5);
    uint32_t s = atomic_load_explicit(&fc.seq, memory_order_relaxed);
    atomic_store_explicit(&fc.seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&fc.cyc, p.cyc, memory_order_relaxed);
    atomic_store_explicit(&fc.ns, p.ns, memory_order_relaxed);
    atomic_store_explicit(&fc.mult, mult, memory_order_relaxed);
    atomic_store_explicit(&fc.shift, shift, memory_order_relaxed);
    atomic_store_explicit(&fc.maxd, maxd, memory_order_relaxed);
    atomic_store_explicit(&fc.seq, s + 2, memory_order_release);
}

/* Measure the frequency from the baseline to @p; false while there is
 * none yet. */
static bool measure(struct pair p)
{
    int64_t dns = p.ns - base.ns;
    int64_t dcyc = (int64_t)(p.cyc - base.cyc);
    if (dns < CALIB_NS)
        return cyc_per_ns > 0;
    if (dcyc <= 0) { /* the counter was reset: a new baseline */
        base = mid = p;
        return cyc_per_ns > 0;
    }
    /* Pairs read while preempted have wide brackets: an estimate from them
     * waits for a longer baseline (or, measuring the first one, for a
     * better baseline pair) rather than being trusted. */
    if ((double)(base.width + p.width) / 2 > FREQ_UNC * (double)dcyc) {
        if (cyc_per_ns == 0 && p.width < base.width)
            base = mid = p;
        return cyc_per_ns > 0;
    }
    double f = (double)dcyc / (double)dns;
    if (f < 1e-3 || f > 100) { /* not a counter rate: 1 MHz to 100 GHz */
        base = mid = p;
        return cyc_per_ns > 0;
    }
    /* Far from the last estimate means the counter jumped (a suspend, a
     * migrated VM): start a new baseline and keep the old frequency,
     * unless the last refusal measured the same rate again. */
    double r = cyc_per_ns > 0 && !provisional ? f / cyc_per_ns : 1;
    if (r < 1 - FREQ_TOL || r > 1 + FREQ_TOL) {
        double again = refused_f > 0 ? f / refused_f : 0;
        refused_f = f;
        if (again < 1 - FREQ_TOL / 20 || again > 1 + FREQ_TOL / 20) {
            base = mid = p;
            return cyc_per_ns > 0;
        }
    }
    refused_f = 0;
    provisional = false;
    cyc_per_ns = f;
    if (p.ns - mid.ns >= ROTATE_NS) {
        base = mid;
        mid = p;
    }
    return true;
}

static void child_after_fork(void)
{
    /* The thread renewing the anchor did not come along: free the lock,
     * and if it was publishing, drop the half-written anchor (no anchor
     * sends the next reader to renew it). */
    uint32_t s = atomic_load_explicit(&fc.seq, memory_order_relaxed);
    if (s & 1) {
        atomic_store_explicit(&fc.maxd, 0, memory_order_relaxed);
        atomic_store_explicit(&fc.seq, s + 1, memory_order_release);
    }
    atomic_store_explicit(&busy, 0, memory_order_relaxed);
}

static void start(void)
{
    if (!counter_usable()) {
        atomic_store_explicit(&fc.mode, FC_OFF, memory_order_relaxed);
        return;
    }
    pthread_atfork(NULL, NULL, child_after_fork);
    base = mid = take_pair();
#if defined(__aarch64__)
    /* The architecture states the frequency: usable at once, and then
     * refined like any other. */
    uint64_t hz;
    __asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
    if (hz >= 1000000) {
        cyc_per_ns = (double)hz / 1e9;
        provisional = true;
        publish(base);
    }
#endif
    atomic_store_explicit(&fc.mode, FC_ON, memory_order_relaxed);
}

/* Under busy: decide on first use, else renew a stale anchor. */
static void renew(int64_t now)
{
    int mode = atomic_load_explicit(&fc.mode, memory_order_relaxed);
    if (mode == FC_UNKNOWN) {
        start();
        return;
    }
    if (mode != FC_ON || (cyc_per_ns == 0 && now - base.ns < CALIB_NS))
        return;
    /* Another thread may have renewed it since this one looked. */
    uint64_t maxd = atomic_load_explicit(&fc.maxd, memory_order_relaxed);
    uint64_t cyc = atomic_load_explicit(&fc.cyc, memory_order_relaxed);
    if (maxd && cycles() - cyc < maxd)
        return;
    struct pair p = take_pair();
    /* A pair read while preempted is off by half its bracket: leave the
     * anchor stale, and the next reader tries again. */
    if (cyc_per_ns > 0 && (double)p.width > PAIR_MAX_NS * cyc_per_ns)
        return;
    if (measure(p))
        publish(p);
}

static __attribute__((noinline)) int64_t slow(void)
{
    int64_t now = goc__nanotime();
    if (atomic_load_explicit(&fc.mode, memory_order_relaxed) == FC_OFF)
        return now;
    if (atomic_load_explicit(&busy, memory_order_relaxed) ||
        atomic_exchange_explicit(&busy, 1, memory_order_acquire))
        return now;
    renew(now);
    atomic_store_explicit(&busy, 0, memory_order_release);
    return now;
}

int64_t goc__fastclock(void)
{
    uint32_t s = atomic_load_explicit(&fc.seq, memory_order_acquire);
    uint64_t cyc = atomic_load_explicit(&fc.cyc, memory_order_relaxed);
    int64_t ns = atomic_load_explicit(&fc.ns, memory_order_relaxed);
    uint64_t mult = atomic_load_explicit(&fc.mult, memory_order_relaxed);
    uint32_t shift = atomic_load_explicit(&fc.shift, memory_order_relaxed);
    uint64_t maxd = atomic_load_explicit(&fc.maxd, memory_order_relaxed);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&fc.seq, memory_order_relaxed) != s || (s & 1))
        return goc__nanotime(); /* being renewed just now */
    if (maxd == 0)
        return slow(); /* off, or no frequency yet */
    uint64_t d = cycles() - cyc;
    if (__builtin_expect(d < maxd, 1))
        return ns + (int64_t)((d * mult) >> shift);
    /* A counter a little behind the anchor (read early, as the read is
     * not ordered) needs no renewal; one far behind was reset (a resume
     * from suspend, a restored VM): renewing starts a new baseline. */
    if ((int64_t)d < 0 && (int64_t)d > -(int64_t)maxd)
        return goc__nanotime();
    return slow();
}

bool goc__fastclock_counting(void)
{
    return atomic_load_explicit(&fc.mode, memory_order_relaxed) == FC_ON &&
           atomic_load_explicit(&fc.maxd, memory_order_relaxed) != 0;
}
