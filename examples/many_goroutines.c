/* SPDX-License-Identifier: MIT */
/*
 * A hundred thousand goroutines that each sleep, spread over every P: the
 * cost of a goroutine is a page of memory and a few hundred nanoseconds,
 * so one per task is the normal way to write concurrent C with goc.
 */
#include <goc.h>

#include <stdatomic.h>
#include <stdio.h>

#define N 100000

static goc_wg wg = GOC_WG_INIT;
static _Atomic long per_p[64];

static void worker(void *arg)
{
    (void)arg;
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    int p = goc_p_index();
    atomic_fetch_add(&per_p[p < 64 ? p : 63], 1);
    goc_wg_done(&wg);
}

static int run(void *arg)
{
    (void)arg;
    int64_t t0 = goc_now();
    goc_wg_add(&wg, N);
    for (int i = 0; i < N; i++) {
        if (goc_go(worker, NULL) != 0)
            return 1;
        /* goc does not preempt: a loop this long lets the others run now
         * and then, so the goroutines queued here start without waiting
         * for it to end. */
        if (i % 1024 == 1023)
            goc_yield();
    }
    goc_wg_wait(&wg, NULL);
    printf("%d goroutines slept 20 ms each; all done in %.1f ms\n", N,
           (double)(goc_now() - t0) / 1e6);
    for (int p = 0; p < goc_maxprocs() && p < 64; p++)
        printf("  P%d woke %ld of them\n", p, atomic_load(&per_p[p]));
    return 0;
}

int main(void)
{
    return goc_run(run, NULL);
}
