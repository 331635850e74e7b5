/* SPDX-License-Identifier: MIT */
/*
 * goc/sync.h: synchronisation primitives that park goroutines.
 *
 * Each primitive is a fixed-size struct that embeds in the user's own
 * structs, with a static initializer; all of them work from goroutines
 * (which park) and from plain threads (which block).
 */
#ifndef GOC_SYNC_H
#define GOC_SYNC_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * goc_wg - a WaitGroup: waits for a collection of goroutines to finish.
 *
 * Zero-filled (or GOC_WG_INIT) is a valid empty group. The fields are
 * private.
 */
typedef struct goc_wg {
    uint64_t opaque_[4];
} goc_wg;

#define GOC_WG_INIT    \
    {                  \
        {              \
            0, 0, 0, 0 \
        }              \
    }

/**
 * goc_wg_init - prepare a WaitGroup (same as zero-filling it).
 * @wg: the group (borrowed).
 */
GOC_API void goc_wg_init(goc_wg *wg);

/**
 * goc_wg_add - add @delta (may be negative) to the group's counter.
 * @wg:    the group.
 * @delta: the change.
 *
 * When the counter reaches zero, every waiter is released.
 *
 * Return: 0; GOC_EMISUSE if the counter would go negative, and -EOVERFLOW
 * if it would pass INT32_MAX (in both cases nothing changes).
 * Never blocks; callable from any thread.
 */
GOC_API int goc_wg_add(goc_wg *wg, int64_t delta);

/**
 * goc_wg_done - goc_wg_add(@wg, -1).
 *
 * Return: as goc_wg_add().
 */
GOC_API int goc_wg_done(goc_wg *wg);

/**
 * goc_wg_wait - block until the group's counter is zero.
 * @wg:  the group.
 * @ctx: cancellation; NULL waits forever.
 *
 * A goroutine parks; a plain thread blocks. A group already at zero is
 * reported as done even if @ctx has ended.
 *
 * Return: 0 once the counter is zero; -ECANCELED or -ETIMEDOUT if @ctx
 * ended first (the group is left as if this call never waited).
 */
GOC_API int goc_wg_wait(goc_wg *wg, goc_ctx *ctx);

/**
 * goc_mutex - a mutual exclusion lock that parks goroutines.
 *
 * Zero-filled (or GOC_MUTEX_INIT) is an unlocked mutex. Like Go's
 * sync.Mutex it is not tied to the goroutine or thread that locked it, it
 * spins briefly before parking, and a waiter that has waited over 1 ms
 * puts it in starvation mode: the lock is then handed from owner to
 * waiter in FIFO order until the queue drains, which bounds tail latency.
 */
typedef struct goc_mutex {
    uint64_t opaque_[4];
} goc_mutex;

#define GOC_MUTEX_INIT \
    {                  \
        {              \
            0, 0, 0, 0 \
        }              \
    }

/**
 * goc_mutex_lock - lock @mu, waiting while another holds it.
 * @mu:  the mutex.
 * @ctx: cancellation; NULL waits forever.
 *
 * A goroutine parks (its thread runs other goroutines); a plain thread
 * blocks.
 *
 * Return: 0 with the lock held; -ECANCELED or -ETIMEDOUT if @ctx ended
 * first, at entry or while waiting (the lock is not held then).
 */
GOC_API int goc_mutex_lock(goc_mutex *mu, goc_ctx *ctx);

/**
 * goc_mutex_try_lock - lock @mu only if that needs no wait.
 *
 * Return: 0 with the lock held; -EAGAIN if it is held (or in starvation
 * mode, where it belongs to the waiters). Never blocks.
 */
GOC_API int goc_mutex_try_lock(goc_mutex *mu);

/**
 * goc_mutex_unlock - unlock @mu (from any goroutine or thread).
 *
 * Return: 0; GOC_EMISUSE if @mu is not locked (nothing changes; Go
 * panics). Never blocks.
 */
GOC_API int goc_mutex_unlock(goc_mutex *mu);

/**
 * goc_sem - a weighted semaphore (golang.org/x/sync/semaphore.Weighted).
 *
 * Waiters are served strictly first in, first out: a release grants the
 * queue's head while it fits and stops at the first one that does not,
 * even if smaller requests behind it would fit, so large requests are
 * never starved (the cost is head-of-line blocking). Initialise with
 * goc_sem_init(); the fields are private.
 */
typedef struct goc_sem {
    uint64_t opaque_[6];
} goc_sem;

/**
 * goc_sem_init - prepare a semaphore of total weight @size.
 *
 * Return: 0; -EINVAL if @size < 1 (nothing changes).
 */
GOC_API int goc_sem_init(goc_sem *sem, int64_t size);

/**
 * goc_sem_acquire - take weight @n, waiting in FIFO order.
 * @n:   0 .. size; 0 succeeds at once unless others wait.
 * @ctx: cancellation; NULL waits forever.
 *
 * Succeeds at once only if the weight is free and nobody is queued (no
 * barging past waiters). A waiter whose context ends leaves the queue as
 * if it had never come, and waiters behind it that now fit are granted.
 *
 * Return: 0 with the weight held; -ECANCELED or -ETIMEDOUT if @ctx ended
 * first (also at entry, even with weight free); -EINVAL if @n < 0 or
 * @n > size (it could never succeed: it fails at once and blocks nobody).
 */
GOC_API int goc_sem_acquire(goc_sem *sem, int64_t n, goc_ctx *ctx);

/**
 * goc_sem_try_acquire - take weight @n only if free and nobody waits.
 *
 * Return: 0; -EAGAIN; -EINVAL for a bad @n. Never blocks.
 */
GOC_API int goc_sem_try_acquire(goc_sem *sem, int64_t n);

/**
 * goc_sem_release - give back weight @n, then grant the queue in order.
 *
 * Return: 0; GOC_EMISUSE if more is released than is held (nothing
 * changes; x/sync panics); -EINVAL if @n < 0. Never blocks.
 */
GOC_API int goc_sem_release(goc_sem *sem, int64_t n);

/** goc_sem_held - weight held now (a snapshot). */
GOC_API int64_t goc_sem_held(goc_sem *sem);

#ifdef __cplusplus
}
#endif

#endif /* GOC_SYNC_H */
