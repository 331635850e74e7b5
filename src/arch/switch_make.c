/* SPDX-License-Identifier: MIT */
/*
 * Building the first frame of a new goroutine stack for the assembly
 * switches. Each frame mirrors what goc__ctx_switch pops on its way out.
 */
#include "switch.h"

#include <stdint.h>
#include <string.h>

#if (defined(__x86_64__) || defined(__aarch64__)) && \
    !defined(GOC_PORTABLE_SWITCH)

/* Where a new goroutine's first switch returns to (in the trampoline). */
void goc__ctx_trampoline_entry(void);

#if defined(__x86_64__)
/* Layout popped by goc__ctx_switch, low to high. */
struct first_frame {
    uint32_t mxcsr;
    uint16_t fpucw;
    uint16_t pad;
    uint64_t r15, r14, r13, r12, rbx, rbp;
    uint64_t ret;
};

_Static_assert(sizeof(struct first_frame) == 64, "frame size");

void *goc__ctx_make(void *stack_lo,
                    void *stack_top,
                    void (*entry)(void *),
                    void *arg)
{
    (void)stack_lo;
    /*
     * After `ret` pops the return address, rsp must be 16-byte aligned so
     * that the trampoline's `call` gives the entry function the ABI's
     * rsp % 16 == 8 at its first instruction.
     */
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    struct first_frame *f =
        (struct first_frame *)(top - sizeof(struct first_frame));
    memset(f, 0, sizeof(*f));
    f->mxcsr = 0x1f80; /* all exceptions masked, round to nearest */
    f->fpucw = 0x037f; /* x87 default: extended precision, all masked */
    f->r12 = (uint64_t)(uintptr_t)arg;
    f->rbx = (uint64_t)(uintptr_t)entry;
    f->ret = (uint64_t)(uintptr_t)goc__ctx_trampoline_entry;
    return f;
}
#else
/* Layout popped by goc__ctx_switch: d8-d15, x19-x28, x29, x30, FPCR. */
struct first_frame {
    uint64_t d[8];
    uint64_t x19, x20, x21_x28[8], x29, x30;
    uint64_t fpcr, pad;
};

_Static_assert(sizeof(struct first_frame) == 0xb0, "frame size");

void *goc__ctx_make(void *stack_lo,
                    void *stack_top,
                    void (*entry)(void *),
                    void *arg)
{
    (void)stack_lo;
    uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
    struct first_frame *f =
        (struct first_frame *)(top - sizeof(struct first_frame));
    memset(f, 0, sizeof(*f));
    f->x19 = (uint64_t)(uintptr_t)arg;
    f->x20 = (uint64_t)(uintptr_t)entry;
    f->x30 = (uint64_t)(uintptr_t)goc__ctx_trampoline_entry;
    return f;
}
#endif

#endif
