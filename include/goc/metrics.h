/* SPDX-License-Identifier: MIT */
/*
 * goc/metrics.h: Prometheus-style metrics (counters, gauges, histograms,
 * summaries) with labels, registries, the text exposition format 0.0.4 and
 * an HTTP /metrics endpoint on goc's own TCP server.
 *
 * A metric family is created in a registry with its name, help text and
 * label names (goc_metric_new()). Each combination of label values is a
 * child, obtained once with goc_counter_with() & co. and kept by the
 * caller: updating a child is lock-free and never allocates. Counters and
 * histograms are sharded per P (and per thread-hash for plain threads) on
 * separate cache lines, so updates from every P never contend; a scrape
 * sums the shards.
 *
 * Rules follow client_golang: names match [a-zA-Z_:][a-zA-Z0-9_:]*, label
 * names [a-zA-Z_][a-zA-Z0-9_]*, names starting with "__" are reserved, help
 * text is required, a counter never decreases, histogram bounds strictly
 * increase. Bad input returns -EINVAL and changes nothing.
 */
#ifndef GOC_METRICS_H
#define GOC_METRICS_H

#include "common.h"
#include "clock.h"
#include "server.h"

#include <stdbool.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct goc_registry goc_registry;
typedef struct goc_metric goc_metric;
typedef struct goc_counter goc_counter;
typedef struct goc_gauge goc_gauge;
typedef struct goc_histogram goc_histogram;
typedef struct goc_summary goc_summary;
typedef struct goc_collector goc_collector;
typedef struct goc_metric_sink goc_metric_sink;

/** The metric types of the exposition format. */
enum goc_metric_type {
    GOC_METRIC_COUNTER,
    GOC_METRIC_GAUGE,
    GOC_METRIC_HISTOGRAM,
    GOC_METRIC_SUMMARY,
    GOC_METRIC_UNTYPED, /* collectors only */
};

/** A summary objective: the @q-quantile, within +/- @eps in rank. */
struct goc_quantile {
    double q;   /* in [0, 1] */
    double eps; /* in (0, 1): 0 would keep every sample */
};

/** Prometheus' default histogram buckets, in seconds. */
#define GOC_BUCKETS_DEFAULT_N 11
#define GOC_BUCKETS_DEFAULT   .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10

/** Largest number of label names of one family. */
#define GOC_METRIC_MAX_LABELS 16

/**
 * struct goc_metric_opts - what goc_metric_new() creates; zero-fill the
 * fields you do not use.
 * @type:        an enum goc_metric_type (not UNTYPED).
 * @name:        the family's name (copied).
 * @help:        its help text, required, non-empty (copied).
 * @labels:      @nlabels label names (copied); NULL if none.
 * @buckets:     histogram: @nbuckets strictly increasing upper bounds,
 *               +Inf implied (copied); NULL: GOC_BUCKETS_DEFAULT.
 * @objectives:  summary: @nobjectives quantiles to estimate; none: the
 *               summary has only _sum and _count (as in client_golang).
 * @max_age:     summary: quantiles cover the last @max_age ns (0: 10 min).
 * @age_buckets: summary: the window slides in this many steps (0: 5).
 * @clock:       summary: the clock of the window (copied); NULL: goc_now().
 * @track:       gauge: also keep the minimum, the maximum and the time of
 *               the last update (the seed's Metric fields), read with
 *               goc_gauge_extremes(). Costs a clock read per update.
 */
struct goc_metric_opts {
    int type;
    const char *name;
    const char *help;
    const char *const *labels;
    size_t nlabels;
    const double *buckets;
    size_t nbuckets;
    const struct goc_quantile *objectives;
    size_t nobjectives;
    int64_t max_age;
    int age_buckets;
    const goc_clock *clock;
    bool track;
};

/* ---- registries -------------------------------------------------------- */

/**
 * goc_registry_default - the process-wide registry (never freed).
 * Return: the registry; never NULL.
 */
GOC_API goc_registry *goc_registry_default(void);

/**
 * goc_registry_new - an empty registry.
 * Return: 0; -EINVAL if @out is NULL; -ENOMEM.
 */
GOC_API int goc_registry_new(goc_registry **out);

/**
 * goc_registry_free - free @r with every family and collector in it. No
 * scrape, server or update may use it or its metrics any more. The default
 * registry is not freed. NULL is ignored.
 */
GOC_API void goc_registry_free(goc_registry *r);

/**
 * struct goc_registry_stats - what scrapes had to leave out.
 * @dropped_families: families a collector emitted that were invalid or
 *                    clashed with another family (each scrape counts).
 * @dropped_samples:  collector samples refused (bad labels, duplicates,
 *                    no family).
 */
struct goc_registry_stats {
    int64_t dropped_families;
    int64_t dropped_samples;
};

/** goc_registry_get_stats - copy @r's counters into @st (NULL @st:
 * nothing). */
GOC_API void goc_registry_get_stats(goc_registry *r,
                                    struct goc_registry_stats *st);

/* ---- families ---------------------------------------------------------- */

/**
 * goc_metric_new - create a family and register it in @r.
 * @r:   the registry; NULL for goc_registry_default().
 * @o:   what to create (borrowed; everything is copied).
 * @out: receives the family, owned by @r.
 *
 * Return: 0; -EINVAL for a bad name, help, label name (invalid, reserved,
 * repeated, more than GOC_METRIC_MAX_LABELS, "le" on a histogram,
 * "quantile" on a summary), bucket list or objective; -EEXIST if @r has
 * a family of that name, or whose sample names (x_bucket, x_sum, x_count)
 * clash with this one's; -ENOMEM. Nothing is registered on failure.
 * Never blocks (beyond a short internal lock); any thread.
 */
GOC_API int goc_metric_new(goc_registry *r,
                           const struct goc_metric_opts *o,
                           goc_metric **out);

/**
 * goc_metric_unregister - remove @m from its registry and free it with its
 * children. @m and its children must not be used after this returns.
 *
 * A scrape that already holds @m leaves it out, and the memory goes when
 * the last such scrape ends (at once if none holds it): this never waits
 * for scrapes. It waits only while @m's callback (func metrics, or a
 * summary's @clock read by a scrape) is running on another goroutine or
 * thread, so the callback never runs after this returns. It may be called
 * from any callback of the registry, for any family but the one whose
 * callback is running on the caller. (Two callbacks that unregister each
 * other's entries at the same moment on two threads would wait for each
 * other: do not.)
 *
 * Return: 0; -EINVAL if @m is NULL; -EDEADLK if called from @m's own
 * callback, directly or from a scrape made inside it (nothing changes
 * then).
 */
GOC_API int goc_metric_unregister(goc_metric *m);

/**
 * goc_metric_func - a counter or gauge without labels whose value @fn
 * computes at every scrape (client_golang's CounterFunc and GaugeFunc).
 * @type: GOC_METRIC_COUNTER or GOC_METRIC_GAUGE.
 * @fn:   returns the value; it runs on the scraping thread or goroutine,
 *        with no goc lock held, possibly concurrently with itself. It may
 *        update metrics, scrape, and unregister other families and
 *        collectors; unregistering @m itself returns -EDEADLK.
 *
 * Return: as goc_metric_new(); -EINVAL for a NULL @fn or another type.
 */
GOC_API int goc_metric_func(goc_registry *r,
                            int type,
                            const char *name,
                            const char *help,
                            double (*fn)(void *arg),
                            void *arg,
                            goc_metric **out);

/**
 * goc_metric_remove - drop the child with these label values (one per
 * label name, in creation order). A handle to it must not be used any
 * more.
 * Return: 0; -ENOENT if there is no such child; -EINVAL.
 */
GOC_API int goc_metric_remove(goc_metric *m, const char *const *values);

/**
 * goc_metric_clear - drop every child of @m (handles become invalid).
 */
GOC_API void goc_metric_clear(goc_metric *m);

/* ---- children ---------------------------------------------------------- */

/**
 * goc_counter_with - the child of counter family @m for @values (one per
 * label name, copied; NULL if @m has no labels), created at 0 on first
 * use. The same values always give the same handle, valid until it is
 * removed or the family freed. Keep it: the update calls are the fast
 * path, this lookup is not.
 *
 * Return: 0; -EINVAL if @m is not a counter family, a value is NULL or
 * not UTF-8; -ENOMEM.
 */
GOC_API int goc_counter_with(goc_metric *m,
                             const char *const *values,
                             goc_counter **out);
/** goc_gauge_with - as goc_counter_with(), for a gauge family. */
GOC_API int goc_gauge_with(goc_metric *m,
                           const char *const *values,
                           goc_gauge **out);
/** goc_histogram_with - as goc_counter_with(), for a histogram family. */
GOC_API int goc_histogram_with(goc_metric *m,
                               const char *const *values,
                               goc_histogram **out);
/** goc_summary_with - as goc_counter_with(), for a summary family. */
GOC_API int goc_summary_with(goc_metric *m,
                             const char *const *values,
                             goc_summary **out);

/**
 * goc_counter_new - a counter family without labels in @r (NULL: the
 * default registry), and its only child.
 * Return: as goc_metric_new().
 */
GOC_API int goc_counter_new(goc_registry *r,
                            const char *name,
                            const char *help,
                            goc_counter **out);

/** goc_gauge_new - as goc_counter_new(), for a gauge. */
GOC_API int goc_gauge_new(goc_registry *r,
                          const char *name,
                          const char *help,
                          goc_gauge **out);

/* ---- counters ---------------------------------------------------------- */

/** goc_counter_inc - add 1 (one relaxed atomic add on this P's shard). */
GOC_API void goc_counter_inc(goc_counter *c);

/**
 * goc_counter_add - add @v >= 0. Whole values up to 2^53 take the integer
 * path (one atomic add, exact); others a compare-and-swap loop on a double.
 * Return: 0; -EINVAL if @v is negative or NaN (nothing changes).
 */
GOC_API int goc_counter_add(goc_counter *c, double v);

/** goc_counter_value - the current total (sums the shards). */
GOC_API double goc_counter_value(goc_counter *c);

/* ---- gauges ------------------------------------------------------------ */

/** goc_gauge_set - set the value. Lock-free; any thread. */
GOC_API void goc_gauge_set(goc_gauge *g, double v);
/** goc_gauge_inc - add 1. */
GOC_API void goc_gauge_inc(goc_gauge *g);
/** goc_gauge_dec - subtract 1. */
GOC_API void goc_gauge_dec(goc_gauge *g);
/** goc_gauge_add - add @v (any sign); a compare-and-swap loop. */
GOC_API void goc_gauge_add(goc_gauge *g, double v);
/** goc_gauge_sub - subtract @v. */
GOC_API void goc_gauge_sub(goc_gauge *g, double v);
/** goc_gauge_set_to_current_time - set to the Unix time in seconds. */
GOC_API void goc_gauge_set_to_current_time(goc_gauge *g);
/** goc_gauge_value - the current value. */
GOC_API double goc_gauge_value(goc_gauge *g);

/**
 * struct goc_gauge_extremes - a tracked gauge's extremes.
 * @value:       the value now.
 * @min, @max:   the smallest and largest values since creation or the last
 *               reset (the value at that time, if nothing changed since).
 * @updated:     Unix time in ns of the last update (0: never updated).
 */
struct goc_gauge_extremes {
    double value, min, max;
    int64_t updated;
};

/**
 * goc_gauge_extremes - read a tracked gauge's extremes.
 * @reset: also restart the window: min and max become the current value,
 *         so the next read reports the extremes since this one (windowed
 *         min/max, which the seed's lifetime extremes lacked).
 * Return: 0; -EINVAL if @g was not created with @track.
 */
GOC_API int goc_gauge_extremes(goc_gauge *g,
                               bool reset,
                               struct goc_gauge_extremes *out);

/* ---- histograms -------------------------------------------------------- */

/**
 * goc_histogram_observe - count @v in the first bucket whose upper bound
 * is >= @v (bounds are inclusive), add it to the sum. Lock-free: four
 * atomic operations on this P's shard, never a wait.
 */
GOC_API void goc_histogram_observe(goc_histogram *h, double v);

/**
 * struct goc_histogram_snapshot - a consistent view of a histogram.
 * @count: observations; always equal to the last cumulative bucket.
 * @sum:   their sum.
 * @cumulative: filled with nbuckets + 1 cumulative counts (the last one
 *              for +Inf), if not NULL.
 */
struct goc_histogram_snapshot {
    uint64_t count;
    double sum;
    uint64_t *cumulative;
};

/**
 * goc_histogram_read - take a consistent snapshot (the one a scrape
 * writes). Return: the number of finite buckets.
 */
GOC_API int goc_histogram_read(goc_histogram *h,
                               struct goc_histogram_snapshot *s);

/**
 * goc_buckets_linear - @count bounds: @start, @start + @width, ...
 * Return: @count; -EINVAL if @count < 1, @width <= 0 or a value is not
 * finite, or @out is NULL.
 */
GOC_API int goc_buckets_linear(double start,
                               double width,
                               int count,
                               double *out);

/**
 * goc_buckets_exponential - @count bounds: @start, @start * @factor, ...
 * Return: @count; -EINVAL if @count < 1, @start <= 0, @factor <= 1, a
 * value is not finite, or @out is NULL.
 */
GOC_API int goc_buckets_exponential(double start,
                                    double factor,
                                    int count,
                                    double *out);

/* ---- summaries --------------------------------------------------------- */

/**
 * goc_summary_observe - count @v and add it to the sum (lock-free, as a
 * histogram without buckets). With objectives, @v also goes to the
 * quantile estimator under the child's own short lock, after one clock
 * read.
 */
GOC_API void goc_summary_observe(goc_summary *s, double v);

/**
 * goc_summary_quantile - the current estimate of the @q-quantile over the
 * window, which is within @eps in rank for a configured objective: its
 * rank among the window's n observations is within (q +/- eps) n, in any
 * order of arrival; q 0 and 1 give the exact minimum and maximum.
 * Return: 0; -EINVAL if @q is not an objective of @s; -ENODATA if the
 * window holds no observation (*out is NaN, as exposed).
 */
GOC_API int goc_summary_quantile(goc_summary *s, double q, double *out);

/** goc_summary_count - observations so far, and their sum in *sum. */
GOC_API uint64_t goc_summary_count(goc_summary *s, double *sum);

/* ---- collectors --------------------------------------------------------- */

/**
 * goc_collect_fn - appends whole families to a scrape through @sink. Runs
 * on the scraping thread or goroutine, with no goc lock held, possibly
 * concurrently with itself. It may remove other collectors and unregister
 * families; removing its own collector returns -EDEADLK.
 */
typedef void (*goc_collect_fn)(goc_metric_sink *sink, void *arg);

/**
 * goc_registry_add_collector - call @fn at every scrape of @r.
 * Return: 0; -EINVAL; -ENOMEM.
 */
GOC_API int goc_registry_add_collector(goc_registry *r,
                                       goc_collect_fn fn,
                                       void *arg,
                                       goc_collector **out);

/**
 * goc_collector_remove - stop calling the collector and free it (once no
 * scrape holds it). Waits only while it is running on another goroutine
 * or thread, so it never runs after this returns; it may be called from
 * any other callback (see goc_metric_unregister()).
 * Return: 0; -EINVAL; -EDEADLK from inside the collector itself.
 */
GOC_API int goc_collector_remove(goc_collector *c);

/**
 * goc_sink_family - start a family in a collector's output.
 * @type: an enum goc_metric_type (summaries are not accepted here).
 * Return: 0; -EINVAL (bad name, help or type: the family and its samples
 * are dropped and counted); -ENOMEM.
 */
GOC_API int goc_sink_family(goc_metric_sink *s,
                            const char *name,
                            const char *help,
                            int type);

/**
 * goc_sink_sample - a sample of the current counter, gauge or untyped
 * family: @n labels @names[i]=@values[i] (both NULL if @n is 0).
 * Return: 0; -EINVAL (bad label, no family, histogram family); -ENOMEM.
 * A refused sample is counted in dropped_samples.
 */
GOC_API int goc_sink_sample(goc_metric_sink *s,
                            const char *const *names,
                            const char *const *values,
                            size_t n,
                            double v);

/**
 * goc_sink_histogram - a sample of the current histogram family: @nb
 * finite increasing @bounds with @cumulative counts (non-decreasing, the
 * last <= @count), then the sum and count.
 * Return: as goc_sink_sample().
 */
GOC_API int goc_sink_histogram(goc_metric_sink *s,
                               const char *const *names,
                               const char *const *values,
                               size_t n,
                               const double *bounds,
                               const uint64_t *cumulative,
                               size_t nb,
                               double sum,
                               uint64_t count);

/**
 * goc_metrics_register_runtime - export the runtime's statistics
 * (goc/stats.h) through @r, read afresh at every scrape: goc_goroutines,
 * goc_threads, goc_runqueue_goroutines{queue="global"|"p0"|...},
 * goc_context_switches_total, goc_parks_total, goc_steals_total,
 * goc_timers, goc_io_waiters, goc_blocking_threads, goc_stack_*_bytes,
 * process_resident_memory_bytes, process_cpu_seconds_total,
 * process_open_fds, process_max_fds, process_start_time_seconds,
 * goc_heap_*_bytes and more (docs/observability.md lists them all).
 * @r:    NULL for the default registry.
 * @what: the goc_stats_what sources to export; 0 means SCHED, PROCESS,
 *        HEAP and LIB (GOC_STATS_STACK_RESIDENT costs a mincore() walk a
 *        scrape).
 * @out:  the collector, for goc_collector_remove().
 *
 * Return: 0; -EINVAL (@out NULL, unknown bits in @what); -ENOMEM.
 */
GOC_API int goc_metrics_register_runtime(goc_registry *r,
                                         unsigned what,
                                         goc_collector **out);

/* ---- exposition -------------------------------------------------------- */

/** The Content-Type of the text format. */
#define GOC_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/**
 * goc_metrics_text - render @r (NULL: default) in the text format 0.0.4.
 * @out: receives a NUL-terminated buffer; release it with free().
 * @len: receives its length, if not NULL.
 * Callbacks of func metrics and collectors run during the call.
 * Return: 0; -EINVAL; -ENOMEM.
 */
GOC_API int goc_metrics_text(goc_registry *r, char **out, size_t *len);

/** goc_metrics_write_file - render @r into @f. Return: 0; -EIO; -ENOMEM. */
GOC_API int goc_metrics_write_file(goc_registry *r, FILE *f);

/**
 * goc_metrics_write_fd - render @r and write it all to @fd (a plain
 * blocking descriptor). Return: 0; -errno of write(); -ENOMEM.
 */
GOC_API int goc_metrics_write_fd(goc_registry *r, int fd);

/**
 * goc_format_double - @v in shortest round-trip form, as Go's
 * strconv.FormatFloat(v, 'g', -1, 64), with +Inf, -Inf and NaN.
 * @buf: at least 32 bytes. Return: the length written.
 */
GOC_API int goc_format_double(double v, char *buf);

/* ---- HTTP endpoint ------------------------------------------------------ */

/* The largest request head limit (as Go's http.DefaultMaxHeaderBytes):
 * each connection holds a buffer of that size. */
#define GOC_METRICS_MAX_REQUEST (1u << 20)

/** struct goc_metrics_http_opts - settings; zero-fill for defaults. */
struct goc_metrics_http_opts {
    int max_conns;        /* 0: 64 connections at once */
    size_t max_request;   /* request head limit in bytes, 64 to
                           * GOC_METRICS_MAX_REQUEST; 0: 8 KiB */
    int64_t timeout;      /* ns for the rest of a request head once its
                           * first bytes came (all of it, however slowly
                           * sent), and for writing a response; 0: 10 s */
    int64_t idle_timeout; /* ns a connection may wait for a request's
                           * first byte (a new one, or the next on a
                           * keep-alive connection) before it is closed;
                           * 0: 60 s */
};

/**
 * goc_metrics_serve - listen on @addr ("host:port"; port 0 picks one) and
 * serve GET (and HEAD) /metrics from @r with HTTP/1.1 keep-alive.
 * Other paths get 404, other methods 405 (with Allow), oversized heads
 * 431, malformed ones 400 (both then close the connection), and so are
 * an HTTP/1.1 request without a Host line and any with two. A request
 * with a body is answered, then its connection closed (a scrape has no
 * body; this avoids reading one). HTTP/1.1 keeps the connection unless
 * "Connection: close"; HTTP/1.0 closes it unless "Connection: keep-alive".
 * A connection that sends nothing for @o->idle_timeout, or does not
 * finish a request head within @o->timeout, is closed, so silent or slow
 * clients cannot hold every slot of @o->max_conns.
 * The registry must outlive the server's handlers, which
 * goc_server_free() does not wait for: before goc_registry_free(), make
 * sure they have returned with goc_server_shutdown(srv, NULL) (after a
 * goc_server_close() if a scrape may hang). Its settings are kept in the
 * registry and freed with it; servers with equal settings share them, so
 * starting servers again and again (even on the default registry, which
 * is never freed) keeps one copy per distinct setting, not one per call.
 * @out: receives the running server: goc_server_addr() tells the bound
 *       address, goc_server_shutdown() stops it (idle keep-alive
 *       connections are closed, scrapes in progress finish), and
 *       goc_shutdown_add_server() hands it to a shutdown manager; free it
 *       with goc_server_free().
 * Return: 0; -EINVAL (also a negative timeout, or a max_request out of
 * its range); the errors of goc_tcp_listen(); -ENOMEM.
 */
GOC_API int goc_metrics_serve(goc_registry *r,
                              const char *addr,
                              const struct goc_metrics_http_opts *o,
                              goc_server **out);

#ifdef __cplusplus
}
#endif

#endif /* GOC_METRICS_H */
