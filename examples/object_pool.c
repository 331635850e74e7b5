/* SPDX-License-Identifier: MIT */
/*
 * The seed's ObjectPoolExample (section 4.2) in C: 1 KiB buffers reused
 * through a pool that clears them, then a bounded pool of "connections".
 *
 * Fixed against the original: put(NULL) is ignored, reset runs only for
 * buffers the pool keeps, a grown buffer is not kept, retained objects
 * are bounded and counted, and the pool stores pointers (the seed's
 * []byte in an interface allocated on every put).
 */
#include <goc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *new_buf(void *arg)
{
    (void)arg;
    return calloc(1, 1024);
}

static void clear_buf(void *buf, void *arg)
{
    (void)arg;
    memset(buf, 0, 1024);
}

static void free_buf(void *buf, void *arg)
{
    (void)arg;
    free(buf);
}

static int next_conn = 1;

static int dial(void *arg, void **out)
{
    (void)arg;
    int *c = malloc(sizeof *c);
    if (!c)
        return -ENOMEM;
    *c = next_conn++;
    *out = c;
    printf("  dialled connection %d\n", *c);
    return 0;
}

static void hang_up(void *conn, void *arg)
{
    (void)arg;
    printf("  closed connection %d\n", *(int *)conn);
    free(conn);
}

static int example(void *unused)
{
    (void)unused;
    struct goc_objpool_opts o = { .new_fn = new_buf,
                                  .reset_fn = clear_buf,
                                  .destroy_fn = free_buf,
                                  .max_cached = 100 };
    goc_objpool *pool;
    goc_objpool_new(&o, &pool);
    char *buf = goc_objpool_get(pool);
    memcpy(buf, "Hello, World!", 14);
    printf("%s\n", buf);
    goc_objpool_put(pool, buf);
    goc_objpool_put(pool, NULL); /* ignored */
    char *again = goc_objpool_get(pool);
    printf("reused buffer is cleared: %s\n", again[0] == 0 ? "yes" : "no");
    goc_objpool_put(pool, again);
    struct goc_objpool_stats st;
    goc_objpool_stats(pool, &st);
    printf("gets %lld, hits %lld, misses %lld, retained %lld\n",
           (long long)st.gets, (long long)st.hits, (long long)st.misses,
           (long long)st.retained);
    goc_objpool_free(pool);

    printf("a pool of at most 2 connections:\n");
    struct goc_rpool_opts ro = {
        .max_total = 2, .max_idle = 1, .create = dial, .destroy = hang_up
    };
    goc_rpool *conns;
    goc_rpool_new(&ro, &conns);
    void *a, *b, *c;
    goc_rpool_acquire(conns, &a, NULL);
    goc_rpool_acquire(conns, &b, NULL);
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 20 * GOC_MILLISECOND);
    printf("  a third acquire waits, then: %s\n",
           goc_strerror(goc_rpool_acquire(conns, &c, ctx)));
    goc_ctx_destroy(ctx);
    goc_rpool_release(conns, a, false);
    printf("  releasing it twice: %s\n",
           goc_strerror(goc_rpool_release(conns, a, false)));
    goc_rpool_release(conns, b, false); /* beyond max_idle: closed */
    goc_rpool_free(conns);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
