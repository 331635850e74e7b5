/* SPDX-License-Identifier: MIT */
/*
 * Goroutines and threads: starting the runtime, creating, running and
 * ending goroutines, creating Ms, yielding and pinning.
 */
#include "runtime.h"
#include "san.h"
#include "../arch/switch.h"
#include "../internal/alloc.h"
#include "../internal/futex.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Expiry reads a sleeping goroutine's timer from tick to slot: keep that
 * within one line of the (64-byte aligned) G. */
#define G_TIMER_AT(f) \
    (offsetof(struct goc__g, timer) + offsetof(struct goc__timer, f))
_Static_assert(G_TIMER_AT(tick) / 64 == G_TIMER_AT(unsynced) / 64,
               "a G's timer fields straddle a cache line");

#define GOID_BATCH 16 /* ids a P takes from the global counter at once */

#if defined(GOC_ASAN) || defined(GOC_TSAN)
#define M_STACK_SIZE (4u << 20)
#else
#define M_STACK_SIZE (512u << 10)
#endif

void goc__m_set_current(struct goc__m *m);
int goc__m_new(struct goc__p *p, bool spinning);

/* ---- starting the runtime --------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static struct goc_config init_cfg;
static int init_err;
static _Atomic int started;
/* rt_init's reports, made once init_mu is released and started is set
 * (by whichever caller takes pending). */
static struct goc__held_log init_held;
static _Atomic bool init_held_pending;

static void report_init_held(void)
{
    if (atomic_exchange(&init_held_pending, false))
        goc__held_log_flush(&init_held);
}

static int init_ps(void)
{
    int n = goc__config_procs(init_cfg.max_procs, &init_held);
    goc__sched.allp = goc__calloc((size_t)n, sizeof(struct goc__p));
    if (!goc__sched.allp)
        return -ENOMEM;
    goc__sched.nprocs = n;
    for (int i = n - 1; i >= 0; i--) {
        struct goc__p *p = &goc__sched.allp[i];
        p->id = i;
        p->tick_left = 61;
        goc__wheel_init(&p->wheel);
        p->idle_next = goc__sched.pidle;
        goc__sched.pidle = p;
    }
    atomic_store(&goc__sched.npidle, n);
    return 0;
}

static void rt_init(void)
{
    /* First: the page size sets the smallest stack class (a stack spans
     * four pages at the least), and so the default stack's class. */
    int err = goc__stack_init();
    int cls =
        goc__stack_class(goc__config_stack(init_cfg.stack_size, &init_held));
    goc__sched.stack_class =
        cls < 0 ? goc__stack_class(GOC_STACK_DEFAULT) : cls;
    goc__sched.stack_size = goc__stack_class_size(goc__sched.stack_class);
    if (!err)
        err = init_ps();
    if (!err)
        err = goc__poll_init();
    if (!err)
        err = goc__fault_init();
    if (!err)
        err = goc__sysmon_start();
    init_err = err;
    atomic_store(&init_held_pending, init_held.n > 0);
    /* Release: everything above is visible to whoever sees started. */
    atomic_store_explicit(&started, err == 0, memory_order_release);
}

int goc__rt_ensure(void)
{
    if (__builtin_expect(atomic_load_explicit(&started, memory_order_acquire),
                         1))
        return 0;
    pthread_mutex_lock(&init_mu);
    pthread_once(&init_once, rt_init);
    pthread_mutex_unlock(&init_mu);
    report_init_held();
    return init_err;
}

int goc_init(const struct goc_config *cfg)
{
    if (cfg && (cfg->max_procs < 0 || cfg->max_procs > GOC_MAXPROCS_MAX))
        return -EINVAL;
    if (cfg && cfg->stack_size &&
        (cfg->stack_size < GOC_STACK_MIN || cfg->stack_size > GOC_STACK_MAX))
        return -EINVAL;
    pthread_mutex_lock(&init_mu);
    int err = -EBUSY;
    if (!atomic_load(&started) && init_err == 0) {
        if (cfg)
            init_cfg = *cfg;
        pthread_once(&init_once, rt_init);
        err = init_err;
    } else if (!atomic_load(&started)) {
        err = init_err; /* an earlier start failed: it is not retried */
    }
    pthread_mutex_unlock(&init_mu);
    report_init_held();
    return err;
}

/* ---- threads ---------------------------------------------------------- */

static void g0_init(struct goc__m *m)
{
    m->errno_p = &errno;
    m->tid = (int)syscall(SYS_gettid);
    if (pthread_getcpuclockid(pthread_self(), &m->cpu_clock) != 0)
        m->cpu_clock = -1;
    m->g0.status = GOC__G_RUNNING;
    m->curg = &m->g0;
#if defined(GOC_ASAN)
    pthread_attr_t attr;
    void *addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    m->g0.asan_bottom = addr;
    m->g0.asan_size = size;
#endif
#if defined(GOC_TSAN)
    m->g0.tsan_fiber = __tsan_get_current_fiber();
#endif
}

static void *m_main(void *arg)
{
    struct goc__m *m = arg;
    goc__sigmask_m();
    goc__m_set_current(m);
    goc__thread_started(&m->thread_rec);
    g0_init(m);
    goc__fault_thread_init(m);
    struct goc__p *p = m->nextp;
    m->nextp = NULL;
    m->p = p;
    p->m = m;
    atomic_store_explicit(&p->holder_tid, m->tid, memory_order_relaxed);
    atomic_store_explicit(&p->holder_clock, m->cpu_clock, memory_order_relaxed);
    atomic_store_explicit(&p->running, true, memory_order_relaxed);
    goc__m_schedule(m);
}

int goc__m_new(struct goc__p *p, bool spinning)
{
    struct goc__m *m = goc__calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    if (goc__fault_altstack_new(m) != 0) {
        goc__free(m);
        return -ENOMEM;
    }
    m->nextp = p;
    m->spinning = spinning;
    m->id = atomic_fetch_add(&goc__sched.nm, 1) + 1;
    m->rand = 0x9e3779b9u * (uint32_t)m->id | 1;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, M_STACK_SIZE);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    goc__thread_created(&m->thread_rec, GOC__TK_M);
    int err = pthread_create(&m->thread, &attr, m_main, m);
    pthread_attr_destroy(&attr);
    if (err) {
        goc__thread_exited(&m->thread_rec);
        atomic_fetch_sub(&goc__sched.nm, 1);
        goc__free(m->altstack);
        goc__free(m);
        return -err;
    }
    goc__lock_acquire(&goc__sched.lock);
    m->all_next = goc__sched.allm;
    goc__sched.allm = m;
    goc__lock_release(&goc__sched.lock);
    return 0;
}

/* ---- goroutines ------------------------------------------------------- */

static void g_free(struct goc__m *m, void *arg)
{
    struct goc__g *g = arg;
#if defined(GOC_TSAN)
    __tsan_destroy_fiber(g->tsan_fiber);
    g->tsan_fiber = NULL;
#endif
    goc__g_put(m->p, g);
}

static void g_exit(struct goc__g *g) __attribute__((noreturn));
static void g_exit(struct goc__g *g)
{
    /* A blocking section left open is closed, as a pin is undone below:
     * its M would carry the section's state on to the goroutines it runs
     * next (refusing their sections, keeping its P from their spawns)
     * while sysmon gave that P, still in use, to another M. Closing may
     * move g to another M: read m after it. */
    if (atomic_load_explicit(&goc__m_current()->bstate, memory_order_relaxed) !=
        GOC__M_RUNNING)
        goc_blocking_exit();
    struct goc__m *m = goc__m_current();
    if (m->locked_g == g) {
        m->locked_g = NULL;
        g->locked_m = NULL;
        g->pin_count = 0;
    }
    /* Release: a reader that counts this exit sees the creation too. */
    atomic_store_explicit(
        &m->p->nexited,
        atomic_load_explicit(&m->p->nexited, memory_order_relaxed) + 1,
        memory_order_release);
    atomic_store_explicit(&g->status, GOC__G_DEAD, memory_order_relaxed);
    goc__park_exit(g_free, g);
}

/* First C code on a new stack (called by the switch trampoline). */
static void g_entry(void *arg)
{
    struct goc__g *g = arg;
    goc__after_switch();
    g->fn(g->arg);
    if (g->defers)
        goc__run_defers(&g->defers);
    g_exit(g);
}

static inline __attribute__((always_inline)) int64_t new_goid(struct goc__p *p)
{
    if (!p)
        return atomic_fetch_add(&goc__sched.next_id, 1) + 1;
    if (p->goid_next == p->goid_end) {
        p->goid_next = atomic_fetch_add(&goc__sched.next_id, GOID_BATCH) + 1;
        p->goid_end = p->goid_next + GOID_BATCH;
    }
    return p->goid_next++;
}

static inline __attribute__((always_inline)) void g_setup(
    struct goc__g *g,
    struct goc__g *self,
    struct goc__p *p,
    goc_fn fn,
    void *arg,
    const struct goc_go_opts *opts)
{
    g->id = new_goid(p);
    g->fn = fn;
    g->arg = arg;
    g->locked_m = NULL;
    g->pin_count = 0;
    g->saved_errno = 0;
    g->panicking = NULL;
    g->parent_id = self ? self->id : 0;
    g->name[0] = '\0';
    if (opts && opts->name) {
        strncpy(g->name, opts->name, sizeof(g->name) - 1);
        g->name[sizeof(g->name) - 1] = '\0';
    }
    g->sp = goc__ctx_make(g->stack_lo, g, g_entry, g);
#if defined(GOC_ASAN)
    g->asan_fake = NULL;
    g->asan_bottom = g->stack_lo;
    g->asan_size = (size_t)((char *)g - g->stack_lo);
#endif
#if defined(GOC_TSAN)
    g->tsan_fiber = __tsan_create_fiber(0);
#endif
    atomic_store_explicit(&g->status, GOC__G_RUNNABLE, memory_order_relaxed);
}

static inline __attribute__((always_inline)) void runq_push_new(
    struct goc__g *g, struct goc__p *p)
{
    if (!p) {
        atomic_fetch_add(&goc__sched.ngoroutine, 1);
        goc__ready(g, false);
        return;
    }
    GOC__STAT_INC(p->ncreated, 1);
    goc__runq_put(p, g, true);
    goc__wakep();
}

/*
 * Make and queue a goroutine. If word is given, value is stored there
 * (release) once nothing can fail any more and before the goroutine can
 * run: a caller handing over a record that fn may free uses it to give
 * the record back only when the spawn is sure.
 */
static inline __attribute__((always_inline)) int go_start(
    goc_fn fn,
    void *arg,
    const struct goc_go_opts *opts,
    void *created_pc,
    _Atomic uint32_t *word,
    uint32_t value)
{
    if (!fn)
        return -EINVAL;
    size_t size = opts && opts->stack_size ? opts->stack_size : 0;
    if (size && (size < GOC_STACK_MIN || size > GOC_STACK_MAX))
        return -EINVAL;
    int err = goc__rt_ensure();
    if (err)
        return err;
    int cls = size ? goc__stack_class(size) : goc__sched.stack_class;
    struct goc__m *m = goc__m_current();
    struct goc__g *self = m && m->curg != &m->g0 ? m->curg : NULL;
    struct goc__p *p = self ? goc__m_owned_p(m) : NULL;
    struct goc__g *g = goc__g_get(p, cls);
    if (!g)
        return -ENOMEM;
    g->created_pc = created_pc;
    g_setup(g, self, p, fn, arg, opts);
    if (word)
        atomic_store_explicit(word, value, memory_order_release);
    runq_push_new(g, p);
    /*
     * Back-pressure: a goroutine spawning faster than its P drains the
     * queue lets the spawned ones run, so their stacks come back hot.
     */
    if (p && goc__runq_len(p) >= GOC__RUNQ_SIZE / 2 && !m->reporting)
        goc_yield();
    return 0;
}

int goc_go_ex(goc_fn fn, void *arg, const struct goc_go_opts *opts)
{
    return go_start(fn, arg, opts, __builtin_return_address(0), NULL, 0);
}

int goc_go(goc_fn fn, void *arg)
{
    return goc_go_ex(fn, arg, NULL);
}

int goc__go_release(goc_fn fn,
                    void *arg,
                    _Atomic uint32_t *word,
                    uint32_t value)
{
    return go_start(fn, arg, NULL, __builtin_return_address(0), word, value);
}

/* ---- identity, pinning (goc_yield is in sched.c) ----------------------- */

int64_t goc_id(void)
{
    struct goc__g *g = goc__g_current();
    return g ? g->id : 0;
}

const char *goc_name(void)
{
    struct goc__g *g = goc__g_current();
    return g ? g->name : NULL;
}

int goc_p_index(void)
{
    struct goc__g *g = goc__g_current();
    return g ? goc__m_current()->p->id : -1;
}

int goc_maxprocs(void)
{
    int err = goc__rt_ensure();
    return err ? err : goc__sched.nprocs;
}

bool goc__rt_started(void)
{
    return atomic_load_explicit(&started, memory_order_acquire);
}

/*
 * Creations are counted on the P (or thread) that made a goroutine, exits
 * on the P where it ended. Every exit is read first (acquire, against the
 * exit's release), then every creation: an exit counted brings its
 * creation with it, so the count never falls below the goroutines alive
 * throughout the call (read the other way, it went far below zero).
 */
int64_t goc__count_goroutines(int64_t *created_total)
{
    int64_t exited = 0, created;
    for (int i = 0; i < goc__sched.nprocs; i++)
        exited += atomic_load_explicit(&goc__sched.allp[i].nexited,
                                       memory_order_acquire);
    created = atomic_load(&goc__sched.ngoroutine);
    for (int i = 0; i < goc__sched.nprocs; i++)
        created += atomic_load_explicit(&goc__sched.allp[i].ncreated,
                                        memory_order_relaxed);
    if (created_total)
        *created_total = created;
    return created - exited;
}

int64_t goc_num_goroutine(void)
{
    if (!atomic_load_explicit(&started, memory_order_acquire))
        return 0;
    return goc__count_goroutines(NULL);
}

int goc_pin(void)
{
    struct goc__g *g = goc__g_current();
    if (!g)
        return -EPERM;
    struct goc__m *m = goc__m_current();
    /* Its exit could not both close the section and keep the pin. */
    if (atomic_load(&m->bstate) != GOC__M_RUNNING)
        return -EBUSY;
    g->pin_count++;
    g->locked_m = m;
    m->locked_g = g;
    return 0;
}

int goc_unpin(void)
{
    struct goc__g *g = goc__g_current();
    if (!g)
        return -EPERM;
    if (g->pin_count == 0)
        return goc__misuse("goc_unpin: not pinned");
    /* Its section's exit must find it as its enter did: pinned. */
    if (atomic_load(&goc__m_current()->bstate) != GOC__M_RUNNING)
        return -EBUSY;
    if (--g->pin_count == 0) {
        goc__m_current()->locked_g = NULL;
        g->locked_m = NULL;
    }
    return 0;
}

/* ---- goc_run ---------------------------------------------------------- */

struct run_state {
    goc_main_fn fn;
    void *arg;
    int result;
    _Atomic uint32_t done;
};

static void main_body(void *arg)
{
    struct run_state *st = arg;
    st->result = st->fn(st->arg);
    atomic_store(&st->done, 1);
    goc__futex_wake(&st->done, 1);
}

int goc_run(goc_main_fn fn, void *arg)
{
    if (!fn)
        return -EINVAL;
    if (goc__m_current())
        return -EDEADLK;
    struct run_state st = { .fn = fn, .arg = arg };
    struct goc_go_opts opts = { .name = "main" };
    int err = goc_go_ex(main_body, &st, &opts);
    if (err)
        return err;
    atomic_fetch_add(&goc__sched.nrun_callers, 1);
    while (atomic_load(&st.done) == 0)
        goc__futex_wait(&st.done, 0, -1);
    atomic_fetch_sub(&goc__sched.nrun_callers, 1);
    return st.result;
}
