/* SPDX-License-Identifier: MIT */
/* Tests of the blocking pool. */
#include "test.h"

#include "../src/internal/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Really blocks its thread, as file I/O or DNS would. */
static int block_ms(void *arg)
{
    long ms = (long)(intptr_t)arg;
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
    nanosleep(&ts, NULL);
    return (int)ms;
}

struct progress {
    _Atomic long ticks;
    _Atomic int stop;
    goc_wg wg;
};

static void ticker(void *arg)
{
    struct progress *p = arg;
    while (!atomic_load(&p->stop)) {
        goc_sleep(GOC_MILLISECOND, NULL);
        atomic_fetch_add(&p->ticks, 1);
    }
    goc_wg_done(&p->wg);
}

struct caller {
    goc_wg *wg;
    _Atomic int *ok;
};

static void call_blocking(void *arg)
{
    struct caller *c = arg;
    if (goc_blocking(block_ms, (void *)(intptr_t)50, NULL) == 50)
        atomic_fetch_add(c->ok, 1);
    goc_wg_done(c->wg);
}

TEST_G(blocking, hundred_calls_while_others_progress)
{
    static struct progress p;
    static _Atomic int ok;
    goc_wg wg = GOC_WG_INIT;
    struct caller c = { &wg, &ok };
    goc_wg_add(&p.wg, 1);
    ASSERT_OK(goc_go(ticker, &p));
    goc_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        ASSERT_OK(goc_go(call_blocking, &c));
    long before = atomic_load(&p.ticks);
    goc_wg_wait(&wg, NULL);
    long during = atomic_load(&p.ticks) - before;
    atomic_store(&p.stop, 1);
    goc_wg_wait(&p.wg, NULL);
    ASSERT_EQ(atomic_load(&ok), 100);
    /* 100 threads blocked 50 ms each; the Ps kept running the ticker. */
    ASSERT_GT(during, 0);
}

static _Atomic int slow_work_started, slow_work_may_end, slow_work_done;

/* Runs until the test lets it end (30 s at most). */
static int slow_work(void *arg)
{
    (void)arg;
    atomic_store(&slow_work_started, 1);
    for (int i = 0; i < 3000 && !atomic_load(&slow_work_may_end); i++)
        block_ms((void *)(intptr_t)10);
    atomic_store(&slow_work_done, 1);
    return 0;
}

/* Cancels its context once the work is running on the pool. */
static void cancel_once_started(void *arg)
{
    while (!atomic_load(&slow_work_started))
        goc_sleep(GOC_MILLISECOND, NULL);
    goc_ctx_cancel(arg);
    goc_ctx_release(arg);
}

TEST_G(blocking, ctx_abandons_the_wait_not_the_work)
{
    ASSERT_EQ(goc_blocking(NULL, NULL, NULL), -EINVAL);
    int64_t before = goc_blocking_abandoned();
    goc_ctx *c;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c));
    ASSERT_OK(goc_go(cancel_once_started, goc_ctx_retain(c)));
    ASSERT_EQ(goc_blocking(slow_work, NULL, c), -ECANCELED);
    ASSERT_EQ(atomic_load(&slow_work_done), 0); /* returned before it */
    goc_ctx_release(c);
    atomic_store(&slow_work_may_end, 1);
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    /* Done at entry: not run at all. */
    ASSERT_EQ(goc_blocking(block_ms, (void *)(intptr_t)1, ctx), -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    /* The work still finishes on the pool, and its result is counted. */
    for (int i = 0; i < 3000 && goc_blocking_abandoned() == before; i++)
        goc_sleep(10 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_blocking_abandoned() - before, 1);
}

static void *thread_call(void *arg)
{
    *(int *)arg = goc_blocking(block_ms, (void *)(intptr_t)5, NULL);
    return NULL;
}

TEST(blocking, from_plain_thread)
{
    int rc = 0;
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, thread_call, &rc));
    test_join(t, NULL);
    ASSERT_EQ(rc, 5);
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    test_cancel_after(ctx, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_blocking(block_ms, (void *)(intptr_t)200, ctx), -ECANCELED);
    goc_ctx_release(ctx);
    test_no_leaks();
}

/*
 * Jobs that can finish only together: each waits, up to 5 s, until all
 * have started. They pass only if every job got a thread of its own.
 */
struct meeting {
    _Atomic int arrived;
    int want;
    pthread_barrier_t start;
    _Atomic int met;
};

static int meet(void *arg)
{
    struct meeting *mt = arg;
    atomic_fetch_add(&mt->arrived, 1);
    int64_t until = goc_now() + 5 * GOC_SECOND;
    while (atomic_load(&mt->arrived) < mt->want)
        if (goc_now() > until)
            return -ETIMEDOUT;
        else
            nanosleep(&(struct timespec){ 0, 100000 }, NULL);
    return 0;
}

static void *submit_meet(void *arg)
{
    struct meeting *mt = arg;
    pthread_barrier_wait(&mt->start);
    if (goc_blocking(meet, mt, NULL) == 0)
        atomic_fetch_add(&mt->met, 1);
    return NULL;
}

/* n plain threads submit a meeting job each, all at once. */
static int meeting_of(int n)
{
    struct meeting mt = { .want = n };
    pthread_t t[32];
    ASSERT(n <= 32);
    ASSERT_OK(pthread_barrier_init(&mt.start, NULL, (unsigned)n));
    for (int i = 0; i < n; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, submit_meet, &mt));
    for (int i = 0; i < n; i++)
        ASSERT_OK(test_join(t[i], NULL));
    pthread_barrier_destroy(&mt.start);
    return atomic_load(&mt.met);
}

/*
 * A worker woken for a job counts as idle until it runs. Submits that
 * came meanwhile used to see it idle too and start no worker, so several
 * jobs waited for one thread: jobs that wait for each other (a pipe's
 * reader and writer, say) then deadlocked. Each round leaves as many
 * idle workers as it had jobs, and the next submits 8 more jobs than
 * that, all at once: they must all run at the same time.
 */
TEST_G(blocking, concurrent_submits_do_not_share_an_idle_worker)
{
    for (int n = 8; n <= 32; n += 8)
        ASSERT_EQ(meeting_of(n), n);
}

struct holder {
    _Atomic bool release, running;
};

/* A job that holds its pool thread until released (at most 10 s). */
static int hold_until_released(void *arg)
{
    struct holder *h = arg;
    atomic_store(&h->running, true);
    for (int i = 0; i < 10000 && !atomic_load(&h->release); i++)
        usleep(1000);
    return 0;
}

static void hold_a_worker(void *arg)
{
    ASSERT_OK(goc_blocking(hold_until_released, arg, NULL));
}

static int releases(void *arg)
{
    atomic_store(&((struct holder *)arg)->release, true);
    return 7;
}

/*
 * A job whose thread cannot be started is refused with -EAGAIN, not
 * queued behind a busy worker: it used to wait for that worker, for ever
 * when the worker's job waited for it (here: for it to release it).
 */
TEST_G(blocking, job_without_a_thread_is_refused_not_queued_behind_a_busy_one)
{
    static struct holder h;
    ASSERT_OK(goc_go(hold_a_worker, &h));
    while (!atomic_load(&h.running))
        goc_sleep(GOC_MILLISECOND, NULL);
    int rc = -ENOMEM;
    /* The first allocations allowed go to the job's own record; the
     * thread's start then fails. */
    for (int n = 0; n < 8 && rc == -ENOMEM; n++) {
        goc__fault_after(n);
        rc = goc_blocking(releases, &h, NULL);
        goc__fault_after(-1);
    }
    bool released_by_it = atomic_load(&h.release);
    atomic_store(&h.release, true);
    ASSERT_EQ(rc, -EAGAIN);
    ASSERT(!released_by_it);                        /* it did not run */
    ASSERT_EQ(goc_blocking(releases, &h, NULL), 7); /* threads start again */
}

static int marks_ran(void *arg)
{
    atomic_store((_Atomic bool *)arg, true);
    return 0;
}

static int queued_job_main(void *arg)
{
    (void)arg;
    static struct holder h;
    ASSERT_OK(goc_go(hold_a_worker, &h)); /* the pool's only thread */
    while (!atomic_load(&h.running))
        goc_sleep(GOC_MILLISECOND, NULL);
    int64_t abandoned = goc_blocking_abandoned();
    static _Atomic bool ran;
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 20 * GOC_MILLISECOND);
    ASSERT_EQ(goc_blocking(marks_ran, (void *)&ran, ctx), -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    /* The queue is FIFO: once this one has run, the given-up one would
     * have run before it. */
    atomic_store(&h.release, true);
    ASSERT_EQ(goc_blocking(releases, &h, NULL), 7);
    ASSERT(!atomic_load(&ran));
    ASSERT_EQ(goc_blocking_abandoned(), abandoned); /* no result dropped */
    return 0;
}

/*
 * A job queued for a thread (the pool at its limit) whose caller gives up
 * never runs: it ran once a thread came free, long after its caller had
 * returned, on arguments the caller may have freed.
 */
TEST(blocking, queued_job_whose_caller_gave_up_never_runs)
{
    ASSERT_OK(setenv("GOC_BLOCKING_THREADS", "1", 1));
    ASSERT_OK(goc_run(queued_job_main, NULL));
    unsetenv("GOC_BLOCKING_THREADS");
    test_no_leaks();
}

/* ---- blocking sections in place, and the watchdog ---------------------- */

struct section {
    _Atomic long ticks;
    long ticks_during;
    _Atomic int stop;
    goc_wg wg;
};

static void tick_until_stop(void *arg)
{
    struct section *s = arg;
    while (!atomic_load(&s->stop)) {
        goc_sleep(GOC_MILLISECOND, NULL);
        atomic_fetch_add(&s->ticks, 1);
    }
    goc_wg_done(&s->wg);
}

static void blocks_in_place(void *arg)
{
    struct section *s = arg;
    long before = atomic_load(&s->ticks);
    ASSERT_OK(goc_blocking_enter());
    ASSERT_EQ(goc_blocking_enter(), -EINVAL);
    block_ms((void *)(intptr_t)200); /* holds this thread */
    s->ticks_during = atomic_load(&s->ticks) - before;
    ASSERT_OK(goc_blocking_exit());
    ASSERT_EQ(goc_blocking_exit(), -EINVAL);
    goc_sleep(GOC_MILLISECOND, NULL); /* and it schedules normally again */
    atomic_store(&s->stop, 1);
    goc_wg_done(&s->wg);
}

static int one_p_main(void *arg)
{
    struct section *s = arg;
    goc_wg_add(&s->wg, 2);
    ASSERT_OK(goc_go(tick_until_stop, s));
    ASSERT_OK(goc_go(blocks_in_place, s));
    goc_wg_wait(&s->wg, NULL);
    return 0;
}

TEST(blocking, section_hands_the_only_p_away)
{
    /* One P: without the watchdog nothing else could run meanwhile. */
    static struct section s;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(one_p_main, &s));
    ASSERT_GT(s.ticks_during, 0);
    ASSERT_OK(goc_blocking_enter()); /* a plain thread: nothing to do */
    ASSERT_OK(goc_blocking_exit());
    test_no_leaks();
}

struct hog_log {
    _Atomic int seen;
};

static void capture(const char *msg, void *arg)
{
    struct hog_log *h = arg;
    if (strstr(msg, "\"spinner\"") && strstr(msg, "without blocking"))
        atomic_store(&h->seen, 1);
}

static void spinner(void *arg)
{
    (void)arg;
    /* Long enough for sysmon to see it on a loaded or emulated machine. */
    int64_t end = goc_now() + 300 * GOC_MILLISECOND;
    while (goc_now() < end)
        ; /* no goc call: a CPU hog, reported when it is done */
}

static void queued_behind(void *arg)
{
    (void)arg;
}

static void spawn_spinner(void *arg)
{
    /* The spinner runs next on this P; a goroutine waits behind it. */
    struct goc_go_opts o = { .name = "spinner" };
    ASSERT_OK(goc_go(queued_behind, NULL));
    ASSERT_OK(goc_go_ex(spinner, arg, &o));
}

static int hog_main(void *arg)
{
    struct hog_log *h = arg;
    ASSERT_OK(goc_go(spawn_spinner, h));
    int64_t end = goc_now() + 3 * GOC_SECOND;
    while (!atomic_load(&h->seen) && goc_now() < end)
        goc_sleep(GOC_MILLISECOND, NULL);
    return 0;
}

TEST(blocking, hog_is_reported_once_through_the_hook)
{
    if (test_under_valgrind()) {
        /* valgrind runs one thread at a time: nothing overtakes a
         * spinner there, which is what this test is about. */
        printf("# skipped under valgrind\n");
        return;
    }
    /* One P, so the goroutine queued behind the spinner really waits. */
    static struct hog_log h;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    goc_set_log_hook(capture, &h);
    ASSERT_OK(goc_run(hog_main, &h));
    ASSERT_EQ(atomic_load(&h.seen), 1);
    goc_set_log_hook(NULL, NULL);
    test_no_leaks();
}

/* ---- what a hog report says ------------------------------------------ */

/* Reports about the goroutines a test watches, the last one kept. */
struct hog_reports {
    _Atomic int n;
    char last[512];
};

static void capture_watched(const char *msg, void *arg)
{
    struct hog_reports *r = arg;
    if (!strstr(msg, "\"watched\"") || !strstr(msg, "kept P"))
        return;
    snprintf(r->last, sizeof r->last, "%s", msg);
    atomic_fetch_add(&r->n, 1);
}

/* What sysmon reads to judge a hog: the thread's state. */
static bool thread_stat_readable(void)
{
    FILE *f = fopen("/proc/thread-self/stat", "r");
    if (f)
        fclose(f);
    return f != NULL;
}

/* Sleeps in the kernel without a blocking section, holding the P. */
static void sleep_unmarked(void *arg)
{
    (void)arg;
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void spawn_unmarked_sleeper(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .name = "watched" };
    ASSERT_OK(goc_go(queued_behind, NULL));
    ASSERT_OK(goc_go_ex(sleep_unmarked, NULL, &o));
}

static int unmarked_sleep_main(void *arg)
{
    struct hog_reports *r = arg;
    ASSERT_OK(goc_go(spawn_unmarked_sleeper, NULL));
    int64_t end = goc_now() + 3 * GOC_SECOND;
    while (!atomic_load(&r->n) && goc_now() < end)
        goc_sleep(GOC_MILLISECOND, NULL);
    return 0;
}

/*
 * A goroutine asleep in a system call that no blocking section marks keeps
 * its P as surely as a spinner, but "without blocking or yielding" would
 * send its author looking for a loop: the report says where it was.
 */
TEST(blocking, hog_asleep_in_the_kernel_is_reported_as_such)
{
    if (test_under_valgrind() || !thread_stat_readable()) {
        printf("# skipped: valgrind, or no thread times\n");
        return;
    }
    static struct hog_reports r;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    goc_set_log_hook(capture_watched, &r);
    ASSERT_OK(goc_run(unmarked_sleep_main, &r));
    goc_set_log_hook(NULL, NULL);
    ASSERT_EQ(atomic_load(&r.n), 1);
    if (!strstr(r.last, "asleep in the kernel"))
        ASSERT_FAIL("report: %s", r.last);
    test_no_leaks();
}

/* A static function: only the program's symbol table knows its name. */
static void spin_for_300ms(void *arg)
{
    spinner(arg);
}

static void spawn_static_spinner(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .name = "watched" };
    ASSERT_OK(goc_go(queued_behind, NULL));
    ASSERT_OK(goc_go_ex(spin_for_300ms, NULL, &o));
}

static int static_spinner_main(void *arg)
{
    struct hog_reports *r = arg;
    ASSERT_OK(goc_go(spawn_static_spinner, NULL));
    int64_t end = goc_now() + 3 * GOC_SECOND;
    while (!atomic_load(&r->n) && goc_now() < end)
        goc_sleep(GOC_MILLISECOND, NULL);
    return 0;
}

/* The report names the entry function as a backtrace would, static or
 * not (it said "entry ?" for a static one). */
TEST(blocking, hog_report_names_a_static_entry_function)
{
    if (test_under_valgrind()) {
        printf("# skipped under valgrind\n");
        return;
    }
    static struct hog_reports r;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    goc_set_log_hook(capture_watched, &r);
    ASSERT_OK(goc_run(static_spinner_main, &r));
    goc_set_log_hook(NULL, NULL);
    ASSERT_EQ(atomic_load(&r.n), 1);
    if (!strstr(r.last, "(entry spin_for_300ms)"))
        ASSERT_FAIL("report: %s", r.last);
    test_no_leaks();
}

struct starved {
    _Atomic int stop;
    _Atomic long yields;
    goc_wg wg;
};

/* Keeps the CPU the goroutines' thread is bound to busy. */
static void *burn_cpu(void *arg)
{
    struct starved *s = arg;
    while (!atomic_load_explicit(&s->stop, memory_order_relaxed))
        ;
    return NULL;
}

static void yield_for_600ms(void *arg)
{
    struct starved *s = arg;
    int64_t end = goc_now() + 600 * GOC_MILLISECOND;
    while (goc_now() < end) {
        goc_yield();
        atomic_fetch_add(&s->yields, 1);
    }
    goc_wg_done(&s->wg);
}

#define BURNERS 8

/* Binds the calling thread to one CPU; threads it starts inherit it. */
static void pin_to_one_cpu(void)
{
    cpu_set_t set;
    ASSERT_OK(sched_getaffinity(0, sizeof set, &set));
    int cpu = 0;
    while (!CPU_ISSET(cpu, &set))
        cpu++;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    ASSERT_OK(sched_setaffinity(0, sizeof set, &set));
}

static void start_burners(struct starved *s, pthread_t *burners)
{
    for (int i = 0; i < BURNERS; i++)
        ASSERT_OK(pthread_create(&burners[i], NULL, burn_cpu, s));
}

static void join_burners(struct starved *s, pthread_t *burners)
{
    atomic_store(&s->stop, 1);
    for (int i = 0; i < BURNERS; i++)
        ASSERT_OK(pthread_join(burners[i], NULL));
}

static int starved_main(void *arg)
{
    struct starved *s = arg;
    /* This thread, which the goroutines run on (one P), and eight busy
     * threads share one CPU: the kernel keeps the goroutines off it for
     * tens of milliseconds at a time, while they yield every time they
     * run. */
    pin_to_one_cpu();
    pthread_t burners[BURNERS];
    start_burners(s, burners);
    struct goc_go_opts o = { .name = "watched" };
    goc_wg_add(&s->wg, 2);
    ASSERT_OK(goc_go_ex(yield_for_600ms, s, &o));
    ASSERT_OK(goc_go_ex(yield_for_600ms, s, &o));
    goc_wg_wait(&s->wg, NULL);
    join_burners(s, burners);
    return 0;
}

/*
 * The kernel keeping a goroutine's thread off the CPU (a loaded machine,
 * a cgroup's quota) is not the goroutine hogging its P: no report, though
 * its queue still moves.
 */
TEST(blocking, thread_kept_off_the_cpu_is_not_reported_as_a_hog)
{
    /* Instrumentation and emulation (TSan, qemu) take locks of their own
     * that put busy threads to sleep: a starved thread would look asleep
     * in the kernel there. */
    if (test_instrumented() || !thread_stat_readable()) {
        printf("# skipped: instrumented or emulated, or no thread times\n");
        return;
    }
    static struct starved s;
    static struct hog_reports r;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    goc_set_log_hook(capture_watched, &r);
    ASSERT_OK(goc_run(starved_main, &s));
    goc_set_log_hook(NULL, NULL);
    if (atomic_load(&r.n) != 0)
        ASSERT_FAIL("reported: %s", r.last);
    ASSERT_GT(atomic_load(&s.yields), 0);
    test_no_leaks();
}

struct spin_pair {
    _Atomic int progressed;
    int progressed_before_end;
    goc_wg wg;
};

static void make_progress(void *arg)
{
    struct spin_pair *s = arg;
    atomic_store(&s->progressed, 1);
    goc_wg_done(&s->wg);
}

static void spin_500ms(void *arg)
{
    struct spin_pair *s = arg;
    int64_t end = goc_now() + 500 * GOC_MILLISECOND;
    while (goc_now() < end)
        ; /* never yields */
    s->progressed_before_end = atomic_load(&s->progressed);
    goc_wg_done(&s->wg);
}

static void spawn_pair(void *arg)
{
    /* Both queue on this P; the spinner runs first (runnext). */
    ASSERT_OK(goc_go(make_progress, arg));
    ASSERT_OK(goc_go(spin_500ms, arg));
}

TEST_G(blocking, spinner_does_not_stall_its_p_queue)
{
    if (test_under_valgrind()) {
        /* valgrind runs one thread at a time: nothing overtakes a
         * spinner there, which is what this test is about. */
        printf("# skipped under valgrind\n");
        return;
    }
    if (goc_maxprocs() < 2) {
        /* Without preemption, only another P can run what waits behind
         * a spinner. */
        printf("# skipped with one P\n");
        return;
    }
    static struct spin_pair s;
    goc_wg_add(&s.wg, 2);
    ASSERT_OK(goc_go(spawn_pair, &s));
    goc_wg_wait(&s.wg, NULL);
    ASSERT_EQ(s.progressed_before_end, 1);
}

static pthread_t late_burners[BURNERS];

/* Spins 300 ms without a goc call: the first 40 ms with eight busy
 * threads on its CPU, the rest alone (the burners see the stop flag and
 * end; they are joined once it is done). */
static void spin_starved_then_alone(void *arg)
{
    struct starved *s = arg;
    pin_to_one_cpu();
    start_burners(s, late_burners);
    int64_t t0 = goc_now();
    while (goc_now() - t0 < 40 * GOC_MILLISECOND)
        ;
    atomic_store(&s->stop, 1);
    while (goc_now() - t0 < 300 * GOC_MILLISECOND)
        ;
}

static void spawn_starved_spinner(void *arg)
{
    struct goc_go_opts o = { .name = "watched" };
    ASSERT_OK(goc_go(queued_behind, NULL));
    ASSERT_OK(goc_go_ex(spin_starved_then_alone, arg, &o));
}

static struct hog_reports late_reports;

static int starved_spinner_main(void *arg)
{
    ASSERT_OK(goc_go(spawn_starved_spinner, arg));
    int64_t end = goc_now() + 3 * GOC_SECOND;
    while (!atomic_load(&late_reports.n) && goc_now() < end)
        goc_sleep(GOC_MILLISECOND, NULL);
    join_burners(arg, late_burners);
    return 0;
}

/*
 * A hog whose thread the kernel starved at first is reported once it
 * computes alone, counting the goroutines moved while it was starved: the
 * queue moved at the first look used to leave nothing to report.
 */
TEST(blocking, hog_starved_at_first_is_still_reported)
{
    if (test_instrumented() || !thread_stat_readable()) { /* see above */
        printf("# skipped: instrumented or emulated, or no thread times\n");
        return;
    }
    static struct starved s;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    goc_set_log_hook(capture_watched, &late_reports);
    ASSERT_OK(goc_run(starved_spinner_main, &s));
    goc_set_log_hook(NULL, NULL);
    int reports = atomic_load(&late_reports.n);
    ASSERT_EQ(reports, 1);
    if (!strstr(late_reports.last, "without blocking or yielding; 1 "))
        ASSERT_FAIL("report: %s", late_reports.last);
    test_no_leaks();
}

/* ---- readying from inside a section ------------------------------------ */

struct ready_in_section {
    goc_sem sem;
    _Atomic long got;
    _Atomic int stop;
    goc_wg wg;
    goc_chan *pairs[4];
};

static void sem_waiter(void *arg)
{
    struct ready_in_section *r = arg;
    while (goc_sem_acquire(&r->sem, 1, NULL) == 0 && !atomic_load(&r->stop))
        atomic_fetch_add(&r->got, 1);
    goc_wg_done(&r->wg);
}

struct churner {
    struct ready_in_section *r;
    int i;
};

/* Ping-pong pairs keep every P busy with hand-offs on its own queue. */
static void churn(void *arg)
{
    struct churner *c = arg;
    goc_chan *ch = c->r->pairs[c->i / 2];
    int v = 0;
    while (!atomic_load(&c->r->stop)) {
        if (c->i % 2) {
            goc_chan_send(ch, &v, NULL);
            goc_chan_recv(ch, &v, NULL);
        } else {
            goc_chan_recv(ch, &v, NULL);
            goc_chan_send(ch, &v, NULL);
        }
    }
    goc_chan_close(ch); /* frees its partner */
    goc_wg_done(&c->r->wg);
}

/*
 * Readying goroutines (a semaphore release) inside a blocking section
 * after sysmon gave the P to another M: the goroutines used to go on that
 * P's queue, which the new owner was filling too, and some were lost.
 * They now go to the global queue. Every one released must run.
 */
TEST_G(blocking, readying_inside_a_retaken_section_loses_nothing)
{
    if (test_under_valgrind()) {
        /* valgrind runs one thread at a time: the race with the P's new
         * owner cannot happen there, and the churners take seconds. */
        printf("# skipped under valgrind\n");
        return;
    }
    enum { K = 32 };
    static struct ready_in_section r;
    static struct churner ch[8];
    r = (struct ready_in_section){ .got = 0 };
    ASSERT_OK(goc_sem_init(&r.sem, INT64_MAX / 2));
    ASSERT_OK(goc_sem_try_acquire(&r.sem, INT64_MAX / 2)); /* none left */
    goc_wg_add(&r.wg, K + 8);
    for (int i = 0; i < K; i++)
        ASSERT_OK(goc_go(sem_waiter, &r));
    for (int i = 0; i < 4; i++)
        ASSERT_OK(goc_chan_new(sizeof(int), 0, &r.pairs[i]));
    for (int i = 0; i < 8; i++) {
        ch[i] = (struct churner){ &r, i };
        ASSERT_OK(goc_go(churn, &ch[i]));
    }
    int rounds = (int)test_scale(200);
    for (int round = 1; round <= rounds; round++) {
        ASSERT_OK(goc_blocking_enter());
        nanosleep(&(struct timespec){ 0, 200000 }, NULL); /* retaken */
        if (round == 1) /* its exit could not keep a pin */
            ASSERT_EQ(goc_pin(), -EBUSY);
        ASSERT_OK(goc_sem_release(&r.sem, K));
        ASSERT_OK(goc_blocking_exit());
        int64_t t0 = goc_now();
        while (atomic_load(&r.got) < (long)round * K &&
               goc_now() - t0 < 5 * GOC_SECOND)
            goc_sleep(100 * GOC_MICROSECOND, NULL);
        ASSERT_EQ(atomic_load(&r.got), (long)round * K);
    }
    atomic_store(&r.stop, 1);
    ASSERT_OK(goc_sem_release(&r.sem, K)); /* the waiters see stop */
    ASSERT_OK(goc_wg_wait(&r.wg, NULL));
    for (int i = 0; i < 4; i++)
        goc_chan_release(r.pairs[i]);
}

/* ---- the pool's size from the environment ------------------------------ */

struct pair_up {
    _Atomic int arrived;
    _Atomic int met;
    goc_wg wg;
};

/* Waits (up to 2 s) for the other call: both need a pool thread at once. */
static int meet_other(void *arg)
{
    struct pair_up *p = arg;
    atomic_fetch_add(&p->arrived, 1);
    int64_t end = goc_now() + 2 * GOC_SECOND;
    while (atomic_load(&p->arrived) < 2 && goc_now() < end)
        usleep(1000);
    if (atomic_load(&p->arrived) == 2)
        atomic_fetch_add(&p->met, 1);
    return 0;
}

static void meet_in_pool(void *arg)
{
    struct pair_up *p = arg;
    ASSERT_OK(goc_blocking(meet_other, p, NULL));
    goc_wg_done(&p->wg);
}

static int meet_main(void *arg)
{
    struct pair_up *p = arg;
    ASSERT_OK(goc_wg_add(&p->wg, 2));
    ASSERT_OK(goc_go(meet_in_pool, p));
    ASSERT_OK(goc_go(meet_in_pool, p));
    ASSERT_OK(goc_wg_wait(&p->wg, NULL));
    return 0;
}

static char pool_log[1024];

static void pool_log_hook(const char *msg, void *arg)
{
    (void)arg;
    snprintf(pool_log, sizeof(pool_log), "%s", msg);
}

TEST(blocking, malformed_pool_size_env_keeps_the_default_and_says_so)
{
    /* atoi read "1e3" as a pool of one thread. */
    ASSERT_OK(setenv("GOC_BLOCKING_THREADS", "1e3", 1));
    goc_set_log_hook(pool_log_hook, NULL);
    static struct pair_up p = { .wg = GOC_WG_INIT };
    ASSERT_OK(goc_run(meet_main, &p));
    goc_set_log_hook(NULL, NULL);
    int met = atomic_load(&p.met);
    ASSERT_EQ(met, 2);
    ASSERT(strstr(pool_log, "GOC_BLOCKING_THREADS=\"1e3\" ignored") != NULL);
    unsetenv("GOC_BLOCKING_THREADS");
    test_no_leaks();
}

/* A log hook that runs blocking work of its own for each report, set
 * before the blocking pool starts with a malformed size to report. */
static _Atomic int pool_hook_calls;
static int pool_hook_result;
static char pool_hook_msg[512];

static int pool_hook_work(void *arg)
{
    (void)arg;
    return 7;
}

static void pool_hook(const char *msg, void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&pool_hook_calls, 1) != 0)
        return;
    snprintf(pool_hook_msg, sizeof(pool_hook_msg), "%s", msg);
    pool_hook_result = goc_blocking(pool_hook_work, NULL, NULL);
}

static int pool_hook_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(goc_blocking(pool_hook_work, NULL, NULL), 7);
    return 0;
}

static void pool_hook_child(void)
{
    ASSERT_OK(setenv("GOC_BLOCKING_THREADS", "abc", 1));
    goc_set_log_hook(pool_hook, NULL);
    alarm(20); /* a pool start that waits on itself is killed */
    ASSERT_OK(goc_run(pool_hook_main, NULL));
    ASSERT(strstr(pool_hook_msg, "GOC_BLOCKING_THREADS=\"abc\" ignored") !=
           NULL);
    ASSERT_EQ(pool_hook_result, 7);
    fprintf(stderr, "the hook got the report and ran its work\n");
}

TEST(blocking, pool_report_reaches_a_log_hook_that_calls_goc_blocking)
{
    test_expect_exit(pool_hook_child, 0,
                     "the hook got the report and ran its work");
}

/* ---- the hook of a hog report ------------------------------------------ */

static goc_chan *hook_ch;
static _Atomic int hog_got_past;

/* A hook that hands reports to a logging goroutine without blocking. */
static void hand_to_logger(const char *msg, void *arg)
{
    (void)arg;
    int one = 1;
    if (strstr(msg, "\"watched\""))
        (void)goc_chan_try_send(hook_ch, &one);
}

static void hog_then_receive(void *arg)
{
    (void)arg;
    int64_t end = goc_now() + 100 * GOC_MILLISECOND;
    while (goc_now() < end)
        ; /* a hog, reported as it parks below */
    int v = 0;
    ASSERT_EQ(goc_chan_recv(hook_ch, &v, NULL), 1);
    atomic_store(&hog_got_past, 1);
}

static void spawn_hog_receiver(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .name = "watched" };
    ASSERT_OK(goc_go(queued_behind, NULL));
    ASSERT_OK(goc_go_ex(hog_then_receive, NULL, &o));
}

static int hog_receiver_main(void *arg)
{
    (void)arg;
    ASSERT_OK(goc_go(spawn_hog_receiver, NULL));
    while (!atomic_load(&hog_got_past))
        goc_sleep(GOC_MILLISECOND, NULL);
    return 0;
}

static void *run_hog_receiver(void *arg)
{
    (void)arg;
    goc_run(hog_receiver_main, NULL);
    return NULL;
}

/*
 * The report of a hog ran the log hook as the hog parked, with the lock
 * of the wait it parked in still held: a hook sending (without blocking)
 * on the channel the hog parks on waited on its own thread, for ever.
 * The report is logged once the park's commit has run.
 */
TEST(blocking, hog_report_hook_may_use_the_channel_the_hog_parks_on)
{
    if (test_under_valgrind()) {
        printf("# skipped under valgrind\n"); /* nothing is a hog there */
        return;
    }
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_chan_new(sizeof(int), 4, &hook_ch));
    goc_set_log_hook(hand_to_logger, NULL);
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, run_hog_receiver, NULL));
    int64_t end = goc_now() + 5 * GOC_SECOND;
    while (!atomic_load(&hog_got_past) && goc_now() < end)
        usleep(1000);
    if (!atomic_load(&hog_got_past))
        ASSERT_FAIL("%s", "the hog never got past its park");
    test_join(t, NULL);
    goc_set_log_hook(NULL, NULL);
    goc_chan_release(hook_ch);
}

static void sleep_in_a_pinned_marked_section(void *arg)
{
    (void)arg;
    ASSERT_OK(goc_pin());
    ASSERT_OK(goc_blocking_enter());
    struct timespec ts = { 0, 300 * 1000 * 1000 };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    ASSERT_OK(goc_blocking_exit());
    ASSERT_OK(goc_unpin());
}

static void spawn_pinned_sleeper(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .name = "watched" };
    ASSERT_OK(goc_go(queued_behind, NULL));
    ASSERT_OK(goc_go_ex(sleep_in_a_pinned_marked_section, NULL, &o));
}

static int pinned_sleeper_main(void *arg)
{
    (void)arg;
    ASSERT_OK(goc_go(spawn_pinned_sleeper, NULL));
    goc_sleep(600 * GOC_MILLISECOND, NULL); /* past the sleeper's end */
    return 0;
}

/* A pinned goroutine keeps its P in a marked section, which sysmon then
 * took for an unmarked system call, reported with the advice to mark it. */
TEST(blocking, pinned_goroutines_marked_section_is_not_reported)
{
    static struct hog_reports r;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    goc_set_log_hook(capture_watched, &r);
    ASSERT_OK(goc_run(pinned_sleeper_main, NULL));
    goc_set_log_hook(NULL, NULL);
    if (atomic_load(&r.n) != 0)
        ASSERT_FAIL("reported: %s", r.last);
    test_no_leaks();
}

/* A pinned goroutine's section was left out of the count of sections
 * open (in the statistics, and for the deadlock report's judgement). */
TEST_G(blocking, pinned_section_is_counted_as_open)
{
    struct goc_stats st;
    ASSERT_OK(goc_pin());
    ASSERT_OK(goc_blocking_enter());
    goc_stats_read(&st, 0);
    ASSERT_OK(goc_blocking_exit());
    ASSERT_OK(goc_unpin());
    ASSERT_EQ(st.blocking_sections, 1);
    goc_stats_read(&st, 0);
    ASSERT_EQ(st.blocking_sections, 0);
}
