/* SPDX-License-Identifier: MIT */
/*
 * MultiPool (ants v2): several goroutine pools behind one submit, picked
 * round robin or by the fewest running tasks, to spread the contention
 * of one pool's lock.
 */
#include "goc/pool.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "patterns.h"
#include "../internal/alloc.h"

#include <stdatomic.h>

struct goc_multipool {
    int n;
    enum goc_lb lb;
    _Atomic uint64_t next; /* round robin */
    /* Under mu: release_timeout calls under way, which go from pool to
     * pool; a free waits for them. Submits never take mu. */
    goc_mutex mu;
    goc_cond quiet_cv;
    int releasing;
    bool freeing;
    goc_pool *pools[];
};

int goc_multipool_new(int n,
                      const struct goc_pool_config *cfg,
                      enum goc_lb lb,
                      goc_multipool **out)
{
    if (n <= 0 || !out ||
        (lb != GOC_LB_ROUND_ROBIN && lb != GOC_LB_LEAST_RUNNING))
        return -EINVAL;
    goc_multipool *m = goc__calloc(1, sizeof(*m) + (size_t)n * sizeof(void *));
    if (!m)
        return -ENOMEM;
    m->lb = lb;
    for (; m->n < n; m->n++) {
        int rc = goc_pool_new(cfg, &m->pools[m->n]);
        if (rc) {
            goc_multipool_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

void goc_multipool_free(goc_multipool *m)
{
    if (!m)
        return;
    /* Close them all first: a release_timeout waiting on one of them for
     * its workers then finishes, and goes on to the next pool, which
     * must still be there. */
    for (int i = 0; i < m->n; i++)
        goc_pool_release(m->pools[i]);
    goc_mutex_lock(&m->mu, NULL);
    m->freeing = true;
    while (m->releasing)
        goc_cond_wait(&m->quiet_cv, &m->mu, NULL);
    goc_mutex_unlock(&m->mu);
    for (int i = 0; i < m->n; i++)
        goc_pool_free(m->pools[i]);
    goc__free(m);
}

static goc_pool *least_running(goc_multipool *m)
{
    goc_pool *best = m->pools[0];
    int64_t low = goc_pool_running(best);
    for (int i = 1; i < m->n && low > 0; i++) {
        int64_t r = goc_pool_running(m->pools[i]);
        if (r < low) {
            low = r;
            best = m->pools[i];
        }
    }
    return best;
}

int goc_multipool_submit(goc_multipool *m,
                         goc_pool_fn fn,
                         void *arg,
                         goc_ctx *ctx)
{
    if (!m || !fn)
        return -EINVAL;
    /* Refused at entry as the pool would: before the round robin moves
     * on, so that the call changes nothing. */
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    if (m->lb == GOC_LB_LEAST_RUNNING)
        return goc_pool_submit(least_running(m), fn, arg, ctx);
    uint64_t i = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
    goc_pool *p = m->pools[i % (uint64_t)m->n];
    rc = goc_pool_submit(p, fn, arg, ctx);
    if (rc == GOC_EOVERLOAD) {
        goc_pool *q = least_running(m);
        if (q != p)
            rc = goc_pool_submit(q, fn, arg, ctx); /* one retry */
    }
    return rc;
}

goc_pool *goc_multipool_pool(goc_multipool *m, int i)
{
    return m && i >= 0 && i < m->n ? m->pools[i] : NULL;
}

int64_t goc_multipool_running(goc_multipool *m)
{
    int64_t sum = 0;
    for (int i = 0; m && i < m->n; i++)
        sum += goc_pool_running(m->pools[i]);
    return sum;
}

int64_t goc_multipool_waiting(goc_multipool *m)
{
    int64_t sum = 0;
    for (int i = 0; m && i < m->n; i++)
        sum += goc_pool_waiting(m->pools[i]);
    return sum;
}

int goc_multipool_release_timeout(goc_multipool *m, int64_t timeout)
{
    if (!m)
        return -EINVAL;
    /* Saturate: INT64_MAX ("no limit") must not overflow the sum, and a
     * negative timeout polls as 0 does. */
    int64_t now = goc_now();
    if (timeout < 0)
        timeout = 0;
    int64_t deadline = timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
    /* Every pool closes before any is waited for: a submit racing the
     * release is refused whichever pool it would go to, and the pools'
     * workers all wind down in the same budget. */
    goc_mutex_lock(&m->mu, NULL);
    m->releasing++;
    goc_mutex_unlock(&m->mu);
    int rc = 0;
    for (int i = 0; i < m->n; i++) {
        int r = goc_pool_release(m->pools[i]);
        if (r && !rc)
            rc = r;
    }
    for (int i = 0; i < m->n; i++)
        if (goc__pool_wait_exited(m->pools[i], deadline) && !rc)
            rc = -ETIMEDOUT;
    goc_mutex_lock(&m->mu, NULL);
    if (--m->releasing == 0 && m->freeing)
        goc_cond_broadcast(&m->quiet_cv);
    goc_mutex_unlock(&m->mu);
    return rc;
}
