/* SPDX-License-Identifier: MIT */
/*
 * Retry with backoff: cenkalti/backoff v4's policies, formula for formula,
 * and a loop that keeps the last error (v7's RetryError), honours
 * retry-after and permanent errors, and checks the context before every
 * attempt and during every wait.
 */
#include "goc/retry.h"
#include "errors_int.h"
#include "goc/context.h"
#include "goc/panic.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../runtime/runtime.h"

#include <math.h>

/* STOP_UNRESET: fresh from an initialiser, reset on the first next(). */
enum { STOP_NONE, STOP_EXHAUSTED, STOP_ELAPSED, STOP_UNRESET };

#define NS_MAX 9223372036854775807.0

static int64_t now_of(const goc_backoff *b)
{
    return b->clock.now ? b->clock.now(b->clock.arg) : goc_now();
}

/* Saturating double -> ns conversion (never wraps negative). */
static int64_t to_ns(double d)
{
    if (!(d > 0))
        return 0;
    if (d >= NS_MAX)
        return INT64_MAX;
    return (int64_t)d;
}

/* Uniform [0, 1): the injected source, else splitmix64. */
static double uniform(goc_backoff *b)
{
    if (b->rand)
        return b->rand(b->rand_arg);
    uint64_t z = (b->seed_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static void init(goc_backoff *b, enum goc_backoff_kind kind)
{
    if (!b)
        goc__null_argument("goc_backoff initialiser");
    *b = (goc_backoff){
        .kind = kind,
        .initial_interval = 500 * GOC_MILLISECOND,
        .randomization_factor = 0.5,
        .multiplier = 1.5,
        .max_interval = 60 * GOC_SECOND,
        /* cenkalti's exponential default; the other kinds never stop
         * on time unless told to (Zero retries for ever). */
        .max_elapsed_time =
            kind == GOC_BACKOFF_EXPONENTIAL ? 15 * 60 * GOC_SECOND : 0,
        .max_retries = -1,
        .stop_reason_ = STOP_UNRESET,
    };
    b->seed_ = (uint64_t)goc_now() ^ (uint64_t)(uintptr_t)b;
}

void goc_backoff_exponential(goc_backoff *b)
{
    init(b, GOC_BACKOFF_EXPONENTIAL);
}

void goc_backoff_constant(goc_backoff *b, int64_t interval)
{
    init(b, GOC_BACKOFF_CONSTANT);
    b->interval = interval;
}

void goc_backoff_zero(goc_backoff *b)
{
    init(b, GOC_BACKOFF_ZERO);
}

void goc_backoff_never(goc_backoff *b)
{
    init(b, GOC_BACKOFF_NEVER);
}

void goc_backoff_custom(goc_backoff *b,
                        int64_t (*fn)(int64_t, void *),
                        void *arg)
{
    init(b, GOC_BACKOFF_CUSTOM);
    b->custom = fn;
    b->custom_arg = arg;
}

int goc_backoff_validate(const goc_backoff *b)
{
    if (!b || (unsigned)b->kind > GOC_BACKOFF_CUSTOM ||
        (unsigned)b->jitter > GOC_JITTER_DECORRELATED ||
        b->max_elapsed_time < 0)
        return -EINVAL;
    if (b->kind == GOC_BACKOFF_CONSTANT && b->interval < 0)
        return -EINVAL;
    if (b->kind == GOC_BACKOFF_CUSTOM && !b->custom)
        return -EINVAL;
    if (b->kind != GOC_BACKOFF_EXPONENTIAL)
        return 0;
    if (b->initial_interval <= 0 || !(b->multiplier >= 1) ||
        !(b->randomization_factor >= 0 && b->randomization_factor <= 1))
        return -EINVAL;
    if (b->max_interval != 0 && b->max_interval < b->initial_interval)
        return -EINVAL; /* never "cap at 0" (seed defect D-109) */
    return 0;
}

void goc_backoff_reset(goc_backoff *b)
{
    if (!b)
        goc__null_argument(__func__);
    b->current_ = b->initial_interval;
    b->prev_ = b->initial_interval;
    b->start_ = now_of(b);
    b->calls_ = 0;
    b->stop_reason_ = STOP_NONE;
}

/* backoff's getRandomValueFromInterval. */
static int64_t proportional(goc_backoff *b, int64_t cur)
{
    if (b->randomization_factor == 0)
        return cur; /* no randomness at all */
    double delta = b->randomization_factor * (double)cur;
    double lo = (double)cur - delta, hi = (double)cur + delta;
    return to_ns(lo + uniform(b) * (hi - lo + 1));
}

/* backoff's incrementCurrentInterval, with max_interval 0 = no cap. */
static void grow(goc_backoff *b)
{
    double cur = (double)b->current_;
    if (b->max_interval && cur >= (double)b->max_interval / b->multiplier)
        b->current_ = b->max_interval;
    else
        b->current_ = to_ns(cur * b->multiplier);
}

static int64_t exponential_next(goc_backoff *b)
{
    int64_t cur = b->current_, next;
    switch (b->jitter) {
    case GOC_JITTER_FULL:
        next = to_ns(uniform(b) * (double)cur);
        break;
    case GOC_JITTER_EQUAL:
        next = cur / 2 + to_ns(uniform(b) * (double)(cur - cur / 2));
        break;
    case GOC_JITTER_DECORRELATED: {
        double lo = (double)b->initial_interval, hi = 3.0 * (double)b->prev_;
        next = to_ns(lo + uniform(b) * (hi > lo ? hi - lo : 0));
        if (b->max_interval && next > b->max_interval)
            next = b->max_interval;
        b->prev_ = next > 0 ? next : b->initial_interval;
        break;
    }
    default:
        next = proportional(b, cur);
        break;
    }
    grow(b);
    return next;
}

int64_t goc_backoff_next(goc_backoff *b)
{
    if (!b)
        goc__null_argument(__func__);
    /* A policy goc_retry() would refuse has no wait to give: it stops
     * (a negative constant interval was returned as a negative wait). */
    if (goc_backoff_validate(b))
        return GOC_BACKOFF_STOP;
    /* Reset now, not in the initialiser: its clock may be set after. */
    if (b->stop_reason_ == STOP_UNRESET)
        goc_backoff_reset(b);
    int64_t elapsed = now_of(b) - b->start_;
    if (b->max_retries >= 0 && b->calls_ >= b->max_retries) {
        b->stop_reason_ = STOP_EXHAUSTED;
        return GOC_BACKOFF_STOP;
    }
    b->calls_++;
    int64_t next;
    switch (b->kind) {
    case GOC_BACKOFF_CONSTANT:
        next = b->interval;
        break;
    case GOC_BACKOFF_ZERO:
        next = 0;
        break;
    case GOC_BACKOFF_NEVER:
        b->stop_reason_ = STOP_EXHAUSTED;
        return GOC_BACKOFF_STOP;
    case GOC_BACKOFF_CUSTOM:
        next = b->custom(b->calls_, b->custom_arg);
        if (next < 0) {
            b->stop_reason_ = STOP_EXHAUSTED;
            return GOC_BACKOFF_STOP;
        }
        break;
    default:
        next = exponential_next(b);
        break;
    }
    if (b->max_elapsed_time &&
        (elapsed > INT64_MAX - next || elapsed + next > b->max_elapsed_time)) {
        b->stop_reason_ = STOP_ELAPSED;
        return GOC_BACKOFF_STOP;
    }
    return next;
}

static void free_i64(void *p)
{
    goc__free(p);
}

goc_error *goc_retry_permanent(goc_error *cause)
{
    if (!cause)
        return NULL;
    goc_error *e = goc_error_with_code(GOC_EPERMANENT, cause, "permanent");
    goc_error_release(cause);
    /* Out of memory: still a stop, or the loop would retry it. */
    return goc_error_code(e) == GOC_EPERMANENT ? e : goc__error_permanent_oom();
}

goc_error *goc_retry_after(int64_t delay, goc_error *cause)
{
    int64_t *d = goc__malloc(sizeof *d);
    if (!d) {
        goc_error_release(cause);
        return goc_error_new(-ENOMEM, NULL);
    }
    *d = delay < 0 ? 0 : delay;
    goc_error *e = goc__error_wrap_payload(GOC_ERETRYAFTER, cause, d, free_i64,
                                           "retry after");
    goc_error_release(cause);
    return e;
}

/* The delay a retry-after error asks for (-1 if @e is not one). */
static int64_t retry_after_delay(const goc_error *e)
{
    if (goc_error_code(e) != GOC_ERETRYAFTER || !goc_error_payload(e))
        return -1;
    return *(int64_t *)goc_error_payload(e);
}

/* What to report as the last error: the operation's own, unwrapped. */
static goc_error *unwrap_marker(goc_error *e)
{
    int c = goc_error_code(e);
    if ((c == GOC_EPERMANENT || c == GOC_ERETRYAFTER) && goc_error_cause(e)) {
        goc_error *inner = goc_error_retain(goc_error_cause(e));
        goc_error_release(e);
        return inner;
    }
    return e;
}

struct loop {
    goc_retry_op op;
    void *arg;
    const struct goc_retry_opts *o;
    goc_backoff *b;
    goc_ctx *ctx;
    int64_t start, first_failure;
    goc_error *last;
    goc_error *failed; /* this attempt's error, until it becomes last */
    int last_code;
    int64_t attempts;
};

/* Does a wait of @wait fit in the policy's own time budget? */
static bool within_budget(goc_backoff *b, int64_t wait)
{
    if (!b->max_elapsed_time)
        return true;
    int64_t elapsed = now_of(b) - b->start_;
    return elapsed <= INT64_MAX - wait && elapsed + wait <= b->max_elapsed_time;
}

/*
 * The wait before the next attempt, or a negative stop reason. A
 * retry-after error sets the wait, but the policy is still asked first:
 * its retry count, its time budget or a never-retry policy can end the
 * loop (a server answering Retry-After for ever retried for ever).
 */
static int64_t next_wait(struct loop *l, goc_error *e, bool *restart_after)
{
    int64_t after = retry_after_delay(e);
    *restart_after = after >= 0;
    if (l->attempts >= l->o->max_tries)
        return GOC_EEXHAUSTED;
    int64_t next = goc_backoff_next(l->b);
    /* A retry-after wait replaces the policy's interval, so the policy's
     * time budget judges it instead: it may fit where the interval did
     * not, or not fit where the interval did. */
    bool stopped = next == GOC_BACKOFF_STOP;
    if (stopped && l->b->stop_reason_ != STOP_ELAPSED)
        return GOC_EEXHAUSTED;
    if (after >= 0 ? !within_budget(l->b, after) : stopped)
        return GOC_EMAXELAPSED;
    if (after >= 0)
        next = after;
    if (l->o->max_elapsed_time > 0) {
        int64_t base = l->o->from_first_failure ? l->first_failure : l->start;
        int64_t left = l->o->max_elapsed_time - (goc_now() - base);
        if (left <= 0)
            return GOC_EMAXELAPSED;
        if (next > left)
            next = left; /* use the rest of the budget, do not give up */
    }
    return next;
}

static const char *reason_text(int code)
{
    switch (code) {
    case GOC_EPERMANENT:
        return "permanent error";
    case GOC_EEXHAUSTED:
        return "attempts exhausted";
    case GOC_EMAXELAPSED:
        return "max elapsed time reached";
    default:
        return goc_strerror(code);
    }
}

static int run(struct loop *l)
{
    for (;;) {
        int rc = goc_ctx_err(l->ctx);
        if (rc)
            return rc;
        goc_error *e = NULL;
        l->attempts++;
        rc = l->op(l->ctx, l->arg, &e);
        if (rc == 0) {
            goc_error_release(e);
            l->last_code = 0;
            return 0;
        }
        if (!e)
            e = goc_error_new(rc, NULL);
        l->failed = e;
        if (l->attempts == 1)
            l->first_failure = goc_now();
        bool permanent = goc_error_code(e) == GOC_EPERMANENT;
        bool restart_after;
        int64_t wait =
            permanent ? GOC_EPERMANENT : next_wait(l, e, &restart_after);
        l->last_code = rc;
        /* A ctx that ended during the attempt stops the loop here: no
         * retry is announced that will never happen. It is the reason
         * given, unless the error was permanent: a policy that stops as
         * well does not hide the cancel. */
        int stop = goc_ctx_err(l->ctx);
        if (wait < 0 && (!stop || permanent))
            stop = (int)wait;
        if (!stop && l->o->notify)
            l->o->notify(e, wait, l->o->notify_arg);
        goc_error_release(l->last);
        l->last = unwrap_marker(e);
        l->failed = NULL;
        if (stop)
            return stop;
        rc = goc_sleep(wait, l->ctx);
        if (rc)
            return rc;
        if (restart_after) /* the interval; its limits keep counting */
            l->b->current_ = l->b->prev_ = l->b->initial_interval;
    }
}

static int run_try(void *arg)
{
    return run(arg);
}

/*
 * The loop, with a panic of the operation or of a callback (notify, a
 * custom policy, the clock) passed on only once the errors the loop
 * holds are released.
 */
static int run_guarded(struct loop *l)
{
    goc_panic_info *p = NULL;
    int rc = goc_try(run_try, l, &p);
    if (p) {
        goc_error_release(l->failed);
        goc_error_release(l->last);
        goc__panic_again(p);
    }
    return rc;
}

int goc_retry(goc_retry_op op,
              void *arg,
              const struct goc_retry_opts *opts,
              struct goc_retry_result *res,
              goc_ctx *ctx)
{
    static const struct goc_retry_opts defaults = { .max_tries =
                                                        GOC_RETRY_FOREVER };
    const struct goc_retry_opts *o = opts ? opts : &defaults;
    goc_backoff own;
    goc_backoff *b = o->backoff;
    if (!b) {
        goc_backoff_exponential(&own);
        b = &own;
    }
    if (res)
        *res = (struct goc_retry_result){ 0 };
    if (!op || o->max_tries < 1 || o->max_elapsed_time < 0 ||
        goc_backoff_validate(b))
        return -EINVAL;
    goc_backoff_reset(b);
    struct loop l = { .op = op, .arg = arg, .o = o, .b = b, .ctx = ctx };
    l.start = l.first_failure = goc_now();
    int rc = run_guarded(&l);
    if (res) {
        res->attempts = l.attempts;
        res->last_code = l.last_code;
        if (rc)
            res->err =
                goc_error_with_code(rc, l.last,
                                    "retry: %s after %lld "
                                    "attempts",
                                    reason_text(rc), (long long)l.attempts);
    }
    goc_error_release(l.last);
    return rc;
}
