/* SPDX-License-Identifier: MIT */
/*
 * baseline_rss: resident memory of a goc program with the runtime started
 * (Ps, timer wheels, the poller, the watchdog thread) and one goroutine
 * run, before any workload: the fixed cost of using goc, in KiB.
 */
#include "bench.h"

#include <unistd.h>

static long rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld %ld", &size, &resident) != 2)
        return -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int noop(void *arg)
{
    (void)arg;
    return 0;
}

int main(void)
{
    BENCH_CHECK(goc_run(noop, NULL) == 0, "goc_run failed");
    long kib = rss_kib();
    BENCH_CHECK(kib > 0, "cannot read /proc/self/statm");
    printf("baseline_rss %ld.0 KiB\n", kib);
    return 0;
}
