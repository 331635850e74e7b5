/* SPDX-License-Identifier: MIT */
/*
 * The seed's BasicGoroutineExample (section 1.1) in C: start goroutines and
 * wait for them with a WaitGroup.
 *
 * The original starts a first goroutine and never joins it, so the function
 * returns before it prints (a fire-and-forget leak shown as the basic
 * pattern). Here every goroutine is owned and joined.
 */
#include <goc.h>

#include <stdio.h>

static void sleepy_task(void *arg)
{
    goc_wg *wg = arg;
    goc_sleep(100 * GOC_MILLISECOND, NULL); /* the seed sleeps 1 s */
    printf("goroutine %lld completed after its sleep\n", (long long)goc_id());
    goc_wg_done(wg);
}

static void quick_task(void *arg)
{
    goc_wg *wg = arg;
    printf("goroutine %lld: task completed\n", (long long)goc_id());
    goc_wg_done(wg);
}

static int basic_goroutine_example(void *arg)
{
    (void)arg;
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 2);
    int err = goc_go(sleepy_task, &wg);
    if (err == 0)
        err = goc_go(quick_task, &wg);
    if (err) {
        fprintf(stderr, "goc_go: %s\n", goc_strerror(err));
        return 1;
    }
    goc_wg_wait(&wg, NULL);
    /* A goroutine that called goc_wg_done() still counts until it returns:
     * wait (at most 1 s) for none to be left besides this one. */
    err = goc_leakcheck(0, GOC_SECOND);
    printf("all %d goroutines joined; %lld left running\n", 2,
           (long long)goc_num_goroutine() - 1);
    return err ? 1 : 0;
}

int main(void)
{
    return goc_run(basic_goroutine_example, NULL);
}
