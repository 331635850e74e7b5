/* SPDX-License-Identifier: MIT */
/*
 * The allocation funnel. Every heap allocation and every memory mapping of
 * the runtime goes through these calls, so a test can make the Nth one fail
 * (goc__fault_after) and check that the error comes back clean.
 */
#ifndef GOC_INTERNAL_ALLOC_H
#define GOC_INTERNAL_ALLOC_H

#include <stddef.h>
#include <stdint.h>

void *goc__malloc(size_t size);
void *goc__calloc(size_t n, size_t size);
void goc__free(void *p);
/* A copy of s from goc__malloc (NULL if out of memory). */
char *goc__strdup(const char *s);
/* size bytes aligned to align (a power of two); free with goc__free. */
void *goc__aligned_alloc(size_t align, size_t size);

/*
 * The heap goc holds through these calls: bytes (as malloc_usable_size()
 * counts them) and blocks in use, and allocations ever made.
 */
void goc__heap_counts(int64_t *bytes, int64_t *objects, int64_t *allocs);

/* Stop counting @p (from goc__malloc): it is handed to the caller, who
 * releases it with free(). */
void goc__heap_disown(void *p);

/* Anonymous private mapping, MAP_NORESERVE; NULL on failure. */
void *goc__mmap(size_t size);

/*
 * Fault injection: after n more successful allocations or mappings, fail
 * every following one until goc__fault_after(-1) turns it off. Counted
 * across all threads.
 */
void goc__fault_after(int64_t n);

/* Returns 1 when the next allocation must fail (and counts one). */
int goc__fault_hit(void);

#endif /* GOC_INTERNAL_ALLOC_H */
