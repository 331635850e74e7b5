/* SPDX-License-Identifier: MIT */
/* Stack sets with counters (stacks.h). */
#include "stacks.h"

#include <stdlib.h>
#include <string.h>

static bool same(const struct goc__stack *s, void *const *pcs, int npc)
{
    return s->npc == npc && memcmp(s->pcs, pcs, npc * sizeof(void *)) == 0;
}

struct goc__stack *goc__stacks_get(struct goc__stacks *set,
                                   void *const *pcs,
                                   int npc)
{
    if (npc > GOC_PROF_MAX_FRAMES)
        npc = GOC_PROF_MAX_FRAMES;
    uint64_t h = goc__hash64(pcs, npc * sizeof(void *)) | 1;
    uint32_t at = goc__u64map_get(&set->map, h);
    if (at && same(&set->s[at - 1], pcs, npc))
        return &set->s[at - 1];
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct goc__stack *s = realloc(set->s, cap * sizeof(*s));
        if (!s) {
            set->oom = true;
            return NULL;
        }
        set->s = s;
        set->cap = cap;
    }
    struct goc__stack *s = &set->s[set->n++];
    memset(s, 0, sizeof(*s));
    s->npc = npc;
    memcpy(s->pcs, pcs, npc * sizeof(void *));
    /* After a hash collision the newer stack stays unindexed: it is then
     * added again each time, and pprof merges the copies. */
    if (!at && !goc__u64map_put(&set->map, h, (uint32_t)set->n))
        set->oom = true;
    return s;
}

static int by_count(const void *a, const void *b)
{
    const struct goc__stack *x = a, *y = b;
    return x->v[0] < y->v[0] ? 1 : x->v[0] > y->v[0] ? -1 : 0;
}

void goc__stacks_sort(struct goc__stacks *set)
{
    if (set->n > 1)
        qsort(set->s, set->n, sizeof(*set->s), by_count);
    /* The index is stale now; sorting is the last step. */
    goc__u64map_free(&set->map);
}

void goc__stacks_free(struct goc__stacks *set)
{
    free(set->s);
    goc__u64map_free(&set->map);
    *set = (struct goc__stacks){ 0 };
}
