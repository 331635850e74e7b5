/* SPDX-License-Identifier: MIT */
/* System and memory monitors: sampling, thresholds with hysteresis,
 * idempotent start and stop, callbacks outside the lock. */
#include "test.h"

#include <limits.h>

#include <goc.h>

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define MS 1000000LL

static goc_monitor *new_monitor(int64_t interval, unsigned sources, int history)
{
    struct goc_monitor_opts o = { .interval = interval,
                                  .sources = sources,
                                  .history = history };
    goc_monitor *m;
    ASSERT_OK(goc_monitor_new(&o, &m));
    return m;
}

/* Wait (5 s at most) for a sample numbered at least seq; returns it. */
static struct goc_monitor_sample wait_seq(goc_monitor *m, uint64_t seq)
{
    struct goc_monitor_sample s = { 0 };
    for (int i = 0; i < 5000; i++) {
        if (goc_monitor_snapshot(m, &s) == 0 && s.seq >= seq)
            return s;
        goc_sleep(MS, NULL);
    }
    ASSERT_FAIL("no sample %llu", (unsigned long long)seq);
    return s;
}

static double zero(void *arg)
{
    (void)arg;
    return 0;
}

static void never(const struct goc_mon_event *ev, void *arg)
{
    (void)ev;
    (void)arg;
}

TEST_G(monitor, rejects_bad_input)
{
    goc_monitor *m;
    struct goc_monitor_opts o = { .interval = 0 };
    ASSERT_EQ(goc_monitor_new(&o, &m), -EINVAL);
    o.interval = -1;
    ASSERT_EQ(goc_monitor_new(&o, &m), -EINVAL);
    o.interval = MS;
    o.history = -1;
    ASSERT_EQ(goc_monitor_new(&o, &m), -EINVAL);
    o.history = 0;
    o.sources = 1u << 12;
    ASSERT_EQ(goc_monitor_new(&o, &m), -EINVAL);
    ASSERT_EQ(goc_monitor_new(NULL, &m), -EINVAL);
    o.sources = 0;
    ASSERT_EQ(goc_monitor_new(&o, NULL), -EINVAL);

    m = new_monitor(MS, GOC_STATS_SCHED, 0);
    struct goc_monitor_sample s = { 0 };
    ASSERT_EQ(goc_monitor_snapshot(m, &s), -EAGAIN);
    ASSERT_EQ(
        goc_monitor_on_threshold(m, GOC_MON_GOROUTINES, 1, 2, never, NULL),
        -EINVAL); /* low above high */
    ASSERT_EQ(
        goc_monitor_on_threshold(m, GOC_MON_GOROUTINES, NAN, 0, never, NULL),
        -EINVAL);
    ASSERT_EQ(goc_monitor_on_threshold(m, GOC_MON_GOROUTINES, 2, 1, NULL, NULL),
              -EINVAL);
    /* Not sampled by this monitor, or not a metric at all. */
    ASSERT_EQ(goc_monitor_on_threshold(m, GOC_MON_RSS_BYTES, 2, 1, never, NULL),
              -EINVAL);
    ASSERT_EQ(goc_monitor_on_threshold(m, GOC_MON_CUSTOM(0), 2, 1, never, NULL),
              -EINVAL);
    ASSERT_EQ(goc_monitor_on_threshold(m, -1, 2, 1, never, NULL), -EINVAL);
    /* The most negative metric: refused without overflowing (UBSan). */
    ASSERT_EQ(goc_monitor_on_threshold(m, INT_MIN, 2, 1, never, NULL), -EINVAL);
    ASSERT(goc_monitor_metric_name(m, INT_MIN) == NULL);
    ASSERT(isnan(goc_monitor_value(&s, INT_MIN)));
    ASSERT_EQ(goc_monitor_add_source(m, NULL, zero, NULL), -EINVAL);
    ASSERT_EQ(goc_monitor_add_source(m, "x", NULL, NULL), -EINVAL);
    for (int i = 0; i < GOC_MONITOR_MAX_CUSTOM; i++)
        ASSERT_EQ(goc_monitor_add_source(m, "x", zero, NULL),
                  GOC_MON_CUSTOM(i));
    ASSERT_EQ(goc_monitor_add_source(m, "x", zero, NULL), -ENOSPC);
    for (int i = 0; i < GOC_MONITOR_MAX_THRESHOLDS; i++)
        ASSERT_EQ(
            goc_monitor_on_threshold(m, GOC_MON_CUSTOM(1), 2, 1, never, NULL),
            i);
    ASSERT_EQ(goc_monitor_on_threshold(m, GOC_MON_CUSTOM(1), 2, 1, never, NULL),
              -ENOSPC);
    ASSERT_OK(goc_monitor_remove_threshold(m, 3));
    ASSERT_EQ(goc_monitor_remove_threshold(m, 3), -ENOENT);
    ASSERT_EQ(goc_monitor_remove_threshold(m, 999), -ENOENT);
    ASSERT_EQ(goc_monitor_remove_threshold(NULL, 0), -EINVAL);
    ASSERT_EQ(goc_monitor_start(NULL), -EINVAL);
    ASSERT_EQ(goc_monitor_stop(NULL), -EINVAL);
    ASSERT(isnan(goc_monitor_value(&s, 12345)));
    ASSERT_STR(goc_monitor_metric_name(NULL, GOC_MON_RSS_BYTES), "rss_bytes");
    ASSERT_STR(goc_monitor_metric_name(NULL, GOC_MON_LIB_HEAP_BYTES),
               "lib_heap_bytes");
    ASSERT(goc_monitor_metric_name(NULL, GOC_MON_CUSTOM(0)) == NULL);
    ASSERT_OK(goc_monitor_free(m));
    ASSERT_OK(goc_monitor_free(NULL));
}

static _Atomic int first_samples;

static void count_first(const struct goc_monitor_sample *s, void *arg)
{
    (void)arg;
    if (s->seq == 1)
        atomic_fetch_add(&first_samples, 1);
}

TEST_G(monitor, start_and_stop_are_idempotent)
{
    struct goc_monitor_opts o = { .interval = MS,
                                  .sources = GOC_STATS_SCHED,
                                  .on_sample = count_first };
    goc_monitor *m;
    ASSERT_OK(goc_monitor_new(&o, &m));
    int64_t base = goc_num_goroutine();
    ASSERT_OK(goc_monitor_start(m));
    ASSERT_OK(goc_monitor_start(m)); /* no second sampler */
    ASSERT(goc_monitor_running(m));
    wait_seq(m, 3);
    ASSERT_EQ(goc_num_goroutine(), base + 1);
    ASSERT_OK(goc_monitor_stop(m));
    ASSERT_OK(goc_monitor_stop(m));
    ASSERT(!goc_monitor_running(m));
    /* The sampler has ended; its goroutine returns right after. */
    while (goc_num_goroutine() > base)
        goc_yield();
    struct goc_monitor_sample last;
    ASSERT_OK(goc_monitor_snapshot(m, &last)); /* kept after stop */
    goc_sleep(5 * MS, NULL);
    struct goc_monitor_sample again;
    ASSERT_OK(goc_monitor_snapshot(m, &again));
    ASSERT_EQ(again.seq, last.seq); /* really stopped */
    /* Start after stop starts again, numbering from 1. */
    ASSERT_EQ(atomic_load(&first_samples), 1);
    ASSERT_OK(goc_monitor_start(m));
    while (atomic_load(&first_samples) < 2)
        goc_sleep(MS, NULL);
    wait_seq(m, 2);
    ASSERT_OK(goc_monitor_free(m)); /* stops it too */
}

TEST_G(monitor, first_sample_at_once_then_at_interval)
{
    goc_monitor *m = new_monitor(3600 * 1000 * MS, GOC_STATS_SCHED, 0);
    int64_t t0 = goc_now();
    ASSERT_OK(goc_monitor_start(m));
    struct goc_monitor_sample s = wait_seq(m, 1);
    ASSERT_EQ(s.seq, 1);
    ASSERT_LT(s.stats.time - t0, 2000 * MS); /* not an hour later */
    ASSERT_GE(s.stats.goroutines, 2);
    ASSERT_OK(goc_monitor_free(m));

    /* A short interval: a history ring of the newest, oldest first. */
    m = new_monitor(MS, GOC_STATS_SCHED, 4);
    ASSERT_OK(goc_monitor_start(m));
    wait_seq(m, 10);
    ASSERT_OK(goc_monitor_stop(m));
    struct goc_monitor_sample h[6];
    ASSERT_EQ(goc_monitor_history(m, h, 6), 4);
    struct goc_monitor_sample last;
    ASSERT_OK(goc_monitor_snapshot(m, &last));
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(h[i].seq, last.seq - 3 + (uint64_t)i);
    for (int i = 1; i < 4; i++)
        ASSERT_GT(h[i].stats.time, h[i - 1].stats.time);
    ASSERT_EQ(goc_monitor_history(m, h, 2), 2);
    ASSERT_EQ(h[1].seq, last.seq);
    ASSERT_OK(goc_monitor_free(m));
}

/* An interval as long as INT64_MAX: one sample, then a wait that stop
 * ends. Its deadline used to wrap negative and sample without pause. */
TEST_G(monitor, longest_interval_samples_once_and_stops)
{
    goc_monitor *m = new_monitor(INT64_MAX, GOC_STATS_SCHED, 0);
    ASSERT_OK(goc_monitor_start(m));
    wait_seq(m, 1);
    goc_sleep(30 * MS, NULL);
    struct goc_monitor_sample s;
    ASSERT_OK(goc_monitor_snapshot(m, &s));
    ASSERT_EQ(s.seq, 1);
    ASSERT_OK(goc_monitor_stop(m));
    ASSERT_OK(goc_monitor_free(m));
}

/* A value the test sets, and a log of the threshold events. */
struct probe {
    _Atomic int64_t value;
    goc_mutex mu;
    int n;
    enum goc_mon_edge edges[16];
    double values[16];
};

static double probe_value(void *arg)
{
    return (double)atomic_load(&((struct probe *)arg)->value);
}

static void probe_event(const struct goc_mon_event *ev, void *arg)
{
    struct probe *p = arg;
    goc_mutex_lock(&p->mu, NULL);
    if (p->n < 16) {
        p->edges[p->n] = ev->edge;
        p->values[p->n] = ev->value;
    }
    p->n++;
    goc_mutex_unlock(&p->mu);
}

static int probe_events(struct probe *p)
{
    goc_mutex_lock(&p->mu, NULL);
    int n = p->n;
    goc_mutex_unlock(&p->mu);
    return n;
}

/* Set the value and wait until two samples have seen it, so that the
 * sample's events have been dispatched. */
static void set_and_sample(goc_monitor *m, struct probe *p, int64_t v)
{
    atomic_store(&p->value, v);
    struct goc_monitor_sample s;
    ASSERT_OK(goc_monitor_snapshot(m, &s));
    wait_seq(m, s.seq + 2);
}

TEST_G(monitor, threshold_fires_once_per_crossing_with_hysteresis)
{
    static struct probe p;
    goc_monitor *m = new_monitor(MS, GOC_STATS_SCHED, 0);
    int metric = goc_monitor_add_source(m, "queue_depth", probe_value, &p);
    ASSERT_EQ(metric, GOC_MON_CUSTOM(0));
    ASSERT_STR(goc_monitor_metric_name(m, metric), "queue_depth");
    ASSERT_GE(goc_monitor_on_threshold(m, metric, 10, 5, probe_event, &p), 0);
    ASSERT_OK(goc_monitor_start(m));
    wait_seq(m, 1);
    set_and_sample(m, &p, 3);
    ASSERT_EQ(probe_events(&p), 0);
    set_and_sample(m, &p, 11); /* rises above high */
    ASSERT_EQ(probe_events(&p), 1);
    ASSERT_EQ(p.edges[0], GOC_MON_ABOVE);
    ASSERT_EQ(p.values[0], 11);
    set_and_sample(m, &p, 20); /* stays above: nothing */
    set_and_sample(m, &p, 8);  /* inside the band: nothing */
    set_and_sample(m, &p, 12); /* above again, never re-armed: nothing */
    ASSERT_EQ(probe_events(&p), 1);
    set_and_sample(m, &p, 4); /* below low: re-armed */
    ASSERT_EQ(probe_events(&p), 2);
    ASSERT_EQ(p.edges[1], GOC_MON_BELOW);
    set_and_sample(m, &p, 7); /* in the band from below: nothing */
    ASSERT_EQ(probe_events(&p), 2);
    set_and_sample(m, &p, 11);
    ASSERT_EQ(probe_events(&p), 3);
    ASSERT_EQ(p.edges[2], GOC_MON_ABOVE);
    ASSERT_OK(goc_monitor_free(m));
}

/* A callback that uses the monitor: it would deadlock under its lock. */
struct reentry {
    goc_monitor *m;
    _Atomic int stop_rc, calls;
};

static void reenter(const struct goc_mon_event *ev, void *arg)
{
    struct reentry *r = arg;
    struct goc_monitor_sample s;
    ASSERT_OK(goc_monitor_snapshot(r->m, &s));
    ASSERT_GE(goc_monitor_history(r->m, &s, 1), 1);
    ASSERT(goc_monitor_running(r->m));
    ASSERT_GE(goc_monitor_add_source(r->m, "late", zero, NULL), 0);
    ASSERT_OK(goc_monitor_remove_threshold(r->m, ev->id));
    atomic_store(&r->stop_rc, goc_monitor_stop(r->m));
    ASSERT_EQ(goc_monitor_free(r->m), -EDEADLK);
    atomic_fetch_add(&r->calls, 1);
}

TEST_G(monitor, callbacks_run_outside_the_lock)
{
    static struct reentry r;
    r.m = new_monitor(MS, GOC_STATS_SCHED, 2);
    atomic_store(&r.stop_rc, 1);
    /* At least one goroutine always runs: fires at the first sample. */
    ASSERT_OK(goc_monitor_on_threshold(r.m, GOC_MON_GOROUTINES, 0.5, 0.5,
                                       reenter, &r));
    ASSERT_OK(goc_monitor_start(r.m));
    while (atomic_load(&r.calls) == 0)
        goc_sleep(MS, NULL);
    ASSERT_EQ(atomic_load(&r.stop_rc), -EDEADLK);
    struct goc_monitor_sample s = wait_seq(r.m, 3);
    ASSERT_EQ(s.ncustom, 1);
    ASSERT_EQ(atomic_load(&r.calls), 1); /* removed from its own callback */
    ASSERT_OK(goc_monitor_free(r.m));
}

struct slow {
    _Atomic int in_callback, calls;
};

static void slow_event(const struct goc_mon_event *ev, void *arg)
{
    (void)ev;
    struct slow *s = arg;
    atomic_store(&s->in_callback, 1);
    atomic_fetch_add(&s->calls, 1);
    goc_sleep(30 * MS, NULL);
    atomic_store(&s->in_callback, 0);
}

static void slow_sample(const struct goc_monitor_sample *s, void *arg)
{
    (void)s;
    slow_event(NULL, arg);
}

TEST_G(monitor, remove_and_stop_wait_for_a_callback_in_flight)
{
    static struct slow s;
    goc_monitor *m = new_monitor(MS, GOC_STATS_SCHED, 0);
    int id = goc_monitor_on_threshold(m, GOC_MON_GOROUTINES, 0.5, 0.5,
                                      slow_event, &s);
    ASSERT_GE(id, 0);
    ASSERT_OK(goc_monitor_start(m));
    while (!atomic_load(&s.in_callback))
        goc_sleep(MS / 10, NULL);
    ASSERT_OK(goc_monitor_remove_threshold(m, id));
    ASSERT_EQ(atomic_load(&s.in_callback), 0);
    int calls = atomic_load(&s.calls);
    goc_sleep(10 * MS, NULL);
    ASSERT_EQ(atomic_load(&s.calls), calls);
    ASSERT_OK(goc_monitor_free(m));

    /* Stop waits for an on_sample callback under way. */
    static struct slow s2;
    struct goc_monitor_opts o = { .interval = MS,
                                  .sources = GOC_STATS_SCHED,
                                  .on_sample = slow_sample,
                                  .arg = &s2 };
    ASSERT_OK(goc_monitor_new(&o, &m));
    ASSERT_OK(goc_monitor_start(m));
    while (!atomic_load(&s2.in_callback))
        goc_sleep(MS / 10, NULL);
    ASSERT_OK(goc_monitor_stop(m));
    ASSERT_EQ(atomic_load(&s2.in_callback), 0);
    ASSERT_OK(goc_monitor_free(m));
}

static void *lifecycle_in_thread(void *arg)
{
    (void)arg;
    goc_monitor *m = new_monitor(MS, GOC_STATS_SCHED | GOC_STATS_PROCESS, 0);
    ASSERT_OK(goc_monitor_start(m));
    struct goc_monitor_sample s = wait_seq(m, 2);
    ASSERT_GT(goc_monitor_value(&s, GOC_MON_RSS_BYTES), 0);
    ASSERT_EQ(goc_monitor_value(&s, GOC_MON_LIB_HEAP_BYTES), 0); /* not asked */
    ASSERT_OK(goc_monitor_stop(m));
    ASSERT_OK(goc_monitor_free(m));
    m = new_monitor(MS, 0, 0); /* the default sources include LIB */
    ASSERT_OK(goc_monitor_start(m));
    s = wait_seq(m, 1);
    ASSERT_GT(goc_monitor_value(&s, GOC_MON_LIB_HEAP_BYTES), 0);
    ASSERT_GT(goc_monitor_value(&s, GOC_MON_LIB_HEAP_OBJECTS), 0);
    ASSERT_OK(goc_monitor_stop(m));
    ASSERT_OK(goc_monitor_free(m));
    return NULL;
}

TEST(monitor, works_from_plain_threads)
{
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, lifecycle_in_thread, NULL));
    ASSERT_OK(test_join(t, NULL));
    /* Started by a goroutine, stopped by a plain thread. */
    lifecycle_in_thread(NULL);
    test_no_leaks();
}

TEST_G(monitor, rss_threshold_follows_real_memory)
{
    static struct probe p;
    goc_monitor *m = new_monitor(MS, GOC_STATS_PROCESS, 0);
    ASSERT_OK(goc_monitor_start(m));
    struct goc_monitor_sample s = wait_seq(m, 1);
    double rss = goc_monitor_value(&s, GOC_MON_RSS_BYTES);
    size_t big = 64 << 20;
    ASSERT_GE(goc_monitor_on_threshold(m, GOC_MON_RSS_BYTES, rss + big / 2,
                                       rss + big / 4, probe_event, &p),
              0);
    char *mem = mmap(NULL, big, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(mem != MAP_FAILED);
    memset(mem, 1, big);
    while (probe_events(&p) < 1)
        goc_sleep(MS, NULL);
    ASSERT_EQ(p.edges[0], GOC_MON_ABOVE);
    munmap(mem, big);
    while (probe_events(&p) < 2)
        goc_sleep(MS, NULL);
    ASSERT_EQ(p.edges[1], GOC_MON_BELOW);
    ASSERT_OK(goc_monitor_free(m));
}

/* A callback that restarts its monitor while another caller stops it. */
struct restart {
    goc_monitor *m;
    _Atomic int in_callback, start_rc;
};

static void restart_during_stop(const struct goc_monitor_sample *s, void *arg)
{
    (void)s;
    struct restart *r = arg;
    if (atomic_exchange(&r->in_callback, 1))
        return;                       /* only the first sample */
    while (goc_monitor_running(r->m)) /* until the stop is under way */
        goc_sleep(MS / 10, NULL);
    atomic_store(&r->start_rc, goc_monitor_start(r->m));
}

TEST_G(monitor, start_from_a_callback_during_stop_is_refused)
{
    static struct restart r;
    atomic_store(&r.start_rc, 1);
    struct goc_monitor_opts o = { .interval = MS,
                                  .sources = GOC_STATS_SCHED,
                                  .on_sample = restart_during_stop,
                                  .arg = &r };
    ASSERT_OK(goc_monitor_new(&o, &r.m));
    ASSERT_OK(goc_monitor_start(r.m));
    while (!atomic_load(&r.in_callback))
        goc_sleep(MS / 10, NULL);
    ASSERT_OK(goc_monitor_stop(r.m)); /* waits for the callback */
    ASSERT_EQ(atomic_load(&r.start_rc), -EDEADLK);
    ASSERT(!goc_monitor_running(r.m)); /* the stop won: nothing restarted */
    ASSERT_OK(goc_monitor_free(r.m));
}

/* Two thresholds cross in the same round; the first one's callback
 * removes the second, whose callback must then not run: its removal
 * returned, so its argument may already be gone. */
struct pair {
    goc_monitor *m;
    int second;
    _Atomic int first_runs, second_runs;
};

static double ten(void *arg)
{
    (void)arg;
    return 10;
}

static void remove_second(const struct goc_mon_event *ev, void *arg)
{
    (void)ev;
    struct pair *p = arg;
    if (atomic_fetch_add(&p->first_runs, 1) == 0)
        ASSERT_OK(goc_monitor_remove_threshold(p->m, p->second));
}

static void count_second(const struct goc_mon_event *ev, void *arg)
{
    (void)ev;
    atomic_fetch_add(&((struct pair *)arg)->second_runs, 1);
}

TEST_G(monitor, threshold_removed_in_its_round_does_not_run)
{
    struct pair p = { .m = new_monitor(10 * MS, GOC_STATS_SCHED, 0) };
    int src = goc_monitor_add_source(p.m, "ten", ten, NULL);
    ASSERT_GE(src, 0);
    ASSERT_EQ(goc_monitor_on_threshold(p.m, src, 5, 5, remove_second, &p), 0);
    p.second = goc_monitor_on_threshold(p.m, src, 5, 5, count_second, &p);
    ASSERT_EQ(p.second, 1); /* dispatched after the first */
    ASSERT_OK(goc_monitor_start(p.m));
    wait_seq(p.m, 2);
    ASSERT_OK(goc_monitor_free(p.m));
    ASSERT_EQ(atomic_load(&p.first_runs), 1);
    ASSERT_EQ(atomic_load(&p.second_runs), 0);
}

/*
 * A stop and a start race: the start waits for the stop to end the
 * sampler, and may begin a new run before the stop looks again. The stop
 * must still return (it waited for the state to read idle, and hung).
 */
static void slow_round(const struct goc_monitor_sample *s, void *arg)
{
    (void)s;
    (void)arg;
    nanosleep(&(struct timespec){ 0, 20 * MS }, NULL);
}

struct racer {
    goc_monitor *m;
    _Atomic int stopped;
};

static void *stop_thread(void *arg)
{
    struct racer *r = arg;
    ASSERT_OK(goc_monitor_stop(r->m));
    atomic_store(&r->stopped, 1);
    return NULL;
}

static void *start_thread(void *arg)
{
    struct racer *r = arg;
    nanosleep(&(struct timespec){ 0, 5 * MS }, NULL);
    ASSERT_OK(goc_monitor_start(r->m));
    return NULL;
}

TEST_G(monitor, stop_racing_a_restart_returns)
{
    for (int i = 0; i < 10; i++) {
        struct goc_monitor_opts o = { .interval = 1000 * MS,
                                      .sources = GOC_STATS_SCHED,
                                      .on_sample = slow_round };
        struct racer r = { 0 };
        ASSERT_OK(goc_monitor_new(&o, &r.m));
        ASSERT_OK(goc_monitor_start(r.m));
        goc_sleep(2 * MS, NULL); /* the sampler is in its first round */
        pthread_t a, b;
        ASSERT_OK(pthread_create(&a, NULL, stop_thread, &r));
        ASSERT_OK(pthread_create(&b, NULL, start_thread, &r));
        ASSERT_OK(test_join(b, NULL));
        for (int k = 0; k < 500 && !atomic_load(&r.stopped); k++)
            goc_sleep(10 * MS, NULL);
        bool stopped = atomic_load(&r.stopped);
        if (!stopped)
            goc_monitor_stop(r.m); /* releases it, to clean up */
        ASSERT_OK(test_join(a, NULL));
        ASSERT(stopped);
        ASSERT_OK(goc_monitor_free(r.m));
    }
}
