/* SPDX-License-Identifier: MIT */
/*
 * A frame-pointer walk that cannot fault, for a signal handler and for
 * malloc: goc is built with frame pointers, but the code interrupted (or
 * calling malloc) may be libc's, which uses the frame-pointer register
 * for data, so the chain may point anywhere. Inside a known stack range
 * the words are read directly; elsewhere each new page is first read
 * through process_vm_readv(2), which fails with EFAULT where a load would
 * fault. Both are async-signal-safe; errno is kept.
 */
#ifndef GOC_PROF_FPWALK_H
#define GOC_PROF_FPWALK_H

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

/* Copy 16 bytes at addr into dst through the kernel; 0 if unreadable. */
static inline int goc__safe_read16(uintptr_t *dst, uintptr_t addr)
{
    int saved = errno;
    struct iovec local = { dst, 16 }, remote = { (void *)addr, 16 };
    long r = syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote,
                     1L, 0L);
    errno = saved;
    return r == 16;
}

/*
 * Walk up to max return addresses from the frame fp. Frames must lie in
 * [lo, hi) when hi is set; with hi 0 the stack's extent is unknown and
 * frames must only lie at or above lo (the stack pointer).
 */
GOC__PROF_NOSAN static inline int goc__fp_walk(
    void **pcs, int max, uintptr_t fp, uintptr_t lo, uintptr_t hi)
{
    uintptr_t ok_lo = 0, ok_hi = 0; /* a page span known to be readable */
    int n = 0;
    while (n < max && fp >= lo && (fp & 7) == 0) {
        uintptr_t f[2];
        if (hi) {
            if (fp + 16 > hi)
                break;
            f[0] = ((const volatile uintptr_t *)fp)[0];
            f[1] = ((const volatile uintptr_t *)fp)[1];
        } else if (fp >= ok_lo && fp + 16 <= ok_hi) {
            f[0] = ((const volatile uintptr_t *)fp)[0];
            f[1] = ((const volatile uintptr_t *)fp)[1];
        } else {
            if (!goc__safe_read16(f, fp))
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
