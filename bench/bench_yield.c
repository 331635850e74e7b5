/* SPDX-License-Identifier: MIT */
/*
 * yield: two goroutines on one P hand the CPU back and forth with
 * goc_yield(); ns per switch (C only: Go's Gosched is not the same
 * operation). Runs with one P so that both share it.
 */
#include <goc.h>

#include <stdio.h>
#include <stdlib.h>

#define N 10000000

static goc_wg wg = GOC_WG_INIT;

static void yielder(void *arg)
{
    (void)arg;
    for (int i = 0; i < N; i++)
        goc_yield();
    goc_wg_done(&wg);
}

static int64_t run(void)
{
    goc_wg_add(&wg, 2);
    int64_t t0 = goc_now();
    goc_go(yielder, NULL);
    goc_go(yielder, NULL);
    goc_wg_wait(&wg, NULL);
    return goc_now() - t0;
}

static int bench(void *arg)
{
    (void)arg;
    run(); /* warm-up */
    int64_t ns = run();
    printf("yield %.1f ns/op\n", (double)ns / (2.0 * N));
    return 0;
}

int main(void)
{
    struct goc_config cfg = { .max_procs = 1 };
    if (goc_init(&cfg) != 0)
        return 1;
    return goc_run(bench, NULL);
}
