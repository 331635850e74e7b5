/* SPDX-License-Identifier: MIT */
/* Tests of contexts and of cancellation in the blocking calls. */
#include "test.h"
#include "../src/context/ctx.h"
#include "../src/internal/alloc.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <unistd.h>

TEST(ctx, background_never_ends)
{
    goc_ctx *bg = goc_ctx_background();
    ASSERT_EQ(goc_ctx_err(bg), 0);
    ASSERT_EQ(goc_ctx_err(NULL), 0);
    ASSERT_EQ(goc_ctx_cause(bg), 0);
    ASSERT(!goc_ctx_deadline(bg, NULL));
    ASSERT(goc_ctx_value(bg, "k") == NULL);
    goc_ctx_cancel(bg); /* no effect */
    ASSERT_EQ(goc_ctx_err(bg), 0);
    goc_ctx_release(bg);
    ASSERT(goc_ctx_retain(bg) == bg);
}

TEST(ctx, cancel_reaches_descendants_not_parent)
{
    goc_ctx *root, *mid, *leaf, *val, *sib;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &root));
    ASSERT_OK(goc_ctx_with_cancel(root, &mid));
    ASSERT_OK(goc_ctx_with_value(mid, "k", (void *)"v", &val));
    ASSERT_OK(goc_ctx_with_cancel(val, &leaf));
    ASSERT_OK(goc_ctx_with_cancel(root, &sib));
    goc_ctx_cancel_cause(mid, GOC_EOVERLOAD);
    ASSERT_EQ(goc_ctx_err(mid), -ECANCELED);
    ASSERT_EQ(goc_ctx_err(val), -ECANCELED);
    ASSERT_EQ(goc_ctx_err(leaf), -ECANCELED);
    ASSERT_EQ(goc_ctx_cause(leaf), GOC_EOVERLOAD);
    ASSERT_EQ(goc_ctx_err(root), 0);
    ASSERT_EQ(goc_ctx_err(sib), 0);
    goc_ctx_cancel(root);
    ASSERT_EQ(goc_ctx_err(sib), -ECANCELED);
    ASSERT_EQ(goc_ctx_cause(sib), -ECANCELED);
    ASSERT_EQ(goc_ctx_cause(mid), GOC_EOVERLOAD); /* first cancel wins */
    /* A child of a done parent is born done. */
    goc_ctx *late;
    ASSERT_OK(goc_ctx_with_cancel(mid, &late));
    ASSERT_EQ(goc_ctx_err(late), -ECANCELED);
    ASSERT_EQ(goc_ctx_cause(late), GOC_EOVERLOAD);
    /* A positive cause would read as "not done": cancelled all the same,
     * with -EINVAL as the cause. */
    goc_ctx *pos;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &pos));
    goc_ctx_cancel_cause(pos, 5);
    ASSERT_EQ(goc_ctx_err(pos), -ECANCELED);
    ASSERT_EQ(goc_ctx_cause(pos), -EINVAL);
    /* A done channel is its context's to close: a user's close is
     * refused (it went through, and the context's own close met a closed
     * channel). */
    goc_ctx *live;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &live));
    goc_chan *done = goc_ctx_done(live);
    ASSERT_EQ(goc_chan_close(done), GOC_EMISUSE);
    ASSERT_EQ(goc_chan_try_recv(done, NULL), -EAGAIN);
    goc_ctx_cancel(live);
    ASSERT_EQ(goc_chan_recv(done, NULL, NULL), 0);
    goc_ctx_release(live);
    goc_ctx_release(pos);
    goc_ctx_release(late);
    goc_ctx_release(leaf);
    goc_ctx_release(val);
    goc_ctx_release(mid);
    goc_ctx_release(sib);
    goc_ctx_release(root);
}

TEST(ctx, release_cancels_and_parent_outlives_children)
{
    goc_ctx *root, *child;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &root));
    ASSERT_OK(goc_ctx_with_cancel(root, &child));
    goc_ctx_release(root); /* the child still holds it */
    ASSERT_EQ(goc_ctx_err(child), 0);
    goc_ctx_retain(child);
    goc_ctx_release(child);
    ASSERT_EQ(goc_ctx_err(child), 0);
    goc_ctx_release(child); /* last: cancels, frees both */
}

TEST_G(ctx, deadlines_inherit_the_earlier)
{
    goc_ctx *a, *b, *c;
    int64_t now = goc_now(), d;
    ASSERT_OK(goc_ctx_with_deadline(NULL, now + GOC_SECOND, &a));
    ASSERT_OK(goc_ctx_with_deadline(a, now + 10 * GOC_SECOND, &b));
    ASSERT_OK(goc_ctx_with_timeout(a, 20 * GOC_MILLISECOND, &c));
    ASSERT(goc_ctx_deadline(b, &d));
    ASSERT_EQ(d, now + GOC_SECOND);
    ASSERT(goc_ctx_deadline(c, &d));
    ASSERT_LT(d, now + GOC_SECOND);
    goc_sleep(30 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_ctx_err(c), -ETIMEDOUT);
    ASSERT_EQ(goc_ctx_err(a), 0);
    ASSERT_EQ(goc_ctx_err(b), 0);
    goc_ctx_cancel(a);
    ASSERT_EQ(goc_ctx_err(b), -ECANCELED);
    ASSERT_EQ(goc_ctx_err(c), -ETIMEDOUT); /* fixed forever */
    goc_ctx_release(c);
    goc_ctx_release(b);
    goc_ctx_release(a);
    /* Past or zero timeouts are done at once. */
    ASSERT_OK(goc_ctx_with_timeout(NULL, 0, &a));
    ASSERT_EQ(goc_ctx_err(a), -ETIMEDOUT);
    goc_ctx_release(a);
    ASSERT_OK(goc_ctx_with_deadline(NULL, now - 1, &a));
    ASSERT_EQ(goc_ctx_err(a), -ETIMEDOUT);
    goc_ctx_release(a);
}

TEST(ctx, values_and_without_cancel)
{
    static const char k1, k2;
    goc_ctx *root, *v1, *v2, *shadow, *detached;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &root));
    ASSERT_EQ(goc_ctx_with_value(root, NULL, (void *)"x", &v1), -EINVAL);
    ASSERT_OK(goc_ctx_with_value(root, &k1, (void *)"one", &v1));
    ASSERT_OK(goc_ctx_with_value(v1, &k2, (void *)"two", &v2));
    ASSERT_OK(goc_ctx_with_value(v2, &k1, (void *)"uno", &shadow));
    ASSERT_OK(goc_ctx_without_cancel(shadow, &detached));
    ASSERT_STR(goc_ctx_value(v2, &k1), "one");
    ASSERT_STR(goc_ctx_value(v2, &k2), "two");
    ASSERT_STR(goc_ctx_value(shadow, &k1), "uno");
    ASSERT_STR(goc_ctx_value(detached, &k2), "two");
    ASSERT(goc_ctx_value(root, &k1) == NULL);
    goc_ctx_cancel(root);
    ASSERT_EQ(goc_ctx_err(v2), -ECANCELED);
    ASSERT_EQ(goc_ctx_err(detached), 0);
    ASSERT(goc_ctx_done(detached) == NULL);
    goc_ctx_release(detached);
    goc_ctx_release(shadow);
    goc_ctx_release(v2);
    goc_ctx_release(v1);
    goc_ctx_release(root);
}

struct after_state {
    _Atomic int runs;
    goc_wg wg;
};

static void after_fn(void *arg)
{
    struct after_state *s = arg;
    atomic_fetch_add(&s->runs, 1);
    goc_wg_done(&s->wg);
}

TEST_G(ctx, after_func_runs_exactly_once)
{
    static struct after_state s;
    goc_ctx *ctx;
    goc_ctx_after a1, a2, a3, a4;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    ASSERT_EQ(goc_ctx_after_func(ctx, NULL, NULL, &a1), -EINVAL);
    goc_wg_add(&s.wg, 2);
    ASSERT_OK(goc_ctx_after_func(ctx, after_fn, &s, &a1));
    ASSERT_OK(goc_ctx_after_func(ctx, after_fn, &s, &a2));
    ASSERT_OK(goc_ctx_after_func(ctx, after_fn, &s, &a3));
    ASSERT(goc_ctx_after_stop(&a3)); /* prevented */
    ASSERT(!goc_ctx_after_stop(&a3));
    goc_ctx_cancel(ctx);
    goc_ctx_cancel(ctx);
    goc_wg_wait(&s.wg, NULL);
    ASSERT(!goc_ctx_after_stop(&a1)); /* already started */
    /* Registered after the end: runs at once. */
    goc_wg_add(&s.wg, 1);
    ASSERT_OK(goc_ctx_after_func(ctx, after_fn, &s, &a4));
    goc_wg_wait(&s.wg, NULL);
    ASSERT_EQ(atomic_load(&s.runs), 3);
    /* Never cancellable: never runs, stop prevents it. */
    ASSERT_OK(goc_ctx_after_func(NULL, after_fn, &s, &a4));
    ASSERT(goc_ctx_after_stop(&a4));
    goc_ctx_release(ctx);
}

TEST_G(ctx, local_contexts_cost_nothing_to_destroy_early)
{
    goc_ctx *parent;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &parent));
    for (int i = 0; i < 100000; i++) {
        goc_ctx_local l;
        goc_ctx *ctx = goc_ctx_init_timeout(&l, parent, GOC_SECOND);
        ASSERT_EQ(goc_ctx_err(ctx), 0);
        ASSERT_OK(goc_ctx_destroy(ctx));
    }
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_cancel(&l, parent);
    goc_ctx_cancel(parent);
    ASSERT_EQ(goc_ctx_err(ctx), -ECANCELED);
    ASSERT_OK(goc_ctx_destroy(ctx));
    ASSERT_EQ(goc_ctx_destroy(parent), -EINVAL); /* not local */
    goc_ctx_release(parent);
}

/* ---- cancellation of the other blocking calls ------------------------- */

TEST_G(ctx, sleep_is_cancellable)
{
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    test_cancel_after(ctx, 10 * GOC_MILLISECOND);
    int64_t t0 = goc_now();
    ASSERT_EQ(goc_sleep(10 * GOC_SECOND, ctx), -ECANCELED);
    ASSERT_LT(goc_now() - t0, 5 * GOC_SECOND);
    ASSERT_EQ(goc_sleep(GOC_MILLISECOND, ctx), -ECANCELED); /* at entry */
    goc_ctx_release(ctx);
    goc_ctx_local l;
    ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_sleep(10 * GOC_SECOND, ctx), -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    ctx = goc_ctx_init_timeout(&l, NULL, 10 * GOC_SECOND);
    t0 = goc_now();
    ASSERT_OK(goc_sleep(2 * GOC_MILLISECOND, ctx)); /* sleep wins */
    ASSERT_GE(goc_now() - t0, 2 * GOC_MILLISECOND);
    goc_ctx_destroy(ctx);
}

struct thread_wait {
    goc_wg *wg;
    goc_ctx *ctx;
    int rc;
};

static void *thread_wg_wait(void *arg)
{
    struct thread_wait *t = arg;
    t->rc = goc_wg_wait(t->wg, t->ctx);
    return NULL;
}

TEST_G(ctx, wg_wait_is_cancellable)
{
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 1);
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 10 * GOC_MILLISECOND);
    ASSERT_EQ(goc_wg_wait(&wg, ctx), -ETIMEDOUT);
    ASSERT_EQ(goc_wg_wait(&wg, ctx), -ETIMEDOUT); /* at entry */
    goc_ctx_destroy(ctx);
    /* A plain thread, cancelled. */
    goc_ctx *c2;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c2));
    struct thread_wait tw = { &wg, c2, 99 };
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, thread_wg_wait, &tw));
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    goc_ctx_cancel(c2);
    test_join(t, NULL);
    ASSERT_EQ(tw.rc, -ECANCELED);
    /* The cancelled waiters left no trace: done releases nobody stale,
     * and a finished group is reported even with a done context. */
    ASSERT_OK(goc_wg_done(&wg));
    ASSERT_OK(goc_wg_wait(&wg, c2));
    goc_ctx_release(c2);
}

struct blocked {
    goc_chan *c;
    goc_ctx *ctx;
    goc_wg started, done;
    _Atomic int cancelled;
};

static void blocked_recv(void *arg)
{
    struct blocked *b = arg;
    int v;
    goc_wg_done(&b->started);
    if (goc_chan_recv(b->c, &v, b->ctx) == -ECANCELED)
        atomic_fetch_add(&b->cancelled, 1);
    goc_wg_done(&b->done);
}

TEST(ctx, cancel_from_plain_thread_wakes_goroutines)
{
    static struct blocked b;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &b.ctx));
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &b.c));
    goc_wg_add(&b.started, 100);
    goc_wg_add(&b.done, 100);
    for (int i = 0; i < 100; i++)
        ASSERT_OK(goc_go(blocked_recv, &b));
    goc_wg_wait(&b.started, NULL);
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    goc_ctx_cancel(b.ctx); /* from this plain thread */
    goc_wg_wait(&b.done, NULL);
    ASSERT_EQ(atomic_load(&b.cancelled), 100);
    goc_chan_release(b.c);
    goc_ctx_release(b.ctx);
    test_no_leaks();
}

/* ---- after-func records handed back while a cancel spawns them -------- */

static _Atomic int after_ran;

static void count_after(void *arg)
{
    (void)arg;
    atomic_fetch_add(&after_ran, 1);
}

static void *cancel_now(void *arg)
{
    goc_ctx_cancel(arg);
    return NULL;
}

TEST(ctx, after_func_storage_reusable_once_stop_returns)
{
    enum { N = 500 };
    int rounds = (int)test_scale(40);
    int stopped = 0;
    for (int r = 0; r < rounds; r++) {
        goc_ctx *ctx;
        goc_ctx_after *recs[N];
        ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
        for (int i = 0; i < N; i++) {
            recs[i] = malloc(sizeof(goc_ctx_after));
            ASSERT_OK(goc_ctx_after_func(ctx, count_after, NULL, recs[i]));
        }
        pthread_t t;
        ASSERT_OK(pthread_create(&t, NULL, cancel_now, ctx));
        for (int i = 0; i < N; i++) {
            /* Once stop returns, the record is ours: free it at once (ASan
             * catches any later read by the cancel). */
            stopped += goc_ctx_after_stop(recs[i]);
            free(recs[i]);
        }
        test_join(t, NULL);
        goc_ctx_release(ctx);
    }
    test_no_leaks();
    /* Every record was either stopped or run exactly once. */
    ASSERT_EQ(atomic_load(&after_ran) + stopped, rounds * N);
}

/* A chain of contexts thousands deep cancels from its root without
 * recursing once per level (it overflowed a goroutine's stack). */
TEST_G(ctx, deep_chain_cancels_without_overflowing_the_stack)
{
    enum { DEPTH = 20000 };
    goc_ctx **chain = malloc(DEPTH * sizeof *chain);
    ASSERT(chain != NULL);
    ASSERT_OK(goc_ctx_with_cancel(NULL, &chain[0]));
    for (int i = 1; i < DEPTH; i++)
        ASSERT_OK(goc_ctx_with_cancel(chain[i - 1], &chain[i]));
    goc_ctx_cancel(chain[0]);
    for (int i = 0; i < DEPTH; i++)
        if (goc_ctx_err(chain[i]) != -ECANCELED)
            ASSERT_FAIL("level %d not cancelled", i);
    for (int i = DEPTH - 1; i >= 0; i--)
        goc_ctx_release(chain[i]);
    free(chain);
}

static void after_noop(void *arg)
{
    (void)arg;
}

/* Stopping a registration after its context ended and was freed is
 * safe, as Go's stop is at any time: it locked the freed context. */
TEST_G(ctx, after_stop_once_the_context_is_gone)
{
    goc_ctx *c;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c));
    goc_ctx_after a;
    ASSERT_OK(goc_ctx_after_func(c, after_noop, NULL, &a));
    goc_ctx_release(c); /* the last reference: cancelled, then freed */
    ASSERT_EQ(goc_ctx_after_stop(&a), false);
}

/* A local context with a deadline when the runtime cannot start ends at
 * once, its cause the start's failure (arming its timer divided by
 * zero Ps). */
TEST(ctx, deadline_without_a_runtime_ends_at_once)
{
    goc_ctx_local l;
    goc__fault_after(0);
    goc_ctx *c = goc_ctx_init_timeout(&l, NULL, GOC_SECOND);
    goc__fault_after(-1);
    ASSERT_EQ(goc_ctx_err(c), -ECANCELED);
    ASSERT_EQ(goc_ctx_cause(c), -ENOMEM);
    /* No goroutine can ever start its after-func: it runs at once, on
     * the caller, rather than wait for ever. */
    static struct test_run_note s;
    goc_ctx_after a;
    ASSERT_OK(goc_ctx_after_func(c, test_note_run, &s, &a));
    ASSERT_EQ(atomic_load(&s.runs), 1);
    goc_ctx_destroy(c);
}

static int after_spawn_fails(void *arg)
{
    (void)arg;
    /* Each goroutine takes a slab of its own at this stack size, so an
     * after-func's spawn allocates, and fails while allocations do. */
    struct test_run_note s = { 0 }, stopped = { 0 };
    goc_ctx *c1, *c2;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c1));
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c2));
    goc_ctx_after a1, a2;
    ASSERT_OK(goc_ctx_after_func(c1, test_note_run, &s, &a1));
    ASSERT_OK(goc_ctx_after_func(c2, test_note_run, &stopped, &a2));
    goc__fault_after(0);
    goc_ctx_cancel(c1);
    goc_ctx_cancel(c2);
    goc__fault_after(-1);
    /* Not run on the canceller (a deadline's timer, the scheduler's own
     * stack, would run it there too): deferred, and still stoppable. */
    ASSERT_EQ(atomic_load(&s.runs), 0);
    ASSERT_EQ(goc_ctx_after_stop(&a2), true);
    ASSERT_EQ(goc_ctx_after_stop(&a2), false);
    for (int i = 0; i < 2000 && atomic_load(&s.runs) == 0; i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&s.runs), 1);
    ASSERT_NE(atomic_load(&s.goid), goc_id());
    ASSERT_EQ(goc_ctx_after_stop(&a1), false);
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&stopped.runs), 0);
    ASSERT_EQ(atomic_load(&s.runs), 1);
    goc_ctx_release(c1);
    goc_ctx_release(c2);
    return 0;
}

/* An after-func whose goroutine cannot be made waits for one: it never
 * runs on the cancelling goroutine or timer instead. */
TEST(ctx, after_func_that_cannot_spawn_waits_for_a_goroutine)
{
    test_run_with_spawns_that_allocate(after_spawn_fails);
}

struct stop_race {
    goc_ctx_after a;
    _Atomic int stopped, ran;
};

static void *stopper(void *arg)
{
    struct stop_race *r = arg;
    atomic_store(&r->stopped, goc_ctx_after_stop(&r->a));
    return NULL;
}

static void after_count(void *arg)
{
    atomic_fetch_add(&((struct stop_race *)arg)->ran, 1);
}

/*
 * A stop that has seen its record linked, and is slow to take the lock
 * of the records, while the context's last release cancels and frees it:
 * the stop took the context's own lock, inside freed memory. It takes a
 * lock outside the context now, and touches the context only if the
 * record is still linked under it.
 */
TEST(ctx, after_stop_racing_the_last_release_touches_no_freed_context)
{
    struct stop_race r = { .stopped = 99 };
    goc_ctx *c;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c));
    ASSERT_OK(goc_ctx_after_func(c, after_count, &r, &r.a));
    _Atomic uint32_t *lk = &goc__ctx_after_lock((struct goc_ctx *)c)->state;
    uint32_t zero = 0;
    ASSERT(atomic_compare_exchange_strong(lk, &zero, 1));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, stopper, &r));
    while (atomic_load(lk) != 2)
        usleep(1000); /* the stop saw LINKED and waits for the lock */
    usleep(50000);
    atomic_store(lk, 0); /* let go without a wake: the stop is just slow */
    goc_ctx_release(c);  /* the last reference: cancelled and freed */
    syscall(SYS_futex, lk, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
    test_join(t, NULL);
    ASSERT_EQ(atomic_load(&r.stopped), 0); /* too late: fn was started */
    for (int i = 0; i < 2000 && atomic_load(&r.ran) == 0; i++)
        usleep(1000);
    ASSERT_EQ(atomic_load(&r.ran), 1);
}

struct deferring {
    goc_ctx *c;
    goc_ctx_after a;
    _Atomic int ran, stopped;
};

static void *cancel_with_no_memory(void *arg)
{
    struct deferring *d = arg;
    goc__fault_after(0);
    goc_ctx_cancel(d->c); /* the spawn fails: the record is deferred */
    return NULL;
}

static void *stop_it(void *arg)
{
    struct deferring *d = arg;
    atomic_store(&d->stopped, goc_ctx_after_stop(&d->a) ? 1 : 0);
    return NULL;
}

static void deferred_note(void *arg)
{
    atomic_fetch_add(&((struct deferring *)arg)->ran, 1);
}

static int stop_while_the_spawn_fails(void *arg)
{
    (void)arg;
    static struct deferring d = { .stopped = -1 };
    ASSERT_OK(goc_ctx_with_cancel(NULL, &d.c));
    ASSERT_OK(goc_ctx_after_func(d.c, deferred_note, &d, &d.a));
    /* Hold the deferred list: the canceller's failed spawn waits there,
     * its record still SPAWNING, and the stop waits for that to end. */
    _Atomic uint32_t *lk = &goc__ctx_deferred_lock()->state;
    uint32_t zero = 0;
    ASSERT(atomic_compare_exchange_strong(lk, &zero, 1));
    pthread_t canceller, stopper;
    ASSERT_OK(pthread_create(&canceller, NULL, cancel_with_no_memory, &d));
    while (atomic_load(lk) != 2)
        usleep(1000);
    ASSERT_OK(pthread_create(&stopper, NULL, stop_it, &d));
    usleep(50000); /* the stop sees SPAWNING and waits */
    atomic_store(lk, 0);
    syscall(SYS_futex, lk, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1, NULL, NULL, 0);
    test_join(canceller, NULL);
    test_join(stopper, NULL);
    goc__fault_after(-1);
    /* Deferred, not started: the stop must take it (and the owner may
     * then free the record); a false answer left it queued for sysmon. */
    ASSERT_EQ(atomic_load(&d.stopped), 1);
    goc_sleep(50 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&d.ran), 0);
    goc_ctx_release(d.c);
    return 0;
}

TEST(ctx, after_stop_waiting_out_a_spawn_that_fails_still_stops_it)
{
    test_run_with_spawns_that_allocate(stop_while_the_spawn_fails);
}

/* ---- a child's last release racing its parent's cancel ----------------- */

#define RACE_GRANDCHILDREN 128

struct release_race {
    goc_ctx *parent, *child;
    goc_ctx_local grandchildren[RACE_GRANDCHILDREN];
    _Atomic int go, ready;
};

static void *release_the_child(void *arg)
{
    struct release_race *r = arg;
    atomic_fetch_add(&r->ready, 1);
    while (!atomic_load(&r->go))
        ;
    goc_ctx_release(r->child); /* the last reference */
    return NULL;
}

/* A parent's cancel marked a child unlinked before it was done with it,
 * so the child's last release, running meanwhile, no longer waited for
 * the parent's lock and freed the child under the cancel's walk (ASan:
 * heap-use-after-free). The grandchildren keep the walk inside the child
 * for a while. */
TEST(ctx, child_released_while_its_parent_cancels_is_freed_after_the_walk)
{
    static struct release_race r;
    int64_t n = test_scale(3000);
    for (int64_t i = 0; i < n; i++) {
        memset(&r, 0, sizeof(r));
        ASSERT_OK(goc_ctx_with_cancel(NULL, &r.parent));
        ASSERT_OK(goc_ctx_with_cancel(r.parent, &r.child));
        for (int k = 0; k < RACE_GRANDCHILDREN; k++)
            ASSERT(goc_ctx_done(goc_ctx_init_cancel(&r.grandchildren[k],
                                                    r.child)) != NULL);
        pthread_t th;
        ASSERT_OK(pthread_create(&th, NULL, release_the_child, &r));
        while (!atomic_load(&r.ready))
            ;
        atomic_store(&r.go, 1);
        for (volatile int k = 0; k < (int)(i % 64) * 50; k++)
            ;
        goc_ctx_cancel(r.parent);
        ASSERT_OK(pthread_join(th, NULL));
        for (int k = 0; k < RACE_GRANDCHILDREN; k++)
            goc_ctx_destroy((goc_ctx *)&r.grandchildren[k]);
        goc_ctx_release(r.parent);
    }
}

/* A deadline with a cause of its own: the cause when the deadline ends
 * the context, the usual ones otherwise (Go's WithDeadlineCause). */
TEST_G(ctx, deadline_cause_is_given_only_when_the_deadline_ends_it)
{
    goc_ctx *c;
    ASSERT_EQ(goc_ctx_with_timeout_cause(NULL, GOC_SECOND, 5, &c), -EINVAL);
    /* Long enough to be seen undone first, under valgrind too. */
    int64_t timeout = (test_instrumented() ? 500 : 20) * GOC_MILLISECOND;
    ASSERT_OK(goc_ctx_with_timeout_cause(NULL, timeout, GOC_EOVERLOAD, &c));
    ASSERT_EQ(goc_ctx_cause(c), 0);
    goc_chan *done = goc_ctx_done(c);
    ASSERT_EQ(goc_chan_recv(done, NULL, NULL), 0);
    ASSERT_EQ(goc_ctx_err(c), -ETIMEDOUT);
    ASSERT_EQ(goc_ctx_cause(c), GOC_EOVERLOAD);
    goc_ctx *child;
    ASSERT_OK(goc_ctx_with_cancel(c, &child)); /* born done, same cause */
    ASSERT_EQ(goc_ctx_cause(child), GOC_EOVERLOAD);
    goc_ctx_release(child);
    goc_ctx_release(c);
    /* Cancelled first: the cancel's cause. */
    ASSERT_OK(goc_ctx_with_deadline_cause(NULL, goc_now() + GOC_SECOND,
                                          GOC_EOVERLOAD, &c));
    goc_ctx_cancel(c);
    ASSERT_EQ(goc_ctx_cause(c), -ECANCELED);
    goc_ctx_release(c);
    /* Already past: done at once, with the cause. */
    ASSERT_OK(goc_ctx_with_deadline_cause(NULL, goc_now() - 1, -EIO, &c));
    ASSERT_EQ(goc_ctx_err(c), -ETIMEDOUT);
    ASSERT_EQ(goc_ctx_cause(c), -EIO);
    goc_ctx_release(c);
}

/* The only P spins past the parent's deadline, so its timer has not fired
 * (sysmon fires a busy P's timers once they are 1 ms overdue). */
static int past_deadline_main(void *arg)
{
    (void)arg;
    goc_ctx *p, *v, *c;
    goc_ctx_local l;
    int64_t d = goc_now() + 2 * GOC_MILLISECOND;
    ASSERT_OK(goc_ctx_with_deadline_cause(NULL, d, GOC_EOVERLOAD, &p));
    ASSERT_OK(goc_ctx_with_value(p, "k", NULL, &v));
    while (goc_now() <= d)
        ;
    ASSERT_OK(goc_ctx_with_timeout(v, 0, &c));
    goc_ctx *lc = goc_ctx_init_deadline(&l, v, goc_now() - 1);
    /* Done at once, as the header says, with the deadline's cause: the
     * parent's own, which is the earlier one. */
    ASSERT_EQ(goc_ctx_err(c), -ETIMEDOUT);
    ASSERT_EQ(goc_ctx_cause(c), GOC_EOVERLOAD);
    ASSERT_EQ(goc_ctx_err(lc), -ETIMEDOUT);
    ASSERT_EQ(goc_ctx_cause(lc), GOC_EOVERLOAD);
    ASSERT_EQ(goc_chan_try_recv(goc_ctx_done(c), NULL), 0);
    goc_ctx_destroy(lc);
    goc_ctx_release(c);
    /* A deadline of its own, earlier still: its own cause, if made
     * while the parent was live. On a slow machine (valgrind) sysmon may
     * have fired the parent's timer by now, overdue: a child of a parent
     * done takes the parent's cause. */
    ASSERT_OK(goc_ctx_with_deadline_cause(v, d - 1, -EIO, &c));
    bool parent_was_live = goc_ctx_err(p) == 0; /* after c was made */
    int cause = goc_ctx_cause(c);
    if (parent_was_live)
        ASSERT_EQ(cause, -EIO);
    else
        ASSERT(cause == -EIO || cause == GOC_EOVERLOAD);
    goc_ctx_release(c);
    ASSERT_OK(goc_chan_recv(goc_ctx_done(p), NULL, NULL));
    ASSERT_EQ(goc_ctx_cause(p), GOC_EOVERLOAD);
    goc_ctx_release(v);
    goc_ctx_release(p);
    return 0;
}

/* A deadline already past gives a context done at once, even when the
 * parent's deadline, earlier and also past, is still to fire: the child
 * inherited it and waited for that timer. */
TEST(ctx, past_deadline_is_done_at_once_under_a_parent_yet_to_fire)
{
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(past_deadline_main, NULL));
    test_no_leaks();
}

/* A chain held by its leaf alone (each context's creator released it
 * once the child held it): the leaf's last release frees every ancestor
 * in turn, without recursing, so however deep the chain the stack holds
 * (a release that called itself for the parent overflowed a goroutine's
 * stack wherever the compiler did not make that a jump, as at -O0). */
TEST_G(ctx, last_release_of_a_deep_chain_frees_it_without_recursion)
{
    enum { DEPTH = 200000 };
    goc_ctx *leaf, *next;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &leaf));
    for (int i = 1; i < DEPTH; i++) {
        ASSERT_OK(goc_ctx_with_value(leaf, "k", NULL, &next));
        goc_ctx_release(leaf);
        ASSERT_OK(goc_ctx_with_cancel(next, &leaf));
        goc_ctx_release(next);
    }
    int64_t before = test_lib_objects();
    goc_ctx_release(leaf);
    ASSERT_LE(test_lib_objects(), before - (2 * DEPTH - 1));
}

/* A cancelled context's deadline timer leaves the wheel at the cancel:
 * it stayed armed until the last release, far-off deadline and all. */
TEST_G(ctx, cancel_takes_the_deadline_timer_off_the_wheel)
{
    enum { N = 100 };
    struct goc_stats st;
    ASSERT_OK(goc_stats_read(&st, GOC_STATS_SCHED));
    int64_t before = st.timers;
    goc_ctx *c[N];
    for (int i = 0; i < N; i++)
        ASSERT_OK(goc_ctx_with_timeout(NULL, 3600 * GOC_SECOND, &c[i]));
    ASSERT_OK(goc_stats_read(&st, GOC_STATS_SCHED));
    ASSERT_GE(st.timers, before + N);
    for (int i = 0; i < N; i++)
        goc_ctx_cancel(c[i]);
    ASSERT_OK(goc_stats_read(&st, GOC_STATS_SCHED));
    ASSERT_LE(st.timers, before + N / 2); /* others may come and go */
    for (int i = 0; i < N; i++) {
        ASSERT_EQ(goc_ctx_err(c[i]), -ECANCELED);
        goc_ctx_release(c[i]);
    }
}
