/* SPDX-License-Identifier: MIT */
/*
 * The seed's ProfilingExample (section 6.2) in C: a CPU profile around
 * 1000 goroutines of arithmetic, then heap and goroutine profiles, all in
 * pprof format: in the directory given as the argument, where they are
 * kept, or else in a temporary directory removed at the end.
 *
 * Fixed against the original: starting the CPU profile is synchronous,
 * so a bad path is an error the caller sees (D-121) and leaves the
 * profiler usable (D-122); goc_prof_cpu_stop() writes and closes the file
 * before it returns, so nothing is lost when the program ends early
 * (D-123); every write and close error is reported (D-131); the goroutine
 * profile is offered in its text forms too (D-132).
 *
 * This program links libgoc_heapprof, so the heap profile is real; a
 * program without it gets -ENOTSUP from goc_prof_write_heap_file().
 */
#include <goc.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static goc_wg wg = GOC_WG_INIT;
static char *results[1000]; /* kept until the heap profile is written */
static char tmpdir[] = "/tmp/goc-profiling-XXXXXX";
static const char *dir = tmpdir;
static bool keep; /* a directory was given: leave the files there */

/* The CPU-bound work of each goroutine (1,000,000 steps in the seed; 20,000
 * here). */
__attribute__((noinline)) static long crunch(long steps)
{
    long sum = 0;
    for (long j = 0; j < steps; j++) {
        sum += j * j;
        __asm__ volatile("" : "+r"(sum));
    }
    return sum;
}

static void worker(void *arg)
{
    char **slot = arg;
    *slot = malloc(4096); /* something for the heap profile */
    if (*slot)
        (*slot)[0] = (char)crunch(20000);
    goc_wg_done(&wg);
}

static const char *path(const char *name)
{
    static char buf[4][512];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof(buf[0]), "%s/%s", dir, name);
    return p;
}

static void report(const char *what, const char *file, int err)
{
    struct stat st;
    if (err < 0)
        printf("%-22s failed: %s\n", what, goc_strerror(err));
    else if (stat(file, &st) == 0)
        printf("%-22s %s (%lld bytes)\n", what, file, (long long)st.st_size);
    if (!keep)
        unlink(file);
}

static int profiling_example(void *arg)
{
    (void)arg;
    /* D-121/D-122: a bad path fails now, and a later start works. */
    int err = goc_prof_cpu_start("/nonexistent/cpu.prof", 0);
    printf("start with a bad path:  %s\n", goc_strerror(err));
    const char *cpu = path("cpu.prof");
    err = goc_prof_cpu_start(cpu, 0);
    if (err) {
        printf("start failed: %s\n", goc_strerror(err));
        return 1;
    }
    printf("second start:           %s\n",
           goc_strerror(goc_prof_cpu_start(path("again.prof"), 0)));

    goc_wg_add(&wg, 1000);
    for (int i = 0; i < 1000; i++)
        goc_go(worker, &results[i]);
    goc_wg_wait(&wg, NULL);

    const char *heap = path("mem.prof"), *gor = path("goroutine.prof");
    report("heap profile:", heap, goc_prof_write_heap_file(heap, 0));
    report("goroutine profile:", gor, goc_prof_write_goroutine_file(gor, 0));
    for (int i = 0; i < 1000; i++)
        free(results[i]);
    /* D-123: the CPU profile is complete when stop returns. */
    err = goc_prof_cpu_stop();
    struct goc_prof_cpu_stats st;
    goc_prof_cpu_stats(&st);
    report("cpu profile:", cpu, err);
    printf("cpu samples: %lld (dropped %lld) on %d threads\n",
           (long long)st.samples, (long long)st.dropped, st.threads);
    if (keep)
        printf("read them with: go tool pprof -top %s\n", cpu);
    else
        printf("(removed; to keep them: profiling DIR, then "
               "go tool pprof -top DIR/cpu.prof)\n");
    printf("Profiling completed\n");
    return 0;
}

int main(int argc, char **argv)
{
    keep = argc > 1;
    if (keep)
        dir = argv[1];
    else if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    int r = goc_run(profiling_example, NULL);
    if (!keep)
        rmdir(dir);
    return r;
}
