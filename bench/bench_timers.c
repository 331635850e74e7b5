/* SPDX-License-Identifier: MIT */
/*
 * timers: N goroutines each sleep 10 ms; wall time of the whole batch
 * (ideal: 10 ms plus the spawn time) and the process CPU time it used.
 */
#include <goc.h>

#include <stdio.h>
#include <sys/resource.h>

#define N 100000

static void sleeper(void *arg)
{
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    goc_wg_done(arg);
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

static int run(int64_t *wall, int64_t *cpu)
{
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, N);
    int64_t c0 = cpu_ns(), t0 = goc_now();
    for (int i = 0; i < N; i++)
        if (goc_go(sleeper, &wg) != 0)
            return -1;
    goc_wg_wait(&wg, NULL);
    *wall = goc_now() - t0;
    *cpu = cpu_ns() - c0;
    return *wall >= 10 * GOC_MILLISECOND ? 0 : -1;
}

static int bench(void *arg)
{
    (void)arg;
    int64_t wall, cpu;
    if (run(&wall, &cpu) != 0 || run(&wall, &cpu) != 0)
        return 1;
    printf("timers %.1f ms\n", (double)wall / 1e6);
    printf("timers_cpu %.1f ms\n", (double)cpu / 1e6);
    return 0;
}

int main(void)
{
    return goc_run(bench, NULL);
}
