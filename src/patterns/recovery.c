/* SPDX-License-Identifier: MIT */
/*
 * The recovery handler (the seed's RecoveryHandler): a bounded ring of the
 * last panics, and a callback told of each one outside the lock. The
 * seed's version counted "goroutines" with a number that was really the
 * number of panics and kept every record forever; this one keeps
 * `capacity` records, counts what it overwrote, and stores the thread id.
 */
#include "goc/panic.h"
#include "goc/chan.h"
#include "goc/context.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../internal/lock.h"
#include "../runtime/runtime.h"
#include "patterns.h"

#include <stdatomic.h>
#include <stdio.h>

struct goc_recovery {
    _Atomic int refs; /* the creator's, and one per runner attached */
    goc__lock lock;
    int capacity, head, n; /* ring: oldest at head */
    int64_t total, overwritten, callback_panics;
    int64_t dropped; /* notifications an async queue had no room for */
    _Atomic int policy;
    goc_chan *queue;    /* under lock: where records go for async delivery */
    goc_chan *delivery; /* the delivery goroutine's queue, set before it
                           starts and never changed while it runs */
    goc_recovery_fn fn;
    void *arg;
    struct goc_panic_record recs[];
};

int goc_recovery_new(int capacity,
                     goc_recovery_fn fn,
                     void *arg,
                     goc_recovery **out)
{
    if (capacity < 1 || !out)
        return -EINVAL;
    goc_recovery *h =
        goc__calloc(1, sizeof(*h) + (size_t)capacity * sizeof(h->recs[0]));
    if (!h)
        return -ENOMEM;
    atomic_init(&h->refs, 1);
    h->capacity = capacity;
    h->fn = fn;
    h->arg = arg;
    *out = h;
    return 0;
}

static goc_recovery *retain(goc_recovery *h)
{
    if (h)
        atomic_fetch_add_explicit(&h->refs, 1, memory_order_relaxed);
    return h;
}

static void release(goc_recovery *h)
{
    if (!h || atomic_fetch_sub_explicit(&h->refs, 1, memory_order_acq_rel) != 1)
        return;
    goc_chan *q = h->delivery; /* nobody else holds h any more */
    if (q)
        goc_chan_close(q); /* its goroutine delivers the rest, then frees */
    else
        goc__free(h);
}

void goc_recovery_free(goc_recovery *h)
{
    release(h);
}

struct notify {
    goc_recovery *h;
    const struct goc_panic_record *r;
};

static int notify(void *arg)
{
    struct notify *nt = arg;
    nt->h->fn(nt->r, nt->h->arg);
    return 0;
}

static void record_of(const goc_panic_info *p,
                      bool from_callback,
                      struct goc_panic_record *r)
{
    *r = (struct goc_panic_record){
        .when = goc_now(),
        .goroutine = goc_panic_info_goroutine(p),
        .thread = goc_panic_info_thread(p),
        .code = goc_panic_info_code(p),
        .from_callback = from_callback,
    };
    snprintf(r->message, sizeof(r->message), "%s", goc_panic_info_message(p));
    /* From the stored addresses, not the formatted text: a message may
     * hold anything, or push the frames past any buffer. */
    goc__panic_info_frames(p, r->backtrace, sizeof(r->backtrace));
}

static void store_locked(goc_recovery *h, const struct goc_panic_record *r)
{
    int slot = (h->head + h->n) % h->capacity;
    if (h->n == h->capacity) {
        h->head = (h->head + 1) % h->capacity;
        h->overwritten++;
    } else {
        h->n++;
    }
    h->recs[slot] = *r;
    h->total++;
}

/*
 * A callback that panics is caught here, and its panic recorded, flagged
 * as the callback's, with no callback for it: never re-entered.
 */
static void call_back(goc_recovery *h, const struct goc_panic_record *r)
{
    struct notify nt = { h, r };
    goc_panic_info *inner = NULL;
    if (goc_try(notify, &nt, &inner) == GOC_EPANIC && inner) {
        struct goc_panic_record own;
        record_of(inner, true, &own);
        goc_panic_info_free(inner);
        goc__lock_acquire(&h->lock);
        store_locked(h, &own);
        h->callback_panics++;
        goc__lock_release(&h->lock);
    }
}

/* How long a panic that ends the process waits for its async callback. */
#define FATAL_DELIVERY_NS GOC_SECOND

/*
 * What the async queue carries: a record, and for a panic that ends the
 * process, the flag its panicking goroutine waits on. The flag is on the
 * heap, shared by the two: the waiter may give up (its time is up) and be
 * gone before the callback is made.
 */
struct fatal_wait {
    _Atomic int refs;
    _Atomic bool made;
};

struct delivery {
    struct goc_panic_record r;
    struct fatal_wait *w; /* NULL for the others */
};

static void fatal_wait_release(struct fatal_wait *w)
{
    if (w && atomic_fetch_sub(&w->refs, 1) == 1)
        goc__free(w);
}

/*
 * A panic that is about to end the process (GOC_RECOVER_RETHROW) waits
 * for the delivery goroutine to have called back for it, so that its
 * alert is not lost with the process; a queue full of earlier records is
 * waited on for room. Both for FATAL_DELIVERY_NS at most.
 */
static void deliver_before_exit(goc_recovery *h,
                                goc_chan *q,
                                const struct goc_panic_record *r)
{
    int64_t deadline = goc_now() + FATAL_DELIVERY_NS;
    struct fatal_wait *w = goc__malloc(sizeof(*w));
    if (w) {
        atomic_init(&w->refs, 2); /* ours, and the delivery's */
        atomic_init(&w->made, false);
    }
    struct delivery d = { *r, w };
    goc_ctx_local l;
    goc_ctx *c = goc_ctx_init_deadline(&l, NULL, deadline);
    int rc = goc_chan_send(q, &d, c);
    goc_ctx_destroy(c);
    if (rc) {
        goc__lock_acquire(&h->lock);
        h->dropped++;
        goc__lock_release(&h->lock);
        goc__free(w);
        return;
    }
    while (w && !atomic_load(&w->made) && goc_now() < deadline)
        goc_sleep(GOC_MILLISECOND, NULL);
    fatal_wait_release(w);
}

static void record(goc_recovery *h, const goc_panic_info *p, bool fatal)
{
    struct delivery d = { .w = NULL };
    record_of(p, false, &d.r);
    goc__lock_acquire(&h->lock);
    store_locked(h, &d.r);
    /* Queued under the lock, so that a failed goc_recovery_set_async()
     * can take its queue back safely. Never blocks. */
    goc_chan *q = h->queue; /* once set, set for good */
    bool async = q != NULL;
    if (async && !fatal && goc_chan_try_send(q, &d) != 0)
        h->dropped++; /* the record is kept; only the call is lost */
    goc__lock_release(&h->lock);
    if (async && fatal)
        deliver_before_exit(h, q, &d.r);
    else if (!async && h->fn)
        call_back(h, &d.r);
}

void goc_recovery_record(goc_recovery *h, const goc_panic_info *p)
{
    if (h && p)
        record(h, p, false);
}

/*
 * An async handler's delivery goroutine: calls back for each queued
 * record, in order. Once the last reference is gone (the queue closed),
 * it delivers what is left and frees the handler.
 */
static void deliver(void *arg)
{
    goc_recovery *h = arg;
    struct delivery d;
    while (goc_chan_recv(h->delivery, &d, NULL) > 0) {
        call_back(h, &d.r);
        if (d.w) {
            atomic_store(&d.w->made, true);
            fatal_wait_release(d.w);
        }
    }
    goc_chan_release(h->delivery);
    goc__free(h);
}

int goc_recovery_set_async(goc_recovery *h, int queue)
{
    if (!h || !h->fn || queue < 1)
        return -EINVAL;
    goc_chan *q;
    int rc = goc_chan_new(sizeof(struct delivery), (size_t)queue, &q);
    if (rc)
        return rc;
    goc__lock_acquire(&h->lock);
    bool busy = h->delivery != NULL;
    if (!busy)
        h->delivery = q;
    goc__lock_release(&h->lock);
    if (busy) {
        goc_chan_release(q);
        return -EBUSY;
    }
    /*
     * Records go to the queue only once its goroutine runs: a spawn that
     * fails then takes back a queue nobody has sent to, and the handler
     * goes on calling on the spot.
     */
    rc = goc_go(deliver, h);
    goc__lock_acquire(&h->lock);
    if (rc)
        h->delivery = NULL;
    else
        h->queue = q;
    goc__lock_release(&h->lock);
    if (rc)
        goc_chan_release(q);
    return rc;
}

int64_t goc_recovery_dropped(goc_recovery *h)
{
    if (!h)
        return -EINVAL;
    goc__lock_acquire(&h->lock);
    int64_t n = h->dropped;
    goc__lock_release(&h->lock);
    return n;
}

int goc_recovery_set_policy(goc_recovery *h, int policy)
{
    if (!h ||
        (policy != GOC_RECOVER_CONTINUE && policy != GOC_RECOVER_RETHROW &&
         policy != GOC_RECOVER_WORKER_EXIT))
        return -EINVAL;
    atomic_store(&h->policy, policy);
    return 0;
}

int goc_recovery_run(goc_recovery *h, int (*fn)(void *), void *arg)
{
    goc_panic_info *p = NULL;
    int r = goc_try(fn, arg, &p);
    /* GOC_EPANIC with no info is a task returning that code, not a panic. */
    if (r != GOC_EPANIC || !p)
        return r;
    bool fatal = h && atomic_load(&h->policy) == GOC_RECOVER_RETHROW;
    if (h)
        record(h, p, fatal);
    /* The same info, not a copy: a record's message is clipped. */
    if (fatal)
        goc__panic_again(p);
    goc_panic_info_free(p);
    return r;
}

int goc_recovery_records(goc_recovery *h, struct goc_panic_record *out, int max)
{
    if (!h || max < 0 || (max && !out))
        return -EINVAL;
    goc__lock_acquire(&h->lock);
    int n = h->n < max ? h->n : max;
    /* The newest n, oldest first. */
    int skip = h->n - n;
    for (int i = 0; i < n; i++)
        out[i] = h->recs[(h->head + skip + i) % h->capacity];
    goc__lock_release(&h->lock);
    return n;
}

int64_t goc_recovery_count(goc_recovery *h, int64_t *overwritten)
{
    if (!h)
        return -EINVAL;
    goc__lock_acquire(&h->lock);
    int64_t total = h->total;
    if (overwritten)
        *overwritten = h->overwritten;
    goc__lock_release(&h->lock);
    return total;
}

int64_t goc_recovery_callback_panics(goc_recovery *h)
{
    if (!h)
        return -EINVAL;
    goc__lock_acquire(&h->lock);
    int64_t n = h->callback_panics;
    goc__lock_release(&h->lock);
    return n;
}

/* ---- handlers attached to runners ---------------------------------------- */

/* Where runners without a handler of their own report (none at first). */
static struct goc__recovery_slot default_slot;

void goc__recovery_slot_set(struct goc__recovery_slot *s, goc_recovery *h)
{
    if (!s)
        s = &default_slot;
    retain(h);
    goc__lock_acquire(&s->lock);
    goc_recovery *old = s->h;
    s->h = h;
    goc__lock_release(&s->lock);
    release(old);
}

/* The slot's handler, retained (a runner may detach it meanwhile). */
static goc_recovery *slot_get(struct goc__recovery_slot *s)
{
    goc__lock_acquire(&s->lock);
    goc_recovery *h = retain(s->h);
    goc__lock_release(&s->lock);
    return h;
}

int goc__recovery_report(struct goc__recovery_slot *s, const goc_panic_info *p)
{
    goc_recovery *h = s ? slot_get(s) : NULL;
    if (!h)
        h = slot_get(&default_slot);
    if (!h) {
        char text[1024];
        goc_panic_info_format(p, text, sizeof(text));
        goc__log("a task panicked; it failed alone:\n%s", text);
        return GOC_RECOVER_CONTINUE;
    }
    int policy = atomic_load(&h->policy);
    record(h, p, policy == GOC_RECOVER_RETHROW);
    release(h);
    return policy;
}

int goc_recovery_set_default(goc_recovery *h)
{
    goc__recovery_slot_set(NULL, h);
    return 0;
}
