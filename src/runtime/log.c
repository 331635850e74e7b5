/* SPDX-License-Identifier: MIT */
/* The runtime's reports: to standard error, or to a hook the user sets. */
#include "runtime.h"

#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

static struct {
    goc_log_fn _Atomic fn;
    void *_Atomic arg;
} hook;

void goc_set_log_hook(goc_log_fn fn, void *arg)
{
    atomic_store(&hook.arg, arg);
    atomic_store(&hook.fn, fn);
}

void goc__log(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    goc_log_fn fn = atomic_load(&hook.fn);
    if (fn) {
        fn(msg, atomic_load(&hook.arg));
        return;
    }
    dprintf(2, "goc: %s\n", msg);
}
