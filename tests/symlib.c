/* SPDX-License-Identifier: MIT */
/*
 * A library the symbolizer's tests (test_symbolize.c) load with dlopen.
 * It is built twice: as it is, and with SYMLIB_REBUILT as a later version
 * of itself, laid out otherwise, to put in its place on disk while the
 * first is loaded.
 */
#define EXPORT __attribute__((visibility("default")))

typedef int (*symlib_fn)(int);

EXPORT symlib_fn symlib_helper(void);

#if defined(SYMLIB_REBUILT)
EXPORT void symlib_rebuilt_only(void);

/* Spans the offsets where the first build has its functions. */
__attribute__((noinline, used)) void symlib_rebuilt_only(void)
{
    __asm__ volatile(".skip 0x4000, 0");
}
#endif

/* Only the library's own symbol table knows this name. */
__attribute__((noinline)) static int symlib_static_helper(int x)
{
    __asm__ volatile("" : "+r"(x));
    return x * 3 + 1;
}

symlib_fn symlib_helper(void)
{
    return symlib_static_helper;
}
