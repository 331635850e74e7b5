/* SPDX-License-Identifier: MIT */
/*
 * System and memory monitors: a goroutine samples at an interval, keeps a
 * ring of samples and reports threshold crossings with hysteresis.
 *
 * One mutex guards the monitor's state. The sampler reads its sources,
 * then, under the mutex, stores the sample and decides which thresholds
 * crossed, copying those events out; it calls back only after unlocking.
 * A removal waits for a callback round in flight, so once it returns its
 * callback's argument may be freed.
 */
#include "goc/monitor.h"
#include "goc/context.h"
#include "goc/runtime.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "../internal/alloc.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { IDLE, RUNNING, STOPPING };

struct source {
    char name[64];
    goc_mon_source_fn fn;
    void *arg;
};

struct threshold {
    bool used, above;
    uint32_t gen; /* changes on every add and removal of this slot */
    int metric;
    double high, low;
    goc_mon_threshold_fn fn;
    void *arg;
};

struct goc_monitor {
    struct goc_monitor_opts opts;
    goc_mutex mu;
    goc_cond changed; /* state or dispatching changed */
    int state;
    uint64_t runs, runs_ended; /* samplers started, samplers exited */
    bool dispatching;          /* the sampler is running callbacks */
    int64_t sampler_id;        /* the sampler goroutine, while it runs */
    goc_ctx *stop;             /* cancels the sampler */
    int nsources;
    struct source sources[GOC_MONITOR_MAX_CUSTOM];
    struct threshold thresholds[GOC_MONITOR_MAX_THRESHOLDS];
    /* Events of the round being dispatched (sampler only). */
    struct goc_mon_event events[GOC_MONITOR_MAX_THRESHOLDS];
    goc_mon_threshold_fn event_fn[GOC_MONITOR_MAX_THRESHOLDS];
    void *event_arg[GOC_MONITOR_MAX_THRESHOLDS];
    uint32_t event_gen[GOC_MONITOR_MAX_THRESHOLDS];
    /* Samples: ring[(head - 1) % cap] is the latest; count of them kept. */
    struct goc_monitor_sample *ring;
    int cap, head, count;
    uint64_t seq;
};

static const struct {
    const char *name;
    unsigned source;
} builtin[GOC_MON_NBUILTIN] = {
    [GOC_MON_GOROUTINES] = { "goroutines", GOC_STATS_SCHED },
    [GOC_MON_THREADS] = { "threads", GOC_STATS_SCHED },
    [GOC_MON_RUNQ] = { "runq", GOC_STATS_SCHED },
    [GOC_MON_IO_WAITERS] = { "io_waiters", GOC_STATS_SCHED },
    [GOC_MON_TIMERS] = { "timers", GOC_STATS_SCHED },
    [GOC_MON_BLOCKING_THREADS] = { "blocking_threads", GOC_STATS_SCHED },
    [GOC_MON_SWITCH_RATE] = { "switches_per_second", GOC_STATS_SCHED },
    [GOC_MON_PARK_RATE] = { "parks_per_second", GOC_STATS_SCHED },
    [GOC_MON_STACK_RESERVED_BYTES] = { "stack_reserved_bytes",
                                       GOC_STATS_SCHED },
    [GOC_MON_STACK_RESIDENT_BYTES] = { "stack_resident_bytes",
                                       GOC_STATS_STACK_RESIDENT },
    [GOC_MON_RSS_BYTES] = { "rss_bytes", GOC_STATS_PROCESS },
    [GOC_MON_RSS_PEAK_BYTES] = { "rss_peak_bytes", GOC_STATS_PROCESS },
    [GOC_MON_OS_THREADS] = { "os_threads", GOC_STATS_PROCESS },
    [GOC_MON_HEAP_INUSE_BYTES] = { "heap_inuse_bytes", GOC_STATS_HEAP },
    [GOC_MON_HEAP_FREE_BYTES] = { "heap_free_bytes", GOC_STATS_HEAP },
    [GOC_MON_HEAP_ARENA_BYTES] = { "heap_arena_bytes", GOC_STATS_HEAP },
    [GOC_MON_HEAP_MMAP_BYTES] = { "heap_mmap_bytes", GOC_STATS_HEAP },
    [GOC_MON_LIB_HEAP_BYTES] = { "lib_heap_bytes", GOC_STATS_LIB },
    [GOC_MON_LIB_HEAP_OBJECTS] = { "lib_heap_objects", GOC_STATS_LIB },
};

double goc_monitor_value(const struct goc_monitor_sample *s, int metric)
{
    if (!s)
        return NAN;
    const struct goc_stats *st = &s->stats;
    switch (metric) {
    case GOC_MON_GOROUTINES:
        return (double)st->goroutines;
    case GOC_MON_THREADS:
        return st->threads;
    case GOC_MON_RUNQ:
        return (double)(st->runq_global + st->runq_local);
    case GOC_MON_IO_WAITERS:
        return st->io_waiters;
    case GOC_MON_TIMERS:
        return (double)st->timers;
    case GOC_MON_BLOCKING_THREADS:
        return st->blocking_threads;
    case GOC_MON_SWITCH_RATE:
        return s->switch_rate;
    case GOC_MON_PARK_RATE:
        return s->park_rate;
    case GOC_MON_STACK_RESERVED_BYTES:
        return (double)st->stack_reserved_bytes;
    case GOC_MON_STACK_RESIDENT_BYTES:
        return (double)st->stack_resident_bytes;
    case GOC_MON_RSS_BYTES:
        return (double)st->rss_bytes;
    case GOC_MON_RSS_PEAK_BYTES:
        return (double)st->rss_peak_bytes;
    case GOC_MON_OS_THREADS:
        return st->os_threads;
    case GOC_MON_HEAP_INUSE_BYTES:
        return (double)st->heap_inuse_bytes;
    case GOC_MON_HEAP_FREE_BYTES:
        return (double)st->heap_free_bytes;
    case GOC_MON_HEAP_ARENA_BYTES:
        return (double)st->heap_arena_bytes;
    case GOC_MON_HEAP_MMAP_BYTES:
        return (double)st->heap_mmap_bytes;
    case GOC_MON_LIB_HEAP_BYTES:
        return (double)st->lib_heap_bytes;
    case GOC_MON_LIB_HEAP_OBJECTS:
        return (double)st->lib_heap_objects;
    default:
        break;
    }
    if (metric < GOC_MON_NBUILTIN) /* also keeps the next line in range */
        return NAN;
    int i = metric - GOC_MON_NBUILTIN;
    return i < s->ncustom ? s->custom[i] : NAN;
}

const char *goc_monitor_metric_name(goc_monitor *m, int metric)
{
    if (metric >= 0 && metric < GOC_MON_NBUILTIN)
        return builtin[metric].name;
    if (!m || metric < GOC_MON_NBUILTIN)
        return NULL;
    int i = metric - GOC_MON_NBUILTIN;
    goc_mutex_lock(&m->mu, NULL);
    /* Sources are never removed, so the name outlives the lock. */
    const char *name = i < m->nsources ? m->sources[i].name : NULL;
    goc_mutex_unlock(&m->mu);
    return name;
}

int goc_monitor_new(const struct goc_monitor_opts *opts, goc_monitor **out)
{
    if (!opts || !out || opts->interval <= 0 || opts->history < 0 ||
        (opts->sources & ~(unsigned)GOC_STATS_ALL))
        return -EINVAL;
    goc_monitor *m = goc__calloc(1, sizeof(*m));
    int cap = opts->history > 0 ? opts->history : 1;
    struct goc_monitor_sample *ring = goc__calloc((size_t)cap, sizeof(*ring));
    if (!m || !ring) {
        goc__free(m);
        goc__free(ring);
        return -ENOMEM;
    }
    m->opts = *opts;
    if (!m->opts.sources)
        m->opts.sources = GOC_STATS_SCHED | GOC_STATS_PROCESS | GOC_STATS_HEAP |
                          GOC_STATS_LIB;
    m->ring = ring;
    m->cap = cap;
    m->sampler_id = -1;
    *out = m;
    return 0;
}

int goc_monitor_add_source(goc_monitor *m,
                           const char *name,
                           goc_mon_source_fn fn,
                           void *arg)
{
    if (!m || !name || !fn)
        return -EINVAL;
    goc_mutex_lock(&m->mu, NULL);
    int i = m->nsources;
    if (i == GOC_MONITOR_MAX_CUSTOM) {
        goc_mutex_unlock(&m->mu);
        return -ENOSPC;
    }
    struct source *s = &m->sources[i];
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->fn = fn;
    s->arg = arg;
    m->nsources = i + 1;
    goc_mutex_unlock(&m->mu);
    return GOC_MON_CUSTOM(i);
}

/* True if metric is one m samples (caller holds m->mu). */
static bool metric_sampled(goc_monitor *m, int metric)
{
    if (metric >= 0 && metric < GOC_MON_NBUILTIN)
        return (builtin[metric].source & m->opts.sources) != 0;
    return metric >= GOC_MON_NBUILTIN &&
           metric - GOC_MON_NBUILTIN < m->nsources;
}

int goc_monitor_on_threshold(goc_monitor *m,
                             int metric,
                             double high,
                             double low,
                             goc_mon_threshold_fn fn,
                             void *arg)
{
    if (!m || !fn || isnan(high) || isnan(low) || low > high)
        return -EINVAL;
    goc_mutex_lock(&m->mu, NULL);
    int err = metric_sampled(m, metric) ? -ENOSPC : -EINVAL;
    for (int id = 0; err == -ENOSPC && id < GOC_MONITOR_MAX_THRESHOLDS; id++) {
        struct threshold *t = &m->thresholds[id];
        if (t->used)
            continue;
        *t = (struct threshold){ .used = true,
                                 .gen = t->gen + 1,
                                 .metric = metric,
                                 .high = high,
                                 .low = low,
                                 .fn = fn,
                                 .arg = arg };
        err = id;
    }
    goc_mutex_unlock(&m->mu);
    return err;
}

/* True if the caller is m's sampler goroutine (caller holds m->mu). */
static bool on_sampler(goc_monitor *m)
{
    return m->state != IDLE && m->sampler_id >= 0 && goc_id() == m->sampler_id;
}

int goc_monitor_remove_threshold(goc_monitor *m, int id)
{
    if (!m)
        return -EINVAL;
    if (id < 0 || id >= GOC_MONITOR_MAX_THRESHOLDS)
        return -ENOENT;
    goc_mutex_lock(&m->mu, NULL);
    int err = m->thresholds[id].used ? 0 : -ENOENT;
    if (err == 0) {
        m->thresholds[id].used = false;
        m->thresholds[id].gen++; /* a round in flight skips its event */
    }
    /* A round in flight may hold a copy of the callback: let it end. */
    while (err == 0 && m->dispatching && !on_sampler(m))
        goc_cond_wait(&m->changed, &m->mu, NULL);
    goc_mutex_unlock(&m->mu);
    return err;
}

/* ---- sampling ----------------------------------------------------------- */

static double per_second(uint64_t now, uint64_t before, int64_t ns)
{
    return ns > 0 ? (double)(now - before) * 1e9 / (double)ns : 0;
}

/* Read every source into s; prev is the run's previous sample or NULL. */
static void take_sample(goc_monitor *m,
                        struct goc_monitor_sample *s,
                        const struct goc_monitor_sample *prev)
{
    memset(s, 0, sizeof(*s));
    goc_stats_read(&s->stats, m->opts.sources);
    if (prev) {
        int64_t ns = s->stats.time - prev->stats.time;
        s->switch_rate =
            per_second(s->stats.switches_total, prev->stats.switches_total, ns);
        s->park_rate =
            per_second(s->stats.parks_total, prev->stats.parks_total, ns);
    }
    struct source src[GOC_MONITOR_MAX_CUSTOM];
    goc_mutex_lock(&m->mu, NULL);
    int n = m->nsources;
    memcpy(src, m->sources, sizeof(src[0]) * (size_t)n);
    goc_mutex_unlock(&m->mu);
    for (int i = 0; i < n; i++) /* the caller's code: no lock held */
        s->custom[i] = src[i].fn(src[i].arg);
    s->ncustom = n;
}

/* Store s and copy out the crossings (caller holds m->mu); the count. */
static int record(goc_monitor *m, struct goc_monitor_sample *s)
{
    s->seq = ++m->seq;
    m->ring[m->head] = *s;
    m->head = (m->head + 1) % m->cap;
    if (m->count < m->cap)
        m->count++;
    int n = 0;
    for (int id = 0; id < GOC_MONITOR_MAX_THRESHOLDS; id++) {
        struct threshold *t = &m->thresholds[id];
        double v = goc_monitor_value(s, t->metric);
        if (!t->used || isnan(v))
            continue;
        bool cross = t->above ? v < t->low : v > t->high;
        if (!cross)
            continue;
        t->above = !t->above;
        m->events[n] =
            (struct goc_mon_event){ .id = id,
                                    .metric = t->metric,
                                    .value = v,
                                    .high = t->high,
                                    .low = t->low,
                                    .edge = t->above ? GOC_MON_ABOVE
                                                     : GOC_MON_BELOW };
        m->event_fn[n] = t->fn;
        m->event_arg[n] = t->arg;
        m->event_gen[n] = t->gen;
        n++;
    }
    m->dispatching = true;
    return n;
}

static void dispatch(goc_monitor *m, const struct goc_monitor_sample *s, int n)
{
    if (m->opts.on_sample)
        m->opts.on_sample(s, m->opts.arg);
    for (int i = 0; i < n; i++) {
        /* A callback of this round (or on_sample) may have removed a
         * later one: removal on the sampler cannot wait for the round,
         * so the round checks. Any other remover waits for the round. */
        struct threshold *t = &m->thresholds[m->events[i].id];
        goc_mutex_lock(&m->mu, NULL);
        bool live = t->used && t->gen == m->event_gen[i];
        goc_mutex_unlock(&m->mu);
        if (!live)
            continue;
        m->events[i].sample = s;
        m->event_fn[i](&m->events[i], m->event_arg[i]);
    }
    goc_mutex_lock(&m->mu, NULL);
    m->dispatching = false;
    goc_cond_broadcast(&m->changed);
    goc_mutex_unlock(&m->mu);
}

/* t + d, saturating: an interval may be as long as INT64_MAX. */
static int64_t after(int64_t t, int64_t d)
{
    return t > INT64_MAX - d ? INT64_MAX : t + d;
}

static void sampler(void *arg)
{
    goc_monitor *m = arg;
    goc_mutex_lock(&m->mu, NULL);
    m->sampler_id = goc_id();
    goc_ctx *stop = m->stop;
    goc_mutex_unlock(&m->mu);

    struct goc_monitor_sample cur, prev;
    bool have_prev = false;
    int64_t next = goc_now();
    while (goc_ctx_err(stop) == 0) {
        take_sample(m, &cur, have_prev ? &prev : NULL);
        goc_mutex_lock(&m->mu, NULL);
        int n = record(m, &cur);
        goc_mutex_unlock(&m->mu);
        dispatch(m, &cur, n);
        prev = cur;
        have_prev = true;
        /* Ticker semantics: a late sample skips the ticks it missed. */
        int64_t now = goc_now();
        next = after(next, m->opts.interval);
        if (next <= now)
            next = after(now, m->opts.interval);
        goc_sleep(next - now, stop);
    }
    goc_mutex_lock(&m->mu, NULL);
    goc_ctx_release(m->stop); /* kept until now: stop() only cancels it */
    m->stop = NULL;
    m->state = IDLE;
    m->sampler_id = -1;
    m->runs_ended++;
    goc_cond_broadcast(&m->changed);
    goc_mutex_unlock(&m->mu);
}

/* ---- start and stop ----------------------------------------------------- */

int goc_monitor_start(goc_monitor *m)
{
    if (!m)
        return -EINVAL;
    goc_mutex_lock(&m->mu, NULL);
    /* A stop under way ends the sampler; its own callback cannot wait
     * for that, nor start it again. */
    int err = m->state == STOPPING && on_sampler(m) ? -EDEADLK : 0;
    while (!err && m->state == STOPPING)
        goc_cond_wait(&m->changed, &m->mu, NULL);
    if (!err && m->state == IDLE) {
        err = goc_ctx_with_cancel(goc_ctx_background(), &m->stop);
        for (int id = 0; id < GOC_MONITOR_MAX_THRESHOLDS; id++)
            m->thresholds[id].above = false;
        m->seq = 0;
        struct goc_go_opts go = { .name = "goc.monitor" };
        if (err == 0 && (err = goc_go_ex(sampler, m, &go)) != 0) {
            goc_ctx_release(m->stop);
            m->stop = NULL;
        }
        if (err == 0) {
            m->state = RUNNING;
            m->runs++;
        }
    }
    goc_mutex_unlock(&m->mu);
    return err;
}

int goc_monitor_stop(goc_monitor *m)
{
    if (!m)
        return -EINVAL;
    goc_mutex_lock(&m->mu, NULL);
    if (on_sampler(m)) {
        goc_mutex_unlock(&m->mu);
        return -EDEADLK;
    }
    if (m->state == RUNNING) {
        m->state = STOPPING;
        goc_ctx_cancel(m->stop);
    }
    /* Wait for the sampler running now to end, not for IDLE: a start
     * waiting on the same stop may begin a new run before we look. */
    uint64_t run = m->runs;
    while (m->runs_ended < run)
        goc_cond_wait(&m->changed, &m->mu, NULL);
    goc_mutex_unlock(&m->mu);
    return 0;
}

bool goc_monitor_running(goc_monitor *m)
{
    if (!m)
        return false;
    goc_mutex_lock(&m->mu, NULL);
    bool running = m->state == RUNNING;
    goc_mutex_unlock(&m->mu);
    return running;
}

int goc_monitor_snapshot(goc_monitor *m, struct goc_monitor_sample *out)
{
    if (!m || !out)
        return -EINVAL;
    goc_mutex_lock(&m->mu, NULL);
    int err = m->count ? 0 : -EAGAIN;
    if (m->count)
        *out = m->ring[(m->head + m->cap - 1) % m->cap];
    goc_mutex_unlock(&m->mu);
    return err;
}

int goc_monitor_history(goc_monitor *m, struct goc_monitor_sample *out, int n)
{
    if (!m || (!out && n > 0))
        return -EINVAL;
    goc_mutex_lock(&m->mu, NULL);
    int k = n < m->count ? n : m->count;
    int first = (m->head + m->cap - k) % m->cap; /* skip the oldest extra */
    for (int i = 0; i < k; i++)
        out[i] = m->ring[(first + i) % m->cap];
    goc_mutex_unlock(&m->mu);
    return k < 0 ? 0 : k;
}

int goc_monitor_free(goc_monitor *m)
{
    if (!m)
        return 0;
    int err = goc_monitor_stop(m);
    if (err)
        return err;
    goc__free(m->ring);
    goc__free(m);
    return 0;
}
