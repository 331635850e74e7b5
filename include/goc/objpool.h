/* SPDX-License-Identifier: MIT */
/*
 * goc/objpool.h: object reuse.
 *
 * goc_objpool is a cache with sync.Pool's semantics: per-thread caches
 * (per P for goroutines), a shared overflow, stealing, and epoch trimming
 * through a victim generation, plus
 * bounds Go's pool lacks (a cap on retained objects and on their size).
 * goc_rpool is a bounded resource pool (connections and the like): at most
 * max_total objects exist, idle ones are validated on borrow, and
 * acquirers wait in FIFO order with a context.
 *
 * Both store void * only: keep objects behind pointers.
 */
#ifndef GOC_OBJPOOL_H
#define GOC_OBJPOOL_H

#include "common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * struct goc_objpool_opts - callbacks and bounds of an object pool; every
 * field may be zero. Callbacks run on the caller's thread, never under a
 * pool lock.
 * @new_fn:      makes an object on a miss (NULL: goc_objpool_get returns
 *               NULL on a miss).
 * @reset_fn:    run on put, only for objects the pool keeps.
 * @destroy_fn:  run for objects the pool drops (over a bound, trimmed,
 *               freed with the pool).
 * @size_fn:     an object's size, for @max_retained_size.
 * @arg:         passed to every callback.
 * @max_cached:  most objects retained (0: no bound); extra puts are
 *               dropped.
 * @max_retained_size: objects larger than this are dropped on put (needs
 *               @size_fn; 0: no bound) - golang/go#23199.
 * @debug:       detect a double put (GOC_EMISUSE), two puts of one object
 *               racing included, and drop one put in four at random, as
 *               Go's race detector does, to flush out use-after-put bugs.
 *               Costs a scan per put, under a lock of the pool's own.
 */
struct goc_objpool_opts {
    void *(*new_fn)(void *arg);
    void (*reset_fn)(void *obj, void *arg);
    void (*destroy_fn)(void *obj, void *arg);
    size_t (*size_fn)(void *obj, void *arg);
    void *arg;
    size_t max_cached;
    size_t max_retained_size;
    bool debug;
};

/** Counters of an object pool (a snapshot). */
struct goc_objpool_stats {
    int64_t gets, hits, misses; /* misses: gets that found no object
                                   (new_fn, if any, made one) */
    int64_t puts, drops, trims;
    int64_t retained; /* objects cached now (primary and victim) */
};

/** An object pool (heap object). */
typedef struct goc_objpool goc_objpool;

/**
 * goc_objpool_new - create a pool.
 * @opts: borrowed; NULL for no callbacks and no bounds.
 *
 * Return: 0; -EINVAL (@out NULL, or @max_retained_size without
 * @size_fn); -ENOMEM.
 */
GOC_API int goc_objpool_new(const struct goc_objpool_opts *opts,
                            goc_objpool **out);

/**
 * goc_objpool_free - destroy every retained object and free the pool
 * (NULL ignored). Objects still out are the caller's.
 */
GOC_API void goc_objpool_free(goc_objpool *p);

/**
 * goc_objpool_get - some previously put object, or new_fn()'s.
 *
 * Assume no relation between what was put and what is got: no order, no
 * identity. A put(x) happens-before the get that returns x. Tries the
 * caller's cache (its victim generation too), the shared overflow, then
 * the other caches. Never blocks (beyond a short internal lock).
 *
 * Return: the object, or NULL if there was none and new_fn is NULL or
 * returned NULL; NULL for a NULL @p.
 */
GOC_API void *goc_objpool_get(goc_objpool *p);

/**
 * goc_objpool_put - hand @obj back (NULL is ignored).
 *
 * The pool keeps it (running reset_fn first) or drops it (running
 * destroy_fn) when it is over a bound. After put, the caller must not
 * touch @obj.
 *
 * Return: 0 if kept, 1 if dropped; GOC_EMISUSE in debug mode if @obj is
 * already in the pool (nothing changes); -EINVAL for a NULL @p.
 */
GOC_API int goc_objpool_put(goc_objpool *p, void *obj);

/**
 * goc_objpool_trim - one epoch: drop the victim cache (destroy_fn) and
 * make the current caches the victim. An object survives one trim and is
 * dropped at the second if nobody took it: call it periodically (Go does
 * at every GC) to give idle memory back.
 *
 * Return: the number of objects destroyed (0 for a NULL @p).
 */
GOC_API int64_t goc_objpool_trim(goc_objpool *p);

/** goc_objpool_stats - fill @st with a snapshot (NULL @p or @st: nothing). */
GOC_API void goc_objpool_stats(goc_objpool *p, struct goc_objpool_stats *st);

/**
 * struct goc_rpool_opts - a bounded resource pool's callbacks and limits.
 * Callbacks run on the caller's thread, never under the pool lock.
 * @max_total:   most objects in existence (idle + out), >= 1.
 * @max_idle:    most idle objects kept (0 .. max_total); releases beyond
 *               it destroy the object.
 * @idle_timeout: idle objects older than this are destroyed on the next
 *               acquire or release (<= 0: never).
 * @create:      makes an object: returns 0 and sets *out, or a negative
 *               error (returned by acquire). Required.
 * @validate:    checks an idle object on borrow (NULL: always good); a bad
 *               one is destroyed and the acquire goes on.
 * @reset:       prepares a reused object before it is handed out.
 * @destroy:     frees an object.
 * @arg:         passed to every callback.
 *
 * A callback that panics leaves the pool whole and the panic goes on to
 * the caller: the object it had is given up and its place freed, and the
 * other objects of a batch (up to 16 expired ones, or all idle ones at
 * close) are still destroyed. When more than one panics (a validate, then
 * the destroy that gives its object up; destroys of one batch), the last
 * is raised with the earlier ones chained under it, as
 * goc_panic_info_format() shows. goc_rpool_free frees the pool first.
 */
struct goc_rpool_opts {
    int64_t max_total;
    int64_t max_idle;
    int64_t idle_timeout;
    int (*create)(void *arg, void **out);
    bool (*validate)(void *obj, void *arg);
    void (*reset)(void *obj, void *arg);
    void (*destroy)(void *obj, void *arg);
    void *arg;
};

/** Counters of a resource pool (a snapshot). */
struct goc_rpool_stats {
    int64_t total, idle, in_use, waiters;
    int64_t created, destroyed, invalid, waits, wait_ns;
};

/** A bounded resource pool (heap object). */
typedef struct goc_rpool goc_rpool;

/**
 * goc_rpool_new - create an empty resource pool.
 *
 * Return: 0; -EINVAL (max_total < 1, max_idle outside 0..max_total, no
 * create function, @out NULL); -ENOMEM.
 */
GOC_API int goc_rpool_new(const struct goc_rpool_opts *opts, goc_rpool **out);

/**
 * goc_rpool_acquire - borrow an object: an idle one that validates, else a
 * new one if fewer than max_total exist, else wait (FIFO) for a release.
 * @out: receives the object.
 * @ctx: cancellation; NULL waits as long as needed.
 *
 * Parks a goroutine or blocks a plain thread. A release that hands an
 * object to a waiter whose context has just ended is not lost: whichever
 * the waiter sees first under the lock wins, and a won object is returned.
 *
 * Return: 0; the ctx's error if it had ended at entry (even with objects
 * idle) or ends while waiting (nothing leaked, the queue place given up);
 * GOC_ECLOSED after goc_rpool_close(); the create function's error.
 */
GOC_API int goc_rpool_acquire(goc_rpool *rp, void **out, goc_ctx *ctx);

/**
 * goc_rpool_release - give back an object from goc_rpool_acquire().
 * @broken: true destroys it (and frees its place for a waiter).
 *
 * Return: 0; GOC_EMISUSE if @obj is not out on loan from this pool (a
 * double release, or a foreign object): nothing changes.
 */
GOC_API int goc_rpool_release(goc_rpool *rp, void *obj, bool broken);

/**
 * goc_rpool_close - stop lending: idle objects are destroyed, waiters
 * wake with GOC_ECLOSED, objects still out are destroyed when released,
 * and one still being made when the pool closes is destroyed once made
 * (its acquire fails with GOC_ECLOSED). Idempotent.
 */
GOC_API void goc_rpool_close(goc_rpool *rp);

/**
 * goc_rpool_free - close the pool, wait until no acquire or release is
 * under way on it (those it woke return GOC_ECLOSED) and every object on
 * loan has been released (and so destroyed), then free it. NULL is
 * ignored. Blocks while objects are out. No call may start on @rp once
 * this has begun, except the releases it waits for.
 */
GOC_API void goc_rpool_free(goc_rpool *rp);

/** goc_rpool_stats - fill @st with a snapshot (NULL @rp or @st: nothing). */
GOC_API void goc_rpool_stats(goc_rpool *rp, struct goc_rpool_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* GOC_OBJPOOL_H */
