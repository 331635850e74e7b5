/* SPDX-License-Identifier: MIT */
/*
 * Goroutine dumps, the leak check and the deadlock check.
 *
 * Every G lives at the top of a stack carved from a slab, and the slabs
 * are all known, so a dump walks the slabs rather than keeping a list of
 * live goroutines that every spawn would have to lock. A parked
 * goroutine's backtrace starts from the frame pointer its context switch
 * saved; frame pointers are kept in every goc build for this.
 *
 * Reading other goroutines is racy by nature (they may run meanwhile and
 * overwrite the frames being read), and a frame of code built without
 * frame pointers may hold anything where a saved frame pointer would be.
 * So every frame of a goroutine's stack is checked to lie inside that
 * stack, [stack_lo, g), which stays mapped, before it is read: the worst
 * case is a stale or short backtrace in a diagnostic.
 */
#include "runtime.h"
#include "goc/panic.h"
#include "goc/time.h"

#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#define MAX_FRAMES 32

#if defined(__clang__) || __GNUC__ >= 8
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread")))
#else
#define NO_SANITIZE
#endif

/* Return address and frame pointer saved by goc__ctx_switch at g->sp. */
NO_SANITIZE static int parked_backtrace(struct goc__g *g, void **pcs, int max)
{
    uintptr_t pc = 0, fp = 0;
    /* One load: a yield in flight on another thread clears it. A plain
     * one, as the reads of the frame below (an atomic load would be
     * instrumented even here). */
    void *saved = *(void *volatile *)&g->sp;
    if (!saved || max < 1)
        return 0;
#if defined(GOC_PORTABLE_SWITCH) && defined(__x86_64__)
    const ucontext_t *uc = saved; /* the suspended context's ucontext_t */
    pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
#elif defined(GOC_PORTABLE_SWITCH) && defined(__aarch64__)
    const ucontext_t *uc = saved;
    pc = (uintptr_t)uc->uc_mcontext.pc;
    fp = (uintptr_t)uc->uc_mcontext.regs[29];
#elif defined(__x86_64__)
    const uintptr_t *sp = saved;
    pc = sp[7];
    fp = sp[6];
#elif defined(__aarch64__)
    const uintptr_t *sp = saved;
    pc = sp[0x98 / 8];
    fp = sp[0x90 / 8];
#else
    (void)pcs;
    return 0; /* no known layout */
#endif
    pcs[0] = (void *)pc;
    /* Walk only inside this goroutine's own stack. */
    return 1 + goc__backtrace(pcs + 1, max - 1, (const void *)fp,
                              (uintptr_t)g->stack_lo, (uintptr_t)g);
}

struct dump {
    int fd, count, err;
    struct goc__g *self, *skip;
    int64_t now;
    char buf[2048]; /* small: it lives on the dumping goroutine's stack */
    size_t len;
};

static void flush(struct dump *d)
{
    const char *p = d->buf;
    while (d->len > 0 && !d->err) {
        ssize_t w = write(d->fd, p, d->len);
        /* A signal without SA_RESTART cut a blocked write short. */
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            d->err = -errno;
            break;
        }
        p += w;
        d->len -= (size_t)w;
    }
    d->len = 0;
}

__attribute__((format(printf, 2, 3))) static void out(struct dump *d,
                                                      const char *fmt,
                                                      ...)
{
    if (d->len > sizeof(d->buf) - 512)
        flush(d);
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(d->buf + d->len, sizeof(d->buf) - d->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        d->len += (size_t)n < sizeof(d->buf) - d->len
                      ? (size_t)n
                      : sizeof(d->buf) - d->len - 1;
}

static void out_frames(struct dump *d, void **pcs, int n)
{
    for (int i = 0; i < n; i++) {
        char sym[256];
        goc__symbolize(pcs[i], sym, sizeof(sym));
        out(d, "\t%s\n", sym);
    }
}

/* What a dump shows of a goroutine, copied once from its G. */
struct g_view {
    int64_t id, parent_id, wait_since;
    int status, wait_reason;
    char name[32];
    const void *fn, *created_pc;
    void *pcs[MAX_FRAMES];
    int npc;
};

/* The dumping goroutine's own frames: on its stack, or on the signal
 * stack when a SIGQUIT or fault handler dumps. Inlined: the walk starts
 * at its caller's frame. */
static inline __attribute__((always_inline)) int self_backtrace(void **pcs,
                                                                int max)
{
    const void *fp = __builtin_frame_address(0);
    uintptr_t lo, hi;
    return goc__stack_bounds(fp, &lo, &hi)
               ? goc__backtrace(pcs, max, fp, lo, hi)
               : 0;
}

/*
 * The racy part of a dump, in one place: the G (and a parked stack) may
 * change under us, so it is read once, field by field, without the
 * sanitizers' checks, and the rest of the dump works on the copy.
 */
NO_SANITIZE static bool view_of(struct goc__g *g,
                                struct dump *d,
                                struct g_view *v)
{
    v->status = atomic_load_explicit(&g->status, memory_order_acquire);
    v->id = g->id;
    if (v->status == GOC__G_IDLE || v->status == GOC__G_DEAD || v->id == 0 ||
        g == d->skip)
        return false;
    v->parent_id = g->parent_id;
    v->wait_since = g->wait_since;
    v->wait_reason = g->wait_reason < GOC__WAIT_REASONS ? g->wait_reason : 0;
    for (size_t i = 0; i < sizeof(v->name); i++)
        v->name[i] = g->name[i];
    v->name[sizeof(v->name) - 1] = '\0';
    v->fn = (const void *)(uintptr_t)g->fn;
    v->created_pc = g->created_pc;
    v->npc = 0;
    if (g == d->self)
        v->npc = self_backtrace(v->pcs, MAX_FRAMES);
    else if (v->status != GOC__G_RUNNING)
        v->npc = parked_backtrace(g, v->pcs, MAX_FRAMES);
    return true;
}

static void out_state(struct dump *d, const struct g_view *v)
{
    if (v->status == GOC__G_RUNNING) {
        out(d, "running");
    } else if (v->status == GOC__G_RUNNABLE) {
        out(d, "runnable");
    } else {
        out(d, "%s", goc__wait_reason_names[v->wait_reason]);
        if (v->wait_since > 0 && d->now > v->wait_since)
            out(d, ", %.1f s", (double)(d->now - v->wait_since) / 1e9);
    }
}

static void dump_one(struct goc__g *g, void *arg)
{
    struct dump *d = arg;
    struct g_view v;
    if (!view_of(g, d, &v))
        return;
    d->count++;
    out(d, "goroutine %lld", (long long)v.id);
    if (v.name[0])
        out(d, " \"%s\"", v.name);
    out(d, " [");
    out_state(d, &v);
    out(d, "]:\n");
    if (v.npc > 0)
        out_frames(d, v.pcs, v.npc);
    else if (v.status == GOC__G_RUNNING)
        out(d, "\t(running on another thread)\n");
    char sym[256];
    goc__symbolize_entry(v.fn, sym, sizeof(sym));
    out(d, "entry %s\n", sym);
    if (v.created_pc) {
        goc__symbolize(v.created_pc, sym, sizeof(sym));
        if (v.parent_id)
            out(d, "created by %s in goroutine %lld\n", sym,
                (long long)v.parent_id);
        else
            out(d, "created by %s on a thread\n", sym);
    }
    out(d, "\n");
}

/* On the caller's stack, no heap: a SIGQUIT or fault handler calls it. */
static int dump_all(int fd, struct goc__g *skip)
{
    struct dump d = { .fd = fd, .self = goc__g_current(), .skip = skip };
    d.now = goc__nanotime();
    goc__stack_foreach(dump_one, &d);
    flush(&d);
    return d.err ? d.err : d.count;
}

int goc__dump_others(int fd)
{
    return dump_all(fd, goc__g_current());
}

int goc_dump(int fd)
{
    return dump_all(fd, NULL);
}

int goc_leakcheck(int64_t allowed, int64_t timeout)
{
    /* A negative allowance could never be met: refused, not waited for. */
    if (timeout < 0 || allowed < 0)
        return -EINVAL;
    int64_t self = goc__g_current() ? 1 : 0, now = goc__nanotime();
    /* Saturated: a huge timeout (INT64_MAX, "for ever") must not wrap
     * into the past. */
    int64_t end = timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
    int64_t delay = GOC_MILLISECOND;
    for (;;) {
        if (goc_num_goroutine() - self <= allowed)
            return 0;
        if (goc__nanotime() >= end)
            break;
        goc_sleep(delay, NULL);
        delay = delay * 2 > 100 * GOC_MILLISECOND ? 100 * GOC_MILLISECOND
                                                  : delay * 2;
    }
    dprintf(2, "goc: leak check: %lld goroutines left (%lld allowed):\n\n",
            (long long)(goc_num_goroutine() - self), (long long)allowed);
    goc_dump(2);
    return -ETIMEDOUT;
}

/* ---- goroutine walk (profiles) ----------------------------------------- */

struct walk {
    struct dump d;
    void (*fn)(const struct goc__gsnap *s, void *arg);
    void *arg;
};

static void walk_one(struct goc__g *g, void *arg)
{
    struct walk *w = arg;
    struct g_view v;
    if (!view_of(g, &w->d, &v))
        return;
    w->d.count++;
    struct goc__gsnap s = { .id = v.id,
                            .parent_id = v.parent_id,
                            .status = v.status,
                            .wait_reason = v.wait_reason,
                            .name = v.name,
                            .self = g == w->d.self,
                            .entry = v.fn,
                            .pcs = v.pcs,
                            .npc = v.npc };
    w->fn(&s, w->arg);
}

int goc__goroutine_walk(void (*fn)(const struct goc__gsnap *s, void *arg),
                        void *arg)
{
    struct walk w = { .d = { .fd = -1, .self = goc__g_current() },
                      .fn = fn,
                      .arg = arg };
    goc__stack_foreach(walk_one, &w);
    return w.d.count;
}

/* ---- SIGQUIT ----------------------------------------------------------- */

static struct sigaction quit_saved;
static bool quit_installed;

static void on_quit(int sig)
{
    (void)sig;
    static const char msg[] = "SIGQUIT: quit\n\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    goc__symbolize_dying();
    goc_dump(2);
    _exit(2);
}

int goc_dump_on_sigquit(bool on)
{
    if (on == quit_installed)
        return 0;
    int r;
    if (on) {
        struct sigaction sa = { .sa_handler = on_quit, .sa_flags = SA_ONSTACK };
        sigemptyset(&sa.sa_mask);
        r = sigaction(SIGQUIT, &sa, &quit_saved);
    } else {
        r = sigaction(SIGQUIT, &quit_saved, NULL);
    }
    if (r < 0)
        return -errno;
    quit_installed = on;
    return 0;
}

/* ---- deadlock --------------------------------------------------------- */

/* Threads in the process; -1 if unknown. */
static int count_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir)))
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n;
}

/* A snapshot of what could still wake a goroutine; 0 if nothing can. */
static uint64_t activity(void)
{
    if (atomic_load(&goc__sched.npidle) != goc__sched.nprocs ||
        atomic_load(&goc__sched.gq_len) > 0 ||
        goc__timers_earliest() != INT64_MAX || goc__pollwait_count() > 0 ||
        atomic_load(&goc__sched.nblocking_jobs) > 0 ||
        atomic_load(&goc__sched.nsections) > 0 ||
        atomic_load(&goc__ctx_after_deferred) > 0)
        return 0;
    uint64_t runs = 0;
    for (int i = 0; i < goc__sched.nprocs; i++) {
        struct goc__p *p = &goc__sched.allp[i];
        if (!goc__runq_empty(p))
            return 0;
        runs += atomic_load(&p->nrun);
    }
    return runs + 1;
}

/* Every thread is goc's: Ms, sysmon, the blocking pool, goc_run's, the
 * CPU profile's writer (which wakes no goroutine). */
static bool only_goc_threads(void)
{
    int known = atomic_load(&goc__sched.nm) + 1 +
                atomic_load(&goc__sched.nblocking_threads) +
                atomic_load(&goc__sched.nrun_callers) +
                goc__thread_count(GOC__TK_PROFILER);
    int n = count_threads();
    return n > 0 && n <= known;
}

void goc__check_deadlock(void)
{
    /* sysmon's alone: no locking. Reported once the same idle state has
     * been seen on three ticks in a row (10 ms or more apart). */
    static uint64_t last;
    static int stable;
    static int enabled = -1;
    if (enabled < 0) {
        const char *env = getenv("GOC_DEADLOCK_CHECK");
        enabled = !(env && strcmp(env, "0") == 0);
    }
    uint64_t now = enabled ? activity() : 0;
    if (!now || goc_num_goroutine() == 0 || !only_goc_threads()) {
        stable = 0;
        return;
    }
    if (now != last) {
        last = now;
        stable = 0;
        return;
    }
    if (++stable < 2)
        return;
    dprintf(2, "fatal error: all goroutines are asleep - deadlock!\n\n");
    goc__symbolize_dying();
    goc_dump(2);
    _exit(2);
}
