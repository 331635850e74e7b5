/* SPDX-License-Identifier: MIT */
/*
 * Private runtime structures: goroutines (G), OS threads (M), processors
 * (P), the scheduler's global state, timers and stacks.
 *
 * The shape is Go's: a G runs only on an M that holds a P; a P owns a run
 * queue, a timer wheel and a cache of free stacks. Ms without work release
 * their P and sleep; one of them (the poller) sleeps in epoll until the
 * earliest timer, the others on a futex word of their own.
 */
#ifndef GOC_RUNTIME_PRIVATE_H
#define GOC_RUNTIME_PRIVATE_H

#include "goc/runtime.h"
#include "../internal/cpu.h"
#include "../internal/list.h"
#include "../internal/lock.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct goc__g;
struct goc__m;
struct goc__p;

/*
 * Work to do right after a switch, on the context switched to and the same
 * M, once the goroutine that switched away is off its stack.
 */
typedef void (*goc__commit_fn)(struct goc__m *m, void *arg);

/* ---- timers (timer.c) ------------------------------------------------- */

#define GOC__WHEEL_LEVELS 6
#define GOC__WHEEL_SLOTS  64

/*
 * An intrusive timer. It lives in its owner's memory (a goroutine, a
 * context, a poll descriptor) and sits in one P's wheel while armed.
 * fn(arg) runs on a scheduler thread, outside every lock, with the timer
 * already disarmed: it may re-arm it. The timer's memory must stay valid
 * until fn has returned; goc__timer_stop_sync() waits for that.
 *
 * Expiry touches the fields from tick to slot of every timer it walks: a
 * cache miss each, as timers live in cold memory. They are kept together
 * after the links, which expiry hardly uses, so that in a goroutine's
 * descriptor (64-byte aligned) they share one cache line: one miss per
 * timer, not two (asserted in proc.c).
 */
struct goc__timer {
    /* The slot's spill list, for a timer that found its array full and
     * could not grow it (idx == GOC__TIMER_SPILLED). */
    struct goc__timer *next, *prev;
    uint64_t tick; /* deadline in wheel ticks, rounded up */
    int64_t when;  /* deadline, goc_now() ns */
    void (*fn)(void *arg);
    void *arg;
    struct goc__wheel *_Atomic wheel; /* holding wheel; NULL when disarmed */
    uint32_t idx;                     /* in its slot's array, or SPILLED */
    _Atomic uint32_t firing;          /* runs of fn under way (stop_sync) */
    uint8_t level, slot;              /* which slot holds it */
    /* Never stop-synced, so never marked firing: the wheel leaves it
     * alone once fn runs (fn may free it, as a sleeper's exit does). */
    bool unsynced;
};

#define GOC__TIMER_SPILLED UINT32_MAX

/*
 * One slot of a wheel: the timers of one deadline range, as an array of
 * pointers (t == v[t->idx]) that expiry walks with prefetching, plus the
 * rare ones for which the array could not grow.
 */
struct goc__wheel_slot {
    struct goc__timer **v;
    uint32_t n, cap;
    struct goc__timer *spill;
};

/*
 * A hierarchical timing wheel (6 levels of 64 slots, level 0 ticks of
 * 65.5 us): O(1) arm and O(1) cancel, the common case for deadlines that
 * rarely fire. A timer fires at the end of its tick, so never early.
 */
struct goc__wheel {
    goc__lock lock;
    uint64_t elapsed; /* ticks already processed */
    uint64_t occupied[GOC__WHEEL_LEVELS];
    struct goc__wheel_slot slots[GOC__WHEEL_LEVELS][GOC__WHEEL_SLOTS];
    /* Timers beyond the top level's reach (52 days): re-examined each
     * time elapsed passes overflow_recheck, a top-level slot boundary. */
    struct goc__wheel_slot overflow;
    uint64_t overflow_recheck;
    /* A slot above level 0 whose expiry stopped with due timers left
     * (its fire batch was full): expired next, before lower levels
     * that now hold later deadlines. -1 when none. */
    int8_t resume_level;
    uint8_t resume_slot;
    _Atomic int64_t count; /* changed under lock, read by statistics */
    /* Earliest slot deadline in ns (INT64_MAX when empty): a hint others
     * read without the lock; it may be early after a cancel, never late. */
    _Atomic int64_t next_when;
};

void goc__wheel_init(struct goc__wheel *w);
/* Free the slot arrays of a wheel no P owns; -EBUSY if timers are armed. */
int goc__wheel_destroy(struct goc__wheel *w);
/* Arm t on wheel w; tests drive a private wheel this way. */
void goc__wheel_start(struct goc__wheel *w,
                      struct goc__timer *t,
                      int64_t when,
                      void (*fn)(void *),
                      void *arg);
/* Arm t on the current P's wheel (any P's from a plain thread). */
void goc__timer_start(struct goc__timer *t,
                      int64_t when,
                      void (*fn)(void *),
                      void *arg);
/* Disarm; true if it was armed (fn will not run), false if it had fired. */
bool goc__timer_stop(struct goc__timer *t);
/* goc__timer_stop, then wait until no run of fn is under way (one may be
 * even with t armed, if fn re-arms t: stop those re-arms first). */
bool goc__timer_stop_sync(struct goc__timer *t);
/* Run up to max of the wheel's timers due at now; returns how many. */
int goc__wheel_run(struct goc__wheel *w, int64_t now, int max);

/* ---- goroutines ------------------------------------------------------- */

enum goc__gstatus {
    GOC__G_IDLE,     /* free, in a stack cache */
    GOC__G_RUNNABLE, /* in a run queue */
    GOC__G_RUNNING,
    GOC__G_WAITING, /* parked */
    GOC__G_DEAD,    /* exited, stack not yet recycled */
};

enum goc__guard {
    GOC__GUARD_NONE,     /* g0: the thread's own stack */
    GOC__GUARD_MADVISE,  /* MADV_GUARD_INSTALL page, no VMA */
    GOC__GUARD_MPROTECT, /* PROT_NONE page, 2 VMAs per stack */
    GOC__GUARD_CANARY,   /* canary word checked at every switch-out */
};

#define GOC__STACK_CLASSES 17 /* 16 KiB << 0 .. 16 KiB << 16 = 1 GiB */

/*
 * A goroutine. It lives at the top of its own stack, so a parked goroutine
 * with a shallow stack costs one page, and it stays with its stack when it
 * is recycled.
 */
struct goc__g {
    /* The first line: what a switch and the scheduler read. */
    void *sp;            /* saved context while not running */
    struct goc__g *next; /* run queue or free list link */
    _Atomic int status;  /* enum goc__gstatus */
    int saved_errno;     /* errno of the goroutine while switched out */
    /* While parked: lines it reads first when it resumes, besides its
     * stack (goc__resume_hint). The scheduler prefetches them a switch
     * ahead. Set just before a park and cleared on waking, so NULL in a
     * new or recycled G (fresh slabs are zeroed); only hints, so a stale
     * one would cost a wasted prefetch, nothing more. */
    const void *resume_hint[2];
    goc_fn fn;
    struct goc__m *locked_m; /* set while pinned */
    int pin_count;
    uint8_t guard; /* enum goc__guard */
    uint8_t size_class;
    uint8_t trimmed;         /* pages below the top one were dropped */
    char *stack_base;        /* start of the reservation (the guard) */
    char *stack_lo;          /* lowest usable byte */
    size_t stack_size;       /* whole reservation */
    int64_t freed_at;        /* entered the global free pool (trimming) */
    int64_t parent_id;       /* creator's id, 0 for a plain thread */
    void *created_pc;        /* return address in the creator */
    struct goc__timer timer; /* goc_sleep */
    struct goc__try_frame *try_top;   /* innermost goc_try() */
    struct goc__defer *defers;        /* goc_defer() outside any goc_try() */
    struct goc_panic_info *panicking; /* unrecovered, its cleanups running */
    int64_t id;                       /* 0 for a g0 */
    void *arg;
    uint8_t wait_reason; /* enum goc__wait_reason, while parked */
    int64_t wait_since;  /* coarse time the wait began */
    char name[32];
#if defined(GOC_ASAN)
    void *asan_fake;
    const void *asan_bottom;
    size_t asan_size;
#endif
#if defined(GOC_TSAN)
    void *tsan_fiber;
#endif
#if defined(GOC_VALGRIND)
    unsigned vg_id;
#endif
};

/* What a parked goroutine waits for (dumps, deadlock reports). */
enum goc__wait_reason {
    GOC__WAIT_NONE,
    GOC__WAIT_CHAN_RECV,
    GOC__WAIT_CHAN_SEND,
    GOC__WAIT_SELECT,
    GOC__WAIT_SLEEP,
    GOC__WAIT_MUTEX,
    GOC__WAIT_RWMUTEX,
    GOC__WAIT_COND,
    GOC__WAIT_SEM,
    GOC__WAIT_WG,
    GOC__WAIT_IO,
    GOC__WAIT_BLOCKING,
    GOC__WAIT_CTX,
    GOC__WAIT_REASONS
};

extern const char *const goc__wait_reason_names[GOC__WAIT_REASONS];

/* A cleanup from goc_defer(). */
struct goc__defer {
    struct goc__defer *next;
    void (*fn)(void *arg);
    void *arg;
    bool heap; /* goc_defer()'s own record, freed before fn runs */
};

/*
 * goc_defer() with a record the caller provides, which must live until
 * its cleanup has started (the cleanup may free it): nothing to allocate,
 * so nothing can fail but the call outside any scope (-EPERM).
 */
int goc__defer_in(struct goc__defer *d, void (*fn)(void *arg), void *arg);

/* ---- processors ------------------------------------------------------- */

#define GOC__RUNQ_SIZE 256
#define GOC__GFREE_MAX 64 /* free Gs cached per P and size class */

struct goc__p {
    /* Owner pushes at tail, everyone takes at head with a CAS. */
    _Alignas(64) _Atomic uint32_t head;
    _Alignas(64) _Atomic uint32_t tail;
    struct goc__g *_Atomic ring[GOC__RUNQ_SIZE];
    /* Runs before the ring: the goroutine just readied or spawned. */
    struct goc__g *_Atomic runnext;
    /* runnext holds a hand-off whose wakep() was deferred (written by the
     * owner only): done if the running goroutine carries on instead of
     * parking. */
    _Atomic bool handoff_wake;
    /* Hand-offs left to make the plain way (waking an M): set by sysmon
     * when a sender computed on instead of parking, counted down by the
     * owner. */
    _Atomic uint32_t handoff_plain;
    uint32_t tick_left; /* switches until the next look at the global
                           queue and the timers */
    int id;
    struct goc__m *m;     /* owner while running */
    _Atomic bool running; /* held by an M (read by thieves) */
    /* The M whose goroutine is in a goc_blocking_enter() section. */
    struct goc__m *_Atomic blocking_m;
    _Atomic int64_t blocking_since;
    /* Its pinned goroutine is in a marked section (and keeps the P):
     * not a hog to report, though its queue still moves away. */
    _Atomic bool pinned_section;
    /* Set by sysmon when the running goroutine hogs the P (the time it
     * started); the goroutine is reported when it switches out. hog_nrun
     * is the P's nrun that sysmon saw stand still, stored first. */
    _Atomic int64_t hog_since;
    _Atomic uint64_t hog_nrun;
    _Atomic int hog_waiting;
    _Atomic int hog_kind; /* GOC__HOG_*: what its thread did meanwhile */
    /* The owner's thread, for sysmon to look up what that thread did
     * while the P did not switch: its kernel id and CPU-time clock. */
    _Atomic int holder_tid;
    _Atomic clockid_t holder_clock;
    /* sysmon's view (sysmon only): last nrun seen, and since when; the
     * holder thread's CPU time early in a long stretch, and when it was
     * read (0: not yet, -1: unreadable). */
    uint64_t mon_nrun;
    int64_t mon_since;
    bool mon_reported;
    int64_t mon_cpu_at, mon_cpu;
    int mon_moved; /* goroutines moved off it in this stretch */
    /* sysmon's view of a deferred hand-off: seen pending at nrun. */
    bool mon_handoff;
    uint64_t mon_handoff_nrun;
    struct goc__p *idle_next; /* idle list link */
    struct goc__wheel wheel;
    struct {
        int n;
        struct goc__g *g[GOC__GFREE_MAX]; /* LIFO: the hottest on top */
    } gfree[GOC__STACK_CLASSES];
    int64_t goid_next, goid_end; /* cached range of goroutine ids */
    /* Statistics; written only by the P's owner, read by anyone. */
    _Atomic uint64_t nrun;    /* goroutines switched to on this P */
    _Atomic uint64_t nsteal;  /* goroutines stolen by this P */
    _Atomic int64_t ncreated; /* goroutines created on this P */
    _Atomic int64_t nexited;  /* goroutines exited on this P */
    _Atomic uint64_t npark;   /* goroutines parked on this P */
    /* I/O waits begun on this P and not over yet (counted out here too,
     * wherever they wake). goc__pollwait_count() sums them, so that no
     * line is written by every wait. On a line of its own: an idle M
     * reads every P's count, and must not take the lines their owners
     * write at every switch. */
    _Alignas(64) _Atomic int npollwait;
};

enum {
    GOC__M_RUNNING,  /* normal */
    GOC__M_BLOCKING, /* its goroutine is in a blocking section */
    GOC__M_RETAKEN,  /* sysmon gave its P to another M meanwhile */
};
#define GOC__M_STATE 3u /* bstate's state bits; above them, the section's P */

/*
 * An M's bstate for a section opened on @p (NULL for a pinned one, which
 * keeps no P to itself): sysmon retakes p only from an M whose section is
 * on p now, not one that has left p's section and opened another since.
 */
static inline uint32_t goc__section_state(const struct goc__p *p,
                                          uint32_t state)
{
    return (p ? (uint32_t)(p->id + 1) << 2 : 0) | state;
}

/* Owner-only counter bump: no locked instruction needed. */
#define GOC__STAT_INC(field, n)                                               \
    atomic_store_explicit(                                                    \
        &(field), atomic_load_explicit(&(field), memory_order_relaxed) + (n), \
        memory_order_relaxed)

#include "runq.h"

/* ---- threads ---------------------------------------------------------- */

/*
 * A thread goc made (threads.c): linked from its creation until it exits,
 * with the stack that created it and, for a service thread, the job it
 * runs now.
 */
enum goc__thread_kind {
    GOC__TK_M,        /* runs goroutines */
    GOC__TK_SYSMON,   /* the watchdog */
    GOC__TK_BLOCKING, /* the blocking pool's */
    GOC__TK_PROFILER, /* the CPU profile's writer */
};

#define GOC__THREAD_FRAMES 24

struct goc__thread {
    struct goc__thread *next, *prev; /* under the registry's lock */
    enum goc__thread_kind kind;
    _Atomic int tid;     /* 0 until the thread has started */
    clockid_t cpu_clock; /* the thread's CPU-time clock, or -1 */
    int64_t created_at;
    _Atomic(const void *) job; /* a service thread's job now, or NULL */
    _Atomic int64_t job_since;
    int npc;
    void *pcs[GOC__THREAD_FRAMES]; /* the creator's stack */
};

struct goc__m {
    int id;
    pthread_t thread;
    struct goc__g g0;        /* scheduler context on the thread's stack */
    struct goc__g *curg;     /* running goroutine, or &g0 */
    struct goc__p *p;        /* held P */
    struct goc__p *nextp;    /* P handed over by the waker */
    struct goc__g *next_g;   /* goroutine to run next (locked hand-off) */
    struct goc__g *locked_g; /* goroutine pinned to this thread */
    bool spinning;
    _Atomic uint32_t park; /* futex word: 1 once woken */
    struct goc__m *idle_next;
    struct goc__m *all_next;
    /* Runs once, right after the next switch, on the new context. */
    goc__commit_fn commit;
    void *commit_arg;
    int *errno_p;        /* this thread's errno, looked up once */
    int tid;             /* the kernel's id of the thread */
    clockid_t cpu_clock; /* the thread's CPU-time clock */
    uint32_t rand;
    void *altstack;
    _Atomic uint32_t bstate; /* goc__section_state(), for blocking sections */
    /* While polling without a P: goroutines readied, injected at once. */
    bool batching;
    int batch_n;
    struct goc__g *batch_head, *batch_tail;
    /* A hog's report, written as it switches out and logged once the
     * switch's own commit has run (it may hold the lock of the wait the
     * hog parks in, which the log hook may use); no yield meanwhile. */
    goc__commit_fn hog_commit;
    void *hog_commit_arg;
    bool reporting;
    char hog_msg[512];
    struct goc__thread thread_rec;
};

/*
 * m's P if m may queue goroutines on it; NULL without a P and inside a
 * blocking section, where sysmon may give the P to another M at any
 * moment (only a P's owner may append to its run queue). Only m itself
 * opens and closes its sections, so a relaxed load of its state is exact.
 */
static inline struct goc__p *goc__m_owned_p(struct goc__m *m)
{
    return atomic_load_explicit(&m->bstate, memory_order_relaxed) ==
                   GOC__M_RUNNING
               ? m->p
               : NULL;
}

/* ---- global scheduler state ------------------------------------------- */

/*
 * Grouped by who writes what, one cache line per group: a field written
 * often (the spinning count, the poller's state, sysmon's clock) must not
 * share a line with fields every park, spawn or steal reads, or each
 * write costs those readers a miss.
 */
struct goc__sched {
    /* Read-mostly after start. */
    int nprocs;
    struct goc__p *allp;
    size_t stack_size;
    int stack_class; /* class of stack_size */
    int epfd, evfd;
    /* Global run queue and idle lists (under lock). */
    _Alignas(64) goc__lock lock;
    struct goc__g *gq_head, *gq_tail;
    _Atomic int64_t gq_len;
    struct goc__p *pidle;
    struct goc__m *midle;
    struct goc__m *allm;
    /* Idle and spinning counts, read by every wakep. */
    _Alignas(64) _Atomic int npidle;
    _Atomic int nmspinning;
    _Atomic int nm;
    /* A thread for an idle P could not be made: sysmon tries again. */
    _Atomic bool m_start_failed;
    /* Poller: the idle M sleeping in epoll until the earliest timer. */
    _Alignas(64) struct goc__m *_Atomic poller;
    _Atomic int64_t poll_until;
    _Atomic uint32_t poll_wake_pending;
    /* I/O waits of plain threads and the signal subscriptions; those of
     * goroutines are counted per P (see goc__pollwait_count). */
    _Atomic int npollwait;
    /* When epoll was last asked for events: written by every poll, so
     * not on the line every waiter reads (poller). */
    _Alignas(64) _Atomic int64_t last_poll;
    /* goc_now(), refreshed by sysmon; read by every wait record. */
    _Alignas(64) _Atomic int64_t coarse_now;
    /* What the deadlock check must know may still wake someone. */
    _Alignas(64) _Atomic int nsections; /* goc_blocking_enter() sections open */
    _Atomic int nblocking_jobs;         /* goc_blocking() calls in flight */
    _Atomic int nblocking_threads;      /* the blocking pool's threads */
    _Atomic int nrun_callers;           /* threads waiting in goc_run() */
    _Atomic int64_t ngoroutine;         /* created from plain threads */
    _Atomic int64_t next_id;
};

extern struct goc__sched goc__sched;

/* ---- scheduler entry points (sched.c, proc.c) -------------------------- */

/* Start the runtime if needed; 0 or a negative error. */
int goc__rt_ensure(void);
/* True once the runtime has started (it never stops). */
bool goc__rt_started(void);

/* The calling thread's M, or NULL on a plain thread. Never cached by the
 * compiler across a switch: a goroutine may resume on another M. */
#if defined(__x86_64__) && defined(__LP64__) && defined(__ELF__)
extern __thread struct goc__m *goc__tls_m
    __attribute__((tls_model("initial-exec"), visibility("hidden")));

/*
 * Inline on x86-64: every park, ready and switch asks, and a call costs
 * more than the read. The asm is volatile and clobbers memory, so the
 * compiler re-reads %fs at each use instead of keeping the address it
 * computed on the thread the goroutine ran on before a switch.
 */
static inline struct goc__m *goc__m_current(void)
{
    struct goc__m *m;
    __asm__ volatile("movq goc__tls_m@gottpoff(%%rip), %0\n\t"
                     "movq %%fs:(%0), %0"
                     : "=r"(m)
                     :
                     : "memory");
    return m;
}
#else
struct goc__m *goc__m_current(void);
#endif

/* The running goroutine, or NULL on a plain thread or a g0. Inline:
 * every wait record asks for it. */
static inline struct goc__g *goc__g_current(void)
{
    struct goc__m *m = goc__m_current();
    if (!m || m->curg == &m->g0)
        return NULL;
    return m->curg;
}

/*
 * The running goroutine is about to park (a, b: lines it will read first
 * when it resumes, or NULL), or has resumed (NULL, NULL). No-op on a
 * plain thread. See prefetch_following in sched.c.
 */
static inline void goc__resume_hint(const void *a, const void *b)
{
    struct goc__g *g = goc__g_current();
    if (g) {
        g->resume_hint[0] = a;
        g->resume_hint[1] = b;
    }
}

/*
 * Park the running goroutine (status already GOC__G_WAITING) and run
 * others. commit(arg) runs once the goroutine is off its stack, typically
 * releasing the lock that guards its wait record. Returns when it is
 * readied.
 */
void goc__park(goc__commit_fn commit, void *arg);
/* goc__park for a caller that already holds the current M. */
void goc__park_m(struct goc__m *m, goc__commit_fn commit, void *arg);

/* As goc__park, for an exited goroutine: never returns. */
void goc__park_exit(goc__commit_fn commit, void *arg) __attribute__((noreturn));

/* A commit that releases the goc__lock given as arg. */
void goc__commit_unlock(struct goc__m *m, void *lock);

/* Make a parked goroutine runnable; next: run it before the queue. */
void goc__ready(struct goc__g *g, bool next);

/*
 * goc__ready(g, true) for a hand-off to a partner that the running
 * goroutine usually parks for at once (an unbuffered channel): if g is
 * the P's only queued work, no idle M is woken; the P runs g when the
 * running goroutine parks, or goc__handoff_flush() wakes one if it goes
 * on instead.
 */
void goc__ready_handoff(struct goc__g *g);
/* The running goroutine went on without parking: wake an M for a
 * deferred hand-off, if any. */
void goc__handoff_flush(void);

/* Wake an idle P if there is work and no spinning M to find it. */
void goc__wakep(void);

/* Wake the poller if it sleeps past when; start one if there is none. */
void goc__poll_kick(int64_t when);

/* Run after every switch, on the context switched to. */
void goc__after_switch(void);

/* Thread main loop on g0. */
void goc__m_schedule(struct goc__m *m) __attribute__((noreturn));

/* Earliest timer over all Ps, INT64_MAX if none. */
int64_t goc__timers_earliest(void);

/* ---- waiting from goroutines and plain threads (wait.c) --------------- */

/*
 * One blocking operation, on the waiter's stack, woken by whichever of its
 * sources claims it first (see wait.c for the protocol).
 */
struct goc__wait {
    struct goc__g *g; /* NULL for a plain thread */
    _Atomic uint32_t state;
    int index;   /* the winning source's index, set by the claimer */
    bool parked; /* the claimer found the goroutine parked */
    /*
     * Every source claims under the lock that goc__wait_block releases
     * (an unbuffered channel's, with no context watching): no claims
     * race, so claiming and parking need no atomic read-modify-write.
     */
    bool exclusive;
};

/* A wait's state word; wait.c has the diagram. */
enum {
    GOC__WAIT_STATE_IDLE,
    GOC__WAIT_STATE_PARKED,
    GOC__WAIT_STATE_CLAIMED,
    GOC__WAIT_STATE_DONE,
};

/* Prepare w for the caller, which is about to wait for reason. Inline:
 * every blocking operation starts here. */
static inline void goc__wait_init(struct goc__wait *w, int reason)
{
    struct goc__g *g = goc__g_current();
    w->g = g;
    if (g) {
        g->wait_reason = (uint8_t)reason;
        g->wait_since =
            atomic_load_explicit(&goc__sched.coarse_now, memory_order_relaxed);
    }
    atomic_init(&w->state, GOC__WAIT_STATE_IDLE);
    w->index = -1;
    w->parked = false;
    w->exclusive = false;
}
/* Win the wait for source index; false if another source won. Inline:
 * every hand-off claims its peer's wait. */
static inline bool goc__wait_claim(struct goc__wait *w, int index)
{
    uint32_t s = atomic_load_explicit(&w->state, memory_order_acquire);
    if (w->exclusive) {
        /* We hold the only lock claims are made under. */
        if (s != GOC__WAIT_STATE_IDLE && s != GOC__WAIT_STATE_PARKED)
            return false;
        atomic_store_explicit(&w->state, GOC__WAIT_STATE_CLAIMED,
                              memory_order_relaxed);
        w->index = index;
        w->parked = s == GOC__WAIT_STATE_PARKED;
        return true;
    }
    for (;;) {
        if (s != GOC__WAIT_STATE_IDLE && s != GOC__WAIT_STATE_PARKED)
            return false;
        if (atomic_compare_exchange_weak_explicit(
                &w->state, &s, GOC__WAIT_STATE_CLAIMED, memory_order_acq_rel,
                memory_order_acquire))
            break;
    }
    w->index = index;
    w->parked = s == GOC__WAIT_STATE_PARKED;
    return true;
}

/* After a successful claim and the source's work: wake the waiter. The
 * waiter may return at once: touch w no more. */
void goc__wait_finish(struct goc__wait *w);
/* goc__wait_finish, readying a goroutine with goc__ready_handoff(); if
 * it readies none, goc__handoff_flush(). */
void goc__wait_finish_handoff(struct goc__wait *w);
/* The waiter completes its own operation; false if a source won. */
bool goc__wait_claim_self(struct goc__wait *w, int index);
/* Block until claimed; unlock(arg) runs once the caller is safely asleep.
 * Returns the winning index. */
int goc__wait_block(struct goc__wait *w, void (*unlock)(void *), void *arg);

/*
 * One round of waiting for another thread to finish a few instructions (a
 * timer's callback, a cancel reading a record): this P's other goroutines
 * run first, then, after many rounds, the thread gives up its CPU. That
 * thread may be preempted, and spinning on would keep it off a busy CPU
 * (for seconds under valgrind, which runs one thread at a time). @spins
 * starts at 0.
 */
void goc__yield_to_peer(unsigned *spins);

/* ---- stacks (stack.c) -------------------------------------------------- */

int goc__stack_init(void);
int goc__stack_class(size_t size);
size_t goc__stack_class_size(int cls);
/* A free G with a stack of class cls, from p's cache or the global pool. */
struct goc__g *goc__g_get(struct goc__p *p, int cls);
/* Recycle an exited G into p's cache (p may be NULL). */
void goc__g_put(struct goc__p *p, struct goc__g *g);
/* Drop the pages of stacks idle in the pool since now - idle_ns; called
 * by sysmon. Stops after about budget_ns: true if idle ones are left. */
bool goc__stack_trim(int64_t now, int64_t idle_ns, int64_t budget_ns);
/* Report a stack overflow of g and end the process. */
void goc__stack_overflow(struct goc__g *g, const void *addr)
    __attribute__((noreturn));
/* True if a fault at addr is g's stack overflow: in its guard zone, or
 * (a canary-guarded stack, its canary broken) a few pages under it. */
bool goc__stack_guard_hit(struct goc__g *g, const void *addr);
bool goc__stack_canary_ok(struct goc__g *g);
/* Counters for tests and stats. */
int64_t goc__stack_mapped_count(void);
/* Bytes of address space held by stack slabs, and (if resident is not
 * NULL) how many of them are in RAM: a mincore() walk of every slab. */
uint64_t goc__stack_reserved(uint64_t *resident);
/* Call fn for every G ever set up (free ones too: check the status). */
void goc__stack_foreach(void (*fn)(struct goc__g *g, void *arg), void *arg);

/* ---- goc's threads (threads.c) ---------------------------------------- */

/* What a thread was doing when it was looked at. */
enum goc__thread_state {
    GOC__THREAD_IDLE,       /* waiting for work */
    GOC__THREAD_RUNNING,    /* a goroutine, or a service thread's job */
    GOC__THREAD_BLOCKING,   /* its goroutine is in a blocking section */
    GOC__THREAD_SPINNING,   /* an M looking for goroutines to run */
    GOC__THREAD_POLLING,    /* the M waiting in epoll for I/O and timers */
    GOC__THREAD_SCHEDULING, /* an M with a P, between goroutines */
};

struct goc__thread_view {
    enum goc__thread_kind kind;
    enum goc__thread_state state;
    int tid;        /* 0: not started yet */
    int m_id, p;    /* an M's id and P (-1: none) */
    bool pinned;    /* an M whose goroutine is pinned to it */
    int64_t cpu_ns; /* CPU time used; -1 unknown */
    int64_t age;    /* since its creation */
    int64_t since;  /* in a blocking section, or in its job, for this long */
    int64_t goroutine;
    char gname[32];
    const void *job; /* a service thread's job function */
    int npc;
    void *pcs[GOC__THREAD_FRAMES];
};

/* Link @t (zeroed or reused storage) with the caller's stack; before the
 * thread is made. A thread that cannot be made is unlinked at once. */
void goc__thread_created(struct goc__thread *t, enum goc__thread_kind kind);
/* First thing the thread does: its id and CPU clock. */
void goc__thread_started(struct goc__thread *t);
/* Last thing the thread does with @t (or its creator, if it failed). */
void goc__thread_exited(struct goc__thread *t);
/* A service thread starts the job @fn (NULL: it is idle again). */
void goc__thread_job(struct goc__thread *t, const void *fn);
/* Views of up to @max of goc's threads; the number there are. */
int goc__thread_views(struct goc__thread_view *out, int max);
/* goc's threads of @kind started and not yet exited (the deadlock check's
 * census). */
int goc__thread_count(enum goc__thread_kind kind);

/* ---- panics and dumps (panic.c, dump.c) ------------------------------- */

struct goc__try_frame;
struct goc_panic_info;
/* Walk frame pointers from fp_start: up to max return addresses, from
 * frame records inside the stack [lo, hi) only. */
int goc__backtrace(
    void **pcs, int max, const void *fp_start, uintptr_t lo, uintptr_t hi);
/* The stack that holds sp, [lo, hi): the running goroutine's, the signal
 * stack, or the thread's; false if sp is in none of them. */
bool goc__stack_bounds(const void *sp, uintptr_t *lo, uintptr_t *hi);
/* "function+0xoff" for a return address, as snprintf. */
int goc__symbolize(const void *pc, char *buf, size_t n);
/* "function" for a function's address (an entry point). */
int goc__symbolize_entry(const void *fn, char *buf, size_t n);
/* The process is dying (a fault, a fatal panic, a SIGQUIT or deadlock
 * dump): after one wait for the symbolizer's lock in vain, only try it. */
void goc__symbolize_dying(void);
/* The symbolised frames of @p's backtrace, "\tfunction+0xoff\n" each,
 * as snprintf (goc_panic_info_format() gives them after the message). */
int goc__panic_info_frames(const struct goc_panic_info *p, char *buf, size_t n);
/* Run and free the cleanups of a goc_defer() list, newest first. */
void goc__run_defers(struct goc__defer **list);
/* Panic again with @p (from goc_try(), taken over) as the panic itself:
 * message, code and backtrace stay whole. Does not return. */
void goc__panic_again(struct goc_panic_info *p) __attribute__((noreturn));
/*
 * @later, a panic raised while cleaning up after @first, with @first
 * chained under it as the panic it interrupted (what a report shows as
 * the root cause). Either may be NULL; returns the one to raise.
 */
struct goc_panic_info *goc__panic_join(struct goc_panic_info *first,
                                       struct goc_panic_info *later);
/* A heap copy of @p and of the panics chained to it; NULL out of memory. */
struct goc_panic_info *goc__panic_info_dup(const struct goc_panic_info *p);
/*
 * A NULL object given to a call that has no error code to return (a void
 * call, a getter): a panic naming the call, with code -EINVAL, as Go's
 * nil dereference is a panic; it can be recovered like any other.
 */
void goc__null_argument(const char *call) __attribute__((noreturn, cold));
/*
 * Misuse that Go turns into a panic (a second close, an unlock of what is
 * not locked, a negative WaitGroup): GOC_EMISUSE, for the caller to
 * return with nothing changed; with GOC_ABORT_ON_MISUSE=1 in the
 * environment, a panic with @what as its message instead, as in Go. Call
 * it with no lock held.
 */
int goc__misuse(const char *what) __attribute__((cold));
/* goc_dump() of every goroutine but the caller; the count or -errno. */
int goc__dump_others(int fd);
/* The panic that ended the process, once it does (for debuggers). */
extern struct goc_panic_info *volatile goc__fatal_panic;
/*
 * goc_go(fn, arg), storing value at *word (release) once the spawn cannot
 * fail and before fn can run; on failure *word is untouched.
 */
int goc__go_release(goc_fn fn,
                    void *arg,
                    _Atomic uint32_t *word,
                    uint32_t value);

/* After-funcs whose spawn failed (ENOMEM), waiting for sysmon to retry. */
extern _Atomic int64_t goc__ctx_after_deferred;
void goc__ctx_after_retry(void);

/* Goroutines alive (never below those alive throughout the call), and
 * in *created_total (if not NULL) all ever created. */
int64_t goc__count_goroutines(int64_t *created_total);

/* One goroutine as goc__goroutine_walk() sees it (a racy snapshot). */
struct goc__gsnap {
    int64_t id, parent_id;
    int status;      /* enum goc__gstatus */
    int wait_reason; /* while waiting: index in goc__wait_reason_names */
    const char *name;
    bool self; /* the walking goroutine */
    const void *entry;
    void *const *pcs; /* return addresses, innermost first; none while it
                         runs on another thread */
    int npc;
};
/* Call fn for every live goroutine (profiles); returns how many. */
int goc__goroutine_walk(void (*fn)(const struct goc__gsnap *s, void *arg),
                        void *arg);
/* sysmon, each tick: if every M has been idle and nothing can ever wake
 * a goroutine, report the deadlock and exit. */
void goc__check_deadlock(void);

/* ---- network poller (netpoll.c) --------------------------------------- */

enum { GOC__PD_READ, GOC__PD_WRITE };

/*
 * A poll descriptor: one per descriptor registered with the runtime's
 * epoll set (edge-triggered, both directions, registered once). Each
 * direction counts the readiness events seen and keeps a list of waiters;
 * an event wakes them all and they retry their system call. Its memory
 * must never be freed, only reused: an event already taken out of epoll
 * may still name it, and then wakes its next user spuriously, which is
 * harmless.
 */
struct goc__pd {
    goc__lock lock;
    /* Set for the runtime's own descriptors (the signal pipe): called on
     * the polling thread instead of waking waiters. */
    void (*on_event)(struct goc__pd *pd);
    bool closing;            /* goc__pd_close: waits fail */
    _Atomic uint64_t seq[2]; /* readiness events per direction */
    /* seq when a read left the receive queue empty: until seq moves,
     * another read would only fail with EAGAIN. */
    _Atomic uint64_t drained_seq;
    /* An event reported a hang-up or an error (a FIN or an RST may have
     * come with the last data): reads always try their system call. */
    _Atomic bool hangup;
    struct goc__dlink *waiters[2]; /* struct goc__pd_waiter, under lock */
    /* waiters[dir], stored under the lock after each change and read
     * without it by the poller, only to prefetch (goc__pd_prefetch). */
    struct goc__dlink *_Atomic first[2];
    struct goc__pd *cache_next; /* free list of its owner's cache */
    /* Bumped (release) by each registration and read (acquire) by the
     * poller: the kernel orders epoll_ctl before the event it reports,
     * but the tools (TSan) need to see the hand-off of pd's fields. */
    _Atomic uint32_t registered;
};

/* Add fd to the epoll set for pd (pd zeroed or reused); 0 or -errno. */
int goc__pd_register(struct goc__pd *pd, int fd);
/*
 * The poller, a few events ahead: start loading pd (stage 0), then, once
 * pd is in, the first waiter that events will wake (stage 1). Each event
 * otherwise meets a cold descriptor and a waiter on a cold stack page.
 */
void goc__pd_prefetch(struct goc__pd *pd, uint32_t events, int stage);
/* Readiness events seen so far in dir: read it before the system call. */
static inline uint64_t goc__pd_seq(struct goc__pd *pd, int dir)
{
    return atomic_load_explicit(&pd->seq[dir], memory_order_acquire);
}
/*
 * Wait on w for the next readiness event in dir, unless one arrived since
 * seq was read or pd is closing. Index 0 of w is the descriptor's; others
 * (a context's) may claim w too. Returns the winning index.
 */
int goc__pd_wait(struct goc__pd *pd,
                 int dir,
                 uint64_t seq,
                 struct goc__wait *w);
/* Mark pd closing and wake its waiters; later waits return at once. */
void goc__pd_close(struct goc__pd *pd);
/* Reset a closed pd for reuse by another descriptor. */
void goc__pd_reuse(struct goc__pd *pd);
/* An epoll event for pd: count it and wake the waiters. */
void goc__pd_event(struct goc__pd *pd, uint32_t events);
/* A waiter appeared: if nobody sleeps in epoll and a P is idle, wake an
 * M to do it, rather than wait for a busy M to run dry. */
void goc__poll_ensure(void);
/* Goroutines and threads waiting for I/O (and signal subscriptions). */
int goc__pollwait_count(void);
/* Poll without blocking if I/O waiters exist and no one else polls.
 * Returns how many goroutines it readied. */
int goc__netpoll_nowait(void);
/* Put the goroutines m readied while polling into the global queue
 * (sched.lock held); returns how many. */
int goc__inject_batch_locked(struct goc__m *m);

/* ---- poller, sysmon, faults, config ----------------------------------- */

int goc__poll_init(void);
/* Sleep in epoll until deadline (INT64_MAX: forever), dispatching events. */
void goc__poll_wait(int64_t deadline);
void goc__poll_wake(void);
int goc__sysmon_start(void);
/* Wake sysmon if it sleeps long: a blocking section just started. */
void goc__sysmon_kick(void);
/* Wake sysmon if it sleeps longer than a deferred hand-off may wait. */
void goc__sysmon_kick_handoff(void);
/* sysmon: give away a P whose goroutine blocks; true if it did. */
bool goc__sysmon_retake(struct goc__p *p);
/* sysmon: move the queue of a P whose goroutine hogs it to the others;
 * returns how many goroutines were waiting there. */
int goc__sysmon_unload(struct goc__p *p);
/* What a goroutine that kept its P too long was doing, as its thread's
 * times tell: running, or asleep in the kernel outside a blocking
 * section. */
enum { GOC__HOG_COMPUTING, GOC__HOG_IN_KERNEL };
/*
 * Write the report of g, which kept m's P for too long, as it switches
 * out; true if there is one to log (m->hog_msg) after the switch.
 */
bool goc__hog_report(struct goc__m *m, struct goc__g *g, bool counted)
    __attribute__((cold, noinline));
/* Report through the log hook (printf-style). */
void goc__log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/*
 * Report a crash and end the process: @fn(@arg), which writes the report,
 * runs on a stack of its own (the crashing goroutine's may be used up),
 * then the process exits with status 2. Only the first crash reports: a
 * later one on another thread waits for the exit; one on the reporting
 * thread exits at once.
 */
void goc__crash_report(void (*fn)(void *arg), void *arg)
    __attribute__((noreturn));
/* goc__crash_report's gate alone: returns on the one thread that is to
 * report (for a report that needs no stack of its own). */
void goc__crash_gate(void);
int goc__fault_init(void);
/* The signal stack of a new M's thread, made before the thread is: an M
 * without one would die of a stack overflow unreported. */
int goc__fault_altstack_new(struct goc__m *m);
/* On the M's thread: take its signal stack. */
int goc__fault_thread_init(struct goc__m *m);
/*
 * Signal masks. An M takes the one the program had in the thread that
 * started the runtime, whatever thread makes it (sysmon and the blocking
 * pool's threads block the program's signals, and a thread inherits its
 * maker's mask); goc's service threads block every signal. Neither
 * blocks the signals of faults, nor SIGPROF unless @profiled is false.
 */
void goc__sigmask_m(void);
/* That mask, for a context made for the portable switch. */
void goc__sigmask_m_get(sigset_t *set);
void goc__sigmask_service(sigset_t *set, bool profiled);
/*
 * Reports held back while a lock or a pthread_once of the runtime's start
 * is held: the log hook may call goc (goc_go() starts the runtime), which
 * would wait on that lock or once for ever. A few fixed slots, nothing
 * allocated; one more report than fits is dropped.
 */
struct goc__held_log {
    int n;
    char msg[4][512];
};
void goc__held_log_add(struct goc__held_log *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Report what h holds through goc__log() and empty it. */
void goc__held_log_flush(struct goc__held_log *h);
/* GOC_MAXPROCS and GOC_STACK_SIZE: a refusal is reported through goc__log()
 * if @held is NULL, else held in it. */
int goc__config_procs(int requested, struct goc__held_log *held);
size_t goc__config_stack(size_t requested, struct goc__held_log *held);
/* The environment variable @var as a count from 1 to @max; @dflt if it is
 * unset or empty, and also, reported as above, if malformed. */
int goc__env_count(const char *var,
                   int max,
                   int dflt,
                   struct goc__held_log *held);

int64_t goc__nanotime(void);
/* Sleep with no way to cancel: the goroutine's own timer, no wait record. */
void goc__sleep_until(int64_t deadline);
uint32_t goc__fastrand(struct goc__m *m);

#endif /* GOC_RUNTIME_PRIVATE_H */
