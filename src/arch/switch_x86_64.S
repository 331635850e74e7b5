/* SPDX-License-Identifier: MIT */
/*
 * Context switch for x86_64 (System V ABI).
 *
 * Saves only what the ABI makes callee-saved: rbx, rbp, r12-r15, the stack
 * pointer, the MXCSR control bits and the x87 control word (a fesetround()
 * in one goroutine must not leak into another). Frame, from high to low:
 *
 *     return address  (pushed by the caller's `call`)
 *     rbp rbx r12 r13 r14 r15
 *     x87 CW (at +4), MXCSR (at +0)  <- saved sp
 */
#if defined(__x86_64__) && !defined(GOC_PORTABLE_SWITCH)
    .text
    .globl  goc__ctx_switch
    .hidden goc__ctx_switch
    .type   goc__ctx_switch, @function
    .p2align 4
goc__ctx_switch:
    .cfi_startproc
    /* The CFI describes the frame at every instruction, so debuggers and
     * DWARF unwinders can walk out of a switch. Both sides of it have the
     * same layout: after the stack pointer moves, the same rules describe
     * the goroutine being resumed. */
    pushq   %rbp
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbp, 0
    pushq   %rbx
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %rbx, 0
    pushq   %r12
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r12, 0
    pushq   %r13
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r13, 0
    pushq   %r14
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r14, 0
    pushq   %r15
    .cfi_adjust_cfa_offset 8
    .cfi_rel_offset %r15, 0
    subq    $8, %rsp
    .cfi_adjust_cfa_offset 8
    stmxcsr (%rsp)
    fnstcw  4(%rsp)
    movl    (%rsp), %eax        /* our MXCSR */
    movzwl  4(%rsp), %ecx       /* our x87 control word */
    /* Our stack pointer is the last of our stores (x86 keeps them in
     * order), and made once we are off our stack: a yield queued us
     * already, and whoever took us resumes us on it as soon as it sees
     * this store; a signal handler must not land there after it. */
    movq    %rsp, %rdx
    movq    %rsi, %rsp
    movq    %rdx, (%rdi)
    /* The control words almost never differ between goroutines, and
     * loading them is slow (microcoded): do it only when they do. */
    cmpl    (%rsp), %eax
    jne     1f
    cmpw    4(%rsp), %cx
    jne     1f
    .cfi_remember_state
2:
    addq    $8, %rsp
    .cfi_adjust_cfa_offset -8
    popq    %r15
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r15
    popq    %r14
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r14
    popq    %r13
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r13
    popq    %r12
    .cfi_adjust_cfa_offset -8
    .cfi_restore %r12
    popq    %rbx
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbx
    popq    %rbp
    .cfi_adjust_cfa_offset -8
    .cfi_restore %rbp
    ret
    .cfi_restore_state
1:
    ldmxcsr (%rsp)
    fldcw   4(%rsp)
    jmp     2b
    .cfi_endproc
    .size   goc__ctx_switch, .-goc__ctx_switch

/*
 * First code of every goroutine: the switch "returns" here with the entry
 * function in rbx and its argument in r12. rbp is zero, which ends frame
 * pointer walks; the call leaves a return address into ud2, so a body that
 * returns instead of exiting through the runtime traps at once.
 */
    .globl  goc__ctx_trampoline
    .hidden goc__ctx_trampoline
    .globl  goc__ctx_trampoline_entry
    .hidden goc__ctx_trampoline_entry
    .type   goc__ctx_trampoline, @function
    .p2align 4
goc__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined rip
    /* A fresh goroutine's first switch "returns" to the entry label, and
     * unwinders look up the rule of the return address minus one: this
     * byte keeps that inside the trampoline and under its rule (end of
     * the stack). */
    nop
goc__ctx_trampoline_entry:
    movq    %r12, %rdi
    xorl    %ebp, %ebp
    callq   *%rbx
    ud2
    .cfi_endproc
    .size   goc__ctx_trampoline, .-goc__ctx_trampoline
#endif
    .section .note.GNU-stack,"",@progbits
