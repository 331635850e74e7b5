/* SPDX-License-Identifier: MIT */
/* Internal helpers of the rich errors, shared by the pattern sources. */
#ifndef GOC_PATTERNS_ERRORS_INT_H
#define GOC_PATTERNS_ERRORS_INT_H

#include "goc/errors.h"

/* goc_error_join() with @suffix (if not NULL) as a last message line. */
goc_error *goc__error_join_suffix(goc_error *const *errs,
                                  size_t n,
                                  const char *suffix);

/*
 * An error with @code, @payload (freed by @dtor) and the message
 * "<msg>: <cause message>" wrapping @cause (borrowed; may be NULL, then
 * the message is @msg alone). If allocation fails, @dtor runs at once
 * and the static -ENOMEM error is returned.
 */
goc_error *goc__error_wrap_payload(int code,
                                   goc_error *cause,
                                   void *payload,
                                   void (*dtor)(void *),
                                   const char *msg);

/*
 * A static error with code GOC_EPERMANENT and no cause, for a permanent
 * marker that could not be allocated: the stop it asks for still holds.
 */
goc_error *goc__error_permanent_oom(void);
/* Whether e is the static error goc_error_new() returns when it runs out
 * of memory (the error meant is lost). */
bool goc__error_is_oom(const goc_error *e);

#endif /* GOC_PATTERNS_ERRORS_INT_H */
