/* SPDX-License-Identifier: MIT */
/*
 * Tests of rich errors (errors.Join / errors.Is / wrapping) and of the
 * concurrent aggregator (the seed's ErrorAggregator, with its defects
 * D-057..D-059 shown absent).
 */
#include "test.h"

#include "../src/internal/alloc.h"

#include <pthread.h>
#include <stdatomic.h>

TEST(errors, join_is_wrap_and_format)
{
    goc_error *none[3] = { NULL, NULL, NULL };
    ASSERT(goc_error_join(none, 3) == NULL); /* all nil: success */
    ASSERT(goc_error_join(NULL, 0) == NULL);

    goc_error *eof = goc_error_new(-ENODATA, "EOF");
    goc_error *cnl = goc_error_new(-ECANCELED, "context canceled");
    goc_error *in[4] = { NULL, eof, NULL, cnl };
    goc_error *j = goc_error_join(in, 4);
    ASSERT_STR(goc_error_message(j), "EOF\ncontext canceled");
    ASSERT_EQ(goc_error_nchildren(j), 2);
    ASSERT(goc_error_child(j, 0) == eof);
    ASSERT(goc_error_child(j, 1) == cnl);
    ASSERT(goc_error_child(j, 2) == NULL);
    ASSERT_EQ(goc_error_code(j), -ENODATA);
    ASSERT(goc_error_is(j, -ENODATA)); /* the seed lost this (D-058) */
    ASSERT(goc_error_is(j, -ECANCELED));
    ASSERT(!goc_error_is(j, -ENOENT));
    ASSERT(goc_error_is_err(j, cnl));

    /* One child: the message is the child's. */
    goc_error *one = goc_error_join(&in[1], 1);
    ASSERT_STR(goc_error_message(one), "EOF");

    /* Wrapping keeps the cause reachable, nested in joins too. */
    goc_error *w = goc_error_wrap(eof, "reading %s", "config");
    ASSERT_STR(goc_error_message(w), "reading config: EOF");
    ASSERT_EQ(goc_error_code(w), -ENODATA);
    ASSERT(goc_error_cause(w) == eof);
    ASSERT(goc_error_wrap(NULL, "x") == NULL);
    goc_error *in2[2] = { cnl, w };
    goc_error *j2 = goc_error_join(in2, 2);
    goc_error *top = goc_error_with_code(GOC_EEXHAUSTED, j2, "retry");
    ASSERT(goc_error_is(top, GOC_EEXHAUSTED));
    ASSERT(goc_error_is(top, -ENODATA));
    ASSERT(goc_error_is_err(top, eof));
    ASSERT(!goc_error_is(NULL, -ENODATA));

    char buf[512];
    size_t need = goc_error_format(top, true, buf, sizeof buf);
    ASSERT_EQ(need, strlen(buf));
    ASSERT(strstr(buf, "  joined (2)") != NULL);
    ASSERT(strstr(buf, "      EOF [code") != NULL);
    char small[8];
    need = goc_error_format(w, false, small, sizeof small);
    ASSERT_EQ(need, strlen("reading config: EOF"));
    ASSERT_STR(small, "reading");
    goc_error_format(NULL, false, buf, sizeof buf);
    ASSERT_STR(buf, "<nil>");

    /* GOC_EWOULDEXCEED is a deadline failure (golang/go#54541). */
    goc_error *wx = goc_error_new(GOC_EWOULDEXCEED, NULL);
    ASSERT(goc_error_is(wx, -ETIMEDOUT));
    ASSERT(goc_error_code_is(GOC_EWOULDEXCEED, -ETIMEDOUT));
    ASSERT(!goc_error_code_is(-ETIMEDOUT, GOC_EWOULDEXCEED));
    ASSERT_STR(goc_error_message(wx), goc_strerror(GOC_EWOULDEXCEED));
    goc_error *eio = goc_error_new(-EIO, NULL); /* the C library's name */
    ASSERT_STR(goc_error_message(eio), strerror(EIO));
    goc_error_release(eio);

    goc_error *all[] = { eof, cnl, j, one, w, j2, top, wx };
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        goc_error_release(all[i]);
}

static _Atomic int freed;

static void free_payload(void *p)
{
    ASSERT_EQ(*(int *)p, 42);
    atomic_fetch_add(&freed, 1);
}

TEST(errors, refcount_payload_and_out_of_memory)
{
    static int val = 42;
    goc_error *e = goc_error_new_payload(-EIO, &val, free_payload, "io %d", 7);
    ASSERT(goc_error_payload(e) == &val);
    goc_error *w = goc_error_wrap(e, "outer");
    goc_error_release(e); /* w still holds it */
    ASSERT_EQ(atomic_load(&freed), 0);
    ASSERT_STR(goc_error_message(goc_error_cause(w)), "io 7");
    goc_error_release(w);
    ASSERT_EQ(atomic_load(&freed), 1);

    /* Out of memory: a static -ENOMEM error, never NULL, nothing leaks. */
    for (int64_t n = 0; n < 4; n++) {
        goc__fault_after(n);
        goc_error *x = goc_error_new_payload(-EIO, &val, free_payload, "x");
        goc_error *y = goc_error_wrap(x, "y");
        goc__fault_after(-1);
        ASSERT(x != NULL && y != NULL);
        if (goc_error_code(x) == -ENOMEM)
            ASSERT_STR(goc_error_message(x), "out of memory");
        goc_error_release(y);
        goc_error_release(x);
    }
    ASSERT_EQ(atomic_load(&freed), 5); /* every payload freed once */
}

struct agg_prod {
    goc_error_agg *a;
    int id;
    int per;
    goc_wg *wg;
};

static void producer(void *arg)
{
    struct agg_prod *p = arg;
    for (int i = 0; i < p->per; i++) {
        goc_error *e = goc_error_new(-EIO - (i % 2), "p%d-%d", p->id, i);
        ASSERT_OK(goc_error_agg_add(p->a, e));
        goc_error_agg_add(p->a, NULL); /* ignored */
        goc_error_release(e);
    }
    if (p->wg)
        goc_wg_done(p->wg);
}

static void *producer_thread(void *arg)
{
    producer(arg);
    return NULL;
}

TEST_G(errors, aggregator_concurrent_adds_lose_nothing)
{
    goc_error_agg *a;
    ASSERT_OK(goc_error_agg_new(NULL, &a));
    ASSERT(goc_error_agg_err(a) == NULL); /* nothing added: success */
    static goc_wg wg;
    static struct agg_prod p[9];
    int per = (int)test_scale(500);
    goc_wg_add(&wg, 8);
    for (int i = 0; i < 9; i++)
        p[i] = (struct agg_prod){ a, i, per, i < 8 ? &wg : NULL };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, producer_thread, &p[8]));
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_go(producer, &p[i]));
    goc_wg_wait(&wg, NULL);
    ASSERT_OK(test_join(th, NULL));
    ASSERT_EQ(goc_error_agg_len(a), 9 * per);
    goc_error *j = goc_error_agg_err(a);
    ASSERT_EQ(goc_error_nchildren(j), 9 * per);
    ASSERT(goc_error_is(j, -EIO));
    ASSERT(goc_error_is(j, -EIO - 1));
    /* Each producer's errors appear in its own order. */
    int next[9] = { 0 };
    for (size_t i = 0; i < goc_error_nchildren(j); i++) {
        int id, k;
        ASSERT_EQ(
            sscanf(goc_error_message(goc_error_child(j, i)), "p%d-%d", &id, &k),
            2);
        ASSERT_EQ(k, next[id]);
        next[id]++;
    }
    goc_error_release(j);
    goc_error_agg_reset(a);
    ASSERT_EQ(goc_error_agg_len(a), 0);
    ASSERT(goc_error_agg_err(a) == NULL);
    goc_error_agg_free(a);
}

TEST(errors, aggregator_cap_and_dedupe)
{
    goc_error_agg *a;
    struct goc_error_agg_opts o = { .max_errors = 2, .dedupe = true };
    ASSERT_OK(goc_error_agg_new(&o, &a));
    ASSERT_OK(goc_error_agg_add_code(a, -EIO, "disk"));
    ASSERT_OK(goc_error_agg_add_code(a, -EIO, "disk")); /* duplicate */
    ASSERT_OK(goc_error_agg_add_code(a, -EPIPE, "pipe"));
    ASSERT_OK(goc_error_agg_add_code(a, -ENOENT, "gone"));
    ASSERT_OK(goc_error_agg_add_code(a, -EACCES, NULL));
    ASSERT_EQ(goc_error_agg_len(a), 2);
    ASSERT_EQ(goc_error_agg_dropped(a), 2);
    ASSERT_EQ(goc_error_agg_deduplicated(a), 1);
    goc_error *j = goc_error_agg_err(a);
    ASSERT_STR(goc_error_message(j), "disk\npipe\n... and 2 more");
    ASSERT(goc_error_is(j, -EPIPE));
    ASSERT(!goc_error_is(j, -ENOENT)); /* dropped, only counted */
    goc_error_release(j);
    /* The collector stays usable after a snapshot. */
    goc_error_agg_reset(a);
    ASSERT_OK(goc_error_agg_add_code(a, -EIO, "again"));
    j = goc_error_agg_err(a);
    ASSERT_STR(goc_error_message(j), "again");
    goc_error_release(j);
    goc_error_agg_free(a);
    ASSERT_EQ(goc_error_agg_new(NULL, NULL), -EINVAL);
}

/* An aggregator whose every error was dropped for want of memory still
 * reports an error: NULL would say that nothing failed. */
TEST(errors, aggregator_all_dropped_is_not_success)
{
    goc_error_agg *a;
    ASSERT_OK(goc_error_agg_new(NULL, &a));
    goc_error *e = goc_error_new(-EIO, "disk");
    goc__fault_after(0);
    int rc = goc_error_agg_add(a, e);
    goc__fault_after(-1);
    ASSERT_EQ(rc, -ENOMEM);
    ASSERT_EQ(goc_error_agg_len(a), 0);
    ASSERT_EQ(goc_error_agg_dropped(a), 1);
    goc_error *all = goc_error_agg_err(a);
    ASSERT(all != NULL);
    ASSERT_EQ(goc_error_code(all), -ENOMEM);
    goc_error_release(all);
    /* Nor may an error whose making ran out of memory pass for the
     * static out-of-memory error, added (there is room) as if it were
     * the one meant. */
    ASSERT_OK(goc_error_agg_add(a, e));
    goc__fault_after(0);
    rc = goc_error_agg_add_code(a, -EPIPE, "socket");
    goc__fault_after(-1);
    ASSERT_EQ(rc, -ENOMEM);
    ASSERT_EQ(goc_error_agg_len(a), 1);
    ASSERT_EQ(goc_error_agg_dropped(a), 2);
    goc_error_release(e);
    goc_error_agg_free(a);
}

/* The aggregator's counters and reset took NULL as a crash, where add,
 * err and free take it as nothing. */
TEST(errors, aggregator_accessors_take_null)
{
    ASSERT_EQ(goc_error_agg_len(NULL), 0);
    ASSERT_EQ(goc_error_agg_dropped(NULL), 0);
    ASSERT_EQ(goc_error_agg_deduplicated(NULL), 0);
    goc_error_agg_reset(NULL);
}
