/* SPDX-License-Identifier: MIT */
/* A pause for spin loops: lets the sibling hyperthread or vCPU run. */
#ifndef GOC_INTERNAL_CPU_H
#define GOC_INTERNAL_CPU_H

#if defined(__x86_64__)
#define goc__cpu_relax() __builtin_ia32_pause()
#elif defined(__aarch64__)
#define goc__cpu_relax() __asm__ volatile("yield" ::: "memory")
#else
#define goc__cpu_relax() ((void)0)
#endif

#endif /* GOC_INTERNAL_CPU_H */
