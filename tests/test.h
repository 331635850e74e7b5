/* SPDX-License-Identifier: MIT */
/*
 * The test harness: assertion macros that print both sides and abort (safe
 * from any goroutine stack and any thread), and TEST / TEST_G to define
 * tests. TEST_G bodies run as goc's main goroutine and end with a leak
 * check: no goroutine may outlive the test.
 */
#ifndef GOC_TEST_H
#define GOC_TEST_H

#include <goc.h>

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ASSERT_FAIL(fmt, ...)                                                 \
    do {                                                                      \
        fprintf(stderr, "%s:%d: " fmt "\n", __FILE__, __LINE__, __VA_ARGS__); \
        abort();                                                              \
    } while (0)

#define ASSERT(cond)                                    \
    do {                                                \
        if (!(cond))                                    \
            ASSERT_FAIL("assertion failed: %s", #cond); \
    } while (0)

#define ASSERT_CMP(a, op, b)                                                  \
    do {                                                                      \
        int64_t a_ = (int64_t)(a), b_ = (int64_t)(b);                         \
        if (!(a_ op b_))                                                      \
            ASSERT_FAIL("%s %s %s: %" PRId64 " vs %" PRId64, #a, #op, #b, a_, \
                        b_);                                                  \
    } while (0)

#define ASSERT_EQ(a, b) ASSERT_CMP(a, ==, b)
#define ASSERT_NE(a, b) ASSERT_CMP(a, !=, b)
#define ASSERT_LT(a, b) ASSERT_CMP(a, <, b)
#define ASSERT_LE(a, b) ASSERT_CMP(a, <=, b)
#define ASSERT_GT(a, b) ASSERT_CMP(a, >, b)
#define ASSERT_GE(a, b) ASSERT_CMP(a, >=, b)
#define ASSERT_OK(rc)   ASSERT_EQ(rc, 0)

/* Poll @cond every 100 us until it holds; fail after 30 s. */
#define WAIT_UNTIL(cond)                                      \
    do {                                                      \
        int64_t wait_t0_ = goc_now();                         \
        while (!(cond)) {                                     \
            ASSERT_LT(goc_now() - wait_t0_, 30 * GOC_SECOND); \
            goc_sleep(100 * GOC_MICROSECOND, NULL);           \
        }                                                     \
    } while (0)

#define ASSERT_STR(a, b)                                      \
    do {                                                      \
        const char *a_ = (a), *b_ = (b);                      \
        if (!a_ || strcmp(a_, b_) != 0)                       \
            ASSERT_FAIL("%s == %s: \"%s\" vs \"%s\"", #a, #b, \
                        a_ ? a_ : "(null)", b_);              \
    } while (0)

#define TEST(area, name) void test_##area##_##name(void)

/* A test whose body runs as the main goroutine, then checks for leaks. */
#define TEST_G(area, name)                             \
    static void tg_##area##_##name(void);              \
    static int tgm_##area##_##name(void *arg)          \
    {                                                  \
        (void)arg;                                     \
        tg_##area##_##name();                          \
        return 0;                                      \
    }                                                  \
    TEST(area, name)                                   \
    {                                                  \
        ASSERT_OK(goc_run(tgm_##area##_##name, NULL)); \
        test_no_leaks();                               \
    }                                                  \
    static void tg_##area##_##name(void)

/* Stress sizes divided by GOC_TEST_SCALE (sanitizers, emulation). */
int64_t test_scale(int64_t n);

/* Wait (up to 5 s) for every goroutine to end; fail if some remain. */
void test_no_leaks(void);

/*
 * Start the runtime with stacks so large that each goroutine takes a slab
 * of its own (so every spawn allocates, and fails under goc__fault_after),
 * run fn as the main goroutine, then check for leaks. For a TEST().
 */
void test_run_with_spawns_that_allocate(int (*fn)(void *arg));

/* Where a callback ran (its goroutine id, 0 off goroutines) and how
 * often: the record test_note_run() keeps. */
struct test_run_note {
    _Atomic int runs;
    _Atomic int64_t goid;
};

/* A callback for timers and contexts: notes the run in arg, a struct
 * test_run_note. */
void test_note_run(void *arg);

/* Blocks of heap goc holds now (goc_stats' lib_heap_objects): a leak
 * check across repeated calls. */
int64_t test_lib_objects(void);

/* Run fn in a child, its stderr read into buf (NUL-terminated); returns
 * its wait status. */
int test_run_captured(void (*fn)(void), char *buf, size_t size);

/*
 * Run fn in a child process; require that it exits with status
 * want_status and that its stderr contains want_text.
 */
void test_expect_exit(void (*fn)(void), int want_status, const char *want_text);

/* The same for a child that must end by the signal want_signal. */
void test_expect_signal(void (*fn)(void),
                        int want_signal,
                        const char *want_text);

/*
 * pthread_self() of the calling thread, read afresh: glibc declares
 * pthread_self const, so the compiler may reuse one call's result across
 * a switch that moved the goroutine to another thread.
 */
unsigned long test_thread_self(void);

/* Start a goroutine that cancels ctx after ns nanoseconds. */
void test_cancel_after(goc_ctx *ctx, int64_t ns);
/*
 * Wait until every such goroutine is done with its context. A local
 * context is not reference-counted: the canceller may still be inside
 * goc_ctx_cancel() when the cancelled wait returns, so join it before
 * goc_ctx_destroy() and before reusing or leaving the storage.
 */
void test_cancel_after_join(void);

/*
 * pthread_join() for tests: from a goroutine, inside a blocking section,
 * so that the thread joined can count on the goroutines and timers of
 * every P, the joiner's included (with one P, an unmarked join would stall
 * them all). Same arguments and result as pthread_join().
 */
int test_join(pthread_t t, void **res);

/* True when built with a sanitizer or run under valgrind. */
int test_instrumented(void);

/* True when run under valgrind. */
bool test_under_valgrind(void);

#define X(area, name, label) TEST(area, name);
#include "list.h"
#undef X

#endif /* GOC_TEST_H */
