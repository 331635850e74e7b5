/* SPDX-License-Identifier: MIT */
/*
 * The CPU profiler.
 *
 * Every thread of the process gets a POSIX timer on its own CPU-time
 * clock that sends it SIGPROF (SIGEV_THREAD_ID) hz times per CPU-second,
 * so a busy thread is sampled as often as it runs, however many threads
 * run at once (one process-wide setitimer() under-samples then). The
 * timers are made from outside the threads, through the per-thread CPU
 * clock id of each thread listed in /proc/self/task, so no thread has to
 * cooperate; the writer thread lists them again every TICK_NS to cover
 * new threads (Ms, blocking-pool threads, the user's own).
 *
 * The handler walks frame pointers from the interrupted context (bounded
 * by the goroutine's own stack [stack_lo, g) when the thread runs one,
 * else read with the checked walk of fpwalk.h, probed at each start) into
 * a slot of a preallocated bounded MPMC ring (Vyukov's, one sequence word
 * per slot): no lock, no allocation, so it is async-signal-safe. When
 * the ring is full the sample is counted as dropped. The writer thread
 * drains the ring, aggregates identical (goroutine, stack) samples, and
 * at the end writes the pprof profile.
 */
#include "prof.h"
#include "fpwalk.h"
#include "../runtime/runtime.h"
#include "../runtime/san.h"
#include "goc/shutdown.h"
#include "goc/time.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <ucontext.h>

#define RING_SLOTS  2048              /* a power of two */
#define MAX_THREADS 512               /* threads with a timer at once */
#define MAX_TRACKED (2 * MAX_THREADS) /* those and threads without one */
#define TICK_NS     (50 * GOC_MILLISECOND)

#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* One sample as the handler records it. */
struct rec {
    int64_t goid; /* 0 outside goroutines */
    uint32_t weight;
    uint32_t npc;
    void *pcs[GOC_PROF_MAX_FRAMES];
};

struct slot {
    _Atomic uint64_t seq; /* == position: free; position + 1: filled */
    struct rec r;
};

/* An aggregated sample (writer thread only). */
struct agg {
    uint64_t hash;
    struct rec r;
    int64_t count;
};

enum { IDLE, RUNNING, STOPPING };

static struct {
    pthread_mutex_t mu;     /* start, stop and state */
    pthread_cond_t stopped; /* STOPPING -> IDLE, for concurrent stoppers */
    _Atomic int state;      /* written under mu; goc_prof_cpu_stats reads */
    unsigned stops;         /* profiles collected so far */
    int last_result;        /* what the stop of the last one returned */
    /* Shared with the handler. */
    _Atomic int active;
    _Atomic int inflight;
    _Atomic int walk;  /* GOC__WALK_*, probed at start */
    struct slot *ring; /* mapped once, kept for the process's lifetime */
    _Atomic uint64_t enq;
    uint64_t deq;
    _Atomic int64_t dropped, samples;
    bool handler_installed;
    /* The profile being taken. */
    int fd;
    bool own_fd;
    int hz;
    int64_t duration, start_mono, start_wall;
    int result;
    pthread_t writer;
    pid_t writer_tid;
    pthread_mutex_t wmu;
    pthread_cond_t wcv;
    bool stop_req;
    /* Threads seen, with a timer or counted unprofiled (writer, or start
     * before the writer runs). A thread is its tid and its start time, so
     * a reused tid is a new thread. */
    struct {
        pid_t tid;
        bool timed;
        unsigned seen;
        uint64_t start;
        timer_t timer;
    } threads[MAX_TRACKED];
    int nthreads, ntimers;
    int failed, excess; /* unprofiled tracked; most untracked in a scan */
    _Atomic int threads_total, unprofiled;
    unsigned scan_gen;
    /* Aggregated samples (writer). */
    struct agg *aggs;
    size_t naggs, capaggs;
    struct goc__u64map aggmap;
} cpu = { .mu = PTHREAD_MUTEX_INITIALIZER,
          .stopped = PTHREAD_COND_INITIALIZER };

/* ---- the signal handler ------------------------------------------------- */

/* The interrupted pc, frame pointer and stack pointer. */
static bool regs_of(const void *ucv,
                    uintptr_t *pc,
                    uintptr_t *fp,
                    uintptr_t *sp)
{
    const ucontext_t *uc = ucv;
#if defined(__x86_64__)
    *pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    *fp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
    *sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    return true;
#elif defined(__aarch64__)
    *pc = (uintptr_t)uc->uc_mcontext.pc;
    *fp = (uintptr_t)uc->uc_mcontext.regs[29];
    *sp = (uintptr_t)uc->uc_mcontext.sp;
    return true;
#else
    (void)uc, (void)pc, (void)fp, (void)sp;
    return false;
#endif
}

/* Fill r with the interrupted thread's stack and goroutine. */
GOC__PROF_NOSAN static void capture(struct rec *r, const void *ucv)
{
    uintptr_t pc, fp, sp;
    r->goid = 0;
    r->npc = 0;
    if (!ucv || !regs_of(ucv, &pc, &fp, &sp))
        return;
    /* Stored as a return address, like every other frame: +1. */
    r->pcs[0] = (void *)(pc + 1);
    uintptr_t lo = sp, hi = 0;
    struct goc__m *m = goc__m_current();
    struct goc__g *g = m ? m->curg : NULL;
    /* During a switch curg and the stack pointer may disagree for a few
     * instructions: the goroutine's bounds are used only when they hold
     * the stack pointer. */
    if (g && g != &m->g0 && sp >= (uintptr_t)g->stack_lo && sp < (uintptr_t)g) {
        lo = (uintptr_t)g->stack_lo;
        hi = (uintptr_t)g;
        r->goid = g->id;
    }
    int mode = atomic_load_explicit(&cpu.walk, memory_order_relaxed);
    r->npc = 1 + (uint32_t)goc__fp_walk(r->pcs + 1, GOC_PROF_MAX_FRAMES - 1, fp,
                                        lo, hi, mode);
}

GOC__PROF_NOSAN static void record(const siginfo_t *si, const void *ucv)
{
    uint64_t pos = atomic_load_explicit(&cpu.enq, memory_order_relaxed);
    struct slot *s;
    for (;;) {
        s = &cpu.ring[pos & (RING_SLOTS - 1)];
        /* Pairs with the writer's release store that freed the slot. */
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&cpu.enq, &pos, pos + 1,
                                                      memory_order_relaxed,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            atomic_fetch_add_explicit(&cpu.dropped, 1, memory_order_relaxed);
            return;
        } else {
            pos = atomic_load_explicit(&cpu.enq, memory_order_relaxed);
        }
    }
    capture(&s->r, ucv);
    int overrun = si && si->si_code == SI_TIMER ? si->si_overrun : 0;
    s->r.weight = 1 + (uint32_t)(overrun > 0 ? overrun : 0);
    /* Publishes the record to the writer's acquire load. */
    atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
}

static void on_sigprof(int sig, siginfo_t *si, void *ucv)
{
    (void)sig;
    int saved = errno;
    /* inflight before active: the stopper clears active, then waits for
     * inflight to drain, so no handler touches a finished profile. */
    atomic_fetch_add(&cpu.inflight, 1);
    if (atomic_load(&cpu.active))
        record(si, ucv);
    atomic_fetch_sub(&cpu.inflight, 1);
    errno = saved;
}

/* Installed once and kept: a SIGPROF still pending after a stop must
 * find a handler (the default action ends the process). */
static int install_handler(void)
{
    if (cpu.handler_installed)
        return 0;
    struct sigaction sa = { .sa_sigaction = on_sigprof,
                            .sa_flags = SA_SIGINFO | SA_RESTART |
                                        GOC__SA_ONSTACK_RETURNING };
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGPROF, &sa, NULL) < 0)
        return -errno;
    cpu.handler_installed = true;
    return 0;
}

static int ring_init(void)
{
    if (!cpu.ring) {
        void *p =
            mmap(NULL, sizeof(struct slot) * RING_SLOTS, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED)
            return -ENOMEM;
        cpu.ring = p;
    }
    for (uint64_t i = 0; i < RING_SLOTS; i++)
        atomic_store_explicit(&cpu.ring[i].seq, i, memory_order_relaxed);
    atomic_store(&cpu.enq, 0);
    cpu.deq = 0;
    return 0;
}

/* ---- per-thread timers ----------------------------------------------------
 */

/* The CPU-time clock of thread tid (the kernel's MAKE_THREAD_CPUCLOCK
 * with CPUCLOCK_SCHED): what CLOCK_THREAD_CPUTIME_ID is for the caller. */
static clockid_t thread_clock(pid_t tid)
{
    return (clockid_t)((~(unsigned)tid << 3) | 6u);
}

/* A timer sending SIGPROF to thread tid; 0 or -errno. */
static int make_timer(pid_t tid, timer_t *out)
{
    struct sigevent sev = { .sigev_notify = SIGEV_THREAD_ID,
                            .sigev_signo = SIGPROF };
    sev.sigev_notify_thread_id = tid;
    timer_t t;
    if (timer_create(thread_clock(tid), &sev, &t) < 0)
        return -errno;
    long period = 1000000000L / cpu.hz;
    /* Threads start out of step, so that their signals do not bunch. */
    long first = 1 + (long)(((unsigned)tid * 2654435761u) % (unsigned)period);
    struct itimerspec its = {
        .it_interval = { period / 1000000000L, period % 1000000000L },
        .it_value = { first / 1000000000L, first % 1000000000L },
    };
    if (timer_settime(t, 0, &its, NULL) < 0) {
        int err = -errno;
        timer_delete(t);
        return err;
    }
    *out = t;
    return 0;
}

/*
 * Track a thread not seen before (there is room in the table): with a
 * timer if there is room and the kernel gives one, else counted
 * unprofiled, once. 0, or the timer's error (-EAGAIN when MAX_THREADS
 * have one).
 */
static int add_thread(pid_t tid, uint64_t start)
{
    int err = -EAGAIN;
    timer_t t = 0;
    if (cpu.ntimers < MAX_THREADS)
        err = make_timer(tid, &t);
    /* The thread exited since it was listed: nothing to track. */
    if (err == -EINVAL || err == -ESRCH)
        return err;
    cpu.threads[cpu.nthreads].tid = tid;
    cpu.threads[cpu.nthreads].start = start;
    cpu.threads[cpu.nthreads].seen = cpu.scan_gen;
    cpu.threads[cpu.nthreads].timed = !err;
    if (!err) {
        cpu.threads[cpu.nthreads].timer = t;
        cpu.ntimers++;
        atomic_fetch_add(&cpu.threads_total, 1);
    } else {
        cpu.failed++;
    }
    cpu.nthreads++;
    return err;
}

static void drop_thread(int i)
{
    if (cpu.threads[i].timed) {
        timer_delete(cpu.threads[i].timer);
        cpu.ntimers--;
    }
    cpu.threads[i] = cpu.threads[--cpu.nthreads];
}

static int find_thread(pid_t tid)
{
    for (int i = 0; i < cpu.nthreads; i++)
        if (cpu.threads[i].tid == tid)
            return i;
    return -1;
}

/* Drop the timers of threads that are gone. */
static void sweep_threads(void)
{
    for (int i = 0; i < cpu.nthreads;) {
        if (cpu.threads[i].seen == cpu.scan_gen)
            i++;
        else
            drop_thread(i);
    }
}

/* The start time of thread tid (field 22 of its stat, in clock ticks since
 * boot), which tells a reused tid from the thread that had it: 0, -ENOENT
 * or -ESRCH if the thread is gone, another -errno (EMFILE, say) if that
 * cannot be told now. */
static int thread_start(int taskfd, const char *tid, uint64_t *start)
{
    char path[32], buf[512];
    snprintf(path, sizeof(path), "%s/stat", tid);
    int fd = openat(taskfd, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int err = n < 0 ? -errno : -ESRCH;
    close(fd);
    if (n <= 0)
        return err;
    buf[n] = '\0';
    /* The name (field 2) may hold anything: fields follow its last ')'. */
    char *at = strrchr(buf, ')');
    for (int field = 2; at && field < 22; field++)
        at = strchr(at + 1, ' ');
    if (!at)
        return -ESRCH;
    *start = strtoull(at + 1, NULL, 10);
    return 0;
}

/* Keep a thread tracked whose stat could not be read for want of a file
 * descriptor or memory: dropping it would delete its timer, and the next
 * scan would count it again as a new thread. */
static void keep_thread(pid_t tid, int err)
{
    int i = err == -ENOENT || err == -ESRCH ? -1 : find_thread(tid);
    if (i >= 0)
        cpu.threads[i].seen = cpu.scan_gen;
}

/*
 * Give every thread a timer; the first error, if the calling thread got
 * none. A thread that exits meanwhile simply fails its timer_create.
 */
static int scan_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -errno;
    pid_t self = gettid();
    int self_err = 0, untracked = 0;
    cpu.scan_gen++;
    struct dirent *e;
    while ((e = readdir(dir))) {
        pid_t tid = (pid_t)atoi(e->d_name);
        uint64_t start;
        if (tid <= 0 || tid == cpu.writer_tid)
            continue;
        int err = thread_start(dirfd(dir), e->d_name, &start);
        if (err) {
            keep_thread(tid, err);
            continue;
        }
        int i = find_thread(tid);
        if (i >= 0 && cpu.threads[i].start != start) {
            drop_thread(i); /* the tid's thread ended; this is a new one */
            i = -1;
        }
        if (i >= 0) {
            cpu.threads[i].seen = cpu.scan_gen;
            continue;
        }
        err = -EAGAIN;
        if (cpu.nthreads < MAX_TRACKED)
            err = add_thread(tid, start);
        else
            untracked++;
        if (err && tid == self)
            self_err = err;
    }
    closedir(dir);
    sweep_threads();
    /* Threads beyond the table cannot be told apart from one scan to the
     * next: the most seen at once is counted. */
    if (untracked > cpu.excess)
        cpu.excess = untracked;
    atomic_store(&cpu.unprofiled, cpu.failed + cpu.excess);
    return self_err;
}

static void delete_timers(void)
{
    for (int i = 0; i < cpu.nthreads; i++)
        if (cpu.threads[i].timed)
            timer_delete(cpu.threads[i].timer);
    cpu.nthreads = cpu.ntimers = 0;
}

/* ---- the writer ------------------------------------------------------------
 */

/* Add r to the aggregated samples; false if it was dropped (no memory). */
static bool aggregate(const struct rec *r)
{
    uint64_t h = goc__hash64(r->pcs, r->npc * sizeof(void *));
    h = (h ^ (uint64_t)r->goid * 0x9e3779b97f4a7c15ull) | 1;
    uint32_t at = goc__u64map_get(&cpu.aggmap, h);
    if (at) {
        struct agg *a = &cpu.aggs[at - 1];
        if (a->r.goid == r->goid && a->r.npc == r->npc &&
            memcmp(a->r.pcs, r->pcs, r->npc * sizeof(void *)) == 0) {
            a->count += r->weight;
            return true;
        }
    }
    if (cpu.naggs == cpu.capaggs) {
        size_t cap = cpu.capaggs ? cpu.capaggs * 2 : 256;
        struct agg *a = realloc(cpu.aggs, cap * sizeof(*a));
        if (!a) {
            atomic_fetch_add(&cpu.dropped, r->weight);
            return false;
        }
        cpu.aggs = a;
        cpu.capaggs = cap;
    }
    struct agg *a = &cpu.aggs[cpu.naggs++];
    a->hash = h;
    a->r = *r;
    a->count = r->weight;
    /* On a collision the new stack is kept apart, unindexed. */
    if (!at)
        goc__u64map_put(&cpu.aggmap, h, (uint32_t)cpu.naggs);
    return true;
}

static void drain(void)
{
    for (;;) {
        struct slot *s = &cpu.ring[cpu.deq & (RING_SLOTS - 1)];
        /* Pairs with the handler's release store of a filled slot. */
        uint64_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
        if (seq != cpu.deq + 1)
            return;
        /* A sample is either in the profile or dropped, never both. */
        if (s->r.npc > 0 && aggregate(&s->r))
            atomic_fetch_add(&cpu.samples, s->r.weight);
        /* Frees the slot for the lap after next (handler's acquire). */
        atomic_store_explicit(&s->seq, cpu.deq + RING_SLOTS,
                              memory_order_release);
        cpu.deq++;
    }
}

static int write_profile(void)
{
    struct goc__profile *p = goc__profile_new();
    if (!p)
        return -ENOMEM;
    int64_t period = 1000000000L / cpu.hz;
    goc__profile_sample_type(p, "samples", "count");
    goc__profile_sample_type(p, "cpu", "nanoseconds");
    goc__profile_period(p, "cpu", "nanoseconds", period);
    goc__profile_time(p, cpu.start_wall, goc__nanotime() - cpu.start_mono);
    char text[128];
    for (size_t i = 0; i < cpu.naggs; i++) {
        const struct agg *a = &cpu.aggs[i];
        int64_t v[2] = { a->count, a->count * period };
        snprintf(text, sizeof(text), "%lld", (long long)a->r.goid);
        goc__profile_sample(p, a->r.pcs, (int)a->r.npc, v, 2,
                            a->r.goid ? "goroutine" : NULL, text);
    }
    int64_t lost = atomic_load(&cpu.dropped);
    if (lost > 0) {
        void *pc = GOC__PC_LOST;
        int64_t v[2] = { lost, lost * period };
        goc__profile_sample(p, &pc, 1, v, 2, NULL, NULL);
    }
    snprintf(text, sizeof(text), "goc: %d Hz, %lld samples, %lld dropped",
             cpu.hz, (long long)atomic_load(&cpu.samples), (long long)lost);
    goc__profile_comment(p, text);
    int err = goc__profile_write(p, cpu.fd);
    goc__profile_free(p);
    return err;
}

/* Stop sampling, take in every sample, write, close. */
static void finish(void)
{
    atomic_store(&cpu.active, 0);
    delete_timers();
    /* A handler that saw active set is counted in inflight. */
    while (atomic_load(&cpu.inflight) > 0)
        sched_yield();
    drain();
    /* The file was opened untruncated (see open_path): what it held is
     * cut off now, just before the profile replaces it. */
    int err = 0;
    struct stat st;
    if (cpu.own_fd && fstat(cpu.fd, &st) == 0 && S_ISREG(st.st_mode) &&
        ftruncate(cpu.fd, 0) < 0)
        err = -errno;
    if (!err)
        err = write_profile();
    if (cpu.own_fd)
        err = goc__prof_close(cpu.fd, err);
    cpu.result = err;
    free(cpu.aggs);
    cpu.aggs = NULL;
    cpu.naggs = cpu.capaggs = 0;
    goc__u64map_free(&cpu.aggmap);
}

/* When a profile with a duration ends: saturated, so that a huge one
 * (INT64_MAX, say) runs until stopped instead of wrapping into the past. */
static int64_t end_time(void)
{
    if (!cpu.duration || cpu.duration > INT64_MAX - cpu.start_mono)
        return INT64_MAX;
    return cpu.start_mono + cpu.duration;
}

static struct goc__thread writer_thread;

static void *writer_main(void *arg)
{
    (void)arg;
    goc__thread_started(&writer_thread);
    cpu.writer_tid = gettid();
    int64_t end = end_time();
    pthread_mutex_lock(&cpu.wmu);
    while (!cpu.stop_req) {
        int64_t now = goc__nanotime();
        if (now >= end)
            break;
        int64_t wake = end - now < TICK_NS ? end - now : TICK_NS;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t t = ts.tv_nsec + wake;
        ts.tv_sec += t / 1000000000L;
        ts.tv_nsec = t % 1000000000L;
        pthread_cond_timedwait(&cpu.wcv, &cpu.wmu, &ts);
        pthread_mutex_unlock(&cpu.wmu);
        drain();
        scan_threads();
        pthread_mutex_lock(&cpu.wmu);
    }
    pthread_mutex_unlock(&cpu.wmu);
    finish();
    goc__thread_exited(&writer_thread);
    return NULL;
}

/* The writer, with every signal blocked (it is never sampled). */
static int start_writer(void)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&cpu.wcv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&cpu.wmu, NULL);
    cpu.stop_req = false;
    cpu.writer_tid = 0;
    sigset_t all, old;
    goc__sigmask_service(&all, false); /* the writer is not profiled */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    goc__thread_created(&writer_thread, GOC__TK_PROFILER);
    int err = pthread_create(&cpu.writer, NULL, writer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err) {
        goc__thread_exited(&writer_thread);
        pthread_cond_destroy(&cpu.wcv);
        pthread_mutex_destroy(&cpu.wmu);
    }
    return -err;
}

/* ---- API -------------------------------------------------------------------
 */

static int check_opts(const struct goc_prof_cpu_opts *o)
{
    if (!o || o->hz < 0 || o->hz > GOC_PROF_MAX_HZ || o->duration < 0 ||
        (!o->path && o->fd < 0))
        return -EINVAL;
    return 0;
}

/*
 * Open the profile's file, created if there is none (*created then), but
 * not truncated: a start that fails after this leaves the file as it was
 * (or removes the one it created); finish() truncates it before writing.
 * The fd or -errno.
 */
static int open_path(const char *path, bool *created)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    *created = fd >= 0;
    if (fd < 0 && errno == EEXIST)
        fd = open(path, O_WRONLY | O_CLOEXEC);
    /* Gone meanwhile, or a dangling symbolic link (O_EXCL does not
     * follow it): created as open(2) would, and not removed on failure. */
    if (fd < 0 && errno == ENOENT)
        fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

/* Everything but the state change, under cpu.mu; undone on failure. */
static int start_locked(const struct goc_prof_cpu_opts *o)
{
    int err = ring_init();
    if (!err)
        err = install_handler();
    if (err)
        return err;
    /* A descriptor the profile cannot be written to is refused now, not
     * found out by the stop once the whole profile is taken. */
    int fl = o->path ? O_WRONLY : fcntl(o->fd, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
        return -EBADF;
    bool created = false;
    cpu.fd = o->path ? open_path(o->path, &created) : o->fd;
    if (cpu.fd < 0)
        return cpu.fd;
    cpu.own_fd = o->path != NULL;
    cpu.hz = o->hz ? o->hz : GOC_PROF_DEFAULT_HZ;
    cpu.duration = o->duration;
    cpu.start_mono = goc__nanotime();
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    cpu.start_wall = wall.tv_sec * 1000000000LL + wall.tv_nsec;
    atomic_store(&cpu.dropped, 0);
    atomic_store(&cpu.samples, 0);
    atomic_store(&cpu.threads_total, 0);
    atomic_store(&cpu.unprofiled, 0);
    cpu.failed = cpu.excess = 0;
    /* A seccomp filter may have come since the last profile. */
    atomic_store(&cpu.walk, goc__fp_probe());
    atomic_store(&cpu.active, 1);
    cpu.writer_tid = 0;
    err = scan_threads();
    if (!err)
        err = start_writer();
    if (err) {
        atomic_store(&cpu.active, 0);
        delete_timers();
        while (atomic_load(&cpu.inflight) > 0)
            sched_yield();
        if (cpu.own_fd)
            close(cpu.fd);
        if (created)
            unlink(o->path);
    }
    return err;
}

int goc_prof_cpu_start_opts(const struct goc_prof_cpu_opts *opts)
{
    int err = check_opts(opts);
    if (err)
        return err;
    pthread_mutex_lock(&cpu.mu);
    if (cpu.state != IDLE)
        err = -EBUSY;
    else
        err = start_locked(opts);
    if (!err)
        cpu.state = RUNNING;
    pthread_mutex_unlock(&cpu.mu);
    return err;
}

int goc_prof_cpu_start(const char *path, int hz)
{
    if (!path)
        return -EINVAL;
    struct goc_prof_cpu_opts o = { .path = path, .fd = -1, .hz = hz };
    return goc_prof_cpu_start_opts(&o);
}

/* A stop that finds another one writing the profile waits for it, as Go's
 * StopCPUProfile does, and returns what the first one returns. */
static int wait_for_stopper(void)
{
    unsigned stops = cpu.stops;
    bool section = false;
    if (goc__g_current()) {
        /* The first stopper may take long: let this P run others. */
        pthread_mutex_unlock(&cpu.mu);
        section = goc_blocking_enter() == 0;
        pthread_mutex_lock(&cpu.mu);
    }
    while (cpu.stops == stops)
        pthread_cond_wait(&cpu.stopped, &cpu.mu);
    int err = cpu.last_result;
    pthread_mutex_unlock(&cpu.mu);
    if (section)
        goc_blocking_exit();
    return err;
}

int goc_prof_cpu_stop(void)
{
    pthread_mutex_lock(&cpu.mu);
    if (cpu.state == STOPPING)
        return wait_for_stopper();
    bool running = cpu.state == RUNNING;
    if (running) {
        cpu.state = STOPPING;
        pthread_mutex_lock(&cpu.wmu);
        cpu.stop_req = true;
        pthread_cond_signal(&cpu.wcv);
        pthread_mutex_unlock(&cpu.wmu);
    }
    pthread_mutex_unlock(&cpu.mu);
    if (!running)
        return -ESRCH;
    /* The join waits for the whole file: let this P run others. */
    bool section = goc__g_current() && goc_blocking_enter() == 0;
    pthread_join(cpu.writer, NULL);
    if (section)
        goc_blocking_exit();
    pthread_mutex_lock(&cpu.mu);
    int err = cpu.result;
    pthread_cond_destroy(&cpu.wcv);
    pthread_mutex_destroy(&cpu.wmu);
    cpu.state = IDLE;
    cpu.last_result = err;
    cpu.stops++;
    pthread_cond_broadcast(&cpu.stopped);
    pthread_mutex_unlock(&cpu.mu);
    return err;
}

int goc_prof_cpu_stats(struct goc_prof_cpu_stats *st)
{
    if (!st)
        return -EINVAL;
    st->samples = atomic_load(&cpu.samples);
    st->dropped = atomic_load(&cpu.dropped);
    st->threads = atomic_load(&cpu.threads_total);
    st->unprofiled = atomic_load(&cpu.unprofiled);
    st->walk = atomic_load(&cpu.walk);
    /* Not under cpu.mu, which a start holds while it scans the threads:
     * this never blocks. */
    st->running = atomic_load(&cpu.state) != IDLE;
    return 0;
}

static int stop_for_shutdown(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    int err = goc_prof_cpu_stop();
    return err == -ESRCH ? 0 : err; /* nothing running: nothing to flush */
}

int goc_prof_cpu_stop_on_shutdown(goc_shutdown *m)
{
    return goc_shutdown_add(m, "cpu-profile", stop_for_shutdown, NULL,
                            GOC_PHASE_RESOURCE - 1);
}
