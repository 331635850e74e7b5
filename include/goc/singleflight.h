/* SPDX-License-Identifier: MIT */
/*
 * goc/singleflight.h: duplicate call suppression, in the manner of
 * golang.org/x/sync/singleflight. While a call for a key is in flight,
 * other callers for the same key wait for it and share its outcome
 * instead of running the function again. Outcomes are not cached: the
 * key is forgotten as soon as the call completes.
 */
#ifndef GOC_SINGLEFLIGHT_H
#define GOC_SINGLEFLIGHT_H

#include "common.h"
#include "context.h"
#include "future.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A singleflight group (opaque). */
typedef struct goc_sf goc_sf;

/** goc_sf_new - create a group. Return: 0; -EINVAL; -ENOMEM. */
GOC_API int goc_sf_new(goc_sf **out);

/**
 * goc_sf_close - refuse new calls (GOC_ECLOSED); calls in flight, and
 * their joiners, go on to their outcome.
 *
 * Return: 0; GOC_ECLOSED if already closed; -EINVAL for NULL.
 */
GOC_API int goc_sf_close(goc_sf *g);

/**
 * goc_sf_free - close the group, wait until no call uses it any more (a
 * running @fn returns, its joiners have their outcome or gave up), then
 * free it. Outcomes already handed out stay valid. @g may be NULL.
 * Blocks while calls are in flight.
 */
GOC_API void goc_sf_free(goc_sf *g);

/**
 * goc_sf_do - run @fn(@ctx, @arg, &value) once for @key, or join the call
 * already in flight for it.
 * @key:        NUL-terminated (copied).
 * @free_value: destructor of @fn's value.
 * @out:        receives the settled outcome: a future with a reference for
 *              the caller (read it with goc_future_try_get(); the value is
 *              shared by every caller and lives while a reference does).
 * @shared:     receives whether the outcome went to more than one caller
 *              (may be NULL): a goc_sf_do() caller that gave up waiting
 *              did not get it; a goc_sf_do_async() caller counts as
 *              getting it (its future may be read until it cancels it).
 * @ctx:        passed to @fn when this caller runs it; when this caller
 *              joins, it bounds the wait only (the call goes on).
 *
 * The first caller runs @fn on its own goroutine or thread. A failure of
 * @fn reaches every caller of that flight with the same status; a panic
 * in @fn, as GOC_EPANIC with the panic on each caller's future
 * (goc_future_panic()), unless the recovery policy raises it again.
 *
 * Return: 0 with *@out settled; -ECANCELED or -ETIMEDOUT if @ctx ended
 * while joining, or had ended at entry (nothing joined or started: a
 * flight led under it would fail its joiners with this caller's cancel);
 * GOC_ECLOSED once the group is closed; -EINVAL; -ENOMEM.
 */
GOC_API int goc_sf_do(goc_sf *g,
                      const char *key,
                      goc_task_fn fn,
                      void *arg,
                      goc_value_free_fn free_value,
                      goc_future **out,
                      bool *shared,
                      goc_ctx *ctx);

/**
 * goc_sf_do_async - goc_sf_do() without waiting (Go's DoChan): a new
 * goroutine runs @fn if no call for @key is in flight.
 * @out: receives a future of this caller's own, settled with the
 *       flight's outcome. Its value is the one shared by every caller
 *       of the flight: it stays valid while this future lives, and is
 *       destroyed (by @free_value) once, after every caller let go.
 * @ctx: passed to @fn if this call starts it (borrowed: it must outlive
 *       the flight).
 *
 * goc_future_cancel() on *@out settles this caller's future only: the
 * other callers of the flight still get its outcome. It does not stop
 * @fn, even when every caller has cancelled (as Go's DoChan: the call
 * goes on, its value is then destroyed): to stop @fn, cancel the @ctx
 * of the call that started it.
 *
 * Return: 0; the ctx error if @ctx is already done, GOC_ECLOSED once
 * the group is closed, -EINVAL, -ENOMEM or goc_go()'s error (nothing
 * joined or started).
 */
GOC_API int goc_sf_do_async(goc_sf *g,
                            const char *key,
                            goc_task_fn fn,
                            void *arg,
                            goc_value_free_fn free_value,
                            goc_future **out,
                            goc_ctx *ctx);

/**
 * goc_sf_forget - later calls for @key run @fn anew instead of joining
 * the flight in progress (which still completes for its callers).
 *
 * Return: 1 if a flight was forgotten, 0 if none; -EINVAL.
 */
GOC_API int goc_sf_forget(goc_sf *g, const char *key);

/**
 * goc_sf_joined - how many callers have joined the flight in progress for
 * @key so far (those that gave up included); 0 if none is in flight.
 */
GOC_API int64_t goc_sf_joined(goc_sf *g, const char *key);

#ifdef __cplusplus
}
#endif

#endif /* GOC_SINGLEFLIGHT_H */
