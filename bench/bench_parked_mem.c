/* SPDX-License-Identifier: MIT */
/*
 * parked_mem: memory per parked goroutine. N goroutines each signal that
 * they started and park on one shared gate; RSS is read before and after.
 * (The gate is a WaitGroup released once, the same broadcast as closing
 * Go's chan struct{}.) parked_mem_sys counts the address space the
 * runtime mapped for them, like Go's MemStats.Sys: here, only the touched
 * stack pages are resident; the rest is reserved.
 */
#include <goc.h>

#include <stdio.h>
#include <unistd.h>

#define N 1000000

static goc_wg started = GOC_WG_INIT, gate = GOC_WG_INIT, done = GOC_WG_INIT;

static void parked(void *arg)
{
    (void)arg;
    goc_wg_done(&started);
    goc_wg_wait(&gate, NULL);
    goc_wg_done(&done);
}

static int64_t rss(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        return -1;
    fclose(f);
    return (int64_t)resident * sysconf(_SC_PAGESIZE);
}

static int bench(void *arg)
{
    (void)arg;
    int64_t before = rss();
    goc_wg_add(&started, N);
    goc_wg_add(&gate, 1);
    goc_wg_add(&done, N);
    for (int i = 0; i < N; i++)
        if (goc_go(parked, NULL) != 0)
            return 1;
    goc_wg_wait(&started, NULL);
    goc_sleep(50 * GOC_MILLISECOND, NULL);
    int64_t after = rss();
    if (goc_num_goroutine() != N + 1)
        return 1;
    printf("parked_mem %.1f bytes\n", (double)(after - before) / N);
    int64_t t0 = goc_now();
    goc_wg_done(&gate);
    goc_wg_wait(&done, NULL);
    fprintf(stderr, "release of %d goroutines: %.1f ms\n", N,
            (double)(goc_now() - t0) / 1e6);
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
