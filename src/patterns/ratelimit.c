/* SPDX-License-Identifier: MIT */
/*
 * Token-bucket rate limiter: golang.org/x/time/rate's arithmetic, float
 * for float, so results match it exactly.
 *
 * State lives in one 16-byte word, {tokens, tag}, changed by a 16-byte
 * compare-and-swap. tag packs `last` (ns relative to the creation time,
 * 59 bits), a LOCKED bit, a 3-bit config epoch and a flag saying that
 * last_event == last. allow() (a reservation that may not wait) only ever
 * sets last_event = last, so it needs nothing but the word: that is the
 * lock-free fast path. Everything else (reserve with a wait, cancel,
 * set_limit/set_burst) takes the mutex and then sets LOCKED in the word,
 * which sends concurrent allow() calls to the mutex too; while LOCKED it
 * owns last_event, limit and burst. A config change bumps the epoch, so an
 * allow() that read the old limit fails its CAS instead of using it (it
 * would take eight changes back to the identical word to fool it).
 * Without a 16-byte CAS (not x86-64) every call takes the mutex.
 *
 * Closing sets `closed` and leaves the word LOCKED for good, so allow()
 * goes to the mutex and finds the limiter closed: the fast path pays
 * nothing for it. wait_n() parks on its own wait, claimed by its timer,
 * its context or a close, so that close can wake it, and free() can wait
 * until every waiter has stopped touching the limiter.
 */
#include "goc/ratelimit.h"
#include "goc/context.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../internal/fastclock.h"
#include "../context/ctx.h"
#include "../internal/list.h"
#include "../internal/lock.h"
#include "../runtime/runtime.h"
#include "patterns.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GCC_HAVE_SYNC_COMPARE_AND_SWAP_16)
#define RL_CAS16 1
#else
#define RL_CAS16 0
#endif

#define TAG_FLAG   ((uint64_t)1)      /* last_event == last */
#define TAG_EPOCH  ((uint64_t)7 << 1) /* config epoch, 3 bits */
#define TAG_LOCKED ((uint64_t)1 << 4) /* a slow-path call owns the state */
#define TAG_SHIFT  5
#define REL_MAX    (((int64_t)1 << 58) - 1)

struct rl_word {
    _Atomic uint64_t tok; /* bits of a double */
    _Atomic uint64_t tag;
};

struct goc_limiter {
    _Alignas(16) struct rl_word w;
    _Atomic uint64_t limit; /* bits of a double; changed while LOCKED */
    _Atomic int64_t burst;  /* changed while LOCKED */
    int64_t last_event;     /* valid when the word's flag is clear */
    int64_t base;           /* clock reading at creation */
    goc__lock mu;           /* serialises the slow paths */
    goc_clock clock;
    /* Under mu: */
    bool closed;
    struct goc__dlink *waiters; /* struct rl_waiter, in wait_n */
    int64_t nwaiting;           /* in wait_n past its first check */
    struct goc__wait *freer;    /* goc_limiter_free() waiting for them */
};

/* A wait_n() caller sleeping until its reservation's time (its stack). */
struct rl_waiter {
    struct goc__dlink link;
    struct goc__wait *w;
    struct rl_waiter *woken; /* a close's chain of claimed waiters */
};

/* Who ended a wait_n() sleep (its wait's index). */
enum { RL_WOKE_TIMER, RL_WOKE_CTX, RL_WOKE_CLOSE };

/* The unpacked state a slow path works on. */
struct rl_state {
    double tokens;
    int64_t last, last_event;
    double limit;
    int64_t burst;
    uint64_t epoch;
};

static inline uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static int64_t sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

/*
 * Every reading of a limiter's own clock goes through here, so one limiter
 * never mixes clocks. Without an injected clock it is goc__fastclock():
 * goc_now()'s clock read from the cycle counter, which costs less than
 * half of clock_gettime and may step back by a few microseconds at most
 * (usually a fraction of one) when it renews its anchor. advance()
 * tolerates a clock going back, as x/time/rate does: an earlier `now`
 * refills nothing and becomes `last`.
 */
static int64_t clock_now(const goc_clock *c)
{
    return c->now ? c->now(c->arg) : goc__fastclock();
}

/* Clamp @t into the range the tag can hold; returns it relative. */
static int64_t rel_of(const goc_limiter *l, int64_t t)
{
    int64_t r = sat_sub(t, l->base);
    return r > REL_MAX ? REL_MAX : r < -REL_MAX ? -REL_MAX : r;
}

static uint64_t tag_make(int64_t rel, uint64_t epoch, bool flag)
{
    return ((uint64_t)rel << TAG_SHIFT) | epoch | (flag ? TAG_FLAG : 0);
}

static int64_t tag_rel(uint64_t tag)
{
    return (int64_t)tag >> TAG_SHIFT;
}

/* time.Duration.Seconds(), exactly. */
static double seconds(int64_t d)
{
    int64_t sec = d / 1000000000, nsec = d % 1000000000;
    return (double)sec + (double)nsec / 1e9;
}

static double tokens_from_duration(double limit, int64_t d)
{
    if (limit <= 0)
        return 0;
    return seconds(d) * limit;
}

/* Limit.durationFromTokens, with the overflow clamp. */
static int64_t duration_from_tokens(double limit, double tokens)
{
    if (limit <= 0)
        return GOC_INF_DURATION;
    double d = (tokens / limit) * 1e9;
    if (d >= 9223372036854775807.0)
        return GOC_INF_DURATION;
    if (d <= -9223372036854775807.0)
        return -GOC_INF_DURATION;
    return (int64_t)d;
}

/* Limiter.advance: tokens at @t (t earlier than last gives no refill). */
static double advance(
    double tokens, int64_t last, double limit, int64_t burst, int64_t t)
{
    if (t < last)
        last = t;
    double v = tokens + tokens_from_duration(limit, t - last);
    if (v > (double)burst)
        v = (double)burst;
    return v;
}

static bool cas_word(
    goc_limiter *l, uint64_t otok, uint64_t otag, uint64_t ntok, uint64_t ntag)
{
#if RL_CAS16
    unsigned __int128 o = ((unsigned __int128)otag << 64) | otok;
    unsigned __int128 n = ((unsigned __int128)ntag << 64) | ntok;
    return __sync_bool_compare_and_swap((unsigned __int128 *)&l->w, o, n);
#else
    /* Only ever called under l->mu without a 16-byte CAS. */
    (void)otok;
    (void)otag;
    atomic_store_explicit(&l->w.tok, ntok, memory_order_relaxed);
    atomic_store_explicit(&l->w.tag, ntag, memory_order_release);
    return true;
#endif
}

/* Take the mutex and the word; fill @st. */
static void slow_lock(goc_limiter *l, struct rl_state *st)
{
    goc__lock_acquire(&l->mu);
    uint64_t tok, tag;
    do {
        tag = atomic_load_explicit(&l->w.tag, memory_order_acquire);
        tok = atomic_load_explicit(&l->w.tok, memory_order_acquire);
    } while (!cas_word(l, tok, tag, tok, tag | TAG_LOCKED));
    st->tokens = u2d(tok);
    st->last = l->base + tag_rel(tag);
    st->last_event = (tag & TAG_FLAG) ? st->last : l->last_event;
    st->limit = u2d(atomic_load_explicit(&l->limit, memory_order_relaxed));
    st->burst = atomic_load_explicit(&l->burst, memory_order_relaxed);
    st->epoch = tag & TAG_EPOCH;
}

/* Publish @st, keeping the mutex; @cfg says limit or burst changed. */
static void slow_publish(goc_limiter *l, const struct rl_state *st, bool cfg)
{
    uint64_t tag = atomic_load_explicit(&l->w.tag, memory_order_relaxed);
    uint64_t tok = atomic_load_explicit(&l->w.tok, memory_order_relaxed);
    uint64_t epoch = st->epoch;
    if (cfg) {
        epoch = (epoch + 2) & TAG_EPOCH;
        atomic_store_explicit(&l->limit, d2u(st->limit), memory_order_relaxed);
        atomic_store_explicit(&l->burst, st->burst, memory_order_relaxed);
    }
    int64_t rel = rel_of(l, st->last);
    bool flag = st->last_event == l->base + rel;
    l->last_event = st->last_event;
    uint64_t ntag = tag_make(rel, epoch, flag);
    if (l->closed)
        ntag |= TAG_LOCKED; /* allow() must see it: send it to the mutex */
    bool done = cas_word(l, tok, tag, d2u(st->tokens), ntag);
    (void)done; /* we own the word: nobody else changes a LOCKED word */
}

/* Publish @st and release. */
static void slow_unlock(goc_limiter *l, const struct rl_state *st, bool cfg)
{
    slow_publish(l, st, cfg);
    goc__lock_release(&l->mu);
}

double goc_rate_every(int64_t interval)
{
    if (interval <= 0)
        return GOC_RATE_INF;
    return 1.0 / seconds(interval);
}

/* GOC_RATE_INF (DBL_MAX) is "no limit"; INFINITY would make advance()
 * compute 0 * inf = NaN tokens, which no comparison ever refuses. */
static bool bad_limit(double limit)
{
    return !isfinite(limit) || limit < 0;
}

int goc_limiter_new(double limit,
                    int64_t burst,
                    const goc_clock *clock,
                    goc_limiter **out)
{
    if (!out || bad_limit(limit) || burst < 0)
        return -EINVAL;
    goc_clock c = clock ? *clock : (goc_clock){ 0 };
    return goc__limiter_new_at(limit, burst, clock, clock_now(&c), out);
}

int goc__limiter_new_at(double limit,
                        int64_t burst,
                        const goc_clock *clock,
                        int64_t now,
                        goc_limiter **out)
{
    if (!out || bad_limit(limit) || burst < 0)
        return -EINVAL;
    goc_limiter *l = goc__aligned_alloc(16, sizeof *l);
    if (!l)
        return -ENOMEM;
    memset(l, 0, sizeof *l);
    if (clock)
        l->clock = *clock;
    l->base = now;
    l->last_event = l->base;
    atomic_init(&l->limit, d2u(limit));
    atomic_init(&l->burst, burst);
    atomic_init(&l->w.tok, d2u((double)burst));
    atomic_init(&l->w.tag, tag_make(0, 0, true));
    *out = l;
    return 0;
}

static void unlock_mu(void *mu)
{
    goc__lock_release(mu);
}

/* Close under mu; returns the chain of waiters it claimed, to be woken
 * once mu is released. */
static struct rl_waiter *close_locked(goc_limiter *l)
{
    l->closed = true;
    struct rl_waiter *woken = NULL;
    for (struct goc__dlink *n = l->waiters; n; n = n->next) {
        struct rl_waiter *x = goc__container_of(n, struct rl_waiter, link);
        if (goc__wait_claim(x->w, RL_WOKE_CLOSE)) {
            x->woken = woken;
            woken = x;
        }
    }
    return woken;
}

/* A claimed waiter may return, and its node go, once woken. */
static void wake_chain(struct rl_waiter *x)
{
    while (x) {
        struct rl_waiter *next = x->woken;
        goc__wait_finish(x->w);
        x = next;
    }
}

int goc_limiter_close(goc_limiter *l)
{
    if (!l)
        return -EINVAL;
    struct rl_state st;
    slow_lock(l, &st);
    bool was = l->closed;
    struct rl_waiter *woken = was ? NULL : close_locked(l);
    slow_unlock(l, &st, false); /* leaves the word LOCKED */
    wake_chain(woken);
    return was ? GOC_ECLOSED : 0;
}

void goc_limiter_free(goc_limiter *l)
{
    if (!l)
        return;
    struct rl_state st;
    slow_lock(l, &st);
    struct rl_waiter *woken = l->closed ? NULL : close_locked(l);
    if (!l->nwaiting) {
        slow_unlock(l, &st, false);
        wake_chain(woken);
        goc__free(l);
        return;
    }
    /* Woken waiters still cancel their reservations here: the last one
     * to leave wakes us. */
    struct goc__wait w;
    goc__wait_init(&w, GOC__WAIT_COND);
    l->freer = &w;
    slow_publish(l, &st, false);
    wake_chain(woken); /* they find mu held until we sleep */
    goc__wait_block(&w, unlock_mu, &l->mu);
    goc__free(l);
}

double goc_limiter_limit(goc_limiter *l)
{
    if (!l)
        goc__null_argument(__func__);
    goc__lock_acquire(&l->mu);
    double v = u2d(atomic_load_explicit(&l->limit, memory_order_relaxed));
    goc__lock_release(&l->mu);
    return v;
}

int64_t goc_limiter_burst(goc_limiter *l)
{
    if (!l)
        return -EINVAL;
    goc__lock_acquire(&l->mu);
    int64_t v = atomic_load_explicit(&l->burst, memory_order_relaxed);
    goc__lock_release(&l->mu);
    return v;
}

double goc_limiter_tokens_at(goc_limiter *l, int64_t now)
{
    if (!l)
        goc__null_argument(__func__);
    struct rl_state st;
    slow_lock(l, &st);
    now = l->base + rel_of(l, now);
    double v = advance(st.tokens, st.last, st.limit, st.burst, now);
    slow_unlock(l, &st, false);
    return v;
}

double goc_limiter_tokens(goc_limiter *l)
{
    if (!l)
        goc__null_argument(__func__);
    return goc_limiter_tokens_at(l, clock_now(&l->clock));
}

/* Limiter.reserveN on an unpacked state (slow path). */
static void reserve_locked(goc_limiter *l,
                           struct rl_state *st,
                           int64_t t,
                           int64_t n,
                           int64_t max_wait,
                           goc_reservation *r)
{
    *r = (goc_reservation){ .lim_ = l };
    if (st->limit == GOC_RATE_INF) {
        r->ok_ = true;
        r->tokens_ = n;
        r->time_to_act_ = t;
        return;
    }
    double tokens = advance(st->tokens, st->last, st->limit, st->burst, t);
    tokens -= (double)n;
    int64_t wait = 0;
    if (tokens < 0)
        wait = duration_from_tokens(st->limit, -tokens);
    r->limit_ = st->limit;
    /* A wait with no end (a zero limit, its burst spent) is never OK:
     * taking the tokens would leave a debt that outlives the limit. */
    r->ok_ = n <= st->burst && wait <= max_wait && wait != GOC_INF_DURATION;
    if (r->ok_) {
        r->tokens_ = n;
        r->time_to_act_ = sat_add(t, wait);
        st->last = t;
        st->tokens = tokens;
        st->last_event = r->time_to_act_;
    }
}

/* The lock-free attempt: 1 allowed, 0 refused, -1 use the slow path. */
static int allow_fast(goc_limiter *l, int64_t t, int64_t n)
{
#if RL_CAS16
    for (;;) {
        uint64_t tag = atomic_load_explicit(&l->w.tag, memory_order_acquire);
        uint64_t tok = atomic_load_explicit(&l->w.tok, memory_order_acquire);
        if (tag & TAG_LOCKED)
            return -1;
        double limit =
            u2d(atomic_load_explicit(&l->limit, memory_order_relaxed));
        int64_t burst = atomic_load_explicit(&l->burst, memory_order_relaxed);
        if (limit == GOC_RATE_INF)
            return 1;
        double tokens =
            advance(u2d(tok), l->base + tag_rel(tag), limit, burst, t) -
            (double)n;
        int64_t wait = tokens < 0 ? duration_from_tokens(limit, -tokens) : 0;
        if (n > burst || wait > 0) {
            /* Refuse only on a snapshot that really existed. */
            if (cas_word(l, tok, tag, tok, tag))
                return 0;
            continue;
        }
        uint64_t ntag = tag_make(t - l->base, tag & TAG_EPOCH, true);
        if (cas_word(l, tok, tag, d2u(tokens), ntag))
            return 1;
    }
#else
    (void)l;
    (void)t;
    (void)n;
    return -1;
#endif
}

bool goc_limiter_allow_n_at(goc_limiter *l, int64_t now, int64_t n)
{
    if (!l || n < 0)
        return false;
    now = l->base + rel_of(l, now);
    int fast = allow_fast(l, now, n);
    if (fast >= 0)
        return fast;
    struct rl_state st;
    goc_reservation r = { .ok_ = false };
    slow_lock(l, &st);
    if (!l->closed)
        reserve_locked(l, &st, now, n, 0, &r);
    slow_unlock(l, &st, false);
    return r.ok_;
}

bool goc_limiter_allow_n(goc_limiter *l, int64_t n)
{
    if (!l)
        return false;
    return goc_limiter_allow_n_at(l, clock_now(&l->clock), n);
}

bool goc_limiter_allow(goc_limiter *l)
{
    if (!l)
        return false;
    return goc_limiter_allow_n_at(l, clock_now(&l->clock), 1);
}

int goc_limiter_reserve_max_at(goc_limiter *l,
                               int64_t now,
                               int64_t n,
                               int64_t max_wait,
                               goc_reservation *res)
{
    if (!l || !res || n < 0)
        return -EINVAL;
    now = l->base + rel_of(l, now);
    struct rl_state st;
    slow_lock(l, &st);
    bool closed = l->closed;
    if (closed)
        *res = (goc_reservation){ .lim_ = l };
    else
        reserve_locked(l, &st, now, n, max_wait, res);
    slow_unlock(l, &st, false);
    return closed ? GOC_ECLOSED : 0;
}

int goc_limiter_reserve_n_at(goc_limiter *l,
                             int64_t now,
                             int64_t n,
                             goc_reservation *res)
{
    return goc_limiter_reserve_max_at(l, now, n, GOC_INF_DURATION, res);
}

int goc_limiter_reserve_n(goc_limiter *l, int64_t n, goc_reservation *res)
{
    if (!l)
        return -EINVAL;
    return goc_limiter_reserve_n_at(l, clock_now(&l->clock), n, res);
}

int goc_limiter_reserve(goc_limiter *l, goc_reservation *res)
{
    return goc_limiter_reserve_n(l, 1, res);
}

bool goc_reservation_ok(const goc_reservation *r)
{
    return r && r->ok_;
}

int64_t goc_reservation_delay_from(const goc_reservation *r, int64_t now)
{
    if (!r || !r->ok_)
        return GOC_INF_DURATION;
    int64_t d = sat_sub(r->time_to_act_, now);
    return d < 0 ? 0 : d;
}

int64_t goc_reservation_delay(const goc_reservation *r)
{
    if (!r || !r->ok_)
        return GOC_INF_DURATION;
    return goc_reservation_delay_from(r, clock_now(&r->lim_->clock));
}

/* Reservation.CancelAt on an unpacked state; @now is clamped. */
static void cancel_locked(struct rl_state *st,
                          const goc_reservation *r,
                          int64_t now)
{
    if (st->limit == GOC_RATE_INF || r->tokens_ == 0 || r->time_to_act_ < now)
        return;
    double restore = (double)r->tokens_ -
                     tokens_from_duration(
                         r->limit_, sat_sub(st->last_event, r->time_to_act_));
    if (restore <= 0)
        return;
    double tokens = advance(st->tokens, st->last, st->limit, st->burst, now);
    tokens += restore;
    if (tokens > (double)st->burst)
        tokens = (double)st->burst;
    st->last = now;
    st->tokens = tokens;
    if (r->time_to_act_ == st->last_event) {
        int64_t prev =
            sat_add(r->time_to_act_,
                    duration_from_tokens(r->limit_, (double)-r->tokens_));
        if (prev >= now)
            st->last_event = prev;
    }
}

void goc_reservation_cancel_at(goc_reservation *r, int64_t now)
{
    if (!r || !r->ok_)
        return;
    goc_limiter *l = r->lim_;
    now = l->base + rel_of(l, now);
    struct rl_state st;
    slow_lock(l, &st);
    cancel_locked(&st, r, now);
    slow_unlock(l, &st, false);
}

void goc_reservation_cancel(goc_reservation *r)
{
    if (r && r->ok_)
        goc_reservation_cancel_at(r, clock_now(&r->lim_->clock));
}

static void timer_fire(void *arg)
{
    struct goc__wait *w = arg;
    if (goc__wait_claim(w, RL_WOKE_TIMER))
        goc__wait_finish(w);
}

/* A wait_n() caller is done with the limiter; the last one after a free
 * wakes it. */
static void wait_leave(goc_limiter *l)
{
    goc__lock_acquire(&l->mu);
    struct goc__wait *freer = NULL;
    if (--l->nwaiting == 0 && l->freer && goc__wait_claim(l->freer, 0))
        freer = l->freer;
    goc__lock_release(&l->mu);
    if (freer)
        goc__wait_finish(freer); /* l may be gone now */
}

struct clock_call {
    goc_limiter *l;
    int64_t now;
};

static int clock_call(void *arg)
{
    struct clock_call *c = arg;
    c->now = clock_now(&c->l->clock);
    return 0;
}

/*
 * The clock's now (clamped) for a wait_n() caller, counted in nwaiting.
 * An injected clock is the caller's code: a panic in it leaves the
 * limiter first, or a free would wait for this caller forever.
 */
static int64_t waiter_now(goc_limiter *l)
{
    struct clock_call c = { l, 0 };
    if (!l->clock.now) {
        clock_call(&c);
    } else {
        goc_panic_info *pi;
        if (goc_try(clock_call, &c, &pi) == GOC_EPANIC) {
            wait_leave(l);
            goc__panic_again(pi);
        }
    }
    return l->base + rel_of(l, c.now);
}

/*
 * Sleep until @deadline (goc_now()'s clock), the end of @ctx or a close,
 * for the OK reservation @r, made at @now, that @st holds. Entered under
 * the mutex and the word; returns with neither. A sleep that does not
 * reach its time gives @r's tokens back. The clock is never read under
 * the mutex (an injected one is the caller's code), nor with this frame
 * still on the waiters' list.
 */
static int sleep_locked(goc_limiter *l,
                        struct rl_state *st,
                        goc_reservation *r,
                        int64_t now,
                        int64_t deadline,
                        goc_ctx *ctx)
{
    struct goc__wait w;
    struct goc__ctx_watch cw;
    struct goc__timer t = { 0 };
    struct rl_waiter x = { .w = &w };
    goc__wait_init(&w, GOC__WAIT_SLEEP);
    /* Lock order limiter -> context: a cancel never takes ours. */
    int rc = goc__ctx_watch(ctx, &cw, &w, RL_WOKE_CTX);
    if (rc) {
        cancel_locked(st, r, now);
        slow_unlock(l, st, false);
        return rc;
    }
    goc__dlist_push(&l->waiters, &x.link);
    slow_publish(l, st, false);
    goc__timer_start(&t, deadline, timer_fire, &w);
    int won = goc__wait_block(&w, unlock_mu, &l->mu);
    goc__timer_stop_sync(&t);
    goc__ctx_unwatch(&cw);
    goc__lock_acquire(&l->mu);
    goc__dlist_remove(&l->waiters, &x.link);
    goc__lock_release(&l->mu);
    if (won == RL_WOKE_TIMER)
        return 0;
    now = waiter_now(l);
    slow_lock(l, st);
    cancel_locked(st, r, now);
    slow_unlock(l, st, false);
    return won == RL_WOKE_CTX ? goc_ctx_err(ctx) : GOC_ECLOSED;
}

/* wait_n() past its first check, counted in nwaiting. */
static int wait_counted(
    goc_limiter *l, int64_t n, goc_ctx *ctx, int64_t burst, double limit)
{
    if (n > burst && limit != GOC_RATE_INF)
        return GOC_EBURST;
    int rc = goc_ctx_err(ctx);
    if (rc)
        return rc;
    if ((rc = goc__rt_ensure()) != 0) /* for the timer */
        return rc;
    /* The deadline is on goc_now()'s clock, the limiter's default clock is
     * goc__fastclock(): the two differ by microseconds at most, so
     * the budget is taken as a duration on the real clock. */
    int64_t max_wait = GOC_INF_DURATION, deadline;
    if (goc_ctx_deadline(ctx, &deadline))
        max_wait = sat_sub(deadline, goc_now());
    int64_t now = waiter_now(l);
    goc_reservation r = { .lim_ = l };
    struct rl_state st;
    slow_lock(l, &st);
    if (l->closed)
        rc = GOC_ECLOSED; /* closed since the check */
    else
        reserve_locked(l, &st, now, n, max_wait, &r);
    int64_t delay = goc_reservation_delay_from(&r, now);
    if (rc || !r.ok_ || delay == 0) {
        slow_unlock(l, &st, false);
        return rc ? rc : r.ok_ ? 0 : GOC_EWOULDEXCEED;
    }
    int64_t real = goc_now();
    int64_t wake_at = delay > INT64_MAX - real ? INT64_MAX : real + delay;
    return sleep_locked(l, &st, &r, now, wake_at, ctx);
}

int goc_limiter_wait_n(goc_limiter *l, int64_t n, goc_ctx *ctx)
{
    if (!l || n < 0)
        return -EINVAL;
    /* Counted from the check on: a free that closes the limiter after it
     * waits for this call to leave. */
    goc__lock_acquire(&l->mu);
    bool closed = l->closed;
    if (!closed)
        l->nwaiting++;
    int64_t burst = atomic_load_explicit(&l->burst, memory_order_relaxed);
    double limit = u2d(atomic_load_explicit(&l->limit, memory_order_relaxed));
    goc__lock_release(&l->mu);
    if (closed)
        return GOC_ECLOSED;
    int rc = wait_counted(l, n, ctx, burst, limit);
    wait_leave(l);
    return rc;
}

int goc_limiter_wait(goc_limiter *l, goc_ctx *ctx)
{
    return goc_limiter_wait_n(l, 1, ctx);
}

int goc_limiter_set_limit_at(goc_limiter *l, int64_t now, double limit)
{
    if (!l || bad_limit(limit))
        return -EINVAL;
    now = l->base + rel_of(l, now);
    struct rl_state st;
    slow_lock(l, &st);
    st.tokens = advance(st.tokens, st.last, st.limit, st.burst, now);
    st.last = now;
    st.limit = limit;
    slow_unlock(l, &st, true);
    return 0;
}

int goc_limiter_set_limit(goc_limiter *l, double limit)
{
    if (!l)
        return -EINVAL;
    return goc_limiter_set_limit_at(l, clock_now(&l->clock), limit);
}

int goc_limiter_set_burst_at(goc_limiter *l, int64_t now, int64_t burst)
{
    if (!l || burst < 0)
        return -EINVAL;
    now = l->base + rel_of(l, now);
    struct rl_state st;
    slow_lock(l, &st);
    st.tokens = advance(st.tokens, st.last, st.limit, st.burst, now);
    st.last = now;
    st.burst = burst;
    slow_unlock(l, &st, true);
    return 0;
}

int goc_limiter_set_burst(goc_limiter *l, int64_t burst)
{
    if (!l)
        return -EINVAL;
    return goc_limiter_set_burst_at(l, clock_now(&l->clock), burst);
}
