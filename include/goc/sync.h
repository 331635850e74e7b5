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
#include "runtime.h"

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
 * When the counter reaches zero, every waiter is released. The group can
 * be used again: an Add after that begins a new round, and a Wait that
 * saw the zero returns 0 even while that round runs.
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
 * goc_wg_go - goc_wg_add(@wg, 1), then run @fn(@arg) in a new goroutine
 * that calls goc_wg_done(@wg) once @fn returns (Go's WaitGroup.Go).
 *
 * Return: 0; -EINVAL for a NULL @wg or @fn; the errors of goc_wg_add()
 * and goc_go() (-ENOMEM): then nothing runs and the counter is as it was.
 */
GOC_API int goc_wg_go(goc_wg *wg, goc_fn fn, void *arg);

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

/** goc_sem_held - weight held now (a snapshot); -EINVAL for NULL. */
GOC_API int64_t goc_sem_held(goc_sem *sem);

/**
 * goc_sem_available - weight free now, size minus held (a snapshot; a
 * waiter queued for more than that keeps smaller callers out even so);
 * -EINVAL for NULL.
 */
GOC_API int64_t goc_sem_available(goc_sem *sem);

/** goc_sem_waiters - callers queued now (a snapshot); -EINVAL for NULL. */
GOC_API int64_t goc_sem_waiters(goc_sem *sem);

/**
 * goc_rwmutex - a reader/writer lock with Go's writer preference: once a
 * writer waits, new readers queue behind it, so writers are not starved;
 * when a writer unlocks, the readers that waited meanwhile go first.
 * Zero-filled (or GOC_RWMUTEX_INIT) is unlocked.
 */
typedef struct goc_rwmutex {
    uint64_t opaque_[6];
} goc_rwmutex;

#define GOC_RWMUTEX_INIT     \
    {                        \
        {                    \
            0, 0, 0, 0, 0, 0 \
        }                    \
    }

/**
 * goc_rwmutex_rlock - take a shared (read) lock.
 * @ctx: cancellation; NULL waits forever.
 *
 * Return: 0 with the read lock held; -ECANCELED or -ETIMEDOUT if @ctx
 * ended first (at entry or while waiting; nothing is held then).
 */
GOC_API int goc_rwmutex_rlock(goc_rwmutex *rw, goc_ctx *ctx);

/**
 * goc_rwmutex_runlock - release a read lock.
 *
 * Return: 0; GOC_EMISUSE if no read lock is held (nothing changes).
 */
GOC_API int goc_rwmutex_runlock(goc_rwmutex *rw);

/**
 * goc_rwmutex_lock - take the exclusive (write) lock.
 *
 * Return: as goc_rwmutex_rlock().
 */
GOC_API int goc_rwmutex_lock(goc_rwmutex *rw, goc_ctx *ctx);

/**
 * goc_rwmutex_unlock - release the write lock.
 *
 * Return: 0; GOC_EMISUSE if it is not write-locked (nothing changes).
 */
GOC_API int goc_rwmutex_unlock(goc_rwmutex *rw);

/**
 * goc_cond - a condition variable used with a goc_mutex. Zero-filled (or
 * GOC_COND_INIT) is ready to use.
 */
typedef struct goc_cond {
    uint64_t opaque_[3];
} goc_cond;

#define GOC_COND_INIT \
    {                 \
        {             \
            0, 0, 0   \
        }             \
    }

/**
 * goc_cond_wait - atomically unlock @mu and wait for a signal, then lock
 * @mu again before returning (also on error).
 * @mu:  a mutex the caller holds.
 * @ctx: cancellation; NULL waits for a signal.
 *
 * As with every condition variable, wake-ups may be spurious: re-check
 * the condition in a loop.
 *
 * Return: 0 after a signal; -ECANCELED or -ETIMEDOUT if @ctx ended first;
 * GOC_EMISUSE if @mu is not locked, whatever @ctx says (nothing waits,
 * nothing changes).
 */
GOC_API int goc_cond_wait(goc_cond *cond, goc_mutex *mu, goc_ctx *ctx);

/** goc_cond_signal - wake one waiter, the longest waiting, if any. */
GOC_API void goc_cond_signal(goc_cond *cond);

/** goc_cond_broadcast - wake every waiter. */
GOC_API void goc_cond_broadcast(goc_cond *cond);

/**
 * goc_once - runs a function once. Zero-filled (or GOC_ONCE_INIT) is
 * ready to use.
 */
typedef struct goc_once {
    uint64_t opaque_[6];
} goc_once;

#define GOC_ONCE_INIT        \
    {                        \
        {                    \
            0, 0, 0, 0, 0, 0 \
        }                    \
    }

/**
 * goc_once_do - call @fn(@arg) if no goc_once_do() on @once ran before.
 *
 * Concurrent callers wait until the first call has returned, so after
 * goc_once_do() returns, the effects of @fn are visible. Calling it from
 * inside @fn on the same @once deadlocks, as in Go. If @fn panics, it
 * counts as having run, as in Go: the panic goes on to the caller's
 * goc_try(), and later calls return GOC_EPANIC without calling anything.
 *
 * Return: 0; GOC_EPANIC once the first call panicked; -EINVAL for a
 * NULL @once or @fn (which does not count as a call).
 */
GOC_API int goc_once_do(goc_once *once, goc_fn fn, void *arg);

/**
 * goc_once_do_result - goc_once_do() for a function with a result: the
 * first call's result (a value or a negative error) is returned to every
 * caller, like Go's sync.OnceValue. -EINVAL for a NULL @once or @fn,
 * which does not count as a call.
 */
GOC_API int goc_once_do_result(goc_once *once, int (*fn)(void *), void *arg);

#ifdef __cplusplus
}
#endif

#endif /* GOC_SYNC_H */
