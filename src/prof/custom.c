/* SPDX-License-Identifier: MIT */
/*
 * Custom profiles (runtime/pprof's NewProfile): each holds a set of live
 * keys, every one with the stack of the code that added it, so that a
 * profile of open resources names where each was opened. A profile is a
 * hash of keys to entries under its own lock; the names in use are in a
 * registry list under another.
 */
#include "stacks.h"
#include "../internal/alloc.h"
#include "../internal/lock.h"
#include "../runtime/runtime.h"

#include <errno.h>
#include <string.h>

struct entry {
    struct entry *next; /* in its bucket */
    const void *key;
    int npc;
    void *pcs[];
};

struct goc_prof {
    goc__lock lock;
    struct entry **buckets; /* a power of two of them */
    size_t nbuckets;
    int64_t count;
    struct goc_prof *next; /* in the registry */
    char name[];
};

static goc__lock registry_lock = GOC__LOCK_INIT;
static struct goc_prof *registry;

/* runtime/pprof's own profiles: a custom one may not take their names. */
static const char *const predefined[] = { "goroutine",    "heap",  "allocs",
                                          "threadcreate", "block", "mutex" };

/* Under registry_lock. */
static struct goc_prof *find_locked(const char *name)
{
    for (struct goc_prof *p = registry; p; p = p->next)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static bool name_taken_locked(const char *name)
{
    for (size_t i = 0; i < sizeof(predefined) / sizeof(*predefined); i++)
        if (strcmp(name, predefined[i]) == 0)
            return true;
    return find_locked(name) != NULL;
}

int goc_prof_new(const char *name, goc_prof **out)
{
    if (!name || !*name || !out)
        return -EINVAL;
    size_t len = strlen(name) + 1;
    struct goc_prof *p = goc__calloc(1, sizeof(*p) + len);
    if (!p)
        return -ENOMEM;
    p->nbuckets = 16;
    p->buckets = goc__calloc(p->nbuckets, sizeof(*p->buckets));
    if (!p->buckets) {
        goc__free(p);
        return -ENOMEM;
    }
    p->lock = (goc__lock)GOC__LOCK_INIT;
    memcpy(p->name, name, len);
    goc__lock_acquire(&registry_lock);
    bool taken = name_taken_locked(name);
    if (!taken) {
        p->next = registry;
        registry = p;
    }
    goc__lock_release(&registry_lock);
    if (taken) {
        goc__free(p->buckets);
        goc__free(p);
        return -EINVAL;
    }
    *out = p;
    return 0;
}

goc_prof *goc_prof_lookup(const char *name)
{
    if (!name)
        return NULL;
    goc__lock_acquire(&registry_lock);
    struct goc_prof *p = find_locked(name);
    goc__lock_release(&registry_lock);
    return p;
}

const char *goc_prof_name(goc_prof *p)
{
    return p ? p->name : NULL;
}

void goc_prof_free(goc_prof *p)
{
    if (!p)
        return;
    goc__lock_acquire(&registry_lock);
    for (struct goc_prof **at = &registry; *at; at = &(*at)->next)
        if (*at == p) {
            *at = p->next;
            break;
        }
    goc__lock_release(&registry_lock);
    for (size_t i = 0; i < p->nbuckets; i++)
        for (struct entry *e = p->buckets[i], *next; e; e = next) {
            next = e->next;
            goc__free(e);
        }
    goc__free(p->buckets);
    goc__free(p);
}

static size_t bucket_of(const struct goc_prof *p, const void *key)
{
    uint64_t h = (uint64_t)(uintptr_t)key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 32) & (p->nbuckets - 1);
}

/* Under p->lock: the link that points at key's entry (at NULL if none). */
static struct entry **link_of(struct goc_prof *p, const void *key)
{
    struct entry **at = &p->buckets[bucket_of(p, key)];
    while (*at && (*at)->key != key)
        at = &(*at)->next;
    return at;
}

/* Under p->lock: twice the buckets once there are more keys than them;
 * left as it is if that memory cannot be had (lookups get slower). */
static void grow_locked(struct goc_prof *p)
{
    if ((size_t)p->count < p->nbuckets)
        return;
    size_t n = p->nbuckets * 2;
    struct entry **b = goc__calloc(n, sizeof(*b));
    if (!b)
        return;
    struct entry **old = p->buckets;
    size_t nold = p->nbuckets;
    p->buckets = b;
    p->nbuckets = n;
    for (size_t i = 0; i < nold; i++)
        for (struct entry *e = old[i], *next; e; e = next) {
            next = e->next;
            size_t at = bucket_of(p, e->key);
            e->next = b[at];
            b[at] = e;
        }
    goc__free(old);
}

/* The caller of goc_prof_add() and its callers, @skip of them left out. */
__attribute__((noinline)) static int caller_stack(void **pcs, int skip)
{
    void *all[GOC_PROF_MAX_FRAMES + 2];
    /* Our frame's saved return address is in goc_prof_add; its frame's
     * is in the caller. */
    const void *const *fp = __builtin_frame_address(0);
    uintptr_t lo, hi;
    if (!goc__stack_bounds(fp, &lo, &hi))
        return 0;
    int n = goc__backtrace(all, GOC_PROF_MAX_FRAMES + 2, fp[0], lo, hi);
    int from = skip;
    if (n <= from)
        return 0;
    memcpy(pcs, all + from, (size_t)(n - from) * sizeof(void *));
    return n - from > GOC_PROF_MAX_FRAMES ? GOC_PROF_MAX_FRAMES : n - from;
}

__attribute__((noinline)) int goc_prof_add(goc_prof *p,
                                           const void *key,
                                           int skip)
{
    if (!p || !key || skip < 0)
        return -EINVAL;
    void *pcs[GOC_PROF_MAX_FRAMES + 2];
    int npc = caller_stack(pcs, skip);
    struct entry *e = goc__malloc(sizeof(*e) + (size_t)npc * sizeof(void *));
    if (!e)
        return -ENOMEM;
    e->key = key;
    e->npc = npc;
    memcpy(e->pcs, pcs, (size_t)npc * sizeof(void *));
    goc__lock_acquire(&p->lock);
    struct entry **at = link_of(p, key);
    bool dup = *at != NULL;
    if (!dup) {
        e->next = NULL;
        *at = e;
        p->count++;
        grow_locked(p);
    }
    goc__lock_release(&p->lock);
    if (dup)
        goc__free(e);
    return dup ? -EINVAL : 0;
}

int goc_prof_remove(goc_prof *p, const void *key)
{
    if (!p || !key)
        return -EINVAL;
    goc__lock_acquire(&p->lock);
    struct entry **at = link_of(p, key);
    struct entry *e = *at;
    if (e) {
        *at = e->next;
        p->count--;
    }
    goc__lock_release(&p->lock);
    goc__free(e);
    return e ? 0 : -ENOENT;
}

int64_t goc_prof_count(goc_prof *p)
{
    if (!p)
        return 0;
    goc__lock_acquire(&p->lock);
    int64_t n = p->count;
    goc__lock_release(&p->lock);
    return n;
}

int goc_prof_write(goc_prof *p, int fd, int debug)
{
    if (!p || fd < 0 || debug < 0 || debug > 1)
        return -EINVAL;
    struct goc__stacks set = { 0 };
    goc__lock_acquire(&p->lock);
    int64_t total = p->count;
    for (size_t i = 0; i < p->nbuckets && !set.oom; i++)
        for (struct entry *e = p->buckets[i]; e && !set.oom; e = e->next) {
            struct goc__stack *s = goc__stacks_get(&set, e->pcs, e->npc);
            if (s)
                s->v[0]++;
        }
    goc__lock_release(&p->lock);
    int err =
        set.oom ? -ENOMEM : goc__stacks_write(&set, p->name, total, fd, debug);
    goc__stacks_free(&set);
    return err < 0 ? err : (int)(total > INT32_MAX ? INT32_MAX : total);
}

static int write_to(void *p, int fd, int debug)
{
    return goc_prof_write(p, fd, debug);
}

int goc_prof_write_file(goc_prof *p, const char *path, int debug)
{
    if (!p || debug < 0 || debug > 1)
        return -EINVAL;
    return goc__prof_to_file(path, write_to, p, debug);
}
