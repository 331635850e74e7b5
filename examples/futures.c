/* SPDX-License-Identifier: MIT */
/*
 * The seed's FuturesExample (section 3.2) in C: two asynchronous tasks,
 * then all, race, any and a continuation.
 *
 * Fixed against the original: race has exactly one winner, chosen
 * atomically (the original raced on its result and could crash closing a
 * closed channel), and it runs on futures that are still pending, so the
 * fastest really wins; all fails as soon as one input fails, with that
 * input's error; any is the first success; a second completion is
 * reported, not ignored; a settled future never reads as a timeout; and
 * cancelling a future cancels its work through its context.
 */
#include <goc.h>

#include <stdio.h>
#include <string.h>

static int task(goc_ctx *ctx, void *arg, void **result)
{
    int ms = (int)(intptr_t)arg;
    int err = goc_sleep(ms * GOC_MILLISECOND, ctx);
    if (err)
        return err;
    *result = (void *)(ms == 10 ? "Task 1 completed" : "Task 2 completed");
    return 0;
}

static int shout(const void *value, void *arg, void **result)
{
    (void)arg;
    *result = (void *)(strlen(value) > 0 ? "TASK 1 COMPLETED!" : "");
    return 0;
}

static void start(goc_future **f1, goc_future **f2)
{
    goc_future_async(task, (void *)10, NULL, NULL, f1);
    goc_future_async(task, (void *)20, NULL, NULL, f2);
}

static int example(void *unused)
{
    (void)unused;
    goc_future *f[2], *all, *race, *any, *then;
    int st;
    void *v;

    start(&f[0], &f[1]);
    goc_future_all(f, 2, 0, &all);
    goc_future_get(all, &st, &v, NULL);
    printf("all: %s: [%s, %s]\n", goc_strerror(st), (char *)((void **)v)[0],
           (char *)((void **)v)[1]);
    printf("complete again: %d (0: already settled, reported)\n",
           goc_future_complete(f[0], 0, NULL));
    goc_future_release(all);
    goc_future_release(f[0]);
    goc_future_release(f[1]);

    start(&f[0], &f[1]); /* race on pending futures: the fastest wins */
    goc_future_race(f, 2, GOC_FUTURE_CANCEL_REST, &race);
    goc_future_get(race, &st, &v, NULL);
    printf("race winner: %s (the loser was cancelled: %s)\n", (char *)v,
           goc_future_state(f[1]) == GOC_FUTURE_CANCELED ? "yes" : "no");
    goc_future_then(f[0], shout, NULL, NULL, &then);
    goc_future_get(then, &st, &v, NULL);
    printf("then: %s\n", (char *)v);
    goc_future_release(race);
    goc_future_release(then);
    goc_future_release(f[0]);
    goc_future_release(f[1]);

    goc_future_async(task, (void *)(intptr_t)5, NULL, NULL, &f[0]);
    goc_future_cancel(f[0]); /* fails first */
    goc_future_async(task, (void *)20, NULL, NULL, &f[1]);
    goc_future_any(f, 2, 0, &any);
    goc_future_get(any, &st, &v, NULL);
    printf("any: first success: %s\n", (char *)v);
    goc_future_release(any);
    goc_future_release(f[0]);
    goc_future_release(f[1]);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
