/* SPDX-License-Identifier: MIT */
/*
 * spawn: start N goroutines that each call wg.Done, then wait for all;
 * ns per goroutine (spawn, run and exit).
 */
#include <goc.h>

#include <stdio.h>

#define N 1000000

static void done(void *arg)
{
    goc_wg_done(arg);
}

static int64_t run(void)
{
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, N);
    int64_t t0 = goc_now();
    for (int i = 0; i < N; i++)
        if (goc_go(done, &wg) != 0)
            return -1;
    goc_wg_wait(&wg, NULL);
    return goc_now() - t0;
}

static int bench(void *arg)
{
    (void)arg;
    if (run() < 0)
        return 1;
    int64_t ns = run();
    if (ns < 0 || goc_num_goroutine() < 1)
        return 1;
    printf("spawn %.1f ns/op\n", (double)ns / N);
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
