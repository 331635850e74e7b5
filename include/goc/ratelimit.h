/* SPDX-License-Identifier: MIT */
/*
 * goc/ratelimit.h: a token-bucket rate limiter with the semantics of
 * golang.org/x/time/rate, and a keyed limiter (one bucket per key).
 *
 * A bucket of size `burst` refills at `limit` tokens per second and starts
 * full. Every call has an `_at` variant taking an explicit "now" (int64 ns
 * on the limiter's clock), so the arithmetic can be tested without
 * sleeping. goc_limiter_allow() is lock-free on its fast path.
 */
#ifndef GOC_RATELIMIT_H
#define GOC_RATELIMIT_H

#include "clock.h"
#include "common.h"

#include <float.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * An infinite rate: every event is allowed and the burst is ignored. It is
 * DBL_MAX, not INFINITY: the limiters refuse INFINITY as a limit.
 */
#define GOC_RATE_INF DBL_MAX

/** The delay of a reservation that is not OK ("never"). */
#define GOC_INF_DURATION INT64_MAX

/** A token-bucket limiter (heap object; goc_limiter_new/_free). */
typedef struct goc_limiter goc_limiter;

/**
 * goc_reservation - the result of goc_limiter_reserve*(): how long the
 * caller must wait before acting. A plain value; its fields are private
 * (read them through goc_reservation_ok/_delay). It refers to its limiter,
 * which must outlive any goc_reservation_cancel() on it.
 */
typedef struct goc_reservation {
    goc_limiter *lim_;
    bool ok_;
    int64_t tokens_;
    int64_t time_to_act_;
    double limit_;
} goc_reservation;

/**
 * goc_rate_every - the limit for one event per @interval nanoseconds.
 *
 * Return: 1e9 / @interval events per second; GOC_RATE_INF if @interval
 * is zero or negative (rate.Every).
 */
GOC_API double goc_rate_every(int64_t interval);

/**
 * goc_limiter_new - create a limiter with a full bucket.
 * @limit: events per second (>= 0, GOC_RATE_INF for no limit). 0 means no
 *         refill: the first @burst events pass, then none until the limit
 *         is raised.
 * @burst: bucket size (>= 0). A limiter with limit 0 and burst 0 rejects
 *         everything.
 * @clock: time source (copied), or NULL for goc_now()'s clock read from
 *         the CPU's cycle counter where the kernel keeps time on it (a
 *         third of the cost; within microseconds of goc_now(), so
 *         times from goc_now() passed to the _at variants mix freely).
 *         GOC_FASTCLOCK=0 in the environment makes it goc_now() itself.
 * @out:   receives the limiter.
 *
 * Times are kept relative to the clock's reading at creation and are
 * clamped to +/- 2^58 ns (9 years) around it.
 *
 * Return: 0; -EINVAL for a negative, NaN or infinite (INFINITY) @limit, a
 * negative @burst or a NULL @out; -ENOMEM.
 */
GOC_API int goc_limiter_new(double limit,
                            int64_t burst,
                            const goc_clock *clock,
                            goc_limiter **out);

/**
 * goc_limiter_close - refuse every later event, and wake every waiter.
 *
 * After it, goc_limiter_allow*() gives false, goc_limiter_reserve*()
 * GOC_ECLOSED with a reservation that is not OK, and goc_limiter_wait*()
 * GOC_ECLOSED, at once or, for a caller already waiting, when it is woken
 * (its reservation is cancelled). Reading the limiter, changing its limit
 * or burst and cancelling reservations still work.
 *
 * Return: 0; GOC_ECLOSED if it was already closed; -EINVAL for NULL.
 */
GOC_API int goc_limiter_close(goc_limiter *lim);

/**
 * goc_limiter_free - close @lim (goc_limiter_close()), wait until the
 * callers it woke have left it, then free it. NULL is ignored. No call may
 * start on @lim once this has begun, and no reservation be cancelled.
 */
GOC_API void goc_limiter_free(goc_limiter *lim);

/** goc_limiter_limit - the current limit (events per second). */
GOC_API double goc_limiter_limit(goc_limiter *lim);

/** goc_limiter_burst - the current burst. */
GOC_API int64_t goc_limiter_burst(goc_limiter *lim);

/**
 * goc_limiter_tokens_at - the tokens available at @now (may be negative
 * while reservations are pending). Changes nothing.
 */
GOC_API double goc_limiter_tokens_at(goc_limiter *lim, int64_t now);

/** goc_limiter_tokens - goc_limiter_tokens_at() at the clock's now. */
GOC_API double goc_limiter_tokens(goc_limiter *lim);

/**
 * goc_limiter_allow_n_at - take @n tokens at @now if they are there.
 *
 * Non-blocking; consumes tokens only on success (rate.AllowN). Lock-free
 * unless a reservation, cancel or limit change is running concurrently,
 * or the limiter is closed.
 *
 * Return: true if the @n events may happen now; false otherwise, for
 * @n < 0, and after goc_limiter_close().
 */
GOC_API bool goc_limiter_allow_n_at(goc_limiter *lim, int64_t now, int64_t n);

/** goc_limiter_allow_n - goc_limiter_allow_n_at() at the clock's now. */
GOC_API bool goc_limiter_allow_n(goc_limiter *lim, int64_t n);

/** goc_limiter_allow - goc_limiter_allow_n(@lim, 1). */
GOC_API bool goc_limiter_allow(goc_limiter *lim);

/**
 * goc_limiter_reserve_max_at - reserve @n tokens at @now, accepting a
 * wait of at most @max_wait ns (rate's internal reserveN).
 * @res: receives the reservation, OK or not.
 *
 * An OK reservation takes the tokens at once (the bucket may go into
 * debt) and tells the caller when to act; one that is not OK (@n > burst,
 * the wait would exceed @max_wait, or it would never end: a limit of 0
 * with the burst spent) changes nothing.
 *
 * Return: 0 (look at goc_reservation_ok()); GOC_ECLOSED after
 * goc_limiter_close() (not OK); -EINVAL for @n < 0 or a NULL argument.
 * Never blocks.
 */
GOC_API int goc_limiter_reserve_max_at(goc_limiter *lim,
                                       int64_t now,
                                       int64_t n,
                                       int64_t max_wait,
                                       goc_reservation *res);

/** goc_limiter_reserve_n_at - reserve_max_at() with no bound on the wait. */
GOC_API int goc_limiter_reserve_n_at(goc_limiter *lim,
                                     int64_t now,
                                     int64_t n,
                                     goc_reservation *res);

/** goc_limiter_reserve_n - goc_limiter_reserve_n_at() at the clock's now. */
GOC_API int goc_limiter_reserve_n(goc_limiter *lim,
                                  int64_t n,
                                  goc_reservation *res);

/** goc_limiter_reserve - goc_limiter_reserve_n(@lim, 1, @res). */
GOC_API int goc_limiter_reserve(goc_limiter *lim, goc_reservation *res);

/** goc_reservation_ok - whether the limiter granted the reservation. */
GOC_API bool goc_reservation_ok(const goc_reservation *res);

/**
 * goc_reservation_delay_from - how long after @now the caller must wait
 * before acting: 0 if the time has come, GOC_INF_DURATION if not OK.
 */
GOC_API int64_t goc_reservation_delay_from(const goc_reservation *res,
                                           int64_t now);

/** goc_reservation_delay - delay_from() at the limiter's clock's now. */
GOC_API int64_t goc_reservation_delay(const goc_reservation *res);

/**
 * goc_reservation_cancel_at - give the tokens back, as far as possible,
 * because the caller will not act (Reservation.CancelAt).
 *
 * No effect if the reservation is not OK, the limit is infinite, it was
 * for 0 tokens, or its time to act is before @now (already used). Tokens
 * reserved by later reservations are not given back. Call it once.
 */
GOC_API void goc_reservation_cancel_at(goc_reservation *res, int64_t now);

/** goc_reservation_cancel - cancel_at() at the limiter's clock's now. */
GOC_API void goc_reservation_cancel(goc_reservation *res);

/**
 * goc_limiter_wait_n - wait until @n events may happen (rate.WaitN).
 * @n:   tokens (0 .. burst unless the limit is infinite).
 * @ctx: cancellation and deadline; NULL waits as long as needed.
 *
 * Reserves first, then sleeps until the reserved time (no polling); if
 * the wait would pass @ctx's deadline it fails at once without waiting.
 * If @ctx ends while waiting, the reservation is cancelled (tokens given
 * back as far as possible). Works from goroutines (parks) and plain
 * threads (blocks). The sleep is on the real clock even when the limiter
 * has a fake one.
 *
 * Return: 0; GOC_EBURST if @n > burst with a finite limit; the ctx's
 * error (-ECANCELED/-ETIMEDOUT) if it had ended at entry or ends while
 * waiting; GOC_EWOULDEXCEED if the wait would pass the deadline, or
 * could never end (a limit of 0 with the burst spent) (it matches
 * -ETIMEDOUT under goc_error_code_is()); GOC_ECLOSED if the limiter is
 * closed, or closes while waiting; -EINVAL for @n < 0.
 */
GOC_API int goc_limiter_wait_n(goc_limiter *lim, int64_t n, goc_ctx *ctx);

/** goc_limiter_wait - goc_limiter_wait_n(@lim, 1, @ctx). */
GOC_API int goc_limiter_wait(goc_limiter *lim, goc_ctx *ctx);

/**
 * goc_limiter_set_limit_at - change the limit at @now: tokens are brought
 * up to date with the old limit first. Reservations already granted keep
 * their time to act.
 *
 * Return: 0; -EINVAL for a negative, NaN or infinite (INFINITY) @limit
 * (nothing changes).
 */
GOC_API int goc_limiter_set_limit_at(goc_limiter *lim,
                                     int64_t now,
                                     double limit);

/** goc_limiter_set_limit - set_limit_at() at the clock's now. */
GOC_API int goc_limiter_set_limit(goc_limiter *lim, double limit);

/**
 * goc_limiter_set_burst_at - change the burst at @now (tokens brought up
 * to date first).
 *
 * Return: 0; -EINVAL for a negative @burst (nothing changes).
 */
GOC_API int goc_limiter_set_burst_at(goc_limiter *lim,
                                     int64_t now,
                                     int64_t burst);

/** goc_limiter_set_burst - set_burst_at() at the clock's now. */
GOC_API int goc_limiter_set_burst(goc_limiter *lim, int64_t burst);

/**
 * goc_keyed_limiter - one token bucket per key (an IP, a user id, ...),
 * with bounded memory: at most max_keys buckets are kept; adding one more
 * evicts the least recently used, and buckets idle for idle_ttl are
 * dropped. Dropping a bucket forgets its debt (the key starts full again),
 * which is why the eviction count is reported.
 */
typedef struct goc_keyed_limiter goc_keyed_limiter;

/**
 * goc_keyed_limiter_new - create a keyed limiter.
 * @limit, @burst: as goc_limiter_new(), for every key.
 * @max_keys:      most buckets kept (>= 1).
 * @idle_ttl:      a bucket not used for this long is dropped on the next
 *                 call (<= 0: only LRU eviction).
 * @clock:         time source, or NULL.
 * @out:           receives the object.
 *
 * Return: 0; -EINVAL for a @limit or @burst goc_limiter_new() refuses,
 * @max_keys < 1 or above 2^40, or a NULL @out; -ENOMEM.
 */
GOC_API int goc_keyed_limiter_new(double limit,
                                  int64_t burst,
                                  int64_t max_keys,
                                  int64_t idle_ttl,
                                  const goc_clock *clock,
                                  goc_keyed_limiter **out);

/** goc_keyed_limiter_free - free it and every bucket (NULL ignored). */
GOC_API void goc_keyed_limiter_free(goc_keyed_limiter *kl);

/**
 * goc_keyed_limiter_allow_n_at - allow_n_at() on @key's bucket (created
 * full on first use). @key is copied; @len may be 0.
 *
 * Return: true if allowed; false if not, for @n < 0, or if a new bucket
 * could not be allocated (counted as rejected). @n above the burst with a
 * finite limit is rejected before any bucket is looked up or made, so it
 * evicts nothing.
 */
GOC_API bool goc_keyed_limiter_allow_n_at(
    goc_keyed_limiter *kl, const void *key, size_t len, int64_t now, int64_t n);

/** goc_keyed_limiter_allow - allow_n_at(@key, clock now, 1). */
GOC_API bool goc_keyed_limiter_allow(goc_keyed_limiter *kl,
                                     const void *key,
                                     size_t len);

/** Statistics of a keyed limiter (a snapshot). */
struct goc_keyed_limiter_stats {
    int64_t keys;     /* buckets held now */
    int64_t evicted;  /* dropped by LRU because max_keys was reached */
    int64_t expired;  /* dropped after idle_ttl */
    int64_t allowed;  /* calls that returned true */
    int64_t rejected; /* calls that returned false */
};

/** goc_keyed_limiter_stats - fill @st with a snapshot (NULL: nothing). */
GOC_API void goc_keyed_limiter_stats(goc_keyed_limiter *kl,
                                     struct goc_keyed_limiter_stats *st);

#ifdef __cplusplus
}
#endif

#endif /* GOC_RATELIMIT_H */
