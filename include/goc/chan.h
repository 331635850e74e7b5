/* SPDX-License-Identifier: MIT */
/*
 * goc/chan.h: channels and select, with Go's semantics, between goroutines
 * on any P and plain threads.
 *
 * A channel carries fixed-size elements, copied in and out. Capacity 0 is
 * unbuffered: a send completes only when a receiver takes the value.
 * Blocked senders and receivers are served first in, first out; on a
 * buffered channel a woken waiter retries the buffer, and an operation
 * arriving meanwhile may complete first (the buffer itself is lock-free).
 */
#ifndef GOC_CHAN_H
#define GOC_CHAN_H

#include "common.h"
#include "context.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * goc_chan_new - create a channel.
 * @elem_size: bytes per element; 0 for a signal channel (chan struct{}).
 * @cap:       buffered elements; 0 for an unbuffered channel.
 * @out:       receives the channel, with one reference for the caller.
 *
 * Return: 0; -EINVAL if @out is NULL or the buffer size overflows;
 * -ENOMEM. Any thread.
 */
GOC_API int goc_chan_new(size_t elem_size, size_t cap, goc_chan **out);

/** goc_chan_retain - take another reference; returns @c. */
GOC_API goc_chan *goc_chan_retain(goc_chan *c);

/**
 * goc_chan_release - drop a reference; the last one frees the channel and
 * any values still buffered in it. Nobody may be blocked on it, or inside
 * any other call on it, then; a receive or send that reported the close
 * has left it. A send that succeeded on a buffered channel may still be
 * on its way out (waking a receiver) after its value was taken: a sender
 * whose partner frees the channel holds a reference of its own until its
 * send has returned.
 * @c may be NULL.
 *
 * The last reference dropped while calls are still queued on the
 * channel (blocked receives, sends or selects) is a misuse that would
 * free memory they are about to write: it panics with GOC_EMISUSE and
 * frees nothing, leaving the channel with one reference.
 */
GOC_API void goc_chan_release(goc_chan *c);

/**
 * goc_chan_send - send a copy of *@elem.
 * @elem: elem_size bytes (borrowed); may be NULL when elem_size is 0.
 * @ctx:  cancellation; NULL waits forever.
 *
 * Blocks while the buffer is full (unbuffered: until a receiver takes the
 * value). A goroutine parks; a plain thread blocks.
 *
 * Return: 0 once the value is in the channel or handed to a receiver;
 * -EPIPE if the channel is closed (also when it is closed while waiting:
 * the value was not sent); -ECANCELED or -ETIMEDOUT if @ctx ended first
 * (at entry, or while waiting: nothing was sent); -EINVAL for a NULL @c,
 * or a NULL @elem with elem_size > 0; GOC_EMISUSE for a receive-only
 * handle (goc_chanreg_get(), goc_sub_chan(): their owner alone sends).
 */
GOC_API int goc_chan_send(goc_chan *c, const void *elem, goc_ctx *ctx);

/**
 * goc_chan_recv - receive one value into *@elem.
 * @elem: elem_size bytes to fill; NULL to discard the value.
 * @ctx:  cancellation; NULL waits forever.
 *
 * Values buffered before a close are still delivered after it.
 *
 * Return: 1 for a value; 0 when the channel is closed and drained (*@elem
 * is zeroed), so `while (goc_chan_recv(c, &v, NULL) > 0)` is Go's
 * `for v := range c`; -ECANCELED or -ETIMEDOUT if @ctx ended first
 * (nothing was taken); -EINVAL for a NULL @c.
 */
GOC_API int goc_chan_recv(goc_chan *c, void *elem, goc_ctx *ctx);

/**
 * goc_chan_try_send - goc_chan_send() that never blocks.
 *
 * Return: 0; -EAGAIN if it would block; -EPIPE if closed; -EINVAL and
 * GOC_EMISUSE as goc_chan_send().
 */
GOC_API int goc_chan_try_send(goc_chan *c, const void *elem);

/**
 * goc_chan_try_recv - goc_chan_recv() that never blocks.
 *
 * Return: 1 for a value; 0 if closed and drained; -EAGAIN if it would
 * block; -EINVAL.
 */
GOC_API int goc_chan_try_recv(goc_chan *c, void *elem);

/**
 * goc_chan_close - close the channel: no more sends.
 *
 * Every blocked receiver wakes with 0 (closed), every blocked sender with
 * -EPIPE. Buffered values stay receivable.
 *
 * Return: 0; GOC_EMISUSE for a second close, a NULL @c or a receive-only
 * handle (Go panics; here nothing changes). Never blocks; any thread.
 */
GOC_API int goc_chan_close(goc_chan *c);

/** goc_chan_len - values buffered now (a snapshot); 0 for NULL. */
GOC_API size_t goc_chan_len(goc_chan *c);

/** goc_chan_cap - the buffer capacity; 0 for NULL. */
GOC_API size_t goc_chan_cap(goc_chan *c);

/** goc_chan_elem_size - bytes per element; 0 for NULL. */
GOC_API size_t goc_chan_elem_size(goc_chan *c);

#define GOC_SELECT_RECV 1
#define GOC_SELECT_SEND 2

/**
 * struct goc_select_case - one case of goc_select().
 * @chan:   the channel; NULL is never ready (Go's nil channel).
 * @op:     GOC_SELECT_RECV or GOC_SELECT_SEND.
 * @elem:   recv: where the value goes (NULL discards it); send: the value.
 * @result: set for the case that ran. recv: 1 for a value, 0 for closed
 *          (*@elem zeroed); send: 0, or -EPIPE for a closed channel.
 */
struct goc_select_case {
    goc_chan *chan;
    int op;
    void *elem;
    int result;
};

/** goc_select() flag: never block; -EAGAIN if no case is ready. */
#define GOC_SELECT_DEFAULT  1u
/** goc_select() flag: take the first ready case, not a random one. */
#define GOC_SELECT_PRIORITY 2u

/**
 * goc_select - run exactly one of the ready cases, waiting until one is.
 * @cases: the cases (borrowed; each ran case gets its result).
 * @n:     number of cases, 0 to 1024.
 * @flags: GOC_SELECT_DEFAULT, GOC_SELECT_PRIORITY, or 0.
 * @ctx:   cancellation; NULL waits forever.
 *
 * Among several ready cases one is chosen uniformly at random, as in Go,
 * unless GOC_SELECT_PRIORITY. A send on a closed channel counts as ready
 * and reports -EPIPE in its result. With no case that can ever be ready
 * and no @ctx, it blocks forever, like Go's `select {}`.
 *
 * Return: the index of the case that ran; -EAGAIN with GOC_SELECT_DEFAULT
 * when none is ready; -ECANCELED or -ETIMEDOUT if @ctx ended first
 * (nothing ran); -EINVAL for a bad @n, @op, unknown @flags, a NULL
 * @cases, or a send case with a NULL elem on a channel of elem_size > 0;
 * GOC_EMISUSE for a send case on a receive-only handle; -ENOMEM if more
 * than 8 cases need memory that cannot be allocated.
 */
GOC_API int goc_select(struct goc_select_case *cases,
                       int n,
                       unsigned flags,
                       goc_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* GOC_CHAN_H */
