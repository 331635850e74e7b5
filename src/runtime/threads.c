/* SPDX-License-Identifier: MIT */
/*
 * The threads goc made: every M, sysmon, the blocking pool's workers and
 * the CPU profile's writer. Each has a record, linked here from its
 * creation until it exits, with the stack that created it (runtime/
 * pprof's threadcreate profile) and what it is doing, for
 * goc_prof_write_threads().
 */
#include "runtime.h"
#include "goc/time.h"

#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__clang__) || __GNUC__ >= 8
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread")))
#else
#define NO_SANITIZE
#endif

static goc__lock lock = GOC__LOCK_INIT;
static struct goc__thread *all;
/* Started threads per kind, until they exit; read without the lock. */
static _Atomic int nkind[GOC__TK_PROFILER + 1];

/* The creator's stack, from its caller up (its own frame left out). */
__attribute__((noinline)) static int creator_stack(void **pcs, int max)
{
    const void *const *fp = __builtin_frame_address(0);
    uintptr_t lo, hi;
    if (!goc__stack_bounds(fp, &lo, &hi))
        return 0;
    return goc__backtrace(pcs, max, fp[0], lo, hi);
}

void goc__thread_created(struct goc__thread *t, enum goc__thread_kind kind)
{
    t->kind = kind;
    t->created_at = goc__nanotime();
    t->npc = creator_stack(t->pcs, GOC__THREAD_FRAMES);
    atomic_store_explicit(&t->tid, 0, memory_order_relaxed);
    atomic_store_explicit(&t->job, NULL, memory_order_relaxed);
    goc__lock_acquire(&lock);
    t->prev = NULL;
    t->next = all;
    if (all)
        all->prev = t;
    all = t;
    goc__lock_release(&lock);
}

void goc__thread_started(struct goc__thread *t)
{
    clockid_t clk;
    if (pthread_getcpuclockid(pthread_self(), &clk) != 0)
        clk = (clockid_t)-1;
    t->cpu_clock = clk; /* before tid, which publishes it */
    atomic_store_explicit(&t->tid, (int)gettid(), memory_order_release);
    /* Counted once it is there to be seen in /proc/self/task: counted
     * before, it would let the deadlock check take a user thread for it. */
    atomic_fetch_add(&nkind[t->kind], 1);
}

void goc__thread_exited(struct goc__thread *t)
{
    goc__lock_acquire(&lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        all = t->next;
    if (t->next)
        t->next->prev = t->prev;
    goc__lock_release(&lock);
    if (atomic_load_explicit(&t->tid, memory_order_relaxed)) /* started */
        atomic_fetch_sub(&nkind[t->kind], 1);
}

void goc__thread_job(struct goc__thread *t, const void *fn)
{
    if (fn)
        atomic_store_explicit(&t->job_since, goc__nanotime(),
                              memory_order_relaxed);
    atomic_store_explicit(&t->job, fn, memory_order_release);
}

/*
 * An M's state, read while it runs on: the fields are its own, written
 * without synchronisation, so they are read once each without the
 * sanitizers' checks; the goroutine may be another one by the time the
 * line is printed.
 */
NO_SANITIZE static void m_state(struct goc__m *m,
                                struct goc__thread_view *v,
                                int64_t now)
{
    struct goc__g *g = m->curg;
    struct goc__p *p = m->p;
    uint32_t b = atomic_load_explicit(&m->bstate, memory_order_relaxed);
    v->p = p ? p->id : -1;
    v->pinned = m->locked_g != NULL;
    if (g && g != &m->g0) {
        v->goroutine = g->id;
        memcpy(v->gname, g->name, sizeof(v->gname));
        v->gname[sizeof(v->gname) - 1] = '\0';
        v->state = (b & GOC__M_STATE) == GOC__M_RUNNING ? GOC__THREAD_RUNNING
                                                        : GOC__THREAD_BLOCKING;
        if (v->state == GOC__THREAD_BLOCKING && p &&
            atomic_load_explicit(&p->blocking_m, memory_order_relaxed) == m)
            v->since = now - atomic_load_explicit(&p->blocking_since,
                                                  memory_order_relaxed);
    } else if (atomic_load_explicit(&goc__sched.poller, memory_order_relaxed) ==
               m) {
        v->state = GOC__THREAD_POLLING;
    } else if (m->spinning) {
        v->state = GOC__THREAD_SPINNING;
    } else {
        v->state = p ? GOC__THREAD_SCHEDULING : GOC__THREAD_IDLE;
    }
}

static void view_of(struct goc__thread *t,
                    struct goc__thread_view *v,
                    int64_t now)
{
    memset(v, 0, sizeof(*v));
    v->kind = t->kind;
    v->tid = atomic_load_explicit(&t->tid, memory_order_acquire);
    v->age = now - t->created_at;
    v->npc = t->npc;
    memcpy(v->pcs, t->pcs, (size_t)t->npc * sizeof(void *));
    v->p = -1;
    v->cpu_ns = -1;
    struct timespec ts;
    if (v->tid && t->cpu_clock != (clockid_t)-1 &&
        clock_gettime(t->cpu_clock, &ts) == 0)
        v->cpu_ns = ts.tv_sec * GOC_SECOND + ts.tv_nsec;
    if (t->kind == GOC__TK_M) {
        struct goc__m *m = goc__container_of(t, struct goc__m, thread_rec);
        v->m_id = m->id;
        if (v->tid)
            m_state(m, v, now);
        return;
    }
    const void *job = atomic_load_explicit(&t->job, memory_order_acquire);
    v->job = job;
    v->state = job ? GOC__THREAD_RUNNING : GOC__THREAD_IDLE;
    if (job)
        v->since =
            now - atomic_load_explicit(&t->job_since, memory_order_relaxed);
}

int goc__thread_count(enum goc__thread_kind kind)
{
    return atomic_load(&nkind[kind]);
}

int goc__thread_views(struct goc__thread_view *out, int max)
{
    int64_t now = goc__nanotime();
    int n = 0;
    /* Under the lock: a linked thread has not exited, so its CPU clock
     * is still valid. */
    goc__lock_acquire(&lock);
    for (struct goc__thread *t = all; t; t = t->next, n++)
        if (n < max)
            view_of(t, &out[n], now);
    goc__lock_release(&lock);
    return n;
}
