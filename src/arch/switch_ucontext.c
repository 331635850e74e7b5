/* SPDX-License-Identifier: MIT */
/*
 * Portable context switch on ucontext, for targets without an assembly
 * switch (or when GOC_PORTABLE_SWITCH is forced). About a hundred times
 * slower than the assembly: glibc's swapcontext makes a sigprocmask system
 * call per switch. A suspended context is a pointer to a ucontext_t stored
 * on the suspended stack itself.
 */
#include "switch.h"

#if (!defined(__x86_64__) && !defined(__aarch64__)) || \
    defined(GOC_PORTABLE_SWITCH)

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <ucontext.h>

/* The signal mask goroutines run with (runtime/fault.c). */
void goc__sigmask_m_get(sigset_t *set);

void goc__ctx_switch(void **from_sp, void *to_sp)
{
    ucontext_t self;
    *from_sp = &self;
    if (swapcontext(&self, (ucontext_t *)to_sp) != 0)
        abort();
}

struct start_args {
    void (*entry)(void *);
    void *arg;
};

/* makecontext passes int arguments only: split each pointer in halves
 * (the high one is 0 where a pointer fits in an int). */
static uintptr_t join_halves(unsigned lo, unsigned hi)
{
#if UINTPTR_MAX > 0xffffffffu
    return ((uintptr_t)hi << 32) | (uintptr_t)lo;
#else
    (void)hi;
    return (uintptr_t)lo;
#endif
}

static void start(unsigned lo_e, unsigned hi_e, unsigned lo_a, unsigned hi_a)
{
    void (*entry)(void *) = (void (*)(void *))join_halves(lo_e, hi_e);
    void *arg = (void *)join_halves(lo_a, hi_a);
    entry(arg);
    abort(); /* goroutine bodies exit through the runtime */
}

void *goc__ctx_make(void *stack_lo,
                    void *stack_top,
                    void (*entry)(void *),
                    void *arg)
{
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    ucontext_t *uc = (ucontext_t *)((top - sizeof(ucontext_t)) & ~15UL);
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    if (getcontext(uc) != 0)
        abort();
    /* swapcontext installs the mask a context saved: a new one must carry
     * the runtime's, not that of the thread making it (a thread of the
     * program's, which may block what goroutines must not). */
    goc__sigmask_m_get(&uc->uc_sigmask);
    /* The usable stack lies below the ucontext itself. */
    uc->uc_stack.ss_sp = stack_lo;
    uc->uc_stack.ss_size = (size_t)((char *)uc - (char *)stack_lo);
    uc->uc_link = NULL;
    makecontext(uc, (void (*)(void))start, 4, (unsigned)e,
                (unsigned)((uint64_t)e >> 32), (unsigned)a,
                (unsigned)((uint64_t)a >> 32));
    return uc;
}

#endif
