/* SPDX-License-Identifier: MIT */
/* Runtime statistics: each counter moves when the thing it counts does. */
#include "test.h"
#include "../src/internal/alloc.h"

#include <goc.h>

#include <pthread.h>
#include <time.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static struct goc_stats read_stats(unsigned what)
{
    struct goc_stats st;
    ASSERT_OK(goc_stats_read(&st, what));
    return st;
}

/* Poll until pred(stats) holds (10 s at most). Yields rather than
 * sleeps: a sleep would park, and some tests count parks. Then blocks the
 * thread a moment, which parks nothing: under valgrind, which runs one
 * thread at a time, a loop without system calls can keep the thread that
 * would make the change (a poller woken by an event) from ever running. */
static struct goc_stats wait_stats(unsigned what,
                                   bool (*pred)(const struct goc_stats *,
                                                int64_t),
                                   int64_t want)
{
    int64_t deadline = goc_now() + 10 * 1000000000LL;
    while (goc_now() < deadline) {
        struct goc_stats st = read_stats(what);
        if (pred(&st, want))
            return st;
        goc_yield();
        nanosleep(&(struct timespec){ .tv_nsec = 100000 }, NULL);
    }
    ASSERT_FAIL("statistics never reached %lld", (long long)want);
    return read_stats(what);
}

TEST(stats, rejects_bad_input)
{
    struct goc_stats st;
    memset(&st, 0x5a, sizeof(st));
    ASSERT_EQ(goc_stats_read(NULL, GOC_STATS_ALL), -EINVAL);
    ASSERT_EQ(goc_stats_read(&st, 1u << 10), -EINVAL);
    ASSERT_EQ(st.goroutines, 0x5a5a5a5a5a5a5a5a); /* untouched */
    ASSERT_EQ(goc_stats_runq(NULL, 3), -EINVAL);
}

TEST(stats, before_start_reads_zero_and_starts_nothing)
{
    struct goc_stats st = read_stats(GOC_STATS_ALL);
    ASSERT_EQ(st.goroutines, 0);
    ASSERT_EQ(st.procs, 0);
    ASSERT_EQ(st.threads, 0);
    ASSERT_GT(st.rss_bytes, 0);
    ASSERT_EQ(goc_stats_runq(NULL, 0), 0);
    ASSERT_EQ(goc_num_goroutine(), 0);
    /* The runtime is still unstarted: goc_init() can still configure it. */
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
}

static void park_on(void *arg)
{
    goc_chan *ch = arg;
    int v;
    goc_chan_recv(ch, &v, NULL);
    goc_chan_release(ch); /* the reference its spawner took for it */
}

static bool parks_at_least(const struct goc_stats *st, int64_t n)
{
    return st->parks_total >= (uint64_t)n;
}

static bool goroutines_at_least(const struct goc_stats *st, int64_t n)
{
    return st->goroutines >= n;
}

static bool goroutines_at_most(const struct goc_stats *st, int64_t n)
{
    return st->goroutines <= n;
}

TEST_G(stats, goroutines_parks_and_switches)
{
    int n = 50;
    goc_chan *ch;
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &ch));
    struct goc_stats before = read_stats(GOC_STATS_SCHED);
    ASSERT_GE(before.goroutines, 1); /* this one */
    ASSERT_GE(before.procs, 1);
    ASSERT_GE(before.threads, 1);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(park_on, goc_chan_retain(ch)));
    struct goc_stats mid =
        wait_stats(GOC_STATS_SCHED, goroutines_at_least, before.goroutines + n);
    ASSERT_EQ(mid.goroutines_total - before.goroutines_total, n);
    /* Nothing else parks meanwhile (this goroutine only yields), so the
     * parks counted are theirs, on the channel. */
    mid = wait_stats(GOC_STATS_SCHED, parks_at_least,
                     (int64_t)before.parks_total + n);
    ASSERT_GE(mid.switches_total - before.switches_total, (uint64_t)n);
    ASSERT_GE(mid.stacks, n);
    ASSERT_GT(mid.stack_reserved_bytes, 0);
    goc_chan_close(ch);
    goc_chan_release(ch);
    wait_stats(GOC_STATS_SCHED, goroutines_at_most, before.goroutines);
}

static _Atomic int touched;

static void touch_stack_and_park(void *arg)
{
    volatile char buf[96 * 1024];
    for (size_t i = 0; i < sizeof(buf); i += 512)
        buf[i] = (char)i;
    atomic_fetch_add(&touched, 1);
    park_on(arg);
    (void)buf[0];
}

TEST_G(stats, stack_resident_counts_touched_stacks)
{
    int n = 8;
    goc_chan *ch;
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &ch));
    struct goc_stats before = read_stats(GOC_STATS_SCHED);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(touch_stack_and_park, goc_chan_retain(ch)));
    while (atomic_load(&touched) < n)
        goc_yield();
    struct goc_stats st =
        read_stats(GOC_STATS_SCHED | GOC_STATS_STACK_RESIDENT);
    /* n distinct stacks, each with 96 KiB touched, are alive at once. */
    ASSERT_GE(st.stack_resident_bytes, (uint64_t)n * 96 * 1024);
    ASSERT_LE(st.stack_resident_bytes, st.stack_reserved_bytes);
    /* Alone, it fills its own field only: the reserved figure is one of
     * SCHED's, and the fields of sources not asked for stay 0. */
    struct goc_stats alone = read_stats(GOC_STATS_STACK_RESIDENT);
    ASSERT_GT(alone.stack_resident_bytes, 0);
    ASSERT_EQ(alone.stack_reserved_bytes, 0);
    goc_chan_close(ch);
    goc_chan_release(ch);
    wait_stats(GOC_STATS_SCHED, goroutines_at_most, before.goroutines);
}

static _Atomic int ran;

static void count_run(void *arg)
{
    (void)arg;
    atomic_fetch_add(&ran, 1);
}

static int runq_main(void *arg)
{
    (void)arg;
    int n = 10;
    /* One P and no yield: what this goroutine spawns waits in its queue. */
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(count_run, NULL));
    struct goc_stats st = read_stats(GOC_STATS_SCHED);
    int64_t lens[4] = { -1, -1, -1, -1 };
    ASSERT_EQ(goc_stats_runq(lens, 4), 1);
    ASSERT_EQ(atomic_load(&ran), 0);
    ASSERT_EQ(st.runq_local + st.runq_global, n);
    ASSERT_EQ(lens[0] + st.runq_global, n);
    ASSERT_EQ(lens[1], -1); /* only the Ps that exist are written */
    while (atomic_load(&ran) < n)
        goc_yield();
    ASSERT_EQ(goc_stats_runq(lens, 1), 1);
    ASSERT_EQ(lens[0], 0);
    return 0;
}

TEST(stats, runq_lengths_per_p)
{
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(runq_main, NULL));
    test_no_leaks();
}

static bool timers_at_least(const struct goc_stats *st, int64_t n)
{
    return st->timers >= n;
}

static bool io_waiters_at_least(const struct goc_stats *st, int64_t n)
{
    return st->io_waiters >= n;
}

static bool io_waiters_at_most(const struct goc_stats *st, int64_t n)
{
    return st->io_waiters <= n;
}

static void sleep_until_cancelled(void *arg)
{
    goc_sleep(3600 * 1000000000LL, arg);
    goc_ctx_release(arg); /* the reference its spawner took for it */
}

static void read_pipe(void *arg)
{
    char c;
    goc_fd_read(arg, &c, 1, NULL);
}

TEST_G(stats, timers_and_io_waiters)
{
    int n = 20;
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(goc_ctx_background(), &ctx));
    struct goc_stats before = read_stats(GOC_STATS_SCHED);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(sleep_until_cancelled, goc_ctx_retain(ctx)));
    wait_stats(GOC_STATS_SCHED, timers_at_least, before.timers + n);
    goc_ctx_cancel(ctx);
    goc_ctx_release(ctx);
    wait_stats(GOC_STATS_SCHED, goroutines_at_most, before.goroutines);

    int p[2];
    ASSERT_OK(pipe(p));
    goc_fd *rd;
    ASSERT_OK(goc_fd_open(p[0], &rd));
    ASSERT_OK(goc_go(read_pipe, rd));
    wait_stats(GOC_STATS_SCHED, io_waiters_at_least, before.io_waiters + 1);
    ASSERT_EQ(write(p[1], "x", 1), 1);
    close(p[1]);
    wait_stats(GOC_STATS_SCHED, io_waiters_at_most, before.io_waiters);
    goc_fd_close(rd);
}

/* Waits begin on one P and may end on another (or on a plain thread):
 * the per-P counts must still add up to nothing once all are over. */
#define PIPE_WAITERS 64

static void *read_pipe_thread(void *arg)
{
    read_pipe(arg);
    return NULL;
}

static int io_balance_main(void *arg)
{
    (void)arg;
    struct goc_stats before = read_stats(GOC_STATS_SCHED);
    int w[PIPE_WAITERS + 1];
    goc_fd *rd[PIPE_WAITERS + 1];
    for (int i = 0; i <= PIPE_WAITERS; i++) {
        int p[2];
        ASSERT_OK(pipe(p));
        ASSERT_OK(goc_fd_open(p[0], &rd[i]));
        w[i] = p[1];
    }
    for (int i = 0; i < PIPE_WAITERS; i++)
        ASSERT_OK(goc_go(read_pipe, rd[i]));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, read_pipe_thread, rd[PIPE_WAITERS]));
    wait_stats(GOC_STATS_SCHED, io_waiters_at_least,
               before.io_waiters + PIPE_WAITERS + 1);
    for (int i = 0; i <= PIPE_WAITERS; i++) {
        ASSERT_EQ(write(w[i], "x", 1), 1);
        if (i % 8 == 7)
            goc_yield(); /* let wakers and waiters mix over the Ps */
    }
    test_join(t, NULL);
    wait_stats(GOC_STATS_SCHED, io_waiters_at_most, before.io_waiters);
    ASSERT_EQ(read_stats(GOC_STATS_SCHED).io_waiters, before.io_waiters);
    for (int i = 0; i <= PIPE_WAITERS; i++) {
        goc_fd_close(rd[i]);
        close(w[i]);
    }
    return 0;
}

TEST(stats, io_waiters_balance_across_ps)
{
    struct goc_config cfg = { .max_procs = 4 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(io_balance_main, NULL));
}

static bool rss_at_least(const struct goc_stats *st, int64_t n)
{
    return st->rss_bytes >= (uint64_t)n;
}

TEST(stats, process_memory_and_heap)
{
    struct goc_stats before = read_stats(GOC_STATS_PROCESS | GOC_STATS_HEAP);
    ASSERT_GT(before.rss_bytes, 0);
    ASSERT_GE(before.rss_peak_bytes, before.rss_bytes);
    ASSERT_GE(before.os_threads, 1);
    size_t big = 64 << 20;
    char *m = mmap(NULL, big, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(m != MAP_FAILED);
    memset(m, 1, big);
    wait_stats(GOC_STATS_PROCESS, rss_at_least,
               (int64_t)(before.rss_bytes + big / 2));
    munmap(m, big);
    if (test_instrumented())
        return; /* the tools replace malloc: mallinfo2 sees glibc's only */
    void *blk = malloc(big); /* over the mmap threshold */
    ASSERT(blk);
    struct goc_stats heap = read_stats(GOC_STATS_HEAP);
    ASSERT_GE(heap.heap_mmap_bytes, before.heap_mmap_bytes + big);
    ASSERT_GE(heap.heap_inuse_bytes, heap.heap_mmap_bytes);
    free(blk);
    heap = read_stats(GOC_STATS_HEAP);
    ASSERT_LT(heap.heap_mmap_bytes, before.heap_mmap_bytes + big);
}

static void *stats_in_thread(void *arg)
{
    struct goc_stats *st = arg;
    ASSERT_OK(goc_stats_read(st, GOC_STATS_ALL));
    return NULL;
}

TEST_G(stats, from_a_plain_thread)
{
    struct goc_stats st;
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, stats_in_thread, &st));
    ASSERT_OK(test_join(t, NULL));
    ASSERT_GE(st.goroutines, 1);
    ASSERT_GE(st.procs, 1);
    ASSERT_GT(st.rss_bytes, 0);
}

/* Objects of several kinds, made and freed on goroutines spread over
 * the Ps and on a plain thread: allocated on one thread, freed on
 * another, as often happens. */
struct churn {
    goc_chan *ch;
    goc_wg made;
    int n;
};

static void make_some(void *arg)
{
    struct churn *c = arg;
    for (int i = 0; i < c->n; i++) {
        goc_ctx *ctx;
        goc_chan *x;
        goc_future *f;
        ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
        ASSERT_OK(goc_chan_new(sizeof(int), 4, &x));
        ASSERT_OK(goc_future_new(NULL, &f));
        void *objs[3] = { ctx, x, f };
        ASSERT_OK(goc_chan_send(c->ch, &objs, NULL)); /* freed elsewhere */
    }
    goc_wg_done(&c->made);
}

static void *free_them(void *arg)
{
    struct churn *c = arg;
    void *objs[3];
    while (goc_chan_recv(c->ch, &objs, NULL) > 0) {
        goc_ctx_release(objs[0]);
        goc_chan_release(objs[1]);
        goc_future_release(objs[2]);
    }
    return NULL;
}

TEST_G(stats, lib_heap_counts_what_goc_holds)
{
    struct goc_stats before = read_stats(GOC_STATS_LIB);
    ASSERT_GT(before.lib_allocs_total, 0);
    ASSERT_GT(before.lib_heap_objects, 0);
    ASSERT_GT(before.lib_heap_bytes, before.lib_heap_objects);
    /* 1,000 channels held at once: counted, then gone. */
    enum { N = 1000 };
    static goc_chan *chans[N];
    for (int i = 0; i < N; i++)
        ASSERT_OK(goc_chan_new(64, 16, &chans[i]));
    struct goc_stats held = read_stats(GOC_STATS_LIB);
    ASSERT_GE(held.lib_heap_objects - before.lib_heap_objects, N);
    ASSERT_GE(held.lib_heap_bytes - before.lib_heap_bytes, N * 64 * 16);
    ASSERT_GE(held.lib_allocs_total - before.lib_allocs_total, N);
    for (int i = 0; i < N; i++)
        goc_chan_release(chans[i]);
    /* Made on goroutines, freed on a plain thread. */
    struct churn c = { .made = GOC_WG_INIT, .n = (int)test_scale(2000) };
    ASSERT_OK(goc_chan_new(sizeof(void *[3]), 64, &c.ch));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, free_them, &c));
    goc_wg_add(&c.made, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_OK(goc_go(make_some, &c));
    goc_wg_wait(&c.made, NULL);
    goc_chan_close(c.ch);
    test_join(t, NULL);
    goc_chan_release(c.ch);
    struct goc_stats after = read_stats(GOC_STATS_LIB);
    ASSERT_GE(after.lib_allocs_total - held.lib_allocs_total, 3 * 4 * c.n);
    /* Nothing made here is still counted (a little slack for what the
     * runtime itself keeps, e.g. a timer's first bucket). */
    ASSERT(llabs(after.lib_heap_objects - before.lib_heap_objects) < 16);
}

/* A buffer goc hands out to be released with free() leaves goc's count
 * as it leaves goc: scrapes never look like a leak in that count. */
TEST_G(stats, lib_heap_lets_go_of_what_the_caller_frees)
{
    goc_registry *r;
    ASSERT_OK(goc_registry_new(&r));
    goc_metric *m;
    struct goc_metric_opts o = { .type = GOC_METRIC_COUNTER,
                                 .name = "c_total",
                                 .help = "C." };
    ASSERT_OK(goc_metric_new(r, &o, &m));
    char *text;
    ASSERT_OK(goc_metrics_text(r, &text, NULL)); /* warm */
    free(text);
    struct goc_stats before = read_stats(GOC_STATS_LIB);
    for (int i = 0; i < 200; i++) {
        ASSERT_OK(goc_metrics_text(r, &text, NULL));
        free(text);
    }
    /* 200 scrapes kept 800 KB; the slack is for what the runtime may
     * allocate meanwhile on another thread (a 64 KB block at times). */
    struct goc_stats after = read_stats(GOC_STATS_LIB);
    ASSERT_LT(llabs(after.lib_heap_objects - before.lib_heap_objects), 8);
    ASSERT_LT(llabs(after.lib_heap_bytes - before.lib_heap_bytes), 160000);
    goc_registry_free(r);
}

/* The snapshot getters that return nothing took NULL as a crash. */
TEST(stats, snapshot_getters_take_null)
{
    struct goc_objpool_stats o = { .gets = 7 };
    goc_objpool_stats(NULL, &o);
    ASSERT_EQ(o.gets, 7);
    struct goc_rpool_stats r = { .created = 7 };
    goc_rpool_stats(NULL, &r);
    ASSERT_EQ(r.created, 7);
    struct goc_keyed_limiter_stats k = { .keys = 7 };
    goc_keyed_limiter_stats(NULL, &k);
    ASSERT_EQ(k.keys, 7);
    struct goc_server_stats s = { .accepted = 7 };
    goc_server_get_stats(NULL, &s);
    ASSERT_EQ(s.accepted, 7);
    goc_registry_get_stats(NULL, NULL);
    goc_objpool *p;
    ASSERT_OK(goc_objpool_new(NULL, &p));
    goc_objpool_stats(p, NULL);
    goc_objpool_free(p);
}

/* ---- lib heap counts read while blocks cross threads -------------------- */

static _Atomic(void *) crossing;
static _Atomic int crossing_done;
static pthread_barrier_t crossing_start;

/* Allocates on its own shard and hands each block to the freer. */
static void *crossing_allocator(void *arg)
{
    (void)arg;
    goc__free(goc__malloc(1)); /* claim a shard now: an early one */
    pthread_barrier_wait(&crossing_start);
    while (!atomic_load(&crossing_done)) {
        void *p = goc__malloc(4000), *none = NULL;
        while (!atomic_compare_exchange_weak(&crossing, &none, p)) {
            none = NULL;
            if (atomic_load(&crossing_done)) {
                goc__free(p);
                return NULL;
            }
        }
    }
    return NULL;
}

static void *crossing_freer(void *arg)
{
    (void)arg;
    goc__free(goc__malloc(1)); /* a later shard, read after the first */
    pthread_barrier_wait(&crossing_start);
    while (!atomic_load(&crossing_done)) {
        void *p = atomic_exchange(&crossing, NULL);
        if (p)
            goc__free(p);
    }
    return NULL;
}

static void *claim_a_shard(void *arg)
{
    (void)arg;
    goc__free(goc__malloc(1));
    return NULL;
}

/*
 * Blocks allocated on one thread and freed on another while the counts
 * are read: they never read below zero. The reader summed the shards one
 * by one, and a free on a shard read after the allocation's could be seen
 * without the allocation: -32 MB and -8,000 objects, seen.
 */
TEST(stats, lib_heap_never_reads_negative_while_blocks_cross_threads)
{
    pthread_t a, f, t;
    atomic_store(&crossing_done, 0);
    ASSERT_OK(pthread_barrier_init(&crossing_start, NULL, 3));
    ASSERT_OK(pthread_create(&a, NULL, crossing_allocator, NULL));
    usleep(10000);
    for (int i = 0; i < 40; i++) { /* put the freer's shard far after */
        ASSERT_OK(pthread_create(&t, NULL, claim_a_shard, NULL));
        ASSERT_OK(pthread_join(t, NULL));
    }
    ASSERT_OK(pthread_create(&f, NULL, crossing_freer, NULL));
    pthread_barrier_wait(&crossing_start);
    int64_t end = goc_now() + test_scale(500) * GOC_MILLISECOND;
    int64_t low_bytes = INT64_MAX, low_objects = INT64_MAX;
    while (goc_now() < end) {
        struct goc_stats st;
        ASSERT_OK(goc_stats_read(&st, GOC_STATS_LIB));
        if (st.lib_heap_bytes < low_bytes)
            low_bytes = st.lib_heap_bytes;
        if (st.lib_heap_objects < low_objects)
            low_objects = st.lib_heap_objects;
    }
    atomic_store(&crossing_done, 1);
    ASSERT_OK(pthread_join(a, NULL));
    ASSERT_OK(pthread_join(f, NULL));
    pthread_barrier_destroy(&crossing_start);
    goc__free(atomic_exchange(&crossing, NULL));
    ASSERT_GE(low_bytes, 0);
    ASSERT_GE(low_objects, 0);
}
