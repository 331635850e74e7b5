/* SPDX-License-Identifier: MIT */
/* Tests of the broadcaster. */
#include "test.h"

#include "../src/internal/alloc.h"
#include "../src/patterns/patterns.h" /* goc__bcast_publishing */

#include <pthread.h>
#include <stdatomic.h>

static goc_bcast *bcast(void)
{
    goc_bcast *b;
    ASSERT_OK(goc_bcast_new(sizeof(int64_t), &b));
    return b;
}

static goc_sub *sub(goc_bcast *b, size_t cap, enum goc_overflow p)
{
    goc_sub *s;
    ASSERT_OK(goc_bcast_subscribe(b, cap, p, 0, &s));
    return s;
}

TEST_G(broadcast, unsubscribe_twice_or_foreign_is_an_error_not_a_crash_d047)
{
    goc_bcast *b = bcast(), *other = bcast();
    goc_sub *s = sub(b, 4, GOC_DROP_NEWEST);
    ASSERT_EQ(goc_bcast_subscribe(b, 0, GOC_DROP_NEWEST, 0, &s), -EINVAL);
    /* A timeout only a blocking policy can use. */
    goc_sub *t = NULL;
    ASSERT_EQ(goc_bcast_subscribe(b, 1, GOC_DROP_OLDEST, 1, &t), -EINVAL);
    ASSERT_EQ(goc_bcast_subscribe(b, 1, GOC_BLOCK, -1, &t), -EINVAL);
    ASSERT(!t);
    ASSERT_EQ(goc_bcast_subscribers(b), 1);
    ASSERT_EQ(goc_bcast_unsubscribe(other, s), -EINVAL); /* foreign */
    ASSERT_OK(goc_bcast_unsubscribe(b, s));
    ASSERT_EQ(goc_bcast_unsubscribe(b, s), -EINVAL); /* again */
    ASSERT_EQ(goc_sub_recv(s, NULL, NULL), 0);       /* closed */
    int64_t m = 1;
    ASSERT_EQ(goc_bcast_publish(b, &m, NULL, NULL), 0); /* nobody left */
    goc_sub_release(s);
    goc_bcast_free(b);
    goc_bcast_free(other);
}

TEST_G(broadcast, subscriber_cannot_break_publish_d048)
{
    goc_bcast *b = bcast();
    goc_sub *s = sub(b, 4, GOC_DROP_NEWEST), *t = sub(b, 4, GOC_DROP_NEWEST);
    /* The seed handed out a bidirectional channel: a subscriber closing
     * it made the next Broadcast panic. Here the channel is receive-only:
     * the subscriber can neither close it nor send on it. */
    int64_t m = 1, dropped = -1;
    ASSERT_EQ(goc_chan_close(goc_sub_chan(s)), GOC_EMISUSE);
    ASSERT_EQ(goc_chan_send(goc_sub_chan(s), &m, NULL), GOC_EMISUSE);
    ASSERT_EQ(goc_bcast_publish(b, &m, &dropped, NULL), 2);
    ASSERT_EQ(dropped, 0);
    goc_sub_release(s);
    goc_sub_release(t);
    goc_bcast_free(b);
}

struct reader {
    goc_sub *s;
    int64_t got, last;
    bool in_order;
    goc_wg *wg;
};

static void read_all(void *arg)
{
    struct reader *r = arg;
    int64_t v;
    r->in_order = true;
    r->last = -1;
    while (goc_sub_recv(r->s, &v, NULL) > 0) {
        r->in_order &= v > r->last;
        r->last = v;
        r->got++;
    }
    goc_wg_done(r->wg);
}

TEST_G(broadcast, close_ends_every_range_loop_d049)
{
    goc_bcast *b = bcast();
    static struct reader r[3];
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++) {
        r[i] = (struct reader){ .s = sub(b, 64, GOC_BLOCK), .wg = &wg };
        ASSERT_OK(goc_go(read_all, &r[i]));
    }
    for (int64_t m = 0; m < 50; m++)
        ASSERT_EQ(goc_bcast_publish(b, &m, NULL, NULL), 3);
    ASSERT_OK(goc_bcast_close(b));
    ASSERT_EQ(goc_bcast_close(b), GOC_ECLOSED);
    int64_t m = 0;
    ASSERT_EQ(goc_bcast_publish(b, &m, NULL, NULL), GOC_ECLOSED);
    goc_sub *late;
    ASSERT_EQ(goc_bcast_subscribe(b, 1, GOC_DROP_NEWEST, 0, &late),
              GOC_ECLOSED);
    goc_wg_wait(&wg, NULL); /* every reader's loop ended */
    for (int i = 0; i < 3; i++) {
        ASSERT_EQ(r[i].got, 50);
        ASSERT(r[i].in_order);
        goc_sub_release(r[i].s);
    }
    goc_bcast_free(b);
}

TEST_G(broadcast, overflow_policies_are_counted_d050)
{
    goc_bcast *b = bcast();
    goc_sub *newest = sub(b, 2, GOC_DROP_NEWEST);
    goc_sub *oldest = sub(b, 2, GOC_DROP_OLDEST);
    goc_sub *slow = sub(b, 2, GOC_DISCONNECT);
    goc_sub *block;
    ASSERT_OK(goc_bcast_subscribe(b, 2, GOC_BLOCK, GOC_MILLISECOND, &block));
    int64_t dropped;
    for (int64_t m = 0; m < 5; m++)
        goc_bcast_publish(b, &m, &dropped, NULL);
    struct goc_sub_stats st;
    goc_sub_stats(newest, &st);
    ASSERT_EQ(st.delivered, 2);
    ASSERT_EQ(st.dropped, 3);
    int64_t v;
    ASSERT_EQ(goc_sub_recv(newest, &v, NULL), 1);
    ASSERT_EQ(v, 0); /* kept the first ones */
    goc_sub_stats(oldest, &st);
    ASSERT_EQ(st.delivered, 5);
    ASSERT_EQ(st.evicted, 3);
    ASSERT_EQ(goc_sub_recv(oldest, &v, NULL), 1);
    ASSERT_EQ(v, 3); /* kept the last ones */
    goc_sub_stats(slow, &st);
    ASSERT(st.disconnected);
    ASSERT_EQ(st.delivered, 2);
    ASSERT_EQ(st.dropped, 1); /* the one that overflowed; then gone */
    ASSERT_EQ(goc_bcast_unsubscribe(b, slow), -EINVAL);
    goc_sub_stats(block, &st);
    ASSERT_EQ(st.delivered, 2);
    ASSERT_EQ(st.dropped, 3); /* each waited 1 ms, then dropped */
    ASSERT_EQ(goc_bcast_subscribers(b), 3);
    goc_sub_release(newest);
    goc_sub_release(oldest);
    goc_sub_release(slow);
    goc_sub_release(block);
    goc_bcast_free(b);
}

TEST_G(broadcast, block_policy_wait_ends_with_ctx_cancel_and_close)
{
    goc_bcast *b = bcast();
    goc_sub *s = sub(b, 1, GOC_BLOCK);
    int64_t m = 1, dropped;
    ASSERT_EQ(goc_bcast_publish(b, &m, NULL, NULL), 1);
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 2 * GOC_MILLISECOND);
    ASSERT_EQ(goc_bcast_publish(b, &m, &dropped, t), 0); /* timeout */
    goc_ctx_destroy(t);
    ASSERT_EQ(dropped, 1);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 2 * GOC_MILLISECOND);
    ASSERT_EQ(goc_bcast_publish(b, &m, &dropped, k), 0); /* cancel */
    ASSERT_EQ(goc_bcast_publish(b, &m, &dropped, k), 0); /* at entry */
    goc_ctx_release(k);
    struct goc_sub_stats st;
    goc_sub_stats(s, &st);
    ASSERT_EQ(st.dropped, 3);
    goc_sub_release(s);
    goc_bcast_free(b);
}

struct publisher {
    goc_bcast *b;
    int64_t n;
    _Atomic int rc;
};

static void *publish_thread(void *arg)
{
    struct publisher *p = arg;
    int64_t m = 1;
    atomic_store(&p->rc, goc_bcast_publish(p->b, &m, NULL, NULL));
    return NULL;
}

TEST_G(broadcast, close_while_a_publish_blocks_from_a_plain_thread)
{
    goc_bcast *b = bcast();
    goc_sub *s = sub(b, 1, GOC_BLOCK);
    int64_t m = 0;
    ASSERT_EQ(goc_bcast_publish(b, &m, NULL, NULL), 1); /* now full */
    static struct publisher p;
    p = (struct publisher){ b, 1, 1 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, publish_thread, &p));
    goc_sleep(3 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(atomic_load(&p.rc), 1); /* blocked */
    ASSERT_OK(goc_bcast_close(b));    /* wakes it: dropped, not a crash */
    test_join(th, NULL);
    /* Blocked when the close came: woken, its message dropped (0). On a
     * slow run it may only start after the close: refused, GOC_ECLOSED.
     * Either way every message is accounted for. */
    int rc = atomic_load(&p.rc);
    ASSERT(rc == 0 || rc == GOC_ECLOSED);
    struct goc_sub_stats st;
    goc_sub_stats(s, &st);
    ASSERT_EQ(st.delivered + st.dropped, rc == 0 ? 2 : 1);
    goc_sub_release(s);
    goc_bcast_free(b);
}

struct member {
    goc_bcast *b;
    goc_sub *s;
    int kind; /* 0 fast, 1 slow, 2 departs */
    int64_t received;
    goc_wg *wg;
};

static void consume(void *arg)
{
    struct member *m = arg;
    int64_t v;
    while (goc_sub_recv(m->s, &v, NULL) > 0) {
        m->received++;
        if (m->kind == 1)
            goc_sleep(50 * GOC_MICROSECOND, NULL);
        if (m->kind == 2 && m->received == 20)
            ASSERT_OK(goc_bcast_unsubscribe(m->b, m->s));
    }
    goc_wg_done(m->wg);
}

TEST_G(broadcast, counts_balance_with_slow_fast_and_departing_subscribers)
{
    enum { S = 9 };
    int64_t n = test_scale(3000);
    goc_bcast *b = bcast();
    static struct member m[S];
    enum goc_overflow pol[3] = { GOC_DROP_NEWEST, GOC_DROP_OLDEST, GOC_BLOCK };
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, S);
    for (int i = 0; i < S; i++) {
        m[i] = (struct member){ b, NULL, i % 3, 0, &wg };
        int64_t wait = pol[i / 3] == GOC_BLOCK ? GOC_MILLISECOND : 0;
        ASSERT_OK(goc_bcast_subscribe(b, 8, pol[i / 3], wait, &m[i].s));
        ASSERT_OK(goc_go(consume, &m[i]));
    }
    int64_t delivered = 0, dropped = 0;
    for (int64_t i = 0; i < n; i++) {
        int64_t d;
        int got = goc_bcast_publish(b, &i, &d, NULL);
        ASSERT_GE(got, 0);
        delivered += got;
        dropped += d;
    }
    ASSERT_OK(goc_bcast_close(b));
    goc_wg_wait(&wg, NULL);
    int64_t sd = 0, sdrop = 0, stayed = 0;
    for (int i = 0; i < S; i++) {
        struct goc_sub_stats st;
        goc_sub_stats(m[i].s, &st);
        /* Each subscriber: what it received is what went into its
         * buffer minus what was evicted from it. */
        ASSERT_EQ(m[i].received, st.delivered - st.evicted);
        if (m[i].kind == 2) { /* counted while subscribed, not after */
            ASSERT_GE(st.delivered + st.dropped, 20);
            ASSERT_LE(st.delivered + st.dropped, n);
        } else {
            ASSERT_EQ(st.delivered + st.dropped, n);
            stayed += st.delivered + st.dropped;
        }
        sd += st.delivered;
        sdrop += st.dropped;
        goc_sub_release(m[i].s);
    }
    /* Published x subscribers at each publish: what publish reported is
     * exactly what the subscribers counted. */
    ASSERT_EQ(sd, delivered);
    ASSERT_EQ(stayed, n * (S - S / 3)); /* published x subscribers */
    ASSERT_EQ(sdrop, dropped);
    goc_bcast_free(b);
}

struct pending_publish {
    goc_bcast *b;
    int64_t msg;
    goc_ctx *ctx;
    _Atomic int rc;
    _Atomic int done;
    goc_wg wg;
};

static void publish_async(void *arg)
{
    struct pending_publish *p = arg;
    atomic_store(&p->rc, goc_bcast_publish(p->b, &p->msg, NULL, p->ctx));
    atomic_store(&p->done, 1);
    goc_wg_done(&p->wg);
}

/*
 * A close while a publish waits on a full GOC_BLOCK subscriber ends that
 * wait and lets the publish finish with the subscribers after it: every
 * subscriber registered at entry gets the message by its policy, the
 * seed's broadcast cut off part-way (D-052). Delivery follows the
 * reverse order of subscription, so "fast" comes after "slow".
 */
TEST_G(broadcast, close_lets_the_publish_in_flight_reach_everyone_d052)
{
    goc_bcast *b = bcast();
    goc_sub *fast = sub(b, 8, GOC_DROP_NEWEST);
    goc_sub *slow = sub(b, 1, GOC_BLOCK); /* no timeout */
    goc_sub *probe = sub(b, 8, GOC_DROP_NEWEST);
    int64_t v = 1;
    ASSERT_EQ(goc_bcast_publish(b, &v, NULL, NULL), 3); /* slow is full */
    static struct pending_publish p;
    p = (struct pending_publish){ .b = b, .msg = 7 };
    goc_wg_add(&p.wg, 1);
    ASSERT_OK(goc_go(publish_async, &p));
    /* The probe's copy says the publish is under way, past the probe. */
    ASSERT_EQ(goc_sub_recv(probe, &v, NULL), 1);
    ASSERT_EQ(goc_sub_recv(probe, &v, NULL), 1);
    ASSERT_EQ(v, 7);
    ASSERT_OK(goc_bcast_close(b));
    goc_wg_wait(&p.wg, NULL);
    ASSERT_EQ(atomic_load(&p.rc), 2); /* probe and fast */
    ASSERT_EQ(goc_sub_recv(fast, &v, NULL), 1);
    ASSERT_EQ(goc_sub_recv(fast, &v, NULL), 1);
    ASSERT_EQ(v, 7);
    ASSERT_EQ(goc_sub_recv(fast, &v, NULL), 0); /* then closed */
    struct goc_sub_stats st;
    goc_sub_stats(slow, &st);
    ASSERT_EQ(st.delivered, 1);
    ASSERT_EQ(st.dropped, 1);
    goc_sub_release(fast);
    goc_sub_release(slow);
    goc_sub_release(probe);
    goc_bcast_free(b);
}

/* A publish waiting behind one stuck on a GOC_BLOCK subscriber gives up
 * when its own ctx ends, delivering nothing. */
TEST_G(broadcast, publish_behind_a_stuck_one_honours_its_ctx)
{
    goc_bcast *b = bcast();
    goc_sub *slow = sub(b, 1, GOC_BLOCK);
    goc_sub *probe = sub(b, 8, GOC_DROP_NEWEST); /* delivered first */
    int64_t v = 1, dropped = -1;
    ASSERT_EQ(goc_bcast_publish(b, &v, NULL, NULL), 2);
    ASSERT_EQ(goc_sub_recv(probe, &v, NULL), 1);
    static struct pending_publish p;
    p = (struct pending_publish){ .b = b, .msg = 2 };
    goc_wg_add(&p.wg, 1);
    ASSERT_OK(goc_go(publish_async, &p)); /* stuck on slow */
    /* The probe's copy says that publish holds the publish lock. */
    ASSERT_EQ(goc_sub_recv(probe, &v, NULL), 1);
    ASSERT_EQ(v, 2);
    ASSERT_EQ(atomic_load(&p.done), 0);
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 20 * GOC_MILLISECOND);
    int64_t t0 = goc_now();
    ASSERT_EQ(goc_bcast_publish(b, &v, &dropped, t), -ETIMEDOUT);
    ASSERT_LT(goc_now() - t0, 2 * GOC_SECOND);
    goc_ctx_destroy(t);
    ASSERT_EQ(dropped, 0);
    /* Room for the stuck one: it delivers, and nothing else came. */
    ASSERT_EQ(goc_sub_recv(slow, &v, NULL), 1);
    goc_wg_wait(&p.wg, NULL);
    ASSERT_EQ(atomic_load(&p.rc), 2);
    ASSERT_EQ(goc_sub_recv(slow, &v, NULL), 1);
    ASSERT_EQ(v, 2);
    struct goc_sub_stats st;
    goc_sub_stats(slow, &st);
    ASSERT_EQ(st.delivered, 2);
    ASSERT_EQ(st.dropped, 0);
    goc_sub_release(slow);
    goc_sub_release(probe);
    goc_bcast_free(b);
}

/* Out of memory for the subscriber list: -ENOMEM, nothing delivered,
 * nothing counted. */
TEST_G(broadcast, publish_out_of_memory_delivers_nothing)
{
    goc_bcast *b = bcast();
    goc_sub *s = sub(b, 4, GOC_DROP_NEWEST);
    int64_t v = 1, dropped = -1;
    goc__fault_after(0);
    int rc = goc_bcast_publish(b, &v, &dropped, NULL);
    goc__fault_after(-1);
    ASSERT_EQ(rc, -ENOMEM);
    ASSERT_EQ(dropped, 0);
    struct goc_sub_stats st;
    goc_sub_stats(s, &st);
    ASSERT_EQ(st.delivered + st.dropped, 0);
    ASSERT_EQ(goc_bcast_publish(b, &v, &dropped, NULL), 1);
    goc_sub_release(s);
    goc_bcast_free(b);
}

struct evictor {
    goc_bcast *b;
    _Atomic int stop;
};

static void *publish_until_stopped(void *arg)
{
    struct evictor *e = arg;
    int64_t m = 2;
    while (!atomic_load(&e->stop))
        goc_bcast_publish(e->b, &m, NULL, NULL);
    return NULL;
}

/*
 * GOC_DROP_OLDEST never evicts from a subscription once unsubscribe has
 * returned: what is buffered then is the receiver's to drain. A publish
 * racing the unsubscribe used to evict one more, then find the channel
 * closed.
 */
TEST_G(broadcast, unsubscribed_buffer_is_left_to_the_receiver)
{
    enum { CAP = 4 };
    int rounds = (int)test_scale(2000);
    for (int r = 0; r < rounds; r++) {
        goc_bcast *b = bcast();
        goc_sub *s = sub(b, CAP, GOC_DROP_OLDEST);
        int64_t m = 1;
        for (int i = 0; i < CAP; i++)
            ASSERT_EQ(goc_bcast_publish(b, &m, NULL, NULL), 1);
        static struct evictor e;
        e = (struct evictor){ .b = b };
        pthread_t t;
        ASSERT_OK(pthread_create(&t, NULL, publish_until_stopped, &e));
        for (volatile int spin = 0; spin < r % 64 * 20; spin++)
            ;
        ASSERT_OK(goc_bcast_unsubscribe(b, s));
        int got = 0;
        while (goc_sub_recv(s, &m, NULL) > 0)
            got++;
        atomic_store(&e.stop, 1);
        test_join(t, NULL);
        ASSERT_EQ(got, CAP);
        goc_sub_release(s);
        goc_bcast_free(b);
    }
}

/* A broadcaster bound to a context closes when it ends: every
 * subscription ends; a binding that never fires goes with the free. */
TEST_G(broadcast, close_on_a_context_ends_every_subscription)
{
    goc_bcast *b = bcast();
    goc_sub *s = sub(b, 4, GOC_DROP_NEWEST);
    goc_ctx *parent;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &parent));
    ASSERT_EQ(goc_bcast_close_on(NULL, parent), -EINVAL);
    ASSERT_EQ(goc_bcast_close_on(b, NULL), -EINVAL);
    ASSERT_OK(goc_bcast_close_on(b, parent));
    ASSERT_EQ(goc_bcast_close_on(b, parent), -EBUSY);
    int64_t m = 7, v;
    ASSERT_EQ(goc_bcast_publish(b, &m, NULL, NULL), 1);
    goc_ctx_cancel(parent);
    ASSERT_EQ(goc_sub_recv(s, &v, NULL), 1); /* what was sent stays */
    ASSERT_EQ(v, 7);
    goc_ctx_local lc;
    goc_ctx *t = goc_ctx_init_timeout(&lc, NULL, 5 * GOC_SECOND);
    ASSERT_EQ(goc_sub_recv(s, &v, t), 0); /* then it ends */
    goc_ctx_destroy(t);
    ASSERT_EQ(goc_bcast_publish(b, &m, NULL, NULL), GOC_ECLOSED);
    goc_sub_release(s);
    goc_bcast_free(b);
    goc_ctx_release(parent);

    b = bcast();
    ASSERT_OK(goc_ctx_with_cancel(NULL, &parent));
    ASSERT_OK(goc_bcast_close_on(b, parent));
    goc_bcast_free(b); /* the watch goes with it */
    goc_ctx_cancel(parent);
    goc_ctx_release(parent);
}

struct bcast_freeing {
    goc_bcast *b;
    _Atomic int rc[2], freed;
    goc_wg done;
};

static void bcast_publisher(struct bcast_freeing *f, int i)
{
    int msg = i;
    atomic_store(&f->rc[i], goc_bcast_publish(f->b, &msg, NULL, NULL));
    goc_wg_done(&f->done);
}

static void bcast_publisher0(void *arg)
{
    bcast_publisher(arg, 0);
}

static void bcast_publisher1(void *arg)
{
    bcast_publisher(arg, 1);
}

static void bcast_freer(void *arg)
{
    struct bcast_freeing *f = arg;
    goc_bcast_free(f->b);
    atomic_store(&f->freed, 1);
    goc_wg_done(&f->done);
}

/*
 * goc_bcast_free() with one publish blocked on a full GOC_BLOCK
 * subscriber and a second one queued behind it: the free waited only for
 * the first; the second, getting the publish lock after the close, could
 * wake into the freed broadcaster. The free now waits for every publish
 * under way; the queued one gets GOC_ECLOSED.
 */
TEST_G(broadcast, free_waits_for_a_publish_queued_behind_another)
{
    int rounds = (int)test_scale(30);
    for (int i = 0; i < rounds; i++) {
        struct bcast_freeing f = { .done = GOC_WG_INIT };
        atomic_init(&f.rc[0], 99);
        atomic_init(&f.rc[1], 99);
        ASSERT_OK(goc_bcast_new(sizeof(int), &f.b));
        goc_sub *s;
        ASSERT_OK(goc_bcast_subscribe(f.b, 1, GOC_BLOCK, 0, &s));
        int first = 7;
        ASSERT_EQ(goc_bcast_publish(f.b, &first, NULL, NULL), 1); /* full */
        goc_wg_add(&f.done, 3);
        ASSERT_OK(goc_go(bcast_publisher0, &f));
        goc_sleep(GOC_MILLISECOND, NULL); /* blocked on the full buffer */
        ASSERT_OK(goc_go(bcast_publisher1, &f));
        /* One holds the publish lock, blocked; the other queued for it. */
        WAIT_UNTIL(goc__bcast_publishing(f.b) >= 1);
        ASSERT_OK(goc_go(bcast_freer, &f));
        goc_wg_wait(&f.done, NULL);
        ASSERT_EQ(atomic_load(&f.freed), 1);
        /* The blocked one delivers to nobody (closed under it), the
         * queued one finds the broadcaster closed. */
        int rc0 = atomic_load(&f.rc[0]), rc1 = atomic_load(&f.rc[1]);
        ASSERT_EQ(rc0 + rc1, GOC_ECLOSED);
        ASSERT(rc0 == GOC_ECLOSED || rc1 == GOC_ECLOSED);
        goc_sub_release(s);
    }
}
