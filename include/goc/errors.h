/* SPDX-License-Identifier: MIT */
/*
 * goc/errors.h: rich errors (Go's error values) and a concurrent error
 * aggregator.
 *
 * A goc_error is immutable and reference-counted: a code (a goc return
 * value such as -EIO or GOC_EOPEN), a message, an optional cause (what
 * fmt.Errorf("...: %w") wraps), optional children (errors.Join) and an
 * optional payload. goc_error_is() walks causes and children depth-first,
 * in order, like errors.Is. A NULL goc_error * means "no error" and is
 * accepted everywhere.
 */
#ifndef GOC_ERRORS_H
#define GOC_ERRORS_H

#include "common.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

/** An immutable, reference-counted error value. */
typedef struct goc_error goc_error;

/**
 * goc_error_new - a new error with @code and a printf-style message.
 * @code: a non-zero goc code; 0 is replaced by GOC_EMISUSE.
 * @fmt:  message format; NULL gives goc_strerror(@code) (the C library's
 *        text for a -errno code goc_strerror does not name).
 *
 * Return: the error (one reference, the caller's). If memory runs out the
 * result is a shared static error with code -ENOMEM: never NULL.
 */
GOC_API goc_error *goc_error_new(int code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * goc_error_new_payload - goc_error_new() carrying @payload, which is
 * passed to @dtor (if not NULL) when the last reference goes. If the
 * error cannot be allocated, @dtor runs at once and the -ENOMEM error is
 * returned.
 */
GOC_API goc_error *goc_error_new_payload(
    int code, void *payload, void (*dtor)(void *), const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/**
 * goc_error_wrap - wrap @cause with context, like fmt.Errorf("msg: %w").
 * @cause: borrowed (a reference is taken); NULL gives NULL, as wrapping no
 *         error is no error.
 * @fmt:   the context; the message becomes "<context>: <cause message>".
 *
 * The result has @cause's code and unwraps to it.
 * Return: the new error, or NULL when @cause is NULL.
 */
GOC_API goc_error *goc_error_wrap(goc_error *cause, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/**
 * goc_error_with_code - like goc_error_wrap() but with its own @code
 * (e.g. a retry cause GOC_EEXHAUSTED over the last operation error).
 * @cause may be NULL: then it is goc_error_new().
 */
GOC_API goc_error *goc_error_with_code(int code,
                                       goc_error *cause,
                                       const char *fmt,
                                       ...)
    __attribute__((format(printf, 3, 4)));

/**
 * goc_error_join - errors.Join: NULL entries are skipped; if none is left
 * the result is NULL (success). Otherwise a join whose children are the
 * non-NULL inputs in order (each retained), whose message is theirs
 * separated by "\n", and whose code is the first child's.
 */
GOC_API goc_error *goc_error_join(goc_error *const *errs, size_t n);

/** goc_error_retain - take another reference; returns @e (NULL ok). */
GOC_API goc_error *goc_error_retain(goc_error *e);

/** goc_error_release - drop a reference (NULL ok); frees at zero. */
GOC_API void goc_error_release(goc_error *e);

/** goc_error_code - the error's code; 0 for NULL. */
GOC_API int goc_error_code(const goc_error *e);

/** goc_error_message - the full message (Error()); "" for NULL. */
GOC_API const char *goc_error_message(const goc_error *e);

/** goc_error_cause - the wrapped error (Unwrap()), or NULL. */
GOC_API goc_error *goc_error_cause(const goc_error *e);

/** goc_error_nchildren - number of joined children (0 if not a join). */
GOC_API size_t goc_error_nchildren(const goc_error *e);

/** goc_error_child - the @i-th joined child, or NULL. */
GOC_API goc_error *goc_error_child(const goc_error *e, size_t i);

/** goc_error_payload - the payload given at creation, or NULL. */
GOC_API void *goc_error_payload(const goc_error *e);

/**
 * goc_error_code_is - whether @code matches @target: equal, or a code
 * that Go reports as a kind of the target (GOC_EWOULDEXCEED is a
 * deadline failure, so it matches -ETIMEDOUT: golang/go#54541).
 */
GOC_API bool goc_error_code_is(int code, int target);

/**
 * goc_error_is - errors.Is by code: true if @e or anything in its tree
 * (causes and children, depth-first) has a code matching @code under
 * goc_error_code_is().
 */
GOC_API bool goc_error_is(const goc_error *e, int code);

/**
 * goc_error_is_err - errors.Is by identity: true if @target (not NULL)
 * is @e or anywhere in its tree.
 */
GOC_API bool goc_error_is_err(const goc_error *e, const goc_error *target);

/**
 * goc_error_format - write @e as text into @buf (always NUL-terminated
 * when @len > 0).
 * @verbose: false gives the message; true gives a tree, one error per
 *           line, with codes: "<message> [code N: <strerror>]" and the
 *           cause and children indented below.
 *
 * Return: the length the full text needs (snprintf's convention).
 */
GOC_API size_t goc_error_format(const goc_error *e,
                                bool verbose,
                                char *buf,
                                size_t len);

/**
 * goc_error_agg - collects errors from many goroutines and threads, in
 * the order of the add calls (what the seed's ErrorAggregator meant).
 */
typedef struct goc_error_agg goc_error_agg;

/**
 * struct goc_error_agg_opts - aggregator options (zero-filled: no cap, no
 * deduplication).
 * @max_errors: keep the first max_errors; count the rest, and end the
 *              joined message with "... and K more" (0: no cap).
 * @dedupe:     drop an error whose code and message equal a kept one's
 *              (counted as deduplicated).
 */
struct goc_error_agg_opts {
    size_t max_errors;
    bool dedupe;
};

/** goc_error_agg_new - create an aggregator (@opts may be NULL). */
GOC_API int goc_error_agg_new(const struct goc_error_agg_opts *opts,
                              goc_error_agg **out);

/** goc_error_agg_free - free it and its references (NULL ok). */
GOC_API void goc_error_agg_free(goc_error_agg *a);

/**
 * goc_error_agg_add - add @err (borrowed; a reference is taken). NULL is
 * ignored. Thread-safe; never blocks for long.
 *
 * Return: 0 (also when capped or deduplicated: the drop is counted);
 * -ENOMEM if it could not be stored (counted as dropped as well).
 */
GOC_API int goc_error_agg_add(goc_error_agg *a, goc_error *err);

/**
 * goc_error_agg_add_code - add goc_error_new(@code, "%s", @msg).
 *
 * Return: as goc_error_agg_add(); -ENOMEM also if the error could not be
 * made (counted as dropped).
 */
GOC_API int goc_error_agg_add_code(goc_error_agg *a, int code, const char *msg);

/**
 * goc_error_agg_err - a snapshot join of the kept errors (a new
 * reference), or NULL if none was added. If every error added was dropped
 * for want of memory, an -ENOMEM error that counts them. The aggregator
 * stays usable.
 * Named err, not error: it returns an error value, not a string (the
 * seed's Error() method that returned error broke Go's convention).
 */
GOC_API goc_error *goc_error_agg_err(goc_error_agg *a);

/** goc_error_agg_len - errors kept now (0 for a NULL @a). */
GOC_API size_t goc_error_agg_len(goc_error_agg *a);

/** goc_error_agg_dropped - errors not kept (over the cap or no memory;
 * 0 for a NULL @a). */
GOC_API size_t goc_error_agg_dropped(goc_error_agg *a);

/** goc_error_agg_deduplicated - errors dropped as duplicates (0 for a
 * NULL @a). */
GOC_API size_t goc_error_agg_deduplicated(goc_error_agg *a);

/** goc_error_agg_reset - drop every kept error and zero the counts (a
 * NULL @a: nothing). */
GOC_API void goc_error_agg_reset(goc_error_agg *a);

#ifdef __cplusplus
}
#endif

#endif /* GOC_ERRORS_H */
