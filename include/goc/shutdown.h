/* SPDX-License-Identifier: MIT */
/*
 * goc/shutdown.h: the graceful shutdown manager.
 *
 * Components (servers, worker pools, databases...) register a stop
 * function and a phase. A shutdown, started by a signal (SIGINT, SIGTERM)
 * or a call, runs the phases from the highest to the lowest; within a
 * phase the components stop concurrently, and the next phase starts when
 * all have finished or the phase's budget has run out. It runs once: every
 * caller, concurrent or later, gets the same result. A second signal
 * during a shutdown ends the process at once.
 */
#ifndef GOC_SHUTDOWN_H
#define GOC_SHUTDOWN_H

#include "common.h"
#include "errors.h"
#include "server.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct goc_shutdown goc_shutdown;

/* Conventional phases: ingress stops first, resources last. */
#define GOC_PHASE_INGRESS  100 /* servers, listeners */
#define GOC_PHASE_WORKERS  50  /* pools, background tasks */
#define GOC_PHASE_RESOURCE 0   /* databases, files, flushes */

/**
 * goc_stop_fn - stop one component before @ctx ends.
 * Return: 0, or a negative error recorded for the component. A stop
 * function that panics is recorded as failed with GOC_EPANIC, and the
 * panic is logged; the other components still stop.
 */
typedef int (*goc_stop_fn)(goc_ctx *ctx, void *arg);

/** goc_shutdown_opts - settings (zero: defaults). */
struct goc_shutdown_opts {
    /* Overall budget of a shutdown started by a signal or with a context
     * without a deadline. 0: 30 s. */
    int64_t timeout;
    /* Budget of each phase, within the overall one. 0: none, and then a
     * phase that overruns spends the budget of the phases after it:
     * their components are skipped (GOC_COMPONENT_SKIPPED). A budget
     * already spent when the run starts, or a cancel by the caller, skips
     * nothing: every stop function is called, with the ended context. */
    int64_t phase_timeout;
    /* Runs before a second signal ends the process (best effort: keep it
     * short and async-signal-safe in spirit). */
    void (*on_force)(int signo);
    /* true: a second signal restores the default disposition and
     * re-raises, instead of _exit(128 + signo). */
    bool second_signal_default;
};

enum goc_shutdown_state {
    GOC_SHUTDOWN_RUNNING,  /* not started */
    GOC_SHUTDOWN_STOPPING, /* phases running */
    GOC_SHUTDOWN_DONE,     /* result stored */
};

enum goc_component_state {
    GOC_COMPONENT_PENDING,  /* its phase has not started */
    GOC_COMPONENT_STOPPING, /* stop function running */
    GOC_COMPONENT_STOPPED,  /* returned 0 within budget */
    GOC_COMPONENT_FAILED,   /* returned an error within budget */
    GOC_COMPONENT_OVERRAN,  /* still running when its budget ran out */
    GOC_COMPONENT_LATE,     /* overran, then returned (err: its result) */
    GOC_COMPONENT_SKIPPED,  /* not stopped: its phase came after the overall
                               budget was spent (by an earlier phase) */
};

/** goc_component_report - how one component's stop went. */
struct goc_component_report {
    char name[32];
    int phase;
    int state;        /* enum goc_component_state */
    int err;          /* the stop function's result */
    int64_t duration; /* ns, until return or until the budget ran out */
};

/**
 * goc_shutdown_new - a manager with no components.
 * Return: 0, -EINVAL (NULL @out, negative timeouts), -ENOMEM.
 */
GOC_API int goc_shutdown_new(const struct goc_shutdown_opts *opts,
                             goc_shutdown **out);

/**
 * goc_shutdown_add - register a component.
 * @name:  shown in reports (copied, 31 bytes kept).
 * @fn:    its stop function, run on a goroutine of its own.
 * @phase: higher phases stop first; within a phase, the components
 *         registered last stop first (the reverse of start-up) and all
 *         run concurrently.
 *
 * Return: 0; -EINVAL; -ENOMEM; GOC_ECLOSED once a shutdown has started.
 */
GOC_API int goc_shutdown_add(
    goc_shutdown *m, const char *name, goc_stop_fn fn, void *arg, int phase);

/**
 * goc_shutdown_add_server - register @srv in GOC_PHASE_INGRESS: its stop
 * is goc_server_shutdown(), and goc_server_close() if that overruns.
 *
 * The manager holds a reference to @srv until it is freed itself, so the
 * owner may call goc_server_free() as soon as goc_shutdown_run() returns,
 * even while an overrunning stop is still closing the server.
 *
 * Return: as goc_shutdown_add().
 */
GOC_API int goc_shutdown_add_server(goc_shutdown *m,
                                    const char *name,
                                    goc_server *srv);

/**
 * goc_shutdown_watch_signals - start a shutdown on the first of @sigs
 * (SIGINT and SIGTERM if @n is 0); a second one ends the process.
 *
 * Return: 0; -EINVAL; -EBUSY if already watching; -ENOMEM.
 */
GOC_API int goc_shutdown_watch_signals(goc_shutdown *m, const int *sigs, int n);

/**
 * goc_shutdown_watch_ctx - start a shutdown when @ctx ends (a parent
 * service's cancel, say), as a first signal would: with the configured
 * timeout as its budget, on a goroutine of its own. A @ctx that can never
 * end never starts one. goc_shutdown_free() stops the watch; if @ctx has
 * ended already, it waits for the shutdown that started (so no stop
 * function runs after the free).
 *
 * Return: 0; -EINVAL for a NULL argument; -EBUSY if a context is watched
 * already.
 */
GOC_API int goc_shutdown_watch_ctx(goc_shutdown *m, goc_ctx *ctx);

/**
 * goc_shutdown_done - a channel closed once a shutdown has finished and
 * its result is stored, for goc_select() (Go's Done()). Borrowed: valid
 * while @m lives; NULL for NULL.
 */
GOC_API goc_chan *goc_shutdown_done(goc_shutdown *m);

/**
 * goc_shutdown_run - run the shutdown, or wait for the one running.
 * @ctx: the overall deadline (NULL, or no deadline: the configured
 *       timeout). Only the first caller's context sets the budget; later
 *       callers wait for the stored result without a limit.
 *
 * Return: 0 if every component stopped in time; else the first error in
 * stop order, or -ETIMEDOUT if none failed but some overran or were
 * skipped (-ECANCELED if @ctx was cancelled rather than timed out). The
 * details are in goc_shutdown_report().
 */
GOC_API int goc_shutdown_run(goc_shutdown *m, goc_ctx *ctx);

/**
 * goc_shutdown_wait - wait for a shutdown (started by anyone) to finish.
 * The wait holds a reference of its own: goc_shutdown_free() may come
 * meanwhile (the wait then ends only with a shutdown already started, or
 * with @ctx).
 * Return: its result as goc_shutdown_run(); -ECANCELED/-ETIMEDOUT if
 * @ctx ended first.
 */
GOC_API int goc_shutdown_wait(goc_shutdown *m, goc_ctx *ctx);

/** goc_shutdown_get_state - an enum goc_shutdown_state. */
GOC_API int goc_shutdown_get_state(goc_shutdown *m);

/**
 * goc_shutdown_report - copy up to @max component reports, in stop order.
 * Return: the number of components.
 */
GOC_API int goc_shutdown_report(goc_shutdown *m,
                                struct goc_component_report *out,
                                int max);

/** goc_shutdown_unfinished - components whose stop function still runs. */
GOC_API int goc_shutdown_unfinished(goc_shutdown *m);

/**
 * goc_shutdown_error - the finished shutdown's outcome as one error
 * (goc/errors.h), errors.Join-like: each failed component's error,
 * tagged with its name, then one -ETIMEDOUT (-ECANCELED if the caller
 * cancelled) naming every component that had not finished in its budget
 * or was skipped. goc_error_is() finds each code in it.
 * @out: the error (release it), or NULL for a clean shutdown.
 *
 * Return: 0; -EBUSY before the shutdown has finished; -EINVAL; -ENOMEM.
 */
GOC_API int goc_shutdown_error(goc_shutdown *m, goc_error **out);

/** goc_shutdown_signal - the signal that started the shutdown, or 0. */
GOC_API int goc_shutdown_signal(goc_shutdown *m);

/**
 * goc_shutdown_exit_code - a process exit status for the outcome: 0 for
 * a clean shutdown, 1 for an error or an overrun (a forced exit by a
 * second signal never gets here: it exits with 128 + the signal).
 * Return: the status, or -EBUSY before the shutdown has finished.
 */
GOC_API int goc_shutdown_exit_code(goc_shutdown *m);

/**
 * goc_shutdown_free - stop watching signals and release the manager. A
 * shutdown a watched signal started is waited for, as one a watched
 * context started is (no stop function runs after the free). Stop
 * functions still running keep their own reference and finish first.
 */
GOC_API void goc_shutdown_free(goc_shutdown *m);

#ifdef __cplusplus
}
#endif

#endif /* GOC_SHUTDOWN_H */
