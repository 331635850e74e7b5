/* SPDX-License-Identifier: MIT */
/* Tests of recovery handlers attached to the runners of tasks. */
#include "test.h"

#include "../src/internal/alloc.h"

#include <stdatomic.h>
#include <string.h>

struct tally {
    _Atomic int calls;
    _Atomic int logged; /* panics written to the log hook instead */
};

static void count_record(const struct goc_panic_record *r, void *arg)
{
    struct tally *t = arg;
    (void)r;
    atomic_fetch_add(&t->calls, 1);
}

static void count_log(const char *msg, void *arg)
{
    struct tally *t = arg;
    if (strstr(msg, "a task panicked"))
        atomic_fetch_add(&t->logged, 1);
}

/* Panics when its argument is odd; records the goroutine it ran on. */
struct job {
    int n;
    _Atomic int64_t gid;
};

static int maybe_panics(void *arg)
{
    struct job *j = arg;
    atomic_store(&j->gid, goc_id());
    if (j->n % 2)
        goc_panic(-EIO, "task %d", j->n);
    return 0;
}

static int task_maybe_panics(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    *result = NULL;
    return maybe_panics(arg);
}

static int group_maybe_panics(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    return maybe_panics(arg);
}

/* The status a future settled with. */
static int outcome(goc_future *f)
{
    int status = 1;
    ASSERT_OK(goc_future_get(f, &status, NULL, NULL));
    return status;
}

TEST_G(recovery, pool_panics_go_to_the_attached_handler)
{
    struct tally t = { 0 };
    goc_set_log_hook(count_log, &t);
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(16, count_record, &t, &h));
    goc_pool *p;
    struct goc_pool_config cfg = { .capacity = 2 };
    ASSERT_OK(goc_pool_new(&cfg, &p));
    ASSERT_EQ(goc_pool_set_recovery(NULL, h), -EINVAL);
    ASSERT_OK(goc_pool_set_recovery(p, h));
    struct job jobs[10];
    for (int i = 0; i < 10; i++) {
        jobs[i].n = i;
        ASSERT_OK(goc_pool_submit(p, maybe_panics, &jobs[i], NULL));
    }
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    struct goc_pool_stats st;
    ASSERT_OK(goc_pool_stats(p, &st));
    ASSERT_EQ(st.completed, 10);
    ASSERT_EQ(st.failed, 5);
    ASSERT_EQ(st.panicked, 5); /* panics are counted apart from failures */
    ASSERT_EQ(st.workers_replaced, 0);
    ASSERT_EQ(goc_recovery_count(h, NULL), 5);
    ASSERT_EQ(atomic_load(&t.calls), 5);
    ASSERT_EQ(atomic_load(&t.logged), 0); /* recorded, not logged */
    struct goc_panic_record r[5];
    ASSERT_EQ(goc_recovery_records(h, r, 5), 5);
    ASSERT(strstr(r[0].message, "task ") == r[0].message);
    ASSERT(strstr(r[0].backtrace, "maybe_panics") != NULL);
    /* Detached: back to the log. */
    ASSERT_OK(goc_pool_set_recovery(p, NULL));
    ASSERT_OK(goc_pool_submit(p, maybe_panics, &jobs[1], NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&t.logged), 1);
    ASSERT_EQ(goc_recovery_count(h, NULL), 5);
    goc_pool_free(p);
    goc_recovery_free(h);
    goc_set_log_hook(NULL, NULL);
}

/* ants' policy: the worker that ran a panicking task leaves; the next
 * task runs on a fresh one. With CONTINUE the same worker goes on. */
static void pool_policy_case(int policy, bool same_worker)
{
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, policy));
    goc_pool *p;
    struct goc_pool_config cfg = { .capacity = 1 };
    ASSERT_OK(goc_pool_new(&cfg, &p));
    ASSERT_OK(goc_pool_set_recovery(p, h));
    goc_recovery_free(h); /* the pool keeps it */
    struct job a = { .n = 1 }, b = { .n = 2 };
    ASSERT_OK(goc_pool_submit(p, maybe_panics, &a, NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_OK(goc_pool_submit(p, maybe_panics, &b, NULL));
    ASSERT_OK(goc_pool_wait_idle(p, NULL));
    ASSERT_EQ(atomic_load(&a.gid) == atomic_load(&b.gid), same_worker);
    struct goc_pool_stats st;
    ASSERT_OK(goc_pool_stats(p, &st));
    ASSERT_EQ(st.completed, 2);
    ASSERT_EQ(st.failed, 1);
    goc_pool_free(p);
}

TEST_G(recovery, pool_worker_exit_policy_replaces_the_worker)
{
    pool_policy_case(GOC_RECOVER_CONTINUE, true);
    pool_policy_case(GOC_RECOVER_WORKER_EXIT, false);
}

TEST_G(recovery, workerpool_worker_exit_policy_replaces_the_worker)
{
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_WORKER_EXIT));
    goc_workerpool *p;
    struct goc_workerpool_config cfg = { .max_workers = 1 };
    ASSERT_OK(goc_workerpool_new(&cfg, &p));
    ASSERT_OK(goc_workerpool_set_recovery(p, h));
    struct job jobs[6];
    goc_future *f[6];
    for (int i = 0; i < 6; i++) {
        jobs[i].n = i;
        ASSERT_OK(goc_workerpool_submit(p, task_maybe_panics, &jobs[i], NULL,
                                        &f[i], NULL));
    }
    for (int i = 0; i < 6; i++) {
        ASSERT_EQ(outcome(f[i]), i % 2 ? GOC_EPANIC : 0);
        goc_future_release(f[i]);
    }
    /* Each task after a panic ran on a fresh worker; one worker at most. */
    for (int i = 1; i + 1 < 6; i += 2)
        ASSERT_NE(atomic_load(&jobs[i].gid), atomic_load(&jobs[i + 1].gid));
    ASSERT_EQ(atomic_load(&jobs[0].gid), atomic_load(&jobs[1].gid));
    /* A handle is settled before its worker counts it: idle first. */
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    struct goc_workerpool_stats st;
    ASSERT_OK(goc_workerpool_stats(p, &st));
    ASSERT(st.workers <= 1);
    ASSERT_EQ(st.panicked, 3);
    ASSERT_EQ(st.workers_replaced, 3);
    ASSERT_EQ(goc_recovery_count(h, NULL), 3);
    goc_workerpool_free(p);
    goc_recovery_free(h);
}

TEST_G(recovery, default_handler_takes_what_runners_do_not)
{
    struct tally t = { 0 }, own = { 0 };
    goc_set_log_hook(count_log, &t);
    goc_recovery *def, *mine;
    ASSERT_OK(goc_recovery_new(8, count_record, &t, &def));
    ASSERT_OK(goc_recovery_new(8, count_record, &own, &mine));
    ASSERT_OK(goc_recovery_set_default(def));
    goc_recovery_free(def); /* the runtime keeps it */
    /* goc_future_async: no runner object, so the default handler. */
    struct job a = { .n = 3 };
    goc_future *f;
    ASSERT_OK(goc_future_async(task_maybe_panics, &a, NULL, NULL, &f));
    ASSERT_EQ(outcome(f), GOC_EPANIC);
    goc_future_release(f);
    /* A group with its own handler, and one without. */
    goc_group *g1, *g2;
    ASSERT_OK(goc_group_new(NULL, &g1));
    ASSERT_OK(goc_group_new(NULL, &g2));
    ASSERT_OK(goc_group_set_recovery(g1, mine));
    struct job b = { .n = 5 }, c = { .n = 7 };
    ASSERT_OK(goc_group_go(g1, group_maybe_panics, &b, NULL));
    ASSERT_OK(goc_group_go(g2, group_maybe_panics, &c, NULL));
    ASSERT_EQ(goc_group_wait(g1, NULL), GOC_EPANIC);
    ASSERT_EQ(goc_group_wait(g2, NULL), GOC_EPANIC);
    goc_group_free(g1);
    goc_group_free(g2);
    ASSERT_EQ(atomic_load(&t.calls), 2);   /* async, g2 */
    ASSERT_EQ(atomic_load(&own.calls), 1); /* g1 */
    ASSERT_EQ(atomic_load(&t.logged), 0);
    /* Detached (and so freed): panics are logged again. */
    ASSERT_OK(goc_recovery_set_default(NULL));
    ASSERT_OK(goc_future_async(task_maybe_panics, &a, NULL, NULL, &f));
    ASSERT_EQ(outcome(f), GOC_EPANIC);
    goc_future_release(f);
    ASSERT_EQ(atomic_load(&t.logged), 1);
    ASSERT_EQ(goc_recovery_count(mine, NULL), 1);
    goc_recovery_free(mine);
    goc_set_log_hook(NULL, NULL);
}

static void rethrow_from_a_pool(void)
{
    goc_recovery *h;
    goc_recovery_new(4, NULL, NULL, &h);
    goc_recovery_set_policy(h, GOC_RECOVER_RETHROW);
    goc_pool *p;
    goc_pool_new(NULL, &p);
    goc_pool_set_recovery(p, h);
    static struct job j = { .n = 9 };
    goc_pool_submit(p, maybe_panics, &j, NULL);
    goc_sleep(5 * GOC_SECOND, NULL); /* the panic ends the process first */
    exit(0);
}

static int rethrow_child(void *arg)
{
    (void)arg;
    rethrow_from_a_pool();
    return 0;
}

static void rethrow_main(void)
{
    goc_run(rethrow_child, NULL);
}

/* Go's default: an unrecovered panic in a worker ends the process. */
TEST(recovery, rethrow_policy_ends_the_process_from_a_worker)
{
    test_expect_exit(rethrow_main, 2, "task 9");
}

/* An async handler's callback: waits at a gate, then counts. */
struct gated {
    goc_chan *gate; /* closed to let callbacks through */
    _Atomic int calls;
    _Atomic int64_t on; /* the goroutine the callbacks run on */
};

static void gated_record(const struct goc_panic_record *r, void *arg)
{
    struct gated *g = arg;
    (void)r;
    goc_chan_recv(g->gate, NULL, NULL);
    atomic_store(&g->on, goc_id());
    atomic_fetch_add(&g->calls, 1);
}

static int panics_now(void *arg)
{
    goc_panic(-EIO, "async %d", *(int *)arg);
}

TEST_G(recovery, async_callbacks_never_hold_the_panicking_goroutine)
{
    struct gated g = { 0 };
    ASSERT_OK(goc_chan_new(0, 0, &g.gate));
    goc_recovery *h, *quiet;
    ASSERT_OK(goc_recovery_new(16, gated_record, &g, &h));
    ASSERT_OK(goc_recovery_new(16, NULL, NULL, &quiet));
    ASSERT_EQ(goc_recovery_set_async(NULL, 2), -EINVAL);
    ASSERT_EQ(goc_recovery_set_async(h, 0), -EINVAL);
    ASSERT_EQ(goc_recovery_set_async(quiet, 2), -EINVAL); /* no callback */
    ASSERT_OK(goc_recovery_set_async(h, 2));
    ASSERT_EQ(goc_recovery_set_async(h, 2), -EBUSY);
    /* Ten panics while every callback waits at the gate: none of them
     * waits, all are recorded, and what the queue cannot hold is
     * counted as dropped. */
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(goc_recovery_run(h, panics_now, &i), GOC_EPANIC);
    ASSERT_EQ(goc_recovery_count(h, NULL), 10);
    int64_t dropped = goc_recovery_dropped(h);
    ASSERT(dropped >= 7 && dropped <= 8);
    ASSERT_EQ(atomic_load(&g.calls), 0);
    /* The creator lets go first: the queued calls still happen. */
    goc_recovery_free(h);
    goc_chan_close(g.gate);
    for (int i = 0; i < 2000 && atomic_load(&g.calls) + dropped < 10; i++)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&g.calls) + dropped, 10);
    ASSERT_NE(atomic_load(&g.on), goc_id());
    goc_recovery_free(quiet);
    test_no_leaks(); /* the delivery goroutine has ended */
    goc_chan_release(g.gate);
}

static void alert(const struct goc_panic_record *r, void *arg)
{
    (void)arg;
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* an alert sent over a network */
    fprintf(stderr, "alert: %s\n", r->message);
}

static int fatal_panic(void *arg)
{
    (void)arg;
    goc_panic(-EIO, "fatal %d", 1);
}

static int rethrow_async_main(void *arg)
{
    (void)arg;
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(8, alert, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_RETHROW));
    ASSERT_OK(goc_recovery_set_async(h, 1));
    /* Fill the queue of one behind the alert being made: the fatal
     * panic must wait for room as well. */
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_CONTINUE));
    for (int i = 0; i < 2; i++)
        ASSERT_EQ(goc_recovery_run(h, panics_now, &i), GOC_EPANIC);
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_RETHROW));
    goc_recovery_run(h, fatal_panic, NULL);
    return 0;
}

static void rethrow_async_child(void)
{
    goc_run(rethrow_async_main, NULL);
}

/* The panic that ends the process waits for its own async callback: the
 * alert for it was lost with the process, while a sync handler made it. */
TEST(recovery, fatal_panic_waits_for_its_async_callback)
{
    test_expect_exit(rethrow_async_child, 2, "alert: fatal 1");
    test_expect_exit(rethrow_async_child, 2, "panic: fatal 1");
}

/* Counts callbacks and where they ran. */
struct spot {
    _Atomic int calls;
    _Atomic int64_t on;
};

static void spot_record(const struct goc_panic_record *r, void *arg)
{
    struct spot *s = arg;
    (void)r;
    atomic_store(&s->on, goc_id());
    atomic_fetch_add(&s->calls, 1);
}

static int async_fails_to_start(void *arg)
{
    (void)arg;
    struct spot s = { 0 };
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(8, spot_record, &s, &h));
    /* Each goroutine takes a slab of its own at this stack size, so the
     * delivery goroutine's spawn allocates: fail every allocation of the
     * set-up in turn. A failed set-up leaves a handler that calls back
     * on the spot, every time. */
    int failures = 0, rc, i = 0;
    for (int64_t n = 0;; n++) {
        goc__fault_after(n);
        rc = goc_recovery_set_async(h, 4);
        goc__fault_after(-1);
        if (rc == 0)
            break;
        ASSERT_EQ(rc, -ENOMEM);
        failures++;
        ASSERT_EQ(goc_recovery_run(h, panics_now, &i), GOC_EPANIC);
        ASSERT_EQ(atomic_load(&s.calls), failures);
        ASSERT_EQ(atomic_load(&s.on), goc_id());
    }
    ASSERT_GE(failures, 2); /* the queue, then the goroutine */
    ASSERT_EQ(goc_recovery_set_async(h, 4), -EBUSY);
    ASSERT_EQ(goc_recovery_run(h, panics_now, &i), GOC_EPANIC);
    for (int k = 0; k < 2000 && atomic_load(&s.calls) == failures; k++)
        goc_sleep(GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&s.calls), failures + 1);
    ASSERT_NE(atomic_load(&s.on), goc_id());
    ASSERT_EQ(goc_recovery_dropped(h), 0);
    goc_recovery_free(h);
    return 0;
}

TEST(recovery, async_set_up_that_cannot_spawn_leaves_calls_on_the_spot)
{
    test_run_with_spawns_that_allocate(async_fails_to_start);
}

/* singleflight's leader runs the function on its caller's goroutine:
 * with RETHROW it must retire the flight before panicking on, or the key
 * stays taken and every later caller waits for ever. */
static goc_sf *sf;

static int sf_leader(void *arg)
{
    struct job *j = arg;
    goc_future *f;
    goc_sf_do(sf, "k", task_maybe_panics, j, NULL, &f, NULL, NULL);
    return 0; /* not reached: the panic goes on */
}

static int sf_fine(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    (void)arg;
    *result = NULL;
    return 0;
}

TEST_G(recovery, singleflight_leader_rethrows_after_retiring_its_flight)
{
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_RETHROW));
    ASSERT_OK(goc_recovery_set_default(h));
    ASSERT_OK(goc_sf_new(&sf));
    struct job j = { .n = 1 };
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(sf_leader, &j, &p), GOC_EPANIC);
    ASSERT(p != NULL);
    ASSERT_STR(goc_panic_info_message(p), "task 1");
    goc_panic_info_free(p);
    ASSERT_EQ(goc_sf_joined(sf, "k"), 0); /* the key is free again */
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_timeout(NULL, 2 * GOC_SECOND, &ctx));
    goc_future *f;
    ASSERT_OK(goc_sf_do(sf, "k", sf_fine, NULL, NULL, &f, NULL, ctx));
    ASSERT_EQ(outcome(f), 0);
    goc_future_release(f);
    goc_ctx_release(ctx);
    ASSERT_EQ(goc_recovery_count(h, NULL), 1);
    goc_sf_free(sf);
    ASSERT_OK(goc_recovery_set_default(NULL));
    goc_recovery_free(h);
}

/* A task returning GOC_EPANIC of its own: no panic to show. */
static int task_returns_epanic(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx, (void)arg;
    *result = NULL;
    return GOC_EPANIC;
}

static void check_panic_handle(goc_future *f, int n)
{
    int status;
    ASSERT_OK(goc_future_get(f, &status, NULL, NULL));
    ASSERT_EQ(status, GOC_EPANIC);
    const goc_panic_info *p = goc_future_panic(f);
    ASSERT(p != NULL);
    char want[32];
    snprintf(want, sizeof(want), "task %d", n);
    ASSERT_STR(goc_panic_info_message(p), want);
    ASSERT_EQ(goc_panic_info_code(p), -EIO);
    char text[2048];
    ASSERT_GT(goc_panic_info_format(p, text, sizeof(text)), 0);
    ASSERT(strstr(text, "maybe_panics") != NULL); /* where it panicked */
}

/* singleflight's panics: every caller of the flight gets GOC_EPANIC and
 * the panic itself on its future, as Go panics again in every Do caller
 * (a goc_sf_do() leader, a goc_sf_do_async() leader, the joiners of
 * either kind). */
static goc_chan *sf_gate;

static int sf_gated_maybe_panics(goc_ctx *ctx, void *arg, void **result)
{
    goc_chan_recv(sf_gate, NULL, NULL);
    return task_maybe_panics(ctx, arg, result);
}

struct sf_joiner {
    goc_future *f;
    int rc;
    goc_wg wg;
};

static void sf_join(void *arg)
{
    struct sf_joiner *jn = arg;
    jn->rc = goc_sf_do(sf, "k", sf_gated_maybe_panics, NULL, NULL, &jn->f, NULL,
                       NULL);
    goc_wg_done(&jn->wg);
}

TEST_G(recovery, singleflight_every_caller_gets_the_panic)
{
    goc_recovery *quiet;
    ASSERT_OK(goc_recovery_new(8, NULL, NULL, &quiet));
    ASSERT_OK(goc_recovery_set_default(quiet)); /* keep the log clean */
    ASSERT_OK(goc_sf_new(&sf));
    struct job j = { .n = 5 };
    goc_future *f;
    ASSERT_OK(goc_sf_do(sf, "k", task_maybe_panics, &j, NULL, &f, NULL, NULL));
    check_panic_handle(f, 5); /* the goc_sf_do() leader's */
    goc_future_release(f);

    ASSERT_OK(goc_chan_new(0, 0, &sf_gate));
    goc_future *lead, *async_joiner;
    ASSERT_OK(
        goc_sf_do_async(sf, "k", sf_gated_maybe_panics, &j, NULL, &lead, NULL));
    ASSERT_OK(goc_sf_do_async(sf, "k", sf_gated_maybe_panics, NULL, NULL,
                              &async_joiner, NULL));
    struct sf_joiner jn = { 0 };
    goc_wg_init(&jn.wg);
    goc_wg_add(&jn.wg, 1);
    ASSERT_OK(goc_go(sf_join, &jn));
    WAIT_UNTIL(goc_sf_joined(sf, "k") == 2);
    goc_chan_close(sf_gate);
    goc_wg_wait(&jn.wg, NULL);
    ASSERT_OK(jn.rc);
    check_panic_handle(jn.f, 5);
    check_panic_handle(lead, 5);
    check_panic_handle(async_joiner, 5);
    goc_future_release(jn.f);
    goc_future_release(lead);
    goc_future_release(async_joiner);
    goc_chan_release(sf_gate);
    goc_sf_free(sf);
    ASSERT_OK(goc_recovery_set_default(NULL));
    goc_recovery_free(quiet);
}

/*
 * A task's panic is there on its handle: message, code and backtrace, for
 * goc_future_async(), run-with-timeout and a worker pool (seed D-022a,
 * D-090: a panic became a bare error, its stack lost to the caller).
 */
TEST_G(recovery, panicking_task_handle_carries_its_panic_d022a_d090)
{
    goc_recovery *quiet;
    ASSERT_OK(goc_recovery_new(8, NULL, NULL, &quiet));
    ASSERT_OK(goc_recovery_set_default(quiet)); /* keep the log clean */
    struct job j = { .n = 3 }, even = { .n = 2 };
    goc_future *f;
    ASSERT_OK(goc_future_async(task_maybe_panics, &j, NULL, NULL, &f));
    check_panic_handle(f, 3);
    goc_future_release(f);
    ASSERT_OK(goc_future_async(task_maybe_panics, &even, NULL, NULL, &f));
    ASSERT_EQ(outcome(f), 0);
    ASSERT(goc_future_panic(f) == NULL);
    goc_future_release(f);
    ASSERT_OK(goc_future_async(task_returns_epanic, NULL, NULL, NULL, &f));
    ASSERT_EQ(outcome(f), GOC_EPANIC);
    ASSERT(goc_future_panic(f) == NULL); /* returned, not panicked */
    goc_future_release(f);

    goc_workerpool *p;
    ASSERT_OK(goc_workerpool_new(NULL, &p));
    ASSERT_OK(goc_workerpool_submit(p, task_maybe_panics, &j, NULL, &f, NULL));
    check_panic_handle(f, 3);
    goc_future_release(f);
    goc_workerpool_free(p);

    ASSERT_EQ(
        goc_run_timeout(task_maybe_panics, &j, NULL, NULL, GOC_SECOND, 0, NULL),
        GOC_EPANIC);
    ASSERT(goc_future_panic(NULL) == NULL);
    ASSERT_OK(goc_recovery_set_default(NULL));
    goc_recovery_free(quiet);
}

struct gated_job {
    struct job j;
    goc_chan *gate;
};

static int gated_maybe_panics(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    *result = NULL;
    struct gated_job *g = arg;
    goc_chan_recv(g->gate, NULL, NULL);
    return maybe_panics(&g->j);
}

static int replacement_cannot_start(void *arg)
{
    (void)arg;
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_WORKER_EXIT));
    goc_workerpool *p;
    struct goc_workerpool_config cfg = { .max_workers = 1 };
    ASSERT_OK(goc_workerpool_new(&cfg, &p));
    ASSERT_OK(goc_workerpool_set_recovery(p, h));
    static struct gated_job a;
    a.j.n = 1;
    ASSERT_OK(goc_chan_new(0, 0, &a.gate));
    goc_future *fa, *fb;
    ASSERT_OK(
        goc_workerpool_submit(p, gated_maybe_panics, &a, NULL, &fa, NULL));
    struct job b = { .n = 2 };
    ASSERT_OK(goc_workerpool_submit(p, task_maybe_panics, &b, NULL, &fb, NULL));
    struct goc_workerpool_stats st;
    do {
        goc_sleep(100 * GOC_MICROSECOND, NULL);
        ASSERT_OK(goc_workerpool_stats(p, &st));
    } while (st.running < 1);
    /* No goroutine has ended yet, so none is cached: the replacement's
     * spawn allocates, and fails. */
    goc__fault_after(0);
    goc_chan_close(a.gate);
    ASSERT_EQ(outcome(fa), GOC_EPANIC);
    ASSERT_EQ(outcome(fb), 0);
    goc__fault_after(-1);
    /* The worker could not be replaced: it went on to the next task. */
    ASSERT_EQ(atomic_load(&a.j.gid), atomic_load(&b.gid));
    ASSERT_OK(goc_workerpool_wait_idle(p, NULL));
    ASSERT_OK(goc_workerpool_stats(p, &st));
    ASSERT_EQ(st.panicked, 1);
    ASSERT_EQ(st.workers_replaced, 0); /* none left */
    ASSERT_EQ(st.workers, 1);
    goc_future_release(fa);
    goc_future_release(fb);
    ASSERT_OK(goc_workerpool_stop_wait(p, NULL));
    goc_workerpool_free(p);
    goc_recovery_free(h);
    goc_chan_release(a.gate);
    return 0;
}

/* A worker whose replacement cannot start goes on itself, and is not
 * counted as replaced. */
TEST(recovery, workerpool_worker_not_replaced_is_not_counted)
{
    test_run_with_spawns_that_allocate(replacement_cannot_start);
}
