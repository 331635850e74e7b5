/* SPDX-License-Identifier: MIT */
/*
 * Circuit breaker: gobreaker v2's state machine, with the lock held only
 * for bookkeeping (never around the protected call or a user callback).
 *
 * Generations: every state change (and every closed-state interval) starts
 * a new generation; a call admitted in an older one has its result
 * ignored, so a late success cannot close a freshly opened breaker.
 * Notifications are queued under the lock and delivered after it, by one
 * caller at a time, in order (see deliver()).
 */
#include "goc/breaker.h"
#include "goc/panic.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../internal/lock.h"
#include "../runtime/runtime.h"

#include <stdatomic.h>
#include <string.h>

#define DEFAULT_TIMEOUT   (60 * GOC_SECOND)
#define DEFAULT_SLOW      (60 * GOC_SECOND)
#define DEFAULT_WINDOW    100
#define DEFAULT_MIN_CALLS 100
#define DEFAULT_FAIL_RATE 50.0
#define DEFAULT_SLOW_RATE 100.0
#define MAX_BUCKETS       (1 << 24) /* also the cap on window_size */

struct bucket {
    int64_t requests, successes, failures, exclusions;
};

struct tbucket { /* one second of a time-based window */
    int64_t calls, failed, slow;
};

struct notif {
    struct notif *next;
    goc_breaker_state from, to;
};

enum { OUT_FAILED = 1, OUT_SLOW = 2, OUT_USED = 4 };

struct goc_breaker {
    goc__lock mu;
    char name[64];
    struct goc_breaker_settings s; /* normalised copy */
    goc_clock clock;

    goc_breaker_state state;
    uint64_t gen;
    struct goc_breaker_counts c; /* in_flight kept apart */
    int64_t in_flight;
    int64_t expiry;
    bool has_expiry;
    int64_t open_attempts;
    int64_t gen_start;
    int64_t wstart; /* the time window's second 0: kept across intervals */

    /* gobreaker rolling window: nb buckets of bucket_period. */
    int64_t nb, cur_bucket;
    struct bucket *buckets;

    /* resilience4j sliding window. */
    int64_t wn, wpos, wcalls, wfailed, wslow, whead;
    unsigned char *ring;   /* COUNT: outcome flags per call */
    struct tbucket *tring; /* TIME: per second */

    struct notif *qhead, *qtail;
    bool delivering;
    bool backoff_pending;  /* OPEN waits for open_backoff's answer */
    bool backoff_asking;   /* someone is asking open_backoff now */
    _Atomic bool has_work; /* notices queued or a backoff pending */
};

const char *goc_breaker_state_name(goc_breaker_state s)
{
    switch (s) {
    case GOC_BREAKER_CLOSED:
        return "closed";
    case GOC_BREAKER_HALF_OPEN:
        return "half-open";
    case GOC_BREAKER_OPEN:
        return "open";
    case GOC_BREAKER_FORCED_OPEN:
        return "forced-open";
    case GOC_BREAKER_DISABLED:
        return "disabled";
    case GOC_BREAKER_METRICS_ONLY:
        return "metrics-only";
    }
    return "unknown";
}

/*
 * "Now", read at most once per call and only if needed: with the default
 * clock most calls in the closed state need no time at all (a clock read
 * costs more than the rest of the bookkeeping). A user clock is a
 * callback, so it is read before the lock is taken; goc_now() may be read
 * under it.
 */
typedef struct tnow {
    goc_breaker *b;
    int64_t t;
    bool ok;
} tnow;

static tnow tnow_start(goc_breaker *b)
{
    if (b->clock.now)
        return (tnow){ b, b->clock.now(b->clock.arg), true };
    return (tnow){ b, 0, false };
}

static int64_t T(tnow *n)
{
    if (!n->ok) {
        n->t = goc_now();
        n->ok = true;
    }
    return n->t;
}

static bool bad_rate(double r)
{
    return !(r > 0 && r <= 100);
}

/* Fill defaults into @s; -EINVAL for what cannot be defaulted. */
static int normalise(struct goc_breaker_settings *s)
{
    if (s->max_requests == 0)
        s->max_requests = 1;
    if (s->half_open_successes == 0)
        s->half_open_successes = s->max_requests;
    if (s->half_open_successes > s->max_requests)
        return -EINVAL;
    if (s->timeout <= 0)
        s->timeout = DEFAULT_TIMEOUT;
    if (s->bucket_period > 0 && s->interval <= 0)
        return -EINVAL;
    if (s->bucket_period > 0 && s->interval % s->bucket_period) {
        int64_t up = s->bucket_period - s->interval % s->bucket_period;
        if (s->interval > INT64_MAX - up)
            return -EINVAL; /* no whole number of buckets fits */
        s->interval += up;
    }
    /* Each bucket is memory cleared at every state change: as many as a
     * window may have calls, no more (a nanosecond period would ask for
     * gigabytes). */
    if (s->bucket_period > 0 && s->interval / s->bucket_period > MAX_BUCKETS)
        return -EINVAL;
    if (s->window != GOC_BREAKER_WINDOW_NONE &&
        s->window != GOC_BREAKER_WINDOW_COUNT &&
        s->window != GOC_BREAKER_WINDOW_TIME)
        return -EINVAL;
    /* Judged without a window too: a bad value is a mistake either way,
     * and would surface only once a window is added. */
    if (s->window_size < 0 || s->window_size > MAX_BUCKETS ||
        s->minimum_calls < 0 ||
        (s->failure_rate_threshold != 0 &&
         bad_rate(s->failure_rate_threshold)) ||
        (s->slow_call_rate_threshold != 0 &&
         bad_rate(s->slow_call_rate_threshold)))
        return -EINVAL;
    if (s->window == GOC_BREAKER_WINDOW_NONE)
        return 0;
    if (s->window_size == 0)
        s->window_size = DEFAULT_WINDOW;
    if (s->minimum_calls == 0)
        s->minimum_calls = DEFAULT_MIN_CALLS;
    if (s->failure_rate_threshold == 0)
        s->failure_rate_threshold = DEFAULT_FAIL_RATE;
    if (s->slow_call_rate_threshold == 0)
        s->slow_call_rate_threshold = DEFAULT_SLOW_RATE;
    if (s->slow_call_duration <= 0)
        s->slow_call_duration = DEFAULT_SLOW;
    if (s->window == GOC_BREAKER_WINDOW_COUNT &&
        s->minimum_calls > s->window_size)
        s->minimum_calls = s->window_size;
    return 0;
}

/* gobreaker's counts: one generation's. */
static void clear_counts(goc_breaker *b)
{
    memset(&b->c, 0, sizeof b->c);
    if (b->buckets)
        memset(b->buckets, 0, (size_t)b->nb * sizeof *b->buckets);
    b->cur_bucket = 0;
}

/* resilience4j's sliding window: the last calls, across intervals. */
static void clear_window(goc_breaker *b)
{
    if (b->ring)
        memset(b->ring, 0, (size_t)b->wn);
    if (b->tring)
        memset(b->tring, 0, (size_t)b->wn * sizeof *b->tring);
    b->wpos = b->wcalls = b->wfailed = b->wslow = 0;
    b->whead = 0;
}

/*
 * A new generation: on a change of state (or a reset) everything starts
 * over; on the closed state's interval only gobreaker's counts do, since
 * the sliding window covers the last calls, however old the interval.
 */
static void new_generation(goc_breaker *b, tnow *tn, bool keep_window)
{
    int64_t now = T(tn);
    b->gen++;
    b->gen_start = now;
    clear_counts(b);
    if (!keep_window) {
        clear_window(b);
        b->wstart = now;
    }
    b->has_expiry = false;
    if ((b->state == GOC_BREAKER_CLOSED ||
         b->state == GOC_BREAKER_METRICS_ONLY) &&
        b->s.interval > 0 && !b->buckets) {
        /* Saturated: an interval of INT64_MAX means "never clear". */
        int64_t d = b->s.interval;
        b->expiry = now > INT64_MAX - d ? INT64_MAX : now + d;
        b->has_expiry = true;
    } else if (b->state == GOC_BREAKER_OPEN) {
        int64_t d = b->s.timeout;
        b->expiry = now > INT64_MAX - d ? INT64_MAX : now + d;
        b->has_expiry = true;
        if (b->s.open_backoff) {
            /* The user's function may not run under the lock: stay open
             * until deliver() has asked it (callers get GOC_EOPEN, which
             * is right for an open breaker). */
            b->expiry = INT64_MAX;
            b->backoff_pending = true;
            atomic_store_explicit(&b->has_work, true, memory_order_relaxed);
        }
    }
    if (b->state != GOC_BREAKER_OPEN)
        b->backoff_pending = false;
}

struct backoff_ask {
    goc_breaker *b;
    int64_t attempt, d;
};

static int ask_backoff(void *arg)
{
    struct backoff_ask *a = arg;
    a->d = a->b->s.open_backoff(a->attempt, a->b->s.arg);
    return 0;
}

/* Ask open_backoff for the open time of the current OPEN generation. */
static void settle_backoff(goc_breaker *b)
{
    goc__lock_acquire(&b->mu);
    /* One asks at a time: open_backoff may itself call the breaker,
     * which must not ask again (endless recursion), nor may another
     * thread ask for the same opening. */
    if (!b->backoff_pending || b->backoff_asking) {
        goc__lock_release(&b->mu);
        return;
    }
    b->backoff_asking = true;
    struct backoff_ask ask = { b, b->open_attempts, 0 };
    uint64_t gen = b->gen;
    goc__lock_release(&b->mu);
    /* A panicking open_backoff must not leave the question asked for
     * good (the breaker would never half-open): its opening takes the
     * plain timeout, then the panic goes on. */
    goc_panic_info *p = NULL;
    goc_try(ask_backoff, &ask, &p);
    int64_t d = ask.d > 0 ? ask.d : b->s.timeout;
    goc__lock_acquire(&b->mu);
    b->backoff_asking = false;
    if (b->backoff_pending && b->gen == gen) {
        b->expiry = b->gen_start > INT64_MAX - d ? INT64_MAX : b->gen_start + d;
        b->backoff_pending = false;
    }
    goc__lock_release(&b->mu);
    if (p)
        goc__panic_again(p);
}

static void set_state(goc_breaker *b, goc_breaker_state to, tnow *now)
{
    if (b->state == to)
        return;
    goc_breaker_state from = b->state;
    b->state = to;
    if (to == GOC_BREAKER_CLOSED)
        b->open_attempts = 0;
    else if (to == GOC_BREAKER_OPEN)
        b->open_attempts++;
    new_generation(b, now, false);
    if (!b->s.on_state_change)
        return;
    struct notif *n = goc__malloc(sizeof *n);
    if (!n)
        return; /* the transition stands; only the notice is lost */
    *n = (struct notif){ NULL, from, to };
    atomic_store_explicit(&b->has_work, true, memory_order_relaxed);
    if (b->qtail)
        b->qtail->next = n;
    else
        b->qhead = n;
    b->qtail = n;
}

/* Drop rolling buckets that have left the window. */
static void age_buckets(goc_breaker *b, int64_t now)
{
    int64_t cur = (now - b->gen_start) / b->s.bucket_period;
    if (cur <= b->cur_bucket)
        return;
    int64_t from = b->cur_bucket + 1;
    if (cur - from >= b->nb)
        from = cur - b->nb + 1;
    for (int64_t i = from; i <= cur; i++) {
        struct bucket *k = &b->buckets[i % b->nb];
        b->c.requests -= k->requests;
        b->c.total_successes -= k->successes;
        b->c.total_failures -= k->failures;
        b->c.total_exclusions -= k->exclusions;
        memset(k, 0, sizeof *k);
    }
    b->cur_bucket = cur;
}

/* gobreaker's currentState: lazy expiry of the interval and of OPEN. */
static goc_breaker_state current_state(goc_breaker *b, tnow *now)
{
    switch (b->state) {
    case GOC_BREAKER_CLOSED:
    case GOC_BREAKER_METRICS_ONLY:
        if (b->buckets)
            age_buckets(b, T(now));
        else if (b->has_expiry && b->expiry < T(now))
            new_generation(b, now, true);
        break;
    case GOC_BREAKER_OPEN:
        if (b->expiry < T(now))
            set_state(b, GOC_BREAKER_HALF_OPEN, now);
        break;
    default:
        break;
    }
    return b->state;
}

struct notice_call {
    goc_breaker *b;
    struct notif *n;
};

static int call_on_state_change(void *arg)
{
    struct notice_call *c = arg;
    c->b->s.on_state_change(c->b->name, c->n->from, c->n->to, c->b->s.arg);
    return 0;
}

/*
 * Run the queued state-change callbacks, outside the lock. Only one
 * caller delivers at a time (the others leave their notices to it), so
 * callbacks never overlap and arrive in transition order; a callback that
 * causes a transition just queues it for the loop below.
 */
static void deliver(goc_breaker *b)
{
    /* Set under the lock by whoever queued work; this caller saw its own
     * store, and a notice queued by another caller is that caller's to
     * deliver (or the running deliverer's). */
    if (!atomic_load_explicit(&b->has_work, memory_order_relaxed))
        return;
    if (b->s.open_backoff)
        settle_backoff(b);
    goc__lock_acquire(&b->mu);
    if (b->delivering || !b->qhead) {
        if (!b->delivering && !b->backoff_pending)
            atomic_store_explicit(&b->has_work, false, memory_order_relaxed);
        goc__lock_release(&b->mu);
        return;
    }
    b->delivering = true;
    struct notif *n;
    while ((n = b->qhead)) {
        b->qhead = n->next;
        if (!b->qhead)
            b->qtail = NULL;
        goc__lock_release(&b->mu);
        struct notice_call call = { b, n };
        goc_panic_info *p = NULL;
        goc_try(call_on_state_change, &call, &p);
        goc__free(n);
        goc__lock_acquire(&b->mu);
        if (p) {
            /* The next call delivers the rest (has_work stays set); a
             * delivering flag left set would have stopped every later
             * notice. */
            b->delivering = false;
            goc__lock_release(&b->mu);
            goc__panic_again(p);
        }
    }
    b->delivering = false;
    if (!b->backoff_pending)
        atomic_store_explicit(&b->has_work, false, memory_order_relaxed);
    goc__lock_release(&b->mu);
}

int goc_breaker_new(const struct goc_breaker_settings *s, goc_breaker **out)
{
    struct goc_breaker_settings ns = { 0 };
    if (s)
        ns = *s;
    if (!out || normalise(&ns))
        return -EINVAL;
    goc_breaker *b = goc__calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->s = ns;
    if (ns.name)
        strncpy(b->name, ns.name, sizeof b->name - 1);
    b->s.name = b->name;
    if (ns.clock)
        b->clock = *ns.clock;
    b->s.clock = NULL;
    if (ns.bucket_period > 0) {
        /* interval is a multiple of bucket_period by now (normalise) */
        b->nb = ns.interval / ns.bucket_period;
        b->buckets = goc__calloc((size_t)b->nb, sizeof *b->buckets);
    }
    b->wn = ns.window_size;
    if (ns.window == GOC_BREAKER_WINDOW_COUNT)
        b->ring = goc__calloc((size_t)b->wn, 1);
    else if (ns.window == GOC_BREAKER_WINDOW_TIME)
        b->tring = goc__calloc((size_t)b->wn, sizeof *b->tring);
    if ((ns.bucket_period > 0 && !b->buckets) ||
        (ns.window == GOC_BREAKER_WINDOW_COUNT && !b->ring) ||
        (ns.window == GOC_BREAKER_WINDOW_TIME && !b->tring)) {
        goc_breaker_free(b);
        return -ENOMEM;
    }
    b->state = GOC_BREAKER_CLOSED;
    tnow tn = tnow_start(b);
    new_generation(b, &tn, false);
    *out = b;
    return 0;
}

void goc_breaker_free(goc_breaker *b)
{
    if (!b)
        return;
    while (b->qhead) {
        struct notif *n = b->qhead;
        b->qhead = n->next;
        goc__free(n);
    }
    goc__free(b->buckets);
    goc__free(b->ring);
    goc__free(b->tring);
    goc__free(b);
}

static int admit_locked(goc_breaker *b, tnow *now, goc_breaker_token *tok)
{
    goc_breaker_state st = current_state(b, now);
    /* The start time matters only for slow-call rates. */
    int64_t start = b->ring || b->tring ? T(now) : 0;
    switch (st) {
    case GOC_BREAKER_OPEN:
    case GOC_BREAKER_FORCED_OPEN:
        return GOC_EOPEN;
    case GOC_BREAKER_HALF_OPEN:
        if (b->c.requests - b->c.total_exclusions >= b->s.max_requests)
            return GOC_ETOOMANY;
        break;
    case GOC_BREAKER_DISABLED:
        *tok = (goc_breaker_token){ b->gen, 0, start, 2, b };
        b->in_flight++;
        return 0;
    default:
        break;
    }
    b->c.requests++;
    if (b->buckets)
        b->buckets[b->cur_bucket % b->nb].requests++;
    b->in_flight++;
    *tok = (goc_breaker_token){ b->gen, b->cur_bucket, start, 1, b };
    return 0;
}

/* The rolling bucket a token's outcome goes to, or NULL if aged out. */
static struct bucket *token_bucket(goc_breaker *b, const goc_breaker_token *t)
{
    if (!b->buckets || b->cur_bucket - t->bucket_ >= b->nb)
        return NULL;
    return &b->buckets[t->bucket_ % b->nb];
}

/* Take back an admission whose token never reached its caller. */
static void unadmit(goc_breaker *b, goc_breaker_token *tok)
{
    goc__lock_acquire(&b->mu);
    if (tok->live_ == 1 && tok->gen_ == b->gen) {
        /* As record_locked(): a bucket aged out took its requests off
         * the counts already. */
        struct bucket *bk = token_bucket(b, tok);
        if (!b->buckets || bk)
            b->c.requests--;
        if (bk)
            bk->requests--;
    }
    if (tok->live_ == 1 || tok->live_ == 2)
        b->in_flight--;
    tok->live_ = 0;
    goc__lock_release(&b->mu);
}

static int call_deliver(void *arg)
{
    deliver(arg);
    return 0;
}

int goc_breaker_allow(goc_breaker *b, goc_breaker_token *tok)
{
    if (!b || !tok)
        return -EINVAL;
    tnow now = tnow_start(b);
    goc__lock_acquire(&b->mu);
    int rc = admit_locked(b, &now, tok);
    goc__lock_release(&b->mu);
    if (!atomic_load_explicit(&b->has_work, memory_order_relaxed))
        return rc;
    /* A notice callback that panics here must not take an admitted
     * call's place with it (a half-open probe's, for good): the call is
     * taken back, then the panic goes on. */
    goc_panic_info *p = NULL;
    goc_try(call_deliver, b, &p);
    if (p) {
        if (rc == 0)
            unadmit(b, tok);
        goc__panic_again(p);
    }
    return rc;
}

/* Record an outcome in the resilience4j window. */
static void window_record(goc_breaker *b, int64_t now, int flags)
{
    if (b->ring) {
        unsigned char old = b->ring[b->wpos];
        if (old & OUT_USED) {
            b->wcalls--;
            b->wfailed -= !!(old & OUT_FAILED);
            b->wslow -= !!(old & OUT_SLOW);
        }
        b->ring[b->wpos] = (unsigned char)(flags | OUT_USED);
        b->wpos = (b->wpos + 1) % b->wn;
    } else if (b->tring) {
        int64_t sec = (now - b->wstart) / GOC_SECOND;
        if (sec < b->whead)
            sec = b->whead; /* a reading from just before: current second */
        int64_t from = b->whead + 1;
        if (sec - from >= b->wn)
            from = sec - b->wn + 1;
        for (int64_t i = from; i <= sec; i++) {
            struct tbucket *k = &b->tring[i % b->wn];
            b->wcalls -= k->calls;
            b->wfailed -= k->failed;
            b->wslow -= k->slow;
            memset(k, 0, sizeof *k);
        }
        b->whead = sec;
        struct tbucket *k = &b->tring[sec % b->wn];
        k->calls++;
        k->failed += !!(flags & OUT_FAILED);
        k->slow += !!(flags & OUT_SLOW);
    } else {
        return;
    }
    b->wcalls++;
    b->wfailed += !!(flags & OUT_FAILED);
    b->wslow += !!(flags & OUT_SLOW);
}

static bool window_trips(goc_breaker *b)
{
    if ((!b->ring && !b->tring) || b->wcalls < b->s.minimum_calls ||
        b->wcalls == 0)
        return false;
    double fr = 100.0 * (double)b->wfailed / (double)b->wcalls;
    double sr = 100.0 * (double)b->wslow / (double)b->wcalls;
    return fr >= b->s.failure_rate_threshold ||
           sr >= b->s.slow_call_rate_threshold;
}

enum outcome { EXCLUDED, SUCCESS, FAILURE };

/*
 * Count one outcome under the lock. Returns true when ready_to_trip must
 * be asked (outside the lock) with the counts copied into @snap.
 */
static bool record_locked(goc_breaker *b,
                          const goc_breaker_token *tok,
                          enum outcome o,
                          tnow *now,
                          struct goc_breaker_counts *snap)
{
    struct bucket *k = token_bucket(b, tok);
    goc_breaker_state st = b->state;
    /* With a rolling window, totals only hold what is still in it. */
    int64_t in = !b->buckets || k;
    if (o == EXCLUDED) {
        b->c.total_exclusions += in;
        if (k)
            k->exclusions++;
        return false;
    }
    if (o == SUCCESS) {
        b->c.total_successes += in;
        b->c.consecutive_successes++;
        b->c.consecutive_failures = 0;
        if (k)
            k->successes++;
    } else {
        b->c.total_failures += in;
        b->c.consecutive_failures++;
        b->c.consecutive_successes = 0;
        if (k)
            k->failures++;
    }
    if (st == GOC_BREAKER_HALF_OPEN) {
        if (o == FAILURE)
            set_state(b, GOC_BREAKER_OPEN, now);
        else if (b->c.consecutive_successes >= b->s.half_open_successes)
            set_state(b, GOC_BREAKER_CLOSED, now);
        return false;
    }
    bool win = b->ring || b->tring;
    bool slow = win && T(now) - tok->start_ >= b->s.slow_call_duration;
    window_record(b, b->tring ? T(now) : 0,
                  (o == FAILURE ? OUT_FAILED : 0) |
                      ((b->ring || b->tring) && slow ? OUT_SLOW : 0));
    if (st != GOC_BREAKER_CLOSED)
        return false; /* METRICS_ONLY never trips */
    if (window_trips(b)) {
        set_state(b, GOC_BREAKER_OPEN, now);
        return false;
    }
    if (o != FAILURE)
        return false;
    *snap = b->c;
    snap->in_flight = b->in_flight;
    return b->s.ready_to_trip || (!b->ring && !b->tring);
}

static bool default_trip(const struct goc_breaker_counts *c)
{
    return c->consecutive_failures > 5;
}

struct classify {
    goc_breaker *b;
    int err;
    enum outcome o; /* FAILURE until a classifier has answered */
};

static int classify(void *arg)
{
    struct classify *c = arg;
    const struct goc_breaker_settings *s = &c->b->s;
    if (s->is_excluded && s->is_excluded(c->err, s->arg))
        c->o = EXCLUDED;
    else if (s->is_successful ? s->is_successful(c->err, s->arg) : !c->err)
        c->o = SUCCESS;
    return 0;
}

struct trip_ask {
    goc_breaker *b;
    const struct goc_breaker_counts *snap;
    bool trip;
};

static int call_ready_to_trip(void *arg)
{
    struct trip_ask *a = arg;
    a->trip = a->b->s.ready_to_trip(a->snap, a->b->s.arg);
    return 0;
}

/* ready_to_trip's answer; false if it panicked. The first panic of the
 * call is kept in *@p to go on; a later one is freed. */
static bool ask_ready_to_trip(goc_breaker *b,
                              const struct goc_breaker_counts *snap,
                              goc_panic_info **p)
{
    struct trip_ask a = { b, snap, false };
    goc_panic_info *mine = NULL;
    goc_try(call_ready_to_trip, &a, &mine);
    if (mine && *p)
        goc_panic_info_free(mine);
    else if (mine)
        *p = mine;
    return a.trip;
}

int goc_breaker_done(goc_breaker *b, goc_breaker_token *tok, int err)
{
    /* Another breaker's token is refused here; whether this one is
     * still live is known only under the lock (two completions may
     * race). */
    if (!b || !tok)
        return -EINVAL;
    if (tok->owner_ != b)
        return goc__misuse("goc_breaker_done: a token of another breaker");
    /* Classify outside the lock: these are user callbacks. A panic in
     * one counts the call as a failure and goes on once the token is
     * done, as in gobreaker: a probe's place is never lost to it. */
    struct classify c = { b, err, FAILURE };
    goc_panic_info *p = NULL;
    if (err == GOC_EPANIC)
        c.o = FAILURE; /* as gobreaker counts a panic, whatever the filters */
    else if (b->s.is_excluded || b->s.is_successful)
        goc_try(classify, &c, &p);
    else
        c.o = err ? FAILURE : SUCCESS;
    enum outcome o = c.o;
    tnow now = tnow_start(b);
    struct goc_breaker_counts snap;
    bool ask = false;
    uint64_t gen;
    goc__lock_acquire(&b->mu);
    int live = tok->live_;
    if (live != 1 && live != 2) {
        goc__lock_release(&b->mu);
        if (p)
            goc__panic_again(p);
        return goc__misuse("goc_breaker_done: a token used twice");
    }
    tok->live_ = 0;
    b->in_flight--;
    current_state(b, &now);
    gen = b->gen;
    if (live == 1 && tok->gen_ == gen)
        ask = record_locked(b, tok, o, &now, &snap);
    goc__lock_release(&b->mu);
    if (ask) {
        bool trip = b->s.ready_to_trip ? ask_ready_to_trip(b, &snap, &p)
                                       : default_trip(&snap);
        if (trip) {
            goc__lock_acquire(&b->mu);
            /* Only if nothing moved the breaker on meanwhile. */
            if (b->gen == gen && b->state == GOC_BREAKER_CLOSED)
                set_state(b, GOC_BREAKER_OPEN, &now);
            goc__lock_release(&b->mu);
        }
    }
    if (p) /* counted; the next call delivers any notice */
        goc__panic_again(p);
    deliver(b);
    return 0;
}

struct done_call {
    goc_breaker *b;
    goc_breaker_token *tok;
    int err;
};

static int call_done(void *arg)
{
    struct done_call *d = arg;
    return goc_breaker_done(d->b, d->tok, d->err);
}

int goc_breaker_execute(goc_breaker *b, int (*fn)(void *), void *arg)
{
    if (!b || !fn)
        return -EINVAL;
    goc_breaker_token tok;
    int rc = goc_breaker_allow(b, &tok);
    if (rc)
        return rc;
    /* A panic is a failure like any other: the call is counted (and a
     * half-open probe's place given back) before the panic goes on. */
    goc_panic_info *p = NULL;
    rc = goc_try(fn, arg, &p); /* no lock held */
    if (!p) {
        goc_breaker_done(b, &tok, rc);
        return rc;
    }
    /* A callback's panic during done must not lose fn's: fn's goes on. */
    struct done_call d = { b, &tok, rc };
    goc_panic_info *second = NULL;
    goc_try(call_done, &d, &second);
    goc_panic_info_free(second);
    goc__panic_again(p);
}

goc_breaker_state goc_breaker_state_now(goc_breaker *b)
{
    if (!b)
        goc__null_argument(__func__);
    tnow now = tnow_start(b);
    goc__lock_acquire(&b->mu);
    goc_breaker_state s = current_state(b, &now);
    goc__lock_release(&b->mu);
    deliver(b);
    return s;
}

void goc_breaker_counts(goc_breaker *b, struct goc_breaker_counts *c)
{
    if (!b || !c)
        goc__null_argument(__func__);
    tnow now = tnow_start(b);
    goc__lock_acquire(&b->mu);
    current_state(b, &now);
    *c = b->c;
    c->in_flight = b->in_flight;
    goc__lock_release(&b->mu);
    deliver(b);
}

const char *goc_breaker_name(goc_breaker *b)
{
    return b ? b->name : NULL;
}

int goc_breaker_transition(goc_breaker *b, goc_breaker_state to)
{
    if (!b || (unsigned)to > GOC_BREAKER_METRICS_ONLY)
        return -EINVAL;
    tnow now = tnow_start(b);
    goc__lock_acquire(&b->mu);
    current_state(b, &now);
    set_state(b, to, &now);
    goc__lock_release(&b->mu);
    deliver(b);
    return 0;
}

int goc_breaker_trip(goc_breaker *b)
{
    return goc_breaker_transition(b, GOC_BREAKER_OPEN);
}

void goc_breaker_reset(goc_breaker *b)
{
    if (!b)
        goc__null_argument(__func__);
    tnow now = tnow_start(b);
    goc__lock_acquire(&b->mu);
    if (b->state == GOC_BREAKER_CLOSED)
        new_generation(b, &now, false);
    else
        set_state(b, GOC_BREAKER_CLOSED, &now);
    b->open_attempts = 0;
    goc__lock_release(&b->mu);
    deliver(b);
}
