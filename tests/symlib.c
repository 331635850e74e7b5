/* SPDX-License-Identifier: MIT */
/*
 * A library the symbolizer's tests (test_symbolize.c) load with dlopen.
 * It is built three times: as it is; with SYMLIB_REBUILT as a later
 * version of itself, laid out otherwise, to put in its place on disk while
 * the first is loaded; and with SYMLIB_TWIN as another library laid out
 * alike, but for the name of its static function, to load where the first
 * was once it is unloaded.
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

#if defined(SYMLIB_TWIN)
#define symlib_static_helper symlib_static_second /* as long */
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
