/* SPDX-License-Identifier: MIT */
/*
 * A frame-pointer walk that cannot fault, for a signal handler and for
 * malloc: goc is built with frame pointers, but the code interrupted (or
 * calling malloc) may be libc's, which uses the frame-pointer register
 * for data, so the chain may point anywhere. Inside a known stack range
 * the words are read directly; elsewhere each new page is first read
 * through process_vm_readv(2), which fails with EFAULT where a load would
 * fault. Both are async-signal-safe; errno is kept.
 *
 * A seccomp filter may forbid process_vm_readv. goc__fp_probe() finds
 * that out once, and the walk then checks each frame with
 * rt_sigprocmask(2) instead: given an invalid `how`, the kernel copies
 * the new mask in first (EFAULT where a load would fault) and then
 * refuses it with EINVAL, changing nothing. Where that is forbidden too,
 * frames are followed only inside a known stack range.
 */
#ifndef GOC_PROF_FPWALK_H
#define GOC_PROF_FPWALK_H

#include "goc/prof.h"

#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#if defined(__clang__) || __GNUC__ >= 8
#define GOC__PROF_NOSAN __attribute__((no_sanitize("address", "thread")))
#else
#define GOC__PROF_NOSAN
#endif

/* How frames outside a known stack range are read (GOC_PROF_WALK_*). */
enum {
    GOC__WALK_VM = GOC_PROF_WALK_FULL,
    GOC__WALK_SIGMASK = GOC_PROF_WALK_PROBED,
    GOC__WALK_BOUNDED = GOC_PROF_WALK_BOUNDED,
};

/* Copy 16 bytes at addr into dst through the kernel; 0 if unreadable. */
static inline int goc__vm_read16(uintptr_t *dst, uintptr_t addr)
{
    int saved = errno;
    struct iovec local = { dst, 16 }, remote = { (void *)addr, 16 };
    long r = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote,
                     1L, 0L);
    errno = saved;
    return r == 16;
}

/* Whether the 8 bytes at addr can be loaded (see the top). */
static inline int goc__sigmask_readable(uintptr_t addr)
{
    int saved = errno;
    long r = syscall(SYS_rt_sigprocmask, -1L, (void *)addr, NULL, 8L);
    int ok = r < 0 && errno == EINVAL;
    errno = saved;
    return ok;
}

/* Copy 16 bytes at addr into dst the way mode allows; 0 if unreadable. */
GOC__PROF_NOSAN static inline int goc__safe_read16(uintptr_t *dst,
                                                   uintptr_t addr,
                                                   int mode)
{
    if (mode == GOC__WALK_VM)
        return goc__vm_read16(dst, addr);
    if (mode != GOC__WALK_SIGMASK || !goc__sigmask_readable(addr) ||
        !goc__sigmask_readable(addr + 8))
        return 0;
    dst[0] = ((const volatile uintptr_t *)addr)[0];
    dst[1] = ((const volatile uintptr_t *)addr)[1];
    return 1;
}

/* The best way to read frames that this process is allowed: call once,
 * outside a signal handler. */
static inline int goc__fp_probe(void)
{
    uintptr_t probe[2] = { 1, 2 }, got[2] = { 0, 0 };
    if (goc__vm_read16(got, (uintptr_t)probe) && got[1] == 2)
        return GOC__WALK_VM;
    /* And it must tell an unreadable address (the kernel's) apart. */
    if (goc__sigmask_readable((uintptr_t)probe) &&
        !goc__sigmask_readable(~(uintptr_t)4095))
        return GOC__WALK_SIGMASK;
    return GOC__WALK_BOUNDED;
}

/*
 * Walk up to max return addresses from the frame fp. Frames must lie in
 * [lo, hi) when hi is set; with hi 0 the stack's extent is unknown and
 * frames must only lie at or above lo (the stack pointer), read as mode
 * (from goc__fp_probe()) allows.
 */
GOC__PROF_NOSAN static inline int goc__fp_walk(
    void **pcs, int max, uintptr_t fp, uintptr_t lo, uintptr_t hi, int mode)
{
    uintptr_t ok_lo = 0, ok_hi = 0; /* a page span known to be readable */
    int n = 0;
    /* No fp + 16 below: code without frame pointers may hold any value
     * in the register, ~15 say, and the sum would wrap past a bound. */
    while (n < max && fp >= lo && (fp & 7) == 0 && fp <= UINTPTR_MAX - 16) {
        uintptr_t f[2];
        if (hi) {
            if (hi < 16 || fp > hi - 16)
                break;
            f[0] = ((const volatile uintptr_t *)fp)[0];
            f[1] = ((const volatile uintptr_t *)fp)[1];
        } else if (ok_hi >= 16 && fp >= ok_lo && fp <= ok_hi - 16) {
            f[0] = ((const volatile uintptr_t *)fp)[0];
            f[1] = ((const volatile uintptr_t *)fp)[1];
        } else {
            if (!goc__safe_read16(f, fp, mode))
                break;
            ok_lo = fp & ~(uintptr_t)4095;
            ok_hi = (fp + 16 + 4095) & ~(uintptr_t)4095;
        }
        if (f[1] < 4096)
            break;
        pcs[n++] = (void *)f[1];
        /* Frames only go up the stack, and not by leaps. */
        if (f[0] <= fp || f[0] - fp > (1u << 20))
            break;
        fp = f[0];
    }
    return n;
}

#endif /* GOC_PROF_FPWALK_H */
