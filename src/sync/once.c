/* SPDX-License-Identifier: MIT */
/* Once: a flag read without a lock on the fast path, a mutex for the rest. */
#include "goc/panic.h"
#include "goc/sync.h"
#include "../runtime/runtime.h"

#include <assert.h>
#include <errno.h>
#include <stdatomic.h>

struct once {
    _Atomic uint32_t done;
    int result;
    goc_mutex mu;
};

static_assert(sizeof(struct once) <= sizeof(goc_once), "goc_once small");

int goc_once_do_result(goc_once *o, int (*fn)(void *), void *arg)
{
    if (!o || !fn)
        return -EINVAL; /* and the once is not used up */
    struct once *x = (struct once *)o;
    /* Acquire pairs with the release below: fn's effects are visible. */
    if (atomic_load_explicit(&x->done, memory_order_acquire))
        return x->result;
    goc_mutex_lock(&x->mu, NULL);
    if (!atomic_load_explicit(&x->done, memory_order_relaxed)) {
        goc_panic_info *p = NULL;
        x->result = goc_try(fn, arg, &p);
        atomic_store_explicit(&x->done, 1, memory_order_release);
        if (p) {
            /* As in Go, a function that panicked has run: the lock goes,
             * later calls return GOC_EPANIC, and the panic goes on. */
            goc_mutex_unlock(&x->mu);
            goc__panic_again(p);
        }
    }
    goc_mutex_unlock(&x->mu);
    return x->result;
}

struct plain {
    goc_fn fn;
    void *arg;
};

static int call_plain(void *p)
{
    struct plain *c = p;
    c->fn(c->arg);
    return 0;
}

int goc_once_do(goc_once *o, goc_fn fn, void *arg)
{
    if (!o || !fn)
        return -EINVAL;
    struct plain c = { fn, arg };
    return goc_once_do_result(o, call_plain, &c);
}
