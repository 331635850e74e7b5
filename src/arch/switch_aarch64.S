/* SPDX-License-Identifier: MIT */
/*
 * Context switch for aarch64 (AAPCS64).
 *
 * Saves only the callee-saved state: x19-x28, the frame pointer x29, the
 * link register x30 (the resume address), d8-d15 (the low halves of
 * v8-v15) and FPCR (rounding mode: a fesetround() in one goroutine must not
 * leak into another). Frame of 0xb0 bytes at the saved sp:
 *
 *     +0x00 d8 d9 d10 d11 d12 d13 d14 d15
 *     +0x40 x19 x20 ... x28
 *     +0x90 x29 x30
 *     +0xa0 FPCR, padding
 */
#if defined(__aarch64__) && !defined(GOC_PORTABLE_SWITCH)
    .text
    .globl  goc__ctx_switch
    .hidden goc__ctx_switch
    .type   goc__ctx_switch, %function
    .p2align 4
goc__ctx_switch:
    .cfi_startproc
    /* The CFI describes the frame at every instruction, so debuggers and
     * DWARF unwinders can walk out of a switch. Both sides of it have the
     * same layout: after sp moves, the same rules describe the goroutine
     * being resumed. */
    sub     sp, sp, #0xb0
    .cfi_def_cfa_offset 0xb0
    stp     d8, d9, [sp, #0x00]
    .cfi_offset d8, -0xb0
    .cfi_offset d9, -0xa8
    stp     d10, d11, [sp, #0x10]
    .cfi_offset d10, -0xa0
    .cfi_offset d11, -0x98
    stp     d12, d13, [sp, #0x20]
    .cfi_offset d12, -0x90
    .cfi_offset d13, -0x88
    stp     d14, d15, [sp, #0x30]
    .cfi_offset d14, -0x80
    .cfi_offset d15, -0x78
    stp     x19, x20, [sp, #0x40]
    .cfi_offset x19, -0x70
    .cfi_offset x20, -0x68
    stp     x21, x22, [sp, #0x50]
    .cfi_offset x21, -0x60
    .cfi_offset x22, -0x58
    stp     x23, x24, [sp, #0x60]
    .cfi_offset x23, -0x50
    .cfi_offset x24, -0x48
    stp     x25, x26, [sp, #0x70]
    .cfi_offset x25, -0x40
    .cfi_offset x26, -0x38
    stp     x27, x28, [sp, #0x80]
    .cfi_offset x27, -0x30
    .cfi_offset x28, -0x28
    stp     x29, x30, [sp, #0x90]
    .cfi_offset x29, -0x20
    .cfi_offset x30, -0x18
    mrs     x3, fpcr
    str     x3, [sp, #0xa0]
    /* Publish our stack pointer once off our stack, with release: a
     * yield queued us already, and whoever took us resumes us on it as
     * soon as it sees this store (a signal must not land there after). */
    mov     x2, sp
    mov     sp, x1
    stlr    x2, [x0]
    ldr     x4, [sp, #0xa0]
    cmp     x3, x4              /* FPCR rarely differs: skip the write */
    b.eq    1f
    msr     fpcr, x4
1:
    ldp     d8, d9, [sp, #0x00]
    ldp     d10, d11, [sp, #0x10]
    ldp     d12, d13, [sp, #0x20]
    ldp     d14, d15, [sp, #0x30]
    ldp     x19, x20, [sp, #0x40]
    ldp     x21, x22, [sp, #0x50]
    ldp     x23, x24, [sp, #0x60]
    ldp     x25, x26, [sp, #0x70]
    ldp     x27, x28, [sp, #0x80]
    ldp     x29, x30, [sp, #0x90]
    add     sp, sp, #0xb0
    .cfi_def_cfa_offset 0
    .cfi_restore d8
    .cfi_restore d9
    .cfi_restore d10
    .cfi_restore d11
    .cfi_restore d12
    .cfi_restore d13
    .cfi_restore d14
    .cfi_restore d15
    .cfi_restore x19
    .cfi_restore x20
    .cfi_restore x21
    .cfi_restore x22
    .cfi_restore x23
    .cfi_restore x24
    .cfi_restore x25
    .cfi_restore x26
    .cfi_restore x27
    .cfi_restore x28
    .cfi_restore x29
    .cfi_restore x30
    ret
    .cfi_endproc
    .size   goc__ctx_switch, .-goc__ctx_switch

/*
 * First code of every goroutine: entry function in x20, argument in x19.
 * x29 and x30 are zero, which ends frame-pointer walks; brk traps a body
 * that returns instead of exiting through the runtime.
 */
    .globl  goc__ctx_trampoline
    .hidden goc__ctx_trampoline
    .globl  goc__ctx_trampoline_entry
    .hidden goc__ctx_trampoline_entry
    .type   goc__ctx_trampoline, %function
    .p2align 4
goc__ctx_trampoline:
    .cfi_startproc
    .cfi_undefined x30
    /* A fresh goroutine's first switch "returns" to the entry label, and
     * unwinders look up the rule of the return address minus one: this
     * instruction keeps that inside the trampoline and under its rule
     * (end of the stack). */
    nop
goc__ctx_trampoline_entry:
    mov     x0, x19
    mov     x29, #0
    mov     x30, #0
    blr     x20
    brk     #0
    .cfi_endproc
    .size   goc__ctx_trampoline, .-goc__ctx_trampoline
#endif
    .section .note.GNU-stack,"",%progbits
