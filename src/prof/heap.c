/* SPDX-License-Identifier: MIT */
/*
 * The heap profile, written from the samples the goc_heapprof library
 * records. libgoc finds that library at run time, through a weak
 * reference (linked in) or the dynamic symbol table (preloaded), so that
 * linking libgoc never replaces malloc by itself.
 */
#include "stacks.h"

#include <dlfcn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

extern __typeof__(goc_heapprof_iface) goc_heapprof_iface __attribute__((weak));

static const struct goc__heapprof_iface *iface(void)
{
    static const struct goc__heapprof_iface *_Atomic found;
    const struct goc__heapprof_iface *hp = atomic_load(&found);
    if (hp)
        return hp;
    const struct goc__heapprof_iface *(*get)(void) = goc_heapprof_iface;
    if (!get)
        *(void **)&get = dlsym(RTLD_DEFAULT, "goc_heapprof_iface");
    hp = get ? get() : NULL;
    if (hp && (hp->version < 1 || hp->version > 3))
        hp = NULL;
    atomic_store(&found, hp);
    return hp;
}

int goc_prof_heap_available(void)
{
    return iface() != NULL;
}

int goc_prof_heap_set_rate(int64_t bytes)
{
    const struct goc__heapprof_iface *hp = iface();
    if (!hp)
        return -ENOTSUP;
    if (bytes < 0)
        return -EINVAL;
    hp->set_rate(bytes);
    return 0;
}

int64_t goc_prof_heap_rate(void)
{
    const struct goc__heapprof_iface *hp = iface();
    return hp ? hp->get_rate() : -ENOTSUP;
}

/* exp(-x) for x >= 0, without libm: halve x below 0.5, sum the series,
 * square back. Plenty for a scale factor. */
static double exp_neg(double x)
{
    if (x > 700)
        return 0;
    int k = 0;
    while (x > 0.5) {
        x /= 2;
        k++;
    }
    double term = 1, sum = 1;
    for (int i = 1; i < 20; i++) {
        term *= -x / i;
        sum += term;
    }
    while (k-- > 0)
        sum *= sum;
    return sum;
}

/* @v as an int64_t, saturated: converting one out of range is undefined. */
static int64_t saturate(double v)
{
    return v >= 0x1p63 ? INT64_MAX : (int64_t)v; /* v >= 0 here */
}

/* Go's scaleHeapSample: undo the sampling's bias toward big objects. A
 * rate so high that the objects' share of it rounds to 0 scales to the
 * most a count can say. */
static void scale(int64_t count, int64_t size, int64_t rate, int64_t *out)
{
    if (count <= 0 || size <= 0) {
        out[0] = out[1] = 0;
        return;
    }
    double s = 1;
    if (rate > 1)
        s = 1 / (1 - exp_neg((double)size / (double)count / (double)rate));
    out[0] = saturate((double)count * s);
    out[1] = saturate((double)size * s);
}

/* Every record, merged per stack: v = allocs, alloc bytes, in use, bytes
 * in use. */
static int collect(const struct goc__heapprof_iface *hp,
                   struct goc__stacks *set)
{
    int n = hp->records(NULL, 0), got;
    struct goc__heap_record *r = NULL;
    for (;;) {
        free(r);
        r = malloc(((size_t)n + 64) * sizeof(*r));
        if (!r)
            return -ENOMEM;
        got = hp->records(r, n + 64);
        if (got <= n + 64)
            break;
        n = got;
    }
    for (int i = 0; i < got; i++) {
        struct goc__stack *s = goc__stacks_get(set, r[i].pcs, r[i].npc);
        if (!s)
            break;
        s->v[0] += (int64_t)r[i].allocs;
        s->v[1] += (int64_t)r[i].alloc_bytes;
        s->v[2] += (int64_t)(r[i].allocs - r[i].frees);
        s->v[3] += (int64_t)(r[i].alloc_bytes - r[i].free_bytes);
    }
    free(r);
    return set->oom ? -ENOMEM : 0;
}

static int write_proto(int fd,
                       const struct goc__stacks *set,
                       int64_t rate,
                       uint64_t dropped,
                       const char *note)
{
    struct goc__profile *p = goc__profile_new();
    if (!p)
        return -ENOMEM;
    goc__profile_sample_type(p, "alloc_objects", "count");
    goc__profile_sample_type(p, "alloc_space", "bytes");
    goc__profile_sample_type(p, "inuse_objects", "count");
    goc__profile_sample_type(p, "inuse_space", "bytes");
    goc__profile_period(p, "space", "bytes", rate);
    for (size_t i = 0; i < set->n; i++) {
        const struct goc__stack *s = &set->s[i];
        int64_t v[4];
        scale(s->v[0], s->v[1], rate, v);
        scale(s->v[2], s->v[3], rate, v + 2);
        goc__profile_sample(p, s->pcs, s->npc, v, 4, NULL, NULL);
    }
    char text[160];
    snprintf(text, sizeof(text), "goc: %llu sampled allocations dropped%s",
             (unsigned long long)dropped, note);
    goc__profile_comment(p, text);
    int err = goc__profile_write(p, fd);
    goc__profile_free(p);
    return err;
}

static int write_text(int fd,
                      struct goc__stacks *set,
                      int64_t rate,
                      uint64_t dropped,
                      const char *note)
{
    int64_t t[4] = { 0 };
    for (size_t i = 0; i < set->n; i++)
        for (int k = 0; k < 4; k++)
            t[k] += set->s[i].v[k];
    goc__stacks_sort(set);
    struct goc__pb out = { 0 };
    goc__pb_printf(&out, "heap profile: %lld: %lld [%lld: %lld] @ heap/%lld\n",
                   (long long)t[2], (long long)t[3], (long long)t[0],
                   (long long)t[1],
                   (long long)(rate > INT64_MAX / 2 ? INT64_MAX : rate * 2));
    for (size_t i = 0; i < set->n; i++) {
        const int64_t *v = set->s[i].v;
        goc__pb_printf(&out, "%lld: %lld [%lld: %lld]", (long long)v[2],
                       (long long)v[3], (long long)v[0], (long long)v[1]);
        goc__prof_text_stack(&out, set->s[i].pcs, set->s[i].npc);
    }
    goc__pb_printf(&out,
                   "# goc: rate %lld, %llu sampled allocations dropped%s\n",
                   (long long)rate, (unsigned long long)dropped, note);
    goc__prof_text_maps(&out);
    int err = out.oom ? -ENOMEM : goc__prof_write_all(fd, out.buf, out.len);
    goc__pb_free(&out);
    return err;
}

/* How the stack walks were degraded, for the profile's comment. */
static const char *walk_note(const struct goc__heapprof_iface *hp)
{
    int walk = hp->version >= 2 ? hp->walk() : GOC_PROF_WALK_FULL;
    if (walk == GOC_PROF_WALK_PROBED)
        return ", stack walks probed (process_vm_readv forbidden)";
    if (walk == GOC_PROF_WALK_BOUNDED)
        return ", stack walks bounded to thread stacks (process_vm_readv and "
               "rt_sigprocmask forbidden)";
    return "";
}

int goc_prof_write_heap(int fd, int debug)
{
    if (fd < 0 || debug < 0 || debug > 1)
        return -EINVAL;
    const struct goc__heapprof_iface *hp = iface();
    if (!hp)
        return -ENOTSUP;
    struct goc__stacks set = { 0 };
    /* The rate the samples were taken at, not the one now: after
     * sampling stopped (rate 0) they were written unscaled. */
    int64_t rate = hp->version >= 3 ? hp->sample_rate() : hp->get_rate();
    uint64_t dropped = hp->dropped();
    int err = collect(hp, &set);
    if (!err)
        err = debug == 0 ? write_proto(fd, &set, rate, dropped, walk_note(hp))
                         : write_text(fd, &set, rate, dropped, walk_note(hp));
    int n = (int)set.n;
    goc__stacks_free(&set);
    return err < 0 ? err : n;
}

static int write_to(void *unused, int fd, int debug)
{
    (void)unused;
    return goc_prof_write_heap(fd, debug);
}

int goc_prof_write_heap_file(const char *path, int debug)
{
    if (debug < 0 || debug > 1)
        return -EINVAL;
    if (!iface())
        return -ENOTSUP;
    return goc__prof_to_file(path, write_to, NULL, debug);
}
