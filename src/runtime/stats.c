/* SPDX-License-Identifier: MIT */
/*
 * Runtime statistics: the scheduler's per-P counters summed on read, plus
 * the process's memory from /proc and malloc. Nothing here takes a
 * scheduler lock, so reading statistics never slows the goroutines down.
 */
#include "runtime.h"
#include "../internal/alloc.h"
#include "goc/stats.h"
#include "goc/time.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static void read_p(struct goc__p *p, struct goc_stats *st)
{
    st->runq_local +=
        goc__runq_len(p) +
        (atomic_load_explicit(&p->runnext, memory_order_relaxed) != NULL);
    st->steals_total += LOAD(p->nsteal);
    st->parks_total += LOAD(p->npark);
    st->switches_total += LOAD(p->nrun);
    st->timers += LOAD(p->wheel.count);
}

static void read_sched(struct goc_stats *st)
{
    struct goc__sched *s = &goc__sched;
    st->goroutines = goc__count_goroutines(&st->goroutines_total);
    for (int i = 0; i < s->nprocs; i++)
        read_p(&s->allp[i], st);
    st->procs = s->nprocs;
    st->procs_idle = LOAD(s->npidle);
    st->threads = LOAD(s->nm);
    st->threads_spinning = LOAD(s->nmspinning);
    st->runq_global = LOAD(s->gq_len);
    st->io_waiters = goc__pollwait_count();
    st->blocking_threads = LOAD(s->nblocking_threads);
    st->blocking_jobs = LOAD(s->nblocking_jobs);
    st->blocking_sections = LOAD(s->nsections);
    st->blocking_abandoned_total = goc_blocking_abandoned();
    st->stacks = goc__stack_mapped_count();
}

/* "Key:   123 kB" lines of /proc/self/status, in bytes (or a count). */
static uint64_t status_field(const char *text, const char *key, uint64_t unit)
{
    const char *at = strstr(text, key);
    if (!at)
        return 0;
    return strtoull(at + strlen(key), NULL, 10) * unit;
}

static int read_process(struct goc_stats *st)
{
    /* Read with plain system calls: no stdio buffer to allocate. */
    char text[4096];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t len = 0;
    ssize_t n;
    while (len < sizeof(text) - 1 &&
           (n = read(fd, text + len, sizeof(text) - 1 - len)) > 0)
        len += (size_t)n;
    int err = n < 0 ? -errno : 0;
    close(fd);
    text[len] = '\0';
    st->rss_bytes = status_field(text, "\nVmRSS:", 1024);
    st->rss_peak_bytes = status_field(text, "\nVmHWM:", 1024);
    st->os_threads = (int)status_field(text, "\nThreads:", 1);
    return err;
}

static void read_heap(struct goc_stats *st)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
    struct mallinfo2 mi = mallinfo2();
    st->heap_arena_bytes = mi.arena;
    st->heap_inuse_bytes = mi.uordblks + mi.hblkhd;
    st->heap_free_bytes = mi.fordblks;
    st->heap_mmap_bytes = mi.hblkhd;
#else
    (void)st; /* no allocator statistics on this libc */
#endif
}

int goc_stats_read(struct goc_stats *st, unsigned what)
{
    if (!st || (what & ~(unsigned)GOC_STATS_ALL))
        return -EINVAL;
    if (what == 0)
        what = GOC_STATS_SCHED;
    memset(st, 0, sizeof(*st));
    st->time = goc_now();
    int err = 0;
    if ((what & GOC_STATS_SCHED) && goc__rt_started())
        read_sched(st);
    if (what & GOC_STATS_STACK_RESIDENT) {
        /* One walk gives both; the reserved figure is SCHED's. */
        uint64_t reserved = goc__stack_reserved(&st->stack_resident_bytes);
        if (what & GOC_STATS_SCHED)
            st->stack_reserved_bytes = reserved;
    } else if (what & GOC_STATS_SCHED) {
        st->stack_reserved_bytes = goc__stack_reserved(NULL);
    }
    if (what & GOC_STATS_PROCESS)
        err = read_process(st);
    if (what & GOC_STATS_HEAP)
        read_heap(st);
    if (what & GOC_STATS_LIB)
        goc__heap_counts(&st->lib_heap_bytes, &st->lib_heap_objects,
                         &st->lib_allocs_total);
    return err;
}

int goc_stats_runq(int64_t *lens, int n)
{
    if (!lens && n > 0)
        return -EINVAL;
    if (!goc__rt_started())
        return 0;
    for (int i = 0; i < goc__sched.nprocs && i < n; i++) {
        struct goc__p *p = &goc__sched.allp[i];
        lens[i] =
            goc__runq_len(p) +
            (atomic_load_explicit(&p->runnext, memory_order_relaxed) != NULL);
    }
    return goc__sched.nprocs;
}
