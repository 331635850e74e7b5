/* SPDX-License-Identifier: MIT */
/*
 * Tasks run under goc_try(): a panicking task settles as GOC_EPANIC and
 * is reported once through the runtime's log hook (message and the
 * innermost frames), as ants logs a worker's panic; its worker, pool or
 * group goes on.
 */
#include "patterns.h"
#include "goc/panic.h"
#include "../runtime/runtime.h"

#include <string.h>

static int report(goc_panic_info *p)
{
    char text[1024];
    goc_panic_info_format(p, text, sizeof(text));
    goc__log("a task panicked; it failed alone:\n%s", text);
    goc_panic_info_free(p);
    return GOC_EPANIC;
}

/* Sets *panicked only for a real panic: goc_try() gives GOC_EPANIC with
 * no info when fn merely returned that code, which is fn's own result. */
static int safe_call(int (*fn)(void *), void *arg, bool *panicked)
{
    goc_panic_info *p = NULL;
    int rc = goc_try(fn, arg, &p);
    *panicked = p != NULL;
    return p ? report(p) : rc;
}

int goc__safe_call(int (*fn)(void *), void *arg)
{
    bool panicked;
    return safe_call(fn, arg, &panicked);
}

struct task_call {
    goc_task_fn fn;
    goc_ctx *ctx;
    void *arg;
    void **result;
};

static int run_task(void *arg)
{
    struct task_call *c = arg;
    return c->fn(c->ctx, c->arg, c->result);
}

int goc__safe_task(goc_task_fn fn, goc_ctx *ctx, void *arg, void **result)
{
    struct task_call c = { fn, ctx, arg, result };
    bool panicked;
    int rc = safe_call(run_task, &c, &panicked);
    if (panicked)
        *result = NULL; /* whatever it set before panicking is not a value */
    return rc;
}

struct then_call {
    goc_future_then_fn fn;
    const void *value;
    void *arg;
    void **result;
};

static int run_then(void *arg)
{
    struct then_call *c = arg;
    return c->fn(c->value, c->arg, c->result);
}

int goc__safe_then(goc_future_then_fn fn,
                   const void *value,
                   void *arg,
                   void **result)
{
    struct then_call c = { fn, value, arg, result };
    bool panicked;
    int rc = safe_call(run_then, &c, &panicked);
    if (panicked)
        *result = NULL;
    return rc;
}

struct group_call {
    goc_group_fn fn;
    goc_ctx *ctx;
    void *arg;
};

static int run_group(void *arg)
{
    struct group_call *c = arg;
    return c->fn(c->ctx, c->arg);
}

int goc__safe_group(goc_group_fn fn, goc_ctx *ctx, void *arg)
{
    struct group_call c = { fn, ctx, arg };
    return goc__safe_call(run_group, &c);
}
