/* SPDX-License-Identifier: MIT */
/*
 * Tests of the object pool (sync.Pool semantics, bounds, victim trimming,
 * seed defects D-101..D-106) and of the bounded resource pool (every
 * blocking case of acquire, FIFO hand-off, validation, misuse).
 */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

struct obj {
    _Atomic int owned;
    size_t size;
    int resets;
};

static _Atomic int64_t created, destroyed, resets;

static void *new_obj(void *arg)
{
    (void)arg;
    struct obj *o = calloc(1, sizeof *o);
    o->size = 16;
    atomic_fetch_add(&created, 1);
    return o;
}

static void reset_obj(void *obj, void *arg)
{
    (void)arg;
    ((struct obj *)obj)->resets++;
    atomic_fetch_add(&resets, 1);
}

static void destroy_obj(void *obj, void *arg)
{
    (void)arg;
    free(obj);
    atomic_fetch_add(&destroyed, 1);
}

static size_t size_obj(void *obj, void *arg)
{
    (void)arg;
    return ((struct obj *)obj)->size;
}

static void zero_counts(void)
{
    atomic_store(&created, 0);
    atomic_store(&destroyed, 0);
    atomic_store(&resets, 0);
}

TEST(objpool, reset_only_kept_and_bounds)
{
    zero_counts();
    goc_objpool *p;
    struct goc_objpool_opts o = { .new_fn = new_obj,
                                  .reset_fn = reset_obj,
                                  .destroy_fn = destroy_obj,
                                  .size_fn = size_obj,
                                  .max_cached = 2,
                                  .max_retained_size = 1024 };
    struct goc_objpool_opts bad = { .max_retained_size = 1 };
    ASSERT_EQ(goc_objpool_new(&bad, &p), -EINVAL);
    ASSERT_OK(goc_objpool_new(&o, &p));
    ASSERT_EQ(goc_objpool_put(p, NULL), 0); /* ignored (D-103) */
    struct obj *a = goc_objpool_get(p), *b = goc_objpool_get(p),
               *c = goc_objpool_get(p);
    ASSERT_EQ(atomic_load(&created), 3);
    ASSERT_EQ(goc_objpool_put(p, a), 0);
    ASSERT_EQ(goc_objpool_put(p, b), 0);
    ASSERT_EQ(goc_objpool_put(p, c), 1); /* over max_cached: dropped */
    ASSERT_EQ(atomic_load(&resets), 2);  /* only the kept (D-101) */
    ASSERT_EQ(atomic_load(&destroyed), 1);
    /* A grown buffer is not kept (golang/go#23199). */
    struct obj *d = goc_objpool_get(p);
    struct obj *e = goc_objpool_get(p);
    ASSERT(d != NULL && e != NULL);
    ASSERT(d == a || d == b);
    e->size = 4096;
    ASSERT_EQ(goc_objpool_put(p, e), 1);
    ASSERT_EQ(goc_objpool_put(p, d), 0);
    struct goc_objpool_stats st;
    goc_objpool_stats(p, &st);
    ASSERT_EQ(st.gets, 5);
    ASSERT_EQ(st.hits, 2);
    ASSERT_EQ(st.misses, 3);
    ASSERT_EQ(st.puts, 5);
    ASSERT_EQ(st.drops, 2);
    ASSERT_EQ(st.retained, 1);
    goc_objpool_free(p);
    ASSERT_EQ(atomic_load(&created), atomic_load(&destroyed));

    /* No new_fn: a miss gives NULL. */
    ASSERT_OK(goc_objpool_new(NULL, &p));
    ASSERT(goc_objpool_get(p) == NULL);
    goc_objpool_free(p);
}

TEST(objpool, trim_keeps_one_generation)
{
    zero_counts();
    goc_objpool *p;
    struct goc_objpool_opts o = { .new_fn = new_obj,
                                  .destroy_fn = destroy_obj };
    ASSERT_OK(goc_objpool_new(&o, &p));
    void *v[4];
    for (int i = 0; i < 4; i++)
        v[i] = goc_objpool_get(p);
    for (int i = 0; i < 4; i++)
        goc_objpool_put(p, v[i]);
    ASSERT_EQ(goc_objpool_trim(p), 0); /* now the victim generation */
    void *x = goc_objpool_get(p);      /* still served from the victim */
    ASSERT_EQ(atomic_load(&created), 4);
    ASSERT_EQ(goc_objpool_trim(p), 3); /* a second quiet epoch frees */
    struct goc_objpool_stats st;
    goc_objpool_stats(p, &st);
    ASSERT_EQ(st.retained, 0);
    ASSERT_EQ(st.trims, 2);
    goc_objpool_put(p, x);
    goc_objpool_free(p);
    ASSERT_EQ(atomic_load(&created), atomic_load(&destroyed));
}

/* get, put and trim took a NULL pool as a crash; its headers say what
 * each returns now. */
TEST(objpool, null_pool_is_refused)
{
    int x;
    ASSERT(goc_objpool_get(NULL) == NULL);
    ASSERT_EQ(goc_objpool_put(NULL, &x), -EINVAL);
    ASSERT_EQ(goc_objpool_trim(NULL), 0);
}

/* A bound of SIZE_MAX ("any number") was compared as a negative int64
 * and the pool kept nothing: every put destroyed its object. */
TEST(objpool, huge_max_cached_is_no_bound)
{
    zero_counts();
    struct goc_objpool_opts o = { .new_fn = new_obj,
                                  .destroy_fn = destroy_obj,
                                  .max_cached = SIZE_MAX };
    goc_objpool *p;
    ASSERT_OK(goc_objpool_new(&o, &p));
    void *obj = goc_objpool_get(p);
    ASSERT_EQ(goc_objpool_put(p, obj), 0);
    ASSERT_EQ(atomic_load(&destroyed), 0);
    ASSERT(goc_objpool_get(p) == obj);
    ASSERT_EQ(goc_objpool_put(p, obj), 0);
    goc_objpool_free(p);
    ASSERT_EQ(atomic_load(&created), atomic_load(&destroyed));
}

struct getter {
    goc_objpool *p;
    _Atomic bool stop;
};

/* Gets that never find an object (nothing is put back). */
static void *miss_forever(void *arg)
{
    struct getter *g = arg;
    while (!atomic_load(&g->stop))
        destroy_obj(goc_objpool_get(g->p), NULL);
    return NULL;
}

/* Statistics read while gets run showed hits that never happened, and
 * negative hits: a get was counted on entry, its miss on the way out,
 * and hits were their difference. */
TEST(objpool, stats_read_during_gets_show_no_hit_that_did_not_happen)
{
    struct goc_objpool_opts o = { .new_fn = new_obj,
                                  .destroy_fn = destroy_obj };
    goc_objpool *p;
    ASSERT_OK(goc_objpool_new(&o, &p));
    struct getter g = { .p = p };
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, miss_forever, &g));
    int64_t last_gets = 0;
    for (int64_t i = 0; i < test_scale(200000); i++) {
        struct goc_objpool_stats st;
        goc_objpool_stats(p, &st);
        ASSERT_EQ(st.hits, 0);
        ASSERT_EQ(st.gets, st.misses);
        ASSERT_GE(st.gets, last_gets);
        last_gets = st.gets;
    }
    atomic_store(&g.stop, true);
    ASSERT_OK(pthread_join(t, NULL));
    goc_objpool_free(p);
}

TEST(objpool, debug_mode_detects_double_put)
{
    zero_counts();
    goc_objpool *p;
    struct goc_objpool_opts o = { .new_fn = new_obj,
                                  .destroy_fn = destroy_obj,
                                  .debug = true };
    ASSERT_OK(goc_objpool_new(&o, &p));
    int kept = 0, dropped = 0;
    for (int i = 0; i < 200; i++) {
        void *x = goc_objpool_get(p);
        if (goc_objpool_put(p, x) == 0) {
            /* In the pool: a second put is caught (D-102). */
            ASSERT_EQ(goc_objpool_put(p, x), GOC_EMISUSE);
            kept++;
        } else {
            dropped++;
        }
    }
    ASSERT_GT(kept, 0);
    ASSERT_GT(dropped, 0); /* debug mode drops some puts at random */
    goc_objpool_free(p);
    ASSERT_EQ(atomic_load(&created), atomic_load(&destroyed));
}

/* Two threads put the same object at once; reset is slow, so each put
 * spends a while between its check and its push. */
struct racing_put {
    goc_objpool *p;
    void *obj;
    pthread_barrier_t go, done;
    _Atomic int rounds_left, misuse;
};

static void slow_reset(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    int64_t until = goc_now() + 20 * GOC_MICROSECOND;
    while (goc_now() < until) {
    }
}

static void *racing_putter(void *arg)
{
    struct racing_put *r = arg;
    for (;;) {
        pthread_barrier_wait(&r->go);
        if (atomic_load(&r->rounds_left) < 0)
            return NULL;
        if (goc_objpool_put(r->p, r->obj) == GOC_EMISUSE)
            atomic_fetch_add(&r->misuse, 1);
        pthread_barrier_wait(&r->done);
    }
}

TEST(objpool, debug_mode_catches_two_puts_racing)
{
    static int obj;
    struct racing_put r = { .obj = &obj };
    struct goc_objpool_opts o = { .reset_fn = slow_reset, .debug = true };
    ASSERT_OK(goc_objpool_new(&o, &r.p));
    pthread_barrier_init(&r.go, NULL, 3);
    pthread_barrier_init(&r.done, NULL, 3);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, racing_putter, &r));
    int twice = 0;
    for (int round = 0; round < 200; round++) {
        pthread_barrier_wait(&r.go);
        pthread_barrier_wait(&r.done);
        /* Take everything back: the object is in the pool once at most. */
        int found = 0;
        for (void *x; (x = goc_objpool_get(r.p));)
            found += x == &obj;
        twice += found > 1;
    }
    atomic_store(&r.rounds_left, -1);
    pthread_barrier_wait(&r.go);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    ASSERT_EQ(twice, 0);
    ASSERT_GT(atomic_load(&r.misuse), 0);
    pthread_barrier_destroy(&r.go);
    pthread_barrier_destroy(&r.done);
    goc_objpool_free(r.p);
}

struct own_use {
    goc_objpool *p;
    _Atomic int64_t misuse;
};

static void *get_and_put_own(void *arg)
{
    struct own_use *u = arg;
    for (int64_t i = 0; i < test_scale(100000); i++) {
        void *o = goc_objpool_get(u->p);
        if (goc_objpool_put(u->p, o) == GOC_EMISUSE) {
            atomic_fetch_add(&u->misuse, 1);
            destroy_obj(o, NULL); /* refused: still ours */
        }
    }
    return NULL;
}

/* A debug put's claim outlived its push: another thread that then got the
 * object, its only owner now, had its own put refused as a double put
 * (a dropped object's address, reused by new_fn, likewise). */
TEST(objpool, debug_mode_refuses_no_single_put)
{
    zero_counts();
    struct own_use u = { 0 };
    struct goc_objpool_opts o = { .new_fn = new_obj,
                                  .destroy_fn = destroy_obj,
                                  .debug = true };
    ASSERT_OK(goc_objpool_new(&o, &u.p));
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, get_and_put_own, &u));
    for (int i = 0; i < 4; i++)
        test_join(t[i], NULL);
    ASSERT_EQ(atomic_load(&u.misuse), 0);
    goc_objpool_free(u.p);
    ASSERT_EQ(atomic_load(&created), atomic_load(&destroyed));
}

struct churn {
    goc_objpool *p;
    int64_t iters;
    goc_wg wg;
    _Atomic int64_t twice;
};

static void churn(void *arg)
{
    struct churn *c = arg;
    for (int64_t i = 0; i < c->iters; i++) {
        struct obj *x = goc_objpool_get(c->p);
        int zero = 0;
        if (!atomic_compare_exchange_strong(&x->owned, &zero, 1))
            atomic_fetch_add(&c->twice, 1); /* handed out twice */
        if (i % 16 == 0)
            goc_yield();
        if (i % 1000 == 0)
            goc_objpool_trim(c->p);
        atomic_store(&x->owned, 0);
        goc_objpool_put(c->p, x);
    }
    goc_wg_done(&c->wg);
}

static void *churn_thread(void *arg)
{
    churn(arg);
    return NULL;
}

TEST_G(objpool, concurrent_from_all_ps_no_double_handout_no_leak)
{
    zero_counts();
    static struct churn c;
    struct goc_objpool_opts o = { .new_fn = new_obj,
                                  .destroy_fn = destroy_obj,
                                  .max_cached = 64 };
    ASSERT_OK(goc_objpool_new(&o, &c.p));
    c.iters = test_scale(50000);
    int n = 4 * goc_maxprocs();
    goc_wg_add(&c.wg, n + 1);
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, churn_thread, &c));
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(churn, &c));
    goc_wg_wait(&c.wg, NULL);
    ASSERT_OK(test_join(th, NULL));
    ASSERT_EQ(atomic_load(&c.twice), 0);
    struct goc_objpool_stats st;
    goc_objpool_stats(c.p, &st);
    ASSERT_EQ(st.gets, st.hits + st.misses);
    ASSERT_GT(st.hits, st.misses); /* it does reuse */
    ASSERT_LE(st.retained, 64);
    ASSERT_EQ(atomic_load(&created) - atomic_load(&destroyed), st.retained);
    goc_objpool_free(c.p);
    ASSERT_EQ(atomic_load(&created), atomic_load(&destroyed)); /* no leak */
}

/* ---- bounded resource pool ------------------------------------------ */

static _Atomic int64_t rcreated, rdestroyed;
static _Atomic int fail_create;

static int rcreate(void *arg, void **out)
{
    (void)arg;
    if (atomic_load(&fail_create))
        return -EMFILE;
    struct obj *o = calloc(1, sizeof *o);
    o->size = (size_t)atomic_fetch_add(&rcreated, 1);
    *out = o;
    return 0;
}

static bool rvalidate(void *obj, void *arg)
{
    (void)arg;
    return ((struct obj *)obj)->size != 999; /* 999 marks "stale" */
}

static void rdestroy(void *obj, void *arg)
{
    (void)arg;
    free(obj);
    atomic_fetch_add(&rdestroyed, 1);
}

/* Counts of the rpool callbacks start from zero, creates succeed. */
static void reset_counts(void)
{
    atomic_store(&rcreated, 0);
    atomic_store(&rdestroyed, 0);
    atomic_store(&fail_create, 0);
}

static goc_rpool *mkrp(int64_t total, int64_t idle)
{
    reset_counts();
    struct goc_rpool_opts o = { .max_total = total,
                                .max_idle = idle,
                                .create = rcreate,
                                .validate = rvalidate,
                                .destroy = rdestroy };
    goc_rpool *rp;
    ASSERT_OK(goc_rpool_new(&o, &rp));
    return rp;
}

TEST_G(objpool, rpool_bounds_validation_and_misuse)
{
    struct goc_rpool_opts bad = { .max_total = 0, .create = rcreate };
    goc_rpool *rp;
    ASSERT_EQ(goc_rpool_new(&bad, &rp), -EINVAL);
    bad = (struct goc_rpool_opts){ .max_total = 2,
                                   .max_idle = 3,
                                   .create = rcreate };
    ASSERT_EQ(goc_rpool_new(&bad, &rp), -EINVAL);
    bad.max_idle = 1;
    bad.create = NULL;
    ASSERT_EQ(goc_rpool_new(&bad, &rp), -EINVAL);

    rp = mkrp(2, 1);
    void *a, *b, *x;
    ASSERT_OK(goc_rpool_acquire(rp, &a, NULL));
    ASSERT_OK(goc_rpool_acquire(rp, &b, NULL));
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, 20 * GOC_MILLISECOND);
    ASSERT_EQ(goc_rpool_acquire(rp, &x, c), -ETIMEDOUT); /* full */
    goc_ctx_destroy(c);
    ASSERT_OK(goc_rpool_release(rp, a, false)); /* idle */
    ASSERT_OK(goc_rpool_release(rp, b, false)); /* over max_idle */
    ASSERT_EQ(atomic_load(&rdestroyed), 1);
    ASSERT_EQ(goc_rpool_release(rp, a, false), GOC_EMISUSE); /* twice */
    struct obj foreign;
    ASSERT_EQ(goc_rpool_release(rp, &foreign, false), GOC_EMISUSE);
    struct goc_rpool_stats st;
    goc_rpool_stats(rp, &st);
    ASSERT_EQ(st.total, 1);
    ASSERT_EQ(st.idle, 1);
    ASSERT_EQ(st.in_use, 0);
    /* Validation on borrow: a stale idle object is replaced. */
    ((struct obj *)a)->size = 999;
    ASSERT_OK(goc_rpool_acquire(rp, &x, NULL));
    ASSERT(x != a || ((struct obj *)x)->size != 999);
    goc_rpool_stats(rp, &st);
    ASSERT_EQ(st.invalid, 1);
    /* Broken release destroys; a create error comes back clean. */
    ASSERT_OK(goc_rpool_release(rp, x, true));
    atomic_store(&fail_create, 1);
    ASSERT_EQ(goc_rpool_acquire(rp, &x, NULL), -EMFILE);
    goc_rpool_stats(rp, &st);
    ASSERT_EQ(st.total, 0);
    atomic_store(&fail_create, 0);
    goc_rpool_free(rp);
    ASSERT_EQ(atomic_load(&rcreated), atomic_load(&rdestroyed));
}

struct acq {
    goc_rpool *rp;
    goc_ctx *ctx;
    void *obj;
    int rc;
    int id;
    _Atomic int *order;
    _Atomic int *winner; /* winner[k]: 1 + id of the k-th to get one */
    goc_wg *wg;
};

static void acquirer(void *arg)
{
    struct acq *a = arg;
    a->rc = goc_rpool_acquire(a->rp, &a->obj, a->ctx);
    /* Published through winner[] (release), which the test waits on: rc
     * and obj are written before it. */
    if (a->order)
        atomic_store(&a->winner[atomic_fetch_add(a->order, 1)], a->id + 1);
    if (a->wg)
        goc_wg_done(a->wg);
}

static void *acquirer_thread(void *arg)
{
    acquirer(arg);
    return NULL;
}

static void wait_waiters(goc_rpool *rp, int64_t n)
{
    struct goc_rpool_stats st;
    for (;;) {
        goc_rpool_stats(rp, &st);
        if (st.waiters >= n)
            return;
        goc_sleep(200 * GOC_MICROSECOND, NULL);
    }
}

TEST_G(objpool, rpool_acquire_blocking_cases)
{
    goc_rpool *rp = mkrp(1, 1);
    void *held;
    ASSERT_OK(goc_rpool_acquire(rp, &held, NULL));

    /* FIFO hand-off to three waiters. */
    static _Atomic int order, winner[3];
    static struct acq w[3];
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++) {
        w[i] = (struct acq){
            .rp = rp, .id = i, .order = &order, .winner = winner, .wg = &wg
        };
        ASSERT_OK(goc_go(acquirer, &w[i]));
        wait_waiters(rp, i + 1);
    }
    ASSERT_OK(goc_rpool_release(rp, held, false));
    for (int i = 0; i < 3; i++) {
        while (atomic_load(&winner[i]) == 0)
            goc_sleep(200 * GOC_MICROSECOND, NULL);
        ASSERT_EQ(atomic_load(&winner[i]), i + 1);
        ASSERT_OK(w[i].rc);
        ASSERT_OK(goc_rpool_release(rp, w[i].obj, false));
    }
    goc_wg_wait(&wg, NULL);
    ASSERT_OK(goc_rpool_acquire(rp, &held, NULL));

    /* Cancelled while waiting, and cancelled before entry (even though
     * an object is idle by then). */
    goc_ctx_local lc;
    goc_ctx *c = goc_ctx_init_cancel(&lc, NULL);
    test_cancel_after(c, 10 * GOC_MILLISECOND);
    void *x;
    ASSERT_EQ(goc_rpool_acquire(rp, &x, c), -ECANCELED);
    ASSERT_OK(goc_rpool_release(rp, held, false));
    for (int i = 0; i < 10000; i++) /* never a random choice */
        ASSERT_EQ(goc_rpool_acquire(rp, &x, c), -ECANCELED);
    test_cancel_after_join();
    goc_ctx_destroy(c);
    struct goc_rpool_stats st;
    goc_rpool_stats(rp, &st);
    ASSERT_EQ(st.waiters, 0);
    ASSERT_EQ(st.idle, 1); /* nothing leaked */

    /* A plain thread blocks until a release. */
    ASSERT_OK(goc_rpool_acquire(rp, &held, NULL));
    static struct acq pt;
    pt = (struct acq){ .rp = rp };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, acquirer_thread, &pt));
    wait_waiters(rp, 1);
    ASSERT_OK(goc_rpool_release(rp, held, false));
    ASSERT_OK(test_join(th, NULL));
    ASSERT_OK(pt.rc);
    held = pt.obj;

    /* Closed while waiting: GOC_ECLOSED; after close too. */
    static struct acq cw;
    goc_wg_add(&wg, 1);
    cw = (struct acq){ .rp = rp, .wg = &wg };
    ASSERT_OK(goc_go(acquirer, &cw));
    wait_waiters(rp, 1);
    goc_rpool_close(rp);
    goc_rpool_close(rp); /* idempotent */
    goc_wg_wait(&wg, NULL);
    ASSERT_EQ(cw.rc, GOC_ECLOSED);
    ASSERT_EQ(goc_rpool_acquire(rp, &x, NULL), GOC_ECLOSED);
    ASSERT_OK(goc_rpool_release(rp, held, false)); /* destroyed now */
    goc_rpool_free(rp);
    ASSERT_EQ(atomic_load(&rcreated), atomic_load(&rdestroyed));
}

TEST_G(objpool, rpool_idle_timeout_expires_objects)
{
    struct goc_rpool_opts o = { .max_total = 4,
                                .max_idle = 4,
                                .idle_timeout = 20 * GOC_MILLISECOND,
                                .create = rcreate,
                                .destroy = rdestroy };
    atomic_store(&rcreated, 0);
    atomic_store(&rdestroyed, 0);
    goc_rpool *rp;
    ASSERT_OK(goc_rpool_new(&o, &rp));
    void *a, *b;
    ASSERT_OK(goc_rpool_acquire(rp, &a, NULL));
    ASSERT_OK(goc_rpool_release(rp, a, false));
    goc_sleep(40 * GOC_MILLISECOND, NULL);
    ASSERT_OK(goc_rpool_acquire(rp, &b, NULL));
    ASSERT_EQ(atomic_load(&rcreated), 2); /* the idle one had expired */
    ASSERT_EQ(atomic_load(&rdestroyed), 1);
    ASSERT_OK(goc_rpool_release(rp, b, false));
    goc_rpool_free(rp);
    ASSERT_EQ(atomic_load(&rdestroyed), 2);
}

/* More expired idle objects than one expiry batch: none of them is lent.
 * Only 16 went per acquire, and the newest of the rest was lent, 20 ms
 * past its idle timeout. */
TEST_G(objpool, rpool_never_lends_an_expired_object_however_many)
{
    enum { N = 40 };
    struct goc_rpool_opts o = { .max_total = N,
                                .max_idle = N,
                                .idle_timeout = 20 * GOC_MILLISECOND,
                                .create = rcreate,
                                .destroy = rdestroy };
    atomic_store(&rcreated, 0);
    atomic_store(&rdestroyed, 0);
    goc_rpool *rp;
    ASSERT_OK(goc_rpool_new(&o, &rp));
    void *v[N];
    for (int i = 0; i < N; i++)
        ASSERT_OK(goc_rpool_acquire(rp, &v[i], NULL));
    for (int i = 0; i < N; i++)
        ASSERT_OK(goc_rpool_release(rp, v[i], false));
    goc_sleep(40 * GOC_MILLISECOND, NULL);
    ASSERT_OK(goc_rpool_acquire(rp, &v[0], NULL));
    ASSERT_EQ(atomic_load(&rdestroyed), N);
    ASSERT_EQ(atomic_load(&rcreated), N + 1);
    ASSERT_OK(goc_rpool_release(rp, v[0], false));
    goc_rpool_free(rp);
    ASSERT_EQ(atomic_load(&rdestroyed), N + 1);
}

struct rstress {
    goc_rpool *rp;
    int64_t iters;
    _Atomic int holders, max_holders;
    goc_wg wg;
};

static void rworker(void *arg)
{
    struct rstress *s = arg;
    for (int64_t i = 0; i < s->iters; i++) {
        void *x;
        goc_ctx_local lc;
        goc_ctx *c = goc_ctx_init_timeout(&lc, NULL, GOC_MILLISECOND);
        int rc = goc_rpool_acquire(s->rp, &x, i % 3 ? NULL : c);
        goc_ctx_destroy(c);
        if (rc) {
            ASSERT_EQ(rc, -ETIMEDOUT);
            continue;
        }
        int h = atomic_fetch_add(&s->holders, 1) + 1;
        int m = atomic_load(&s->max_holders);
        while (h > m && !atomic_compare_exchange_weak(&s->max_holders, &m, h))
            ;
        if (i % 4 == 0)
            goc_yield();
        atomic_fetch_sub(&s->holders, 1);
        ASSERT_OK(goc_rpool_release(s->rp, x, i % 7 == 0));
    }
    goc_wg_done(&s->wg);
}

static void *rworker_thread(void *arg)
{
    rworker(arg);
    return NULL;
}

TEST_G(objpool, rpool_concurrent_never_exceeds_max_total)
{
    static struct rstress s;
    s.rp = mkrp(3, 2);
    s.iters = test_scale(5000);
    goc_wg_add(&s.wg, 9);
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, rworker_thread, &s));
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_go(rworker, &s));
    goc_wg_wait(&s.wg, NULL);
    ASSERT_OK(test_join(th, NULL));
    ASSERT_LE(atomic_load(&s.max_holders), 3);
    ASSERT_GT(atomic_load(&s.max_holders), 0);
    struct goc_rpool_stats st;
    goc_rpool_stats(s.rp, &st);
    ASSERT_EQ(st.in_use, 0);
    ASSERT_EQ(st.waiters, 0);
    ASSERT_LE(st.total, 3);
    goc_rpool_free(s.rp);
    ASSERT_EQ(atomic_load(&rcreated), atomic_load(&rdestroyed));
}

/* ---- callbacks call back into their pool (never under a lock) ------- */

static goc_objpool *reent_pool;
static goc_rpool *reent_rpool;
static _Atomic int reent_calls;

static void *reent_new(void *arg)
{
    (void)arg;
    struct goc_objpool_stats st;
    goc_objpool_stats(reent_pool, &st); /* takes every cache lock */
    atomic_fetch_add(&reent_calls, 1);
    return malloc(8);
}

static void reent_destroy(void *obj, void *arg)
{
    (void)arg;
    struct goc_objpool_stats st;
    goc_objpool_stats(reent_pool, &st);
    atomic_fetch_add(&reent_calls, 1);
    free(obj);
}

static int reent_create(void *arg, void **out)
{
    (void)arg;
    struct goc_rpool_stats st;
    goc_rpool_stats(reent_rpool, &st); /* takes the pool mutex */
    atomic_fetch_add(&reent_calls, 1);
    *out = malloc(8);
    return *out ? 0 : -ENOMEM;
}

static void reent_rdestroy(void *obj, void *arg)
{
    (void)arg;
    struct goc_rpool_stats st;
    goc_rpool_stats(reent_rpool, &st);
    atomic_fetch_add(&reent_calls, 1);
    free(obj);
}

static bool reent_validate(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    struct goc_rpool_stats st;
    goc_rpool_stats(reent_rpool, &st);
    atomic_fetch_add(&reent_calls, 1);
    return true;
}

TEST_G(objpool, callbacks_may_call_back_into_the_pool)
{
    struct goc_objpool_opts o = { .new_fn = reent_new,
                                  .destroy_fn = reent_destroy,
                                  .max_cached = 1 };
    ASSERT_OK(goc_objpool_new(&o, &reent_pool));
    void *a = goc_objpool_get(reent_pool), *b = goc_objpool_get(reent_pool);
    goc_objpool_put(reent_pool, a);
    goc_objpool_put(reent_pool, b); /* over the bound: destroyed */
    goc_objpool_trim(reent_pool);
    goc_objpool_trim(reent_pool); /* destroys a */
    goc_objpool_free(reent_pool);
    ASSERT_EQ(atomic_load(&reent_calls), 4);

    atomic_store(&reent_calls, 0);
    struct goc_rpool_opts ro = { .max_total = 1,
                                 .max_idle = 1,
                                 .create = reent_create,
                                 .validate = reent_validate,
                                 .destroy = reent_rdestroy };
    ASSERT_OK(goc_rpool_new(&ro, &reent_rpool));
    void *x;
    ASSERT_OK(goc_rpool_acquire(reent_rpool, &x, NULL)); /* create */
    ASSERT_OK(goc_rpool_release(reent_rpool, x, false));
    ASSERT_OK(goc_rpool_acquire(reent_rpool, &x, NULL)); /* validate */
    ASSERT_OK(goc_rpool_release(reent_rpool, x, true));  /* destroy */
    goc_rpool_free(reent_rpool);
    ASSERT_EQ(atomic_load(&reent_calls), 3);
}

/*
 * Objects alive at once, counted from create to the end of destroy, with
 * a destroy that takes a while (closing a connection, say). A place must
 * not count as free before its object is gone: a waiter would create
 * the replacement meanwhile, one more than max_total.
 */
static _Atomic int live_now, live_max;

static int live_create(void *arg, void **out)
{
    (void)arg;
    int v = atomic_fetch_add(&live_now, 1) + 1;
    int m = atomic_load(&live_max);
    while (v > m && !atomic_compare_exchange_weak(&live_max, &m, v))
        ;
    *out = malloc(1);
    return *out ? 0 : -ENOMEM;
}

static void live_destroy(void *obj, void *arg)
{
    (void)arg;
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    atomic_fetch_sub(&live_now, 1);
    free(obj);
}

static void *live_waiter(void *arg)
{
    void *o;
    ASSERT_OK(goc_rpool_acquire(arg, &o, NULL));
    ASSERT_OK(goc_rpool_release(arg, o, false));
    return NULL;
}

TEST_G(objpool, rpool_place_frees_only_after_destroy)
{
    atomic_store(&live_now, 0);
    atomic_store(&live_max, 0);
    /* A broken object is released while another caller waits. */
    struct goc_rpool_opts o = { .max_total = 1,
                                .max_idle = 1,
                                .create = live_create,
                                .destroy = live_destroy };
    goc_rpool *rp;
    ASSERT_OK(goc_rpool_new(&o, &rp));
    void *x;
    ASSERT_OK(goc_rpool_acquire(rp, &x, NULL));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, live_waiter, rp));
    struct goc_rpool_stats st;
    int64_t t0 = goc_now();
    do { /* until it waits */
        goc_sleep(GOC_MILLISECOND, NULL);
        goc_rpool_stats(rp, &st);
    } while (st.waiters == 0 && goc_now() - t0 < 10 * GOC_SECOND);
    ASSERT_EQ(st.waiters, 1);
    ASSERT_OK(goc_rpool_release(rp, x, true));
    ASSERT_OK(test_join(t, NULL));
    goc_rpool_free(rp);
    ASSERT_EQ(atomic_load(&live_max), 1); /* max_total */
    ASSERT_EQ(atomic_load(&live_now), 0);
}

/* A create that waits at a gate, and counts what exists. */
struct gated_create {
    goc_chan *gate;
    _Atomic int made, destroyed, entered;
};

static int gated_make(void *arg, void **out)
{
    struct gated_create *g = arg;
    atomic_fetch_add(&g->entered, 1);
    goc_chan_recv(g->gate, NULL, NULL);
    atomic_fetch_add(&g->made, 1);
    *out = malloc(8);
    return *out ? 0 : -ENOMEM;
}

static void gated_destroy(void *obj, void *arg)
{
    struct gated_create *g = arg;
    atomic_fetch_add(&g->destroyed, 1);
    free(obj);
}

struct closing_acq {
    goc_rpool *rp;
    void *obj;
    int rc;
    goc_wg wg;
};

static void closing_acquirer(void *arg)
{
    struct closing_acq *a = arg;
    a->rc = goc_rpool_acquire(a->rp, &a->obj, NULL);
    goc_wg_done(&a->wg);
}

/* A pool closed while an acquire is making an object lends it to nobody:
 * the object is destroyed and the acquire fails as after the close. */
TEST_G(objpool, rpool_object_made_during_close_is_not_lent)
{
    struct gated_create g = { 0 };
    ASSERT_OK(goc_chan_new(0, 0, &g.gate));
    struct goc_rpool_opts o = { .max_total = 2,
                                .max_idle = 2,
                                .create = gated_make,
                                .destroy = gated_destroy,
                                .arg = &g };
    struct closing_acq a = { .wg = GOC_WG_INIT };
    ASSERT_OK(goc_rpool_new(&o, &a.rp));
    goc_wg_add(&a.wg, 1);
    ASSERT_OK(goc_go(closing_acquirer, &a));
    while (atomic_load(&g.entered) == 0)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    goc_rpool_close(a.rp);
    goc_chan_close(g.gate);
    goc_wg_wait(&a.wg, NULL);
    ASSERT_EQ(a.rc, GOC_ECLOSED);
    ASSERT_EQ(atomic_load(&g.made), 1);
    ASSERT_EQ(atomic_load(&g.destroyed), 1);
    struct goc_rpool_stats st;
    goc_rpool_stats(a.rp, &st);
    ASSERT_EQ(st.total, 0);
    ASSERT_EQ(st.in_use, 0);
    ASSERT_EQ(st.created, st.destroyed);
    goc_rpool_free(a.rp);
    goc_chan_release(g.gate);
}

struct rp_free {
    goc_rpool *rp;
    _Atomic int closed_rc, freed;
    goc_wg calls;
};

static void rp_free_waiter(void *arg)
{
    struct rp_free *f = arg;
    void *obj;
    if (goc_rpool_acquire(f->rp, &obj, NULL) == GOC_ECLOSED)
        atomic_fetch_add(&f->closed_rc, 1);
    goc_wg_done(&f->calls);
}

static void rp_freer(void *arg)
{
    struct rp_free *f = arg;
    goc_rpool_free(f->rp);
    atomic_store(&f->freed, 1);
    goc_wg_done(&f->calls);
}

/*
 * goc_rpool_free() with acquires blocked and an object on loan: it freed
 * the pool at once, and the woken acquires, then the release, wrote to
 * freed memory (ASan). It now waits for both.
 */
TEST_G(objpool, rpool_free_waits_for_woken_acquires_and_loans)
{
    int rounds = (int)test_scale(50);
    for (int i = 0; i < rounds; i++) {
        struct rp_free f = { .rp = mkrp(1, 1), .calls = GOC_WG_INIT };
        void *lent;
        ASSERT_OK(goc_rpool_acquire(f.rp, &lent, NULL));
        goc_wg_add(&f.calls, 3);
        ASSERT_OK(goc_go(rp_free_waiter, &f));
        ASSERT_OK(goc_go(rp_free_waiter, &f));
        struct goc_rpool_stats st = { 0 };
        WAIT_UNTIL((goc_rpool_stats(f.rp, &st), st.waiters >= 2));
        ASSERT_OK(goc_go(rp_freer, &f));
        WAIT_UNTIL(atomic_load(&f.closed_rc) >= 2); /* the close woke them */
        goc_sleep((i % 3) * 100 * GOC_MICROSECOND, NULL);
        ASSERT_EQ(atomic_load(&f.freed), 0); /* the loan keeps it */
        ASSERT_OK(goc_rpool_release(f.rp, lent, false));
        goc_wg_wait(&f.calls, NULL);
        ASSERT_EQ(atomic_load(&f.freed), 1);
        ASSERT_EQ(atomic_load(&rdestroyed), 1); /* released after close */
    }
}

static _Atomic int create_panics;

static int maybe_panicking_create(void *arg, void **out)
{
    if (atomic_load(&create_panics))
        goc_panic(-EIO, "create failed loudly");
    return rcreate(arg, out);
}

static int acquire_one(void *arg)
{
    void *obj;
    return goc_rpool_acquire(arg, &obj, NULL);
}

static _Atomic int rp_freed_by_thread;

static void *rp_free_thread(void *arg)
{
    goc_rpool_free(arg);
    atomic_store(&rp_freed_by_thread, 1);
    return NULL;
}

/* Free @rp from a plain thread; it must not hang. */
static void free_on_a_thread(goc_rpool *rp)
{
    atomic_store(&rp_freed_by_thread, 0);
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, rp_free_thread, rp));
    WAIT_UNTIL(atomic_load(&rp_freed_by_thread));
    ASSERT_OK(test_join(th, NULL));
}

/*
 * A create that panics (recovered by the caller): its acquire stayed
 * counted as under way, and the free waited for it forever; the place it
 * had reserved was lost as well.
 */
TEST_G(objpool, rpool_a_panicking_create_leaves_nothing_behind)
{
    reset_counts();
    atomic_store(&create_panics, 1);
    struct goc_rpool_opts o = { .max_total = 1,
                                .max_idle = 1,
                                .create = maybe_panicking_create,
                                .destroy = rdestroy };
    goc_rpool *rp;
    ASSERT_OK(goc_rpool_new(&o, &rp));
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(acquire_one, rp, &p), GOC_EPANIC);
    ASSERT(strstr(goc_panic_info_message(p), "create failed loudly"));
    goc_panic_info_free(p);
    /* Its place came back: the one object there may be can be made. */
    atomic_store(&create_panics, 0);
    void *obj;
    ASSERT_OK(goc_rpool_acquire(rp, &obj, NULL));
    ASSERT_OK(goc_rpool_release(rp, obj, false));
    free_on_a_thread(rp);
    ASSERT_EQ(atomic_load(&rdestroyed), 1);
}

static _Atomic int validate_panics;

static bool maybe_panicking_validate(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    if (atomic_load(&validate_panics))
        goc_panic(-EIO, "validate failed loudly");
    return true;
}

/* A validate that panics: the idle object it was checking stayed on loan
 * for good, and the free waited for it forever. It is now given up as
 * stale. */
TEST_G(objpool, rpool_a_panicking_validate_gives_the_object_up)
{
    reset_counts();
    atomic_store(&validate_panics, 0);
    struct goc_rpool_opts o = { .max_total = 1,
                                .max_idle = 1,
                                .create = rcreate,
                                .validate = maybe_panicking_validate,
                                .destroy = rdestroy };
    goc_rpool *rp;
    ASSERT_OK(goc_rpool_new(&o, &rp));
    void *obj;
    ASSERT_OK(goc_rpool_acquire(rp, &obj, NULL));
    ASSERT_OK(goc_rpool_release(rp, obj, false)); /* idle now */
    atomic_store(&validate_panics, 1);
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(acquire_one, rp, &p), GOC_EPANIC);
    goc_panic_info_free(p);
    ASSERT_EQ(atomic_load(&rdestroyed), 1); /* given up */
    atomic_store(&validate_panics, 0);
    ASSERT_OK(goc_rpool_acquire(rp, &obj, NULL)); /* its place is free */
    ASSERT_EQ(atomic_load(&rcreated), 2);
    ASSERT_OK(goc_rpool_release(rp, obj, false));
    free_on_a_thread(rp);
}

static _Atomic int destroy_panics;

static void maybe_panicking_destroy(void *obj, void *arg)
{
    (void)arg;
    free(obj);
    atomic_fetch_add(&rdestroyed, 1);
    if (atomic_load(&destroy_panics))
        goc_panic(-EIO, "destroy failed loudly");
}

struct release_args {
    goc_rpool *rp;
    void *obj;
};

static int release_broken(void *arg)
{
    struct release_args *a = arg;
    return goc_rpool_release(a->rp, a->obj, true);
}

/* A destroy that panics while a release destroys a broken object: the
 * object's place was lost for good, and the pool one object smaller. */
TEST_G(objpool, rpool_a_panicking_destroy_keeps_the_place)
{
    reset_counts();
    atomic_store(&destroy_panics, 1);
    struct goc_rpool_opts o = { .max_total = 1,
                                .max_idle = 1,
                                .create = rcreate,
                                .destroy = maybe_panicking_destroy };
    goc_rpool *rp;
    ASSERT_OK(goc_rpool_new(&o, &rp));
    struct release_args a = { rp, NULL };
    ASSERT_OK(goc_rpool_acquire(rp, &a.obj, NULL));
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(release_broken, &a, &p), GOC_EPANIC);
    goc_panic_info_free(p);
    atomic_store(&destroy_panics, 0);
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, GOC_SECOND);
    void *obj;
    ASSERT_OK(goc_rpool_acquire(rp, &obj, ctx)); /* the place is free */
    goc_ctx_destroy(ctx);
    ASSERT_OK(goc_rpool_release(rp, obj, false));
    goc_rpool_free(rp);
    ASSERT_EQ(atomic_load(&rdestroyed), 2);
}

/* An rpool of @total places whose destroy may panic (destroy_panics). */
static goc_rpool *panicky_rp(int64_t total,
                             int64_t idle_timeout,
                             bool (*validate)(void *, void *))
{
    reset_counts();
    struct goc_rpool_opts o = { .max_total = total,
                                .max_idle = total,
                                .idle_timeout = idle_timeout,
                                .create = rcreate,
                                .validate = validate,
                                .destroy = maybe_panicking_destroy };
    goc_rpool *rp;
    ASSERT_OK(goc_rpool_new(&o, &rp));
    return rp;
}

/* Acquire @n objects and release them all: @n idle ones. */
static void fill_idle(goc_rpool *rp, int n)
{
    void *objs[8];
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_rpool_acquire(rp, &objs[i], NULL));
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_rpool_release(rp, objs[i], false));
}

/* All @n places are free: @n acquires succeed at once. */
static void assert_places_free(goc_rpool *rp, int n)
{
    void *objs[8];
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, GOC_SECOND);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_rpool_acquire(rp, &objs[i], ctx));
    goc_ctx_destroy(ctx);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_rpool_release(rp, objs[i], false));
}

/*
 * A destroy that panics on the first object of an expiry batch: the rest
 * of the batch was never destroyed (leaked) and none of the batch's
 * places came back, so the pool stayed that much smaller for good.
 */
TEST_G(objpool, rpool_a_destroy_panic_in_an_expiry_batch_spares_the_rest)
{
    goc_rpool *rp = panicky_rp(4, GOC_MILLISECOND, NULL);
    fill_idle(rp, 4);
    goc_sleep(5 * GOC_MILLISECOND, NULL); /* all four expired */
    atomic_store(&destroy_panics, 1);
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(acquire_one, rp, &p), GOC_EPANIC);
    ASSERT(strstr(goc_panic_info_message(p), "destroy failed loudly"));
    goc_panic_info_free(p); /* and the three chained under it */
    atomic_store(&destroy_panics, 0);
    ASSERT_EQ(atomic_load(&rdestroyed), 4);
    assert_places_free(rp, 4);
    goc_rpool_free(rp);
    ASSERT_EQ(atomic_load(&rdestroyed), 8);
}

static int close_rp(void *arg)
{
    goc_rpool_close(arg);
    return 0;
}

static int free_rp(void *arg)
{
    goc_rpool_free(arg);
    return 0;
}

/*
 * A destroy that panics at close, or at free: the other idle objects
 * were never destroyed and close's list of them leaked; a free stopped
 * there and leaked the pool. Now all go, then the panic (ASan checks the
 * leaks).
 */
TEST_G(objpool, rpool_a_destroy_panic_at_close_or_free_still_destroys_all)
{
    for (int round = 0; round < 2; round++) {
        goc_rpool *rp = panicky_rp(4, 0, NULL);
        fill_idle(rp, 4);
        atomic_store(&destroy_panics, 1);
        goc_panic_info *p = NULL;
        ASSERT_EQ(goc_try(round ? free_rp : close_rp, rp, &p), GOC_EPANIC);
        ASSERT(strstr(goc_panic_info_message(p), "destroy failed loudly"));
        goc_panic_info_free(p);
        atomic_store(&destroy_panics, 0);
        ASSERT_EQ(atomic_load(&rdestroyed), 4);
        if (round == 0)
            goc_rpool_free(rp);
    }
}

/*
 * A validate that panics, then the destroy that gives its object up
 * panics too: the validate's panic was lost (and leaked). The destroy's
 * panic now carries it, chained as the panic it interrupted.
 */
TEST_G(objpool, rpool_validate_then_destroy_panics_keep_both)
{
    atomic_store(&validate_panics, 0);
    goc_rpool *rp = panicky_rp(1, 0, maybe_panicking_validate);
    fill_idle(rp, 1);
    atomic_store(&validate_panics, 1);
    atomic_store(&destroy_panics, 1);
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(acquire_one, rp, &p), GOC_EPANIC);
    atomic_store(&validate_panics, 0);
    atomic_store(&destroy_panics, 0);
    char text[4096];
    goc_panic_info_format(p, text, sizeof text);
    ASSERT(strstr(text, "destroy failed loudly"));
    ASSERT(strstr(text, "validate failed loudly"));
    goc_panic_info_free(p);
    assert_places_free(rp, 1);
    goc_rpool_free(rp);
}

static goc_chan *destroy_gate;
static _Atomic int destroy_blocked;

/* Its first call waits for destroy_gate to close. */
static void first_destroy_gated(void *obj, void *arg)
{
    (void)arg;
    if (atomic_fetch_add(&destroy_blocked, 1) == 0)
        goc_chan_recv(destroy_gate, NULL, NULL);
    free(obj);
    atomic_fetch_add(&rdestroyed, 1);
}

struct rp_closing {
    goc_rpool *rp;
    _Atomic int freed;
    goc_wg done;
};

static void rp_closer(void *arg)
{
    struct rp_closing *c = arg;
    goc_rpool_close(c->rp);
    goc_wg_done(&c->done);
}

static void rp_closing_freer(void *arg)
{
    struct rp_closing *c = arg;
    goc_rpool_free(c->rp);
    atomic_store(&c->freed, 1);
    goc_wg_done(&c->done);
}

/*
 * goc_rpool_free() while a goc_rpool_close() destroys the idle objects:
 * the free found nothing idle or on loan and freed the pool, and the
 * close's next destroy read it (ASan). The free now waits for the close.
 */
TEST_G(objpool, rpool_free_waits_for_a_close_destroying_idle_objects)
{
    reset_counts();
    atomic_store(&destroy_blocked, 0);
    ASSERT_OK(goc_chan_new(0, 0, &destroy_gate));
    struct goc_rpool_opts o = { .max_total = 2,
                                .max_idle = 2,
                                .create = rcreate,
                                .destroy = first_destroy_gated };
    struct rp_closing c = { .done = GOC_WG_INIT };
    ASSERT_OK(goc_rpool_new(&o, &c.rp));
    fill_idle(c.rp, 2);
    goc_wg_add(&c.done, 2);
    ASSERT_OK(goc_go(rp_closer, &c));
    WAIT_UNTIL(atomic_load(&destroy_blocked) >= 1); /* in its first destroy */
    ASSERT_OK(goc_go(rp_closing_freer, &c));
    goc_sleep(2 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&c.freed), 0);
    goc_chan_close(destroy_gate);
    goc_wg_wait(&c.done, NULL);
    ASSERT_EQ(atomic_load(&c.freed), 1);
    ASSERT_EQ(atomic_load(&rdestroyed), 2);
    goc_chan_release(destroy_gate);
}
