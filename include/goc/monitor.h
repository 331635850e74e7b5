/* SPDX-License-Identifier: MIT */
/*
 * goc/monitor.h: system and memory monitors.
 *
 * A goc_monitor samples runtime statistics (goc/stats.h) and values of
 * the caller's own at a fixed interval on a goroutine of its own, keeps
 * the latest sample and a short history, and calls back when a value
 * rises above a threshold and again when it falls back below a lower
 * one (hysteresis), so a value hovering at the limit does not flood the
 * callback. It is the seed's MemoryMonitor and SystemMonitor in one, with
 * their defects absent: start and stop are idempotent, stop waits for the
 * sampler to end, start after stop starts again, and no callback ever
 * runs under the monitor's lock.
 */
#ifndef GOC_MONITOR_H
#define GOC_MONITOR_H

#include "common.h"
#include "stats.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The most values of the caller's own a monitor samples. */
#define GOC_MONITOR_MAX_CUSTOM     8
/** The most thresholds a monitor watches. */
#define GOC_MONITOR_MAX_THRESHOLDS 64

/**
 * enum goc_mon_metric - what a threshold watches; goc_monitor_value()
 * reads one from a sample. Each needs its source in the monitor's
 * @sources (in brackets). Rates are per second over the last interval.
 */
enum goc_mon_metric {
    GOC_MON_GOROUTINES,           /* live goroutines [SCHED] */
    GOC_MON_THREADS,              /* scheduler threads [SCHED] */
    GOC_MON_RUNQ,                 /* runnable goroutines queued [SCHED] */
    GOC_MON_IO_WAITERS,           /* waiting on I/O [SCHED] */
    GOC_MON_TIMERS,               /* runtime timers armed [SCHED] */
    GOC_MON_BLOCKING_THREADS,     /* blocking-pool threads [SCHED] */
    GOC_MON_SWITCH_RATE,          /* goroutine switches per second [SCHED] */
    GOC_MON_PARK_RATE,            /* goroutines parked per second [SCHED] */
    GOC_MON_STACK_RESERVED_BYTES, /* [SCHED] */
    GOC_MON_STACK_RESIDENT_BYTES, /* [STACK_RESIDENT] */
    GOC_MON_RSS_BYTES,            /* [PROCESS] */
    GOC_MON_RSS_PEAK_BYTES,       /* [PROCESS] */
    GOC_MON_OS_THREADS,           /* [PROCESS] */
    GOC_MON_HEAP_INUSE_BYTES,     /* [HEAP] */
    GOC_MON_HEAP_FREE_BYTES,      /* [HEAP] */
    GOC_MON_HEAP_ARENA_BYTES,     /* [HEAP] */
    GOC_MON_HEAP_MMAP_BYTES,      /* [HEAP] */
    GOC_MON_LIB_HEAP_BYTES,       /* goc's own heap in use [LIB] */
    GOC_MON_LIB_HEAP_OBJECTS,     /* goc's own heap blocks [LIB] */
    GOC_MON_NBUILTIN,
};

/** The metric of the caller's value number @i (goc_monitor_add_source). */
#define GOC_MON_CUSTOM(i) (GOC_MON_NBUILTIN + (i))

/** struct goc_monitor_sample - one sample. */
struct goc_monitor_sample {
    uint64_t seq;           /* 1 for a run's first sample */
    struct goc_stats stats; /* time is stats.time */
    double switch_rate, park_rate;
    int ncustom;
    double custom[GOC_MONITOR_MAX_CUSTOM];
};

/** enum goc_mon_edge - which way a threshold was crossed. */
enum goc_mon_edge {
    GOC_MON_ABOVE, /* rose above @high */
    GOC_MON_BELOW, /* fell back below @low: armed again */
};

/** struct goc_mon_event - what a threshold callback is told. */
struct goc_mon_event {
    int id;     /* from goc_monitor_on_threshold */
    int metric; /* enum goc_mon_metric or GOC_MON_CUSTOM(i) */
    enum goc_mon_edge edge;
    double value, high, low;
    const struct goc_monitor_sample *sample;
};

typedef void (*goc_mon_threshold_fn)(const struct goc_mon_event *ev, void *arg);
typedef void (*goc_mon_sample_fn)(const struct goc_monitor_sample *s,
                                  void *arg);
typedef double (*goc_mon_source_fn)(void *arg);

/**
 * struct goc_monitor_opts - how a monitor samples.
 * @interval:  nanoseconds between samples, > 0. A sample that takes
 *             longer than the interval delays the next one; missed ticks
 *             are dropped, never caught up in a burst (Go's Ticker).
 * @sources:   a mask of enum goc_stats_what; 0 means SCHED, PROCESS,
 *             HEAP and LIB (the seed's system and memory monitors
 *             together).
 * @history:   samples kept for goc_monitor_history() (0: the latest only).
 * @on_sample: called after every sample (may be NULL).
 * @arg:       passed to @on_sample.
 */
struct goc_monitor_opts {
    int64_t interval;
    unsigned sources;
    int history;
    goc_mon_sample_fn on_sample;
    void *arg;
};

/** A monitor (heap object). */
typedef struct goc_monitor goc_monitor;

/**
 * goc_monitor_new - create a stopped monitor.
 * @opts: borrowed.
 * @out:  the monitor.
 *
 * Return: 0; -EINVAL (@opts or @out NULL, @interval <= 0, unknown bits
 * in @sources, @history < 0); -ENOMEM.
 */
GOC_API int goc_monitor_new(const struct goc_monitor_opts *opts,
                            goc_monitor **out);

/**
 * goc_monitor_add_source - sample a value of the caller's own as well.
 * @name: for the caller's reports; copied (at most 63 bytes kept).
 * @fn:   returns the value; called on the sampler, with no lock held.
 *
 * Return: the value's metric, GOC_MON_CUSTOM(i); -EINVAL (NULL argument);
 * -ENOSPC (GOC_MONITOR_MAX_CUSTOM already).
 */
GOC_API int goc_monitor_add_source(goc_monitor *m,
                                   const char *name,
                                   goc_mon_source_fn fn,
                                   void *arg);

/**
 * goc_monitor_on_threshold - call @fn when @metric rises above @high, then
 * not again until it has fallen below @low (when @fn is called again, with
 * GOC_MON_BELOW). A metric already above @high at the first sample counts
 * as a crossing.
 * @low: at most @high; equal means no band.
 *
 * Return: an id for goc_monitor_remove_threshold(); -EINVAL (@fn NULL,
 * @low > @high, NaN bounds, an unknown metric or one whose source the
 * monitor does not sample); -ENOSPC (GOC_MONITOR_MAX_THRESHOLDS already).
 */
GOC_API int goc_monitor_on_threshold(goc_monitor *m,
                                     int metric,
                                     double high,
                                     double low,
                                     goc_mon_threshold_fn fn,
                                     void *arg);

/**
 * goc_monitor_remove_threshold - stop watching. Once this returns, the
 * callback is not running and will not run again (from its own callback,
 * only the latter holds), so its @arg may be freed.
 *
 * Return: 0; -EINVAL (NULL); -ENOENT (no such id, or already removed).
 */
GOC_API int goc_monitor_remove_threshold(goc_monitor *m, int id);

/**
 * goc_monitor_start - start sampling on a goroutine: the first sample at
 * once, then one per interval. Idempotent; a stopped monitor starts again
 * (its sequence numbers restart at 1).
 *
 * Return: 0 (started, or already running); -EINVAL (NULL); -ENOMEM;
 * -EDEADLK (from the monitor's own callback while a stop is under way,
 * which waits for that callback: nothing changes).
 */
GOC_API int goc_monitor_start(goc_monitor *m);

/**
 * goc_monitor_stop - stop sampling and wait until the sampler has ended,
 * callbacks included. Idempotent. The latest sample and the history stay
 * readable.
 *
 * Return: 0; -EINVAL (NULL); -EDEADLK (called from one of the monitor's
 * own callbacks, which the sampler would be waiting for).
 */
GOC_API int goc_monitor_stop(goc_monitor *m);

/** goc_monitor_running - true between start and stop. */
GOC_API bool goc_monitor_running(goc_monitor *m);

/**
 * goc_monitor_snapshot - copy the latest sample to @out.
 *
 * Return: 0; -EINVAL (NULL argument); -EAGAIN (no sample yet).
 */
GOC_API int goc_monitor_snapshot(goc_monitor *m,
                                 struct goc_monitor_sample *out);

/**
 * goc_monitor_history - copy the newest @n kept samples (or all, if
 * fewer are kept), oldest first.
 *
 * Return: the number copied; -EINVAL (NULL @m, or @out NULL with @n > 0).
 */
GOC_API int goc_monitor_history(goc_monitor *m,
                                struct goc_monitor_sample *out,
                                int n);

/**
 * goc_monitor_value - @metric's value in @s; NaN for an unknown metric.
 */
GOC_API double goc_monitor_value(const struct goc_monitor_sample *s,
                                 int metric);

/**
 * goc_monitor_metric_name - "goroutines", "rss_bytes", ... or, for a
 * GOC_MON_CUSTOM metric of @m, its name; NULL if unknown (@m may be NULL
 * for built-in metrics).
 */
GOC_API const char *goc_monitor_metric_name(goc_monitor *m, int metric);

/**
 * goc_monitor_free - stop the monitor and free it (NULL ignored).
 *
 * Return: 0; -EDEADLK (from the monitor's own callback: nothing freed).
 */
GOC_API int goc_monitor_free(goc_monitor *m);

#ifdef __cplusplus
}
#endif

#endif /* GOC_MONITOR_H */
