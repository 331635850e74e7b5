/* SPDX-License-Identifier: MIT */
/*
 * goc/common.h: export macro, version, error codes and goc_strerror().
 *
 * Every goc call returns 0 (or a non-negative count) on success and a
 * negative error code on failure: -errno where POSIX has the meaning, and
 * the GOC_E* codes below for the rest. goc never reports through errno: a
 * goroutine may resume on another OS thread between a failing call and the
 * read of errno.
 */
#ifndef GOC_COMMON_H
#define GOC_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#if defined(GOC_BUILDING) && defined(__GNUC__)
#define GOC_API __attribute__((visibility("default")))
#else
#define GOC_API
#endif

#define GOC_VERSION_MAJOR 0
#define GOC_VERSION_MINOR 1
#define GOC_VERSION_PATCH 0

/*
 * goc's own error codes live in a reserved negative range far below any
 * errno value, so they never collide with -errno.
 */
#define GOC_ERRNO_BASE (-10000)
#define GOC_EMISUSE    (GOC_ERRNO_BASE - 1) /* API misuse Go would panic on */
#define GOC_EOPEN      (GOC_ERRNO_BASE - 2) /* circuit breaker is open */
#define GOC_EOVERLOAD  (GOC_ERRNO_BASE - 3) /* pool or queue is full */
#define GOC_EPANIC     (GOC_ERRNO_BASE - 4) /* the goroutine panicked */
#define GOC_ECLOSED    (GOC_ERRNO_BASE - 5) /* object was closed */
#define GOC_ERESOLVE   (GOC_ERRNO_BASE - 6) /* host name did not resolve */
/* Pools, futures and channel patterns: GOC_ERRNO_BASE - 30 .. - 39. */
#define GOC_EEMPTY     (GOC_ERRNO_BASE - 30) /* combinator over no inputs */
#define GOC_EAGGREGATE (GOC_ERRNO_BASE - 31) /* every input failed */

/* Resilience patterns (rate limiter, circuit breaker, retry). */
#define GOC_ETOOMANY     (GOC_ERRNO_BASE - 20) /* breaker half-open full */
#define GOC_EWOULDEXCEED (GOC_ERRNO_BASE - 21) /* rate wait past deadline */
#define GOC_EBURST       (GOC_ERRNO_BASE - 22) /* rate n above the burst */
#define GOC_EEXHAUSTED   (GOC_ERRNO_BASE - 23) /* retry attempts used up */
#define GOC_EMAXELAPSED  (GOC_ERRNO_BASE - 24) /* retry time budget spent */
#define GOC_EPERMANENT   (GOC_ERRNO_BASE - 25) /* retry permanent failure */
#define GOC_ERETRYAFTER  (GOC_ERRNO_BASE - 26) /* retry after a delay */

#ifdef __cplusplus
extern "C" {
#endif

/** A cancellation scope (goc/context.h); NULL means "never cancelled". */
typedef struct goc_ctx goc_ctx;
/** A channel (goc/chan.h). */
typedef struct goc_chan goc_chan;

/**
 * goc_strerror - describe an error code returned by any goc call.
 * @err: a negative goc return value (a -errno value or a GOC_E* code).
 *
 * Return: a static string; never NULL. Unknown codes give "unknown error".
 * Thread-safe, never blocks.
 */
GOC_API const char *goc_strerror(int err);

/**
 * goc_version - the library's version as "major.minor.patch".
 *
 * Return: a static string.
 */
GOC_API const char *goc_version(void);

#ifdef __cplusplus
}
#endif

#endif /* GOC_COMMON_H */
