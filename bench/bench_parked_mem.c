/* SPDX-License-Identifier: MIT */
/*
 * parked_mem: memory per parked goroutine. N goroutines each signal that
 * they started and park on one shared channel, which is closed to release
 * them; RSS is read before and after. parked_mem_sys counts the address
 * space mapped for them, like Go's MemStats.Sys: goc reserves each stack
 * whole (256 KiB by default), of which only the touched pages are
 * resident.
 */
#include <goc.h>

#include <stdio.h>
#include <unistd.h>

#define N 1000000

static goc_wg started = GOC_WG_INIT, done = GOC_WG_INIT;
static goc_chan *gate;

static void parked(void *arg)
{
    (void)arg;
    goc_wg_done(&started);
    goc_chan_recv(gate, NULL, NULL); /* until closed */
    goc_wg_done(&done);
}

/* statm's field: 0 the address space, 1 the resident set; in bytes. */
static int64_t statm(int field)
{
    long v[2] = { 0, 0 };
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    int n = fscanf(f, "%ld %ld", &v[0], &v[1]);
    fclose(f);
    return n == 2 ? (int64_t)v[field] * sysconf(_SC_PAGESIZE) : -1;
}

static int bench(void *arg)
{
    (void)arg;
    if (goc_chan_new(0, 0, &gate) != 0)
        return 1;
    int64_t rss0 = statm(1), vm0 = statm(0);
    goc_wg_add(&started, N);
    goc_wg_add(&done, N);
    for (int i = 0; i < N; i++)
        if (goc_go(parked, NULL) != 0)
            return 1;
    goc_wg_wait(&started, NULL);
    goc_sleep(50 * GOC_MILLISECOND, NULL);
    int64_t rss1 = statm(1), vm1 = statm(0);
    if (goc_num_goroutine() != N + 1 || rss0 < 0 || rss1 < 0)
        return 1;
    printf("parked_mem %.1f bytes\n", (double)(rss1 - rss0) / N);
    printf("parked_mem_sys %.1f bytes\n", (double)(vm1 - vm0) / N);
    int64_t t0 = goc_now();
    goc_chan_close(gate);
    goc_wg_wait(&done, NULL);
    fprintf(stderr, "release of %d goroutines: %.1f ms\n", N,
            (double)(goc_now() - t0) / 1e6);
    goc_chan_release(gate);
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
