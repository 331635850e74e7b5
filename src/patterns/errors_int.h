/* SPDX-License-Identifier: MIT */
/* Internal helpers of the rich errors, shared by the pattern sources. */
#ifndef GOC_PATTERNS_ERRORS_INT_H
#define GOC_PATTERNS_ERRORS_INT_H

#include "goc/errors.h"

/* goc_error_join() with @suffix (if not NULL) as a last message line. */
goc_error *goc__error_join_suffix(goc_error *const *errs,
                                  size_t n,
                                  const char *suffix);

#endif /* GOC_PATTERNS_ERRORS_INT_H */
