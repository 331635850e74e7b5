/* SPDX-License-Identifier: MIT */
/*
 * Tests of the channel patterns: pipeline stages, fan-out, fan-in, timed
 * receive and send, and the named channel registry.
 */
#include "test.h"
#include "../src/internal/alloc.h"

#include <pthread.h>
#include <stdatomic.h>

static goc_chan *chan(size_t cap)
{
    goc_chan *c;
    ASSERT_OK(goc_chan_new(sizeof(int64_t), cap, &c));
    return c;
}

struct counter {
    int64_t next, n;
};

static int count_up(void *arg, void *out)
{
    struct counter *c = arg;
    if (c->next >= c->n)
        return 0;
    *(int64_t *)out = c->next++;
    return 1;
}

static int square(void *arg, const void *in, void *out)
{
    (void)arg;
    int64_t v = *(const int64_t *)in;
    *(int64_t *)out = v * v;
    return 0;
}

static int odd_only(void *arg, const void *in, void *out)
{
    (void)arg;
    int64_t v = *(const int64_t *)in;
    *(int64_t *)out = v;
    return v % 2 ? 0 : GOC_STAGE_SKIP;
}

static int fail_at_100(void *arg, const void *in, void *out)
{
    (void)arg;
    *(int64_t *)out = *(const int64_t *)in;
    return *(const int64_t *)in == 100 ? -EIO : 0;
}

TEST_G(chanpat, pipeline_generator_stage_sum)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    goc_chan *c1 = chan(0), *c2 = chan(0), *c3 = chan(4);
    static struct counter cnt;
    cnt = (struct counter){ 0, 1000 };
    ASSERT_OK(goc_pipe_generator(g, c1, count_up, &cnt));
    ASSERT_OK(goc_pipe_stage(g, c1, c2, square, NULL));
    ASSERT_OK(goc_pipe_stage(g, c2, c3, odd_only, NULL));
    int64_t v, sum = 0, want = 0;
    while (goc_chan_recv(c3, &v, NULL) > 0)
        sum += v;
    for (int64_t i = 1; i < 1000; i += 2)
        want += i * i;
    ASSERT_EQ(sum, want);
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_group_free(g);
    goc_chan_release(c1);
    goc_chan_release(c2);
    goc_chan_release(c3);
    ASSERT_EQ(goc_pipe_stage(NULL, c1, c2, square, NULL), -EINVAL);
}

TEST_G(chanpat, stage_error_cancels_the_pipeline_d037)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    goc_chan *c1 = chan(0), *c2 = chan(0);
    static struct counter cnt;
    cnt = (struct counter){ 0, INT64_MAX }; /* endless */
    ASSERT_OK(goc_pipe_generator(g, c1, count_up, &cnt));
    ASSERT_OK(goc_pipe_stage(g, c1, c2, fail_at_100, NULL));
    int64_t v, n = 0;
    while (goc_chan_recv(c2, &v, NULL) > 0)
        n++; /* the stage closes its output when it fails */
    ASSERT_EQ(n, 100);
    ASSERT_EQ(goc_group_wait(g, NULL), -EIO); /* the generator stopped */
    goc_group_free(g);
    goc_chan_release(c1);
    goc_chan_release(c2);
}

/*
 * A pipeline on a group with a limit: a stage that finds no slot free is
 * refused at once. It waited for one, for ever, since the stage holding
 * the slot was blocked on the output nobody drained yet; the call takes
 * no context to end that wait.
 */
TEST_G(chanpat, stage_at_the_group_limit_is_refused_not_left_waiting)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    goc_chan *c1 = chan(0), *c2 = chan(0), *c3 = chan(0);
    static struct counter cnt;
    cnt = (struct counter){ 0, 10 };
    ASSERT_OK(goc_group_set_limit(g, 0));
    ASSERT_EQ(goc_pipe_generator(g, c1, count_up, &cnt), -EAGAIN);
    ASSERT_OK(goc_group_set_limit(g, 1));
    ASSERT_OK(goc_pipe_generator(g, c1, count_up, &cnt));
    ASSERT_EQ(goc_pipe_stage(g, c1, c2, square, NULL), -EAGAIN);
    goc_chan *ins[] = { c1 };
    ASSERT_EQ(goc_pipe_merge(g, ins, 1, c3), -EAGAIN);
    int64_t v, n = 0;
    while (goc_chan_recv(c1, &v, NULL) > 0)
        n++;
    ASSERT_EQ(n, 10);
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_group_free(g);
    goc_chan_release(c1);
    goc_chan_release(c2);
    goc_chan_release(c3);
}

static int times_two(void *arg, const void *in, void *out)
{
    (void)arg;
    *(int64_t *)out = *(const int64_t *)in * 2;
    return 0;
}

TEST_G(chanpat, fan_out_fan_in_every_value_exactly_once_d034)
{
    enum { N = 4, M = 2000 };
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    goc_chan *src = chan(8), *outs[N], *merged = chan(0);
    for (int i = 0; i < N; i++)
        outs[i] = chan(0);
    static struct counter cnt;
    cnt = (struct counter){ 0, M };
    ASSERT_OK(goc_pipe_generator(g, src, count_up, &cnt));
    ASSERT_EQ(goc_pipe_fan_out(g, src, outs, 0, times_two, NULL), -EINVAL);
    ASSERT_OK(goc_pipe_fan_out(g, src, outs, N, times_two, NULL));
    ASSERT_OK(goc_pipe_merge(g, outs, N, merged));
    static char seen[M];
    memset(seen, 0, sizeof(seen));
    int64_t v, n = 0;
    while (goc_chan_recv(merged, &v, NULL) > 0) {
        ASSERT_EQ(v % 2, 0);
        ASSERT_EQ(seen[v / 2], 0); /* no duplicate */
        seen[v / 2] = 1;
        n++;
    }
    ASSERT_EQ(n, M); /* none lost; closed only after every input */
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_group_free(g);
    goc_chan_release(src);
    goc_chan_release(merged);
    for (int i = 0; i < N; i++)
        goc_chan_release(outs[i]);
}

/*
 * Out of memory at every allocation of a fan-out in turn, then of a merge:
 * a fan-out that fails part-way closes the outputs of the stages it did
 * not start, so a merge over all outputs still ends; a merge that starts
 * nothing leaves its output open.
 */
TEST_G(chanpat, fan_out_and_merge_failing_part_way_leave_nothing_hanging)
{
    enum { N = 3 };
    for (int64_t fault = 0; fault < 40; fault++) {
        goc_group *g;
        ASSERT_OK(goc_group_new(NULL, &g));
        goc_chan *src = chan(0), *outs[N], *merged = chan(0);
        for (int i = 0; i < N; i++)
            outs[i] = chan(0);
        goc__fault_after(fault);
        int rc = goc_pipe_fan_out(g, src, outs, N, times_two, NULL);
        goc__fault_after(-1);
        ASSERT(rc == 0 || rc == -ENOMEM);
        goc__fault_after(rc ? -1 : fault);
        int mrc = goc_pipe_merge(g, outs, N, merged);
        goc__fault_after(-1);
        ASSERT(mrc == 0 || mrc == -ENOMEM);
        goc_chan_close(src); /* the stages started end */
        if (mrc == 0) {
            ASSERT_EQ(goc_chan_recv_timeout(merged, NULL, 5 * GOC_SECOND, NULL),
                      -EPIPE); /* ended and closed: nothing hangs */
        } else {
            ASSERT_EQ(goc_chan_try_recv(merged, NULL), -EAGAIN); /* open */
            for (int i = 0; i < N; i++) /* each closed, by a stage or here */
                while (goc_chan_recv(outs[i], NULL, NULL) > 0)
                    ;
        }
        ASSERT_OK(goc_group_wait(g, NULL));
        goc_group_free(g);
        goc_chan_release(src);
        goc_chan_release(merged);
        for (int i = 0; i < N; i++)
            goc_chan_release(outs[i]);
        if (rc == 0 && mrc == 0 && fault > 20)
            break; /* past every allocation of both */
    }
}

TEST_G(chanpat, merge_of_nothing_closes_at_once)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    goc_chan *out = chan(0), *bad;
    ASSERT_OK(goc_pipe_merge(g, NULL, 0, out));
    ASSERT_EQ(goc_chan_recv(out, NULL, NULL), 0);
    ASSERT_OK(goc_chan_new(1, 0, &bad));
    ASSERT_EQ(goc_pipe_merge(g, &bad, 1, out), -EINVAL); /* sizes differ */
    goc_chan_release(bad);
    goc_chan_release(out);
    goc_group_free(g);
}

/* A channel that fed its own stage or merge made a loop that never
 * ended, and an output given twice to a fan-out was closed by one stage
 * while the other still sent on it. */
TEST_G(chanpat, a_channel_that_would_feed_itself_is_refused)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    goc_chan *in = chan(4), *a = chan(4), *out = chan(4);
    ASSERT_EQ(goc_pipe_stage(g, a, a, square, NULL), -EINVAL);
    goc_chan *twice[2] = { a, a }, *with_in[2] = { a, in };
    ASSERT_EQ(goc_pipe_fan_out(g, in, twice, 2, square, NULL), -EINVAL);
    ASSERT_EQ(goc_pipe_fan_out(g, in, with_in, 2, square, NULL), -EINVAL);
    goc_chan *with_out[2] = { a, out };
    ASSERT_EQ(goc_pipe_merge(g, with_out, 2, out), -EINVAL);
    /* Nothing closed. */
    int64_t v = 3;
    ASSERT_OK(goc_chan_try_send(out, &v));
    ASSERT_EQ(goc_chan_try_recv(out, &v), 1);
    /* The same input twice is fine: each value is forwarded once. */
    ASSERT_OK(goc_pipe_merge(g, twice, 2, out));
    ASSERT_OK(goc_chan_send(a, &v, NULL));
    ASSERT_OK(goc_chan_close(a));
    ASSERT_EQ(goc_chan_recv(out, &v, NULL), 1);
    ASSERT_EQ(v, 3);
    ASSERT_EQ(goc_chan_recv(out, &v, NULL), 0);
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_chan_release(in);
    goc_chan_release(a);
    goc_chan_release(out);
    goc_group_free(g);
}

TEST_G(chanpat, cancelled_midway_leaves_no_goroutine_d035_d036)
{
    /* Inputs that never close and a consumer that stops reading: the
     * seed's fan-out send and fan-in range would hang here forever. */
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_group *g;
    ASSERT_OK(goc_group_new(k, &g));
    goc_chan *src = chan(0), *outs[3], *merged = chan(0), *idle = chan(0);
    for (int i = 0; i < 3; i++)
        outs[i] = chan(0);
    static struct counter cnt;
    cnt = (struct counter){ 0, INT64_MAX };
    int64_t before = goc_pipe_dropped();
    ASSERT_OK(goc_pipe_generator(g, src, count_up, &cnt));
    ASSERT_OK(goc_pipe_fan_out(g, src, outs, 3, times_two, NULL));
    goc_chan *ins[4] = { outs[0], outs[1], outs[2], idle };
    ASSERT_OK(goc_pipe_merge(g, ins, 4, merged));
    int64_t v;
    for (int i = 0; i < 10; i++)
        ASSERT_EQ(goc_chan_recv(merged, &v, NULL), 1);
    goc_ctx_cancel(k); /* the consumer walks away */
    ASSERT_EQ(goc_group_wait(g, NULL), -ECANCELED);
    for (int i = 0; i < 500 && goc_num_goroutine() > 1; i++)
        goc_sleep(GOC_MILLISECOND, NULL); /* the joined ones unwinding */
    ASSERT_EQ(goc_num_goroutine(), 1);
    /* Every stage closed its output; in-flight values were counted. */
    while (goc_chan_recv(merged, &v, NULL) > 0)
        ;
    ASSERT_GT(goc_pipe_dropped(), before); /* the generator's, at least */
    goc_group_free(g);
    goc_ctx_release(k);
    goc_chan_release(src);
    goc_chan_release(merged);
    goc_chan_release(idle);
    for (int i = 0; i < 3; i++)
        goc_chan_release(outs[i]);
}

struct later {
    goc_chan *c;
    int64_t after;
    int close;
};

static void later_send(void *arg)
{
    struct later *l = arg;
    goc_sleep(l->after, NULL);
    int64_t v = 7;
    if (l->close)
        goc_chan_close(l->c);
    else
        goc_chan_send(l->c, &v, NULL);
}

static void *recv_thread(void *arg)
{
    int64_t v;
    intptr_t rc = goc_chan_recv_timeout(arg, &v, 2 * GOC_SECOND, NULL);
    return (void *)(rc == 0 && v == 7 ? 1 : rc);
}

TEST_G(chanpat, recv_timeout_tells_closed_from_a_value_d040_d041)
{
    goc_chan *c = chan(1);
    int64_t v = 0;
    ASSERT_EQ(goc_chan_recv_timeout(c, &v, 2 * GOC_MILLISECOND, NULL),
              -ETIMEDOUT);
    /* A ready value wins over a done ctx and a zero timeout. */
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    goc_ctx_cancel(k);
    for (int i = 0; i < 10000; i++) {
        int64_t z = 0;
        ASSERT_OK(goc_chan_send(c, &z, NULL));
        v = 1;
        ASSERT_OK(goc_chan_recv_timeout(c, &v, 0, k));
        ASSERT_EQ(v, 0); /* a real zero ... */
        ASSERT_EQ(goc_chan_recv_timeout(c, &v, GOC_SECOND, k), -ECANCELED);
    }
    goc_ctx_release(k);
    /* success after waiting; cancel while waiting */
    static struct later l;
    l = (struct later){ c, 2 * GOC_MILLISECOND, 0 };
    ASSERT_OK(goc_go(later_send, &l));
    ASSERT_OK(goc_chan_recv_timeout(c, &v, GOC_SECOND, NULL));
    ASSERT_EQ(v, 7);
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 2 * GOC_MILLISECOND);
    ASSERT_EQ(goc_chan_recv_timeout(c, &v, GOC_SECOND, k), -ECANCELED);
    goc_ctx_release(k);
    /* plain thread */
    pthread_t th;
    void *res;
    ASSERT_OK(pthread_create(&th, NULL, recv_thread, c));
    l = (struct later){ c, 2 * GOC_MILLISECOND, 0 };
    ASSERT_OK(goc_go(later_send, &l));
    test_join(th, &res);
    ASSERT_EQ((intptr_t)res, 1);
    /* ... is told apart from closed, also when closed while waiting */
    l = (struct later){ c, 2 * GOC_MILLISECOND, 1 };
    ASSERT_OK(goc_go(later_send, &l));
    ASSERT_EQ(goc_chan_recv_timeout(c, &v, GOC_SECOND, NULL), -EPIPE);
    ASSERT_EQ(goc_chan_recv_timeout(c, &v, GOC_SECOND, NULL), -EPIPE);
    goc_chan_release(c);
}

TEST_G(chanpat, send_timeout_keeps_the_value_on_timeout)
{
    goc_chan *c = chan(1);
    int64_t v = 1;
    ASSERT_OK(goc_chan_send_timeout(c, &v, 0, NULL));
    ASSERT_EQ(goc_chan_send_timeout(c, &v, 2 * GOC_MILLISECOND, NULL),
              -ETIMEDOUT);
    ASSERT_EQ(goc_chan_len(c), 1);
    goc_chan_close(c);
    ASSERT_EQ(goc_chan_send_timeout(c, &v, GOC_SECOND, NULL), -EPIPE);
    goc_chan_release(c);
}

struct producer {
    goc_chanreg *r;
    _Atomic int rc;
    _Atomic int64_t sent;
};

static void produce(void *arg)
{
    struct producer *p = arg;
    int rc;
    int64_t v = 1;
    while ((rc = goc_chanreg_send(p->r, "jobs", &v, NULL)) == 0)
        atomic_fetch_add(&p->sent, 1);
    atomic_store(&p->rc, rc);
}

TEST_G(chanpat, registry_close_does_not_crash_producers_d043_d045)
{
    goc_chanreg *r;
    ASSERT_EQ(goc_chanreg_new(8, 2, -1, &r), -EINVAL);
    ASSERT_OK(goc_chanreg_new(sizeof(int64_t), 2, 2, &r));
    goc_chan *a, *a2, *b, *c;
    ASSERT_OK(goc_chanreg_get(r, "jobs", &a));
    ASSERT_OK(goc_chanreg_get(r, "jobs", &a2));
    ASSERT(a == a2); /* same name, same channel */
    ASSERT_OK(goc_chanreg_get(r, "other", &b));
    ASSERT_EQ(goc_chanreg_get(r, "third", &c), GOC_EOVERLOAD); /* limit */
    ASSERT_EQ(goc_chanreg_count(r), 2);
    static struct producer p;
    p = (struct producer){ r, 1, 0 };
    ASSERT_OK(goc_go(produce, &p));
    while (atomic_load(&p.sent) < 2)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    goc_sleep(2 * GOC_MILLISECOND, NULL); /* blocked on the full channel */
    ASSERT_OK(goc_chanreg_close(r));
    ASSERT_EQ(goc_chanreg_close(r), GOC_ECLOSED);
    while (atomic_load(&p.rc) == 1)
        goc_sleep(100 * GOC_MICROSECOND, NULL);
    ASSERT_EQ(atomic_load(&p.rc), GOC_ECLOSED); /* no crash */
    /* Receivers drain what was buffered, then see the close. */
    int64_t v, n = 0;
    while (goc_chan_recv(a, &v, NULL) > 0)
        n++;
    ASSERT_EQ(n, 2);
    /* After close nothing is created again (the seed re-created it). */
    ASSERT_EQ(goc_chanreg_get(r, "jobs", &c), GOC_ECLOSED);
    ASSERT_EQ(goc_chanreg_count(r), 0);
    goc_chan_release(a);
    goc_chan_release(a2);
    goc_chan_release(b);
    goc_chanreg_free(r);
}

TEST_G(chanpat, registry_remove_and_user_close_are_harmless_d044_d046)
{
    goc_chanreg *r;
    ASSERT_OK(goc_chanreg_new(sizeof(int64_t), 1, 0, &r));
    goc_chan *a;
    ASSERT_OK(goc_chanreg_get(r, "x", &a));
    int64_t v = 5;
    ASSERT_OK(goc_chanreg_send(r, "x", &v, NULL));
    ASSERT_OK(goc_chanreg_remove(r, "x"));
    ASSERT_EQ(goc_chanreg_remove(r, "x"), -ENOENT);
    ASSERT_EQ(goc_chan_recv(a, &v, NULL), 1);
    ASSERT_EQ(goc_chan_recv(a, &v, NULL), 0); /* closed by remove */
    goc_chan_release(a);
    /* The handle is receive-only: a user's close or send is refused (a
     * close used to succeed and refuse every producer of the name), and
     * so is a send case of a select. */
    ASSERT_OK(goc_chanreg_get(r, "y", &a));
    ASSERT_EQ(goc_chan_close(a), GOC_EMISUSE);
    ASSERT_EQ(goc_chan_send(a, &v, NULL), GOC_EMISUSE);
    ASSERT_EQ(goc_chan_try_send(a, &v), GOC_EMISUSE);
    struct goc_select_case sc = { .chan = a,
                                  .op = GOC_SELECT_SEND,
                                  .elem = &v };
    ASSERT_EQ(goc_select(&sc, 1, GOC_SELECT_DEFAULT, NULL), GOC_EMISUSE);
    /* Nor can a pipeline be given it as an output (a stage took a value
     * and lost it at the refused send). */
    goc_group *g;
    goc_chan *in = chan(1), *ins[1] = { in }, *outs[1] = { a };
    ASSERT_OK(goc_group_new(NULL, &g));
    ASSERT_EQ(goc_pipe_stage(g, in, a, square, NULL), GOC_EMISUSE);
    ASSERT_EQ(goc_pipe_fan_out(g, in, outs, 1, square, NULL), GOC_EMISUSE);
    ASSERT_EQ(goc_pipe_merge(g, ins, 1, a), GOC_EMISUSE);
    ASSERT_EQ(goc_pipe_generator(g, a, count_up, NULL), GOC_EMISUSE);
    ASSERT_OK(goc_group_wait(g, NULL));
    goc_group_free(g);
    goc_chan_release(in);
    ASSERT_OK(goc_chanreg_send(r, "y", &v, NULL));
    ASSERT_EQ(goc_chan_recv(a, &v, NULL), 1);
    ASSERT_OK(goc_chanreg_close(r));
    ASSERT_EQ(goc_chan_recv(a, &v, NULL), 0); /* the registry closed it */
    goc_chan_release(a);
    goc_chanreg_free(r);
}

static void *send_thread(void *arg)
{
    int64_t v = 9;
    return (void *)(intptr_t)goc_chan_send_timeout(arg, &v, 2 * GOC_SECOND,
                                                   NULL);
}

TEST_G(chanpat, send_timeout_cancel_entry_and_plain_thread)
{
    goc_chan *c = chan(1);
    int64_t v = 1;
    ASSERT_OK(goc_chan_send(c, &v, NULL)); /* full */
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 2 * GOC_MILLISECOND);
    ASSERT_EQ(goc_chan_send_timeout(c, &v, GOC_SECOND, k), -ECANCELED);
    ASSERT_EQ(goc_chan_send_timeout(c, &v, GOC_SECOND, k), -ECANCELED);
    ASSERT_EQ(goc_chan_recv(c, &v, NULL), 1);               /* room now */
    ASSERT_OK(goc_chan_send_timeout(c, &v, GOC_SECOND, k)); /* room wins */
    goc_ctx_release(k);
    pthread_t th;
    void *res;
    ASSERT_OK(pthread_create(&th, NULL, send_thread, c));
    goc_sleep(2 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_chan_recv(c, &v, NULL), 1);
    test_join(th, &res);
    ASSERT_EQ((intptr_t)res, 0);
    ASSERT_EQ(goc_chan_recv(c, &v, NULL), 1);
    ASSERT_EQ(v, 9);
    goc_chan_release(c);
}

static void *reg_send_thread(void *arg)
{
    int64_t v = 3;
    return (void *)(intptr_t)goc_chanreg_send(arg, "q", &v, NULL);
}

TEST_G(chanpat, registry_send_timeout_cancel_entry_and_plain_thread)
{
    goc_chanreg *r;
    ASSERT_OK(goc_chanreg_new(sizeof(int64_t), 1, 0, &r));
    goc_chan *q;
    ASSERT_OK(goc_chanreg_get(r, "q", &q));
    int64_t v = 1;
    ASSERT_OK(goc_chanreg_send(r, "q", &v, NULL)); /* full */
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 2 * GOC_MILLISECOND);
    ASSERT_EQ(goc_chanreg_send(r, "q", &v, t), -ETIMEDOUT);
    goc_ctx_destroy(t);
    goc_ctx *k;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &k));
    test_cancel_after(k, 2 * GOC_MILLISECOND);
    ASSERT_EQ(goc_chanreg_send(r, "q", &v, k), -ECANCELED);
    ASSERT_EQ(goc_chan_recv(q, &v, NULL), 1);               /* room now */
    ASSERT_EQ(goc_chanreg_send(r, "q", &v, k), -ECANCELED); /* entry */
    goc_ctx_release(k);
    ASSERT_OK(goc_chanreg_send(r, "q", &v, NULL));
    pthread_t th;
    void *res;
    ASSERT_OK(pthread_create(&th, NULL, reg_send_thread, r));
    goc_sleep(2 * GOC_MILLISECOND, NULL);
    ASSERT_EQ(goc_chan_recv(q, &v, NULL), 1);
    test_join(th, &res);
    ASSERT_EQ((intptr_t)res, 0);
    ASSERT_EQ(goc_chan_recv(q, &v, NULL), 1);
    ASSERT_EQ(v, 3);
    goc_chan_release(q);
    goc_chanreg_free(r);
}

static int stage_panics_at_3(void *arg, const void *in, void *out)
{
    (void)arg;
    if (*(const int64_t *)in == 3)
        goc_panic(-EIO, "stage bug at %d", 3);
    *(int64_t *)out = *(const int64_t *)in;
    return 0;
}

static int gen_panics_at_3(void *arg, void *out)
{
    struct counter *c = arg;
    if (c->next == 3)
        goc_panic(-EIO, "generator bug at %d", 3);
    *(int64_t *)out = c->next++;
    return 1;
}

/* Reads c until it closes or 2 s pass; returns the values read, or -1
 * if the channel stayed open. */
static int64_t drain_until_closed(goc_chan *c)
{
    goc_ctx_local l;
    goc_ctx *t = goc_ctx_init_timeout(&l, NULL, 2 * GOC_SECOND);
    int64_t v, n = 0;
    int rc;
    while ((rc = goc_chan_recv(c, &v, t)) > 0)
        n++;
    goc_ctx_destroy(t);
    return rc == 0 ? n : -1;
}

/*
 * A stage or generator whose callback panicked unwound past its closing
 * of the output: a consumer outside the group waited for ever, and the
 * stage leaked. Its end now runs on every exit, a panic included.
 */
TEST_G(chanpat, panicking_stage_or_generator_still_closes_its_output)
{
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    goc_chan *c1 = chan(0), *c2 = chan(0);
    static struct counter cnt;
    cnt = (struct counter){ 0, 10 };
    ASSERT_OK(goc_pipe_generator(g, c1, count_up, &cnt));
    ASSERT_OK(goc_pipe_stage(g, c1, c2, stage_panics_at_3, NULL));
    ASSERT_EQ(drain_until_closed(c2), 3);
    ASSERT_EQ(goc_group_wait(g, NULL), GOC_EPANIC);
    goc_group_free(g);
    goc_chan_release(c1);
    goc_chan_release(c2);

    ASSERT_OK(goc_group_new(NULL, &g));
    c1 = chan(0);
    cnt = (struct counter){ 0, 10 };
    ASSERT_OK(goc_pipe_generator(g, c1, gen_panics_at_3, &cnt));
    ASSERT_EQ(drain_until_closed(c1), 3);
    ASSERT_EQ(goc_group_wait(g, NULL), GOC_EPANIC);
    goc_group_free(g);
    goc_chan_release(c1);
}

/* Bad input to the registry changes nothing: a send of a NULL value made
 * the channel, then crashed copying from NULL; a capacity no channel can
 * have was taken, and every get failed; a remove after close said there
 * was no such channel. */
TEST_G(chanpat, registry_refuses_bad_input_up_front)
{
    goc_chanreg *r = NULL;
    ASSERT_EQ(goc_chanreg_new(sizeof(int64_t), (size_t)1 << 41, 0, &r),
              -EINVAL);
    ASSERT(r == NULL);
    ASSERT_OK(goc_chanreg_new(sizeof(int64_t), 4, 0, &r));
    ASSERT_EQ(goc_chanreg_send(r, "fresh", NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_chanreg_count(r), 0);
    goc_ctx *done;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &done));
    goc_ctx_cancel(done);
    ASSERT_EQ(goc_chanreg_send(NULL, "x", NULL, done), -EINVAL);
    goc_ctx_release(done);
    goc_chan *a;
    ASSERT_OK(goc_chanreg_get(r, "x", &a));
    ASSERT_OK(goc_chanreg_close(r));
    ASSERT_EQ(goc_chanreg_remove(r, "x"), GOC_ECLOSED);
    ASSERT_EQ(goc_chanreg_remove(r, "never"), GOC_ECLOSED);
    goc_chan_release(a);
    goc_chanreg_free(r);
}
