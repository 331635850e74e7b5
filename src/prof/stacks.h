/* SPDX-License-Identifier: MIT */
/*
 * A set of stacks with counters, shared by the goroutine and heap
 * profiles: identical stacks are merged, the entries can be sorted by
 * their first counter for the text forms.
 */
#ifndef GOC_PROF_STACKS_H
#define GOC_PROF_STACKS_H

#include "prof.h"

#define GOC__STACK_VALUES 4

struct goc__stack {
    int npc;
    void *pcs[GOC_PROF_MAX_FRAMES];
    int64_t v[GOC__STACK_VALUES];
};

struct goc__stacks {
    struct goc__stack *s;
    size_t n, cap;
    struct goc__u64map map; /* hash of the pcs -> index + 1 */
    bool oom;
};

/* The entry for this stack (created with zero counters), or NULL. */
struct goc__stack *goc__stacks_get(struct goc__stacks *set,
                                   void *const *pcs,
                                   int npc);
/* Sort by v[0], largest first. */
void goc__stacks_sort(struct goc__stacks *set);
void goc__stacks_free(struct goc__stacks *set);
/*
 * Write a count profile of @set (counts in v[0]) named @name: debug 0 the
 * pprof protobuf, 1 the legacy text form ("<name> profile: total N",
 * sorted, then the memory map). 0 or a negative error.
 */
int goc__stacks_write(struct goc__stacks *set,
                      const char *name,
                      int64_t total,
                      int fd,
                      int debug);

#endif /* GOC_PROF_STACKS_H */
