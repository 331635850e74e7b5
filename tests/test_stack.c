/* SPDX-License-Identifier: MIT */
/* Tests of goroutine stacks: memory per parked goroutine, trimming. */
#include "test.h"

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
