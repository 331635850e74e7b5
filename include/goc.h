/* SPDX-License-Identifier: MIT */
/*
 * goc.h: the one header a goc user includes.
 *
 * goc gives C programs Go's concurrency model: goroutines on an M:N
 * work-stealing scheduler, timers, synchronisation, and the high-concurrency
 * patterns built on them.
 */
#ifndef GOC_H
#define GOC_H

#include "goc/common.h"
#include "goc/runtime.h"
#include "goc/time.h"
#include "goc/sync.h"
#include "goc/context.h"
#include "goc/chan.h"
#include "goc/panic.h"
#include "goc/future.h"
#include "goc/group.h"
#include "goc/pool.h"
#include "goc/singleflight.h"
#include "goc/pattern.h"
#include "goc/net.h"
#include "goc/server.h"
#include "goc/signal.h"
#include "goc/shutdown.h"
#include "goc/clock.h"
#include "goc/ratelimit.h"
#include "goc/breaker.h"
#include "goc/errors.h"
#include "goc/retry.h"
#include "goc/objpool.h"
#include "goc/stats.h"
#include "goc/monitor.h"
#include "goc/prof.h"
#include "goc/metrics.h"

#endif /* GOC_H */
