/* SPDX-License-Identifier: MIT */
/*
 * The seed's ChannelWithTimeout (section 2.2) in C: receive one value,
 * giving up after a timeout or when the caller's context ends.
 *
 * Fixed against the original: a closed channel is reported as closed
 * (-EPIPE), not as a real 0; the timeout is a deadline context derived
 * from the caller's (no separate timer that keeps running), so the error
 * says which one ended (-ETIMEDOUT or the parent's -ECANCELED); and a
 * value that is already there wins over a context that ended, instead of
 * a coin toss between them.
 */
#include <goc.h>

#include <stdio.h>

static int channel_with_timeout(goc_ctx *ctx,
                                goc_chan *ch,
                                int64_t timeout,
                                int *out)
{
    /* A ready value has priority. */
    int rc = goc_chan_try_recv(ch, out);
    if (rc == -EAGAIN) {
        goc_ctx_local local; /* a per-call deadline: no allocation */
        goc_ctx *deadline = goc_ctx_init_timeout(&local, ctx, timeout);
        rc = goc_chan_recv(ch, out, deadline);
        goc_ctx_destroy(deadline);
    }
    if (rc == 0)
        return -EPIPE; /* closed and drained */
    return rc < 0 ? rc : 0;
}

static void send_after(void *arg)
{
    goc_chan *ch = arg;
    int v = 42;
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    goc_chan_send(ch, &v, NULL);
}

static int example(void *unused)
{
    (void)unused;
    goc_chan *ch;
    int v = 0;
    goc_chan_new(sizeof(int), 1, &ch);

    goc_go(send_after, ch);
    int rc = channel_with_timeout(NULL, ch, 100 * GOC_MILLISECOND, &v);
    printf("value in time:     rc=%d (%s), v=%d\n", rc, goc_strerror(rc), v);

    rc = channel_with_timeout(NULL, ch, 20 * GOC_MILLISECOND, &v);
    printf("nothing sent:      rc=%d (%s)\n", rc, goc_strerror(rc));

    goc_ctx *parent;
    goc_ctx_with_cancel(NULL, &parent);
    goc_ctx_cancel(parent);
    v = 7;
    goc_chan_send(ch, &v, NULL);
    rc = channel_with_timeout(parent, ch, GOC_SECOND, &v);
    printf("ready value wins over a cancelled caller: rc=%d, v=%d\n", rc, v);
    rc = channel_with_timeout(parent, ch, GOC_SECOND, &v);
    printf("caller cancelled:  rc=%d (%s)\n", rc, goc_strerror(rc));
    goc_ctx_release(parent);

    goc_chan_close(ch);
    rc = channel_with_timeout(NULL, ch, GOC_SECOND, &v);
    printf("closed channel:    rc=%d (%s)\n", rc, goc_strerror(rc));
    goc_chan_release(ch);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
