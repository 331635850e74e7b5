/* SPDX-License-Identifier: MIT */
/*
 * sysmon: the runtime's watchdog thread. It runs without a P. It wakes
 * every 20 us while a goroutine is inside a blocking section, backing off
 * to 10 ms when nothing needs watching. Its duties:
 *
 *  - a P whose goroutine has been in a goc_blocking_enter() section for
 *    20 us is handed, with its queue and timers, to another M;
 *  - a P whose goroutine has run 10 ms without coming back to the
 *    scheduler has its queued goroutines moved to the global queue, where
 *    the other Ps find them; if any were waiting, the hog is reported
 *    once, by its own M when it finally switches out, as computing or
 *    as asleep in the kernel, and not at all if the kernel kept its
 *    thread off the CPU;
 *  - timers overdue by 1 ms on a P that has not switched for as long
 *    fire here, their goroutines going to the global queue;
 *  - when goroutines wait for I/O and nobody has looked at epoll for
 *    10 ms (every M busy running goroutines), it polls and queues the
 *    goroutines whose I/O is ready on the global queue;
 *  - after-funcs of contexts whose goroutine could not be made (out of
 *    memory) are started once one can be, and so are threads for idle
 *    Ps that found work when none could be made;
 *  - stacks idle for 2 s in the global pool give their pages back, at
 *    most 1 ms of that work a round, so the duties above wait no longer;
 *  - when every goroutine has been parked for a few ticks with nothing
 *    left that could wake one, it reports the deadlock (dump.c).
 */
#include "runtime.h"
#include "../internal/futex.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RETAKE_NS        (20 * 1000)
#define HOG_NS           (10 * 1000 * 1000)
#define MIN_DELAY_NS     (20 * 1000)
#define MAX_DELAY_NS     (10 * 1000 * 1000)
/* Longest sleep while a hand-off is pending: the bound on how long a
 * partner waits for a sender that computes on instead of parking. */
#define HANDOFF_DELAY_NS (100 * 1000)
/* Hand-offs a P then makes the plain way before deferring again. */
#define HANDOFF_PLAIN    256
#define POLL_STALE_NS    (10 * 1000 * 1000)
#define OVERDUE_NS       (1000 * 1000)
#define TRIM_EVERY_NS    ((int64_t)1000 * 1000 * 1000)
#define STACK_IDLE_NS    ((int64_t)2 * 1000 * 1000 * 1000)
#define TRIM_SLICE_NS    ((int64_t)1000 * 1000)

static _Atomic uint32_t kick_word;
static _Atomic int deep_sleep;     /* sysmon sleeps long: kick it */
static _Atomic int beyond_handoff; /* it sleeps past HANDOFF_DELAY_NS */

/*
 * Wake sysmon unless it was kicked already. The plain load first: every
 * deferred hand-off asks, and an exchange, even of a cached line, costs
 * as much as the rest of a hand-off's bookkeeping. Without the exchange's
 * barrier, a kick that finds sysmon just woken by another (the word still
 * 1) may go unseen by that round; the next round, at most MAX_DELAY_NS
 * later, sees it. The relaxed reads of deep_sleep and beyond_handoff
 * below had that window already.
 */
static void kick(void)
{
    if (atomic_load_explicit(&kick_word, memory_order_relaxed) == 0 &&
        atomic_exchange(&kick_word, 1) == 0)
        goc__futex_wake(&kick_word, 1);
}

void goc__sysmon_kick(void)
{
    if (atomic_load_explicit(&deep_sleep, memory_order_relaxed))
        kick();
}

void goc__sysmon_kick_handoff(void)
{
    if (atomic_load_explicit(&beyond_handoff, memory_order_relaxed))
        kick();
}

/*
 * Runs on the hog's own M as the hog switches out, so the goroutine read
 * here is the one that ran, and the time reported is the whole stretch.
 * Only written here: the switch logs it once its commit has run.
 */
bool goc__hog_report(struct goc__m *m, struct goc__g *g, bool counted)
{
    struct goc__p *p = m->p;
    int64_t since = atomic_exchange(&p->hog_since, 0);
    /* sysmon judges a while before it arms the report: the hog may have
     * switched out meanwhile, unseen, and a later goroutine's switch must
     * not take the report as its own. g is the hog if the P's switch count
     * stood where sysmon saw it when g was switched to, that is, before
     * this switch counted itself (@counted: a switch to a goroutine, not
     * to g0). */
    uint64_t before = atomic_load_explicit(&p->nrun, memory_order_relaxed) -
                      (counted ? 1 : 0);
    if (!since || g->id == 0 || before != atomic_load(&p->hog_nrun))
        return false; /* already reported, too late, or g0 */
    /* Named as in backtraces: dladdr() knows no static function. */
    char entry[128];
    goc__symbolize_entry((const void *)(uintptr_t)g->fn, entry, sizeof(entry));
    long long ms = (goc__nanotime() - since) / 1000000;
    int waiting = atomic_load(&p->hog_waiting);
    if (atomic_load(&p->hog_kind) == GOC__HOG_IN_KERNEL)
        snprintf(m->hog_msg, sizeof(m->hog_msg),
                 "goroutine %lld \"%s\" (entry %s) kept P%d for %lld ms "
                 "asleep in the kernel: mark blocking calls with "
                 "goc_blocking_enter/exit; %d goroutines queued behind it "
                 "were moved to the global queue",
                 (long long)g->id, g->name, entry, p->id, ms, waiting);
    else
        snprintf(m->hog_msg, sizeof(m->hog_msg),
                 "goroutine %lld \"%s\" (entry %s) kept P%d for %lld ms "
                 "without blocking or yielding; %d goroutines queued behind "
                 "it were moved to the global queue",
                 (long long)g->id, g->name, entry, p->id, ms, waiting);
    return true;
}

/* CPU time used by the thread holding p, or -1 if it cannot be read. */
static int64_t holder_cpu_ns(struct goc__p *p)
{
    clockid_t clock =
        atomic_load_explicit(&p->holder_clock, memory_order_relaxed);
    struct timespec ts;
    if (clock == (clockid_t)-1 || clock_gettime(clock, &ts) != 0)
        return -1;
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The scheduler state of the thread holding p ('R' runs or waits for a
 * CPU, 'S' or 'D' sleeps in the kernel), or 0 if it cannot be read. */
static char holder_state(struct goc__p *p)
{
    char path[64], buf[256];
    int tid = atomic_load_explicit(&p->holder_tid, memory_order_relaxed);
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    /* "tid (name) S ...": the name may hold spaces and parentheses. */
    char *end = strrchr(buf, ')');
    return end && end[1] == ' ' ? end[2] : 0;
}

enum { HOLDER_COMPUTED, HOLDER_SLEPT, HOLDER_PREEMPTED };

/*
 * What the holder's thread did since p->mon_cpu was read: ran for at
 * least a quarter of the time (a fair share on a busy machine); or else,
 * as its state now tells, sleeps in the kernel, or waits for a CPU (other
 * load on the machine, a cgroup's CPU quota). Anything unreadable counts
 * as running, the plain hog.
 */
static int holder_did(struct goc__p *p)
{
    /* CPU time first, then the clock, and the other way round for the
     * baseline: sysmon itself kept off the CPU between the two reads can
     * only make the thread look idler, never busier than it was. */
    int64_t cpu = holder_cpu_ns(p);
    int64_t span = goc__nanotime() - p->mon_cpu_at;
    if (cpu < 0 || 4 * (cpu - p->mon_cpu) >= span)
        return HOLDER_COMPUTED;
    switch (holder_state(p)) {
    case 0:
        return HOLDER_COMPUTED;
    case 'S':
    case 'D':
        return HOLDER_SLEPT;
    default:
        return HOLDER_PREEMPTED;
    }
}

/* The start of a span holder_did() judges (at: -1 if unreadable). */
static void take_baseline(struct goc__p *p)
{
    int64_t at = goc__nanotime();
    p->mon_cpu = holder_cpu_ns(p);
    p->mon_cpu_at = p->mon_cpu < 0 ? -1 : at;
}

/*
 * A P that has not switched goroutines for HOG_NS while held. The
 * holder's CPU time, read a quarter of the way in and again at the end,
 * and its state then tell a computing goroutine from one asleep in the
 * kernel outside a blocking section, and both from a thread the kernel
 * kept off the CPU: only the first two are the goroutine's doing, so only
 * they are reported. Either way the queue behind it moves to the global
 * queue; a thread kept off the CPU is judged again over a new span, and
 * a report counts every goroutine moved in the stretch.
 */
static void check_hog(struct goc__p *p, int64_t now)
{
    uint64_t n = atomic_load_explicit(&p->nrun, memory_order_relaxed);
    bool held = atomic_load_explicit(&p->running, memory_order_relaxed);
    if (!held || n != p->mon_nrun || atomic_load(&p->blocking_m)) {
        p->mon_nrun = n;
        p->mon_since = now;
        p->mon_reported = false;
        p->mon_cpu_at = 0;
        p->mon_moved = 0;
        return;
    }
    if (p->mon_reported)
        return;
    if (!p->mon_cpu_at && now - p->mon_since >= HOG_NS / 4)
        take_baseline(p);
    if (now - p->mon_since < HOG_NS)
        return;
    int did = HOLDER_COMPUTED;
    if (p->mon_cpu_at > 0) {
        if (now - p->mon_cpu_at < HOG_NS / 2)
            return; /* sysmon slept long: judge over a fair span */
        did = holder_did(p);
    }
    p->mon_moved += goc__sysmon_unload(p);
    if (did == HOLDER_PREEMPTED) {
        take_baseline(p); /* not its doing, so far: judge a new span */
        return;
    }
    p->mon_reported = true;
    if (p->mon_moved > 0 &&
        !atomic_load_explicit(&p->pinned_section, memory_order_relaxed)) {
        atomic_store(&p->hog_nrun, n);
        atomic_store(&p->hog_waiting, p->mon_moved);
        atomic_store(&p->hog_kind, did == HOLDER_SLEPT ? GOC__HOG_IN_KERNEL
                                                       : GOC__HOG_COMPUTING);
        atomic_store(&p->hog_since, p->mon_since);
    }
}

/*
 * A hand-off deferred on p (goc__ready_handoff) waits in runnext for its
 * sender to park. If the P has not switched goroutines since the last
 * tick, the sender computes on: take the partner from runnext, as a thief
 * would, and queue it for another thread, so a pipeline of busy stages
 * keeps its stages in parallel. Returns true while a hand-off is pending.
 */
static bool check_handoff(struct goc__p *p)
{
    uint64_t n = atomic_load_explicit(&p->nrun, memory_order_relaxed);
    if (!atomic_load_explicit(&p->running, memory_order_relaxed) ||
        !atomic_load_explicit(&p->handoff_wake, memory_order_relaxed)) {
        p->mon_handoff = false;
        return false;
    }
    if (!p->mon_handoff || n != p->mon_handoff_nrun) {
        p->mon_handoff = true;
        p->mon_handoff_nrun = n;
        return true;
    }
    p->mon_handoff = false;
    struct goc__g *g = atomic_load_explicit(&p->runnext, memory_order_acquire);
    bool wake = true;
    /* The owner's flag is cleared only if still set: a race with a new
     * hand-off leaves it set, and the next tick looks again. */
    atomic_compare_exchange_strong(&p->handoff_wake, &wake, false);
    if (g && atomic_compare_exchange_strong_explicit(&p->runnext, &g, NULL,
                                                     memory_order_acquire,
                                                     memory_order_relaxed)) {
        goc__ready(g, false); /* no M here: the global queue, and a wakep */
        /* Its goroutines compute between hand-offs (a pipeline of busy
         * stages): waking an M at once serves them better for a while. */
        atomic_store_explicit(&p->handoff_plain, HANDOFF_PLAIN,
                              memory_order_relaxed);
    }
    return true;
}

/*
 * Timers fire when their P passes through the scheduler, or when a thief
 * or the poller looks at them. A P whose goroutine has not switched for
 * OVERDUE_NS gives neither a chance: fire its overdue timers here. Their
 * goroutines go to the global queue for the other Ps; a plain thread
 * waiting on one (a sleep, a context's deadline) wakes at once.
 */
static void fire_overdue_timers(struct goc__p *p, int64_t now)
{
    int64_t next =
        atomic_load_explicit(&p->wheel.next_when, memory_order_relaxed);
    if (!atomic_load_explicit(&p->running, memory_order_relaxed) ||
        now - p->mon_since < OVERDUE_NS || next > now - OVERDUE_NS)
        return;
    goc__wheel_run(&p->wheel, now, GOC__RUNQ_SIZE);
}

/* One round over the Ps; true if a blocking section needs watching. */
static bool watch_ps(int64_t now, bool *handoff)
{
    bool active = false, handoffs = false;
    for (int i = 0; i < goc__sched.nprocs; i++) {
        struct goc__p *p = &goc__sched.allp[i];
        if (atomic_load(&p->blocking_m)) {
            active = true;
            if (now - atomic_load(&p->blocking_since) >= RETAKE_NS)
                goc__sysmon_retake(p);
        }
        check_hog(p, now);
        fire_overdue_timers(p, now);
        handoffs |= check_handoff(p);
    }
    *handoff = handoffs;
    return active;
}

/* I/O waiters nobody polls for (all Ms busy): poll for them. */
static void poll_if_stale(int64_t now)
{
    if (now - atomic_load(&goc__sched.last_poll) >= POLL_STALE_NS &&
        goc__pollwait_count() > 0)
        goc__netpoll_nowait();
}

static struct goc__thread sysmon_thread;

static void *sysmon_main(void *arg)
{
    (void)arg;
    goc__thread_started(&sysmon_thread);
    int64_t delay = MIN_DELAY_NS, last_trim = goc__nanotime();
    bool trim_left = false; /* the last round ran out of time */
    for (;;) {
        atomic_store(&deep_sleep, delay >= MAX_DELAY_NS / 10);
        atomic_store(&beyond_handoff, delay > HANDOFF_DELAY_NS);
        goc__futex_wait(&kick_word, 0, goc__nanotime() + delay);
        atomic_store(&kick_word, 0);
        int64_t now = goc__nanotime();
        atomic_store_explicit(&goc__sched.coarse_now, now,
                              memory_order_relaxed);
        bool handoff;
        bool active = watch_ps(now, &handoff);
        /* A thread could not be made for work that may have no other M
         * to run it: try again (failing, it sets the flag anew). */
        if (atomic_load_explicit(&goc__sched.m_start_failed,
                                 memory_order_relaxed) &&
            atomic_exchange(&goc__sched.m_start_failed, false))
            goc__wakep();
        poll_if_stale(now);
        if (atomic_load_explicit(&goc__ctx_after_deferred,
                                 memory_order_relaxed))
            goc__ctx_after_retry();
        goc__check_deadlock();
        if (trim_left || now - last_trim >= TRIM_EVERY_NS) {
            if (!trim_left)
                last_trim = now;
            trim_left = goc__stack_trim(now, STACK_IDLE_NS, TRIM_SLICE_NS);
        }
        delay = active ? MIN_DELAY_NS
                       : (delay * 2 > MAX_DELAY_NS ? MAX_DELAY_NS : delay * 2);
        /* Pending hand-offs: look again soon, but not every 20 us while
         * a ping-pong keeps one pending half the time. */
        if (handoff && delay > HANDOFF_DELAY_NS)
            delay = HANDOFF_DELAY_NS;
    }
    return NULL;
}

int goc__sysmon_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The watchdog never handles the application's signals. */
    goc__sigmask_service(&all, true);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    goc__thread_created(&sysmon_thread, GOC__TK_SYSMON);
    int err = pthread_create(&t, &attr, sysmon_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err)
        goc__thread_exited(&sysmon_thread);
    return -err;
}
