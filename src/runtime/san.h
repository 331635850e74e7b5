/* SPDX-License-Identifier: MIT */
/*
 * Sanitizer and valgrind annotations for stack switches. Each is compiled
 * in only for its build mode (GOC_ASAN, GOC_TSAN, GOC_VALGRIND), so the
 * default build pays nothing.
 */
#ifndef GOC_RUNTIME_SAN_H
#define GOC_RUNTIME_SAN_H

#if defined(GOC_ASAN)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if defined(GOC_TSAN)
#include <sanitizer/tsan_interface.h>
#endif
#if defined(GOC_VALGRIND)
#include <valgrind/memcheck.h>
#include <valgrind/valgrind.h>
#endif

/*
 * SA_ONSTACK for signal handlers that return: they run on the thread's
 * alternate stack, so that a signal never lands on a goroutine stack near
 * its guard page. Not under valgrind: after a handler on the alternate
 * stack returns to a goroutine stack, memcheck reports that goroutine's
 * next stack writes as invalid (in about one run in four; registering the
 * alternate stack as a stack makes it nearly every run). There the
 * kernel's frame and the handler, a few KiB, go on the interrupted stack.
 */
#if defined(GOC_VALGRIND)
#define GOC__SA_ONSTACK_RETURNING 0
#else
#define GOC__SA_ONSTACK_RETURNING SA_ONSTACK
#endif

#endif /* GOC_RUNTIME_SAN_H */
