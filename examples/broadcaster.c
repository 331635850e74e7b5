/* SPDX-License-Identifier: MIT */
/*
 * The seed's BroadcasterExample (section 2.2) in C: two subscribers
 * ranging over their subscriptions, ten messages; then a slow subscriber
 * under each overflow policy.
 *
 * Fixed against the original: close ends every subscriber's loop (the
 * original never closed them, so both goroutines leaked); subscriptions
 * are receive-only and only the broadcaster closes them, so neither a
 * second unsubscribe nor a subscriber closing its channel can crash a
 * publish; a full subscriber is handled by its policy and every drop is
 * counted (the original dropped silently); the closed check is made once
 * per publish, which never stops part-way.
 */
#include <goc.h>

#include <stdio.h>

struct listener {
    goc_sub *sub;
    int id;
    goc_wg *wg;
};

static void read_loop(void *arg)
{
    struct listener *l = arg;
    long msg;
    while (goc_sub_recv(l->sub, &msg, NULL) > 0) /* for msg := range sub */
        printf("subscriber %d: message %ld\n", l->id, msg);
    printf("subscriber %d: closed, done\n", l->id);
    goc_wg_done(l->wg);
}

static void policies(void)
{
    static const char *names[] = { "drop newest", "drop oldest", "block 1 ms",
                                   "disconnect" };
    goc_bcast *b;
    goc_sub *s[4];
    goc_bcast_new(sizeof(long), &b);
    for (int i = 0; i < 4; i++)
        goc_bcast_subscribe(b, 2, (enum goc_overflow)i,
                            i == GOC_BLOCK ? GOC_MILLISECOND : 0, &s[i]);
    for (long m = 0; m < 6; m++) /* nobody reads: buffers of 2 overflow */
        goc_bcast_publish(b, &m, NULL, NULL);
    for (int i = 0; i < 4; i++) {
        struct goc_sub_stats st;
        goc_sub_stats(s[i], &st);
        printf("%-11s: delivered %lld, dropped %lld, evicted %lld%s\n",
               names[i], (long long)st.delivered, (long long)st.dropped,
               (long long)st.evicted, st.disconnected ? ", disconnected" : "");
    }
    goc_bcast_free(b);
    for (int i = 0; i < 4; i++)
        goc_sub_release(s[i]);
}

static int example(void *unused)
{
    (void)unused;
    goc_bcast *b;
    goc_wg wg = GOC_WG_INIT;
    struct listener l[2];
    goc_bcast_new(sizeof(long), &b);
    goc_wg_add(&wg, 2);
    for (int i = 0; i < 2; i++) {
        l[i] = (struct listener){ NULL, i + 1, &wg };
        goc_bcast_subscribe(b, 16, GOC_BLOCK, 0, &l[i].sub);
        goc_go(read_loop, &l[i]);
    }
    for (long m = 0; m < 10; m++)
        goc_bcast_publish(b, &m, NULL, NULL);
    goc_bcast_close(b); /* ends both loops */
    goc_wg_wait(&wg, NULL);
    printf("unsubscribe after close: %s (an error, not a crash)\n",
           goc_strerror(goc_bcast_unsubscribe(b, l[0].sub)));
    for (int i = 0; i < 2; i++)
        goc_sub_release(l[i].sub);
    goc_bcast_free(b);
    policies();
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
