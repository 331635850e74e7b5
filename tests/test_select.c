/* SPDX-License-Identifier: MIT */
/* Tests of goc_select. */
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

static goc_chan *chan_new(size_t elem, size_t cap)
{
    goc_chan *c = NULL;
    ASSERT_OK(goc_chan_new(elem, cap, &c));
    return c;
}

static struct goc_select_case recv_case(goc_chan *c, void *elem)
{
    return (struct goc_select_case){ c, GOC_SELECT_RECV, elem, 99 };
}

static struct goc_select_case send_case(goc_chan *c, void *elem)
{
    return (struct goc_select_case){ c, GOC_SELECT_SEND, elem, 99 };
}

TEST(select, bad_input)
{
    struct goc_select_case cs[1] = { { NULL, 7, NULL, 0 } };
    ASSERT_EQ(goc_select(cs, 1, 0, NULL), -EINVAL);
    ASSERT_EQ(goc_select(NULL, 1, 0, NULL), -EINVAL);
    ASSERT_EQ(goc_select(cs, -1, 0, NULL), -EINVAL);
    ASSERT_EQ(goc_select(cs, 5000, 0, NULL), -EINVAL);
    ASSERT_EQ(goc_select(NULL, 0, GOC_SELECT_DEFAULT, NULL), -EAGAIN);
    /* Unknown flag bits are refused, as the pools' and futures' are. */
    ASSERT_EQ(goc_select(NULL, 0, GOC_SELECT_DEFAULT | 8u, NULL), -EINVAL);
}

TEST(select, default_and_null_channels)
{
    int v = 1;
    goc_chan *c = chan_new(sizeof(int), 0);
    struct goc_select_case cs[3] = { recv_case(NULL, &v), send_case(NULL, &v),
                                     recv_case(c, &v) };
    /* NULL channels are never ready; c has no sender. */
    ASSERT_EQ(goc_select(cs, 3, GOC_SELECT_DEFAULT, NULL), -EAGAIN);
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_select(cs, 2, 0, ctx), -ETIMEDOUT); /* only NULLs */
    goc_ctx_destroy(ctx);
    goc_chan_release(c);
}

TEST(select, closed_channels_are_ready)
{
    int v = 5;
    goc_chan *a = chan_new(sizeof(int), 0), *b = chan_new(sizeof(int), 0);
    goc_chan_close(a);
    struct goc_select_case cs[2] = { recv_case(a, &v), send_case(b, &v) };
    ASSERT_EQ(goc_select(cs, 2, 0, NULL), 0);
    ASSERT_EQ(cs[0].result, 0); /* closed */
    ASSERT_EQ(v, 0);            /* zeroed */
    goc_chan_close(b);
    cs[0].chan = NULL;
    ASSERT_EQ(goc_select(cs, 2, 0, NULL), 1);
    ASSERT_EQ(cs[1].result, -EPIPE);
    goc_chan_release(a);
    goc_chan_release(b);
}

TEST(select, priority_takes_first_ready)
{
    goc_chan *c[3];
    int v[3];
    struct goc_select_case cs[3];
    for (int i = 0; i < 3; i++) {
        c[i] = chan_new(sizeof(int), 1);
        ASSERT_OK(goc_chan_try_send(c[i], &i));
        cs[i] = recv_case(c[i], &v[i]);
    }
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(goc_select(cs, 3, GOC_SELECT_PRIORITY, NULL), i);
        ASSERT_EQ(v[i], i);
        ASSERT_EQ(cs[i].result, 1);
    }
    for (int i = 0; i < 3; i++)
        goc_chan_release(c[i]);
}

TEST(select, random_choice_is_fair)
{
    enum { K = 4, ROUNDS = 40000 };
    goc_chan *c[K];
    int v[K], hits[K] = { 0 };
    struct goc_select_case cs[K];
    for (int i = 0; i < K; i++) {
        c[i] = chan_new(sizeof(int), 1);
        cs[i] = recv_case(c[i], &v[i]);
    }
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < K; i++)
            goc_chan_try_send(c[i], &i); /* keep every case ready */
        int k = goc_select(cs, K, 0, NULL);
        ASSERT(k >= 0 && k < K);
        hits[k]++;
    }
    /* Expected 10,000 each; 9,000..11,000 is over 20 standard deviations. */
    for (int i = 0; i < K; i++) {
        fprintf(stderr, "case %d: %d\n", i, hits[i]);
        ASSERT_GT(hits[i], ROUNDS / K * 9 / 10);
        ASSERT_LT(hits[i], ROUNDS / K * 11 / 10);
    }
    for (int i = 0; i < K; i++)
        goc_chan_release(c[i]);
}

struct sender {
    goc_chan *c;
    int value;
    int64_t delay;
};

static void send_later(void *arg)
{
    struct sender *s = arg;
    goc_sleep(s->delay, NULL);
    ASSERT_OK(goc_chan_send(s->c, &s->value, NULL));
}

TEST_G(select, blocks_until_a_case_is_ready)
{
    goc_chan *a = chan_new(sizeof(int), 0), *b = chan_new(sizeof(int), 0);
    struct sender s = { b, 42, 10 * GOC_MILLISECOND };
    ASSERT_OK(goc_go(send_later, &s));
    int va = 0, vb = 0;
    struct goc_select_case cs[2] = { recv_case(a, &va), recv_case(b, &vb) };
    ASSERT_EQ(goc_select(cs, 2, 0, NULL), 1);
    ASSERT_EQ(vb, 42);
    ASSERT_EQ(va, 0);
    ASSERT_EQ(cs[1].result, 1);
    /* The record queued on a was removed: a is free of waiters. */
    ASSERT_EQ(goc_chan_try_send(a, &va), -EAGAIN);
    goc_chan_release(a);
    goc_chan_release(b);
}

TEST_G(select, ctx_timeout_and_cancel)
{
    goc_chan *a = chan_new(sizeof(int), 0);
    int v = 0;
    struct goc_select_case cs[1] = { recv_case(a, &v) };
    goc_ctx_local l;
    int64_t t0 = goc_now();
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 10 * GOC_MILLISECOND);
    ASSERT_EQ(goc_select(cs, 1, 0, ctx), -ETIMEDOUT);
    ASSERT_GE(goc_now() - t0, 10 * GOC_MILLISECOND);
    ASSERT_EQ(cs[0].result, 99); /* no case ran */
    /* Done at entry: fails even though a case is ready. */
    goc_chan *b = chan_new(sizeof(int), 1);
    goc_chan_try_send(b, &v);
    cs[0].chan = b;
    ASSERT_EQ(goc_select(cs, 1, 0, ctx), -ETIMEDOUT);
    ASSERT_EQ(goc_chan_len(b), 1);
    goc_ctx_destroy(ctx);
    goc_chan_release(a);
    goc_chan_release(b);
}

TEST_G(select, done_channel_as_a_case)
{
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_timeout(NULL, 10 * GOC_MILLISECOND, &ctx));
    goc_chan *work = chan_new(sizeof(int), 0);
    int v;
    struct goc_select_case cs[2] = { recv_case(work, &v),
                                     recv_case(goc_ctx_done(ctx), NULL) };
    ASSERT(cs[1].chan != NULL);
    ASSERT_EQ(goc_select(cs, 2, 0, NULL), 1);
    ASSERT_EQ(cs[1].result, 0); /* closed */
    ASSERT_EQ(goc_ctx_err(ctx), -ETIMEDOUT);
    ASSERT(goc_ctx_done(NULL) == NULL);
    ASSERT(goc_ctx_done(goc_ctx_background()) == NULL);
    goc_ctx_release(ctx);
    goc_chan_release(work);
}

struct sel_stress {
    goc_chan *a, *b, *out;
    int64_t per;
    _Atomic int64_t sum, count;
    goc_wg senders, movers;
};

/* Sends alternately through a select over a and b. */
static void select_sender(void *arg)
{
    struct sel_stress *s = arg;
    for (int64_t i = 1; i <= s->per; i++) {
        struct goc_select_case cs[2] = { send_case(s->a, &i),
                                         send_case(s->b, &i) };
        int k = goc_select(cs, 2, 0, NULL);
        ASSERT(k == 0 || k == 1);
        ASSERT_EQ(cs[k].result, 0);
    }
    goc_wg_done(&s->senders);
}

/* Receives from either with a select until both are closed. */
/* Account case k's outcome: a value, or a close that drops the case
 * (Go's nil-channel idiom). */
static void count_received(struct sel_stress *s,
                           const struct goc_select_case *cs,
                           int k,
                           int64_t v,
                           goc_chan **a,
                           goc_chan **b)
{
    ASSERT(k == 0 || k == 1);
    if (cs[k].result == 0) {
        *(k == 0 ? a : b) = NULL;
        return;
    }
    atomic_fetch_add(&s->sum, v);
    atomic_fetch_add(&s->count, 1);
}

static void select_receiver(struct sel_stress *s)
{
    goc_chan *a = s->a, *b = s->b;
    int64_t v;
    while (a || b) {
        struct goc_select_case cs[2] = { recv_case(a, &v), recv_case(b, &v) };
        int k = goc_select(cs, 2, 0, NULL);
        count_received(s, cs, k, v, &a, &b);
    }
}

static void receiver_g(void *arg)
{
    select_receiver(arg);
    goc_wg_done(&((struct sel_stress *)arg)->movers);
}

static void *receiver_t(void *arg)
{
    select_receiver(arg);
    goc_wg_done(&((struct sel_stress *)arg)->movers);
    return NULL;
}

/* Receives with selects whose short deadlines race the wake-ups. */
static void select_receiver_timed(struct sel_stress *s)
{
    goc_chan *a = s->a, *b = s->b;
    int64_t v;
    bool timed_out = false;
    for (int64_t round = 0; a || b; round++) {
        struct goc_select_case cs[2] = { recv_case(a, &v), recv_case(b, &v) };
        goc_ctx_local l;
        /* After a timeout (at once, on a slow machine) wait for good. */
        goc_ctx *ctx =
            timed_out ? NULL
                      : goc_ctx_init_timeout(&l, NULL,
                                             (1 + round % 5) * GOC_MICROSECOND);
        int k = goc_select(cs, 2, 0, ctx);
        if (ctx)
            goc_ctx_destroy(ctx);
        timed_out = k == -ETIMEDOUT;
        if (!timed_out)
            count_received(s, cs, k, v, &a, &b);
    }
}

static void receiver_timed_g(void *arg)
{
    select_receiver_timed(arg);
    goc_wg_done(&((struct sel_stress *)arg)->movers);
}

/*
 * Run the stress: senders, receiver goroutines (every other one with
 * deadlines if @timed) and one plain-thread receiver; every value must
 * arrive exactly once and nobody be left parked.
 */
static void run_stress(struct sel_stress *s,
                       int senders,
                       int receivers,
                       bool timed)
{
    goc_wg_add(&s->senders, senders);
    goc_wg_add(&s->movers, receivers + 1);
    for (int i = 0; i < senders; i++)
        ASSERT_OK(goc_go(select_sender, s));
    for (int i = 0; i < receivers; i++)
        ASSERT_OK(goc_go(timed && i % 2 ? receiver_timed_g : receiver_g, s));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, receiver_t, s));
    goc_wg_wait(&s->senders, NULL);
    goc_chan_close(s->a);
    goc_chan_close(s->b);
    goc_wg_wait(&s->movers, NULL);
    test_join(t, NULL);
    ASSERT_EQ(atomic_load(&s->count), senders * s->per);
    ASSERT_EQ(atomic_load(&s->sum), senders * s->per * (s->per + 1) / 2);
    goc_chan_release(s->a);
    goc_chan_release(s->b);
}

TEST_G(select, stress_exactly_once)
{
    struct sel_stress s = { .a = chan_new(sizeof(int64_t), 0),
                            .b = chan_new(sizeof(int64_t), 16),
                            .per = test_scale(50000) };
    run_stress(&s, 6, 5, false);
}

TEST_G(select, many_cases_allocate)
{
    enum { N = 40 };
    goc_chan *c[N];
    int v[N];
    struct goc_select_case cs[N];
    for (int i = 0; i < N; i++) {
        c[i] = chan_new(sizeof(int), 1);
        cs[i] = recv_case(c[i], &v[i]);
    }
    int x = 77;
    goc_chan_try_send(c[N - 1], &x);
    ASSERT_EQ(goc_select(cs, N, 0, NULL), N - 1);
    ASSERT_EQ(v[N - 1], 77);
    /* The same channel twice in one select is fine. */
    cs[0].chan = cs[1].chan = c[3];
    goc_chan_try_send(c[3], &x);
    int k = goc_select(cs, 4, 0, NULL);
    ASSERT(k == 0 || k == 1 || k == 3);
    for (int i = 0; i < N; i++)
        goc_chan_release(c[i]);
}

struct closer {
    goc_chan *c;
    int64_t after;
};

static void close_later(void *arg)
{
    struct closer *k = arg;
    goc_sleep(k->after, NULL);
    goc_chan_close(k->c);
}

TEST_G(select, close_while_waiting)
{
    goc_chan *a = chan_new(sizeof(int), 0), *b = chan_new(sizeof(int), 0);
    struct closer k = { b, 10 * GOC_MILLISECOND };
    ASSERT_OK(goc_go(close_later, &k));
    int va = 1, vb = 1;
    struct goc_select_case cs[2] = { recv_case(a, &va), recv_case(b, &vb) };
    ASSERT_EQ(goc_select(cs, 2, 0, NULL), 1);
    ASSERT_EQ(cs[1].result, 0);
    ASSERT_EQ(vb, 0); /* zeroed */
    ASSERT_EQ(va, 1);
    /* A blocked send case is woken by the close with -EPIPE. */
    goc_chan *c = chan_new(sizeof(int), 0);
    k.c = c;
    ASSERT_OK(goc_go(close_later, &k));
    struct goc_select_case ss[2] = { recv_case(a, &va), send_case(c, &va) };
    ASSERT_EQ(goc_select(ss, 2, 0, NULL), 1);
    ASSERT_EQ(ss[1].result, -EPIPE);
    goc_chan_release(a);
    goc_chan_release(b);
    goc_chan_release(c);
}

TEST_G(select, cancel_while_waiting)
{
    goc_chan *a = chan_new(sizeof(int), 0);
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    test_cancel_after(ctx, 10 * GOC_MILLISECOND);
    int v = 0;
    struct goc_select_case cs[2] = { recv_case(a, &v), send_case(a, &v) };
    ASSERT_EQ(goc_select(cs, 2, 0, ctx), -ECANCELED);
    ASSERT_EQ(cs[0].result, 99);
    ASSERT_EQ(cs[1].result, 99);
    /* Both records left a's queues. */
    ASSERT_EQ(goc_chan_try_send(a, &v), -EAGAIN);
    ASSERT_EQ(goc_chan_try_recv(a, &v), -EAGAIN);
    goc_ctx_release(ctx);
    goc_chan_release(a);
}

struct thread_select {
    goc_chan *c;
    goc_ctx *ctx;
    int rc;
};

static void *thread_select_fn(void *arg)
{
    struct thread_select *t = arg;
    int v;
    struct goc_select_case cs[1] = { recv_case(t->c, &v) };
    t->rc = goc_select(cs, 1, 0, t->ctx);
    return NULL;
}

TEST(select, plain_thread_timeout)
{
    goc_chan *a = chan_new(sizeof(int), 0);
    goc_ctx_local l;
    struct thread_select t = { a, NULL, 99 };
    t.ctx = goc_ctx_init_timeout(&l, NULL, 10 * GOC_MILLISECOND);
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, thread_select_fn, &t));
    test_join(th, NULL);
    ASSERT_EQ(t.rc, -ETIMEDOUT);
    goc_ctx_destroy(t.ctx);
    goc_chan_release(a);
}

/*
 * Buffered channels of capacity 1 and 2, so most selects park: senders
 * and receivers are all selects, some with deadlines that end as a peer
 * wakes them, one a plain thread. Every value arrives exactly once and
 * nobody is left parked.
 */
TEST_G(select, stress_small_buffers_with_deadlines)
{
    struct sel_stress s = { .a = chan_new(sizeof(int64_t), 1),
                            .b = chan_new(sizeof(int64_t), 2),
                            .per = test_scale(30000) };
    run_stress(&s, 4, 4, true);
}
