/* SPDX-License-Identifier: MIT */
/*
 * The graceful shutdown manager. One run goes through the phases in
 * order; each component's stop function runs on its own goroutine with a
 * heap context (it may outlive its phase), and reports back on a channel
 * with room for every component, so a late report never blocks. The
 * manager is shared by its owner, the signal watcher and every stop
 * goroutine still running.
 */
#include "net.h"
#include "goc/chan.h"
#include "goc/errors.h"
#include "goc/shutdown.h"
#include "goc/signal.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../patterns/patterns.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT (30 * GOC_SECOND)

struct comp {
    char name[32];
    int phase, seq;
    goc_stop_fn fn;
    void *arg;
    goc_server *srv; /* for goc_shutdown_add_server(), a reference */
    /* Under m->lock once the shutdown runs. */
    int state, err;
    int64_t start, duration;
};

struct goc_shutdown {
    goc__lock lock;
    struct goc_shutdown_opts opts;
    struct comp *comps; /* in stop order once running */
    int ncomps, cap;
    int state, result, signo, unfinished;
    goc_chan *done;    /* closed when the result is stored */
    goc_chan *reports; /* index of each component that returned */
    /* Signal watching. */
    bool watching;  /* under lock: goc_shutdown_watch_signals() claimed */
    bool signalled; /* under lock: a watched signal came */
    goc_chan *sigs;
    goc_ctx *watch_ctx;
    goc_wg watcher; /* the watcher, and the shutdown a signal started */
    /* goc_shutdown_watch_ctx(): set once, under lock; the shutdown it
     * starts is counted in ctx_run until it has returned. */
    bool ctx_watched;
    goc_ctx_after ctx_after;
    goc_wg ctx_run;
    _Atomic int refs;
};

static void mgr_release(goc_shutdown *m)
{
    if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) != 1)
        return;
    /* Every stop goroutine is done with the servers: each held m. */
    for (int i = 0; i < m->ncomps; i++)
        if (m->comps[i].srv)
            goc__server_release(m->comps[i].srv);
    goc_chan_release(m->done);
    goc_chan_release(m->reports);
    goc__free(m->comps);
    goc__free(m);
}

int goc_shutdown_new(const struct goc_shutdown_opts *opts, goc_shutdown **out)
{
    struct goc_shutdown_opts o = opts ? *opts : (struct goc_shutdown_opts){ 0 };
    if (!out || o.timeout < 0 || o.phase_timeout < 0)
        return -EINVAL;
    if (!o.timeout)
        o.timeout = DEFAULT_TIMEOUT;
    goc_shutdown *m = goc__calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    if (goc_chan_new(0, 0, &m->done) != 0) {
        goc__free(m);
        return -ENOMEM;
    }
    m->opts = o;
    atomic_init(&m->refs, 1);
    *out = m;
    return 0;
}

static int add(goc_shutdown *m,
               const char *name,
               goc_stop_fn fn,
               void *arg,
               int phase,
               goc_server *srv)
{
    if (!m || !name || (!fn && !srv))
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    int err = 0;
    if (m->state != GOC_SHUTDOWN_RUNNING) {
        err = GOC_ECLOSED;
    } else if (m->ncomps == m->cap) {
        int cap = m->cap ? 2 * m->cap : 8;
        struct comp *c = goc__malloc((size_t)cap * sizeof(*c));
        if (c) {
            if (m->ncomps)
                memcpy(c, m->comps, (size_t)m->ncomps * sizeof(*c));
            goc__free(m->comps);
            m->comps = c;
            m->cap = cap;
        } else {
            err = -ENOMEM;
        }
    }
    if (!err) {
        struct comp *c = &m->comps[m->ncomps];
        *c = (struct comp){
            .phase = phase, .seq = m->ncomps, .fn = fn, .arg = arg, .srv = srv
        };
        snprintf(c->name, sizeof(c->name), "%s", name);
        /* A stop that overruns its budget may still be shutting the
         * server down after its owner freed it. */
        if (srv)
            goc__server_retain(srv);
        m->ncomps++;
    }
    goc__lock_release(&m->lock);
    return err;
}

int goc_shutdown_add(
    goc_shutdown *m, const char *name, goc_stop_fn fn, void *arg, int phase)
{
    return fn ? add(m, name, fn, arg, phase, NULL) : -EINVAL;
}

int goc_shutdown_add_server(goc_shutdown *m, const char *name, goc_server *srv)
{
    return srv ? add(m, name, NULL, NULL, GOC_PHASE_INGRESS, srv) : -EINVAL;
}

/* ---- running ------------------------------------------------------------- */

/* Higher phase first; within a phase, the last registered first. */
static int stop_order(const void *a, const void *b)
{
    const struct comp *x = a, *y = b;
    if (x->phase != y->phase)
        return x->phase > y->phase ? -1 : 1;
    return y->seq - x->seq;
}

struct stop_job {
    goc_shutdown *m;
    int index;
    goc_ctx *ctx;
};

static int stop_server(goc_server *srv, goc_ctx *ctx)
{
    int err = goc_server_shutdown(srv, ctx);
    if (err == -ETIMEDOUT || err == -ECANCELED)
        goc_server_close(srv); /* out of time: interrupt the rest */
    return err;
}

struct stop_call {
    goc_stop_fn fn;
    goc_ctx *ctx;
    void *arg;
};

static int run_stop_fn(void *arg)
{
    struct stop_call *s = arg;
    return s->fn(s->ctx, s->arg);
}

static void stop_main(void *arg)
{
    struct stop_job *j = arg;
    goc_shutdown *m = j->m;
    struct comp *c = &m->comps[j->index];
    /* A stop function that panics fails alone (GOC_EPANIC): the other
     * components still stop and the result is still reported. */
    struct stop_call call = { c->fn, j->ctx, c->arg };
    int err = c->srv ? stop_server(c->srv, j->ctx)
                     : goc__safe_call(run_stop_fn, &call);
    goc__lock_acquire(&m->lock);
    c->err = err;
    if (c->state == GOC_COMPONENT_OVERRAN) {
        c->state = GOC_COMPONENT_LATE;
        m->unfinished--;
    } else if (goc_ctx_err(j->ctx)) {
        /* It returned once its budget was over: late, whether or not
         * the phase's end has marked it overrun yet (both wake at the
         * deadline, in either order). */
        c->state = GOC_COMPONENT_LATE;
        c->duration = goc_now() - c->start;
    } else {
        c->state = err ? GOC_COMPONENT_FAILED : GOC_COMPONENT_STOPPED;
        c->duration = goc_now() - c->start;
    }
    goc__lock_release(&m->lock);
    goc_chan_try_send(m->reports, &j->index); /* room for everyone */
    goc_ctx_release(j->ctx);
    goc__free(j);
    mgr_release(m);
}

/* Start comps [from, to) on goroutines; a failure to start is recorded. */
static void start_phase(goc_shutdown *m, int from, int to, goc_ctx *ctx)
{
    for (int i = from; i < to; i++) {
        struct comp *c = &m->comps[i];
        struct stop_job *j = goc__malloc(sizeof(*j));
        goc__lock_acquire(&m->lock);
        c->state = GOC_COMPONENT_STOPPING;
        c->start = goc_now();
        goc__lock_release(&m->lock);
        int err = j ? 0 : -ENOMEM;
        if (j) {
            *j = (struct stop_job){ m, i, goc_ctx_retain(ctx) };
            atomic_fetch_add(&m->refs, 1);
            struct goc_go_opts go = { .name = "goc-stop" };
            if ((err = goc_go_ex(stop_main, j, &go)) != 0) {
                atomic_fetch_sub(&m->refs, 1);
                goc_ctx_release(ctx);
                goc__free(j);
            }
        }
        if (err) {
            goc__lock_acquire(&m->lock);
            c->state = GOC_COMPONENT_FAILED;
            c->err = err;
            goc__lock_release(&m->lock);
            goc_chan_try_send(m->reports, &i);
        }
    }
}

/* Wait for the phase's reports; mark the missing ones as overrun.
 * True if some did overrun. */
static bool finish_phase(goc_shutdown *m, int from, int to, goc_ctx *ctx)
{
    /* Reports of earlier phases' overrunning components may come in
     * between: they are not this phase's. */
    for (int left = to - from; left > 0;) {
        int index;
        if (goc_chan_recv(m->reports, &index, ctx) != 1)
            break;
        if (index >= from && index < to)
            left--;
    }
    int64_t now = goc_now();
    bool overran = false;
    goc__lock_acquire(&m->lock);
    for (int i = from; i < to; i++) {
        struct comp *c = &m->comps[i];
        if (c->state == GOC_COMPONENT_STOPPING) {
            c->state = GOC_COMPONENT_OVERRAN;
            c->duration = now - c->start;
            m->unfinished++;
        }
        /* Late too: a stop that returned at its deadline, before this
         * look, overran all the same. */
        overran |=
            c->state == GOC_COMPONENT_OVERRAN || c->state == GOC_COMPONENT_LATE;
    }
    goc__lock_release(&m->lock);
    return overran;
}

static void skip_phase(goc_shutdown *m, int from, int to)
{
    goc__lock_acquire(&m->lock);
    for (int i = from; i < to; i++) {
        m->comps[i].state = GOC_COMPONENT_SKIPPED;
        m->comps[i].err = -ETIMEDOUT;
    }
    goc__lock_release(&m->lock);
}

static int run_phases(goc_shutdown *m, goc_ctx *overall)
{
    int n = m->ncomps;
    bool overran = false; /* by an earlier phase of this run */
    for (int from = 0, to; from < n; from = to) {
        for (to = from; to < n && m->comps[to].phase == m->comps[from].phase;)
            to++;
        if (overran && goc_ctx_err(overall) == -ETIMEDOUT) {
            /* An earlier phase overran and spent the budget: these stop
             * functions would start with a context already ended and be
             * reported as overrunning a budget they never had. A budget
             * spent before the run, or a cancel by the caller, skips
             * nothing: every component is told, with the ended context
             * (a server is closed at once, say). */
            skip_phase(m, from, to);
            continue;
        }
        goc_ctx *phase = NULL;
        int err =
            m->opts.phase_timeout
                ? goc_ctx_with_timeout(overall, m->opts.phase_timeout, &phase)
                : goc_ctx_with_cancel(overall, &phase);
        if (err)
            return err;
        bool had_budget = !goc_ctx_err(overall);
        start_phase(m, from, to, phase);
        if (finish_phase(m, from, to, phase) && had_budget)
            overran = true; /* it spent the budget */
        goc_ctx_cancel(phase);
        goc_ctx_release(phase);
    }
    int result = 0;
    goc__lock_acquire(&m->lock);
    for (int i = 0; i < n && !result; i++)
        if (m->comps[i].state == GOC_COMPONENT_FAILED)
            result = m->comps[i].err;
    for (int i = 0; i < n && !result; i++)
        if (m->comps[i].state == GOC_COMPONENT_OVERRAN ||
            m->comps[i].state == GOC_COMPONENT_LATE ||
            m->comps[i].state == GOC_COMPONENT_SKIPPED)
            result = -ETIMEDOUT;
    goc__lock_release(&m->lock);
    /* Cut short by the caller's cancel, not by a deadline: say so. */
    if (result == -ETIMEDOUT && goc_ctx_err(overall) == -ECANCELED)
        result = -ECANCELED;
    return result;
}

/*
 * The caller's context ended: end the shutdown's too. At or past the
 * shared deadline the shutdown's own timer ends it, as -ETIMEDOUT; a
 * forwarded cancel would race it and say -ECANCELED.
 */
static void forward_cancel(void *arg)
{
    int64_t deadline;
    if (!goc_ctx_deadline(arg, &deadline) || goc_now() < deadline)
        goc_ctx_cancel(arg);
    goc_ctx_release(arg);
}

int goc_shutdown_run(goc_shutdown *m, goc_ctx *ctx)
{
    if (!m)
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    bool first = m->state == GOC_SHUTDOWN_RUNNING;
    if (first)
        m->state = GOC_SHUTDOWN_STOPPING;
    goc__lock_release(&m->lock);
    if (!first)
        return goc_shutdown_wait(m, NULL);
    /* Registration is closed; goc_shutdown_report() may still read the
     * list meanwhile, so sort it under the lock. */
    goc__lock_acquire(&m->lock);
    if (m->ncomps)
        qsort(m->comps, (size_t)m->ncomps, sizeof(*m->comps), stop_order);
    goc__lock_release(&m->lock);
    int err = goc_chan_new(sizeof(int), (size_t)m->ncomps + 1, &m->reports);
    int64_t deadline;
    if (!goc_ctx_deadline(ctx, &deadline)) {
        int64_t now = goc_now();
        deadline = m->opts.timeout > INT64_MAX - now ? INT64_MAX
                                                     : now + m->opts.timeout;
    }
    /*
     * The stop functions' contexts may outlive this call (an overrunning
     * one keeps its own), so they do not descend from the caller's, which
     * may live in the caller's frame: they get its deadline, and its
     * cancellation is forwarded while the phases run.
     */
    goc_ctx *overall = NULL;
    goc_ctx_after fwd;
    bool forwarding = false;
    if (!err && (err = goc_ctx_with_deadline(NULL, deadline, &overall)) == 0)
        forwarding = goc_ctx_after_func(ctx, forward_cancel,
                                        goc_ctx_retain(overall), &fwd) == 0;
    int result = err ? err : run_phases(m, overall);
    if (forwarding && goc_ctx_after_stop(&fwd))
        goc_ctx_release(overall); /* forward_cancel's, never to run */
    goc_ctx_cancel(overall);
    goc_ctx_release(overall);
    goc__lock_acquire(&m->lock);
    m->result = result;
    m->state = GOC_SHUTDOWN_DONE;
    goc__lock_release(&m->lock);
    goc_chan_close(m->done);
    return result;
}

int goc_shutdown_wait(goc_shutdown *m, goc_ctx *ctx)
{
    if (!m)
        return -EINVAL;
    /* A shutdown already over gives its result, whatever ctx says: the
     * ctx bounds only the waiting. */
    goc__lock_acquire(&m->lock);
    bool done = m->state == GOC_SHUTDOWN_DONE;
    int result = m->result;
    goc__lock_release(&m->lock);
    if (done)
        return result;
    /* A reference of our own: the owner may free the manager while we
     * wait (its last release then frees it when we are done). */
    atomic_fetch_add_explicit(&m->refs, 1, memory_order_relaxed);
    int r = goc_chan_recv(m->done, NULL, ctx);
    if (r >= 0) {
        goc__lock_acquire(&m->lock);
        r = m->result;
        goc__lock_release(&m->lock);
    }
    mgr_release(m);
    return r;
}

/* ---- signals ------------------------------------------------------------- */

static void force_exit(goc_shutdown *m, int signo)
{
    if (m->opts.on_force)
        m->opts.on_force(signo);
    if (m->opts.second_signal_default) {
        signal(signo, SIG_DFL);
        raise(signo);
    }
    _exit(128 + signo);
}

static void run_on_signal(void *arg)
{
    goc_shutdown *m = arg;
    goc_shutdown_run(m, NULL);
    goc_wg_done(&m->watcher);
    mgr_release(m);
}

static void watch_main(void *arg)
{
    goc_shutdown *m = arg;
    int signo;
    while (goc_chan_recv(m->sigs, &signo, m->watch_ctx) == 1) {
        goc__lock_acquire(&m->lock);
        bool first = !m->signalled;
        m->signalled = true;
        /* A first signal during a shutdown started by a call joins it:
         * it is not the one that started it. */
        bool starts = first && m->state == GOC_SHUTDOWN_RUNNING;
        /* After a shutdown is over there is nothing left to stop: the
         * signal ends the process, as it would with no manager (the
         * first one was swallowed). */
        bool over = m->state == GOC_SHUTDOWN_DONE;
        if (starts)
            m->signo = signo;
        goc__lock_release(&m->lock);
        if (!first || over) {
            force_exit(m, signo);
            continue;
        }
        if (!starts)
            continue;
        /* On another goroutine, so a second signal is still seen; counted
         * with the watcher, so that a free waits for it as well (no stop
         * function runs after the free). */
        atomic_fetch_add(&m->refs, 1);
        goc_wg_add(&m->watcher, 1);
        struct goc_go_opts go = { .name = "goc-shutdown" };
        if (goc_go_ex(run_on_signal, m, &go) != 0) {
            goc_wg_done(&m->watcher);
            mgr_release(m);
            force_exit(m, signo); /* cannot shut down: do as the default */
        }
    }
    goc_wg_done(&m->watcher);
    mgr_release(m);
}

int goc_shutdown_watch_signals(goc_shutdown *m, const int *sigs, int n)
{
    static const int defaults[] = { SIGINT, SIGTERM };
    if (!m || n < 0 || (n > 0 && !sigs))
        return -EINVAL;
    if (n == 0) {
        sigs = defaults;
        n = 2;
    }
    /* Claim the watch under the lock: of two concurrent calls, one gets
     * -EBUSY before either has built anything. */
    goc__lock_acquire(&m->lock);
    bool busy = m->watching;
    m->watching = true;
    goc__lock_release(&m->lock);
    if (busy)
        return -EBUSY;
    goc_chan *ch = NULL;
    goc_ctx *ctx = NULL;
    int err = goc_chan_new(sizeof(int), 4, &ch);
    if (!err && (err = goc_ctx_with_cancel(NULL, &ctx)) == 0 &&
        (err = goc_signal_notify(ch, sigs, n)) == 0) {
        m->sigs = ch;
        m->watch_ctx = ctx;
        atomic_fetch_add(&m->refs, 1);
        goc_wg_add(&m->watcher, 1);
        struct goc_go_opts go = { .name = "goc-signals" };
        if ((err = goc_go_ex(watch_main, m, &go)) == 0)
            return 0;
        goc_wg_done(&m->watcher);
        atomic_fetch_sub(&m->refs, 1);
        goc_signal_stop(ch);
        m->sigs = NULL;
        m->watch_ctx = NULL;
    }
    goc_ctx_release(ctx);
    goc_chan_release(ch);
    goc__lock_acquire(&m->lock);
    m->watching = false;
    goc__lock_release(&m->lock);
    return err;
}

/* ---- queries ------------------------------------------------------------- */

int goc_shutdown_get_state(goc_shutdown *m)
{
    if (!m)
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    int s = m->state;
    goc__lock_release(&m->lock);
    return s;
}

int goc_shutdown_report(goc_shutdown *m,
                        struct goc_component_report *out,
                        int max)
{
    if (!m || max < 0 || (max && !out))
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    for (int i = 0; i < m->ncomps && i < max; i++) {
        struct comp *c = &m->comps[i];
        out[i] = (struct goc_component_report){ .phase = c->phase,
                                                .state = c->state,
                                                .err = c->err,
                                                .duration = c->duration };
        memcpy(out[i].name, c->name, sizeof(out[i].name));
    }
    int n = m->ncomps;
    goc__lock_release(&m->lock);
    return n;
}

int goc_shutdown_unfinished(goc_shutdown *m)
{
    if (!m)
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    int n = m->unfinished;
    goc__lock_release(&m->lock);
    return n;
}

int goc_shutdown_signal(goc_shutdown *m)
{
    if (!m)
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    int s = m->signo;
    goc__lock_release(&m->lock);
    return s;
}

int goc_shutdown_exit_code(goc_shutdown *m)
{
    if (!m)
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    int code = m->state != GOC_SHUTDOWN_DONE ? -EBUSY : m->result ? 1 : 0;
    goc__lock_release(&m->lock);
    return code;
}

/* Unfinished: a stop function that had not returned when its budget ran
 * out (it may have since), or one never started. */
static bool unfinished(int state)
{
    return state == GOC_COMPONENT_OVERRAN || state == GOC_COMPONENT_LATE ||
           state == GOC_COMPONENT_SKIPPED;
}

/* "a, b, c": the unfinished components' names, as many as fit. */
static void unfinished_names(const goc_shutdown *m, char *buf, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->ncomps && len + 1 < n; i++) {
        if (!unfinished(m->comps[i].state))
            continue;
        int w = snprintf(buf + len, n - len, "%s%s", len ? ", " : "",
                         m->comps[i].name);
        len = w < 0 ? n : len + (size_t)w;
    }
}

int goc_shutdown_error(goc_shutdown *m, goc_error **out)
{
    if (!m || !out)
        return -EINVAL;
    *out = NULL;
    goc__lock_acquire(&m->lock);
    if (m->state != GOC_SHUTDOWN_DONE) {
        goc__lock_release(&m->lock);
        return -EBUSY;
    }
    /* The components are fixed once done; their states may still move
     * from overran to late, which does not change what is reported. */
    goc__lock_release(&m->lock);
    int n = m->ncomps;
    goc_error **errs = goc__calloc((size_t)n + 1, sizeof(*errs));
    if (!errs)
        return -ENOMEM;
    size_t k = 0;
    char names[512];
    goc__lock_acquire(&m->lock);
    for (int i = 0; i < n; i++) {
        const struct comp *c = &m->comps[i];
        if (c->state == GOC_COMPONENT_FAILED)
            errs[k++] =
                goc_error_new(c->err, "%s: %s", c->name, goc_strerror(c->err));
    }
    unfinished_names(m, names, sizeof(names));
    int cut = m->result == -ECANCELED ? -ECANCELED : -ETIMEDOUT;
    goc__lock_release(&m->lock);
    if (names[0])
        errs[k++] = goc_error_new(
            cut, "shutdown %s: not finished: %s",
            cut == -ECANCELED ? "cancelled" : "deadline exceeded", names);
    *out = goc_error_join(errs, k);
    for (size_t i = 0; i < k; i++)
        goc_error_release(errs[i]);
    goc__free(errs);
    return 0;
}

static void run_on_ctx(void *arg)
{
    goc_shutdown *m = arg;
    goc_shutdown_run(m, NULL);
    goc_wg_done(&m->ctx_run);
    mgr_release(m);
}

int goc_shutdown_watch_ctx(goc_shutdown *m, goc_ctx *ctx)
{
    if (!m || !ctx)
        return -EINVAL;
    goc__lock_acquire(&m->lock);
    bool busy = m->ctx_watched;
    m->ctx_watched = true;
    goc__lock_release(&m->lock);
    if (busy)
        return -EBUSY;
    atomic_fetch_add(&m->refs, 1); /* run_on_ctx's, until it ends */
    goc_wg_add(&m->ctx_run, 1);
    return goc_ctx_after_func(ctx, run_on_ctx, m, &m->ctx_after);
}

goc_chan *goc_shutdown_done(goc_shutdown *m)
{
    return m ? m->done : NULL;
}

void goc_shutdown_free(goc_shutdown *m)
{
    if (!m)
        return;
    goc__lock_acquire(&m->lock);
    bool watched = m->ctx_watched;
    goc__lock_release(&m->lock);
    if (watched && goc_ctx_after_stop(&m->ctx_after)) {
        goc_wg_done(&m->ctx_run);
        mgr_release(m); /* run_on_ctx will never run: its reference */
    } else if (watched) {
        goc_wg_wait(&m->ctx_run, NULL); /* the shutdown it started */
    }
    if (m->sigs) {
        goc_signal_stop(m->sigs);
        goc_ctx_cancel(m->watch_ctx);
        goc_wg_wait(&m->watcher, NULL);
        goc_chan_release(m->sigs);
        goc_ctx_release(m->watch_ctx);
    }
    mgr_release(m);
}
