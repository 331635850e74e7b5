/* SPDX-License-Identifier: MIT */
/*
 * Machine context switch between goroutine stacks.
 *
 * A suspended context is a single pointer: the stack pointer at which the
 * switch saved its callee-saved registers (or, on the portable fallback, a
 * ucontext_t on that stack). Nothing else is saved: a switch is a function
 * call, so the ABI's caller-saved registers are already dead.
 */
#ifndef GOC_ARCH_SWITCH_H
#define GOC_ARCH_SWITCH_H

/*
 * goc__ctx_switch - suspend the running context into *from_sp and resume
 * the context saved at to_sp. Returns when something switches back.
 */
void goc__ctx_switch(void **from_sp, void *to_sp);

/*
 * goc__ctx_make - prepare the fresh stack [stack_lo, stack_top) so that the
 * first switch to the returned pointer calls entry(arg) with a clean frame
 * chain. entry must never return.
 */
void *goc__ctx_make(void *stack_lo,
                    void *stack_top,
                    void (*entry)(void *),
                    void *arg);

#endif /* GOC_ARCH_SWITCH_H */
