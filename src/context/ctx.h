/* SPDX-License-Identifier: MIT */
/*
 * Private side of contexts: the structure, and how blocking calls register
 * a wait with a context so that its cancellation wakes them.
 */
#ifndef GOC_CONTEXT_PRIVATE_H
#define GOC_CONTEXT_PRIVATE_H

#include "goc/context.h"
#include "../runtime/runtime.h"
#include "../internal/list.h"

enum goc__ctx_kind {
    GOC__CTX_BACKGROUND,
    GOC__CTX_CANCEL,   /* cancellable, perhaps with a deadline timer */
    GOC__CTX_VALUE,    /* a key/value; cancelled with its parent */
    GOC__CTX_DETACHED, /* without_cancel: values only */
};

/* A blocked call's registration with a context (on the caller's stack). */
struct goc__ctx_watch {
    struct goc__dlink link; /* in cc->watchers */
    struct goc__wait *w;
    int index;          /* reported by the wait when the context wins */
    struct goc_ctx *cc; /* the cancellable context watched, or NULL */
    bool linked;
};

enum goc__after_state {
    GOC__AFTER_IDLE,     /* stopped, or fn has started */
    GOC__AFTER_LINKED,   /* registered with the context */
    GOC__AFTER_SPAWNING, /* taken by a cancel that has yet to read it */
    GOC__AFTER_DEFERRED, /* its spawn failed: waits for a retry */
};

struct goc__ctx_after {
    struct goc__dlink link; /* in cc->afters, a cancel's batch, deferred */
    goc_fn fn;
    void *arg;
    struct goc_ctx *cc;
    _Atomic uint32_t state; /* enum goc__after_state */
};

struct goc_ctx {
    goc__lock lock;
    uint8_t kind;
    bool local;       /* in caller storage: not reference-counted */
    bool parent_held; /* holds a reference on parent (a heap one) */
    /* Linked in cancel_parent's children; once false, never true again,
     * and the parent is never touched again (a local one may be gone). */
    _Atomic bool in_parent;
    _Atomic int refs;
    _Atomic int err; /* 0 until done */
    int cause;
    int deadline_cause; /* the cause its own deadline gives; 0: none */
    int64_t deadline;   /* INT64_MAX: none */
    struct goc_ctx *parent;
    struct goc_ctx *cancel_parent; /* ancestor whose cancel reaches us */
    struct goc__dlink *children;   /* under lock: their sib links */
    struct goc__dlink sib;         /* in cancel_parent->children */
    struct goc__dlink *watchers;   /* under lock: goc__ctx_watch */
    /* Under goc__ctx_after_lock(c), taken inside lock (never the other
     * way): goc__ctx_after records. has_afters, under lock, says there
     * may be some. */
    struct goc__dlink *afters;
    bool has_afters;
    /* Set once under lock; a cancelling parent reads it without the
     * child's lock, only to prefetch. */
    goc_chan *_Atomic done;
    struct goc__timer timer;
    _Atomic uint32_t timer_busy; /* armed or firing */
    const void *key;
    void *value;
};

/*
 * The lock of c's after-func records: one of a fixed set, chosen by c's
 * address, so that goc_ctx_after_stop() never takes a lock inside a
 * context that its last release may be freeing meanwhile.
 */
goc__lock *goc__ctx_after_lock(const struct goc_ctx *c);

/* The lock of the after-funcs whose spawn failed (for tests). */
goc__lock *goc__ctx_deferred_lock(void);

/* The cancellable context that decides when ctx is done, or NULL. */
struct goc_ctx *goc__ctx_canceller(goc_ctx *ctx);

/*
 * Register w with ctx: when ctx ends, w is claimed with index. Returns 0,
 * or ctx's error if it is already done (nothing registered then).
 */
int goc__ctx_watch(goc_ctx *ctx,
                   struct goc__ctx_watch *cw,
                   struct goc__wait *w,
                   int index);

/* Undo goc__ctx_watch (no-op if the context already fired it). */
void goc__ctx_unwatch(struct goc__ctx_watch *cw);

/*
 * goc_blocking(), telling whether fn was queued: then it runs to the end
 * even if the call returns early on ctx.
 */
int goc__blocking(int (*fn)(void *), void *arg, goc_ctx *ctx, bool *queued);

#endif /* GOC_CONTEXT_PRIVATE_H */
