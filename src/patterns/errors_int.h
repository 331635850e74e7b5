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

#endif /* GOC_PATTERNS_ERRORS_INT_H */
