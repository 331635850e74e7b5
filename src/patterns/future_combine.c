/* SPDX-License-Identifier: MIT */
/*
 * The future combinators all, all_settled, race and any. They never park
 * a goroutine per input: each input gets a settle callback, and the
 * result future is settled through goc_future_complete(), whose single
 * winner makes "exactly one outcome" hold however the inputs race.
 *
 * Lifetime: the state holds a reference on each input once it has
 * settled (the result's value borrows settled inputs' values), and on
 * every input from the start with GOC_FUTURE_CANCEL_REST (to cancel
 * them); it holds one on the result until the last input callback has
 * run, and the result frees the state when it goes. Without
 * GOC_FUTURE_CANCEL_REST, an input its owners drop while pending is
 * settled as cancelled (goc_future_release), so its callback still runs
 * and nothing stays behind. With it, the state's own reference keeps
 * each input alive until it settles: inputs that nobody settles keep the
 * state and the result with them (future.h says so).
 *
 * Once the outcome is known (a race won, an any fulfilled, an all
 * failed), the callbacks still on pending inputs are taken back, so that
 * a loser that settles late, or never (a long-lived "shutdown" future
 * raced against work), holds nothing: they used to keep the state, the
 * result and the winner's value until every input had settled. A slot's
 * state says who has its callback: the input settling (RAN) or the
 * detacher (DETACHING, then DETACHED). A callback that finds its slot
 * being detached waits for DETACHED before it returns, since the input
 * may be freed once its callbacks have returned, and only counts itself.
 */
#include "goc/future.h"
#include "goc/runtime.h"
#include "patterns.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

#include <stdatomic.h>

enum kind { ALL, ALL_SETTLED, RACE, ANY };

struct combine;

enum slot_state { NEW, ATTACHED, RAN, DETACHING, DETACHED };

struct slot {
    struct combine *c;
    size_t i;
    goc_future *f;             /* the input (no reference of its own) */
    struct goc__settle_cb *cb; /* its callback node on f */
    _Atomic int state;         /* enum slot_state */
};

struct combine {
    enum kind kind;
    unsigned flags;
    size_t n;
    goc_future **in;             /* n inputs, one reference each */
    goc_future *out;             /* one reference until pending reaches 0 */
    _Atomic size_t pending;      /* callbacks not yet run nor taken back,
                                    and the creator's while it attaches */
    _Atomic size_t remaining;    /* inputs still needed for the outcome */
    void **values;               /* ALL */
    struct goc_settled *settled; /* ALL_SETTLED */
    int *statuses;               /* ANY */
    struct slot *slots;
};

static void combine_free(void *p)
{
    struct combine *c = p;
    for (size_t i = 0; i < c->n; i++)
        goc_future_release(c->in[i]);
    goc__free(c->in);
    goc__free(c->values);
    goc__free(c->settled);
    goc__free(c->statuses);
    goc__free(c->slots);
    goc__free(c);
}

static void cancel_rest(struct combine *c)
{
    if (!(c->flags & GOC_FUTURE_CANCEL_REST))
        return;
    for (size_t i = 0; i < c->n; i++)
        goc_future_cancel(c->in[i]);
}

/*
 * Take the callbacks of the inputs still pending back. The counts taken
 * may be the last: then c's reference on the result goes, and c with the
 * result if nobody else holds it, so c is not touched after.
 */
static void detach_rest(struct combine *c)
{
    size_t taken = 0;
    for (size_t i = 0; i < c->n; i++) {
        struct slot *s = &c->slots[i];
        int attached = ATTACHED;
        if (!atomic_compare_exchange_strong(&s->state, &attached, DETACHING))
            continue;
        bool mine = goc__future_cb_detach(s->f, s->cb);
        atomic_store(&s->state, DETACHED); /* done with s->f */
        if (mine) {
            goc__future_cb_free(s->cb);
            taken++;
        }
    }
    if (taken && atomic_fetch_sub(&c->pending, taken) == taken)
        goc_future_release(c->out); /* may free c */
}

/* Once the result is settled, by an input or by its owner's cancel: the
 * inputs still pending are cancelled (GOC_FUTURE_CANCEL_REST), or let go
 * of. Runs as the result's settle callback, which holds the result. */
static void let_go(struct combine *c)
{
    if (c->flags & GOC_FUTURE_CANCEL_REST)
        cancel_rest(c); /* they settle, and their callbacks run */
    else
        detach_rest(c);
}

static void on_result(goc_future *f, void *arg)
{
    (void)f;
    let_go(arg);
}

static void finish(struct combine *c, int status, void *value)
{
    goc_future_complete(c->out, status, value); /* on_result follows */
}

/* The callback's claim on its slot; false if it is being taken back. */
static bool claim_slot(struct slot *s)
{
    int st = atomic_load(&s->state);
    while (st == NEW || st == ATTACHED)
        if (atomic_compare_exchange_weak(&s->state, &st, RAN))
            return true;
    /* A lock and an unlink away; yield, for the detacher may be a
     * goroutine waiting for this thread's P. */
    unsigned spins = 0;
    while (atomic_load(&s->state) != DETACHED)
        goc__yield_to_peer(&spins);
    return false;
}

/* One fewer input needed; the last one settles the result. */
static bool last_needed(struct combine *c)
{
    return atomic_fetch_sub(&c->remaining, 1) == 1;
}

static void on_input(goc_future *f, void *arg)
{
    struct slot *s = arg;
    struct combine *c = s->c;
    if (!claim_slot(s)) {
        if (atomic_fetch_sub(&c->pending, 1) == 1)
            goc_future_release(c->out); /* may free c */
        return;
    }
    int status = 0;
    void *value = NULL;
    goc_future_try_get(f, &status, &value);
    if (!(c->flags & GOC_FUTURE_CANCEL_REST))
        c->in[s->i] = goc_future_retain(f); /* its value may be borrowed */
    switch (c->kind) {
    case ALL:
        c->values[s->i] = value;
        if (status)
            finish(c, status, NULL);
        else if (last_needed(c))
            finish(c, 0, c->values);
        break;
    case ALL_SETTLED:
        c->settled[s->i] = (struct goc_settled){ status, value };
        if (last_needed(c))
            finish(c, 0, c->settled);
        break;
    case RACE:
        finish(c, status, value);
        break;
    case ANY:
        c->statuses[s->i] = status;
        if (status == 0)
            finish(c, 0, value);
        else if (last_needed(c))
            finish(c, GOC_EAGGREGATE, c->statuses);
        break;
    }
    if (atomic_fetch_sub(&c->pending, 1) == 1)
        goc_future_release(c->out); /* may free c */
}

static int alloc_state(struct combine *c)
{
    size_t n = c->n ? c->n : 1;
    c->in = goc__calloc(n, sizeof(*c->in));
    c->slots = goc__calloc(n, sizeof(*c->slots));
    if (!c->in || !c->slots)
        return -ENOMEM;
    if (c->kind == ALL)
        c->values = goc__calloc(n, sizeof(*c->values));
    if (c->kind == ALL_SETTLED)
        c->settled = goc__calloc(n, sizeof(*c->settled));
    if (c->kind == ANY)
        c->statuses = goc__calloc(n, sizeof(*c->statuses));
    if ((c->kind == ALL && !c->values) ||
        (c->kind == ALL_SETTLED && !c->settled) ||
        (c->kind == ANY && !c->statuses))
        return -ENOMEM;
    return 0;
}

static int create(enum kind kind,
                  goc_future *const *fs,
                  size_t n,
                  unsigned flags,
                  struct combine **out)
{
    struct combine *c = goc__calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    *c = (struct combine){ .kind = kind, .flags = flags, .n = n };
    int rc = alloc_state(c);
    if (!rc)
        rc = goc_future_new(NULL, &c->out);
    if (rc) {
        c->n = 0;
        combine_free(c);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        if (flags & GOC_FUTURE_CANCEL_REST)
            c->in[i] = goc_future_retain(fs[i]);
        c->slots[i] = (struct slot){ .c = c, .i = i };
    }
    goc__future_on_free(c->out, combine_free, c);
    *out = c;
    return 0;
}

/* Settles a combinator over no inputs, or reports an empty race. */
static int settle_empty(struct combine *c)
{
    switch (c->kind) {
    case ALL:
    case ALL_SETTLED:
        goc_future_complete(c->out, 0, NULL);
        return 0;
    case ANY:
        goc_future_complete(c->out, GOC_EEMPTY, NULL);
        return 0;
    default:
        return GOC_EEMPTY;
    }
}

static int combine(enum kind kind,
                   goc_future *const *fs,
                   size_t n,
                   unsigned flags,
                   goc_future **out)
{
    if (!out || (n && !fs) || (flags & ~GOC_FUTURE_CANCEL_REST))
        return -EINVAL;
    for (size_t i = 0; i < n; i++)
        if (!fs[i])
            return -EINVAL;
    if (n == 0 && kind == RACE)
        return GOC_EEMPTY;
    struct combine *c;
    int rc = create(kind, fs, n, flags, &c);
    if (rc)
        return rc;
    *out = goc_future_retain(c->out); /* the caller's; c keeps its own */
    if (n == 0) {
        settle_empty(c);
        goc_future_release(c->out);
        return 0;
    }
    atomic_init(&c->pending, n + 1); /* the inputs' callbacks, and ours */
    atomic_init(&c->remaining, n);
    /* Every watch is allocated before the first is attached: out of
     * memory, nothing has been attached, and the whole of it unwinds. */
    struct goc__settle_cb **watch = goc__malloc(n * sizeof(*watch));
    struct goc__settle_cb *result_cb = goc__future_cb_new(on_result, c);
    size_t made = 0;
    while (watch && result_cb && made < n &&
           (watch[made] = goc__future_cb_new(on_input, &c->slots[made])))
        made++;
    if (made < n) {
        while (made)
            goc__future_cb_free(watch[--made]);
        goc__future_cb_free(result_cb);
        goc__free(watch);
        goc_future_release(*out);
        *out = NULL;
        goc_future_release(c->out); /* its last: c goes with it */
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        c->slots[i].f = fs[i];
        c->slots[i].cb = watch[i];
    }
    goc__free(watch);
    goc__future_cb_attach(c->out, result_cb);
    /*
     * A slot becomes ATTACHED only once its node is on the input, so a
     * detacher never looks for a node not there yet; one attached after
     * the outcome was decided (by an input settled at call time, or by
     * another thread) is taken back here.
     */
    for (size_t i = 0; i < n; i++) {
        struct slot *s = &c->slots[i];
        goc__future_cb_attach(fs[i], s->cb);
        int fresh = NEW;
        atomic_compare_exchange_strong(&s->state, &fresh, ATTACHED);
    }
    if (goc_future_is_done(c->out))
        let_go(c); /* it ran before they were all attached */
    if (atomic_fetch_sub(&c->pending, 1) == 1)
        goc_future_release(c->out); /* may free c */
    return 0;
}

int goc_future_all(goc_future *const *fs,
                   size_t n,
                   unsigned flags,
                   goc_future **out)
{
    return combine(ALL, fs, n, flags, out);
}

int goc_future_all_settled(goc_future *const *fs, size_t n, goc_future **out)
{
    return combine(ALL_SETTLED, fs, n, 0, out);
}

int goc_future_race(goc_future *const *fs,
                    size_t n,
                    unsigned flags,
                    goc_future **out)
{
    return combine(RACE, fs, n, flags, out);
}

int goc_future_any(goc_future *const *fs,
                   size_t n,
                   unsigned flags,
                   goc_future **out)
{
    return combine(ANY, fs, n, flags, out);
}
