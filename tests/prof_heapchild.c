/* SPDX-License-Identifier: MIT */
/*
 * A program for the heap-profile tests (test_prof.c), run with
 * libgoc_heapprof preloaded or linked in: it keeps big blocks from one
 * known function live, churns small ones, and writes heap profiles into
 * the directory given.
 *
 *   DIR/heap.pb.gz  protobuf, big blocks live
 *   DIR/heap.txt    text form, big blocks live
 *   DIR/heap2.txt   text form, after they were freed
 *
 * Exit status: 0 done, 3 heap profiling unavailable, 4 a write failed.
 */
#include <goc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BIG_N    64
#define BIG_SIZE (256 * 1024)

static void *big[BIG_N];

__attribute__((noinline)) static void prof_big_alloc(void)
{
    for (int i = 0; i < BIG_N; i++) {
        big[i] = malloc(BIG_SIZE);
        memset(big[i], i, 64);
    }
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void prof_small_churn(void)
{
    for (int i = 0; i < 20000; i++) {
        char *p = malloc(64);
        p[0] = (char)i;
        free(p);
    }
}

static int save(const char *dir, const char *name, int debug)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int r = goc_prof_write_heap_file(path, debug);
    if (r < 0)
        fprintf(stderr, "heap profile %s: %s\n", path, goc_strerror(r));
    return r < 0;
}

static int child_main(void *arg)
{
    const char *dir = arg;
    if (!goc_prof_heap_available())
        return 3;
    if (goc_prof_heap_set_rate(-1) != -EINVAL ||
        goc_prof_heap_set_rate(64 * 1024) != 0 ||
        goc_prof_heap_rate() != 64 * 1024)
        return 5;
    prof_big_alloc();
    prof_small_churn();
    if (save(dir, "heap.pb.gz", 0) || save(dir, "heap.txt", 1))
        return 4;
    for (int i = 0; i < BIG_N; i++)
        free(big[i]);
    return save(dir, "heap2.txt", 1) ? 4 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    return goc_run(child_main, argv[1]);
}
