/* SPDX-License-Identifier: MIT */
/*
 * Tasks run under goc_try(): a panicking task settles as GOC_EPANIC and
 * is reported once, to the recovery handler its runner has (or the
 * process-wide one), or else through the runtime's log hook (message and
 * the innermost frames), as ants logs a worker's panic; its worker, pool
 * or group goes on, unless the handler's policy says otherwise.
 */
#include "patterns.h"
#include "goc/panic.h"
#include "../runtime/runtime.h"

#include <string.h>

/*
 * The panic is reported; RETHROW panics again with the same info
 * (message, code, frames), at once, or, for a runner that must first put
 * its own state right (@later given), once it has: *@later takes the
 * info and the runner calls goc__panic_again() itself.
 */
static int report(struct goc__recovery_slot *s,
                  goc_panic_info *p,
                  bool *exit,
                  goc_panic_info **later,
                  goc_panic_info **keep)
{
    int policy = goc__recovery_report(s, p);
    if (policy == GOC_RECOVER_RETHROW) {
        if (!later)
            goc__panic_again(p);
        *later = p;
        return GOC_EPANIC;
    }
    if (exit)
        *exit = policy == GOC_RECOVER_WORKER_EXIT;
    if (keep)
        *keep = p; /* for the task's handle (goc_future_panic()) */
    else
        goc_panic_info_free(p);
    return GOC_EPANIC;
}

/* Sets *panicked only for a real panic: goc_try() gives GOC_EPANIC with
 * no info when fn merely returned that code, which is fn's own result. */
static int safe_call(struct goc__recovery_slot *s,
                     int (*fn)(void *),
                     void *arg,
                     bool *panicked,
                     bool *exit,
                     goc_panic_info **later,
                     goc_panic_info **keep)
{
    goc_panic_info *p = NULL;
    int rc = goc_try(fn, arg, &p);
    *panicked = p != NULL;
    return p ? report(s, p, exit, later, keep) : rc;
}

int goc__safe_call_in(struct goc__recovery_slot *s,
                      int (*fn)(void *),
                      void *arg,
                      bool *exit,
                      bool *panicked)
{
    bool own;
    return safe_call(s, fn, arg, panicked ? panicked : &own, exit, NULL, NULL);
}

int goc__safe_call(int (*fn)(void *), void *arg)
{
    return goc__safe_call_in(NULL, fn, arg, NULL, NULL);
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

int goc__safe_task_in(struct goc__recovery_slot *s,
                      goc_task_fn fn,
                      goc_ctx *ctx,
                      void *arg,
                      void **result,
                      bool *exit,
                      bool *panicked,
                      goc_panic_info **keep)
{
    struct task_call c = { fn, ctx, arg, result };
    bool own;
    if (!panicked)
        panicked = &own;
    if (keep)
        *keep = NULL;
    int rc = safe_call(s, run_task, &c, panicked, exit, NULL, keep);
    if (*panicked)
        *result = NULL; /* whatever it set before panicking is not a value */
    return rc;
}

int goc__safe_task_inline(goc_task_fn fn,
                          goc_ctx *ctx,
                          void *arg,
                          void **result,
                          goc_panic_info **rethrow,
                          goc_panic_info **keep)
{
    struct task_call c = { fn, ctx, arg, result };
    bool panicked;
    *rethrow = NULL;
    *keep = NULL;
    int rc = safe_call(NULL, run_task, &c, &panicked, NULL, rethrow, keep);
    if (panicked)
        *result = NULL;
    return rc;
}

int goc__safe_task(goc_task_fn fn,
                   goc_ctx *ctx,
                   void *arg,
                   void **result,
                   goc_panic_info **keep)
{
    return goc__safe_task_in(NULL, fn, ctx, arg, result, NULL, NULL, keep);
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
    int rc = safe_call(NULL, run_then, &c, &panicked, NULL, NULL, NULL);
    if (panicked)
        *result = NULL;
    return rc;
}

int goc__safe_call_keep(struct goc__recovery_slot *s,
                        int (*fn)(void *arg),
                        void *arg,
                        goc_panic_info **keep)
{
    bool panicked;
    *keep = NULL;
    return safe_call(s, fn, arg, &panicked, NULL, NULL, keep);
}
