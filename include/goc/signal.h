/* SPDX-License-Identifier: MIT */
/*
 * goc/signal.h: Unix signals delivered on channels, like Go's
 * os/signal.Notify.
 *
 * A handler installed by goc only counts the signal and writes a byte to
 * a pipe in the runtime's poller; the polling thread then sends the
 * signal's number to every channel subscribed to it. Sending never
 * blocks: a full channel misses that signal (counted by
 * goc_signal_dropped()), so give each channel a buffer of at least 1.
 * As in Go, one signal caught several times before the poller delivers
 * it is delivered (or dropped) once, real-time signals included.
 */
#ifndef GOC_SIGNAL_H
#define GOC_SIGNAL_H

#include "common.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * goc_signal_notify - deliver @sigs to @ch from now on.
 * @ch:   a channel of int (element size sizeof(int)); goc holds a
 *        reference until goc_signal_stop().
 * @sigs: @n signal numbers; calling again for the same channel adds to
 *        its set.
 *
 * The first subscription to a signal replaces its disposition (so SIGINT
 * no longer ends the process); the last goc_signal_stop() for it restores
 * the one found before.
 *
 * Return: 0; -EINVAL for a NULL channel, a wrong element size, @n < 1, or
 * a signal that cannot be caught, is synchronous (SIGKILL, SIGSTOP,
 * SIGSEGV, SIGBUS, SIGFPE, SIGILL) or is the C library's own (those
 * between 31 and SIGRTMIN); GOC_EMISUSE for a receive-only channel
 * (goc_chanreg_get(), goc_sub_chan()); -ENOMEM. On an error nothing
 * changes.
 */
GOC_API int goc_signal_notify(goc_chan *ch, const int *sigs, int n);

/**
 * goc_signal_stop - deliver nothing more to @ch. Once it returns, no
 * signal is sent to @ch any more.
 *
 * Return: 0; -EINVAL if @ch was not subscribed.
 */
GOC_API int goc_signal_stop(goc_chan *ch);

/** goc_signal_dropped - signals not delivered because a channel was full. */
GOC_API int64_t goc_signal_dropped(void);

#ifdef __cplusplus
}
#endif

#endif /* GOC_SIGNAL_H */
