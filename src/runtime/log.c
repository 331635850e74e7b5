/* SPDX-License-Identifier: MIT */
/*
 * The runtime's reports: to standard error, or to a hook the user sets.
 *
 * The hook is a pair, fn and arg, that must be read whole: a report must
 * never call one hook's fn with another's arg (nor fn with the NULL arg
 * of a removal). It is a seqlock: a setter makes seq odd, writes both
 * halves and makes it even again; a reader retries while seq is odd or
 * has moved under it. Nothing is held while the hook runs, so a hook may
 * itself log or set the hook without deadlocking.
 */
#include "runtime.h"
#include "../internal/cpu.h"

#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static struct {
    _Atomic unsigned seq; /* odd while a setter writes */
    goc_log_fn _Atomic fn;
    void *_Atomic arg;
} hook;

/* Make seq odd: ours to write, other setters wait. */
static unsigned hook_lock(void)
{
    for (;;) {
        unsigned s = atomic_load_explicit(&hook.seq, memory_order_relaxed);
        if (!(s & 1) && atomic_compare_exchange_weak_explicit(
                            &hook.seq, &s, s + 1, memory_order_acquire,
                            memory_order_relaxed))
            return s + 1;
        goc__cpu_relax();
    }
}

void goc_set_log_hook(goc_log_fn fn, void *arg)
{
    unsigned s = hook_lock();
    /* The odd seq is seen before either half changes. */
    atomic_thread_fence(memory_order_release);
    atomic_store_explicit(&hook.fn, fn, memory_order_relaxed);
    atomic_store_explicit(&hook.arg, arg, memory_order_relaxed);
    atomic_store_explicit(&hook.seq, s + 1, memory_order_release);
}

/* The current pair, read whole. A setter is brief, but may be preempted
 * midway: after a while, give it the CPU. */
static goc_log_fn hook_read(void **arg)
{
    for (int spins = 0;; spins++) {
        unsigned s = atomic_load_explicit(&hook.seq, memory_order_acquire);
        if (!(s & 1)) {
            goc_log_fn fn =
                atomic_load_explicit(&hook.fn, memory_order_relaxed);
            *arg = atomic_load_explicit(&hook.arg, memory_order_relaxed);
            /* Both halves are read before seq is checked again. */
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&hook.seq, memory_order_relaxed) == s)
                return fn;
        }
        if (spins < 100)
            goc__cpu_relax();
        else
            sched_yield();
    }
}

static void log_msg(const char *msg)
{
    void *arg;
    goc_log_fn fn = hook_read(&arg);
    if (fn) {
        fn(msg, arg);
        return;
    }
    dprintf(2, "goc: %s\n", msg);
}

void goc__log(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_msg(msg);
}

void goc__held_log_add(struct goc__held_log *h, const char *fmt, ...)
{
    if (h->n >= (int)(sizeof(h->msg) / sizeof(h->msg[0])))
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(h->msg[h->n++], sizeof(h->msg[0]), fmt, ap);
    va_end(ap);
}

void goc__held_log_flush(struct goc__held_log *h)
{
    for (int i = 0; i < h->n; i++)
        log_msg(h->msg[i]);
    h->n = 0;
}
