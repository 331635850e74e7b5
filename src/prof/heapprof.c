/* SPDX-License-Identifier: MIT */
/*
 * libgoc_heapprof: sampled heap profiling by malloc interposition.
 *
 * A separate library, because replacing malloc is a decision for the
 * program, not for every user of libgoc (ASan, TSan and valgrind replace
 * it too): link libgoc_heapprof.a into the program, link against
 * libgoc_heapprof.so, or LD_PRELOAD it. It defines malloc, free, calloc,
 * realloc, reallocarray, memalign, posix_memalign, aligned_alloc, valloc
 * and pvalloc on top of glibc's __libc_* functions.
 *
 * Sampling is Go's: each thread counts bytes down from an exponentially
 * distributed draw with mean `rate`, so that on average one sample is
 * taken per rate bytes, and a big allocation is more likely sampled than
 * a small one. When profiling is off or the count has not run out, malloc
 * costs a load, a subtraction and a branch more than glibc's; free a load
 * and a branch while no sampled allocation is live, and a hash probe
 * otherwise.
 *
 * A sampled allocation records its stack in a table of stacks and its
 * address in a table of live samples, so that free can account it. Both
 * tables are mapped once at load time and filled lock-free (compare and
 * swap on a slot), so the hooks never allocate and never take a lock:
 * no re-entry into malloc, no deadlock in a child after fork. What does
 * not fit is counted as dropped.
 */
#include "prof.h"
#include "fpwalk.h"

#include <gnu/libc-version.h>
#include <malloc.h> /* memalign, pvalloc */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#define STACK_SLOTS 8192      /* distinct allocation stacks */
#define LIVE_SLOTS  (1 << 17) /* sampled allocations live at once */
#define MAX_PROBE   64
#define TOMBSTONE   ((uintptr_t)1)

extern void *__libc_malloc(size_t n);
extern void __libc_free(void *p);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);
extern void *__libc_memalign(size_t align, size_t n);
extern void *__libc_valloc(size_t n);
extern void *__libc_pvalloc(size_t n);

struct stack_slot {
    _Atomic uint32_t state; /* 0 free, 1 being filled, 2 ready */
    uint32_t npc;
    uint64_t hash;
    void *pcs[GOC__HEAPPROF_FRAMES];
    _Atomic uint64_t allocs, alloc_bytes, frees, free_bytes;
};

struct live_slot {
    _Atomic uintptr_t ptr; /* 0 never used, TOMBSTONE freed */
    uint64_t size;
    uint32_t stack;
};

static struct stack_slot *stacks;
static struct live_slot *live;
static _Atomic int64_t rate;       /* 0: off (and until the tables exist) */
static _Atomic int64_t last_rate;  /* the last rate that was not 0 */
static _Atomic int64_t live_count; /* sampled allocations not yet freed */
static _Atomic uint64_t dropped;
static _Atomic int walk_mode; /* GOC__WALK_*, probed at load */

#define TLS __thread __attribute__((tls_model("initial-exec")))
static TLS int64_t tl_left; /* bytes until this thread's next sample */
static TLS uint64_t tl_rand;
static TLS int tl_busy;
static TLS uintptr_t tl_stack_lo, tl_stack_hi; /* hi 1: not known */

/* ---- sampling --------------------------------------------------------------
 */

/* ln(u) for u in (0, 1], without libm (no allocation, no locale). */
static double ln(double u)
{
    int e = 0;
    while (u < 0.5) {
        u *= 2;
        e--;
    }
    /* ln(u) = 2 atanh((u - 1) / (u + 1)), |z| <= 1/3 here. */
    double z = (u - 1) / (u + 1), z2 = z * z, term = z, sum = 0;
    for (int k = 1; k < 40; k += 2) {
        sum += term / k;
        term *= z2;
    }
    return 2 * sum + e * 0.6931471805599453;
}

static uint64_t next_rand(void)
{
    uint64_t x = tl_rand; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    tl_rand = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Bytes to the next sample: exponential with mean r. */
static int64_t draw(int64_t r)
{
    if (r <= 1)
        return 0;
    double u = (double)((next_rand() >> 11) + 1) * (1.0 / 9007199254740992.0);
    double next = -ln(u) * (double)r;
    return next > 1e15 ? (int64_t)1e15 : (int64_t)next;
}

/* Rate 1 samples at once, as Go's MemProfileRate 1 does: a countdown
 * drawn at an earlier, higher rate would otherwise hide the allocations
 * made until it runs out. */
static inline bool due(size_t n)
{
    int64_t r = atomic_load_explicit(&rate, memory_order_relaxed);
    if (!r)
        return false;
    tl_left -= (int64_t)n;
    return tl_left < 0 || r == 1;
}

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static bool same_stack(const struct stack_slot *s,
                       uint64_t h,
                       void *const *pcs,
                       int npc)
{
    return s->hash == h && s->npc == (uint32_t)npc &&
           memcmp(s->pcs, pcs, (size_t)npc * sizeof(void *)) == 0;
}

/* The slot for this stack, claimed if new; -1 if the table is full. */
static int stack_slot(void *const *pcs, int npc)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < npc; i++)
        h = mix(h ^ (uint64_t)(uintptr_t)pcs[i]);
    for (int k = 0; k < MAX_PROBE; k++) {
        int i = (int)((h + (uint64_t)k) & (STACK_SLOTS - 1));
        struct stack_slot *s = &stacks[i];
        /* Pairs with the release store that made the slot ready. */
        uint32_t st = atomic_load_explicit(&s->state, memory_order_acquire);
        if (st == 2 && same_stack(s, h, pcs, npc))
            return i;
        uint32_t zero = 0;
        if (st == 0 && atomic_compare_exchange_strong(&s->state, &zero, 1)) {
            s->hash = h;
            s->npc = (uint32_t)npc;
            memcpy(s->pcs, pcs, (size_t)npc * sizeof(void *));
            atomic_store_explicit(&s->state, 2, memory_order_release);
            return i;
        }
        /* A slot being filled by another thread is passed over: at worst
         * the same stack gets two slots, which the writer merges. */
    }
    return -1;
}

static size_t live_home(uintptr_t p)
{
    return (size_t)mix(p) & (LIVE_SLOTS - 1);
}

/* A sampled allocation forgotten, to be listed again (see do_realloc). */
struct untracked {
    size_t size;
    int stack; /* -1: p was not listed */
};

/* Account and forget a sampled allocation at p, if p is one; what it was
 * in *u, if u. */
static void untrack(void *p, struct untracked *u)
{
    size_t home = live_home((uintptr_t)p);
    for (int k = 0; k < MAX_PROBE; k++) {
        struct live_slot *l = &live[(home + (size_t)k) & (LIVE_SLOTS - 1)];
        uintptr_t cur = atomic_load_explicit(&l->ptr, memory_order_acquire);
        if (cur == 0)
            return;
        if (cur != (uintptr_t)p)
            continue;
        struct stack_slot *s = &stacks[l->stack];
        if (u)
            *u = (struct untracked){ l->size, (int)l->stack };
        atomic_fetch_add_explicit(&s->frees, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->free_bytes, l->size,
                                  memory_order_relaxed);
        atomic_store_explicit(&l->ptr, TOMBSTONE, memory_order_release);
        atomic_fetch_sub_explicit(&live_count, 1, memory_order_relaxed);
        return;
    }
}

static bool track(void *p, size_t n, int stack)
{
    /* An address freed behind our back (by glibc-internal realloc, say)
     * may still be listed: account it freed first. */
    untrack(p, NULL);
    size_t home = live_home((uintptr_t)p);
    for (int k = 0; k < MAX_PROBE; k++) {
        struct live_slot *l = &live[(home + (size_t)k) & (LIVE_SLOTS - 1)];
        uintptr_t cur = atomic_load_explicit(&l->ptr, memory_order_relaxed);
        if (cur > TOMBSTONE ||
            !atomic_compare_exchange_strong(&l->ptr, &cur, (uintptr_t)p))
            continue;
        /* Written after the claim: size and stack are read only by
         * free(p), which the program orders after malloc returned p. */
        l->size = n;
        l->stack = (uint32_t)stack;
        atomic_fetch_add_explicit(&live_count, 1, memory_order_relaxed);
        return true;
    }
    return false;
}

/* List again what untrack() took out, its free undone (if the table has
 * no room now, it stays counted freed). */
static void retrack(void *p, const struct untracked *u)
{
    if (!track(p, u->size, u->stack))
        return;
    struct stack_slot *s = &stacks[u->stack];
    atomic_fetch_sub_explicit(&s->frees, 1, memory_order_relaxed);
    atomic_fetch_sub_explicit(&s->free_bytes, u->size, memory_order_relaxed);
}

/*
 * The top of the calling thread's own stack if fp lies in it, else 0 (a
 * goroutine's stack, say): the bound of a walk that may not read outside
 * a known stack. Found once per thread, here and not in a signal handler
 * (pthread_getattr_np may allocate: tl_busy keeps that out of sample()).
 */
static uintptr_t thread_stack_hi(uintptr_t fp)
{
    if (!tl_stack_hi) {
        pthread_attr_t a;
        void *addr;
        size_t size;
        tl_stack_hi = 1;
        if (pthread_getattr_np(pthread_self(), &a) == 0) {
            if (pthread_attr_getstack(&a, &addr, &size) == 0) {
                tl_stack_lo = (uintptr_t)addr;
                tl_stack_hi = (uintptr_t)addr + size;
            }
            pthread_attr_destroy(&a);
        }
    }
    return fp >= tl_stack_lo && fp < tl_stack_hi ? tl_stack_hi : 0;
}

/* The slow path: seed the thread, or record the allocation. Never
 * inlined, so that its frame and the hook's are there to skip. */
__attribute__((noinline)) static void sample(void *p, size_t n)
{
    if (tl_busy)
        return;
    tl_busy = 1;
    int64_t r = atomic_load_explicit(&rate, memory_order_relaxed);
    if (tl_rand == 0) {
        /* First sample decision on this thread: start the countdown and
         * count this allocation against it like any later one, so that at
         * rate 1 it is recorded too (and a big one most likely is). */
        tl_rand = mix((uintptr_t)&tl_rand ^ (uint64_t)clock()) | 1;
        tl_left = draw(r) - (int64_t)n;
        if (tl_left >= 0 && r != 1) {
            tl_busy = 0;
            return;
        }
    }
    void *pcs[GOC__HEAPPROF_FRAMES + 1];
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0), hi = 0;
    int mode = atomic_load_explicit(&walk_mode, memory_order_relaxed);
    if (mode == GOC__WALK_BOUNDED)
        hi = thread_stack_hi(fp);
    int npc = goc__fp_walk(pcs, GOC__HEAPPROF_FRAMES + 1, fp, fp, hi, mode);
    /* pcs[0] returns into the hook: the program's frames follow it. */
    int stack = npc > 1 ? stack_slot(pcs + 1, npc - 1) : -1;
    if (stack >= 0 && track(p, n, stack)) {
        struct stack_slot *s = &stacks[stack];
        atomic_fetch_add_explicit(&s->allocs, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&s->alloc_bytes, n, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
    }
    tl_left = draw(r);
    tl_busy = 0;
}

/* ---- the allocator's entry points ------------------------------------------
 *
 * A sample skips exactly one frame, the hook's: so a hook that serves
 * another (realloc(NULL, n) is malloc) inlines its body rather than call
 * it, which would leave the inner hook as the program's leaf frame.
 */

#define INLINE __attribute__((always_inline)) static inline

INLINE void *do_malloc(size_t n)
{
    void *p = __libc_malloc(n);
    if (__builtin_expect(due(n), 0) && p)
        sample(p, n);
    return p;
}

INLINE void *do_memalign(size_t align, size_t n)
{
    void *p = __libc_memalign(align, n);
    if (p && __builtin_expect(due(n), 0))
        sample(p, n);
    return p;
}

GOC_API void *malloc(size_t n)
{
    return do_malloc(n);
}

GOC_API void free(void *p)
{
    if (p && atomic_load_explicit(&live_count, memory_order_relaxed) > 0)
        untrack(p, NULL);
    __libc_free(p);
}

GOC_API void *calloc(size_t n, size_t size)
{
    void *p = __libc_calloc(n, size);
    /* __libc_calloc failed on an overflowing n * size: p is NULL. */
    if (p && __builtin_expect(due(n * size), 0))
        sample(p, n * size);
    return p;
}

INLINE void *do_realloc(void *old, size_t n)
{
    if (!old)
        return do_malloc(n);
    /* Accounted freed before glibc may hand the address to another
     * thread. */
    struct untracked u = { 0, -1 };
    if (atomic_load_explicit(&live_count, memory_order_relaxed) > 0)
        untrack(old, &u);
    void *p = __libc_realloc(old, n);
    if (!p && n && u.stack >= 0)
        retrack(old, &u); /* it failed: the old block lives on */
    if (p && __builtin_expect(due(n), 0))
        sample(p, n);
    return p;
}

GOC_API void *realloc(void *old, size_t n)
{
    return do_realloc(old, n);
}

GOC_API void *reallocarray(void *old, size_t n, size_t size)
{
    size_t bytes;
    if (__builtin_mul_overflow(n, size, &bytes)) {
        errno = ENOMEM;
        return NULL;
    }
    return do_realloc(old, bytes);
}

GOC_API void *memalign(size_t align, size_t n)
{
    return do_memalign(align, n);
}

/* glibc 2.38 made aligned_alloc refuse alignments that are not a power of
 * two (0 included), as C17 asks; before, it was memalign. Set at load. */
static bool strict_aligned_alloc;

GOC_API void *aligned_alloc(size_t align, size_t n)
{
    if (strict_aligned_alloc && (align == 0 || (align & (align - 1)))) {
        errno = EINVAL;
        return NULL;
    }
    return do_memalign(align, n);
}

GOC_API int posix_memalign(void **out, size_t align, size_t n)
{
    /* glibc's test: a power-of-two multiple of sizeof(void *), not 0. */
    if (align == 0 || align % sizeof(void *) ||
        ((align / sizeof(void *)) & (align / sizeof(void *) - 1)))
        return EINVAL;
    int saved = errno;
    void *p = do_memalign(align, n);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

GOC_API void *valloc(size_t n)
{
    void *p = __libc_valloc(n);
    if (p && __builtin_expect(due(n), 0))
        sample(p, n);
    return p;
}

GOC_API void *pvalloc(size_t n)
{
    void *p = __libc_pvalloc(n);
    if (p && __builtin_expect(due(n), 0))
        sample(p, n);
    return p;
}

/* ---- the interface libgoc reads ---------------------------------------------
 */

static int64_t get_rate(void)
{
    return atomic_load(&rate);
}

static void set_rate(int64_t bytes)
{
    if (!stacks || !live || bytes < 0)
        return;
    if (bytes)
        atomic_store(&last_rate, bytes);
    atomic_store(&rate, bytes);
}

static int64_t sample_rate(void)
{
    return atomic_load(&last_rate);
}

static int records(struct goc__heap_record *out, int max)
{
    int n = 0;
    for (int i = 0; stacks && i < STACK_SLOTS; i++) {
        struct stack_slot *s = &stacks[i];
        if (atomic_load_explicit(&s->state, memory_order_acquire) != 2)
            continue;
        if (n < max) {
            struct goc__heap_record *r = &out[n];
            r->allocs = atomic_load(&s->allocs);
            r->alloc_bytes = atomic_load(&s->alloc_bytes);
            r->frees = atomic_load(&s->frees);
            r->free_bytes = atomic_load(&s->free_bytes);
            /* A free may be counted before this read of its allocation:
             * never report more freed than allocated. */
            if (r->frees > r->allocs)
                r->frees = r->allocs;
            if (r->free_bytes > r->alloc_bytes)
                r->free_bytes = r->alloc_bytes;
            r->npc = (int)s->npc;
            memcpy(r->pcs, s->pcs, s->npc * sizeof(void *));
        }
        n++;
    }
    return n;
}

static uint64_t get_dropped(void)
{
    return atomic_load(&dropped);
}

static int get_walk(void)
{
    return atomic_load(&walk_mode);
}

static const struct goc__heapprof_iface the_iface = {
    .version = 3,
    .walk = get_walk,
    .get_rate = get_rate,
    .set_rate = set_rate,
    .sample_rate = sample_rate,
    .records = records,
    .dropped = get_dropped,
};

const struct goc__heapprof_iface *goc_heapprof_iface(void)
{
    return &the_iface;
}

/* Tables first, then the rate: until then no hook samples. */
__attribute__((constructor)) static void heapprof_init(void)
{
    /* "2.36": a static string, no allocation. */
    const char *ver = gnu_get_libc_version();
    char *dot;
    long major = strtol(ver, &dot, 10);
    long minor = *dot == '.' ? strtol(dot + 1, NULL, 10) : 0;
    strict_aligned_alloc = major > 2 || (major == 2 && minor >= 38);
    void *s = mmap(NULL, sizeof(struct stack_slot) * STACK_SLOTS,
                   PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    void *l = mmap(NULL, sizeof(struct live_slot) * LIVE_SLOTS,
                   PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (s == MAP_FAILED || l == MAP_FAILED)
        return; /* heap profiling stays off; malloc still works */
    stacks = s;
    live = l;
    atomic_store(&walk_mode, goc__fp_probe());
    int64_t r = GOC_PROF_DEFAULT_HEAP_RATE;
    const char *env = getenv("GOC_HEAPPROF_RATE");
    if (env && *env) {
        char *end;
        long long v = strtoll(env, &end, 10);
        if (*end == '\0' && v >= 0)
            r = v;
    }
    atomic_store(&last_rate, r);
    atomic_store(&rate, r);
}
