/* SPDX-License-Identifier: MIT */
/* goc_strerror: one table names every code goc returns. */
#include "goc/common.h"

#include <errno.h>
#include <string.h>

#define GOC_ERROR_MAP(X)                                            \
    X(-EINVAL, "invalid argument")                                  \
    X(-ENOMEM, "out of memory")                                     \
    X(-EAGAIN, "resource temporarily unavailable")                  \
    X(-EBUSY, "already running")                                    \
    X(-EDEADLK, "would deadlock")                                   \
    X(-EPERM, "operation not permitted")                            \
    X(-EOVERFLOW, "value too large")                                \
    X(-ECANCELED, "operation canceled")                             \
    X(-ETIMEDOUT, "deadline exceeded")                              \
    X(-EPIPE, "channel closed")                                     \
    X(GOC_EMISUSE, "API misuse")                                    \
    X(GOC_EOPEN, "circuit breaker is open")                         \
    X(GOC_EOVERLOAD, "overloaded")                                  \
    X(GOC_EPANIC, "goroutine panicked")                             \
    X(GOC_ECLOSED, "closed")                                        \
    X(GOC_ERESOLVE, "host name did not resolve")                    \
    X(GOC_EEMPTY, "no inputs")                                      \
    X(GOC_EAGGREGATE, "every input failed")                         \
    X(GOC_ETOOMANY, "too many requests")                            \
    X(GOC_EWOULDEXCEED, "rate: wait would exceed context deadline") \
    X(GOC_EBURST, "rate: n exceeds the limiter's burst")            \
    X(GOC_EEXHAUSTED, "retry: attempts exhausted")                  \
    X(GOC_EMAXELAPSED, "retry: max elapsed time reached")           \
    X(GOC_EPERMANENT, "permanent error")                            \
    X(GOC_ERETRYAFTER, "retry after a delay")

const char *goc_strerror(int err)
{
#define GOC_ERROR_CASE(code, text) \
    case code:                     \
        return text;
    switch (err) {
    case 0:
        return "success";
        GOC_ERROR_MAP(GOC_ERROR_CASE)
    default:
        /* Any other -errno, e.g. from a socket: the C library's text. */
        if (err < 0 && err > -4096 && strerrordesc_np(-err))
            return strerrordesc_np(-err);
        return "unknown error";
    }
#undef GOC_ERROR_CASE
}

const char *goc_version(void)
{
#define GOC_STR2(x) #x
#define GOC_STR(x)  GOC_STR2(x)
    return GOC_STR(GOC_VERSION_MAJOR) "." GOC_STR(
        GOC_VERSION_MINOR) "." GOC_STR(GOC_VERSION_PATCH);
}
