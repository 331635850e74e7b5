/* SPDX-License-Identifier: MIT */
/*
 * A program for the heap-profile tests (test_prof.c), run with
 * libgoc_heapprof preloaded or linked in: it keeps big blocks from one
 * known function live, churns small ones, and writes heap profiles into
 * the directory given.
 *
 *   DIR/heap.pb.gz  protobuf, big blocks live
 *   DIR/heap.txt    text form, big blocks live
 *   DIR/heap0.txt   text form, big blocks live, after sampling stopped
 *   DIR/heap2.txt   text form, after they were freed
 *   DIR/heaphuge.*  both forms again, the rate since set to INT64_MAX
 *
 * With a second argument "frames", it allocates instead once through
 * each entry point at rate 1, from named functions of a fresh thread
 * (its first allocation included, and a block whose realloc fails), then
 * once right after the rate became 1 on a thread whose countdown was
 * drawn at a huge rate, then 64 MiB as the first allocation of another
 * thread at a 512 KiB rate, and writes DIR/frames.txt.
 *
 * Exit status: 0 done, 3 heap profiling unavailable, 4 a write failed.
 */
#include <goc.h>

#include <malloc.h>
#include <pthread.h>
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
    /* Stopped, then written: the samples keep the rate they were taken
     * at. */
    if (goc_prof_heap_set_rate(0) != 0 || save(dir, "heap0.txt", 1) ||
        goc_prof_heap_set_rate(64 * 1024) != 0)
        return 4;
    for (int i = 0; i < BIG_N; i++)
        free(big[i]);
    if (save(dir, "heap2.txt", 1))
        return 4;
    /* The samples taken are scaled by the latest rate, the highest
     * there is: the figures saturate. */
    if (goc_prof_heap_set_rate(INT64_MAX) != 0 ||
        save(dir, "heaphuge.pb.gz", 0) || save(dir, "heaphuge.txt", 1))
        return 4;
    return 0;
}

/* ---- frames mode ----------------------------------------------------------
 */

#define FRAMES_N 9 /* [6]: a second thread's, [8]: a third's */

static void *kept[FRAMES_N];

/* The thread's first allocation. */
__attribute__((noinline)) static void prof_first_alloc(void)
{
    kept[0] = malloc(1000);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void prof_via_posix_memalign(void)
{
    if (posix_memalign(&kept[1], 64, 1001) != 0)
        abort();
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void prof_via_aligned_alloc(void)
{
    kept[2] = aligned_alloc(64, 1024);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void prof_via_memalign(void)
{
    kept[3] = memalign(64, 1003);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void prof_via_realloc_null(void)
{
    kept[4] = realloc(NULL, 1004);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void prof_via_reallocarray(void)
{
    kept[5] = reallocarray(NULL, 1, 1005);
    __asm__ volatile("" ::: "memory");
}

/* A block that a failed realloc leaves in place: still in use. */
__attribute__((noinline)) static void prof_kept_by_failed_realloc(void)
{
    kept[7] = malloc(1006);
    __asm__ volatile("" ::: "memory");
    if (realloc(kept[7], SIZE_MAX / 2) != NULL)
        abort();
}

static void *frames_thread(void *arg)
{
    (void)arg;
    prof_first_alloc();
    prof_via_posix_memalign();
    prof_via_aligned_alloc();
    prof_via_memalign();
    prof_via_realloc_null();
    prof_via_reallocarray();
    prof_kept_by_failed_realloc();
    return NULL;
}

/* Its thread's first allocation, far above the rate. */
__attribute__((noinline)) static void *prof_first_big_alloc(void *arg)
{
    (void)arg;
    kept[6] = malloc(64 << 20);
    __asm__ volatile("" ::: "memory");
    return NULL;
}

/* Allocated right after the rate became 1, on a thread whose countdown
 * was drawn at a huge rate: recorded all the same. */
__attribute__((noinline)) static void prof_after_rate_one(void)
{
    kept[8] = malloc(1008);
    __asm__ volatile("" ::: "memory");
}

static void *rate_one_thread(void *arg)
{
    (void)arg;
    if (goc_prof_heap_set_rate((int64_t)1 << 40) != 0)
        abort();
    void *volatile first = malloc(16); /* the countdown: ~2^40 bytes */
    free(first);
    if (goc_prof_heap_set_rate(1) != 0)
        abort();
    prof_after_rate_one();
    return NULL;
}

/* Run fn on a thread of its own. */
static int on_thread(void *(*fn)(void *))
{
    pthread_t t;
    return pthread_create(&t, NULL, fn, NULL) || pthread_join(t, NULL);
}

static int frames_main(const char *dir)
{
    if (!goc_prof_heap_available())
        return 3;
    if (goc_prof_heap_set_rate(1) != 0)
        return 5;
    if (on_thread(frames_thread) || on_thread(rate_one_thread) ||
        goc_prof_heap_set_rate(512 * 1024) || on_thread(prof_first_big_alloc))
        return 6;
    int err = save(dir, "frames.txt", 1);
    for (int i = 0; i < FRAMES_N; i++)
        free(kept[i]);
    return err ? 4 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[2], "frames") == 0)
        return frames_main(argv[1]);
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR [frames]\n", argv[0]);
        return 2;
    }
    return goc_run(child_main, argv[1]);
}
