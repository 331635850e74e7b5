/* SPDX-License-Identifier: MIT */
/*
 * The seed's MemoryMonitorExample (section 4.2) in C: a monitor samples
 * the process's memory while the program allocates 1 MiB blocks, and a
 * threshold with hysteresis reports when the heap grows past a limit and
 * when it is back under a lower one. Every 20 ms here, not every 10 s,
 * so the tour stays short.
 *
 * Fixed against the original: start does not block (the sampler is the
 * monitor's own goroutine), starting twice does not run two samplers,
 * stopping twice is harmless, and stop waits for the sampler to end; the
 * blocks are really kept (and touched), so the samples show them.
 */
#include <goc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)

static void print_sample(const struct goc_monitor_sample *s, void *arg)
{
    (void)arg;
    if (s->seq % 3 != 1)
        return; /* every third sample is enough to follow */
    const struct goc_stats *st = &s->stats;
    printf("  sample %2llu: heap in use %6.1f MiB, rss %6.1f MiB, "
           "goroutines %lld, threads %d\n",
           (unsigned long long)s->seq, (double)st->heap_inuse_bytes / MIB,
           (double)st->rss_bytes / MIB, (long long)st->goroutines,
           st->os_threads);
}

static void heap_alarm(const struct goc_mon_event *ev, void *arg)
{
    (void)arg;
    if (ev->edge == GOC_MON_ABOVE)
        printf("  ! heap in use %.1f MiB rose above %.0f MiB\n",
               ev->value / MIB, ev->high / MIB);
    else
        printf("  ! heap in use %.1f MiB back below %.0f MiB\n",
               ev->value / MIB, ev->low / MIB);
}

static int example(void *unused)
{
    (void)unused;
    struct goc_monitor_opts opts = {
        .interval = 20 * GOC_MILLISECOND,
        .sources = GOC_STATS_SCHED | GOC_STATS_PROCESS | GOC_STATS_HEAP,
        .history = 64,
        .on_sample = print_sample,
    };
    goc_monitor *mon;
    int err = goc_monitor_new(&opts, &mon);
    if (err) {
        printf("monitor: %s\n", goc_strerror(err));
        return 1;
    }
    struct goc_stats base;
    goc_stats_read(&base, GOC_STATS_HEAP);
    double high = (double)base.heap_inuse_bytes + 24 * MIB;
    double low = (double)base.heap_inuse_bytes + 8 * MIB;
    goc_monitor_on_threshold(mon, GOC_MON_HEAP_INUSE_BYTES, high, low,
                             heap_alarm, NULL);
    goc_monitor_start(mon);
    goc_monitor_start(mon); /* idempotent: still one sampler */

    enum { BLOCKS = 40 };
    static char *blocks[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        blocks[i] = malloc(1 << 20);
        if (blocks[i])
            memset(blocks[i], i, 1 << 20); /* touched: really resident */
        goc_sleep(5 * GOC_MILLISECOND, NULL);
    }
    for (int i = 0; i < BLOCKS; i++) {
        free(blocks[i]);
        blocks[i] = NULL;
    }
    goc_sleep(60 * GOC_MILLISECOND, NULL); /* let it see the drop */

    goc_monitor_stop(mon);
    goc_monitor_stop(mon); /* idempotent too */
    struct goc_monitor_sample hist[64];
    int n = goc_monitor_history(mon, hist, 64);
    double peak = 0;
    for (int i = 0; i < n; i++)
        if ((double)hist[i].stats.heap_inuse_bytes > peak)
            peak = (double)hist[i].stats.heap_inuse_bytes;
    printf("%d samples kept; peak heap in use %.1f MiB; monitor stopped: %s\n",
           n, peak / MIB, goc_monitor_running(mon) ? "no" : "yes");
    goc_monitor_free(mon);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
