/* SPDX-License-Identifier: MIT */
/*
 * goc/pattern.h: channel patterns. Pipeline stages (generator, stage,
 * fan-out, fan-in), receive/send with a timeout, a registry of named
 * channels, and a broadcaster.
 *
 * Pipeline stages follow the rules of "Go Concurrency Patterns:
 * Pipelines and cancellation": each stage runs as a goroutine of a
 * goc_group, owns its output and closes it exactly once when it stops;
 * every send and receive it makes is cancelled by the group's context;
 * its first error cancels the whole pipeline, and goc_group_wait()
 * joins every stage and returns that error. Channels are borrowed: each
 * stage holds its own references while it runs.
 */
#ifndef GOC_PATTERN_H
#define GOC_PATTERN_H

#include "chan.h"
#include "common.h"
#include "context.h"
#include "group.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== pipeline stages =================================================== */

/** goc_stage_fn return: drop this value, emit nothing. */
#define GOC_STAGE_SKIP 1

/**
 * goc_stage_fn - a stage's work on one value.
 * @in:  the value received (borrowed, the input's elem_size bytes).
 * @out: where to write the value to send (the output's elem_size bytes).
 *
 * Return: 0 to send *@out; GOC_STAGE_SKIP to send nothing; a negative
 * code to stop the stage with that error (cancels the pipeline).
 */
typedef int (*goc_stage_fn)(void *arg, const void *in, void *out);

/**
 * goc_gen_fn - a generator's step.
 * @out: where to write the next value.
 *
 * Return: 1 to send *@out; 0 when done; a negative code to stop with an
 * error.
 */
typedef int (*goc_gen_fn)(void *arg, void *out);

/**
 * goc_pipe_generator - start a goroutine in @g that sends @fn's values on
 * @out, then closes @out.
 *
 * Each goroutine of a pipeline holds one of @g's slots while it runs, so
 * on a group with a limit (goc_group_set_limit()) a pipeline needs a slot
 * for each: a call that finds none free fails with -EAGAIN rather than
 * waiting for stages that may be waiting on it.
 *
 * Return: 0; -EINVAL for NULL arguments; -ENOMEM; -EAGAIN at the group's
 * limit (nothing started then; @out is not closed); GOC_EMISUSE for a
 * receive-only output (goc_chanreg_get(), goc_sub_chan()), here and in
 * the other pipeline calls.
 */
GOC_API int goc_pipe_generator(goc_group *g,
                               goc_chan *out,
                               goc_gen_fn fn,
                               void *arg);

/**
 * goc_pipe_stage - start a goroutine in @g that receives from @in until it
 * is closed, sends @fn's result for each value on @out, then closes @out.
 *
 * When the group's context ends, the stage stops at its next receive or
 * send (a value taken but not sent is dropped and counted in
 * goc_pipe_dropped()) and closes @out.
 *
 * Return: as goc_pipe_generator(); -EINVAL also for @in == @out.
 */
GOC_API int goc_pipe_stage(
    goc_group *g, goc_chan *in, goc_chan *out, goc_stage_fn fn, void *arg);

/**
 * goc_pipe_fan_out - @n stages (goc_pipe_stage()) sharing @in, stage i
 * sending on @outs[i]. Each value of @in goes to exactly one stage; the
 * order across outputs is not the input order.
 *
 * Return: 0; -EINVAL for @n <= 0, NULL arguments, an output given twice
 * or @in among @outs (nothing started);
 * -ENOMEM or -EAGAIN at the group's limit: the stages already started
 * keep running and close their outputs, and the outputs of the others
 * are closed at once, so a merge over all of them still ends.
 */
GOC_API int goc_pipe_fan_out(goc_group *g,
                             goc_chan *in,
                             goc_chan *const *outs,
                             int n,
                             goc_stage_fn fn,
                             void *arg);

/**
 * goc_pipe_merge - fan-in: forward every value of the @n inputs to @out,
 * and close @out once all inputs are closed (or the group's context
 * ended). Values of one input keep their order. @n = 0 closes @out at
 * once. All channels carry elements of the same size.
 *
 * Return: 0; -EINVAL (also for mismatched element sizes, or @out among
 * @ins; an input may be given twice); -ENOMEM or -EAGAIN at the group's
 * limit: if no input could be started nothing happened
 * and @out is not closed; otherwise the inputs started are forwarded and
 * @out is closed after them.
 */
GOC_API int goc_pipe_merge(goc_group *g,
                           goc_chan *const *ins,
                           int n,
                           goc_chan *out);

/** goc_pipe_dropped - values stages dropped at cancellation (process). */
GOC_API int64_t goc_pipe_dropped(void);

/**
 * goc_chan_recv_timeout - receive, waiting at most @timeout ns.
 *
 * A value ready at entry is returned even if @ctx is done or @timeout is
 * <= 0 (the value wins).
 *
 * Return: 0 with the value in *@elem; -EPIPE if the channel is closed and
 * drained (never a zero value that looks real); -ETIMEDOUT when
 * @timeout passed (the same code as a ctx deadline); the error of @ctx
 * if it ended first; -EINVAL. Goroutines and plain threads.
 */
GOC_API int goc_chan_recv_timeout(goc_chan *c,
                                  void *elem,
                                  int64_t timeout,
                                  goc_ctx *ctx);

/**
 * goc_chan_send_timeout - send, waiting at most @timeout ns. Room ready at
 * entry wins. On timeout or cancel the value was not sent.
 *
 * Return: 0; -EPIPE if closed; -ETIMEDOUT; the error of @ctx; -EINVAL.
 */
GOC_API int goc_chan_send_timeout(goc_chan *c,
                                  const void *elem,
                                  int64_t timeout,
                                  goc_ctx *ctx);

/* ==== named channel registry ============================================ */

/** A registry of named channels (opaque). */
typedef struct goc_chanreg goc_chanreg;

/**
 * goc_chanreg_new - create a registry.
 * @elem_size:    element size of every channel.
 * @per_cap:      buffer capacity of each channel.
 * @max_channels: most channels at once; 0: no limit; negative: -EINVAL.
 *
 * Return: 0; -EINVAL (also for an @elem_size and @per_cap no channel can
 * have, as goc_chan_new() says); -ENOMEM.
 */
GOC_API int goc_chanreg_new(size_t elem_size,
                            size_t per_cap,
                            int64_t max_channels,
                            goc_chanreg **out);

/** goc_chanreg_free - close and free the registry. @r may be NULL. */
GOC_API void goc_chanreg_free(goc_chanreg *r);

/**
 * goc_chanreg_get - the channel named @name, created on first use.
 * @out: receives a reference for receiving (release it with
 *       goc_chan_release()). Send through goc_chanreg_send(): the
 *       registry owns the sending side and closes the channel. The
 *       handle is receive-only: goc_chan_send(), goc_chan_try_send(),
 *       goc_chan_close() and a send case of goc_select() on it return
 *       GOC_EMISUSE.
 *
 * Return: 0; GOC_EOVERLOAD at max_channels; GOC_ECLOSED after close
 * (nothing is created); -EINVAL; -ENOMEM.
 */
GOC_API int goc_chanreg_get(goc_chanreg *r, const char *name, goc_chan **out);

/**
 * goc_chanreg_send - send on the channel named @name (created on first
 * use), waiting while it is full.
 *
 * Return: 0; GOC_ECLOSED if the registry is closed or the channel removed
 * (also while waiting: the value was not sent, and nothing crashes);
 * GOC_EOVERLOAD at max_channels; -ECANCELED or -ETIMEDOUT from @ctx;
 * -EINVAL (a NULL @elem with elem_size > 0 too: nothing is created);
 * -ENOMEM.
 */
GOC_API int goc_chanreg_send(goc_chanreg *r,
                             const char *name,
                             const void *elem,
                             goc_ctx *ctx);

/**
 * goc_chanreg_remove - close the channel named @name and forget it.
 * Receivers drain what is buffered, then see it closed.
 *
 * Return: 0; -ENOENT if there is none; GOC_ECLOSED after close (the
 * close removed them all); -EINVAL.
 */
GOC_API int goc_chanreg_remove(goc_chanreg *r, const char *name);

/**
 * goc_chanreg_close - close every channel and refuse new ones.
 *
 * Return: 0; GOC_ECLOSED if already closed (nothing changes); -EINVAL.
 */
GOC_API int goc_chanreg_close(goc_chanreg *r);

/** goc_chanreg_count - channels registered now. */
GOC_API int64_t goc_chanreg_count(goc_chanreg *r);

/* ==== broadcaster ======================================================= */

/** A broadcaster (opaque) and one of its subscriptions. */
typedef struct goc_bcast goc_bcast;
typedef struct goc_sub goc_sub;

/** What a publish does when a subscriber's buffer is full. */
enum goc_overflow {
    GOC_DROP_NEWEST = 0, /* drop the new message for this subscriber */
    GOC_DROP_OLDEST = 1, /* evict the oldest buffered one, keep the new */
    GOC_BLOCK = 2,       /* wait (block_timeout, the publish ctx) */
    GOC_DISCONNECT = 3,  /* close the subscription ("too slow") */
};

/**
 * goc_bcast_new - create a broadcaster of @elem_size-byte messages
 * (copied into each subscriber's buffer).
 *
 * Return: 0; -EINVAL; -ENOMEM.
 */
GOC_API int goc_bcast_new(size_t elem_size, goc_bcast **out);

/**
 * goc_bcast_close_on - close @b once @ctx ends (a parent's cancel or
 * deadline), as goc_bcast_close() does: every subscription ends. A @ctx
 * that never ends never closes it; goc_bcast_free() stops the watch.
 *
 * Return: 0; -EINVAL for a NULL argument; -EBUSY if bound already.
 */
GOC_API int goc_bcast_close_on(goc_bcast *b, goc_ctx *ctx);

/**
 * goc_bcast_free - close the broadcaster, wait for the publishes under
 * way (those queued behind another get GOC_ECLOSED), and free it.
 * Subscriptions stay valid until released. @b may be NULL.
 */
GOC_API void goc_bcast_free(goc_bcast *b);

/**
 * goc_bcast_subscribe - add a subscriber.
 * @buf_cap:       its buffer, >= 1.
 * @policy:        what happens when the buffer is full.
 * @block_timeout: GOC_BLOCK only: most ns a publish waits for this
 *                 subscriber (0: no limit but the publish ctx); 0 for
 *                 the other policies.
 * @out:           receives the subscription (release it with
 *                 goc_sub_release() when done).
 *
 * Return: 0; GOC_ECLOSED after close; -EINVAL; -ENOMEM.
 */
GOC_API int goc_bcast_subscribe(goc_bcast *b,
                                size_t buf_cap,
                                enum goc_overflow policy,
                                int64_t block_timeout,
                                goc_sub **out);

/**
 * goc_sub_recv - receive the next message.
 *
 * Return: 1 for a message; 0 once the subscription is closed (by
 * unsubscribe, disconnect or close) and drained; -ECANCELED or
 * -ETIMEDOUT from @ctx; -EINVAL.
 */
GOC_API int goc_sub_recv(goc_sub *s, void *elem, goc_ctx *ctx);

/**
 * goc_sub_chan - the subscription's channel, for goc_select(). Receive
 * only: the broadcaster alone sends on it and closes it; a send, a close
 * or a select send case on it returns GOC_EMISUSE.
 */
GOC_API goc_chan *goc_sub_chan(goc_sub *s);

/**
 * struct goc_sub_stats - one subscription's counters. A delivery is
 * counted just after the message lands in the buffer, so a subscriber
 * that reads them right after a receive may find that message not yet
 * counted: delivered - evicted trails its receives by at most the one
 * message being published. Once publishing stops they balance exactly.
 */
struct goc_sub_stats {
    int64_t delivered; /* messages put in its buffer */
    int64_t dropped;   /* messages it never got (full, timeout, closed) */
    int64_t evicted;   /* buffered messages replaced (GOC_DROP_OLDEST) */
    bool disconnected; /* closed as too slow (GOC_DISCONNECT) */
};

/** goc_sub_stats - fill @st; -EINVAL for NULL. */
GOC_API int goc_sub_stats(goc_sub *s, struct goc_sub_stats *st);

/** goc_sub_release - drop the caller's reference. @s may be NULL. */
GOC_API void goc_sub_release(goc_sub *s);

/**
 * goc_bcast_unsubscribe - remove @s and close its channel; no message is
 * delivered to it after this returns.
 *
 * Return: 0; -EINVAL if @s is not subscribed to @b (again, foreign, or
 * already disconnected); nothing else changes and nothing crashes.
 */
GOC_API int goc_bcast_unsubscribe(goc_bcast *b, goc_sub *s);

/**
 * goc_bcast_publish - send a copy of *@msg to every subscriber registered
 * at entry, each according to its policy. Publishes are serialised, so
 * every subscriber sees messages in publish order. The closed check is
 * made once, at entry: a publish never stops part-way (a subscription
 * closed meanwhile counts the message as dropped).
 * @dropped: receives the number of subscribers that did not get it (may
 *           be NULL).
 * @ctx:     bounds GOC_BLOCK waits (a wait it ends drops the message for
 *           that subscriber only), and the wait behind another publish.
 *
 * A close ends GOC_BLOCK waits (the message is dropped for that
 * subscriber), and waits for the publish in flight to finish with every
 * other subscriber before it closes any subscription.
 *
 * Return: the number of subscribers that got it; GOC_ECLOSED after close;
 * -ECANCELED or -ETIMEDOUT if @ctx ended while it waited behind another
 * publish, -ENOMEM if the subscriber list could not be copied (nothing
 * delivered then; *@dropped is 0); -EINVAL.
 */
GOC_API int goc_bcast_publish(goc_bcast *b,
                              const void *msg,
                              int64_t *dropped,
                              goc_ctx *ctx);

/**
 * goc_bcast_close - refuse new publishes and subscriptions, end the
 * GOC_BLOCK waits of the publish in flight and wait for it to finish, then
 * close every subscription (receivers drain, then see closed).
 *
 * Return: 0; GOC_ECLOSED if already closed; -EINVAL.
 */
GOC_API int goc_bcast_close(goc_bcast *b);

/** goc_bcast_subscribers - subscribers now. */
GOC_API int64_t goc_bcast_subscribers(goc_bcast *b);

#ifdef __cplusplus
}
#endif

#endif /* GOC_PATTERN_H */
