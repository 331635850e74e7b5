/* SPDX-License-Identifier: MIT */
/* Tests of channels: Go's semantics, blocking, cancellation, stress. */
#include "test.h"
#include "../src/chan/chan.h" /* its queues, to see a call blocked */

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static goc_chan *chan_new(size_t elem, size_t cap)
{
    goc_chan *c = NULL;
    ASSERT_OK(goc_chan_new(elem, cap, &c));
    return c;
}

/* ---- the semantics table ---------------------------------------------- */

TEST(chan, semantics_unbuffered)
{
    goc_chan *c = chan_new(sizeof(int), 0);
    int v = 7;
    ASSERT_EQ(goc_chan_cap(c), 0);
    ASSERT_EQ(goc_chan_len(c), 0);
    ASSERT_EQ(goc_chan_elem_size(c), sizeof(int));
    ASSERT_EQ(goc_chan_try_send(c, &v), -EAGAIN); /* nobody receives */
    ASSERT_EQ(goc_chan_try_recv(c, &v), -EAGAIN); /* nobody sends */
    ASSERT_OK(goc_chan_close(c));
    ASSERT_EQ(goc_chan_close(c), GOC_EMISUSE);
    ASSERT_EQ(goc_chan_try_send(c, &v), -EPIPE);
    ASSERT_EQ(goc_chan_send(c, &v, NULL), -EPIPE);
    v = 7;
    ASSERT_EQ(goc_chan_try_recv(c, &v), 0);
    ASSERT_EQ(v, 0); /* zeroed: closed and drained */
    v = 7;
    ASSERT_EQ(goc_chan_recv(c, &v, NULL), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(goc_chan_len(c), 0);
    goc_chan_release(c);
}

TEST(chan, semantics_buffered)
{
    goc_chan *c = chan_new(sizeof(int), 3);
    ASSERT_EQ(goc_chan_cap(c), 3);
    for (int i = 1; i <= 3; i++)
        ASSERT_OK(goc_chan_try_send(c, &i));
    int v = 4;
    ASSERT_EQ(goc_chan_try_send(c, &v), -EAGAIN);
    ASSERT_EQ(goc_chan_len(c), 3);
    ASSERT_EQ(goc_chan_try_recv(c, &v), 1);
    ASSERT_EQ(v, 1);
    v = 4;
    ASSERT_OK(goc_chan_send(c, &v, NULL)); /* room again: no block */
    ASSERT_OK(goc_chan_close(c));
    ASSERT_EQ(goc_chan_send(c, &v, NULL), -EPIPE);
    ASSERT_EQ(goc_chan_len(c), 3);
    /* Buffered values survive the close, in order. */
    for (int want = 2; want <= 4; want++) {
        ASSERT_EQ(goc_chan_recv(c, &v, NULL), 1);
        ASSERT_EQ(v, want);
    }
    ASSERT_EQ(goc_chan_recv(c, &v, NULL), 0);
    ASSERT_EQ(goc_chan_recv(c, NULL, NULL), 0);
    ASSERT_EQ(goc_chan_close(c), GOC_EMISUSE);
    goc_chan_release(c);
}

TEST(chan, semantics_null_and_bad_input)
{
    int v = 1;
    goc_chan *c = NULL;
    ASSERT_EQ(goc_chan_new(4, 1, NULL), -EINVAL);
    ASSERT_EQ(goc_chan_new(SIZE_MAX / 2, 4, &c), -EINVAL);
    ASSERT(c == NULL);
    ASSERT_EQ(goc_chan_send(NULL, &v, NULL), -EINVAL);
    ASSERT_EQ(goc_chan_recv(NULL, &v, NULL), -EINVAL);
    ASSERT_EQ(goc_chan_try_send(NULL, &v), -EINVAL);
    ASSERT_EQ(goc_chan_try_recv(NULL, &v), -EINVAL);
    ASSERT_EQ(goc_chan_close(NULL), GOC_EMISUSE);
    ASSERT_EQ(goc_chan_len(NULL), 0);
    ASSERT_EQ(goc_chan_cap(NULL), 0);
    goc_chan_release(NULL);
    ASSERT(goc_chan_retain(NULL) == NULL);
}

static int close_null(void *arg)
{
    (void)arg;
    return goc_chan_close(NULL);
}

/* Closing no channel is misuse like any other close that Go panics on:
 * GOC_ABORT_ON_MISUSE=1 turns it into a panic too. */
TEST_G(chan, close_of_null_is_reported_as_misuse)
{
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(close_null, NULL, &p), GOC_EMISUSE);
    setenv("GOC_ABORT_ON_MISUSE", "1", 1);
    int rc = goc_try(close_null, NULL, &p);
    unsetenv("GOC_ABORT_ON_MISUSE");
    ASSERT_EQ(rc, GOC_EPANIC);
    ASSERT(p != NULL);
    ASSERT_EQ(goc_panic_info_code(p), GOC_EMISUSE);
    ASSERT(strstr(goc_panic_info_message(p), "goc_chan_close"));
    goc_panic_info_free(p);
}

/* A send with no value to copy from crashed in memcpy; it is -EINVAL,
 * nothing sent, on every kind of channel and in select. */
TEST(chan, send_of_a_null_value_is_refused)
{
    goc_chan *buf = chan_new(sizeof(int), 2), *unbuf = chan_new(sizeof(int), 0);
    goc_chan *sig = chan_new(0, 1);
    goc_chan *chans[] = { buf, unbuf };
    for (int i = 0; i < 2; i++) {
        ASSERT_EQ(goc_chan_send(chans[i], NULL, NULL), -EINVAL);
        ASSERT_EQ(goc_chan_try_send(chans[i], NULL), -EINVAL);
        struct goc_select_case cs = { .chan = chans[i], .op = GOC_SELECT_SEND };
        ASSERT_EQ(goc_select(&cs, 1, GOC_SELECT_DEFAULT, NULL), -EINVAL);
        ASSERT_EQ(goc_chan_len(chans[i]), 0);
    }
    ASSERT_OK(goc_chan_send(sig, NULL, NULL)); /* nothing to copy: fine */
    ASSERT_EQ(goc_chan_len(sig), 1);
    goc_chan_release(buf);
    goc_chan_release(unbuf);
    goc_chan_release(sig);
}

TEST(chan, signal_channel_of_size_zero)
{
    goc_chan *c = chan_new(0, 2);
    ASSERT_OK(goc_chan_try_send(c, NULL));
    ASSERT_OK(goc_chan_try_send(c, NULL));
    ASSERT_EQ(goc_chan_try_send(c, NULL), -EAGAIN);
    ASSERT_EQ(goc_chan_len(c), 2);
    ASSERT_EQ(goc_chan_recv(c, NULL, NULL), 1);
    goc_chan_close(c);
    ASSERT_EQ(goc_chan_recv(c, NULL, NULL), 1);
    ASSERT_EQ(goc_chan_recv(c, NULL, NULL), 0);
    goc_chan_release(c);
}

/*
 * Values of many sizes through a buffered ring: one word is copied
 * inline, other sizes out of line, and a receive into NULL drops the
 * value. A producer goroutine and a plain thread share one small ring, so
 * both the first-try paths and the retrying ones run.
 */
#define SIZES_N 2000

struct sized {
    goc_chan *c;
    size_t size;
    int from;
    goc_wg done;
};

static void fill_pattern(unsigned char *v, size_t size, int i)
{
    for (size_t k = 0; k < size; k++)
        v[k] = (unsigned char)(i * 31 + (int)k);
}

static void sized_send(struct sized *s)
{
    unsigned char v[100];
    for (int i = s->from; i < s->from + SIZES_N; i += 2) {
        fill_pattern(v, s->size, i);
        ASSERT_OK(goc_chan_send(s->c, v, NULL));
    }
}

static void sized_goroutine(void *arg)
{
    struct sized *s = arg;
    sized_send(s);
    goc_wg_done(&s->done);
}

static void *sized_thread(void *arg)
{
    sized_send(arg);
    return NULL;
}

TEST_G(chan, buffered_values_of_every_size_round_trip)
{
    static const size_t sizes[] = { 1, 4, 8, 12, 16, 24, 100 };
    for (size_t z = 0; z < sizeof(sizes) / sizeof(sizes[0]); z++) {
        size_t size = sizes[z];
        struct sized even = { chan_new(size, 3), size, 0, GOC_WG_INIT };
        struct sized odd = { even.c, size, 1, GOC_WG_INIT };
        goc_wg_add(&even.done, 1);
        ASSERT_OK(goc_go(sized_goroutine, &even));
        pthread_t t;
        ASSERT_OK(pthread_create(&t, NULL, sized_thread, &odd));
        /* Each sender's values arrive in its order: every value is the
         * next of one of the two streams. */
        int next[2] = { 0, 1 };
        unsigned char v[100], want[100];
        for (int got = 0; got < SIZES_N - 1; got++) {
            ASSERT_EQ(goc_chan_recv(even.c, v, NULL), 1);
            int k = 0;
            fill_pattern(want, size, next[0]);
            if (next[0] >= SIZES_N || memcmp(v, want, size) != 0) {
                k = 1;
                fill_pattern(want, size, next[1]);
                ASSERT(next[1] < SIZES_N && memcmp(v, want, size) == 0);
            }
            next[k] += 2;
        }
        ASSERT_EQ(next[0] + next[1], 2 * SIZES_N - 1);
        /* The last value is dropped into NULL. */
        ASSERT_EQ(goc_chan_recv(even.c, NULL, NULL), 1);
        ASSERT_OK(test_join(t, NULL));
        ASSERT_OK(goc_wg_wait(&even.done, NULL));
        ASSERT_EQ(goc_chan_len(even.c), 0);
        goc_chan_release(even.c);
    }
}

/* ---- hand-offs between goroutines ------------------------------------- */

struct pp {
    goc_chan *ping, *pong;
    int rounds;
    goc_wg wg;
};

static void ponger(void *arg)
{
    struct pp *p = arg;
    int v;
    for (int i = 0; i < p->rounds; i++) {
        ASSERT_EQ(goc_chan_recv(p->ping, &v, NULL), 1);
        v++;
        ASSERT_OK(goc_chan_send(p->pong, &v, NULL));
    }
    goc_wg_done(&p->wg);
}

TEST_G(chan, unbuffered_pingpong)
{
    struct pp p = { chan_new(sizeof(int), 0), chan_new(sizeof(int), 0),
                    (int)test_scale(100000), GOC_WG_INIT };
    goc_wg_add(&p.wg, 1);
    ASSERT_OK(goc_go(ponger, &p));
    for (int i = 0; i < p.rounds; i++) {
        int v = i;
        ASSERT_OK(goc_chan_send(p.ping, &v, NULL));
        ASSERT_EQ(goc_chan_recv(p.pong, &v, NULL), 1);
        ASSERT_EQ(v, i + 1);
    }
    goc_wg_wait(&p.wg, NULL);
    goc_chan_release(p.ping);
    goc_chan_release(p.pong);
}

/* Plain threads on both ends of a goroutine relay. */
static void *thread_producer(void *arg)
{
    goc_chan *c = arg;
    for (int i = 1; i <= 1000; i++)
        ASSERT_OK(goc_chan_send(c, &i, NULL));
    goc_chan_close(c);
    return NULL;
}

struct relay {
    goc_chan *in, *out;
};

static void relay_fn(void *arg)
{
    struct relay *r = arg;
    int v;
    while (goc_chan_recv(r->in, &v, NULL) > 0)
        ASSERT_OK(goc_chan_send(r->out, &v, NULL));
    goc_chan_close(r->out);
}

TEST(chan, plain_threads_on_both_ends)
{
    struct relay r = { chan_new(sizeof(int), 0), chan_new(sizeof(int), 4) };
    pthread_t t;
    ASSERT_OK(goc_go(relay_fn, &r));
    ASSERT_OK(pthread_create(&t, NULL, thread_producer, r.in));
    long sum = 0;
    int v, n = 0;
    while (goc_chan_recv(r.out, &v, NULL) > 0) {
        sum += v;
        n++;
    }
    test_join(t, NULL);
    ASSERT_EQ(n, 1000);
    ASSERT_EQ(sum, 1000 * 1001 / 2);
    test_no_leaks();
    goc_chan_release(r.in);
    goc_chan_release(r.out);
}

/* ---- close wakes everyone --------------------------------------------- */

struct closing {
    goc_chan *c;
    goc_wg started, done;
    _Atomic int recv_closed, send_pipe;
};

static void blocked_receiver(void *arg)
{
    struct closing *s = arg;
    int v = 5;
    goc_wg_done(&s->started);
    if (goc_chan_recv(s->c, &v, NULL) == 0 && v == 0)
        atomic_fetch_add(&s->recv_closed, 1);
    goc_wg_done(&s->done);
}

static void blocked_sender(void *arg)
{
    struct closing *s = arg;
    int v = 5;
    goc_wg_done(&s->started);
    if (goc_chan_send(s->c, &v, NULL) == -EPIPE)
        atomic_fetch_add(&s->send_pipe, 1);
    goc_wg_done(&s->done);
}

TEST_G(chan, close_wakes_blocked_receivers)
{
    struct closing s = { .c = chan_new(sizeof(int), 0) };
    int n = 200;
    goc_wg_add(&s.started, n);
    goc_wg_add(&s.done, n);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(blocked_receiver, &s));
    goc_wg_wait(&s.started, NULL);
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT_OK(goc_chan_close(s.c));
    goc_wg_wait(&s.done, NULL);
    ASSERT_EQ(atomic_load(&s.recv_closed), n);
    goc_chan_release(s.c);
}

TEST_G(chan, close_wakes_blocked_senders)
{
    struct closing s = { .c = chan_new(sizeof(int), 1) };
    int n = 200, v = 1;
    ASSERT_OK(goc_chan_send(s.c, &v, NULL)); /* full: senders block */
    goc_wg_add(&s.started, n);
    goc_wg_add(&s.done, n);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(blocked_sender, &s));
    goc_wg_wait(&s.started, NULL);
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    ASSERT_OK(goc_chan_close(s.c));
    goc_wg_wait(&s.done, NULL);
    ASSERT_EQ(atomic_load(&s.send_pipe), n);
    /* The value buffered before the close is still there. */
    ASSERT_EQ(goc_chan_recv(s.c, &v, NULL), 1);
    ASSERT_EQ(v, 1);
    ASSERT_EQ(goc_chan_recv(s.c, &v, NULL), 0);
    goc_chan_release(s.c);
}

/* ---- cancellation ------------------------------------------------------ */

TEST_G(chan, recv_timeout_leaves_channel_intact)
{
    goc_chan *c = chan_new(sizeof(int), 0);
    goc_ctx_local l;
    int v = 3;
    int64_t t0 = goc_now();
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 20 * GOC_MILLISECOND);
    ASSERT_EQ(goc_chan_recv(c, &v, ctx), -ETIMEDOUT);
    ASSERT_GE(goc_now() - t0, 20 * GOC_MILLISECOND);
    ASSERT_EQ(v, 3);                                  /* untouched */
    ASSERT_EQ(goc_chan_send(c, &v, ctx), -ETIMEDOUT); /* done at entry */
    goc_ctx_destroy(ctx);
    /* No stale waiter was left behind: a try_send finds no receiver. */
    ASSERT_EQ(goc_chan_try_send(c, &v), -EAGAIN);
    goc_chan_release(c);
}

TEST_G(chan, send_timeout_leaves_channel_intact)
{
    goc_chan *c = chan_new(sizeof(int), 1);
    int v = 1, w = 2;
    ASSERT_OK(goc_chan_send(c, &v, NULL));
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 10 * GOC_MILLISECOND);
    ASSERT_EQ(goc_chan_send(c, &w, ctx), -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    ASSERT_EQ(goc_chan_len(c), 1);
    ASSERT_EQ(goc_chan_try_recv(c, &v), 1);
    ASSERT_EQ(v, 1);
    ASSERT_EQ(goc_chan_try_recv(c, &v), -EAGAIN); /* w was never sent */
    goc_chan_release(c);
}

TEST_G(chan, cancel_before_entry_wins_over_ready_value)
{
    goc_chan *c = chan_new(sizeof(int), 1);
    int v = 9;
    ASSERT_OK(goc_chan_send(c, &v, NULL));
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    goc_ctx_cancel(ctx);
    ASSERT_EQ(goc_chan_recv(c, &v, ctx), -ECANCELED);
    ASSERT_EQ(goc_chan_send(c, &v, ctx), -ECANCELED);
    ASSERT_EQ(goc_chan_len(c), 1);
    goc_ctx_release(ctx);
    goc_chan_release(c);
}

TEST_G(chan, cancel_while_waiting)
{
    goc_chan *c = chan_new(sizeof(int), 0);
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    test_cancel_after(ctx, 10 * GOC_MILLISECOND);
    int v = 0;
    ASSERT_EQ(goc_chan_recv(c, &v, ctx), -ECANCELED);
    ASSERT_EQ(goc_chan_try_send(c, &v), -EAGAIN);
    goc_ctx_release(ctx);
    goc_chan_release(c);
}

struct thread_op {
    goc_chan *c;
    goc_ctx *ctx;
    int rc;
};

static void *thread_recv(void *arg)
{
    struct thread_op *op = arg;
    int v;
    op->rc = goc_chan_recv(op->c, &v, op->ctx);
    return NULL;
}

TEST(chan, plain_thread_cancel_and_timeout)
{
    goc_chan *c = chan_new(sizeof(int), 0);
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    struct thread_op op = { c, ctx, 99 };
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, thread_recv, &op));
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    goc_ctx_cancel(ctx);
    test_join(t, NULL);
    ASSERT_EQ(op.rc, -ECANCELED);
    goc_ctx_release(ctx);

    goc_ctx_local l;
    op.ctx = goc_ctx_init_timeout(&l, NULL, 10 * GOC_MILLISECOND);
    ASSERT_OK(pthread_create(&t, NULL, thread_recv, &op));
    test_join(t, NULL);
    ASSERT_EQ(op.rc, -ETIMEDOUT);
    goc_ctx_destroy(op.ctx);

    /* And a close wakes a blocked thread. */
    op.ctx = NULL;
    ASSERT_OK(pthread_create(&t, NULL, thread_recv, &op));
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    goc_chan_close(c);
    test_join(t, NULL);
    ASSERT_EQ(op.rc, 0);
    goc_chan_release(c);
}

/* ---- stress: exactly once ---------------------------------------------- */

struct stress {
    goc_chan *c;
    int64_t per_producer;
    int producers;
    _Atomic int64_t sum, count;
    _Atomic uint8_t *seen;
    goc_wg prod, cons;
};

static void produce(struct stress *s, int64_t base)
{
    goc_ctx_local l;
    for (int64_t i = 0; i < s->per_producer; i++) {
        int64_t v = base + i;
        if (i % 64 == 0) {
            /* Some sends with a generous deadline: same outcome. */
            goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 60 * GOC_SECOND);
            ASSERT_OK(goc_chan_send(s->c, &v, ctx));
            goc_ctx_destroy(ctx);
        } else {
            ASSERT_OK(goc_chan_send(s->c, &v, NULL));
        }
    }
}

static _Atomic int64_t next_base;

static void producer_g(void *arg)
{
    struct stress *s = arg;
    produce(s, atomic_fetch_add(&next_base, s->per_producer));
    goc_wg_done(&s->prod);
}

static void *producer_t(void *arg)
{
    struct stress *s = arg;
    produce(s, atomic_fetch_add(&next_base, s->per_producer));
    goc_wg_done(&s->prod);
    return NULL;
}

static void consume(struct stress *s)
{
    int64_t v;
    while (goc_chan_recv(s->c, &v, NULL) > 0) {
        ASSERT_EQ(atomic_fetch_add(&s->seen[v], 1), 0); /* never twice */
        atomic_fetch_add(&s->sum, v);
        atomic_fetch_add(&s->count, 1);
    }
}

static void consumer_g(void *arg)
{
    consume(arg);
    goc_wg_done(&((struct stress *)arg)->cons);
}

static void *consumer_t(void *arg)
{
    consume(arg);
    goc_wg_done(&((struct stress *)arg)->cons);
    return NULL;
}

static void run_stress(size_t cap)
{
    struct stress s = { .c = chan_new(sizeof(int64_t), cap),
                        .per_producer = test_scale(200000),
                        .producers = 8 };
    int64_t total = s.per_producer * s.producers;
    s.seen = calloc((size_t)total, 1);
    atomic_store(&next_base, 0);
    pthread_t pt[2], ct[2];
    goc_wg_add(&s.prod, s.producers);
    goc_wg_add(&s.cons, 8);
    for (int i = 0; i < 6; i++) {
        ASSERT_OK(goc_go(producer_g, &s));
        ASSERT_OK(goc_go(consumer_g, &s));
    }
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(pthread_create(&pt[i], NULL, producer_t, &s));
        ASSERT_OK(pthread_create(&ct[i], NULL, consumer_t, &s));
    }
    goc_wg_wait(&s.prod, NULL);
    goc_chan_close(s.c);
    goc_wg_wait(&s.cons, NULL);
    for (int i = 0; i < 2; i++) {
        test_join(pt[i], NULL);
        test_join(ct[i], NULL);
    }
    ASSERT_EQ(atomic_load(&s.count), total);
    ASSERT_EQ(atomic_load(&s.sum), total * (total - 1) / 2);
    free((void *)s.seen);
    goc_chan_release(s.c);
}

TEST_G(chan, stress_unbuffered_exactly_once)
{
    run_stress(0);
}

TEST_G(chan, stress_buffered_exactly_once)
{
    run_stress(64);
}

/*
 * Waits with no context are claimed and parked with plain stores under
 * the channel lock; waits with one race their timer. Both kinds queue on
 * the same unbuffered channel here, on both sides, with timeouts short
 * enough to fire often: still every value exactly once.
 */
struct mixed {
    goc_chan *c;
    int64_t per_producer;
    _Atomic int64_t next, count, timeouts;
    _Atomic uint8_t *seen;
    goc_wg prod, cons;
};

enum { MIXED_PRODUCERS = 6, MIXED_CONSUMERS = 6 };

static void mixed_send(struct mixed *m, int64_t v, bool timed)
{
    goc_ctx_local l;
    for (;;) {
        goc_ctx *ctx =
            timed ? goc_ctx_init_timeout(&l, NULL, 2 * GOC_MICROSECOND) : NULL;
        int rc = goc_chan_send(m->c, &v, ctx);
        if (ctx)
            goc_ctx_destroy(ctx);
        if (rc == 0)
            return;
        ASSERT_EQ(rc, -ETIMEDOUT);
        atomic_fetch_add(&m->timeouts, 1);
    }
}

static void mixed_producer(void *arg)
{
    struct mixed *m = arg;
    int64_t base = atomic_fetch_add(&m->next, m->per_producer);
    for (int64_t i = 0; i < m->per_producer; i++) {
        /* Pauses (one before the first send) leave the consumers
         * waiting long enough for the timed ones to time out. */
        if (i % 1024 == 0)
            goc_sleep((i ? 1 : 5) * GOC_MILLISECOND, NULL);
        mixed_send(m, base + i, (base / m->per_producer) % 2 == 1);
    }
    goc_wg_done(&m->prod);
}

static void mixed_consume(struct mixed *m, bool timed)
{
    goc_ctx_local l;
    for (;;) {
        int64_t v = -1;
        goc_ctx *ctx =
            timed ? goc_ctx_init_timeout(&l, NULL, 2 * GOC_MICROSECOND) : NULL;
        int rc = goc_chan_recv(m->c, &v, ctx);
        if (ctx)
            goc_ctx_destroy(ctx);
        if (rc == -ETIMEDOUT) {
            atomic_fetch_add(&m->timeouts, 1);
            continue;
        }
        if (rc == 0)
            return;
        ASSERT_EQ(rc, 1);
        ASSERT_EQ(atomic_fetch_add(&m->seen[v], 1), 0); /* never twice */
        atomic_fetch_add(&m->count, 1);
    }
}

static _Atomic int mixed_consumer_no;

static void mixed_consumer(void *arg)
{
    bool timed = atomic_fetch_add(&mixed_consumer_no, 1) % 2 == 1;
    mixed_consume(arg, timed);
    goc_wg_done(&((struct mixed *)arg)->cons);
}

static void *mixed_consumer_thread(void *arg)
{
    mixed_consume(arg, true);
    goc_wg_done(&((struct mixed *)arg)->cons);
    return NULL;
}

TEST_G(chan, stress_unbuffered_timed_and_untimed_waits_mix)
{
    struct mixed m = { .c = chan_new(sizeof(int64_t), 0),
                       .per_producer = test_scale(50000) };
    int64_t total = m.per_producer * MIXED_PRODUCERS;
    m.seen = calloc((size_t)total, 1);
    ASSERT(m.seen != NULL);
    goc_wg_add(&m.prod, MIXED_PRODUCERS);
    goc_wg_add(&m.cons, MIXED_CONSUMERS + 1);
    for (int i = 0; i < MIXED_PRODUCERS; i++)
        ASSERT_OK(goc_go(mixed_producer, &m));
    for (int i = 0; i < MIXED_CONSUMERS; i++)
        ASSERT_OK(goc_go(mixed_consumer, &m));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, mixed_consumer_thread, &m));
    goc_wg_wait(&m.prod, NULL);
    goc_chan_close(m.c);
    goc_wg_wait(&m.cons, NULL);
    test_join(t, NULL);
    ASSERT_EQ(atomic_load(&m.count), total);
    for (int64_t v = 0; v < total; v++)
        ASSERT_EQ(atomic_load(&m.seen[v]), 1);
    /* The timed waits did time out: both kinds were on the queues. */
    ASSERT_GT(atomic_load(&m.timeouts), 0);
    free((void *)m.seen);
    goc_chan_release(m.c);
}

/* ---- a random sequence against a model -------------------------------- */

TEST(chan, random_ops_match_model)
{
    uint32_t seed = 777;
    for (int round = 0; round < 50; round++) {
        size_t cap = round % 5;
        goc_chan *c = chan_new(sizeof(int), cap);
        int model[8], head = 0, len = 0, next = 1;
        bool closed = false;
        for (int step = 0; step < 200; step++) {
            seed = seed * 1103515245 + 12345;
            int op = (int)(seed >> 16) % 10;
            int v = 0;
            if (op < 5) { /* try_send */
                v = next;
                int rc = goc_chan_try_send(c, &v);
                if (closed) {
                    ASSERT_EQ(rc, -EPIPE);
                } else if ((size_t)len < cap) {
                    ASSERT_OK(rc);
                    model[(head + len++) % 8] = next++;
                } else {
                    ASSERT_EQ(rc, -EAGAIN);
                }
            } else if (op < 9) { /* try_recv */
                int rc = goc_chan_try_recv(c, &v);
                if (len > 0) {
                    ASSERT_EQ(rc, 1);
                    ASSERT_EQ(v, model[head]);
                    head = (head + 1) % 8;
                    len--;
                } else {
                    ASSERT_EQ(rc, closed ? 0 : -EAGAIN);
                }
            } else if (step > 150) { /* close, late */
                ASSERT_EQ(goc_chan_close(c), closed ? GOC_EMISUSE : 0);
                closed = true;
            }
            ASSERT_EQ(goc_chan_len(c), len);
        }
        goc_chan_release(c);
    }
}

/* ---- buffered ring: close and wake-up races ---------------------------- */

enum { CR_PRODUCERS = 4, CR_CONSUMERS = 3 };

struct close_race {
    goc_chan *c;
    int64_t per; /* values a producer offers at most */
    _Atomic int64_t accepted, received;
    _Atomic uint8_t *seen;
    _Atomic int next_id;
    goc_wg done;
};

static void cr_produce(struct close_race *r)
{
    int64_t base = atomic_fetch_add(&r->next_id, 1) * r->per;
    for (int64_t i = 0; i < r->per; i++) {
        int64_t v = base + i;
        int rc = goc_chan_send(r->c, &v, NULL);
        if (rc == -EPIPE)
            break; /* closed: this value was refused, not lost */
        ASSERT_OK(rc);
        atomic_fetch_add(&r->accepted, 1);
    }
}

static void cr_producer_g(void *arg)
{
    cr_produce(arg);
    goc_wg_done(&((struct close_race *)arg)->done);
}

static void *cr_producer_t(void *arg)
{
    cr_produce(arg);
    goc_wg_done(&((struct close_race *)arg)->done);
    return NULL;
}

static void cr_consumer_g(void *arg)
{
    struct close_race *r = arg;
    int64_t v;
    int rc;
    while ((rc = goc_chan_recv(r->c, &v, NULL)) > 0) {
        ASSERT_EQ(atomic_fetch_add(&r->seen[v], 1), 0);
        atomic_fetch_add(&r->received, 1);
    }
    ASSERT_EQ(rc, 0);
    ASSERT_EQ(v, 0); /* zeroed by the close */
    goc_wg_done(&r->done);
}

/*
 * Close lands while lock-free sends and receives are in flight on small
 * rings that wrap many laps (capacities that are not powers of two too):
 * every send that succeeded is received exactly once, every later one
 * fails with -EPIPE, and every blocked party wakes.
 */
TEST_G(chan, stress_close_races_buffered_ops)
{
    int rounds = (int)test_scale(40);
    for (int round = 0; round < rounds; round++) {
        struct close_race r = { .per = test_scale(20000) };
        r.c = chan_new(sizeof(int64_t), (size_t)(1 + round % 5));
        r.seen = calloc((size_t)(r.per * CR_PRODUCERS), 1);
        goc_wg_add(&r.done, CR_PRODUCERS + CR_CONSUMERS);
        for (int i = 0; i < CR_CONSUMERS; i++)
            ASSERT_OK(goc_go(cr_consumer_g, &r));
        pthread_t t;
        ASSERT_OK(pthread_create(&t, NULL, cr_producer_t, &r));
        for (int i = 1; i < CR_PRODUCERS; i++)
            ASSERT_OK(goc_go(cr_producer_g, &r));
        /* Close at a different point of the flow each round. */
        int64_t wait_for = (round * 997) % (r.per / 2 + 1);
        while (atomic_load(&r.received) < wait_for)
            goc_yield();
        ASSERT_OK(goc_chan_close(r.c));
        goc_wg_wait(&r.done, NULL);
        test_join(t, NULL);
        ASSERT_EQ(atomic_load(&r.received), atomic_load(&r.accepted));
        int64_t v = 1;
        ASSERT_EQ(goc_chan_try_send(r.c, &v), -EPIPE);
        ASSERT_EQ(goc_chan_len(r.c), 0);
        free((void *)r.seen);
        goc_chan_release(r.c);
    }
}

struct ring_pp {
    goc_chan *ping, *pong;
    int64_t rounds;
    bool with_timeouts;
    goc_wg done;
};

/*
 * The echo side: receives each value, first with a very short deadline
 * when asked, so contexts ending race the peer's wake-up; a wake-up lost
 * there leaves both sides parked forever.
 */
static void ring_echo(struct ring_pp *p)
{
    for (int64_t i = 0; i < p->rounds; i++) {
        int64_t v;
        int rc;
        rc = -ETIMEDOUT;
        if (p->with_timeouts) {
            goc_ctx_local l;
            goc_ctx *ctx =
                goc_ctx_init_timeout(&l, NULL, (1 + i % 7) * GOC_MICROSECOND);
            rc = goc_chan_recv(p->ping, &v, ctx);
            goc_ctx_destroy(ctx);
        }
        /* Timed out (at once, on a slow machine): wait for it for good. */
        if (rc == -ETIMEDOUT)
            rc = goc_chan_recv(p->ping, &v, NULL);
        ASSERT_EQ(rc, 1);
        ASSERT_EQ(v, i);
        v = -v;
        ASSERT_OK(goc_chan_send(p->pong, &v, NULL));
    }
}

static void ring_echo_g(void *arg)
{
    ring_echo(arg);
    goc_wg_done(&((struct ring_pp *)arg)->done);
}

static void *ring_echo_t(void *arg)
{
    ring_echo(arg);
    goc_wg_done(&((struct ring_pp *)arg)->done);
    return NULL;
}

static void ring_drive(struct ring_pp *p)
{
    for (int64_t i = 0; i < p->rounds; i++) {
        int64_t v = i;
        ASSERT_OK(goc_chan_send(p->ping, &v, NULL));
        ASSERT_EQ(goc_chan_recv(p->pong, &v, NULL), 1);
        ASSERT_EQ(v, -i);
    }
}

/*
 * Round trips over channels of capacity 1, so every operation parks or
 * wakes a parked peer: goroutine to goroutine and goroutine to plain
 * thread, with and without deadlines racing the wake-ups.
 */
TEST_G(chan, buffered_round_trips_lose_no_wakeup)
{
    for (int mode = 0; mode < 4; mode++) {
        struct ring_pp p = { .ping = chan_new(sizeof(int64_t), 1),
                             .pong = chan_new(sizeof(int64_t), 1),
                             .rounds = test_scale(20000),
                             .with_timeouts = mode & 1 };
        goc_wg_add(&p.done, 1);
        pthread_t t;
        if (mode & 2)
            ASSERT_OK(pthread_create(&t, NULL, ring_echo_t, &p));
        else
            ASSERT_OK(goc_go(ring_echo_g, &p));
        ring_drive(&p);
        goc_wg_wait(&p.done, NULL);
        if (mode & 2)
            test_join(t, NULL);
        goc_chan_release(p.ping);
        goc_chan_release(p.pong);
    }
}

/* Two goroutines handing a value back and forth through runnext, on one
 * P, must not starve the goroutine waiting in the run queue: here the
 * main goroutine, queued once its send of the first value completes. */
static _Atomic int starve_done;

static void starve_bouncer(void *arg)
{
    goc_chan **ch = arg; /* ch[0] in, ch[1] out */
    int v = 0;
    while (!atomic_load(&starve_done) && goc_chan_recv(ch[0], &v, NULL) == 1)
        if (goc_chan_send(ch[1], &v, NULL) != 0)
            break;
    goc_chan_release(ch[0]); /* the references its spawner took for it */
    goc_chan_release(ch[1]);
}

static int starve_main(void *arg)
{
    (void)arg;
    goc_chan *a, *b;
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &a));
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &b));
    static goc_chan *ab[2], *ba[2]; /* outlive this frame */
    ab[0] = goc_chan_retain(a);
    ab[1] = ba[0] = goc_chan_retain(b);
    ba[1] = goc_chan_retain(a);
    goc_chan_retain(b);
    ASSERT_OK(goc_go(starve_bouncer, ab));
    ASSERT_OK(goc_go(starve_bouncer, ba));
    int v = 1;
    ASSERT_OK(goc_chan_send(a, &v, NULL)); /* start the ball */
    goc_yield();                           /* behind the pair, again */
    atomic_store(&starve_done, 1);         /* reached: not starved */
    goc_chan_close(a);
    goc_chan_close(b);
    goc_chan_release(a);
    goc_chan_release(b);
    while (goc_num_goroutine() > 1)
        goc_sleep(1000000, NULL);
    return 0;
}

TEST(chan, handoff_pair_does_not_starve_the_run_queue)
{
    struct goc_config cfg = { .max_procs = 1 };
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(starve_main, NULL));
    test_no_leaks();
}

/* ---- the last release while calls are blocked -------------------------- */

struct blocked_call {
    goc_chan *c;
    int kind; /* 0 receive, 1 send, 2 select receive */
    _Atomic int rc;
    goc_wg wg;
};

static void blocked_call_main(void *arg)
{
    struct blocked_call *b = arg;
    int v = 7, rc;
    if (b->kind == 0) {
        rc = goc_chan_recv(b->c, &v, NULL);
    } else if (b->kind == 1) {
        rc = goc_chan_send(b->c, &v, NULL);
    } else {
        struct goc_select_case k = { b->c, GOC_SELECT_RECV, &v, -1 };
        rc = goc_select(&k, 1, 0, NULL) == 0 ? k.result : -1000;
    }
    atomic_store(&b->rc, rc);
    goc_wg_done(&b->wg);
}

static int release_chan(void *arg)
{
    goc_chan_release(arg);
    return 0;
}

/*
 * The last reference dropped while a call is blocked on the channel: the
 * call would write freed memory when it is woken. It is a misuse that
 * panics, and the channel stays whole: closing it still ends the call.
 */
TEST_G(chan, last_release_with_a_blocked_call_panics_and_frees_nothing)
{
    const int closed_rc[] = { 0, -EPIPE, 0 };
    for (int kind = 0; kind < 3; kind++) {
        struct blocked_call b = { .c = chan_new(sizeof(int), 0),
                                  .kind = kind,
                                  .wg = GOC_WG_INIT };
        atomic_init(&b.rc, 99);
        goc_wg_add(&b.wg, 1);
        ASSERT_OK(goc_go(blocked_call_main, &b));
        int64_t t0 = goc_now();
        while (atomic_load(&b.c->recvq.n) + atomic_load(&b.c->sendq.n) == 0) {
            ASSERT_LT(goc_now() - t0, 30 * GOC_SECOND);
            goc_sleep(GOC_MILLISECOND, NULL);
        }
        goc_panic_info *p;
        ASSERT_EQ(goc_try(release_chan, b.c, &p), GOC_EPANIC);
        ASSERT_EQ(goc_panic_info_code(p), GOC_EMISUSE);
        ASSERT(strstr(goc_panic_info_message(p), "1 call(s) blocked"));
        goc_panic_info_free(p);
        ASSERT_EQ(atomic_load(&b.rc), 99); /* still blocked */
        ASSERT_OK(goc_chan_close(b.c));
        goc_wg_wait(&b.wg, NULL);
        ASSERT_EQ(atomic_load(&b.rc), closed_rc[kind]);
        goc_chan_release(b.c); /* now it goes (the leak check sees it) */
    }
}
