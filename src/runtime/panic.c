/* SPDX-License-Identifier: MIT */
/*
 * Panics. Each goc_try() pushes a frame holding a jmp_buf and the
 * cleanups registered inside it; goc_panic() runs the innermost frame's
 * cleanups, newest first, and longjmps to it. A cleanup that panics in
 * turn starts a new panic in the same frame (the remaining cleanups still
 * run, since each is unlinked before it runs), which records the one it
 * interrupted. With no frame, the goroutine's own cleanups run and the
 * process ends with "panic: ..." and a dump of every goroutine; a cleanup
 * that panics there records the panic it interrupted in the same way.
 */
#include "runtime.h"
#include "san.h"
#include "goc/panic.h"
#include "../arch/switch.h"
#include "../internal/alloc.h"

#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_FRAMES 32

struct goc__try_frame {
    struct goc__try_frame *prev;
    struct goc__defer *defers;
    struct goc_panic_info *panic; /* the panic unwinding to this frame */
    jmp_buf jb;
};

struct goc_panic_info {
    int code;
    int npc;
    int spare; /* index in spares[], or -1 for a heap info */
    int64_t goroutine;
    char name[32]; /* the goroutine's */
    unsigned long thread;
    struct goc_panic_info *during; /* a panic whose cleanups it interrupted */
    void *pc[MAX_FRAMES];
    char msg[];
};

/* Plain threads keep their frames here; goroutines in their G. */
static __thread struct goc__try_frame *thread_try;
static __thread struct goc__defer *thread_defers;
static __thread struct goc_panic_info *thread_panicking;

static struct goc__try_frame **try_top(void)
{
    struct goc__g *g = goc__g_current();
    return g ? &g->try_top : &thread_try;
}

/* This thread's own stack, [lo, hi), looked up once; 0, 0 if unknown. */
static __thread uintptr_t thread_stack_lo, thread_stack_hi;
static __thread bool thread_stack_known;

static void thread_stack(uintptr_t *lo, uintptr_t *hi)
{
    if (!thread_stack_known) {
        pthread_attr_t a;
        void *addr;
        size_t size;
        /* Known only once found: the lookup can fail for a while (the
         * main thread's reads /proc, and descriptors may run out). */
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            if (pthread_attr_getstack(&a, &addr, &size) == 0) {
                thread_stack_lo = (uintptr_t)addr;
                thread_stack_hi = (uintptr_t)addr + size;
                thread_stack_known = true;
            }
            pthread_attr_destroy(&a);
        }
    }
    *lo = thread_stack_lo;
    *hi = thread_stack_hi;
}

bool goc__stack_bounds(const void *sp, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t a = (uintptr_t)sp;
    struct goc__g *g = goc__g_current();
    if (g && a >= (uintptr_t)g->stack_lo && a < (uintptr_t)g) {
        *lo = (uintptr_t)g->stack_lo;
        *hi = (uintptr_t)g;
        return true;
    }
    stack_t ss; /* a signal handler's, on the alternate stack */
    if (sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK) &&
        a >= (uintptr_t)ss.ss_sp && a < (uintptr_t)ss.ss_sp + ss.ss_size) {
        *lo = (uintptr_t)ss.ss_sp;
        *hi = (uintptr_t)ss.ss_sp + ss.ss_size;
        return true;
    }
    thread_stack(lo, hi);
    return a >= *lo && a < *hi;
}

/*
 * Follow frame records from fp_start, each read only inside [lo, hi):
 * code built without frame pointers leaves anything in the frame-pointer
 * register, and a chain through it must not fault in the middle of a
 * panic or a fault report. Reads stack memory that may be another
 * goroutine's (dumps): unchecked by the sanitizers.
 */
#if defined(__clang__) || __GNUC__ >= 8
__attribute__((no_sanitize("address", "thread")))
#endif
int goc__backtrace(void **pcs,
                   int max,
                   const void *fp_start,
                   uintptr_t lo,
                   uintptr_t hi)
{
    uintptr_t fp = (uintptr_t)fp_start;
    int n = 0;
    while (n < max && fp >= lo && fp < hi && hi - fp >= 2 * sizeof(uintptr_t) &&
           fp % sizeof(uintptr_t) == 0) {
        const uintptr_t *f = (const uintptr_t *)fp;
        uintptr_t pc = f[1];
        if (!pc)
            break;
        pcs[n++] = (void *)pc;
        /* Frames only go up the stack, and not by leaps. */
        if (f[0] <= fp || f[0] - fp > (8u << 20))
            break;
        fp = f[0];
    }
    return n;
}

/* ---- cleanups ----------------------------------------------------------- */

static struct goc__defer **defer_list(void)
{
    struct goc__try_frame *f = *try_top();
    if (f)
        return &f->defers;
    struct goc__g *g = goc__g_current();
    return g ? &g->defers : NULL;
}

int goc_defer(void (*fn)(void *), void *arg)
{
    if (!fn)
        return -EINVAL;
    struct goc__defer **list = defer_list();
    if (!list)
        return -EPERM;
    struct goc__defer *d = goc__malloc(sizeof(*d));
    if (!d)
        return -ENOMEM;
    *d = (struct goc__defer){ *list, fn, arg, true };
    *list = d;
    return 0;
}

int goc__defer_in(struct goc__defer *d, void (*fn)(void *), void *arg)
{
    struct goc__defer **list = defer_list();
    if (!list)
        return -EPERM;
    *d = (struct goc__defer){ *list, fn, arg, false };
    *list = d;
    return 0;
}

/* Run and free a list's cleanups, newest first; each leaves the list
 * before it runs, so one that panics is not run again. */
void goc__run_defers(struct goc__defer **list)
{
    struct goc__defer *d;
    while ((d = *list) != NULL) {
        *list = d->next;
        void (*fn)(void *) = d->fn;
        void *arg = d->arg;
        if (d->heap)
            goc__free(d);
        fn(arg);
    }
}

/* ---- panics ------------------------------------------------------------- */

/*
 * Out of memory while panicking, an info comes from these, each claimed
 * until goc_panic_info_free() gives it back. One shared buffer would be
 * handed twice: a cleanup panicking during such a panic would chain the
 * info to itself (format and free never end) and a later panic would
 * overwrite an info its caller still holds. Global, not per thread: an
 * info may be freed on another thread, or after its thread has gone.
 */
#define NSPARE     8
#define SPARE_TEXT 64

static struct spare {
    _Alignas(struct goc_panic_info) char buf[sizeof(struct goc_panic_info) +
                                             SPARE_TEXT];
    atomic_bool used;
} spares[NSPARE];

/* A free spare, claimed; -1 if all are held. */
static int spare_claim(void)
{
    for (int i = 0; i < NSPARE; i++)
        if (!atomic_exchange_explicit(&spares[i].used, true,
                                      memory_order_acquire))
            return i;
    return -1;
}

static void write_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w <= 0)
            return;
        s += w;
        n -= (size_t)w;
    }
}

/* Every spare held and no memory: no info can be made, so say what the
 * panic was and end the process rather than lose it or reuse a held one. */
static void no_info(int code, const char *fmt, va_list ap)
    __attribute__((noreturn));
static void no_info(int code, const char *fmt, va_list ap)
{
    goc__crash_gate(); /* one report, as for any crash */
    char buf[512];
    int n = snprintf(
        buf, sizeof(buf),
        "fatal error: out of memory while panicking (code %d): ", code);
    vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    write_all(2, buf, strlen(buf));
    write_all(2, "\n", 1);
    goc__symbolize_dying();
    goc__dump_others(2);
    _exit(2);
}

/* Not inlined: its caller's frame (goc_panic's) is skipped below. */
__attribute__((noinline)) static struct goc_panic_info *make_info(
    int code, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int len = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (len < 0)
        len = 0;
    struct goc_panic_info *p = goc__malloc(sizeof(*p) + (size_t)len + 1);
    int spare = -1;
    if (!p) {
        /* Out of memory while panicking: keep what fits. */
        spare = spare_claim();
        if (spare < 0)
            no_info(code, fmt, ap);
        p = (struct goc_panic_info *)(void *)spares[spare].buf;
        if (len > SPARE_TEXT - 1)
            len = SPARE_TEXT - 1;
    }
    p->spare = spare;
    vsnprintf(p->msg, (size_t)len + 1, fmt, ap);
    struct goc__g *g = goc__g_current();
    p->code = code;
    p->goroutine = g ? g->id : 0;
    p->name[0] = '\0';
    if (g)
        snprintf(p->name, sizeof(p->name), "%s", g->name);
    p->thread = (unsigned long)syscall(SYS_gettid);
    p->during = NULL;
    /* From goc_panic's frame: the first address is in its caller. */
    const void *const *fp = __builtin_frame_address(0);
    uintptr_t lo, hi;
    p->npc = goc__stack_bounds(fp, &lo, &hi)
                 ? goc__backtrace(p->pc, MAX_FRAMES, fp[0], lo, hi)
                 : 0;
    return p;
}

/* No goc_try() caught it: report and end the process, as Go does. */
/* The panic that ended the process: kept reachable, for a debugger
 * reading a core and for leak checkers at the exit. */
struct goc_panic_info *volatile goc__fatal_panic;

/*
 * The report runs on a stack of its own: formatting, symbolizing and
 * dumping the other goroutines take several KiB (more under a
 * sanitizer), and a goroutine's stack, 16 KiB at the least, may be
 * nearly used up by the code that panicked; the report would then end
 * as a stack overflow's. Only the one reporting thread uses it, and in
 * .bss it costs no memory until a crash touches it.
 */
#define REPORT_STACK (256 * 1024)
static char report_stack[REPORT_STACK] __attribute__((aligned(64)));

struct report {
    void (*fn)(void *arg);
    void *arg;
};

/* First code on the report stack. */
static void report_entry(void *arg) __attribute__((noreturn));
static void report_entry(void *arg)
{
    struct report *r = arg;
#if defined(GOC_ASAN)
    __sanitizer_finish_switch_fiber(NULL, NULL, NULL);
#endif
    r->fn(r->arg);
    _exit(2);
}

static void report_and_exit(void *arg)
{
    static char buf[4096];
    struct goc_panic_info *p = arg;
    goc__fatal_panic = p;
    goc__symbolize_dying();
    int n = goc_panic_info_format(p, buf, sizeof(buf));
    write_all(2, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
    write_all(2, "\n", 1);
    goc__dump_others(2);
    _exit(2);
}

/* Leave for r->fn(r->arg) on the report stack, for good. */
static void report_on_own_stack(struct report *r) __attribute__((noreturn));
static void report_on_own_stack(struct report *r)
{
    void *to = goc__ctx_make(report_stack, report_stack + REPORT_STACK,
                             report_entry, r);
    void *abandoned;
#if defined(GOC_VALGRIND)
    VALGRIND_STACK_REGISTER(report_stack, report_stack + REPORT_STACK);
#endif
#if defined(GOC_ASAN)
    __sanitizer_start_switch_fiber(NULL, report_stack, REPORT_STACK);
#endif
#if defined(GOC_TSAN)
    __tsan_switch_to_fiber(__tsan_create_fiber(0), 0);
#endif
    goc__ctx_switch(&abandoned, to);
    abort(); /* never resumed */
}

void goc__crash_gate(void)
{
    /* One crash reports, any other waits for the exit. */
    static _Atomic bool crashing;
    static __thread bool crashing_here
        __attribute__((tls_model("initial-exec")));
    if (crashing_here)
        _exit(2); /* a crash while reporting one */
    crashing_here = true;
    if (atomic_exchange(&crashing, true)) {
        /* Another thread reports: wait for its exit, a while. It may
         * wait for a lock this thread holds (the loader's, in dladdr). */
        struct timespec ten_ms = { 0, 10 * 1000 * 1000 };
        for (int i = 0; i < 500; i++)
            nanosleep(&ten_ms, NULL);
        _exit(2);
    }
}

void goc__crash_report(void (*fn)(void *arg), void *arg)
{
    goc__crash_gate();
    static struct report r; /* the one reporter's */
    r = (struct report){ fn, arg };
    report_on_own_stack(&r);
}

static void crash(struct goc_panic_info *p) __attribute__((noreturn));
static void crash(struct goc_panic_info *p)
{
    goc__crash_report(report_and_exit, p);
}

/* Make @p the panic in flight at *@slot, the one it interrupted (if any)
 * chained after @p's own (a rethrow may bring some). */
static void chain_into(struct goc_panic_info **slot, struct goc_panic_info *p)
{
    struct goc_panic_info *last = p;
    while (last->during)
        last = last->during;
    last->during = *slot;
    *slot = p;
}

/*
 * Unwind with @p to the innermost goc_try(), or crash. Either way the
 * cleanups run first, and one that panics in turn records @p: with no
 * frame, the goroutine (or thread) keeps its unrecovered panic for that,
 * so the report names the root cause, not only the cleanup's panic.
 */
static void raise_info(struct goc_panic_info *p) __attribute__((noreturn));
static void raise_info(struct goc_panic_info *p)
{
    struct goc__try_frame *f = *try_top();
    if (f) {
        chain_into(&f->panic, p);
        goc__run_defers(&f->defers);
        longjmp(f->jb, 1);
    }
    struct goc__g *g = goc__g_current();
    struct goc_panic_info **slot = g ? &g->panicking : &thread_panicking;
    chain_into(slot, p);
    goc__run_defers(g ? &g->defers : &thread_defers);
    crash(*slot);
}

void goc_panic(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    struct goc_panic_info *p = make_info(code, fmt ? fmt : "", ap);
    va_end(ap);
    raise_info(p);
}

int goc__misuse(const char *what)
{
    const char *env = getenv("GOC_ABORT_ON_MISUSE");
    if (env && env[0] == '1' && env[1] == '\0')
        goc_panic(GOC_EMISUSE, "misuse: %s", what);
    return GOC_EMISUSE;
}

void goc__null_argument(const char *call)
{
    goc_panic(-EINVAL, "%s: NULL argument", call);
}

void goc__panic_again(struct goc_panic_info *p)
{
    raise_info(p);
}

struct goc_panic_info *goc__panic_join(struct goc_panic_info *first,
                                       struct goc_panic_info *later)
{
    if (!later)
        return first;
    if (first)
        chain_into(&first, later);
    return later;
}

int goc_try(int (*fn)(void *), void *arg, goc_panic_info **out)
{
    if (out)
        *out = NULL;
    if (!fn)
        return -EINVAL;
    /* Volatile: read again after a longjmp, not kept in a register. */
    struct goc__try_frame **volatile top = try_top();
    struct goc__try_frame f = { .prev = *top };
    *top = &f;
    int r;
    if (setjmp(f.jb) == 0) {
        r = fn(arg);
        goc__run_defers(&f.defers); /* a panic here lands below */
    } else {
        r = GOC_EPANIC;
    }
    *top = f.prev;
    if (r == GOC_EPANIC && f.panic) {
        if (out)
            *out = f.panic;
        else
            goc_panic_info_free(f.panic);
    }
    return r;
}

/* ---- panic info ---------------------------------------------------------- */

int goc_panic_info_code(const goc_panic_info *p)
{
    return p ? p->code : 0;
}

const char *goc_panic_info_message(const goc_panic_info *p)
{
    return p ? p->msg : "";
}

int64_t goc_panic_info_goroutine(const goc_panic_info *p)
{
    return p ? p->goroutine : 0;
}

unsigned long goc_panic_info_thread(const goc_panic_info *p)
{
    return p ? p->thread : 0;
}

int goc_panic_info_format(const goc_panic_info *p, char *buf, size_t n)
{
    if (!p)
        return snprintf(buf, n, "%s", "");
    size_t len = 0;
#define APPEND(...)                                               \
    do {                                                          \
        int w_ = snprintf(buf ? buf + (len < n ? len : n) : NULL, \
                          len < n ? n - len : 0, __VA_ARGS__);    \
        if (w_ > 0)                                               \
            len += (size_t)w_;                                    \
    } while (0)
    APPEND("panic: %s", p->msg);
    if (p->code)
        APPEND(" [%s]", goc_strerror(p->code));
    for (const struct goc_panic_info *d = p->during; d; d = d->during)
        APPEND("\n\t(while running cleanups after panic: %s)", d->msg);
    if (p->goroutine && p->name[0])
        APPEND("\n\ngoroutine %lld \"%s\" [running]:\n",
               (long long)p->goroutine, p->name);
    else if (p->goroutine)
        APPEND("\n\ngoroutine %lld [running]:\n", (long long)p->goroutine);
    else
        APPEND("\n\nthread %lu [running]:\n", p->thread);
    len += (size_t)goc__panic_info_frames(
        p, buf ? buf + (len < n ? len : n) : NULL, len < n ? n - len : 0);
#undef APPEND
    return (int)len;
}

int goc__panic_info_frames(const struct goc_panic_info *p, char *buf, size_t n)
{
    size_t len = 0;
    if (buf && n) /* no frames: still a string */
        buf[0] = '\0';
    for (int i = 0; p && i < p->npc; i++) {
        char sym[256];
        goc__symbolize(p->pc[i], sym, sizeof(sym));
        int w = snprintf(buf ? buf + (len < n ? len : n) : NULL,
                         len < n ? n - len : 0, "\t%s\n", sym);
        if (w > 0)
            len += (size_t)w;
    }
    return (int)len;
}

goc_panic_info *goc__panic_info_dup(const goc_panic_info *p)
{
    if (!p)
        return NULL;
    size_t len = strlen(p->msg) + 1;
    goc_panic_info *d = goc__malloc(sizeof(*d) + len);
    if (!d)
        return NULL;
    memcpy(d, p, sizeof(*d));
    memcpy(d->msg, p->msg, len);
    d->spare = -1;
    d->during = NULL;
    if (p->during && !(d->during = goc__panic_info_dup(p->during))) {
        goc__free(d);
        return NULL;
    }
    return d;
}

void goc_panic_info_free(goc_panic_info *p)
{
    while (p) {
        goc_panic_info *next = p->during;
        if (p->spare < 0)
            goc__free(p);
        else
            atomic_store_explicit(&spares[p->spare].used, false,
                                  memory_order_release);
        p = next;
    }
}
