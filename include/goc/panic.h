/* SPDX-License-Identifier: MIT */
/*
 * goc/panic.h: panics, deferred cleanups, recovery, goroutine dumps.
 *
 * goc_panic() ends the current piece of work: it unwinds the goroutine (or
 * plain thread) to the innermost goc_try(), running the cleanups
 * registered with goc_defer() on the way, newest first; goc_try() then
 * returns GOC_EPANIC with the panic's message and backtrace. A panic with
 * no goc_try() to stop it runs the goroutine's cleanups, prints
 * "panic: ..." and a dump of every goroutine, and exits with status 2, as
 * Go does.
 *
 * Unwinding is a longjmp: frames between the panic and the goc_try() are
 * abandoned, so code that may panic must not hold locks or own resources
 * that no goc_defer() cleanup releases.
 */
#ifndef GOC_PANIC_H
#define GOC_PANIC_H

#include "common.h"
#include "errors.h"

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A recovered panic (opaque): message, code, goroutine, backtrace. */
typedef struct goc_panic_info goc_panic_info;

/**
 * goc_panic - abort the current work with a message.
 * @code: an error code carried by the panic (0 for none).
 * @fmt:  printf-style message.
 *
 * Never returns. Callable from goroutines and plain threads. Out of
 * memory, the info comes from one of 8 spares held until it is freed
 * (message cut to 63 bytes); with all 8 held as well, the process ends
 * with "fatal error: out of memory while panicking" and the message.
 */
GOC_API void goc_panic(int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

/**
 * goc_defer - register @fn(@arg) to run when the innermost goc_try()
 * scope ends, whether normally or by a panic (newest first), or, outside
 * any goc_try(), when the goroutine ends.
 *
 * Return: 0; -EINVAL for a NULL @fn; -ENOMEM (then @fn is not
 * registered); -EPERM on a plain thread outside any goc_try().
 */
GOC_API int goc_defer(void (*fn)(void *arg), void *arg);

/**
 * goc_try - run @fn(@arg), turning a panic into an error (the seed's
 * SafeExecute).
 * @out: receives the panic on GOC_EPANIC (free it with
 *       goc_panic_info_free()); NULL to discard it.
 *
 * Cleanups registered during @fn run before it returns, in both cases.
 * Hardware faults are not panics: they are reported and end the process.
 *
 * Return: @fn's result, or GOC_EPANIC if it panicked; -EINVAL for NULL
 * @fn.
 */
GOC_API int goc_try(int (*fn)(void *arg), void *arg, goc_panic_info **out);

/** goc_panic_info_code - the code given to goc_panic(). */
GOC_API int goc_panic_info_code(const goc_panic_info *p);

/** goc_panic_info_message - the message (valid until the info is freed). */
GOC_API const char *goc_panic_info_message(const goc_panic_info *p);

/** goc_panic_info_goroutine - the panicking goroutine's id (0: a thread). */
GOC_API int64_t goc_panic_info_goroutine(const goc_panic_info *p);

/** goc_panic_info_thread - the OS thread id (gettid) that panicked. */
GOC_API unsigned long goc_panic_info_thread(const goc_panic_info *p);

/**
 * goc_panic_info_format - "panic: message" and the symbolised backtrace.
 * Return: the length the full text needs (as snprintf).
 */
GOC_API int goc_panic_info_format(const goc_panic_info *p, char *buf, size_t n);

/** goc_panic_info_free - release a panic info; NULL is ignored. */
GOC_API void goc_panic_info_free(goc_panic_info *p);

/**
 * goc_panic_error - a panic as an error value (what a runner hands back
 * for a task that panicked, as conc's pools do): code GOC_EPANIC, message
 * "panic: <message>", and @p, which the error takes over and frees with
 * itself. NULL @p gives NULL.
 *
 * Return: the error (one reference), or the static out-of-memory error,
 * @p freed then.
 */
GOC_API goc_error *goc_panic_error(goc_panic_info *p);

/**
 * goc_error_panic - the panic carried by @e or by the first error in its
 * tree (causes and children, depth-first, in order) that carries one;
 * NULL if none does. Valid while @e lives.
 */
GOC_API const goc_panic_info *goc_error_panic(const goc_error *e);

/* ---- the recovery handler (the seed's RecoveryHandler) ------------------ */

typedef struct goc_recovery goc_recovery;

/** goc_panic_record - a recorded panic. */
struct goc_panic_record {
    int64_t when;         /* goc_now() */
    int64_t goroutine;    /* 0 for a plain thread */
    unsigned long thread; /* the OS thread id */
    int code;
    bool from_callback; /* a panic of the handler's own callback */
    char message[160];
    char backtrace[512]; /* symbolised frames, one per line */
};

/**
 * goc_recovery_fn - told of each recorded panic, on the panicking
 * goroutine, with no lock held, after the record is stored.
 */
typedef void (*goc_recovery_fn)(const struct goc_panic_record *r, void *arg);

/**
 * goc_recovery_new - a handler keeping the last @capacity panics.
 * Return: 0, -EINVAL (@capacity < 1, NULL @out), -ENOMEM.
 */
GOC_API int goc_recovery_new(int capacity,
                             goc_recovery_fn fn,
                             void *arg,
                             goc_recovery **out);

/* What goc_recovery_run(), or a runner the handler is attached to, does
 * after recording a panic. */
enum goc_recover_policy {
    GOC_RECOVER_CONTINUE,    /* return GOC_EPANIC: the caller goes on; a
                                runner settles the task as GOC_EPANIC and its
                                worker takes the next task (the default) */
    GOC_RECOVER_RETHROW,     /* panic again with the same info: the whole
                                message, the code and the original backtrace;
                                in a runner's worker this ends the process,
                                as an unrecovered panic does in Go */
    GOC_RECOVER_WORKER_EXIT, /* as CONTINUE, but a runner's worker then
                                exits and a fresh one takes its place (as
                                ants does); goc_recovery_run() returns */
};

/**
 * goc_recovery_set_policy - GOC_RECOVER_CONTINUE (default), _RETHROW or
 * _WORKER_EXIT.
 * Return: 0; -EINVAL for a NULL @h or another @policy (nothing changes).
 */
GOC_API int goc_recovery_set_policy(goc_recovery *h, int policy);

/**
 * goc_recovery_set_default - the handler every runner without one of its
 * own reports its tasks' panics to: goroutine and worker pools, groups,
 * goc_future_async() and continuations, singleflight, run-with-timeout
 * and the shutdown manager's stop functions. NULL detaches it; with
 * none, a panic is written to the log hook.
 *
 * The runtime holds a reference: goc_recovery_free() may come first, and
 * the memory goes when the last runner lets go. Return: 0.
 */
GOC_API int goc_recovery_set_default(goc_recovery *h);

/**
 * goc_recovery_run - goc_try(@fn, @arg) recording a panic in @h, then
 * following its policy. An @fn that returns GOC_EPANIC without panicking
 * is neither recorded nor thrown again: its code is returned.
 * Return: as goc_try() (with GOC_RECOVER_RETHROW, a panic does not
 * return here).
 */
GOC_API int goc_recovery_run(goc_recovery *h, int (*fn)(void *), void *arg);

/** goc_recovery_record - record @p (from goc_try()) in @h. */
GOC_API void goc_recovery_record(goc_recovery *h, const goc_panic_info *p);

/**
 * goc_recovery_records - copy up to @max records, oldest first.
 * Return: how many were copied.
 */
GOC_API int goc_recovery_records(goc_recovery *h,
                                 struct goc_panic_record *out,
                                 int max);

/** goc_recovery_count - panics recorded in all; overwritten ones too. */
GOC_API int64_t goc_recovery_count(goc_recovery *h, int64_t *overwritten);

/**
 * goc_recovery_set_async - call the callback on a goroutine of its own,
 * fed by a queue of @queue records, instead of on the panicking
 * goroutine: a slow callback (an alert sent over the network) then
 * delays no worker. A record that finds the queue full is still kept in
 * the ring; only its callback is lost, and counted
 * (goc_recovery_dropped()). Once the last reference is gone, the queued
 * records are still called back, then the handler is freed. A panic that
 * ends the process (GOC_RECOVER_RETHROW) waits up to a second for room in
 * the queue and for its callback to be made, so that its alert is not
 * lost with the process.
 *
 * Return: 0; -EINVAL for a NULL @h, a handler without a callback, or
 * @queue < 1; -EBUSY if already async; -ENOMEM (nothing changes).
 */
GOC_API int goc_recovery_set_async(goc_recovery *h, int queue);

/** goc_recovery_dropped - callbacks an async queue had no room for. */
GOC_API int64_t goc_recovery_dropped(goc_recovery *h);

/**
 * goc_recovery_callback_panics - callbacks that panicked (caught). Each
 * such panic is recorded too, with from_callback set, and called back for
 * by nobody.
 */
GOC_API int64_t goc_recovery_callback_panics(goc_recovery *h);

/**
 * goc_recovery_free - drop the creator's reference. Runners it is
 * attached to keep it (records and callbacks go on) until they are freed
 * or attached elsewhere.
 */
GOC_API void goc_recovery_free(goc_recovery *h);

/* ---- dumps and checks ---------------------------------------------------- */

/**
 * goc_dump - write every goroutine to @fd: id, name, state, what it waits
 * for and since when, where it was created, and its backtrace.
 *
 * Return: the number of goroutines written, or -errno of write(2).
 */
GOC_API int goc_dump(int fd);

/**
 * goc_dump_on_sigquit - when @on, SIGQUIT (Ctrl-\\) writes goc_dump() to
 * standard error and ends the process with status 2, as in Go; when off,
 * the disposition found before is restored.
 *
 * Return: 0 or -errno of sigaction().
 */
GOC_API int goc_dump_on_sigquit(bool on);

/**
 * goc_leakcheck - wait until at most @allowed goroutines exist besides
 * the caller (retrying with backoff until @timeout ns have passed), like
 * goleak. On failure the leftover goroutines are dumped to standard error.
 *
 * Return: 0; -ETIMEDOUT with the dump written; -EINVAL for a negative
 * @allowed or @timeout (nothing is checked).
 */
GOC_API int goc_leakcheck(int64_t allowed, int64_t timeout);

/** struct goc_leak - a goroutine goc_leak_find() found. */
struct goc_leak {
    int64_t id;
    int64_t created_by; /* the goroutine that made it; 0: a plain thread */
    char name[32];      /* given with goc_go_ex(), else "" */
    char entry[64];     /* its entry function, symbolised */
    char state[32];     /* "running", "runnable", "chan receive", ... */
};

/**
 * struct goc_leak_opts - what goc_leak_find() leaves out (goleak's
 * options). All may be 0 / NULL.
 * @ignore_functions: NULL-terminated function names; a goroutine whose
 *                  entry function, or any function on its stack, is one
 *                  of them is left out (IgnoreAnyFunction). The stack of
 *                  a goroutine running on another thread (in a blocking
 *                  section, say) cannot be read: only its entry counts.
 * @ignore_ids:     goroutines to leave out, as goc_leak_snapshot() gives
 *                  them (IgnoreCurrent); @nignore_ids of them.
 * @timeout:        retry, with backoff up to 100 ms, while goroutines
 *                  are found, for at most this long (0: look once).
 */
struct goc_leak_opts {
    const char *const *ignore_functions;
    const int64_t *ignore_ids;
    size_t nignore_ids;
    int64_t timeout;
};

/**
 * goc_leak_find - the goroutines alive besides the caller that @opts
 * does not leave out: the first @max into @out, in no set order.
 * @opts: NULL for none.
 *
 * Return: how many there are (0: none; possibly more than @max);
 * -EINVAL for a negative @timeout or @max, or a NULL @out with @max > 0.
 */
GOC_API int goc_leak_find(const struct goc_leak_opts *opts,
                          struct goc_leak *out,
                          int max);

/**
 * goc_leak_snapshot - the ids of the goroutines alive now besides the
 * caller, for goc_leak_opts.ignore_ids: those that exist before a test
 * are not its leaks. The first @max into @ids.
 *
 * Return: how many there are (possibly more than @max); -EINVAL.
 */
GOC_API int goc_leak_snapshot(int64_t *ids, int max);

#ifdef __cplusplus
}
#endif

#endif /* GOC_PANIC_H */
