/* SPDX-License-Identifier: MIT */
/* Helpers shared by the tests. */
#include "test.h"

#include <poll.h>
#include <signal.h>
#include <stdatomic.h>

#include <pthread.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

unsigned long test_thread_self(void)
{
    return (unsigned long)pthread_self();
}

struct canceller {
    goc_ctx *ctx;
    int64_t after;
};

/* Cancellers started and not yet done with their context. */
static _Atomic int cancellers_running;

static void cancel_later(void *arg)
{
    struct canceller *k = arg;
    goc_sleep(k->after, NULL);
    goc_ctx_cancel(k->ctx);
    goc_ctx_release(k->ctx);
    free(k);
    /* Release: our last touch of the context is before this. */
    atomic_fetch_sub_explicit(&cancellers_running, 1, memory_order_release);
}

void test_cancel_after(goc_ctx *ctx, int64_t ns)
{
    struct canceller *k = malloc(sizeof(*k));
    ASSERT(k != NULL);
    *k = (struct canceller){ goc_ctx_retain(ctx), ns };
    atomic_fetch_add(&cancellers_running, 1);
    ASSERT_OK(goc_go(cancel_later, k));
}

void test_cancel_after_join(void)
{
    while (atomic_load_explicit(&cancellers_running, memory_order_acquire))
        goc_sleep(100 * GOC_MICROSECOND, NULL);
}

int64_t test_scale(int64_t n)
{
    const char *s = getenv("GOC_TEST_SCALE");
    int64_t div = s ? atoll(s) : 1;
    if (div < 1)
        div = 1;
    int64_t v = n / div;
    return v > 0 ? v : 1;
}

bool test_under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "valgrind");
}

int test_instrumented(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return 1;
#endif
#endif
    return test_under_valgrind() || getenv("GOC_TEST_SCALE") != NULL;
}

void test_no_leaks(void)
{
    /* goleak's way: retry with backoff, then dump what is left. */
    if (goc_leakcheck(0, 5 * GOC_SECOND) != 0)
        ASSERT_FAIL("leak check: %" PRId64 " goroutines still exist",
                    goc_num_goroutine());
}

void test_run_with_spawns_that_allocate(int (*fn)(void *arg))
{
    struct goc_config cfg = { .stack_size = 32u << 20 }; /* a slab's size */
    ASSERT_OK(goc_init(&cfg));
    ASSERT_OK(goc_run(fn, NULL));
    test_no_leaks();
}

int test_run_captured(void (*fn)(void), char *buf, size_t size)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core); /* a death by signal dumps none */
        dup2(fds[1], 2);
        close(fds[0]);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r = 1;
    /* Bounded: a child that never exits is killed and the test fails. */
    int64_t deadline = goc_now() + 60 * GOC_SECOND;
    while (r > 0) {
        struct pollfd pfd = { fds[0], POLLIN, 0 };
        int left = (int)((deadline - goc_now()) / GOC_MILLISECOND);
        if (left <= 0 || poll(&pfd, 1, left) == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            ASSERT_FAIL("child %d did not exit in 60 s", (int)pid);
        }
        char spill[4096]; /* past a full buffer: read on to the end */
        r = n < size - 1 ? read(fds[0], buf + n, size - 1 - n)
                         : read(fds[0], spill, sizeof(spill));
        if (r > 0 && n < size - 1)
            n += (size_t)r;
    }
    buf[n] = '\0';
    close(fds[0]);
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    fprintf(stderr, "child said: %s\n", buf);
    return status;
}

void test_expect_exit(void (*fn)(void), int want_status, const char *want_text)
{
    char buf[8192];
    int status = test_run_captured(fn, buf, sizeof(buf));
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), want_status);
    if (!strstr(buf, want_text))
        ASSERT_FAIL("child output lacks \"%s\"", want_text);
}

void test_expect_signal(void (*fn)(void),
                        int want_signal,
                        const char *want_text)
{
    char buf[8192];
    int status = test_run_captured(fn, buf, sizeof(buf));
    if (!WIFSIGNALED(status))
        ASSERT_FAIL("child was not ended by a signal: status %#x", status);
    ASSERT_EQ(WTERMSIG(status), want_signal);
    if (!strstr(buf, want_text))
        ASSERT_FAIL("child output lacks \"%s\"", want_text);
}

int test_join(pthread_t t, void **res)
{
    int entered = goc_blocking_enter() == 0;
    int rc = pthread_join(t, res);
    if (entered)
        goc_blocking_exit();
    return rc;
}

void test_note_run(void *arg)
{
    struct test_run_note *r = arg;
    atomic_store(&r->goid, goc_id());
    atomic_fetch_add(&r->runs, 1);
}

int64_t test_lib_objects(void)
{
    struct goc_stats st;
    goc_stats_read(&st, GOC_STATS_LIB);
    return st.lib_heap_objects;
}
