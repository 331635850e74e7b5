/* SPDX-License-Identifier: MIT */
/* What the other sync primitives ask of a mutex. */
#ifndef GOC_SYNC_MUTEX_INT_H
#define GOC_SYNC_MUTEX_INT_H

#include "goc/sync.h"

#include <stdbool.h>

/* Whether @mu is locked (by anyone): a caller that holds it sees true. */
bool goc__mutex_locked(goc_mutex *mu);

#endif /* GOC_SYNC_MUTEX_INT_H */
