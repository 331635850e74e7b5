/* SPDX-License-Identifier: MIT */
/* The allocation funnel, with fault injection for tests. */
#include "../internal/alloc.h"

#include <stdatomic.h>
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

void *goc__malloc(size_t size)
{
    return goc__fault_hit() ? NULL : malloc(size);
}

void *goc__calloc(size_t n, size_t size)
{
    return goc__fault_hit() ? NULL : calloc(n, size);
}

void *goc__aligned_alloc(size_t align, size_t size)
{
    void *p = NULL;
    if (goc__fault_hit() || posix_memalign(&p, align, size) != 0)
        return NULL;
    return p;
}

void goc__free(void *p)
{
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
