/* SPDX-License-Identifier: MIT */
/* Tests of goroutine stacks: memory per parked goroutine, trimming. */
#include "test.h"
#include "../src/runtime/runtime.h"

#include <stdatomic.h>
#include <unistd.h>

static int64_t rss_bytes(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    ASSERT(f);
    ASSERT_EQ(fscanf(f, "%ld %ld", &pages, &resident), 2);
    fclose(f);
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

static int count_maps(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int c, n = 0;
    ASSERT(f);
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

struct gate {
    goc_wg started, release, done;
};

static void parked(void *arg)
{
    struct gate *g = arg;
    goc_wg_done(&g->started);
    goc_wg_wait(&g->release, NULL);
    goc_wg_done(&g->done);
}

TEST_G(stack, million_parked_goroutines)
{
    static struct gate g = { GOC_WG_INIT, GOC_WG_INIT, GOC_WG_INIT };
    int64_t n = test_scale(1000000);
#if defined(GOC_TSAN)
    /* TSan maps a shadow stack per goroutine: stay under the map limit. */
    n = n < 5000 ? n : 5000;
#endif
    goc_wg_add(&g.started, n);
    goc_wg_add(&g.release, 1);
    goc_wg_add(&g.done, n);
    int64_t rss0 = rss_bytes();
    for (int64_t i = 0; i < n; i++)
        ASSERT_OK(goc_go(parked, &g));
    goc_wg_wait(&g.started, NULL);
    goc_sleep(50 * GOC_MILLISECOND, NULL);
    int64_t per = (rss_bytes() - rss0) / n;
    int maps = count_maps();
    fprintf(stderr, "%" PRId64 " parked: %" PRId64 " bytes each, %d maps\n", n,
            per, maps);
    ASSERT_EQ(goc_num_goroutine(), n + 1);
    ASSERT_LT(maps, 65530);
    if (!test_instrumented())
        ASSERT_LE(per, 4400);
    goc_wg_done(&g.release);
    goc_wg_wait(&g.done, NULL);
}

static __attribute__((noinline)) void touch_stack(size_t bytes)
{
    volatile char *buf = __builtin_alloca(bytes);
    for (size_t i = 0; i < bytes; i += 512)
        buf[i] = (char)i;
}

static void deep_then_exit(void *arg)
{
    struct gate *g = arg;
    touch_stack(128 * 1024);
    goc_wg_done(&g->started);
    goc_wg_wait(&g->release, NULL);
    goc_wg_done(&g->done);
}

TEST_G(stack, idle_stacks_are_trimmed)
{
    /* More exited goroutines than the per-P caches hold: most of their
     * stacks reach the global pool, where sysmon trims them. */
    int n = 2000;
    struct gate g = { GOC_WG_INIT, GOC_WG_INIT, GOC_WG_INIT };
    struct goc_go_opts o = { .stack_size = 256 * 1024 };
    goc_wg_add(&g.started, n);
    goc_wg_add(&g.release, 1);
    goc_wg_add(&g.done, n);
    /* Keep them all alive at once so each dirties its own stack. */
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go_ex(deep_then_exit, &g, &o));
    goc_wg_wait(&g.started, NULL);
    goc_wg_done(&g.release);
    goc_wg_wait(&g.done, NULL);
    int64_t peak = rss_bytes();
    goc_sleep(4 * GOC_SECOND, NULL);
    int64_t after = rss_bytes();
    fprintf(stderr, "rss %" PRId64 " KiB -> %" PRId64 " KiB\n", peak >> 10,
            after >> 10);
    ASSERT_LT(after, peak - 64 * 1024 * 1024);
}

/* ---- trimming while goroutines spawn ----------------------------------- */

struct wave {
    goc_wg gate, done;
    size_t touch; /* bytes of stack each goroutine dirties */
};

static void wave_member(void *arg)
{
    struct wave *w = arg;
    if (w->touch)
        touch_stack(w->touch);
    goc_wg_wait(&w->gate, NULL);
    goc_wg_done(&w->done);
}

/* n goroutines alive at once, each on a stack of its own, then gone. */
static void run_wave(int n, size_t touch)
{
    struct wave w = { GOC_WG_INIT, GOC_WG_INIT, touch };
    goc_wg_add(&w.gate, 1);
    goc_wg_add(&w.done, n);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(wave_member, &w));
    goc_wg_done(&w.gate);
    goc_wg_wait(&w.done, NULL);
}

/* n, or enough more that most stacks pass the caches of the Ps (64 per
 * P and size class) to the global pool, where the trim works. */
static int past_the_caches(int64_t n)
{
    int64_t least = 1024 + 64 * (int64_t)goc_maxprocs();
    return (int)(n > least ? n : least);
}

static _Atomic int trim_started;

/* Trims every stack in the pool, idle or not, with no time limit. */
static void *trim_everything(void *arg)
{
    (void)arg;
    atomic_store(&trim_started, 1);
    goc__stack_trim(goc__nanotime() + 1000 * GOC_SECOND, 0, INT64_MAX);
    return NULL;
}

static uint64_t stacks_resident(void)
{
    uint64_t resident;
    goc__stack_reserved(&resident);
    return resident;
}

/*
 * While the pool is trimmed, goroutines spawned meanwhile still find its
 * stacks: the trim used to take every batch out at once, and spawns
 * carved thousands of new stacks, which are never unmapped. The stacks
 * trimmed still give their pages back.
 */
TEST_G(stack, trim_leaves_the_pool_to_spawns_meanwhile)
{
    int n = past_the_caches(test_scale(20000));
#if defined(GOC_TSAN)
    n = n < 4000 ? n : 4000; /* a shadow stack per goroutine */
#endif
    run_wave(n, 16 * 1024); /* n free stacks, dirty, in the pool */
    int64_t mapped = goc__stack_mapped_count();
    uint64_t dirty = stacks_resident();
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, trim_everything, NULL));
    while (!atomic_load(&trim_started))
        goc_yield();
    run_wave(n / 2, 0); /* half the pool's stacks, during the trim */
    ASSERT_OK(test_join(t, NULL));
    int64_t carved = goc__stack_mapped_count() - mapped;
    trim_everything(NULL); /* the stacks the wave used are back, dirty */
    uint64_t trimmed = stacks_resident();
    fprintf(stderr,
            "%d stacks: %" PRId64 " carved during the trim; resident %" PRIu64
            " KiB -> %" PRIu64 " KiB\n",
            n, carved, dirty >> 10, trimmed >> 10);
    ASSERT_LE(carved, 64);
    ASSERT_LT(trimmed, dirty / 2);
}

/* One call trims no longer than it is given (sysmon's 1 ms a round, so
 * its other duties do not wait): with no time at all, one batch. Calls
 * go on where the last stopped, until every idle stack is trimmed. */
TEST_G(stack, trim_stops_at_its_time_budget)
{
    int n = past_the_caches(test_scale(4000));
    run_wave(n, 16 * 1024);
    uint64_t dirty = stacks_resident();
    int64_t far = goc__nanotime() + 1000 * GOC_SECOND;
    int calls = 1;
    while (goc__stack_trim(far, 0, 0))
        calls++;
    uint64_t trimmed = stacks_resident();
    fprintf(stderr, "%d calls; resident %" PRIu64 " KiB -> %" PRIu64 " KiB\n",
            calls, dirty >> 10, trimmed >> 10);
    /* A call a batch of 32, but for those left in the caches. */
    ASSERT_GT(calls, (n - 64 * goc_maxprocs()) / 32);
    ASSERT_LT(trimmed, dirty / 2);
    ASSERT(!goc__stack_trim(far, 0, 0)); /* nothing left to do */
}

static void use_stack(void *arg)
{
    volatile char buf[4096];
    for (size_t i = 0; i < sizeof(buf); i += 64)
        buf[i] = (char)i;
    goc_wg_done(arg);
}

static int smallest_default_main(void *arg)
{
    (void)arg;
    /* A stack spans four pages at the least: its guard, its G on top
     * and room between them, whatever the kernel's page size. */
    size_t floor = 4 * (size_t)sysconf(_SC_PAGESIZE);
    ASSERT_GE(goc__sched.stack_size, floor);
    ASSERT_EQ(goc__sched.stack_class, goc__stack_class(GOC_STACK_MIN));
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 1);
    ASSERT_OK(goc_go(use_stack, &wg));
    goc_wg_wait(&wg, NULL);
    return 0;
}

/*
 * The default stack class is chosen once the page size is known. It was
 * chosen before, as if pages were 4 KiB: with 16 or 64 KiB pages (arm64
 * kernels) a small default (GOC_STACK_SIZE=16k) gave stacks whose guard
 * page covered their G.
 */
TEST(stack, smallest_default_stack_spans_four_pages)
{
    struct goc_config cfg = { .stack_size = GOC_STACK_MIN };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(smallest_default_main, NULL));
    test_no_leaks();
}
