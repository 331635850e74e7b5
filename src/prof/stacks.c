/* SPDX-License-Identifier: MIT */
/* Stack sets with counters (stacks.h). */
#include "stacks.h"

#include <errno.h>
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

static int write_proto(int fd, const struct goc__stacks *set, const char *name)
{
    struct goc__profile *p = goc__profile_new();
    if (!p)
        return -ENOMEM;
    goc__profile_sample_type(p, name, "count");
    goc__profile_period(p, name, "count", 1);
    for (size_t i = 0; i < set->n; i++)
        goc__profile_sample(p, set->s[i].pcs, set->s[i].npc, set->s[i].v, 1,
                            NULL, NULL);
    int err = goc__profile_write(p, fd);
    goc__profile_free(p);
    return err;
}

static int write_text(int fd,
                      struct goc__stacks *set,
                      const char *name,
                      int64_t total)
{
    struct goc__pb out = { 0 };
    goc__stacks_sort(set);
    goc__pb_printf(&out, "%s profile: total %lld\n", name, (long long)total);
    for (size_t i = 0; i < set->n; i++) {
        goc__pb_printf(&out, "%lld", (long long)set->s[i].v[0]);
        goc__prof_text_stack(&out, set->s[i].pcs, set->s[i].npc);
    }
    goc__prof_text_maps(&out);
    int err = out.oom ? -ENOMEM : goc__prof_write_all(fd, out.buf, out.len);
    goc__pb_free(&out);
    return err;
}

int goc__stacks_write(
    struct goc__stacks *set, const char *name, int64_t total, int fd, int debug)
{
    return debug == 0 ? write_proto(fd, set, name)
                      : write_text(fd, set, name, total);
}
