/* SPDX-License-Identifier: MIT */
/*
 * The scheduler: switching between goroutines, parking and readying them,
 * and the loop each OS thread (M) runs on its own stack (g0) to find work.
 *
 * A parking goroutine switches straight to the next one of its P (G to G,
 * one switch) whenever one is queued; only when its P has nothing, every
 * 61st switch (to look at the global queue and the timers), or for pinned
 * goroutines does it go through g0. Idle Ms spin briefly looking for work
 * to steal, then release their P and sleep: one of them in epoll until the
 * earliest timer (the poller), the others on a futex word of their own, and
 * nobody issues a futex wake unless it knows of a sleeper.
 */
#include "runtime.h"
#include "san.h"
#include "../arch/switch.h"
#include "../internal/cpu.h"
#include "../internal/futex.h"

#include <sched.h>
#include <stdlib.h>

#if defined(__GNUC__) && !defined(__clang__)
#define GOC_NOIPA __attribute__((noipa))
#else
#define GOC_NOIPA __attribute__((noinline))
#endif

#define GLOBAL_CHECK_TICKS 61 /* look at the global queue this often */
#define STEAL_ROUNDS       4

struct goc__sched goc__sched = { .lock = GOC__LOCK_INIT };

#if defined(__x86_64__) && defined(__LP64__) && defined(__ELF__)
__thread struct goc__m *goc__tls_m;
#define tls_m goc__tls_m
#else
static __thread struct goc__m *tls_m __attribute__((tls_model("initial-exec")));

/*
 * Never inlined nor analysed across calls: after a switch the same code
 * may run on another thread, so the TLS read must happen again. (clang
 * treats a TLS address as constant within a function; the volatile asm
 * keeps it from proving this function pure and merging calls.)
 */
GOC_NOIPA struct goc__m *goc__m_current(void)
{
    struct goc__m *m = tls_m;
    __asm__ volatile("" : "+r"(m));
    return m;
}
#endif

void goc__m_set_current(struct goc__m *m);
void goc__m_set_current(struct goc__m *m)
{
    tls_m = m;
}

uint32_t goc__fastrand(struct goc__m *m)
{
    /* xorshift32: per-M state, no shared cache line. */
    uint32_t x = m->rand;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    m->rand = x;
    return x;
}

/* ---- switching -------------------------------------------------------- */

/* The switch's commit, then the resumed goroutine's errno (after: the
 * commit may set it). */
static __attribute__((noinline)) void commit_then_errno(struct goc__m *m)
{
    goc__commit_fn commit = m->commit;
    m->commit = NULL;
    commit(m, m->commit_arg);
    *m->errno_p = m->curg->saved_errno;
}

/*
 * errno's address is per thread, and glibc declares __errno_location()
 * const, so the compiler may compute it once per function: across a
 * switch that moves threads it would point at the old thread's errno. Each
 * M looks its errno up once, at start, and switches use m->errno_p, with m
 * itself read afresh after every switch.
 */
void goc__after_switch(void)
{
    struct goc__m *m = goc__m_current();
#if defined(GOC_ASAN)
    __sanitizer_finish_switch_fiber(m->curg->asan_fake, NULL, NULL);
#endif
    if (m->commit) {
        commit_then_errno(m); /* a tail call: without a commit (a yield's),
                               * this saves no register */
        return;
    }
    *m->errno_p = m->curg->saved_errno;
}

static void switch_to(struct goc__m *m,
                      struct goc__g *from,
                      struct goc__g *to,
                      bool from_dead);

/*
 * A goroutine that yielded went back on its queue before switching out
 * (goc_yield), with its stack pointer cleared; goc__ctx_switch stores
 * the real one, with release, once its registers are saved. Whoever took
 * it from the queue in that window waits here for the store: a few
 * instructions, unless the yielder's thread loses its CPU in them (then
 * a parking goroutine waiting here keeps its commit, a lock say, pending
 * that long).
 */
__attribute__((noinline, cold)) static void switch_after_wait(
    struct goc__m *m, struct goc__g *from, struct goc__g *to, bool from_dead)
{
    unsigned spins = 0;
    while (__atomic_load_n(&to->sp, __ATOMIC_ACQUIRE) == NULL) {
        if (++spins < 100)
            goc__cpu_relax();
        else
            sched_yield(); /* its thread lost the CPU mid-switch */
    }
    switch_to(m, from, to, from_dead);
}

/*
 * The switch itself. Nothing of this frame is live across it: the resumed
 * side finds everything through its M, which it reads afresh since it may
 * be another thread's, so the frame saves no register of its own. Not
 * inlined, and the only caller of the context switch: every parked
 * goroutine shows the same return address here, so profiles group
 * goroutines parked at the same place into one stack.
 */
__attribute__((noinline)) static void switch_to(struct goc__m *m,
                                                struct goc__g *from,
                                                struct goc__g *to,
                                                bool from_dead)
{
    void *sp = __atomic_load_n(&to->sp, __ATOMIC_ACQUIRE);
    if (__builtin_expect(sp == NULL, 0)) {
        switch_after_wait(m, from, to, from_dead);
        return;
    }
    m->curg = to;
    atomic_store_explicit(&to->status, GOC__G_RUNNING, memory_order_relaxed);
#if defined(GOC_ASAN)
    __sanitizer_start_switch_fiber(from_dead ? NULL : &from->asan_fake,
                                   to->asan_bottom, to->asan_size);
#else
    (void)from_dead;
#endif
#if defined(GOC_TSAN)
    __tsan_switch_to_fiber(to->tsan_fiber, 0);
#endif
    goc__ctx_switch(&from->sp, sp);
    goc__after_switch();
}

/*
 * The switch's own commit, then the hog's report: the commit releases
 * whatever the hog parked holding (a channel's lock, say), which the log
 * hook may well use. The hook runs as the goroutine switched to, which
 * must not yield inside its own resumption.
 */
static void commit_then_report(struct goc__m *m, void *arg)
{
    (void)arg;
    if (m->hog_commit)
        m->hog_commit(m, m->hog_commit_arg);
    m->reporting = true;
    goc__log("%s", m->hog_msg);
    m->reporting = false;
}

/* switch_begin's rare checks: a canary-guarded stack, a hog to report. */
__attribute__((noinline, cold)) static void switch_checked(struct goc__m *m,
                                                           struct goc__g *from,
                                                           struct goc__g *to,
                                                           bool from_dead)
{
    if (from->guard == GOC__GUARD_CANARY && !goc__stack_canary_ok(from))
        goc__stack_overflow(from, NULL);
    if (m->p && atomic_load_explicit(&m->p->hog_since, memory_order_relaxed) &&
        goc__hog_report(m, from, to != &m->g0)) {
        m->hog_commit = m->commit;
        m->hog_commit_arg = m->commit_arg;
        m->commit = commit_then_report;
    }
    switch_to(m, from, to, from_dead);
}

/*
 * Leave from for to: keep from's errno, run the rare checks out of line,
 * switch. Both calls are tail calls, so a caller that ends with this saves
 * no register for them.
 */
static inline void switch_begin(struct goc__m *m,
                                struct goc__g *from,
                                struct goc__g *to,
                                bool from_dead)
{
    from->saved_errno = *m->errno_p;
    if (from->guard == GOC__GUARD_CANARY ||
        (m->p &&
         atomic_load_explicit(&m->p->hog_since, memory_order_relaxed))) {
        switch_checked(m, from, to, from_dead);
        return;
    }
    switch_to(m, from, to, from_dead);
}

void goc__commit_unlock(struct goc__m *m, void *lock)
{
    (void)m;
    goc__lock_release(lock);
}

/* ---- Ps and Ms -------------------------------------------------------- */

static void acquire_p(struct goc__m *m, struct goc__p *p)
{
    m->p = p;
    p->m = m;
    /* The mark of a pinned section comes with its M (which may have
     * parked inside the section and come back on another P). */
    atomic_store_explicit(
        &p->pinned_section,
        m->locked_g && atomic_load_explicit(&m->bstate, memory_order_relaxed) ==
                           goc__section_state(NULL, GOC__M_BLOCKING),
        memory_order_relaxed);
    atomic_store_explicit(&p->holder_tid, m->tid, memory_order_relaxed);
    atomic_store_explicit(&p->holder_clock, m->cpu_clock, memory_order_relaxed);
    atomic_store_explicit(&p->running, true, memory_order_relaxed);
}

static struct goc__p *release_p(struct goc__m *m)
{
    struct goc__p *p = m->p;
    atomic_store_explicit(&p->running, false, memory_order_relaxed);
    /* A pinned section's mark is its M's: it does not go with the P. */
    atomic_store_explicit(&p->pinned_section, false, memory_order_relaxed);
    p->m = NULL;
    m->p = NULL;
    return p;
}

/* Under sched.lock. */
static void pidle_put(struct goc__p *p)
{
    p->idle_next = goc__sched.pidle;
    goc__sched.pidle = p;
    atomic_fetch_add(&goc__sched.npidle, 1);
}

/* Under sched.lock. */
static struct goc__p *pidle_get(void)
{
    struct goc__p *p = goc__sched.pidle;
    if (p) {
        goc__sched.pidle = p->idle_next;
        atomic_fetch_sub(&goc__sched.npidle, 1);
    }
    return p;
}

/* Sleep until another thread calls wake_m(m). */
static void m_sleep(struct goc__m *m)
{
    while (atomic_load(&m->park) == 0)
        goc__futex_wait(&m->park, 0, -1);
    atomic_store(&m->park, 0);
}

static void wake_m(struct goc__m *m)
{
    atomic_store(&m->park, 1);
    goc__futex_wake(&m->park, 1);
}

/* Park on the idle M list until a waker hands over a P. */
static void stop_m(struct goc__m *m)
{
    goc__lock_acquire(&goc__sched.lock);
    m->idle_next = goc__sched.midle;
    goc__sched.midle = m;
    goc__lock_release(&goc__sched.lock);
    m_sleep(m);
    acquire_p(m, m->nextp);
    m->nextp = NULL;
}

int goc__m_new(struct goc__p *p, bool spinning);

/* Run p on an idle M (or a new one). */
static void start_m(struct goc__p *p, bool spinning)
{
    goc__lock_acquire(&goc__sched.lock);
    struct goc__m *m = goc__sched.midle;
    if (m) {
        goc__sched.midle = m->idle_next;
        goc__lock_release(&goc__sched.lock);
        m->nextp = p;
        m->spinning = spinning;
        wake_m(m);
        return;
    }
    goc__lock_release(&goc__sched.lock);
    /*
     * A new thread even if the poller could take p: the poller is better
     * left in epoll, where it sees I/O at once, than made to run
     * goroutines while nobody watches descriptors (Go does the same).
     */
    if (goc__m_new(p, spinning) != 0) {
        /* No thread: the poller takes an idle P under this lock when it
         * wakes; without one, the work waits for the running Ms. There
         * may be none (the first spawn, every M pinned or in a section):
         * sysmon then tries again, or the work waited for ever. */
        goc__lock_acquire(&goc__sched.lock);
        pidle_put(p);
        goc__lock_release(&goc__sched.lock);
        if (spinning)
            atomic_fetch_sub(&goc__sched.nmspinning, 1);
        atomic_store(&goc__sched.m_start_failed, true);
        goc__poll_wake();
    }
}

void goc__wakep(void)
{
    if (atomic_load(&goc__sched.npidle) == 0)
        return;
    int zero = 0;
    /* One spinning M at a time is woken; it wakes the next if it finds
     * work (reset_spinning), so bursts fan out without a thundering herd. */
    if (atomic_load(&goc__sched.nmspinning) != 0 ||
        !atomic_compare_exchange_strong(&goc__sched.nmspinning, &zero, 1))
        return;
    goc__lock_acquire(&goc__sched.lock);
    struct goc__p *p = pidle_get();
    goc__lock_release(&goc__sched.lock);
    if (!p) {
        atomic_fetch_sub(&goc__sched.nmspinning, 1);
        return;
    }
    start_m(p, true);
}

static void reset_spinning(struct goc__m *m)
{
    m->spinning = false;
    if (atomic_fetch_sub(&goc__sched.nmspinning, 1) == 1)
        goc__wakep();
}

/*
 * Give p to someone who can use it, or make it idle. The checks and the
 * idling happen under sched.lock, like find_runnable's, so a goroutine
 * put on the global queue meanwhile is either seen here or finds the P
 * idle (and wakes an M for it). A P with timers, or while I/O waiters
 * have no poller, is never left without an M: whoever takes it becomes
 * the poller if it finds nothing else.
 */
static void handoff_p(struct goc__p *p)
{
    goc__lock_acquire(&goc__sched.lock);
    bool work = !goc__runq_empty(p) || atomic_load(&goc__sched.gq_len) > 0 ||
                atomic_load(&p->wheel.next_when) != INT64_MAX ||
                (goc__pollwait_count() > 0 && !atomic_load(&goc__sched.poller));
    if (!work)
        pidle_put(p);
    goc__lock_release(&goc__sched.lock);
    if (work)
        start_m(p, false);
}

/* ---- run queues ------------------------------------------------------- */

static void global_put(struct goc__g *g)
{
    g->next = NULL;
    goc__lock_acquire(&goc__sched.lock);
    if (goc__sched.gq_tail)
        goc__sched.gq_tail->next = g;
    else
        goc__sched.gq_head = g;
    goc__sched.gq_tail = g;
    atomic_fetch_add(&goc__sched.gq_len, 1);
    goc__lock_release(&goc__sched.lock);
}

/*
 * Under sched.lock: take a fair share of the global queue, one to return
 * and the rest into p's ring (never more than fits, so no overflow).
 */
static struct goc__g *global_get_locked(struct goc__p *p, int max)
{
    int64_t len = atomic_load(&goc__sched.gq_len);
    if (len == 0)
        return NULL;
    int64_t n = len / goc__sched.nprocs + 1;
    if (n > len)
        n = len;
    if (max > 0 && n > max)
        n = max;
    int64_t room = GOC__RUNQ_SIZE - (int64_t)goc__runq_len(p);
    if (n > room / 2 + 1)
        n = room / 2 + 1;
    struct goc__g *first = goc__sched.gq_head;
    struct goc__g *g = first;
    for (int64_t i = 0; i < n; i++) {
        struct goc__g *next = g->next;
        if (i > 0)
            goc__runq_put(p, g, false);
        g = next;
    }
    goc__sched.gq_head = g;
    if (!g)
        goc__sched.gq_tail = NULL;
    atomic_fetch_sub(&goc__sched.gq_len, n);
    return first;
}

static struct goc__g *global_get(struct goc__p *p, int max)
{
    goc__lock_acquire(&goc__sched.lock);
    struct goc__g *g = global_get_locked(p, max);
    goc__lock_release(&goc__sched.lock);
    return g;
}

void goc__ready(struct goc__g *g, bool next)
{
    atomic_store_explicit(&g->status, GOC__G_RUNNABLE, memory_order_relaxed);
    /* Its saved registers are the first thing the switch will read: load
     * them now for a hand-off, which runs next. The ring's goroutines are
     * loaded when they near its head (prefetch_following), and reading
     * sp here would wait for a G line that is often cold (a poller's
     * batch, a broadcast wake-up). */
    if (next)
        __builtin_prefetch(g->sp);
    struct goc__m *m = goc__m_current();
    struct goc__p *p = m ? goc__m_owned_p(m) : NULL;
    if (p) {
        goc__runq_put(p, g, next);
    } else if (m && m->batching) {
        /* The poller, without a P: injected all at once afterwards. */
        g->next = NULL;
        if (m->batch_tail)
            m->batch_tail->next = g;
        else
            m->batch_head = g;
        m->batch_tail = g;
        m->batch_n++;
        return;
    } else {
        global_put(g);
    }
    goc__wakep();
}

/* Owner only; others read it (work_appeared) as a hint. */
static inline void handoff_set(struct goc__p *p, bool on)
{
    atomic_store_explicit(&p->handoff_wake, on, memory_order_relaxed);
}

/* True while sysmon has asked p for plain hand-offs (owner only). */
static inline bool plain_handoff(struct goc__p *p)
{
    uint32_t left =
        atomic_load_explicit(&p->handoff_plain, memory_order_relaxed);
    if (left == 0)
        return false;
    atomic_store_explicit(&p->handoff_plain, left - 1, memory_order_relaxed);
    return true;
}

void goc__ready_handoff(struct goc__g *g)
{
    struct goc__m *m = goc__m_current();
    struct goc__p *p = m ? goc__m_owned_p(m) : NULL;
    /*
     * Waking an idle M costs the waker a futex syscall (1-5 us here), and
     * the woken M, spinning over this P's queues, slows the hand-offs it
     * has come to share. For a partner the running goroutine parks for a
     * moment later, both are wasted: defer the wakeup. A pipeline's
     * stages ready each other in turn, so one earlier partner may still
     * be in runnext: it moves to the ring. A second one waiting there
     * means the P has more than a hand-off to do: wake an M.
     */
    if (!p || goc__runq_len(p) != 0 || plain_handoff(p)) {
        if (p)
            handoff_set(p, false); /* goc__ready wakes one anyway */
        goc__ready(g, true);
        return;
    }
    atomic_store_explicit(&g->status, GOC__G_RUNNABLE, memory_order_relaxed);
    __builtin_prefetch(g->sp);
    if (atomic_load_explicit(&p->runnext, memory_order_relaxed))
        goc__runq_put(p, g, true);
    else
        /* A store, not goc__runq_put's exchange: runnext is empty, only
         * its owner (us) fills it and thieves only empty it. Release
         * publishes g to a thief's acquire CAS. */
        atomic_store_explicit(&p->runnext, g, memory_order_release);
    handoff_set(p, true);
    /* If the sender computes on instead of parking, sysmon hands the
     * partner to another thread (goc__sysmon_handoffs): make sure it is
     * awake to see it. Free unless sysmon sleeps long. */
    goc__sysmon_kick_handoff();
}

void goc__handoff_flush(void)
{
    struct goc__m *m = goc__m_current();
    if (m && m->p &&
        atomic_load_explicit(&m->p->handoff_wake, memory_order_relaxed)) {
        handoff_set(m->p, false);
        goc__wakep();
    }
}

int goc__inject_batch_locked(struct goc__m *m)
{
    int n = m->batch_n;
    if (!n)
        return 0;
    if (goc__sched.gq_tail)
        goc__sched.gq_tail->next = m->batch_head;
    else
        goc__sched.gq_head = m->batch_head;
    goc__sched.gq_tail = m->batch_tail;
    atomic_fetch_add(&goc__sched.gq_len, n);
    m->batch_head = m->batch_tail = NULL;
    m->batch_n = 0;
    return n;
}

/* ---- timers and the poller -------------------------------------------- */

int64_t goc__timers_earliest(void)
{
    int64_t min = INT64_MAX;
    for (int i = 0; i < goc__sched.nprocs; i++) {
        int64_t w = atomic_load(&goc__sched.allp[i].wheel.next_when);
        if (w < min)
            min = w;
    }
    return min;
}

void goc__poll_kick(int64_t when)
{
    /*
     * Pairs with become_poller(): it publishes poll_until = INT64_MAX
     * before poller, then re-reads the wheels. Either it sees our timer or
     * we see it and wake it.
     */
    if (atomic_load(&goc__sched.poller)) {
        if (when < atomic_load(&goc__sched.poll_until))
            goc__poll_wake();
    } else {
        goc__wakep();
    }
}

static void run_due_timers(struct goc__p *p, int64_t *now)
{
    int64_t next =
        atomic_load_explicit(&p->wheel.next_when, memory_order_relaxed);
    if (next == INT64_MAX)
        return;
    if (*now == 0)
        *now = goc__nanotime();
    if (next > *now)
        return;
    /* Readied goroutines go to our ring: fire no more than it holds, so a
     * burst of timers never spills into the global queue. */
    struct goc__m *m = goc__m_current();
    int room = GOC__RUNQ_SIZE - (int)goc__runq_len(m->p);
    if (room > 0)
        goc__wheel_run(&p->wheel, *now, room);
}

/*
 * Out of work and P: sleep. The first such M while timers exist becomes
 * the poller and sleeps in epoll until the earliest one; it then takes an
 * idle P if there is one. Returns with a P.
 */
static void m_idle(struct goc__m *m)
{
    goc__lock_acquire(&goc__sched.lock);
    if ((goc__timers_earliest() != INT64_MAX || goc__pollwait_count() > 0) &&
        !atomic_load(&goc__sched.poller)) {
        atomic_store(&goc__sched.poll_until, INT64_MAX);
        atomic_store(&goc__sched.poller, m);
        goc__lock_release(&goc__sched.lock);
        int64_t until = goc__timers_earliest();
        atomic_store(&goc__sched.poll_until, until);
        m->batching = true;
        goc__poll_wait(until);
        m->batching = false;
        goc__lock_acquire(&goc__sched.lock);
        atomic_store(&goc__sched.poller, NULL);
        int readied = goc__inject_batch_locked(m);
        struct goc__p *p = pidle_get();
        if (p) {
            goc__lock_release(&goc__sched.lock);
            acquire_p(m, p);
            if (readied > 1)
                goc__wakep();
            return;
        }
    }
    m->idle_next = goc__sched.midle;
    goc__sched.midle = m;
    goc__lock_release(&goc__sched.lock);
    m_sleep(m);
    acquire_p(m, m->nextp);
    m->nextp = NULL;
}

/* ---- finding work ----------------------------------------------------- */

static struct goc__g *steal_work(struct goc__m *m)
{
    struct goc__p *p = m->p;
    int n = goc__sched.nprocs;
    int64_t now = 0;
    for (int round = 0; round < STEAL_ROUNDS; round++) {
        bool last = round == STEAL_ROUNDS - 1;
        int start = (int)(goc__fastrand(m) % (uint32_t)n);
        for (int i = 0; i < n; i++) {
            struct goc__p *victim = &goc__sched.allp[(start + i) % n];
            if (victim == p)
                continue;
            if (round == 0) {
                /* Idle Ps' timers are everyone's job. */
                run_due_timers(victim, &now);
                struct goc__g *g = goc__runq_get(p);
                if (g)
                    return g;
            }
            struct goc__g *g = goc__runq_steal(p, victim, last);
            if (g)
                return g;
        }
    }
    return NULL;
}

/*
 * After dropping the spinning state, look once more (Go's race fix). A
 * deferred hand-off in a running P's runnext is left to its owner, which
 * runs it as soon as its goroutine parks: counting it kept a spinner
 * polling a P busy with channel hand-offs forever, slowing every hand-off
 * it watched.
 */
static bool work_appeared(void)
{
    if (atomic_load(&goc__sched.gq_len) > 0)
        return true;
    for (int i = 0; i < goc__sched.nprocs; i++) {
        struct goc__p *p = &goc__sched.allp[i];
        if (goc__runq_len(p) != 0)
            return true;
        if (atomic_load_explicit(&p->runnext, memory_order_relaxed) &&
            !(atomic_load_explicit(&p->running, memory_order_relaxed) &&
              atomic_load_explicit(&p->handoff_wake, memory_order_relaxed)))
            return true;
    }
    return false;
}

static bool can_spin(struct goc__m *m)
{
    int busy = goc__sched.nprocs - atomic_load(&goc__sched.npidle);
    return m->spinning || 2 * atomic_load(&goc__sched.nmspinning) < busy;
}

/*
 * An M that may not spin still runs the other Ps' due timers. The poller
 * slept until the earliest of them, and the spinner it would leave them
 * to may be a thread just woken that has no CPU yet: the poller then
 * woke, found it could not spin, slept until the same past deadline and
 * woke again, round and round (seconds on a busy machine or valgrind,
 * with a sleeping goroutine's timer overdue all along).
 */
static struct goc__g *run_others_timers(struct goc__m *m)
{
    int64_t now = 0;
    for (int i = 0; i < goc__sched.nprocs; i++) {
        struct goc__p *victim = &goc__sched.allp[i];
        if (victim != m->p)
            run_due_timers(victim, &now);
    }
    return goc__runq_get(m->p);
}

/* Local, global, timers, stealing; then release the P and sleep. */
static struct goc__g *find_runnable(struct goc__m *m)
{
    for (;;) {
        struct goc__p *p = m->p;
        int64_t now = 0;
        run_due_timers(p, &now);
        struct goc__g *g = NULL;
        /* A pass through here counts as a switch. Resetting the count on
         * every pass instead would starve the global queue behind a
         * goroutine that yields in a loop: its yield requeues it locally
         * after the switch here, so the local queue is never empty. */
        bool fair_turn = p->tick_left <= 1;
        p->tick_left = fair_turn ? GLOBAL_CHECK_TICKS : p->tick_left - 1;
        if (fair_turn && atomic_load(&goc__sched.gq_len) > 0)
            g = global_get(p, 1);
        if (!g)
            g = goc__runq_get(p);
        if (!g && atomic_load(&goc__sched.gq_len) > 0)
            g = global_get(p, 0);
        /* I/O that completed while every M was busy. */
        if (!g && goc__netpoll_nowait() > 0)
            g = goc__runq_get(p);
        if (g)
            return g;
        if (can_spin(m)) {
            if (!m->spinning) {
                m->spinning = true;
                atomic_fetch_add(&goc__sched.nmspinning, 1);
            }
            if ((g = steal_work(m)) != NULL)
                return g;
        } else if ((g = run_others_timers(m)) != NULL) {
            return g;
        }
        goc__lock_acquire(&goc__sched.lock);
        g = global_get_locked(p, 0);
        if (g) {
            goc__lock_release(&goc__sched.lock);
            return g;
        }
        pidle_put(release_p(m));
        goc__lock_release(&goc__sched.lock);
        if (m->spinning) {
            m->spinning = false;
            atomic_fetch_sub(&goc__sched.nmspinning, 1);
            if (work_appeared()) {
                goc__lock_acquire(&goc__sched.lock);
                struct goc__p *q = pidle_get();
                goc__lock_release(&goc__sched.lock);
                if (q) {
                    acquire_p(m, q);
                    m->spinning = true;
                    atomic_fetch_add(&goc__sched.nmspinning, 1);
                    continue;
                }
            }
        }
        m_idle(m);
    }
}

/* ---- pinned goroutines ------------------------------------------------- */

/* g is pinned to another M: hand it our P and g, then wait for a P. */
static void start_locked_m(struct goc__m *m, struct goc__g *g)
{
    struct goc__m *lm = g->locked_m;
    lm->nextp = release_p(m);
    lm->next_g = g;
    wake_m(lm);
    stop_m(m);
}

/* Our pinned goroutine blocked: give the P away and wait for it. */
static void stop_locked_m(struct goc__m *m)
{
    handoff_p(release_p(m));
    m_sleep(m);
    acquire_p(m, m->nextp);
    m->nextp = NULL;
}

/* ---- the loops -------------------------------------------------------- */

void goc__m_schedule(struct goc__m *m)
{
    for (;;) {
        if (!m->p)
            stop_m(m); /* left a blocking section with no P to be had */
        struct goc__g *g = m->next_g;
        m->next_g = NULL;
        if (!g)
            g = find_runnable(m);
        if (m->spinning)
            reset_spinning(m);
        if (g->locked_m && g->locked_m != m) {
            start_locked_m(m, g);
            continue;
        }
        GOC__STAT_INC(m->p->nrun, 1);
        switch_begin(m, &m->g0, g, false);
        /* Back on g0. A pinned goroutine that blocked keeps this M. */
        if (m->locked_g)
            stop_locked_m(m);
    }
}

/*
 * A burst of runnable goroutines (a broadcast close, a context tree's
 * cancel, a poller's batch of ready sockets) runs one cold stack after
 * another. So, as each one takes over, load ahead for the two after it,
 * in two stages:
 *  - the one after next: its saved registers and the frames above them
 *    up to its G, which sits on top of its stack (a goroutine parked in a
 *    channel receive has about 470 bytes there; a new one, a line or
 *    two), and the lines its parking primitive named (resume_hint: a
 *    socket's descriptor and its poll state, say);
 *  - the one after that: only its G's first line, where those addresses
 *    are, so that the next round reads them without waiting.
 *
 * Only hints: a thief may take those goroutines meanwhile, run them and
 * even recycle their Gs, so the fields are read without ordering (and
 * unseen by TSan: an atomic load would be instrumented even here, and
 * reported against the plain stores of the goroutine or its recycling).
 * The reads cannot fault, because stack slabs, and the Gs on them, are
 * never unmapped; a stale value only wastes the prefetches, which never
 * fault either.
 */
__attribute__((no_sanitize("thread"))) static inline void prefetch_following(
    struct goc__p *p)
{
    uint32_t h = atomic_load_explicit(&p->head, memory_order_relaxed);
    uint32_t t = atomic_load_explicit(&p->tail, memory_order_relaxed);
    if (h == t)
        return;
    if (h + 1 != t)
        __builtin_prefetch(goc__runq_slot_load(p, h + 1));
    struct goc__g *g = goc__runq_slot_load(p, h);
    char *sp = *(char *volatile *)&g->sp; /* plain loads, as is */
    if (!sp)
        return; /* a yield's, still switching out */
    const void *hint0 = *(const void *volatile *)&g->resume_hint[0];
    const void *hint1 = *(const void *volatile *)&g->resume_hint[1];
    char *end = (char *)g + 64;
    if (end - sp > 8 * 64)
        end = sp + 8 * 64; /* a deep stack: its top frames can wait */
    for (; sp < end; sp += 64)
        __builtin_prefetch(sp, 1);
    if (hint0)
        __builtin_prefetch(hint0, 1);
    if (hint1)
        __builtin_prefetch(hint1);
}

/*
 * The goroutine to switch to straight from a goroutine of p, or NULL for
 * a pass through g0 (pinned goroutines, and every 61st switch).
 */
static inline struct goc__g *pick_next(struct goc__m *m, struct goc__p *p)
{
    struct goc__g *next = NULL;
    if (!m->locked_g && p->tick_left > 1) {
        p->tick_left--;
        /* Every 16th switch the ring goes first: two goroutines handing
         * off to each other through runnext would starve it otherwise
         * (Go bounds this with the time slice runnext inherits). */
        if ((p->tick_left & 15) == 0)
            next = goc__runq_get_ring(p);
        if (!next)
            next = goc__runq_get(p);
    }
    return next;
}

/* Leave g for the next goroutine of this P, or for g0. */
static void schedule_next(struct goc__m *m, struct goc__g *g, bool dead)
{
    struct goc__p *p = m->p;
    /* Parking: a deferred hand-off runs next, here. */
    handoff_set(p, false);
    struct goc__g *next = pick_next(m, p);
    if (next && !next->locked_m) {
        GOC__STAT_INC(p->nrun, 1);
        prefetch_following(p);
        switch_begin(m, g, next, dead);
        return;
    }
    m->next_g = next;
    switch_begin(m, g, &m->g0, dead);
}

void goc__park_m(struct goc__m *m, goc__commit_fn commit, void *arg)
{
    m->commit = commit;
    m->commit_arg = arg;
    schedule_next(m, m->curg, false);
}

void goc__park(goc__commit_fn commit, void *arg)
{
    struct goc__m *m = goc__m_current();
    GOC__STAT_INC(m->p->npark, 1);
    goc__park_m(m, commit, arg);
}

void goc__park_exit(goc__commit_fn commit, void *arg)
{
    struct goc__m *m = goc__m_current();
    m->commit = commit;
    m->commit_arg = arg;
    schedule_next(m, m->curg, true);
    abort(); /* a dead goroutine is never resumed */
}

/*
 * Where a yield can requeue the goroutine before it has switched out:
 * the assembly switches store the saved stack pointer last, with release,
 * once off the stack (switch_after_wait). The ucontext one saves the
 * context after that store; ASan is left out since its fiber hand-over
 * writes the G (from->asan_fake) in switch_to, after the requeue.
 */
#if (defined(__x86_64__) || defined(__aarch64__)) && \
    !defined(GOC_PORTABLE_SWITCH) && !defined(GOC_ASAN)
#define YIELD_EARLY_REQUEUE 1
#else
#define YIELD_EARLY_REQUEUE 0
#endif

/*
 * Queue g, still running, at the tail of p's ring. Everything a thief
 * may read of it is written first, and its stack pointer is cleared until
 * the switch saves it. False if the ring is full: g stays unqueued, and
 * the park that follows rewrites all of it.
 */
static inline bool early_requeue(struct goc__m *m,
                                 struct goc__p *p,
                                 struct goc__g *g)
{
    g->saved_errno = *m->errno_p;
    atomic_store_explicit(&g->status, GOC__G_RUNNABLE, memory_order_relaxed);
    __atomic_store_n(&g->sp, NULL, __ATOMIC_RELAXED);
    return goc__runq_try_put(p, g);
}

static void yield_commit(struct goc__m *m, void *arg)
{
    struct goc__g *g = arg;
    atomic_store_explicit(&g->status, GOC__G_RUNNABLE, memory_order_relaxed);
    goc__runq_put(m->p, g, false);
}

/*
 * valgrind runs one thread at a time, and a goroutine yielding in a loop
 * with nothing else to run waits for another thread, as a rule: without
 * this, each turn of such a loop would last a whole time slice of
 * valgrind's (two goroutines on two Ps handing a flag back and forth
 * took minutes).
 */
static inline void valgrind_yield_thread(void)
{
#if defined(GOC_VALGRIND)
    if (RUNNING_ON_VALGRIND)
        sched_yield();
#endif
}

/*
 * The usual yield skips the park's commit: the goroutine goes to the tail
 * of the ring first, with everything a thief may read of it already
 * written and its stack pointer cleared until the switch saves it, and
 * the switch goes straight to the next one. Anything rarer (a pinned
 * goroutine on either side, a due look at the global queue, the switch's
 * checks) parks with a commit.
 */
void goc_yield(void)
{
    struct goc__m *m = goc__m_current();
    /* A plain thread, or a blocking section (whose P sysmon may have
     * given away): yield the thread. */
    if (!m || m->curg == &m->g0 || !goc__m_owned_p(m)) {
        sched_yield();
        return;
    }
    struct goc__p *p = m->p;
    struct goc__g *g = m->curg;
    struct goc__g *next = NULL;
    /* Nobody else to run here: carry on. The count of switches goes
     * down all the same, so a goroutine yielding in a loop still passes
     * through the scheduler, which fires due timers. */
    if (__builtin_expect(!m->locked_g && p->tick_left > 1, 1)) {
        next = pick_next(m, p);
        if (!next && atomic_load_explicit(&goc__sched.gq_len,
                                          memory_order_relaxed) == 0) {
            valgrind_yield_thread();
            return;
        }
    } else if (m->locked_g && p->tick_left > 1 && goc__runq_empty(p) &&
               atomic_load_explicit(&goc__sched.gq_len, memory_order_relaxed) ==
                   0) {
        /* A pinned one too: through g0, it would hand its P over. */
        p->tick_left--;
        valgrind_yield_thread();
        return;
    }
    handoff_set(p, false); /* whatever it deferred runs before us */
    if (YIELD_EARLY_REQUEUE && next && !next->locked_m &&
        g->guard != GOC__GUARD_CANARY &&
        !atomic_load_explicit(&p->hog_since, memory_order_relaxed) &&
        early_requeue(m, p, g)) {
        GOC__STAT_INC(p->nrun, 1);
        switch_to(m, g, next, false);
        return;
    }
    atomic_store_explicit(&g->status, GOC__G_WAITING, memory_order_relaxed);
    m->commit = yield_commit;
    m->commit_arg = g;
    if (next && !next->locked_m) {
        GOC__STAT_INC(p->nrun, 1);
        switch_begin(m, g, next, false);
        return;
    }
    m->next_g = next;
    switch_begin(m, g, &m->g0, false);
}

/* ---- blocking sections and the watchdog -------------------------------- */

int goc_blocking_enter(void)
{
    struct goc__m *m = goc__m_current();
    if (!m || m->curg == &m->g0)
        return 0;
    uint32_t running = GOC__M_RUNNING;
    struct goc__p *own = m->locked_g ? NULL : m->p;
    if (!atomic_compare_exchange_strong(
            &m->bstate, &running, goc__section_state(own, GOC__M_BLOCKING)))
        return -EINVAL; /* one is open: its start time stays */
    /* A pinned goroutine keeps its P, since it may not move to another M:
     * its section is only marked, for the exit to match and for sysmon
     * not to take it for an unmarked system call. */
    if (m->locked_g) {
        atomic_store_explicit(&m->p->pinned_section, true,
                              memory_order_relaxed);
        atomic_fetch_add(&goc__sched.nsections, 1);
        return 0;
    }
    /* Before blocking_m, which sysmon reads first. */
    atomic_store(&m->p->blocking_since, goc__nanotime());
    atomic_fetch_add(&goc__sched.nsections, 1);
    atomic_store(&m->p->blocking_m, m);
    goc__sysmon_kick();
    return 0;
}

static void requeue_commit(struct goc__m *m, void *arg)
{
    (void)m;
    global_put(arg);
    goc__wakep();
}

/* Our P went to another M: take an idle one, or wait for one. */
static void reacquire_p(struct goc__m *m)
{
    m->p = NULL;
    goc__lock_acquire(&goc__sched.lock);
    struct goc__p *p = pidle_get();
    goc__lock_release(&goc__sched.lock);
    if (p) {
        acquire_p(m, p);
        return;
    }
    struct goc__g *g = m->curg;
    atomic_store_explicit(&g->status, GOC__G_RUNNABLE, memory_order_relaxed);
    m->commit = requeue_commit;
    m->commit_arg = g;
    switch_begin(m, g, &m->g0, false); /* resumed by whichever M has a P */
}

int goc_blocking_exit(void)
{
    struct goc__m *m = goc__m_current();
    if (!m || m->curg == &m->g0)
        return 0;
    struct goc__p *p = m->p;
    if (m->locked_g) { /* unpinning is refused inside: pinned at enter */
        uint32_t blocking = goc__section_state(NULL, GOC__M_BLOCKING);
        if (!atomic_compare_exchange_strong(&m->bstate, &blocking,
                                            GOC__M_RUNNING))
            return -EINVAL;
        atomic_store_explicit(&p->pinned_section, false, memory_order_relaxed);
        atomic_fetch_sub(&goc__sched.nsections, 1);
        return 0;
    }
    /* The P is the section's own: an M in a section keeps its P until it
     * leaves, unless sysmon retakes it (then the state says RETAKEN). */
    uint32_t blocking = goc__section_state(p, GOC__M_BLOCKING);
    if (atomic_compare_exchange_strong(&m->bstate, &blocking, GOC__M_RUNNING)) {
        struct goc__m *self = m;
        atomic_compare_exchange_strong(&p->blocking_m, &self, NULL);
        atomic_fetch_sub(&goc__sched.nsections, 1);
        return 0;
    }
    if ((blocking & GOC__M_STATE) != GOC__M_RETAKEN)
        return -EINVAL; /* no section was open */
    atomic_store(&m->bstate, GOC__M_RUNNING);
    reacquire_p(m);
    atomic_fetch_sub(&goc__sched.nsections, 1);
    return 0;
}

bool goc__sysmon_retake(struct goc__p *p)
{
    struct goc__m *m = atomic_load(&p->blocking_m);
    /* Only if m's section is still on p: m may have left it, taken
     * another P and opened a section there since we read blocking_m. */
    uint32_t blocking = goc__section_state(p, GOC__M_BLOCKING);
    if (!m || !atomic_compare_exchange_strong(
                  &m->bstate, &blocking, goc__section_state(p, GOC__M_RETAKEN)))
        return false;
    /* The M is inside its section and touches the P no more: it finds
     * out at goc_blocking_exit. */
    atomic_store(&p->blocking_m, NULL);
    atomic_store_explicit(&p->running, false, memory_order_relaxed);
    p->m = NULL;
    handoff_p(p);
    return true;
}
