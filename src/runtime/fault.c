/* SPDX-License-Identifier: MIT */
/*
 * Stack overflow reports. Every M runs with an alternate signal stack, and
 * the SIGSEGV/SIGBUS handler checks whether the fault address lies in the
 * running goroutine's guard page. If so it prints which goroutine
 * overflowed (id, name, entry function, stack size, creator) and ends the
 * process with status 2, as Go does; any other fault goes to the handler
 * that was installed before goc's.
 */
#include "runtime.h"
#include "../internal/alloc.h"

#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64 * 1024)

static struct sigaction old_segv, old_bus;

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

static void out_sym(struct out *o, const void *pc)
{
    Dl_info info;
    if (pc && dladdr(pc, &info) && info.dli_sname) {
        out_str(o, info.dli_sname);
        out_str(o, "+");
        out_num(o, (uint64_t)((const char *)pc - (const char *)info.dli_saddr),
                16);
    } else {
        out_num(o, (uint64_t)(uintptr_t)pc, 16);
    }
}

void goc__stack_overflow(struct goc__g *g, const void *addr)
{
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
    out_sym(&o, (const void *)(uintptr_t)g->fn);
    out_str(&o, "\n  created by goroutine ");
    out_num(&o, (uint64_t)g->parent_id, 10);
    out_str(&o, " at ");
    out_sym(&o, g->created_pc);
    out_str(&o, "\n");
    ssize_t r = write(2, o.buf, o.n);
    (void)r;
    _exit(2);
}

static void on_fault(int sig, siginfo_t *si, void *uctx)
{
    (void)uctx;
    struct goc__m *m = goc__m_current();
    if (m && m->curg && m->curg != &m->g0 &&
        goc__stack_guard_hit(m->curg, si->si_addr))
        goc__stack_overflow(m->curg, si->si_addr);
    /* Not ours: restore the previous disposition and re-fault into it. */
    sigaction(sig, sig == SIGSEGV ? &old_segv : &old_bus, NULL);
}

int goc__fault_init(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &old_segv) != 0 ||
        sigaction(SIGBUS, &sa, &old_bus) != 0)
        return -errno;
    return 0;
}

int goc__fault_thread_init(struct goc__m *m)
{
    m->altstack = goc__malloc(ALTSTACK_SIZE);
    if (!m->altstack)
        return -ENOMEM;
    stack_t ss = { .ss_sp = m->altstack, .ss_size = ALTSTACK_SIZE };
    return sigaltstack(&ss, NULL) == 0 ? 0 : -errno;
}
