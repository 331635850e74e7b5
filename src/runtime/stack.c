/* SPDX-License-Identifier: MIT */
/*
 * Goroutine stacks.
 *
 * A stack is a fixed virtual reservation (a power of two from 16 KiB)
 * carved from a slab of many stacks mapped at once with MAP_NORESERVE, so
 * only touched pages cost memory. The goroutine's G lives at the top of its
 * stack and stays with it: a parked goroutine with a shallow stack costs one
 * page. Exited goroutines go to a per-P cache (LIFO, so their pages are
 * still hot) and from there in batches to a global pool per size class;
 * nothing on that path enters the kernel. sysmon drops the pages of stacks
 * that sat in the global pool for a while, but never the G's page, and no
 * slab is ever unmapped: the scheduler reads the G of a goroutine another
 * thread may have recycled meanwhile (prefetch_following in sched.c). It
 * takes one idle batch out of the pool at a time to trim it, so spawns
 * meanwhile find the rest there instead of carving new stacks, which
 * would stay mapped for ever.
 *
 * Under every stack is a guard page: MADV_GUARD_INSTALL where the kernel
 * has it (no extra mapping), else mprotect while the process stays well
 * under vm.max_map_count (each such guard splits the mapping), else a
 * canary word checked at every switch.
 */
#include "runtime.h"
#include "san.h"
#include "../internal/alloc.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define CACHE_MAX   GOC__GFREE_MAX
#define BATCH       32 /* Gs moved to/from the global pool at once */
#define SLAB_BYTES  (32u << 20)
#define SLAB_MAX    256
#define CANARY_SEED 0x9e3779b97f4a7c15ULL
#define MAP_MARGIN  4096 /* mappings left for malloc, threads, the user */

/*
 * A batch of free Gs in the global pool. It is stored in the top page of
 * its first G's own stack, just below that G, so moving 32 stacks to or
 * from the pool touches one cold page, not 32.
 */
struct batch {
    struct batch *next, *prev; /* prev: in the untrimmed list only */
    int n;
    int64_t freed_at;
    struct goc__g *g[BATCH];
};

/*
 * The global free pool of a size class. Batches not yet trimmed are kept
 * newest first, so spawns take the hottest and the trimmer the idlest (at
 * the tail); trimmed ones wait apart, taken only when no other is left,
 * and the trimmer never looks at them again.
 */
struct pool {
    goc__lock lock;
    struct batch *head, *tail; /* untrimmed, newest first */
    struct batch *trimmed;
    int64_t nfree;
    char *slab; /* slab being carved */
    size_t slab_next, slab_count;
    struct slab *slab_rec;
};

static struct pool pools[GOC__STACK_CLASSES];

/* Every slab ever mapped, newest first, so dumps can find every G. */
struct slab {
    struct slab *next;
    char *base;
    size_t size;           /* of each stack */
    size_t count;          /* stacks the slab holds */
    _Atomic size_t carved; /* stacks set up so far */
};
static struct slab *_Atomic slabs;
static size_t page_size;
static int guard_mode;
static _Atomic int64_t mprotect_budget;
static _Atomic int64_t mapped_stacks;

#if !defined(GOC_ASAN) && !defined(GOC_TSAN) && !defined(GOC_VALGRIND)
/*
 * True if the kernel refuses to read the page: a write() from it into a
 * pipe fails with EFAULT. Emulators such as qemu-user accept the madvise
 * call without installing anything, so success alone proves nothing.
 */
static bool page_is_guarded(const char *page)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return false;
    bool guarded = write(fds[1], page, 1) < 0 && errno == EFAULT;
    close(fds[0]);
    close(fds[1]);
    return guarded;
}
#endif

static void probe_guard_mode(void)
{
    char *p = mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    guard_mode = GOC__GUARD_MPROTECT;
#if !defined(GOC_ASAN) && !defined(GOC_TSAN) && !defined(GOC_VALGRIND)
    /* The sanitizers and valgrind do not know guard markers in PTEs. */
    if (p != MAP_FAILED && madvise(p, page_size, MADV_GUARD_INSTALL) == 0 &&
        page_is_guarded(p))
        guard_mode = GOC__GUARD_MADVISE;
#endif
    if (p != MAP_FAILED)
        munmap(p, 2 * page_size);
}

/* Every mprotect guard adds a mapping; keep a margin under the limit. */
static void compute_mprotect_budget(void)
{
    long max = 65530, used = 0;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 65530;
        fclose(f);
    }
    f = fopen("/proc/self/maps", "r");
    if (f) {
        int c;
        while ((c = fgetc(f)) != EOF)
            used += c == '\n';
        fclose(f);
    }
    long budget = (max - used - MAP_MARGIN) / 2;
    atomic_store(&mprotect_budget, budget > 0 ? budget : 0);
}

int goc__stack_init(void)
{
    page_size = (size_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < GOC__STACK_CLASSES; i++)
        pools[i].lock = (goc__lock)GOC__LOCK_INIT;
    probe_guard_mode();
    compute_mprotect_budget();
    return 0;
}

int goc__stack_class(size_t size)
{
    if (size < GOC_STACK_MIN || size > GOC_STACK_MAX)
        return -1;
    /* A stack is its guard page, usable pages and its G on top: with big
     * pages (16 or 64 KiB on some arm64 kernels) the smallest classes
     * would not hold them, so a class spans at least four pages. */
    size_t floor = 4 * (page_size ? page_size : 4096);
    int cls = 0;
    while (goc__stack_class_size(cls) < size ||
           (goc__stack_class_size(cls) < floor && cls + 1 < GOC__STACK_CLASSES))
        cls++;
    return cls;
}

size_t goc__stack_class_size(int cls)
{
    return (size_t)GOC_STACK_MIN << cls;
}

static uint64_t canary_for(const struct goc__g *g)
{
    return CANARY_SEED ^ (uint64_t)(uintptr_t)g;
}

bool goc__stack_canary_ok(struct goc__g *g)
{
    return *(const uint64_t *)g->stack_lo == canary_for(g);
}

/* How far under a canary-guarded stack a fault still counts as its
 * overflow (its canary being broken). */
#define CANARY_REACH_PAGES 16

bool goc__stack_guard_hit(struct goc__g *g, const void *addr)
{
    uintptr_t a = (uintptr_t)addr, base = (uintptr_t)g->stack_base;
    if (!base)
        return false;
    if (a >= base && a < (uintptr_t)g->stack_lo)
        return true;
    /* No page stops an overflow under a canary-guarded stack: it runs on
     * under it until something faults. */
    return g->guard == GOC__GUARD_CANARY && a < base &&
           base - a <= CANARY_REACH_PAGES * page_size &&
           !goc__stack_canary_ok(g);
}

static int install_guard(char *base)
{
    if (guard_mode == GOC__GUARD_MADVISE &&
        madvise(base, page_size, MADV_GUARD_INSTALL) == 0)
        return GOC__GUARD_MADVISE;
    if (atomic_fetch_sub(&mprotect_budget, 1) > 0 &&
        mprotect(base, page_size, PROT_NONE) == 0)
        return GOC__GUARD_MPROTECT;
    return GOC__GUARD_CANARY;
}

/* The G at the top of the stack at base (slot_init's placement). */
static struct goc__g *g_of_slot(char *base, size_t size)
{
    uintptr_t top = (uintptr_t)(base + size);
    return (struct goc__g *)((top - sizeof(struct goc__g)) & ~(uintptr_t)63);
}

/* Set up a fresh stack slot at base; its G goes at the top. */
static struct goc__g *slot_init(char *base, size_t size, int cls)
{
    struct goc__g *g = g_of_slot(base, size);
    memset(g, 0, sizeof(*g));
    g->stack_base = base;
    g->stack_lo = base + page_size;
    g->stack_size = size;
    g->size_class = (uint8_t)cls;
    g->guard = (uint8_t)install_guard(base);
    if (g->guard == GOC__GUARD_CANARY)
        *(uint64_t *)g->stack_lo = canary_for(g);
#if defined(GOC_VALGRIND)
    g->vg_id = VALGRIND_STACK_REGISTER(g->stack_lo, (char *)g);
#endif
    atomic_fetch_add_explicit(&mapped_stacks, 1, memory_order_relaxed);
    return g;
}

/* Carve one stack from the class's slab, mapping a new slab if needed. */
static struct goc__g *carve(struct pool *pool, int cls)
{
    size_t size = goc__stack_class_size(cls);
    if (pool->slab_next == pool->slab_count) {
        size_t n = SLAB_BYTES / size;
        n = n < 1 ? 1 : n > SLAB_MAX ? SLAB_MAX : n;
        struct slab *rec = goc__malloc(sizeof(*rec));
        char *slab = rec ? goc__mmap(n * size) : NULL;
        if (!slab) {
            goc__free(rec);
            return NULL;
        }
        /* A huge page would make each shallow stack cost 2 MiB. */
        madvise(slab, n * size, MADV_NOHUGEPAGE);
        pool->slab = slab;
        pool->slab_next = 0;
        pool->slab_count = n;
        rec->base = slab;
        rec->size = size;
        rec->count = n;
        atomic_init(&rec->carved, 0);
        rec->next = atomic_load(&slabs);
        while (!atomic_compare_exchange_weak(&slabs, &rec->next, rec))
            ;
        pool->slab_rec = rec;
    }
    char *base = pool->slab + pool->slab_next++ * size;
    struct goc__g *g = slot_init(base, size, cls);
    atomic_store_explicit(&pool->slab_rec->carved, pool->slab_next,
                          memory_order_release);
    return g;
}

void goc__stack_foreach(void (*fn)(struct goc__g *g, void *arg), void *arg)
{
    for (struct slab *s = atomic_load(&slabs); s; s = s->next) {
        size_t n = atomic_load_explicit(&s->carved, memory_order_acquire);
        for (size_t i = 0; i < n; i++)
            fn(g_of_slot(s->base + i * s->size, s->size), arg);
    }
}

/* The batch must stay in the top page, which trimming keeps. */
static_assert(sizeof(struct goc__g) + sizeof(struct batch) + 128 <= 4096,
              "a free batch does not fit in its host's top page");

static struct batch *batch_in(struct goc__g *host)
{
    uintptr_t at = ((uintptr_t)host - sizeof(struct batch)) & ~(uintptr_t)63;
    /* Dead frames lie below the host's last stack pointer: tell the
     * tools that this memory is in use again. */
#if defined(GOC_ASAN)
    __asan_unpoison_memory_region((void *)at, sizeof(struct batch));
#endif
#if defined(GOC_VALGRIND)
    VALGRIND_MAKE_MEM_UNDEFINED((void *)at, sizeof(struct batch));
#endif
    return (struct batch *)at;
}

/* Put b at the head of the untrimmed list. Lock held. */
static void pool_push(struct pool *pool, struct batch *b)
{
    b->prev = NULL;
    b->next = pool->head;
    if (pool->head)
        pool->head->prev = b;
    else
        pool->tail = b;
    pool->head = b;
    pool->nfree += b->n;
}

/* Take b out of the pool: any batch of the untrimmed list, or the first
 * of the trimmed one. Lock held. */
static void pool_unlink(struct pool *pool, struct batch *b)
{
    if (b == pool->trimmed) {
        pool->trimmed = b->next;
    } else {
        struct batch **from = b->prev ? &b->prev->next : &pool->head;
        struct batch **to = b->next ? &b->next->prev : &pool->tail;
        *from = b->next;
        *to = b->prev;
    }
    pool->nfree -= b->n;
}

/* The batch spawns take next: the newest untrimmed one. Lock held. */
static struct batch *pool_first(struct pool *pool)
{
    return pool->head ? pool->head : pool->trimmed;
}

/* Fill p's empty cache with one batch from the pool, or carve a stack. */
static void refill(struct goc__p *p, int cls)
{
    struct pool *pool = &pools[cls];
    goc__lock_acquire(&pool->lock);
    struct batch *b = pool_first(pool);
    if (b) {
        pool_unlink(pool, b);
    } else {
        struct goc__g *g = carve(pool, cls);
        if (g)
            p->gfree[cls].g[p->gfree[cls].n++] = g;
    }
    goc__lock_release(&pool->lock);
    if (b) {
        /* g[0] hosts the batch: copy it out before anyone reuses g[0]. */
        memcpy(p->gfree[cls].g, b->g, (size_t)b->n * sizeof(b->g[0]));
        p->gfree[cls].n = b->n;
    }
}

/* A plain thread has no cache: take one G straight from the pool. */
static struct goc__g *pool_get_one(int cls)
{
    struct pool *pool = &pools[cls];
    struct goc__g *g;
    goc__lock_acquire(&pool->lock);
    struct batch *b = pool_first(pool);
    if (b) {
        if (b->n == 1)
            pool_unlink(pool, b); /* g[0], the host, goes last */
        else
            pool->nfree--;
        g = b->g[--b->n];
    } else {
        g = carve(pool, cls);
    }
    goc__lock_release(&pool->lock);
    return g;
}

static void prepare_reuse(struct goc__g *g)
{
    g->trimmed = 0;
#if defined(GOC_ASAN)
    /* Frames of the previous goroutine left their redzones poisoned. */
    __asan_unpoison_memory_region(g->stack_lo,
                                  (size_t)((char *)g - g->stack_lo));
#endif
}

/* goc__g_get without a cached G at hand: refill the cache and take from
 * it, or go to the pool directly (no P). */
__attribute__((noinline)) static struct goc__g *g_get_slow(struct goc__p *p,
                                                           int cls)
{
    if (p) {
        refill(p, cls);
        return p->gfree[cls].n ? goc__g_get(p, cls) : NULL;
    }
    struct goc__g *g = pool_get_one(cls);
    if (g) {
        prepare_reuse(g);
        g->next = NULL;
    }
    return g;
}

struct goc__g *goc__g_get(struct goc__p *p, int cls)
{
    int n;
    if (!p || (n = p->gfree[cls].n) == 0)
        return g_get_slow(p, cls);
    struct goc__g *g = p->gfree[cls].g[--n];
    p->gfree[cls].n = n;
    /* The next spawn's G is likely cold: start loading it now. */
    if (n)
        __builtin_prefetch(p->gfree[cls].g[n - 1], 1);
    prepare_reuse(g);
    g->next = NULL;
    return g;
}

/* Move the BATCH oldest Gs of a full cache (or g alone) to the pool. */
static void pool_put_batch(int cls, struct goc__g **gs, int n)
{
    struct batch *b = batch_in(gs[0]);
    memcpy(b->g, gs, (size_t)n * sizeof(gs[0]));
    b->n = n;
    b->freed_at = goc__nanotime();
    struct pool *pool = &pools[cls];
    goc__lock_acquire(&pool->lock);
    pool_push(pool, b);
    goc__lock_release(&pool->lock);
}

/* goc__g_put with no P, or with a full cache: to the pool. */
__attribute__((noinline)) static void g_put_slow(struct goc__p *p,
                                                 struct goc__g *g)
{
    int cls = g->size_class;
    if (!p) {
        pool_put_batch(cls, &g, 1);
        return;
    }
    struct goc__g **c = p->gfree[cls].g;
    pool_put_batch(cls, c, BATCH);
    memmove(c, c + BATCH, (CACHE_MAX - BATCH) * sizeof(c[0]));
    c[CACHE_MAX - BATCH] = g;
    p->gfree[cls].n = CACHE_MAX - BATCH + 1;
}

void goc__g_put(struct goc__p *p, struct goc__g *g)
{
    int cls = g->size_class;
    atomic_store_explicit(&g->status, GOC__G_IDLE, memory_order_relaxed);
    int n;
    if (!p || (n = p->gfree[cls].n) == CACHE_MAX) {
        g_put_slow(p, g);
        return;
    }
    p->gfree[cls].g[n] = g;
    p->gfree[cls].n = n + 1;
}

/* Drop the pages below the top page of one idle stack. */
static void trim_one(struct goc__g *g)
{
    uintptr_t top_page = (uintptr_t)g & ~(uintptr_t)(page_size - 1);
    uintptr_t lo = (uintptr_t)g->stack_lo;
    if (g->guard == GOC__GUARD_CANARY)
        lo += page_size; /* keep the canary's page */
    if (top_page > lo)
        madvise((void *)lo, top_page - lo, MADV_DONTNEED);
    g->trimmed = 1;
}

/*
 * Trim the idle batches of one class, oldest first. Each is taken out of
 * the pool alone and trimmed with the lock released, so the pool keeps
 * all the others for spawns meanwhile. False if the deadline came first.
 */
static bool trim_class(struct pool *pool, int64_t idle_since, int64_t deadline)
{
    for (;;) {
        goc__lock_acquire(&pool->lock);
        struct batch *b = pool->tail;
        if (!b || b->freed_at > idle_since) {
            goc__lock_release(&pool->lock);
            return true;
        }
        pool_unlink(pool, b);
        goc__lock_release(&pool->lock);
        for (int i = 0; i < b->n; i++)
            if (!b->g[i]->trimmed)
                trim_one(b->g[i]);
        goc__lock_acquire(&pool->lock);
        b->next = pool->trimmed;
        pool->trimmed = b;
        pool->nfree += b->n;
        goc__lock_release(&pool->lock);
        if (goc__nanotime() >= deadline)
            return false;
    }
}

bool goc__stack_trim(int64_t now, int64_t idle_ns, int64_t budget_ns)
{
    int64_t start = goc__nanotime();
    int64_t deadline =
        budget_ns > INT64_MAX - start ? INT64_MAX : start + budget_ns;
    for (int cls = 0; cls < GOC__STACK_CLASSES; cls++)
        if (!trim_class(&pools[cls], now - idle_ns, deadline))
            return true;
    return false;
}

int64_t goc__stack_mapped_count(void)
{
    return atomic_load(&mapped_stacks);
}

/* Pages of [base, base + len) in RAM, or -1 if mincore() refuses the
 * range. Asked a chunk at a time so the vector stays small. */
static int64_t resident_range(char *base, size_t len)
{
    unsigned char vec[4096];
    int64_t n = 0;
    size_t chunk = sizeof(vec) * page_size;
    for (size_t off = 0; off < len; off += chunk) {
        size_t part = len - off < chunk ? len - off : chunk;
        if (mincore(base + off, part, vec) != 0)
            return -1;
        for (size_t i = 0; i < (part + page_size - 1) / page_size; i++)
            n += vec[i] & 1;
    }
    return n;
}

/* Pages of a slab in RAM. Some systems (qemu-user) refuse mincore() over
 * a range with PROT_NONE guard pages: then each stack is asked above its
 * guard page. */
static uint64_t resident_pages(const struct slab *s)
{
    int64_t n = resident_range(s->base, s->count * s->size);
    if (n >= 0)
        return (uint64_t)n;
    uint64_t pages = 0;
    for (size_t i = 0; i < s->count; i++) {
        n = resident_range(s->base + i * s->size + page_size,
                           s->size - page_size);
        pages += n > 0 ? (uint64_t)n : 0;
    }
    return pages;
}

uint64_t goc__stack_reserved(uint64_t *resident)
{
    uint64_t bytes = 0, pages = 0;
    for (struct slab *s = atomic_load(&slabs); s; s = s->next) {
        bytes += (uint64_t)s->count * s->size;
        if (resident)
            pages += resident_pages(s);
    }
    if (resident)
        *resident = pages * page_size;
    return bytes;
}
