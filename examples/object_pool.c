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

/* A buffer that may grow, as the seed's bytes.Buffer does. */
struct buffer {
    size_t cap;
    char *data;
};

#define BUF_SIZE     1024
#define BUF_KEEP_MAX (4 * BUF_SIZE)

static void *new_buf(void *arg)
{
    (void)arg;
    struct buffer *b = malloc(sizeof *b);
    if (b && !(b->data = calloc(1, BUF_SIZE))) {
        free(b);
        return NULL;
    }
    if (b)
        b->cap = BUF_SIZE;
    return b;
}

static void clear_buf(void *obj, void *arg)
{
    (void)arg;
    struct buffer *b = obj;
    memset(b->data, 0, b->cap);
}

static void free_buf(void *obj, void *arg)
{
    (void)arg;
    struct buffer *b = obj;
    free(b->data);
    free(b);
}

static size_t buf_size(void *obj, void *arg)
{
    (void)arg;
    return ((struct buffer *)obj)->cap;
}

static void grow(struct buffer *b, size_t cap)
{
    char *d = realloc(b->data, cap);
    if (d) {
        b->data = d;
        b->cap = cap;
    }
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
                                  .size_fn = buf_size,
                                  .max_cached = 100,
                                  .max_retained_size = BUF_KEEP_MAX };
    goc_objpool *pool;
    if (goc_objpool_new(&o, &pool) != 0)
        return 1;
    struct buffer *buf = goc_objpool_get(pool);
    if (!buf)
        return 1;
    memcpy(buf->data, "Hello, World!", 14);
    printf("%s\n", buf->data);
    goc_objpool_put(pool, buf);
    goc_objpool_put(pool, NULL); /* ignored */
    struct buffer *again = goc_objpool_get(pool);
    printf("reused buffer is cleared: %s\n",
           again->data[0] == 0 ? "yes" : "no");
    grow(again, 64 * BUF_SIZE);   /* one huge message */
    goc_objpool_put(pool, again); /* dropped: the pool keeps 4 KiB at most */
    struct goc_objpool_stats st;
    goc_objpool_stats(pool, &st);
    printf("gets %lld, hits %lld, misses %lld, puts %lld, dropped %lld, "
           "retained %lld\n",
           (long long)st.gets, (long long)st.hits, (long long)st.misses,
           (long long)st.puts, (long long)st.drops, (long long)st.retained);
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
