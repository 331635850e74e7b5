/* SPDX-License-Identifier: MIT */
/* What the other sync primitives ask of a mutex. */
#ifndef GOC_SYNC_MUTEX_INT_H
#define GOC_SYNC_MUTEX_INT_H

#include "goc/sync.h"

#include <stdbool.h>

/* Whether @mu is locked (by anyone): a caller that holds it sees true. */
bool goc__mutex_locked(goc_mutex *mu);

/*
 * goc_mutex_unlock() that returns GOC_EMISUSE without reporting it (which
 * GOC_ABORT_ON_MISUSE=1 turns into a panic): for a caller holding locks
 * of its own, which reports it once it has let go of them.
 */
int goc__mutex_unlock_quiet(goc_mutex *mu);

#endif /* GOC_SYNC_MUTEX_INT_H */
