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

#endif /* GOC_RUNTIME_SAN_H */
