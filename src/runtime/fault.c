/* SPDX-License-Identifier: MIT */
/*
 * Fault reports. Every M runs with an alternate signal stack. A SIGSEGV,
 * SIGBUS, SIGFPE or SIGILL in a goroutine is reported with the goroutine's
 * id and name, the fault address and a backtrace from the faulting frame;
 * a SIGSEGV or SIGBUS in the goroutine's guard page is reported as a stack
 * overflow (entry function, stack size, creator). Then the process ends
 * with status 2, as Go's does, or, with GOC_TRACEBACK=crash, by the signal
 * itself (for a core file). A fault outside any goroutine is passed to
 * the handler installed before goc's, and goc's stays installed. With
 * GOC_FAULT_REPORTS=0 goc installs none at all.
 *
 * The report formats with snprintf and looks symbols up, which is not
 * async-signal-safe in general; the process is ending, and the symbol
 * cache's lock is only tried, never waited for.
 */
#include "runtime.h"
#include "../internal/alloc.h"

#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <ucontext.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64 * 1024)

static const int fault_signals[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL };
static struct sigaction old_action[4];

/* Small async-signal-safe formatting into a fixed buffer. */
struct out {
    char buf[1024];
    size_t n;
};

static void out_str(struct out *o, const char *s)
{
    while (*s && o->n < sizeof(o->buf) - 1)
        o->buf[o->n++] = *s++;
}

static void out_num(struct out *o, uint64_t v, int base)
{
    char tmp[24];
    int i = 0;
    do {
        tmp[i++] = "0123456789abcdef"[v % (unsigned)base];
        v /= (unsigned)base;
    } while (v);
    if (base == 16)
        out_str(o, "0x");
    while (i > 0 && o->n < sizeof(o->buf) - 1)
        o->buf[o->n++] = tmp[--i];
}

/* An entry point (ret false) or a return address (ret true). */
static void out_sym(struct out *o, const void *pc, bool ret)
{
    char sym[256];
    if (!pc) {
        out_str(o, "?");
        return;
    }
    if (ret)
        goc__symbolize(pc, sym, sizeof(sym));
    else
        goc__symbolize_entry(pc, sym, sizeof(sym));
    out_str(o, sym);
}

struct overflow {
    struct goc__g *g;
    const void *addr;
};

static void overflow_report(void *arg)
{
    struct goc__g *g = ((struct overflow *)arg)->g;
    const void *addr = ((struct overflow *)arg)->addr;
    goc__symbolize_dying();
    struct out o = { .n = 0 };
    out_str(&o, "fatal error: stack overflow\n\ngoroutine ");
    out_num(&o, (uint64_t)g->id, 10);
    if (g->name[0]) {
        out_str(&o, " \"");
        out_str(&o, g->name);
        out_str(&o, "\"");
    }
    out_str(&o, ": stack of ");
    out_num(&o, g->stack_size, 10);
    out_str(&o, " bytes exhausted");
    if (addr) {
        out_str(&o, " (fault at ");
        out_num(&o, (uint64_t)(uintptr_t)addr, 16);
        out_str(&o, ")");
    } else {
        out_str(&o, " (stack canary overwritten)");
    }
    out_str(&o, "\n  entry: ");
    out_sym(&o, (const void *)(uintptr_t)g->fn, false);
    out_str(&o, "\n  created by goroutine ");
    out_num(&o, (uint64_t)g->parent_id, 10);
    out_str(&o, " at ");
    out_sym(&o, g->created_pc, true);
    out_str(&o, "\n");
    ssize_t r = write(2, o.buf, o.n);
    (void)r;
}

void goc__stack_overflow(struct goc__g *g, const void *addr)
{
    /* Not here: a canary found broken at a switch leaves the goroutine's
     * stack used up, with no guard page under it. */
    struct overflow o = { g, addr };
    goc__crash_report(overflow_report, &o);
}

static int signal_index(int sig)
{
    for (int i = 0; i < 4; i++)
        if (fault_signals[i] == sig)
            return i;
    return 0;
}

/* Program counter and frame pointer of the interrupted code. */
static void fault_regs(const void *uctx, uintptr_t *pc, uintptr_t *fp)
{
    const ucontext_t *uc = uctx;
#if defined(__x86_64__)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(__aarch64__)
    *pc = (uintptr_t)uc->uc_mcontext.pc;
    *fp = (uintptr_t)uc->uc_mcontext.regs[29];
#else
    (void)uc;
    *pc = *fp = 0;
#endif
}

/*
 * n advanced by what a call wrote into a buffer of cap bytes, not by what
 * it wanted to (snprintf and goc__symbolize return the full length): a
 * long symbol, a C++ template's, pushed n past the end, and the next
 * call's size wrapped.
 */
static int fit(int n, int added, size_t cap)
{
    if (added > 0)
        n += added;
    return n < (int)cap ? n : (int)cap - 1;
}

/* The signal's description comes from sigdescr_np, not strsignal: that
 * one translates through gettext, which may lock and allocate, and the
 * fault may have struck inside malloc. */
static void report_fault(int sig, siginfo_t *si, void *uctx, struct goc__g *g)
{
    char buf[4096];
    uintptr_t pc, fp;
    goc__symbolize_dying();
    fault_regs(uctx, &pc, &fp);
    int n =
        snprintf(buf, sizeof(buf),
                 "fatal error: unexpected signal SIG%s (%s)\n"
                 "[signal %d code=%d addr=%p pc=%p]\n\n"
                 "goroutine %lld%s%s%s [running]:\n",
                 sigabbrev_np(sig) ? sigabbrev_np(sig) : "?",
                 sigdescr_np(sig) ? sigdescr_np(sig) : "unknown signal", sig,
                 si->si_code, si->si_addr, (void *)pc, (long long)g->id,
                 g->name[0] ? " \"" : "", g->name, g->name[0] ? "\"" : "");
    void *pcs[32];
    int npc = 0;
    if (pc)
        pcs[npc++] = (void *)(pc + 1); /* symbolize looks one byte back */
    npc += goc__backtrace(pcs + npc, 32 - npc, (const void *)fp,
                          (uintptr_t)g->stack_lo, (uintptr_t)g);
    n = fit(0, n, sizeof(buf));
    for (int i = 0; i < npc && n < (int)sizeof(buf) - 300; i++) {
        n = fit(n, snprintf(buf + n, sizeof(buf) - (size_t)n, "\t"),
                sizeof(buf));
        n = fit(n, goc__symbolize(pcs[i], buf + n, sizeof(buf) - (size_t)n - 2),
                sizeof(buf));
        n = fit(n, snprintf(buf + n, sizeof(buf) - (size_t)n, "\n"),
                sizeof(buf));
    }
    n = fit(n, snprintf(buf + n, sizeof(buf) - (size_t)n, "\n"), sizeof(buf));
    ssize_t r = write(2, buf, (size_t)n);
    (void)r;
    goc__dump_others(2);
}

/*
 * A fault outside any goroutine goes to the handler installed before
 * goc's, called as the kernel would have: with the mask of the faulting
 * code plus its sa_mask, and the signal too unless SA_NODEFER. The mask
 * is set whole, not added to the one goc's handler runs with: that one
 * blocks the signal, and a SA_NODEFER handler may rely on a nested fault
 * of its own being delivered. goc's handler stays installed: were the
 * old one put back instead, a handler that recovers from faults (a JVM's,
 * libsigsegv's, a GC's write barrier) would leave goroutine faults
 * unreported from then on. With no handler to call, a signal that was
 * sent, not caused, is ignored under SIG_IGN as the kernel would, and
 * sent again under SIG_DFL, as it will not recur by itself; a real fault
 * (which the kernel does not let SIG_IGN ignore) restores the default
 * and the instruction faults again into it.
 */
static void chain(int sig, siginfo_t *si, void *uctx)
{
    struct sigaction *old = &old_action[signal_index(sig)];
    bool sent = si->si_code <= 0; /* SI_USER, SI_TKILL, SI_QUEUE */
    if (old->sa_handler == SIG_IGN && sent)
        return;
    if (old->sa_handler == SIG_DFL || old->sa_handler == SIG_IGN) {
        signal(sig, SIG_DFL);
        if (sent)
            raise(sig);
        return;
    }
    struct sigaction call = *old;
    if (call.sa_flags & SA_RESETHAND)
        old->sa_handler = SIG_DFL; /* once, as the kernel would */
    sigset_t mask, saved;
    mask = ((ucontext_t *)uctx)->uc_sigmask;
    for (int s = 1; s < NSIG; s++)
        if (sigismember(&call.sa_mask, s) == 1)
            sigaddset(&mask, s);
    if (!(call.sa_flags & SA_NODEFER))
        sigaddset(&mask, sig);
    pthread_sigmask(SIG_SETMASK, &mask, &saved);
    if (call.sa_flags & SA_SIGINFO)
        call.sa_sigaction(sig, si, uctx);
    else
        call.sa_handler(sig);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
    struct goc__m *m = goc__m_current();
    struct goc__g *g = m && m->curg && m->curg != &m->g0 ? m->curg : NULL;
    if (g && (sig == SIGSEGV || sig == SIGBUS) &&
        goc__stack_guard_hit(g, si->si_addr))
        goc__stack_overflow(g, si->si_addr);
    if (g) {
        goc__crash_gate(); /* on the signal stack, of a size for it */
        report_fault(sig, si, uctx, g);
        const char *tb = getenv("GOC_TRACEBACK");
        if (!tb || strcmp(tb, "crash") != 0)
            _exit(2);
        signal(sig, SIG_DFL); /* re-fault into the default: a core */
        if (si->si_code <= 0)
            raise(sig); /* sent, not caused: it would not come again */
        return;
    }
    chain(sig, si, uctx);
}

/*
 * Signals no thread of goc's blocks: a fault's, which must reach the
 * handler (the kernel kills a thread that faults with it blocked, and
 * nothing is reported), and SIGPROF, the CPU profiler's per-thread timer.
 */
static const int never_blocked[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGPROF };

/* The mask every M runs with: the program's, as the runtime's starter
 * had it, less never_blocked. */
static sigset_t m_mask;

static void unblock_needed(sigset_t *set)
{
    for (size_t i = 0; i < sizeof(never_blocked) / sizeof(never_blocked[0]);
         i++)
        sigdelset(set, never_blocked[i]);
}

void goc__sigmask_service(sigset_t *set, bool profiled)
{
    sigfillset(set);
    unblock_needed(set);
    if (!profiled)
        sigaddset(set, SIGPROF);
}

void goc__sigmask_m(void)
{
    pthread_sigmask(SIG_SETMASK, &m_mask, NULL);
}

void goc__sigmask_m_get(sigset_t *set)
{
    *set = m_mask;
}

int goc__fault_init(void)
{
    pthread_sigmask(SIG_BLOCK, NULL, &m_mask);
    unblock_needed(&m_mask);
    /* GOC_FAULT_REPORTS=0: the program handles faults itself (a crash
     * reporter of its own, say) and goc installs no handler; a stack
     * overflow is then a plain SIGSEGV on the alternate stack. */
    const char *env = getenv("GOC_FAULT_REPORTS");
    if (env && strcmp(env, "0") == 0)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 4; i++)
        if (sigaction(fault_signals[i], &sa, &old_action[i]) != 0)
            return -errno;
    return 0;
}

int goc__fault_altstack_new(struct goc__m *m)
{
    m->altstack = goc__malloc(ALTSTACK_SIZE);
    return m->altstack ? 0 : -ENOMEM;
}

int goc__fault_thread_init(struct goc__m *m)
{
    stack_t ss = { .ss_sp = m->altstack, .ss_size = ALTSTACK_SIZE };
    return sigaltstack(&ss, NULL) == 0 ? 0 : -errno;
}
