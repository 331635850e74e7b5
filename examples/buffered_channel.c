/* SPDX-License-Identifier: MIT */
/*
 * The seed's BufferedChannelExample (section 2.1) in C: a producer fills a
 * channel of capacity 100 with 1000 values and closes it; the consumer
 * ranges over it (`while (goc_chan_recv(...) > 0)` is Go's `for range`).
 * It prints a summary instead of a thousand lines.
 */
#include <goc.h>

#include <stdio.h>

static void producer(void *arg)
{
    goc_chan *ch = arg;
    for (int i = 0; i < 1000; i++)
        goc_chan_send(ch, &i, NULL);
    goc_chan_close(ch); /* the sender closes: receivers see the end */
}

static int example(void *unused)
{
    (void)unused;
    goc_chan *ch;
    if (goc_chan_new(sizeof(int), 100, &ch) != 0)
        return 1;
    goc_go(producer, ch);
    int v, n = 0, max_len = 0;
    long sum = 0;
    while (goc_chan_recv(ch, &v, NULL) > 0) {
        if (n < 3)
            printf("Received: %d\n", v);
        int len = (int)goc_chan_len(ch);
        max_len = len > max_len ? len : max_len;
        sum += v;
        n++;
    }
    printf("... received %d values, sum %ld; the buffer held up to %d of "
           "its %zu slots\n",
           n, sum, max_len, goc_chan_cap(ch));
    goc_chan_release(ch);
    return sum == 999L * 1000 / 2 ? 0 : 1;
}

int main(void)
{
    return goc_run(example, NULL);
}
