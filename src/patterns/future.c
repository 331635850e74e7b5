/* SPDX-License-Identifier: MIT */
/*
 * Futures: a set-once outcome behind a mutex and a condition variable,
 * settle callbacks run after the lock is dropped, goc_future_async() and
 * goc_future_then(). The combinators live in future_combine.c.
 */
#include "goc/future.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "patterns.h"
#include "../internal/alloc.h"

#include <stdatomic.h>

struct goc__settle_cb {
    struct goc__settle_cb *next;
    goc_future_cb fn;
    void *arg;
};

/*
 * The outcome fields (status, value) are written once, under mu, before
 * state leaves PENDING with a release store; readers that see a settled
 * state with an acquire load may read them without the lock.
 */
struct goc_future {
    _Atomic int64_t refs;
    _Atomic int state; /* enum goc_future_state */
    int status;
    void *value;
    goc_value_free_fn free_value;
    goc_mutex mu;
    goc_cond cv;
    struct goc__settle_cb *cbs; /* newest first, under mu while pending */
    goc_ctx *producer;          /* cancelled by goc_future_cancel(); owned */
    goc_panic_info *panic;      /* the producer's, when it panicked; owned */
    void (*on_free)(void *aux);
    void *on_free_aux;
};

int goc_future_new(goc_value_free_fn free_value, goc_future **out)
{
    if (!out)
        return -EINVAL;
    goc_future *f = goc__calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    atomic_init(&f->refs, 1);
    f->free_value = free_value;
    *out = f;
    return 0;
}

goc_future *goc_future_retain(goc_future *f)
{
    if (f)
        atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
    return f;
}

void goc_future_release(goc_future *f)
{
    if (!f)
        return;
    /* acq_rel: the last owner sees every write of the others. */
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Under mu: a combinator may be taking its callback back right now
     * (goc__future_cb_detach), holding mu, with no reference of its own;
     * once we have had mu, it is done with f (an unlock is safe against
     * the next holder freeing the mutex). */
    goc_mutex_lock(&f->mu, NULL);
    bool abandoned =
        !atomic_load_explicit(&f->state, memory_order_relaxed) && f->cbs;
    goc_mutex_unlock(&f->mu);
    if (abandoned) {
        /* Nobody can settle it any more: it is abandoned. Settle it as
         * cancelled so its callbacks (combinators, then) run once and
         * let go of what they hold, then free it. */
        atomic_store_explicit(&f->refs, 1, memory_order_relaxed);
        goc_future_complete(f, -ECANCELED, NULL);
        goc_future_release(f);
        return;
    }
    if (f->value && f->free_value)
        f->free_value(f->value);
    for (struct goc__settle_cb *c = f->cbs, *next; c; c = next) {
        next = c->next;
        goc__free(c);
    }
    goc_ctx_release(f->producer);
    goc_panic_info_free(f->panic);
    if (f->on_free)
        f->on_free(f->on_free_aux);
    goc__free(f);
}

void goc__future_set_producer(goc_future *f, goc_ctx *ctx)
{
    f->producer = goc_ctx_retain(ctx);
}

void goc__future_on_free(goc_future *f, void (*fn)(void *aux), void *aux)
{
    f->on_free = fn;
    f->on_free_aux = aux;
}

void *goc__future_take_value(goc_future *f)
{
    goc_mutex_lock(&f->mu, NULL);
    void *v = NULL;
    if (atomic_load_explicit(&f->state, memory_order_relaxed)) {
        v = f->value;
        f->value = NULL;
    }
    goc_mutex_unlock(&f->mu);
    return v;
}

static int state_of(int status)
{
    if (status == 0)
        return GOC_FUTURE_FULFILLED;
    return status == -ECANCELED ? GOC_FUTURE_CANCELED : GOC_FUTURE_REJECTED;
}

/* Callbacks were pushed newest first; run them oldest first. */
static void run_callbacks(goc_future *f, struct goc__settle_cb *list)
{
    struct goc__settle_cb *rev = NULL;
    while (list) {
        struct goc__settle_cb *next = list->next;
        list->next = rev;
        rev = list;
        list = next;
    }
    while (rev) {
        struct goc__settle_cb *next = rev->next;
        rev->fn(f, rev->arg);
        goc__free(rev);
        rev = next;
    }
}

static int complete(goc_future *f,
                    int status,
                    void *value,
                    goc_panic_info *panic);

int goc_future_complete(goc_future *f, int status, void *value)
{
    if (!f || status > 0)
        return -EINVAL;
    return complete(f, status, value, NULL);
}

int goc__future_fail_panic(goc_future *f, goc_panic_info *p)
{
    int won = complete(f, GOC_EPANIC, NULL, p);
    if (won != 1)
        goc_panic_info_free(p);
    return won;
}

const goc_panic_info *goc_future_panic(goc_future *f)
{
    if (!f || !atomic_load_explicit(&f->state, memory_order_acquire))
        return NULL;
    return f->panic;
}

static int complete(goc_future *f,
                    int status,
                    void *value,
                    goc_panic_info *panic)
{
    /* The producer's work is over: its context ends, and leaves its
     * parent before anyone sees the outcome. The parent may be a local
     * context, which ends once the producer is done; the future may be
     * released long after. */
    if (f->producer)
        goc_ctx_cancel(f->producer);
    goc_mutex_lock(&f->mu, NULL);
    if (atomic_load_explicit(&f->state, memory_order_relaxed) != 0) {
        goc_mutex_unlock(&f->mu);
        return 0;
    }
    f->status = status;
    f->value = value;
    f->panic = panic;
    /* release: pairs with the acquire loads of is_done/try_get. */
    atomic_store_explicit(&f->state, state_of(status), memory_order_release);
    struct goc__settle_cb *cbs = f->cbs;
    f->cbs = NULL;
    goc_cond_broadcast(&f->cv);
    goc_mutex_unlock(&f->mu);
    /* A callback may drop the last outside reference: keep f alive. */
    goc_future_retain(f);
    run_callbacks(f, cbs);
    goc_future_release(f);
    return 1;
}

static int read_outcome(goc_future *f, int *status, void **value)
{
    *status = f->status;
    if (value)
        *value = f->value;
    return 0;
}

int goc_future_try_get(goc_future *f, int *status, void **value)
{
    if (!f || !status)
        return -EINVAL;
    if (!atomic_load_explicit(&f->state, memory_order_acquire))
        return -EAGAIN;
    return read_outcome(f, status, value);
}

int goc_future_get(goc_future *f, int *status, void **value, goc_ctx *ctx)
{
    if (!f || !status)
        return -EINVAL;
    /* Observation rule: a settled outcome wins over a done ctx. */
    if (atomic_load_explicit(&f->state, memory_order_acquire))
        return read_outcome(f, status, value);
    int rc = 0;
    goc_mutex_lock(&f->mu, NULL);
    while (!atomic_load_explicit(&f->state, memory_order_relaxed)) {
        rc = goc_ctx_err(ctx);
        if (rc || (rc = goc_cond_wait(&f->cv, &f->mu, ctx)) != 0)
            break;
    }
    if (atomic_load_explicit(&f->state, memory_order_relaxed))
        rc = read_outcome(f, status, value);
    goc_mutex_unlock(&f->mu);
    return rc;
}

int goc_future_get_timeout(goc_future *f,
                           int *status,
                           void **value,
                           int64_t timeout)
{
    if (!f || !status)
        return -EINVAL;
    if (timeout <= 0) {
        int rc = goc_future_try_get(f, status, value);
        return rc == -EAGAIN ? -ETIMEDOUT : rc;
    }
    goc_ctx_local local;
    goc_ctx *c = goc_ctx_init_timeout(&local, NULL, timeout);
    int rc = goc_future_get(f, status, value, c);
    goc_ctx_destroy(c);
    return rc;
}

bool goc_future_is_done(goc_future *f)
{
    return f && atomic_load_explicit(&f->state, memory_order_acquire) != 0;
}

enum goc_future_state goc_future_state(goc_future *f)
{
    if (!f)
        return GOC_FUTURE_PENDING;
    return atomic_load_explicit(&f->state, memory_order_acquire);
}

struct goc__settle_cb *goc__future_cb_new(goc_future_cb cb, void *arg)
{
    struct goc__settle_cb *c = goc__malloc(sizeof(*c));
    if (c)
        *c = (struct goc__settle_cb){ NULL, cb, arg };
    return c;
}

void goc__future_cb_free(struct goc__settle_cb *c)
{
    goc__free(c);
}

void goc__future_cb_attach(goc_future *f, struct goc__settle_cb *c)
{
    goc_mutex_lock(&f->mu, NULL);
    if (!atomic_load_explicit(&f->state, memory_order_relaxed)) {
        c->next = f->cbs;
        f->cbs = c;
        goc_mutex_unlock(&f->mu);
        return;
    }
    goc_mutex_unlock(&f->mu);
    goc_future_cb cb = c->fn;
    void *arg = c->arg;
    goc__free(c);
    cb(f, arg); /* already settled: now, on this thread, no lock held */
}

bool goc__future_cb_detach(goc_future *f, struct goc__settle_cb *c)
{
    bool found = false;
    goc_mutex_lock(&f->mu, NULL);
    for (struct goc__settle_cb **at = &f->cbs; *at; at = &(*at)->next) {
        if (*at == c) {
            *at = c->next;
            found = true;
            break;
        }
    }
    goc_mutex_unlock(&f->mu);
    return found;
}

int goc_future_on_settle(goc_future *f, goc_future_cb cb, void *arg)
{
    if (!f || !cb)
        return -EINVAL;
    struct goc__settle_cb *c = goc__future_cb_new(cb, arg);
    if (!c)
        return -ENOMEM;
    goc__future_cb_attach(f, c);
    return 0;
}

int goc_future_cancel(goc_future *f)
{
    if (!f)
        return -EINVAL;
    return goc_future_complete(f, -ECANCELED, NULL); /* cancels producer */
}

/* --- async ------------------------------------------------------------ */

struct async_job {
    goc_future *f;
    goc_ctx *ctx;
    goc_task_fn fn;
    void *arg;
};

static void settle_or_drop(goc_future *f, int rc, void *value)
{
    if (rc > 0)
        rc = -EINVAL; /* a task must return 0 or a negative code */
    if (goc_future_complete(f, rc, value) == 0 && value && f->free_value)
        f->free_value(value); /* cancelled meanwhile: the value is late */
}

static void async_main(void *p)
{
    struct async_job *j = p;
    void *value = NULL;
    goc_panic_info *panic;
    int rc = goc__safe_task(j->fn, j->ctx, j->arg, &value, &panic);
    if (panic)
        goc__future_fail_panic(j->f, panic);
    else
        settle_or_drop(j->f, rc, value);
    goc_ctx_release(j->ctx);
    goc_future_release(j->f);
    goc__free(j);
}

int goc_future_async(goc_task_fn fn,
                     void *arg,
                     goc_value_free_fn free_value,
                     goc_ctx *ctx,
                     goc_future **out)
{
    if (!fn || !out)
        return -EINVAL;
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    struct async_job *j = goc__calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    if ((rc = goc_future_new(free_value, &j->f)) != 0)
        goto free_job;
    if ((rc = goc_ctx_with_cancel(ctx, &j->ctx)) != 0)
        goto free_future;
    goc__future_set_producer(j->f, j->ctx);
    j->fn = fn;
    j->arg = arg;
    *out = goc_future_retain(j->f);
    if ((rc = goc_go(async_main, j)) == 0)
        return 0;
    goc_future_release(*out);
    *out = NULL;
    goc_ctx_release(j->ctx);
free_future:
    goc_future_release(j->f);
free_job:
    goc__free(j);
    return rc;
}

/* --- then ------------------------------------------------------------- */

struct then_job {
    goc_future *src, *dst;
    goc_future_then_fn fn;
    void *arg;
};

static void then_main(void *p)
{
    struct then_job *j = p;
    void *value = NULL;
    int rc = goc__safe_then(j->fn, j->src->value, j->arg, &value);
    settle_or_drop(j->dst, rc, value);
    goc_future_release(j->src);
    goc_future_release(j->dst);
    goc__free(j);
}

static void then_settled(goc_future *src, void *p)
{
    struct then_job *j = p;
    /* Taken only now, from the settler's: a reference held while src
     * was pending would keep src from ever being abandoned. */
    j->src = goc_future_retain(src);
    if (src->status == 0 && !goc_future_is_done(j->dst) &&
        goc_go(then_main, j) == 0)
        return;
    int rc = src->status == 0 ? -ENOMEM : src->status;
    if (goc_future_is_done(j->dst))
        rc = 0;
    if (rc)
        goc_future_complete(j->dst, rc, NULL);
    goc_future_release(j->src);
    goc_future_release(j->dst);
    goc__free(j);
}

int goc_future_then(goc_future *f,
                    goc_future_then_fn fn,
                    void *arg,
                    goc_value_free_fn free_value,
                    goc_future **out)
{
    if (!f || !fn || !out)
        return -EINVAL;
    struct then_job *j = goc__calloc(1, sizeof(*j));
    if (!j)
        return -ENOMEM;
    int rc = goc_future_new(free_value, &j->dst);
    if (rc) {
        goc__free(j);
        return rc;
    }
    j->fn = fn;
    j->arg = arg;
    *out = goc_future_retain(j->dst);
    if ((rc = goc_future_on_settle(f, then_settled, j)) == 0)
        return 0;
    goc_future_release(j->dst);
    goc_future_release(*out);
    *out = NULL;
    goc__free(j);
    return rc;
}
