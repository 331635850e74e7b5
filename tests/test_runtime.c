/* SPDX-License-Identifier: MIT */
/* Tests of goroutines and the scheduler. */
#include "test.h"
#include "../src/internal/alloc.h"
#include "../src/runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <fenv.h>
#include <limits.h>
#include <signal.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

static void wg_done_fn(void *arg)
{
    goc_wg_done(arg);
}

TEST_G(runtime, spawn_join_million)
{
    int64_t n = test_scale(1000000);
    goc_wg wg = GOC_WG_INIT;
    ASSERT_OK(goc_wg_add(&wg, n));
    for (int64_t i = 0; i < n; i++)
        ASSERT_OK(goc_go(wg_done_fn, &wg));
    ASSERT_OK(goc_wg_wait(&wg, NULL));
}

/* ---- work spreads across Ps ------------------------------------------- */

#define MAX_PS 64

struct spread {
    goc_wg wg;
    _Atomic int64_t per_p[MAX_PS];
};

static void spin_on_p(void *arg)
{
    struct spread *s = arg;
    /* Enough work per goroutine that an idle P has time to steal. */
    uint64_t x = 0;
    for (int i = 0; i < 20000; i++) {
        x += (uint64_t)i;
        __asm__ volatile("" : "+r"(x));
    }
    int p = goc_p_index();
    ASSERT(p >= 0 && p < MAX_PS);
    atomic_fetch_add(&s->per_p[p], 1);
    goc_wg_done(&s->wg);
}

static void spread_main(void)
{
    static struct spread s;
    int64_t n = test_scale(20000);
    ASSERT_OK(goc_wg_add(&s.wg, n));
    for (int64_t i = 0; i < n; i++)
        ASSERT_OK(goc_go(spin_on_p, &s));
    ASSERT_OK(goc_wg_wait(&s.wg, NULL));
    int64_t total = 0;
    int used = 0;
    for (int p = 0; p < goc_maxprocs(); p++) {
        fprintf(stderr, "P%d ran %" PRId64 "\n", p, atomic_load(&s.per_p[p]));
        used += atomic_load(&s.per_p[p]) > 0;
        total += atomic_load(&s.per_p[p]);
    }
    ASSERT_EQ(total, n);
    /* valgrind runs one thread at a time: some Ps may get nothing there. */
    ASSERT_GE(used, test_instrumented() ? 2 : goc_maxprocs());
}

static int spread_run(void *arg)
{
    (void)arg;
    spread_main();
    return 0;
}

TEST(runtime, spawn_spreads_across_ps)
{
    struct goc_config cfg = { .max_procs = 4 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_EQ(goc_maxprocs(), 4);
    ASSERT_OK(goc_run(spread_run, NULL));
    test_no_leaks();
}

/* ---- yield ------------------------------------------------------------- */

static int read_errno(void);

struct pingpong {
    _Atomic int turn;
    int rounds;
    goc_wg wg;
};

static void yielder(void *arg)
{
    struct pingpong *pp = arg;
    int me = goc_name()[0] - '0';
    for (int i = 0; i < pp->rounds; i++) {
        while (atomic_load(&pp->turn) != me)
            goc_yield();
        atomic_store(&pp->turn, 1 - me);
    }
    goc_wg_done(&pp->wg);
}

TEST_G(runtime, yield_interleaves)
{
    struct pingpong pp = { .rounds = (int)test_scale(100000) };
    goc_wg_add(&pp.wg, 2);
    struct goc_go_opts a = { .name = "0" }, b = { .name = "1" };
    ASSERT_OK(goc_go_ex(yielder, &pp, &a));
    ASSERT_OK(goc_go_ex(yielder, &pp, &b));
    ASSERT_OK(goc_wg_wait(&pp.wg, NULL));
}

/*
 * A yield queues the goroutine before it has switched out, so an idle P
 * may take it in that window and must wait for the switch to save it.
 * Two yielders per P, over more Ps than cores, each sleeping now and then
 * so that Ps run dry and steal: each checks its frame and its errno.
 */
struct yield_steal {
    _Atomic int moves;
    int rounds;
    goc_wg wg;
};

static void yield_stolen(void *arg)
{
    struct yield_steal *s = arg;
    volatile uint64_t frame[8];
    uint64_t seed = (uint64_t)goc_id() * 0x9e3779b97f4a7c15u;
    for (int k = 0; k < 8; k++)
        frame[k] = seed + (uint64_t)k;
    unsigned long t = test_thread_self();
    for (int i = 0; i < s->rounds; i++) {
        errno = 1000 + (int)goc_id();
        /* Now and then a P runs dry and goes stealing. */
        if (i % 64 == 63)
            goc_sleep(10 * GOC_MICROSECOND, NULL);
        else
            goc_yield();
        ASSERT_EQ(read_errno(), 1000 + (int)goc_id());
        for (int k = 0; k < 8; k++)
            ASSERT_EQ(frame[k], seed + (uint64_t)k);
        if (t != test_thread_self()) {
            atomic_fetch_add_explicit(&s->moves, 1, memory_order_relaxed);
            t = test_thread_self();
        }
    }
    goc_wg_done(&s->wg);
}

static int yield_steal_main(void *arg)
{
    struct yield_steal *s = arg;
    goc_wg_add(&s->wg, 8);
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_go(yield_stolen, s));
    ASSERT_OK(goc_wg_wait(&s->wg, NULL));
    return 0;
}

TEST(runtime, yield_stolen_while_switching_out_resumes_intact)
{
    static struct yield_steal s;
    s.rounds = (int)test_scale(150000);
    struct goc_config cfg = { .max_procs = 4 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(yield_steal_main, &s));
    fprintf(stderr, "%d resumptions on another thread\n",
            atomic_load(&s.moves));
    ASSERT_GT(atomic_load(&s.moves), 0);
    test_no_leaks();
}

/* ---- identity ---------------------------------------------------------- */

struct ids {
    int64_t *ids;
    goc_wg wg;
    _Atomic int next;
};

static void record_id(void *arg)
{
    struct ids *s = arg;
    s->ids[atomic_fetch_add(&s->next, 1)] = goc_id();
    goc_wg_done(&s->wg);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

TEST_G(runtime, ids_unique_and_increasing)
{
    int n = (int)test_scale(10000);
    struct ids s = { .ids = calloc((size_t)n, sizeof(int64_t)) };
    int64_t me = goc_id();
    ASSERT_GT(me, 0);
    goc_wg_add(&s.wg, n);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(record_id, &s));
    goc_wg_wait(&s.wg, NULL);
    qsort(s.ids, (size_t)n, sizeof(int64_t), cmp_i64);
    for (int i = 0; i < n; i++) {
        ASSERT_GT(s.ids[i], me);
        if (i > 0)
            ASSERT_GT(s.ids[i], s.ids[i - 1]);
    }
    free(s.ids);
}

static void nop(void *arg)
{
    (void)arg;
}

TEST_G(runtime, go_rejects_bad_input)
{
    int64_t before = goc_num_goroutine();
    ASSERT_EQ(goc_go(NULL, NULL), -EINVAL);
    struct goc_go_opts small = { .stack_size = GOC_STACK_MIN - 1 };
    ASSERT_EQ(goc_go_ex(nop, NULL, &small), -EINVAL);
    struct goc_go_opts huge = { .stack_size = (size_t)GOC_STACK_MAX + 1 };
    ASSERT_EQ(goc_go_ex(nop, NULL, &huge), -EINVAL);
    ASSERT_EQ(goc_num_goroutine(), before);
    ASSERT_EQ(goc_id() > 0, 1);
}

struct named {
    char name[40];
    goc_wg wg;
};

static void copy_name(void *arg)
{
    struct named *n = arg;
    strcpy(n->name, goc_name());
    goc_wg_done(&n->wg);
}

TEST_G(runtime, go_name_and_stack_option)
{
    struct named n = { .wg = GOC_WG_INIT };
    goc_wg_add(&n.wg, 1);
    struct goc_go_opts o = {
        .stack_size = 64 * 1024,
        .name = "a-name-much-longer-than-thirty-one-bytes",
    };
    ASSERT_OK(goc_go_ex(copy_name, &n, &o));
    goc_wg_wait(&n.wg, NULL);
    ASSERT_EQ(strlen(n.name), 31);
    ASSERT_EQ(strncmp(n.name, o.name, 31), 0);
    ASSERT_EQ(strcmp(goc_name(), "main"), 0);
}

/* Uses about 1 KiB of stack per level. */
static __attribute__((noinline)) int64_t recurse(int depth)
{
    volatile char pad[1000];
    pad[0] = (char)depth;
    if (depth == 0)
        return pad[0];
    return recurse(depth - 1) + pad[0];
}

struct deep {
    int depth;
    int64_t result;
    goc_wg wg;
};

static void deep_fn(void *arg)
{
    struct deep *d = arg;
    d->result = recurse(d->depth);
    goc_wg_done(&d->wg);
}

TEST_G(runtime, deep_recursion_in_big_stack)
{
    /* 4 MiB of frames in an 8 MiB stack: the option really sizes it. */
    struct deep d = { .depth = 4000, .wg = GOC_WG_INIT };
    goc_wg_add(&d.wg, 1);
    struct goc_go_opts o = { .stack_size = 8u << 20 };
    ASSERT_OK(goc_go_ex(deep_fn, &d, &o));
    goc_wg_wait(&d.wg, NULL);
    int64_t want = 0;
    for (int i = 1; i <= 4000; i++)
        want += (char)i;
    ASSERT_EQ(d.result, want);
}

/* ---- plain threads ----------------------------------------------------- */

TEST(runtime, lazy_start_from_plain_thread)
{
    /* No goc_run: the first goc call starts the runtime. */
    ASSERT_EQ(goc_num_goroutine(), 0);
    ASSERT_EQ(goc_id(), 0);
    ASSERT_EQ(goc_p_index(), -1);
    ASSERT(goc_name() == NULL);
    goc_wg wg = GOC_WG_INIT;
    ASSERT_OK(goc_wg_add(&wg, 100));
    for (int i = 0; i < 100; i++)
        ASSERT_OK(goc_go(wg_done_fn, &wg));
    ASSERT_OK(goc_wg_wait(&wg, NULL));
    ASSERT_EQ(goc_pin(), -EPERM);
    ASSERT_EQ(goc_unpin(), -EPERM);
    goc_yield(); /* a plain thread just yields its CPU */
    test_no_leaks();
}

static void *spawner_thread(void *arg)
{
    for (int i = 0; i < 1000; i++)
        ASSERT_OK(goc_go(wg_done_fn, arg));
    return NULL;
}

TEST(runtime, spawn_from_many_threads)
{
    goc_wg wg = GOC_WG_INIT;
    pthread_t t[8];
    ASSERT_OK(goc_wg_add(&wg, 8 * 1000));
    for (int i = 0; i < 8; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, spawner_thread, &wg));
    for (int i = 0; i < 8; i++)
        test_join(t[i], NULL);
    ASSERT_OK(goc_wg_wait(&wg, NULL));
    test_no_leaks();
}

static int nested_main(void *arg)
{
    (void)arg;
    return 7;
}

static int run_twice_main(void *arg)
{
    (void)arg;
    ASSERT_EQ(goc_run(nested_main, NULL), -EDEADLK);
    return 42;
}

TEST(runtime, run_from_goroutine_fails)
{
    ASSERT_EQ(goc_run(NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_run(run_twice_main, NULL), 42);
    /* The runtime stays up: a second goc_run works. */
    ASSERT_EQ(goc_run(nested_main, NULL), 7);
    test_no_leaks();
}

TEST(runtime, init_after_start_is_busy)
{
    ASSERT_EQ(goc_run(nested_main, NULL), 7);
    struct goc_config cfg = { .max_procs = 3 };
    ASSERT_EQ(goc_init(&cfg), -EBUSY);
    ASSERT_NE(goc_maxprocs(), -EBUSY);
}

/* A start that failed is not retried: goc_init says why, not "busy". */
TEST(runtime, init_after_a_failed_start_reports_that_failure)
{
    goc__fault_after(0);
    int err = goc_maxprocs();
    goc__fault_after(-1);
    ASSERT_EQ(err, -ENOMEM);
    ASSERT_EQ(goc_init(NULL), -ENOMEM);
}

TEST(runtime, init_rejects_bad_config)
{
    struct goc_config bad = { .max_procs = -1 };
    ASSERT_EQ(goc_init(&bad), -EINVAL);
    struct goc_config small = { .stack_size = 1024 };
    ASSERT_EQ(goc_init(&small), -EINVAL);
    /* Nothing started: a good config is still accepted. */
    struct goc_config good = { .max_procs = 3, .stack_size = 100000 };
    ASSERT_OK(goc_init(&good));
    ASSERT_EQ(goc_maxprocs(), 3);
}

TEST(runtime, init_rejects_max_procs_above_the_cap)
{
    struct goc_config many = { .max_procs = GOC_MAXPROCS_MAX + 1 };
    ASSERT_EQ(goc_init(&many), -EINVAL);
    struct goc_config huge = { .max_procs = INT_MAX };
    ASSERT_EQ(goc_init(&huge), -EINVAL);
    /* Nothing started: a good config is still accepted. */
    struct goc_config good = { .max_procs = 2 };
    ASSERT_OK(goc_init(&good));
    ASSERT_EQ(goc_maxprocs(), 2);
}

/* The runtime's reports, kept for the test to read. */
static char env_log[4096];
static size_t env_log_len;

static void env_log_hook(const char *msg, void *arg)
{
    (void)arg;
    int n = snprintf(env_log + env_log_len, sizeof(env_log) - env_log_len,
                     "%s\n", msg);
    if (n > 0 && (size_t)n < sizeof(env_log) - env_log_len)
        env_log_len += (size_t)n;
}

/* goc__config_procs() with GOC_MAXPROCS set to val. */
static int procs_with(const char *val)
{
    ASSERT_OK(setenv("GOC_MAXPROCS", val, 1));
    return goc__config_procs(0, NULL);
}

TEST(runtime, maxprocs_env_is_digits_only_and_a_refusal_is_reported)
{
    unsetenv("GOC_MAXPROCS");
    int dflt = goc__config_procs(0, NULL);
    goc_set_log_hook(env_log_hook, NULL);
    ASSERT_EQ(procs_with("7"), 7);
    ASSERT_EQ(procs_with("1024"), 1024);
    ASSERT_EQ(env_log_len, 0); /* good values say nothing */
    static const char *const bad[] = {
        "2000", "1025", "-3",
        "3x",   "abc",  " 3",
        "+3",   "0",    "99999999999999999999",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        env_log_len = 0;
        if (procs_with(bad[i]) != dflt)
            ASSERT_FAIL("GOC_MAXPROCS=%s: %d, want %d", bad[i],
                        goc__config_procs(0, NULL), dflt);
        char want[128];
        snprintf(want, sizeof(want), "GOC_MAXPROCS=\"%s\" ignored", bad[i]);
        ASSERT(strstr(env_log, want) != NULL);
        snprintf(want, sizeof(want), "using %d\n", dflt);
        ASSERT(strstr(env_log, want) != NULL);
    }
    goc_set_log_hook(NULL, NULL);
    unsetenv("GOC_MAXPROCS");
}

TEST(runtime, stack_size_env_takes_g_and_reports_a_refusal)
{
    goc_set_log_hook(env_log_hook, NULL);
    ASSERT_OK(setenv("GOC_STACK_SIZE", "1g", 1));
    ASSERT_EQ(goc__config_stack(0, NULL), 1 << 30);
    ASSERT_OK(setenv("GOC_STACK_SIZE", "1G", 1));
    ASSERT_EQ(goc__config_stack(0, NULL), 1 << 30);
    ASSERT_EQ(env_log_len, 0);
    static const char *const bad[] = { "2g", "abc", "8k", " 256k", "+256k" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        env_log_len = 0;
        ASSERT_OK(setenv("GOC_STACK_SIZE", bad[i], 1));
        ASSERT_EQ(goc__config_stack(0, NULL), GOC_STACK_DEFAULT);
        char want[128];
        snprintf(want, sizeof(want), "GOC_STACK_SIZE=\"%s\" ignored", bad[i]);
        ASSERT(strstr(env_log, want) != NULL);
    }
    goc_set_log_hook(NULL, NULL);
    unsetenv("GOC_STACK_SIZE");
}

TEST(runtime, maxprocs_from_env)
{
    setenv("GOC_MAXPROCS", "5", 1);
    ASSERT_EQ(goc_maxprocs(), 5);
}

/* ---- pinning ----------------------------------------------------------- */

struct pinned {
    pthread_t thread;
    int moved;
    goc_wg wg;
};

static void pinned_fn(void *arg)
{
    struct pinned *s = arg;
    ASSERT_OK(goc_pin());
    ASSERT_OK(goc_pin()); /* nests */
    unsigned long self = test_thread_self();
    for (int i = 0; i < 200; i++) {
        if (i % 2)
            goc_yield();
        else
            goc_sleep(100 * GOC_MICROSECOND, NULL);
        if (self != test_thread_self())
            s->moved++;
    }
    ASSERT_OK(goc_unpin());
    ASSERT_OK(goc_unpin());
    goc_wg_done(&s->wg);
}

static void busy_fn(void *arg)
{
    for (int i = 0; i < 2000; i++) {
        goc_yield();
        if (i % 100 == 0)
            goc_sleep(50 * GOC_MICROSECOND, NULL);
    }
    goc_wg_done(arg);
}

/* A pinned goroutine's section is marked like any other: enter and exit
 * pair up, and unpinning waits for the exit. */
TEST_G(runtime, pinned_blocking_sections_pair_up)
{
    ASSERT_OK(goc_pin());
    ASSERT_OK(goc_blocking_enter());
    ASSERT_EQ(goc_blocking_enter(), -EINVAL); /* one is open */
    ASSERT_EQ(goc_unpin(), -EBUSY);
    ASSERT_EQ(goc_pin(), -EBUSY);
    ASSERT_OK(goc_blocking_exit());
    ASSERT_EQ(goc_blocking_exit(), -EINVAL); /* none is open */
    ASSERT_OK(goc_unpin());
    ASSERT_OK(goc_blocking_enter());
    ASSERT_OK(goc_blocking_exit());
}

TEST_G(runtime, pin_keeps_thread)
{
    struct pinned s = { .wg = GOC_WG_INIT };
    goc_wg busy = GOC_WG_INIT;
    goc_wg_add(&s.wg, 1);
    goc_wg_add(&busy, 8);
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_go(busy_fn, &busy));
    ASSERT_OK(goc_go(pinned_fn, &s));
    goc_wg_wait(&s.wg, NULL);
    goc_wg_wait(&busy, NULL);
    ASSERT_EQ(s.moved, 0);
}

struct lone_pinned {
    uint64_t switches;
    goc_wg wg;
};

/* A pinned goroutine yields alone in a loop, counting switches. */
static void pinned_yielder(void *arg)
{
    struct lone_pinned *s = arg;
    ASSERT_OK(goc_pin());
    struct goc_stats st0, st1;
    ASSERT_OK(goc_stats_read(&st0, GOC_STATS_SCHED));
    for (int i = 0; i < 6100; i++)
        goc_yield();
    ASSERT_OK(goc_stats_read(&st1, GOC_STATS_SCHED));
    s->switches = st1.switches_total - st0.switches_total;
    ASSERT_OK(goc_unpin());
    goc_wg_done(&s->wg);
}

/*
 * A pinned goroutine with nothing else to run carries on at a yield, as
 * an unpinned one does, and passes through the scheduler only every 61st
 * time. It went through it at every yield, handing its P to another
 * thread and back (70 times slower).
 */
TEST_G(runtime, pinned_goroutine_yielding_alone_carries_on)
{
    struct lone_pinned s = { .wg = GOC_WG_INIT };
    goc_wg_add(&s.wg, 1);
    ASSERT_OK(goc_go(pinned_yielder, &s));
    goc_wg_wait(&s.wg, NULL);
    fprintf(stderr, "%llu switches for 6100 yields\n",
            (unsigned long long)s.switches);
    ASSERT_LT(s.switches, 6100 / 8);
}

TEST_G(runtime, unpin_without_pin_is_misuse)
{
    ASSERT_EQ(goc_unpin(), GOC_EMISUSE);
    ASSERT_OK(goc_pin());
    ASSERT_OK(goc_unpin());
    ASSERT_EQ(goc_unpin(), GOC_EMISUSE);
}

/* ---- errno ------------------------------------------------------------- */

/* Reads errno through a call, so no cached address is reused. */
static __attribute__((noinline)) int read_errno(void)
{
    return errno;
}

struct errno_state {
    _Atomic int moves;
    goc_wg wg;
};

static void errno_fn(void *arg)
{
    struct errno_state *s = arg;
    int mine = 1000 + (int)goc_id();
    unsigned long t = test_thread_self();
    int64_t end = goc_now() + 2 * GOC_SECOND;
    /* Until this goroutine has resumed on another thread a few times. */
    for (int i = 0, moved = 0; moved < 3 && goc_now() < end; i++) {
        errno = mine;
        if (i % 3)
            goc_yield();
        else
            goc_sleep(20 * GOC_MICROSECOND, NULL);
        ASSERT_EQ(read_errno(), mine);
        if (t != test_thread_self()) {
            moved++;
            atomic_fetch_add(&s->moves, 1);
        }
        t = test_thread_self();
    }
    goc_wg_done(&s->wg);
}

static int errno_main(void *arg)
{
    struct errno_state *s = arg;
    goc_wg_add(&s->wg, 16);
    for (int i = 0; i < 16; i++)
        ASSERT_OK(goc_go(errno_fn, s));
    goc_wg_wait(&s->wg, NULL);
    return 0;
}

TEST(runtime, errno_survives_thread_change)
{
    static struct errno_state s;
    struct goc_config cfg = { .max_procs = 4 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(errno_main, &s));
    fprintf(stderr, "%d resumptions on another thread\n",
            atomic_load(&s.moves));
    ASSERT_GT(atomic_load(&s.moves), 0); /* the test did exercise a move */
    test_no_leaks();
}

/* ---- counts ------------------------------------------------------------ */

struct gate {
    goc_wg started, release, done;
};

static void gated(void *arg)
{
    struct gate *g = arg;
    goc_wg_done(&g->started);
    goc_wg_wait(&g->release, NULL);
    goc_wg_done(&g->done);
}

TEST_G(runtime, num_goroutine_counts)
{
    ASSERT_EQ(goc_num_goroutine(), 1);
    struct gate g = { GOC_WG_INIT, GOC_WG_INIT, GOC_WG_INIT };
    goc_wg_add(&g.started, 50);
    goc_wg_add(&g.release, 1);
    goc_wg_add(&g.done, 50);
    for (int i = 0; i < 50; i++)
        ASSERT_OK(goc_go(gated, &g));
    goc_wg_wait(&g.started, NULL);
    ASSERT_EQ(goc_num_goroutine(), 51);
    goc_wg_done(&g.release);
    goc_wg_wait(&g.done, NULL);
}

/* ---- allocation failure ------------------------------------------------ */

TEST_G(runtime, spawn_alloc_failure_is_clean)
{
    /*
     * A 4 MiB stack class nobody used yet: the spawn has to map a slab.
     * Fail the Nth allocation for every N until the spawn succeeds.
     */
    struct goc_go_opts o = { .stack_size = 4u << 20 };
    goc_wg wg = GOC_WG_INIT;
    int64_t before = goc_num_goroutine();
    int64_t stacks = goc__stack_mapped_count();
    int failures = 0;
    for (int64_t n = 0;; n++) {
        goc_wg_add(&wg, 1);
        goc__fault_after(n);
        int rc = goc_go_ex(wg_done_fn, &wg, &o);
        goc__fault_after(-1);
        if (rc == 0)
            break;
        goc_wg_done(&wg); /* nothing started: undo */
        ASSERT_EQ(rc, -ENOMEM);
        ASSERT_EQ(goc_num_goroutine(), before);
        ASSERT_EQ(goc__stack_mapped_count(), stacks);
        failures++;
    }
    ASSERT_GT(failures, 0);
    goc_wg_wait(&wg, NULL);
}

/* ---- stack overflow ---------------------------------------------------- */

static volatile int overflow_limit = 1 << 30;

static __attribute__((noinline)) int overflow(int n)
{
    volatile char big[512];
    big[0] = (char)n;
    if (n == overflow_limit)
        return big[0];
    return overflow(n + 1) + big[0];
}

/* Global, so that dladdr can name it in the report. */
void test_overflow_entry(void *arg);
void test_overflow_entry(void *arg)
{
    (void)arg;
    overflow(0);
}

/* A log hook that starts a goroutine for each report (to ship it, say),
 * set before the runtime starts with malformed settings to report. */
static char start_hook_log[2048];
static size_t start_hook_len;
static int start_hook_go_err = 1;

static void start_hook_noop(void *arg)
{
    (void)arg;
}

static void start_hook(const char *msg, void *arg)
{
    (void)arg;
    int n = snprintf(start_hook_log + start_hook_len,
                     sizeof(start_hook_log) - start_hook_len, "%s\n", msg);
    if (n > 0 && (size_t)n < sizeof(start_hook_log) - start_hook_len)
        start_hook_len += (size_t)n;
    start_hook_go_err = goc_go(start_hook_noop, NULL);
}

static void start_with_hook_setup(void)
{
    ASSERT_OK(setenv("GOC_MAXPROCS", "4x", 1));
    ASSERT_OK(setenv("GOC_STACK_SIZE", "12q", 1));
    goc_set_log_hook(start_hook, NULL);
    alarm(20); /* a start that waits on itself is killed */
}

static void start_with_hook_check(void)
{
    ASSERT(strstr(start_hook_log, "GOC_MAXPROCS=\"4x\" ignored") != NULL);
    ASSERT(strstr(start_hook_log, "GOC_STACK_SIZE=\"12q\" ignored") != NULL);
    ASSERT_OK(start_hook_go_err);
    fprintf(stderr, "started; the hook got the reports\n");
}

static void init_with_a_starting_hook_child(void)
{
    start_with_hook_setup();
    ASSERT_OK(goc_init(NULL));
    start_with_hook_check();
}

static void lazy_start_with_a_starting_hook_child(void)
{
    start_with_hook_setup();
    ASSERT_OK(goc_go(start_hook_noop, NULL));
    start_with_hook_check();
}

TEST(runtime, start_reports_reach_a_log_hook_that_starts_goroutines)
{
    test_expect_exit(init_with_a_starting_hook_child, 0,
                     "started; the hook got the reports");
    test_expect_exit(lazy_start_with_a_starting_hook_child, 0,
                     "started; the hook got the reports");
}

static int overflow_main(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .stack_size = 64 * 1024, .name = "deep-diver" };
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 1);
    goc_go_ex(test_overflow_entry, NULL, &o);
    goc_wg_wait(&wg, NULL); /* never released: the process dies first */
    return 0;
}

static void overflow_child(void)
{
    goc_run(overflow_main, NULL);
}

TEST(runtime, stack_overflow_is_reported)
{
    test_expect_exit(overflow_child, 2, "stack overflow");
    test_expect_exit(overflow_child, 2, "\"deep-diver\"");
    test_expect_exit(overflow_child, 2, "test_overflow_entry");
}

/*
 * A canary-guarded stack (no guard page: the kernel refused, or the
 * mapping budget ran out) found broken at a switch: the goroutine's stack
 * is used up then, with nothing under it. The report ran on it anyway,
 * and faulted (reported as an unrelated SIGSEGV, or writing over another
 * goroutine's stack). Here the goroutine goes down to 2 KiB above its
 * stack's end (more under a sanitizer), marks its guard a canary and
 * breaks it, as an overflow would, then parks.
 */
#if defined(GOC_ASAN) || defined(GOC_TSAN)
#define PARK_MARGIN (16 * 1024) /* the way to the switch takes more */
#else
#define PARK_MARGIN 2048
#endif

static __attribute__((noinline)) void dive_then_park(struct goc__g *g)
{
    volatile char pad[256];
    pad[0] = 1;
    if ((uintptr_t)pad - (uintptr_t)g->stack_lo > PARK_MARGIN) {
        dive_then_park(g);
    } else {
        g->guard = GOC__GUARD_CANARY;
        *(volatile uint64_t *)g->stack_lo ^= 1;
        goc_sleep(GOC_MILLISECOND, NULL); /* the switch-out finds it */
    }
    pad[1] = pad[0];
}

static void canary_breaker(void *arg)
{
    (void)arg;
    dive_then_park(goc__g_current());
}

static int canary_main(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .stack_size = 64 * 1024, .name = "no-guard" };
    goc_go_ex(canary_breaker, NULL, &o);
    goc_sleep(10 * GOC_SECOND, NULL); /* the process ends first */
    return 0;
}

static void canary_child(void)
{
    goc_run(canary_main, NULL);
}

TEST(runtime, broken_canary_is_reported_on_a_stack_of_its_own)
{
    test_expect_exit(canary_child, 2, "(stack canary overwritten)");
    test_expect_exit(canary_child, 2, "\"no-guard\"");
}

/*
 * An M whose signal stack could not be had ran goroutines all the same:
 * a stack overflow there killed the process with no report. The signal
 * stack is now made with the M, which is not made without it. Here the
 * next allocations fail while sysmon hands the only P, with an
 * overflowing goroutine queued on it, to a new M.
 */
static int no_altstack_main(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .stack_size = 64 * 1024, .name = "deep-diver" };
    goc_go_ex(test_overflow_entry, NULL, &o); /* queued on our P */
    goc__fault_after(1); /* a new M's record, then nothing */
    ASSERT_OK(goc_blocking_enter());
    usleep(300 * 1000); /* sysmon hands our P over */
    goc__fault_after(-1);
    ASSERT_OK(goc_blocking_exit());
    goc_sleep(10 * GOC_SECOND, NULL); /* the process ends first */
    return 0;
}

static void no_altstack_child(void)
{
    struct goc_config c = { .max_procs = 1 };
    goc_init(&c);
    goc_run(no_altstack_main, NULL);
}

TEST(runtime, overflow_is_reported_on_every_m_even_short_of_memory)
{
    test_expect_exit(no_altstack_child, 2, "fatal error: stack overflow");
}

static _Atomic int crashers_ready;

static void crash_together(void)
{
    atomic_fetch_add(&crashers_ready, 1);
    while (atomic_load(&crashers_ready) < 2)
        ;
}

static void panics_now(void *arg)
{
    (void)arg;
    crash_together();
    goc_panic(-EIO, "goroutine A panics");
}

static void faults_now(void *arg)
{
    crash_together();
    *(volatile int *)arg = 1; /* NULL */
}

static int crash_race_main(void *arg)
{
    (void)arg;
    goc_go(panics_now, NULL);
    goc_go(faults_now, NULL);
    goc_sleep(10 * GOC_SECOND, NULL); /* the process ends first */
    return 0;
}

static void crash_race_child(void)
{
    struct goc_config c = { .max_procs = 2 };
    goc_init(&c);
    goc_run(crash_race_main, NULL);
}

/* A fault's report did not wait for a panic's (or an overflow's) already
 * under way: both came out, interleaved, and the fault's exit could cut
 * the other short. One crash reports; the other waits for the exit. */
TEST(runtime, one_report_for_a_panic_and_a_fault_at_once)
{
    if (test_under_valgrind()) {
        /* It reports the fault itself, and runs one thread at a time. */
        printf("# skipped under valgrind\n");
        return;
    }
    for (int i = 0; i < 20; i++) {
        char buf[8192];
        int status = test_run_captured(crash_race_child, buf, sizeof(buf));
        ASSERT(WIFEXITED(status));
        ASSERT_EQ(WEXITSTATUS(status), 2);
        bool panic = strstr(buf, "panic: goroutine A panics") != NULL;
        bool fault = strstr(buf, "unexpected signal") != NULL;
        if (panic == fault)
            ASSERT_FAIL("round %d: %s", i, panic ? "both reports" : "none");
    }
}

/* A handler of the program's, installed before goc's, that recovers from
 * faults on its own page (as a JVM's or libsigsegv's does). */
static char *user_fault_page;

static void user_fault_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)uctx;
    char *a = si->si_addr;
    if (a >= user_fault_page && a < user_fault_page + 4096) {
        mprotect(user_fault_page, 4096, PROT_READ | PROT_WRITE);
        return; /* the store is retried and succeeds */
    }
    static const char msg[] = "the program's handler got goc's fault\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    _exit(42);
}

static void overflow_after_recovered_fault_child(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = user_fault_handler;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGSEGV, &sa, NULL));
    user_fault_page =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(user_fault_page != MAP_FAILED);
    ASSERT_OK(goc_init(NULL));
    /* A fault on a plain thread: the program's handler recovers it. */
    *(volatile char *)user_fault_page = 1;
    ASSERT_EQ(user_fault_page[0], 1);
    /* goc's handler must still be there for a goroutine's. */
    goc_run(overflow_main, NULL);
}

TEST(runtime, stack_overflow_is_reported_after_a_recovered_foreign_fault)
{
    test_expect_exit(overflow_after_recovered_fault_child, 2,
                     "fatal error: stack overflow");
}

/* A handler of the program's installed with SA_NODEFER, that probes
 * memory itself and relies on its own nested fault being delivered to it
 * (the kernel does so for SA_NODEFER): a fault on page 1 touches page 2. */
static char *nodefer_page1, *nodefer_page2;
static volatile int nodefer_depth;

static void nodefer_handler(int sig, siginfo_t *si, void *uctx)
{
    (void)sig;
    (void)uctx;
    if ((char *)si->si_addr == nodefer_page1 && nodefer_depth == 0) {
        nodefer_depth++;
        volatile char c = *nodefer_page2; /* faults into this handler */
        (void)c;
        nodefer_depth--;
        mprotect(nodefer_page1, 4096, PROT_READ | PROT_WRITE);
    } else {
        mprotect(nodefer_page2, 4096, PROT_READ | PROT_WRITE);
    }
}

static void nodefer_nested_fault_child(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = nodefer_handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGSEGV, &sa, NULL));
    nodefer_page1 =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    nodefer_page2 =
        mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(nodefer_page1 != MAP_FAILED && nodefer_page2 != MAP_FAILED);
    ASSERT_OK(goc_init(NULL));
    *(volatile char *)nodefer_page1 = 1;
    ASSERT_EQ(nodefer_page1[0], 1);
    fprintf(stderr, "recovered from a nested fault\n");
}

TEST(runtime, foreign_nodefer_handler_gets_its_nested_fault)
{
    if (test_under_valgrind()) {
        /* Its faults are on purpose, and each is a memcheck error. */
        printf("# skipped under valgrind\n");
        return;
    }
    test_expect_exit(nodefer_nested_fault_child, 0,
                     "recovered from a nested fault");
}

/* SIGSEGV ignored by the program: one sent to it (kill -SEGV) is ignored
 * as it was before goc, and goc's handler stays for goroutine faults. */
static void ignored_sent_fault_signal_child(void)
{
    ASSERT(signal(SIGSEGV, SIG_IGN) != SIG_ERR);
    ASSERT_OK(goc_init(NULL));
    ASSERT_OK(kill(getpid(), SIGSEGV));
    fprintf(stderr, "a sent SIGSEGV was ignored\n");
    goc_run(overflow_main, NULL);
}

TEST(runtime, sent_fault_signal_stays_ignored_when_the_program_ignored_it)
{
    test_expect_exit(ignored_sent_fault_signal_child, 2,
                     "a sent SIGSEGV was ignored");
    test_expect_exit(ignored_sent_fault_signal_child, 2,
                     "fatal error: stack overflow");
}

/* ---- the log hook ------------------------------------------------------ */

static int hook_arg_a, hook_arg_b;
static _Atomic long hook_calls, hook_mismatches;
static _Atomic int hook_stop;

static void hook_a(const char *msg, void *arg)
{
    (void)msg;
    atomic_fetch_add(&hook_calls, 1);
    if (arg != &hook_arg_a)
        atomic_fetch_add(&hook_mismatches, 1);
}

static void hook_b(const char *msg, void *arg)
{
    (void)msg;
    atomic_fetch_add(&hook_calls, 1);
    if (arg != &hook_arg_b)
        atomic_fetch_add(&hook_mismatches, 1);
}

static void *hook_logger(void *arg)
{
    (void)arg;
    while (!atomic_load(&hook_stop))
        goc__log("report");
    return NULL;
}

TEST(runtime, log_hook_calls_see_the_fn_and_arg_set_together)
{
    /* Removals send reports to stderr: silence them for the test. */
    fflush(stderr);
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    ASSERT(saved >= 0 && devnull >= 0);
    goc_set_log_hook(hook_a, &hook_arg_a);
    pthread_t t[3];
    for (int i = 0; i < 3; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, hook_logger, NULL));
    ASSERT_EQ(dup2(devnull, 2), 2);
    /* 300 ms, longer (up to 5 s) until the loggers made 1000 reports. */
    int64_t start = goc_now(), end = start + 300 * GOC_MILLISECOND;
    for (long i = 0; goc_now() < end || (atomic_load(&hook_calls) < 1000 &&
                                         goc_now() < start + 5 * GOC_SECOND);
         i++) {
        goc_set_log_hook(hook_b, &hook_arg_b);
        goc_set_log_hook(hook_a, &hook_arg_a);
        if (i % 64 == 0) {
            goc_set_log_hook(NULL, NULL);
            goc_set_log_hook(hook_a, &hook_arg_a);
        }
    }
    atomic_store(&hook_stop, 1);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(pthread_join(t[i], NULL));
    ASSERT_EQ(dup2(saved, 2), 2);
    close(saved);
    close(devnull);
    goc_set_log_hook(NULL, NULL);
    long bad = atomic_load(&hook_mismatches);
    ASSERT_EQ(bad, 0);
}

TEST(runtime, strerror_names_codes)
{
    ASSERT_EQ(strcmp(goc_strerror(0), "success"), 0);
    ASSERT_EQ(strcmp(goc_strerror(-EINVAL), "invalid argument"), 0);
    ASSERT_EQ(strcmp(goc_strerror(GOC_EMISUSE), "API misuse"), 0);
    ASSERT_EQ(strcmp(goc_strerror(12345), "unknown error"), 0);
    ASSERT_EQ(strcmp(goc_version(), "0.1.0"), 0);
}

/* ---- floating-point control state ------------------------------------- */

struct fenv_state {
    _Atomic int step;
    int other_mode;
    goc_wg wg;
};

static void rounder(void *arg)
{
    struct fenv_state *s = arg;
    ASSERT_OK(fesetround(FE_DOWNWARD));
    atomic_store(&s->step, 1);
    while (atomic_load(&s->step) != 2)
        goc_yield();
    ASSERT_EQ(fegetround(), FE_DOWNWARD); /* ours survived the switches */
    fesetround(FE_TONEAREST);
    goc_wg_done(&s->wg);
}

static void observer(void *arg)
{
    struct fenv_state *s = arg;
    while (atomic_load(&s->step) != 1)
        goc_yield();
    s->other_mode = fegetround();
    atomic_store(&s->step, 2);
    goc_wg_done(&s->wg);
}

static int fenv_main(void *arg)
{
    struct fenv_state *s = arg;
    goc_wg_add(&s->wg, 2);
    goc_go(rounder, s);
    goc_go(observer, s);
    goc_wg_wait(&s->wg, NULL);
    return 0;
}

TEST(runtime, rounding_mode_is_per_goroutine)
{
    /* One P: both goroutines share a thread, so only the switch can keep
     * the rounding mode apart. */
    static struct fenv_state s;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(fenv_main, &s));
    ASSERT_EQ(s.other_mode, FE_TONEAREST);
}

/* ---- a goroutine yielding in a loop lets the global queue run ---- */

static _Atomic bool global_ran;

static void set_global_ran(void *arg)
{
    (void)arg;
    atomic_store(&global_ran, true);
}

static void *spawn_from_thread(void *arg)
{
    (void)arg;
    /* From a plain thread: into the global queue. */
    ASSERT_OK(goc_go(set_global_ran, NULL));
    return NULL;
}

static int yield_loop_main(void *arg)
{
    (void)arg;
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, spawn_from_thread, NULL));
    test_join(t, NULL);
    /* The only P is ours and its queue is empty but for us: each yield
     * requeues us locally, and the global queue must still get a turn. */
    int64_t deadline = goc_now() + 5 * GOC_SECOND;
    while (!atomic_load(&global_ran)) {
        ASSERT(goc_now() < deadline);
        goc_yield();
    }
    return 0;
}

TEST(runtime, yield_loop_lets_global_queue_run)
{
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(yield_loop_main, NULL));
}

static _Atomic bool slept;

static void sleep_then_flag(void *arg)
{
    (void)arg;
    goc_sleep(GOC_MILLISECOND, NULL);
    atomic_store(&slept, true);
}

static int yield_for_timer_main(void *arg)
{
    (void)arg;
    ASSERT_OK(goc_go(sleep_then_flag, NULL));
    /* The sleeper's timer is on our only P, whose queue then holds
     * nothing but us: the yields must still let the timer fire. */
    int64_t t0 = goc_now(), deadline = t0 + 3 * GOC_SECOND;
    while (!atomic_load(&slept)) {
        ASSERT(goc_now() < deadline);
        goc_yield();
    }
    return 0;
}

TEST(runtime, yield_loop_lets_due_timers_fire)
{
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(yield_for_timer_main, NULL));
}

/* ---- the poller when epoll_pwait2 is refused --------------------------- */

/* A seccomp filter, as some container runtimes install, that answers
 * epoll_pwait2 with EPERM instead of ENOSYS. 0 if installed. */
static int refuse_epoll_pwait2(void)
{
#ifdef SYS_epoll_pwait2
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_epoll_pwait2, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = { sizeof f / sizeof f[0], f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
#else
    return -1;
#endif
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * GOC_SECOND +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int idle_sleep_main(void *arg)
{
    int64_t *cpu = arg;
    int64_t c0 = cpu_ns();
    ASSERT_OK(goc_sleep(300 * GOC_MILLISECOND, NULL));
    *cpu = cpu_ns() - c0;
    return 0;
}

/* The idle poller sleeps in epoll_wait instead when epoll_pwait2 fails
 * with EPERM: it used to take the failure for an interrupted sleep and
 * spin a CPU. */
TEST(runtime, poller_sleeps_when_epoll_pwait2_is_refused)
{
    if (refuse_epoll_pwait2() != 0) {
        printf("# skipped: no seccomp filter here\n");
        return;
    }
    int64_t cpu = 0;
    ASSERT_OK(goc_run(idle_sleep_main, &cpu));
    ASSERT_LT(cpu, 150 * GOC_MILLISECOND);
}

/* ---- a burst of readied goroutines overflows into the global queue ---- */

#define BURST 1000

struct burst {
    goc_chan *gate;
    goc_wg done;
    _Atomic int parking, ran;
};

static void burst_waiter(void *arg)
{
    struct burst *b = arg;
    int v;
    atomic_fetch_add(&b->parking, 1);
    ASSERT_EQ(goc_chan_recv(b->gate, &v, NULL), 0); /* closed */
    atomic_fetch_add(&b->ran, 1);
    goc_wg_done(&b->done);
}

static int burst_main(void *arg)
{
    struct burst *b = arg;
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &b->gate));
    goc_wg_add(&b->done, BURST);
    for (int i = 0; i < BURST; i++)
        ASSERT_OK(goc_go(burst_waiter, b));
    /* One P: while we sleep, the waiters run, each until it parks on the
     * gate, so once all have counted themselves all have parked. */
    while (atomic_load(&b->parking) < BURST)
        ASSERT_OK(goc_sleep(GOC_MILLISECOND, NULL));
    ASSERT_OK(goc_chan_close(b->gate));
    /* The close readied all of them onto our P, more than its ring holds:
     * the rest went to the global queue, and none has run yet. */
    struct goc_stats st;
    ASSERT_OK(goc_stats_read(&st, GOC_STATS_SCHED));
    ASSERT_EQ(atomic_load(&b->ran), 0);
    ASSERT(st.runq_global > 0);
    ASSERT_EQ(st.runq_local + st.runq_global, BURST);
    ASSERT_OK(goc_wg_wait(&b->done, NULL));
    ASSERT_EQ(atomic_load(&b->ran), BURST);
    goc_chan_release(b->gate);
    return 0;
}

TEST(runtime, ready_burst_overflows_to_global_queue)
{
    static struct burst b;
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(burst_main, &b));
}

/* ---- a pinned goroutine keeps its P's timers and readied work alive ---- */

static void *feed(void *arg)
{
    goc_chan *c = arg;
    for (int i = 0; i < 20000; i++)
        ASSERT_OK(goc_chan_send(c, &i, NULL));
    goc_chan_close(c);
    return NULL;
}

static int pinned_main(void *arg)
{
    (void)arg;
    ASSERT_OK(goc_pin());
    /* Sleeping pinned: the P's timer must still be watched. */
    for (int i = 0; i < 5; i++)
        ASSERT_OK(goc_sleep(2 * GOC_MILLISECOND, NULL));
    /* Readied from a plain thread over and over while pinned. */
    goc_chan *c;
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &c));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, feed, c));
    int v, n = 0;
    while (goc_chan_recv(c, &v, NULL) > 0)
        ASSERT_EQ(v, n++);
    ASSERT_EQ(n, 20000);
    test_join(t, NULL);
    goc_chan_release(c);
    ASSERT_OK(goc_unpin());
    return 0;
}

TEST(runtime, pinned_goroutine_on_one_p)
{
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(pinned_main, NULL));
    test_no_leaks();
}

/* GOC_STACK_SIZE: sizes with a suffix parse; a sign, garbage or a value
 * that overflows is ignored (the default stays) instead of wrapping to a
 * plausible size. */
TEST(runtime, stack_size_env_rejects_overflow_and_signs)
{
    static const struct {
        const char *env;
        size_t want;
    } cases[] = {
        { "262144", 262144 },
        { "512k", 512 << 10 },
        { "1M", 1 << 20 },
        { "-18446744073709486080", GOC_STACK_DEFAULT },
        { "18014398509482048k", GOC_STACK_DEFAULT },
        { "17592186044432m", GOC_STACK_DEFAULT },
        { "99999999999999999999999", GOC_STACK_DEFAULT },
        { "64kb", GOC_STACK_DEFAULT },
        { "", GOC_STACK_DEFAULT },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ASSERT_OK(setenv("GOC_STACK_SIZE", cases[i].env, 1));
        if (goc__config_stack(0, NULL) != cases[i].want)
            ASSERT_FAIL("GOC_STACK_SIZE=%s: %zu, want %zu", cases[i].env,
                        goc__config_stack(0, NULL), cases[i].want);
    }
    unsetenv("GOC_STACK_SIZE");
}

static _Atomic int churn_stop;

static void churn_child(void *arg)
{
    (void)arg;
    goc_yield();
}

static void churn_spawner(void *arg)
{
    goc_wg *wg = arg;
    while (!atomic_load(&churn_stop)) {
        for (int i = 0; i < 64; i++)
            (void)goc_go(churn_child, NULL);
        goc_yield();
    }
    goc_wg_done(wg);
}

static int count_under_churn(void *arg)
{
    (void)arg;
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 2);
    ASSERT_OK(goc_go(churn_spawner, &wg));
    ASSERT_OK(goc_go(churn_spawner, &wg));
    int64_t lo = INT64_MAX, end = goc_now() + 500 * GOC_MILLISECOND;
    while (goc_now() < end) {
        goc_blocking_enter(); /* the others get the Ps meanwhile */
        for (int i = 0; i < 20000; i++) {
            int64_t n = goc_num_goroutine();
            if (n < lo)
                lo = n;
        }
        goc_blocking_exit();
    }
    atomic_store(&churn_stop, 1);
    goc_wg_wait(&wg, NULL);
    /* This one and the two spawners lived throughout. */
    if (lo < 3)
        ASSERT_FAIL("goc_num_goroutine() read %" PRId64, lo);
    return 0;
}

/* Creations and exits are counted on different Ps; read creations first,
 * an exit could be counted without its creation, and the count went far
 * below zero. */
TEST(runtime, num_goroutine_never_below_the_goroutines_alive)
{
    struct goc_config cfg = { .max_procs = 3 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(count_under_churn, NULL));
    test_no_leaks();
}

/* ---- a hog report armed late ------------------------------------------ */

static _Atomic int late_reports;

static void count_hog_reports(const char *msg, void *arg)
{
    (void)arg;
    if (strstr(msg, "kept P"))
        atomic_fetch_add(&late_reports, 1);
}

static void nothing(void *arg)
{
    (void)arg;
}

/* Arm a hog report on this P as sysmon does, judged @runs_before
 * switches back. */
static void arm_hog_report(uint64_t runs_before)
{
    struct goc__p *p = goc__m_current()->p;
    atomic_store(&p->hog_nrun, atomic_load(&p->nrun) - runs_before);
    atomic_store(&p->hog_waiting, 1);
    atomic_store(&p->hog_kind, GOC__HOG_COMPUTING);
    atomic_store(&p->hog_since, goc_now() - 20 * GOC_MILLISECOND);
}

/* Switch out to another goroutine. */
static void yield_to_another(void)
{
    ASSERT_OK(goc_go(nothing, NULL));
    goc_yield();
}

static int late_report_main(void *arg)
{
    (void)arg;
    arm_hog_report(2); /* the hog switched out two switches ago */
    yield_to_another();
    ASSERT_EQ(atomic_load(&late_reports), 0);
    arm_hog_report(1); /* one ago: we are the goroutine after it */
    yield_to_another();
    ASSERT_EQ(atomic_load(&late_reports), 0);
    arm_hog_report(1); /* the same, leaving through the scheduler */
    goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&late_reports), 0);
    arm_hog_report(0); /* we are the hog */
    yield_to_another();
    ASSERT_EQ(atomic_load(&late_reports), 1);
    arm_hog_report(0); /* the same, leaving through the scheduler */
    goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&late_reports), 2);
    return 0;
}

/* sysmon arms a hog's report a while after it judged the hog: a hog that
 * switched out meanwhile left it to the next goroutine to switch, which
 * was reported as the hog. */
TEST(runtime, hog_report_armed_after_the_hog_switched_out_is_dropped)
{
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    goc_set_log_hook(count_hog_reports, NULL);
    ASSERT_OK(goc_run(late_report_main, NULL));
    goc_set_log_hook(NULL, NULL);
}

/* ---- signal masks ------------------------------------------------------ */

struct mask_watch {
    _Atomic bool stop;
    _Atomic int checks, wrong, threads[8];
    goc_wg wg;
};

/* The program blocks SIGUSR2 and SIGPROF; goc must block SIGUSR2 and no
 * fault signal, nor SIGPROF (its profiler's), nor SIGINT where the
 * program did not. */
static bool m_mask_right(void)
{
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, SIGUSR2) && !sigismember(&cur, SIGINT) &&
           !sigismember(&cur, SIGPROF) && !sigismember(&cur, SIGSEGV) &&
           !sigismember(&cur, SIGBUS);
}

static void note_thread(struct mask_watch *w)
{
    int tid = (int)syscall(SYS_gettid);
    for (int i = 0; i < 8; i++) {
        int seen = 0;
        if (atomic_compare_exchange_strong(&w->threads[i], &seen, tid) ||
            seen == tid)
            return;
    }
}

static void mask_checker(void *arg)
{
    struct mask_watch *w = arg;
    while (!atomic_load(&w->stop)) {
        int64_t end = goc_now() + GOC_MILLISECOND;
        while (goc_now() < end)
            ;
        note_thread(w);
        atomic_fetch_add(&w->checks, 1);
        if (!m_mask_right())
            atomic_fetch_add(&w->wrong, 1);
        goc_yield();
    }
    goc_wg_done(&w->wg);
}

/* Sections long enough for sysmon to hand the P to an M it starts. */
static void long_sections(void *arg)
{
    struct mask_watch *w = arg;
    for (int i = 0; i < 5; i++) {
        ASSERT_OK(goc_blocking_enter());
        usleep(20 * 1000);
        ASSERT_OK(goc_blocking_exit());
    }
    goc_wg_done(&w->wg);
}

/* A blocking job's thread blocks the program's signals, not these. */
static int pool_mask_right(void *arg)
{
    (void)arg;
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    return sigismember(&cur, SIGINT) && !sigismember(&cur, SIGPROF) &&
                   !sigismember(&cur, SIGSEGV)
               ? 0
               : -EINVAL;
}

static int mask_main(void *arg)
{
    struct mask_watch *w = arg;
    goc_wg_add(&w->wg, 5);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(goc_go(mask_checker, w));
    ASSERT_OK(goc_go(long_sections, w));
    ASSERT_OK(goc_go(long_sections, w));
    ASSERT_OK(goc_blocking(pool_mask_right, NULL, NULL));
    goc_sleep(300 * GOC_MILLISECOND, NULL);
    atomic_store(&w->stop, true);
    goc_wg_wait(&w->wg, NULL);
    return 0;
}

/* sysmon and the blocking pool's threads block every signal, and an M
 * they started inherited that: goroutines there got no SIGPROF (a CPU
 * profile missed them), died unreported on a fault (a stack overflow's
 * SIGSEGV, blocked), and ignored the program's choice of signals. */
TEST(runtime, every_m_takes_the_programs_signal_mask)
{
    sigset_t app;
    sigemptyset(&app);
    sigaddset(&app, SIGUSR2);
    sigaddset(&app, SIGPROF);
    pthread_sigmask(SIG_BLOCK, &app, NULL);
    static struct mask_watch w = { .wg = GOC_WG_INIT };
    ASSERT_OK(goc_run(mask_main, &w));
    int threads = 0;
    for (int i = 0; i < 8; i++)
        threads += atomic_load(&w.threads[i]) != 0;
    printf("# %d checks on %d threads\n", atomic_load(&w.checks), threads);
    ASSERT_EQ(atomic_load(&w.wrong), 0);
    ASSERT_GE(threads, 2);
}

/*
 * sysmon read a P's blocking_m, then took the P from that M if the M was
 * in a blocking section: any section. An M that had left the section on
 * that P, taken another P and opened a section there meanwhile lost the
 * first P to a second owner, and its own P for good at its exit. Here
 * the stale read is made by hand: the other P names this goroutine's M,
 * whose section is on its own P.
 */
static void retake_of_a_section_elsewhere(void *arg)
{
    ASSERT_OK(goc_blocking_enter());
    struct goc__m *m = goc__m_current();
    struct goc__p *own = m->p;
    struct goc__p *other = &goc__sched.allp[own->id ^ 1];
    struct goc__m *none = NULL;
    bool staged = atomic_compare_exchange_strong(&other->blocking_m, &none, m);
    bool taken = staged && goc__sysmon_retake(other);
    if (staged) { /* undo the staging, whatever happened */
        struct goc__m *self = m;
        atomic_compare_exchange_strong(&other->blocking_m, &self, NULL);
    }
    uint32_t state = atomic_load(&m->bstate);
    ASSERT_OK(goc_blocking_exit());
    ASSERT(m->locked_g == NULL);
    ASSERT(staged); /* the other P had no section of its own */
    ASSERT(!taken);
    /* Still in its section on its own P, unless sysmon retook that one
     * (rightly) meanwhile. */
    ASSERT_NE(state & GOC__M_STATE, GOC__M_RUNNING);
    goc_wg_done(arg);
}

static int retake_main(void *arg)
{
    (void)arg;
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 1);
    ASSERT_OK(goc_go(retake_of_a_section_elsewhere, &wg)); /* unpinned */
    goc_wg_wait(&wg, NULL);
    return 0;
}

TEST(runtime, sysmon_retakes_a_p_only_from_a_section_on_it)
{
    struct goc_config cfg = { .max_procs = 2 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(retake_main, NULL));
    test_no_leaks();
}

/* GOC_FAULT_REPORTS=0: goc installs no fault handler, so a goroutine's
 * fault reaches the program's own (a crash reporter, say). */
static void own_segv_handler(int sig)
{
    (void)sig;
    static const char msg[] = "the program's own handler\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(42);
}

static void faults_in_a_goroutine(void *arg)
{
    (void)arg;
    volatile int *volatile p = NULL;
    *p = 1;
}

static int fault_main(void *arg)
{
    (void)arg;
    ASSERT_OK(goc_go(faults_in_a_goroutine, NULL));
    goc_sleep(10 * GOC_SECOND, NULL);
    return 0;
}

static void own_fault_handler_child(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = own_segv_handler;
    sa.sa_flags = SA_ONSTACK;
    ASSERT_OK(sigaction(SIGSEGV, &sa, NULL));
    ASSERT_OK(setenv("GOC_FAULT_REPORTS", "0", 1));
    goc_run(fault_main, NULL);
}

static void goc_fault_report_child(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = own_segv_handler;
    sa.sa_flags = SA_ONSTACK;
    ASSERT_OK(sigaction(SIGSEGV, &sa, NULL));
    goc_run(fault_main, NULL);
}

TEST(runtime, fault_reports_off_leave_faults_to_the_program)
{
    if (test_under_valgrind()) {
        printf("# skipped under valgrind (the fault is a memcheck error)\n");
        return;
    }
    test_expect_exit(own_fault_handler_child, 42, "the program's own handler");
    /* By default goc reports a goroutine's fault itself. */
    test_expect_exit(goc_fault_report_child, 2,
                     "fatal error: unexpected signal SIGSEGV");
}

/* ---- a spawn whose thread could not be made ----------------------------- */

static void note_ran(void *arg)
{
    atomic_store((_Atomic int *)arg, 1);
}

/*
 * The first spawn of a fresh runtime gets its stack but not its thread
 * (the M's allocation fails): goc_go() succeeds and queues the goroutine,
 * so it must run once a thread can be made. With no M at all there was
 * nobody to try again, and it waited for ever.
 */
TEST(runtime, spawn_whose_thread_could_not_be_made_runs_later)
{
    struct goc_config cfg = { .max_procs = 2 };
    ASSERT_OK(goc_init(&cfg));
    static _Atomic int ran;
    int rc = -1;
    /* Fail from the nth allocation on, for every n, until the spawn (its
     * slab record and its slab) gets through and only its M fails. */
    for (int64_t n = 0; n < 16 && rc != 0; n++) {
        goc__fault_after(n);
        rc = goc_go(note_ran, (void *)&ran);
        goc__fault_after(-1);
        if (rc != 0)
            ASSERT_EQ(rc, -ENOMEM);
    }
    ASSERT_OK(rc);
    struct timespec ms = { 0, 1000000 };
    for (int i = 0; i < 5000 && !atomic_load(&ran); i++)
        nanosleep(&ms, NULL);
    ASSERT_EQ(atomic_load(&ran), 1);
    test_no_leaks();
}

/* ---- a goroutine that ends inside its blocking section ------------------ */

static void ends_in_a_section(void *arg)
{
    ASSERT_OK(goc_blocking_enter());
    /* Long enough for sysmon to give its P away meanwhile, or not. */
    if (arg) {
        struct timespec ts = { 0, 2000000 };
        nanosleep(&ts, NULL);
    }
}

static void yield_a_while(void *arg)
{
    for (int i = 0; i < 200; i++)
        goc_yield();
    goc_wg_done(arg);
}

static int section_left_open_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        goc_wg wg = GOC_WG_INIT;
        ASSERT_OK(goc_go(ends_in_a_section, (i & 1) ? &wg : NULL));
        /* The M that ran it must go on as any other, its P its own. */
        goc_wg_add(&wg, 64);
        for (int j = 0; j < 64; j++)
            ASSERT_OK(goc_go(yield_a_while, &wg));
        ASSERT_OK(goc_wg_wait(&wg, NULL));
        WAIT_UNTIL(goc_num_goroutine() == 1);
    }
    struct goc_stats st;
    ASSERT_OK(goc_stats_read(&st, GOC_STATS_SCHED));
    ASSERT_EQ(st.blocking_sections, 0);
    return 0;
}

/*
 * A goroutine that returns with its blocking section still open has it
 * closed at its exit, as a pin is undone: its M carried on scheduling
 * with the section's state, sysmon then handed the P it was still
 * running to a second M, and the open count kept the deadlock check off.
 */
TEST(runtime, goroutine_ending_inside_a_section_closes_it)
{
    struct goc_config cfg = { .max_procs = 2 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(section_left_open_main, NULL));
    test_no_leaks();
}
