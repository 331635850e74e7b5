/* SPDX-License-Identifier: MIT */
/* The allocation funnel, with fault injection for tests. */
#include "../internal/alloc.h"

#include <malloc.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* Successful allocations left before failures start; -1: never fail. */
static _Atomic int64_t fault_countdown = -1;

void goc__fault_after(int64_t n)
{
    atomic_store(&fault_countdown, n);
}

int goc__fault_hit(void)
{
    int64_t n = atomic_load_explicit(&fault_countdown, memory_order_relaxed);
    while (n >= 0) {
        if (n == 0)
            return 1;
        if (atomic_compare_exchange_weak(&fault_countdown, &n, n - 1))
            return 0;
    }
    return 0;
}

/*
 * goc's own heap in use (GOC_STATS_LIB). Each thread counts in a shard of
 * its own with plain loads and stores (no locked instruction on the
 * allocation path); readers sum the shards. Threads beyond the shards
 * share the last one, with atomics. A thread's shard is never handed to
 * another, even after it exits.
 *
 * The counts only grow: what was allocated and what was freed, apart. A
 * block allocated on one thread and freed on another lands in two shards,
 * and a reader going through the shards one by one could see the free
 * and not the allocation (a negative heap, seen). So a free is published
 * with a release store, and readers read every freed count first, with
 * acquire, then the allocated ones: a free seen brings its allocation.
 */
#define SHARDS 64

struct shard {
    _Atomic int64_t alloc_bytes, allocs;
    _Atomic int64_t freed_bytes, frees;
} __attribute__((aligned(64)));

static struct shard shards[SHARDS + 1];
static _Atomic unsigned shards_taken;
static __thread struct shard *my_shard
    __attribute__((tls_model("initial-exec")));

__attribute__((noinline)) static struct shard *claim_shard(void)
{
    unsigned i =
        atomic_fetch_add_explicit(&shards_taken, 1, memory_order_relaxed);
    return my_shard = &shards[i < SHARDS ? i : SHARDS];
}

static inline void add(_Atomic int64_t *v, int64_t d, memory_order mo)
{
    /* Only this thread writes v: readers need whole values, no RMW. */
    atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + d,
                          mo);
}

static inline struct shard *shard_of_thread(void)
{
    struct shard *s = my_shard;
    return __builtin_expect(!s, 0) ? claim_shard() : s;
}

static inline void *counted(void *p)
{
    if (!p)
        return p;
    int64_t bytes = (int64_t)malloc_usable_size(p);
    struct shard *s = shard_of_thread();
    if (__builtin_expect(s == &shards[SHARDS], 0)) {
        atomic_fetch_add_explicit(&s->alloc_bytes, bytes, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->allocs, 1, memory_order_relaxed);
        return p;
    }
    add(&s->alloc_bytes, bytes, memory_order_relaxed);
    add(&s->allocs, 1, memory_order_relaxed);
    return p;
}

static inline void uncount(void *p)
{
    int64_t bytes = (int64_t)malloc_usable_size(p);
    struct shard *s = shard_of_thread();
    if (__builtin_expect(s == &shards[SHARDS], 0)) {
        atomic_fetch_add_explicit(&s->freed_bytes, bytes, memory_order_release);
        atomic_fetch_add_explicit(&s->frees, 1, memory_order_release);
        return;
    }
    add(&s->freed_bytes, bytes, memory_order_release);
    add(&s->frees, 1, memory_order_release);
}

void goc__heap_disown(void *p)
{
    if (p)
        uncount(p);
}

void goc__heap_counts(int64_t *bytes, int64_t *objects, int64_t *allocs)
{
    int64_t fb = 0, fo = 0, ab = 0, ao = 0;
    for (int i = 0; i <= SHARDS; i++) {
        fb +=
            atomic_load_explicit(&shards[i].freed_bytes, memory_order_acquire);
        fo += atomic_load_explicit(&shards[i].frees, memory_order_acquire);
    }
    for (int i = 0; i <= SHARDS; i++) {
        ab +=
            atomic_load_explicit(&shards[i].alloc_bytes, memory_order_relaxed);
        ao += atomic_load_explicit(&shards[i].allocs, memory_order_relaxed);
    }
    *bytes = ab - fb;
    *objects = ao - fo;
    *allocs = ao;
}

void *goc__malloc(size_t size)
{
    return goc__fault_hit() ? NULL : counted(malloc(size));
}

void *goc__calloc(size_t n, size_t size)
{
    return goc__fault_hit() ? NULL : counted(calloc(n, size));
}

void *goc__aligned_alloc(size_t align, size_t size)
{
    void *p = NULL;
    if (goc__fault_hit() || posix_memalign(&p, align, size) != 0)
        return NULL;
    return counted(p);
}

void goc__free(void *p)
{
    if (p)
        uncount(p);
    free(p);
}

char *goc__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = goc__malloc(n);
    if (d)
        memcpy(d, s, n);
    return d;
}

void *goc__mmap(size_t size)
{
    if (goc__fault_hit())
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}
