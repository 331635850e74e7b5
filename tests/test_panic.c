/* SPDX-License-Identifier: MIT */
/* Tests of panics, cleanups, recovery, dumps, leaks and deadlocks. */
#include "test.h"
#include "../src/runtime/runtime.h"

#include "../src/internal/alloc.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <unistd.h>

/* ---- panic and recover ----------------------------------------------------
 */

static int returns_7(void *arg)
{
    (void)arg;
    return 7;
}

static int panics(void *arg)
{
    goc_panic(-EIO, "boom %d", *(int *)arg);
}

TEST_G(panic, try_turns_a_panic_into_an_error)
{
    goc_panic_info *p = (goc_panic_info *)1;
    ASSERT_EQ(goc_try(returns_7, NULL, &p), 7);
    ASSERT(p == NULL);
    int v = 42;
    ASSERT_EQ(goc_try(panics, &v, &p), GOC_EPANIC);
    ASSERT(p != NULL);
    ASSERT_STR(goc_panic_info_message(p), "boom 42");
    ASSERT_EQ(goc_panic_info_code(p), -EIO);
    ASSERT_EQ(goc_panic_info_goroutine(p), goc_id());
    char text[2048];
    ASSERT_GT(goc_panic_info_format(p, text, sizeof(text)), 0);
    ASSERT(strstr(text, "panic: boom 42") != NULL);
    ASSERT(strstr(text, "panics") != NULL); /* the backtrace names it */
    goc_panic_info_free(p);
    ASSERT_EQ(goc_try(panics, &v, NULL), GOC_EPANIC); /* info discarded */
    ASSERT_EQ(goc_try(NULL, NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_defer(NULL, NULL), -EINVAL);
}

struct order {
    char log[64];
    int n;
};

static void note(struct order *o, char c)
{
    o->log[o->n++] = c;
    o->log[o->n] = '\0';
}

static void note_a(void *arg)
{
    note(arg, 'a');
}
static void note_b(void *arg)
{
    note(arg, 'b');
}
static void note_c(void *arg)
{
    note(arg, 'c');
}
static void note_i(void *arg)
{
    note(arg, 'i');
}

static int inner_panics(void *arg)
{
    goc_defer(note_i, arg);
    goc_panic(0, "inner");
}

static int nested(void *arg)
{
    struct order *o = arg;
    goc_defer(note_a, o);
    goc_defer(note_b, o);
    /* An inner goc_try stops the inner panic; its cleanup runs first. */
    ASSERT_EQ(goc_try(inner_panics, o, NULL), GOC_EPANIC);
    goc_defer(note_c, o);
    goc_panic(1, "outer");
}

TEST_G(panic, cleanups_run_newest_first_in_each_scope)
{
    struct order o = { .n = 0 };
    ASSERT_EQ(goc_try(nested, &o, NULL), GOC_EPANIC);
    ASSERT_STR(o.log, "icba");
    /* On a normal return too. */
    o.n = 0;
    o.log[0] = '\0';
    ASSERT_EQ(goc_try(returns_7, NULL, NULL), 7);
}

static void panicking_cleanup(void *arg)
{
    (void)arg;
    goc_panic(2, "in cleanup");
}

static int panics_then_cleanup_panics(void *arg)
{
    goc_defer(note_a, arg);
    goc_defer(panicking_cleanup, NULL);
    goc_panic(1, "first");
}

TEST_G(panic, cleanup_that_panics_keeps_the_rest_running)
{
    struct order o = { .n = 0 };
    goc_panic_info *p;
    ASSERT_EQ(goc_try(panics_then_cleanup_panics, &o, &p), GOC_EPANIC);
    ASSERT_STR(o.log, "a"); /* the remaining cleanup still ran */
    ASSERT_STR(goc_panic_info_message(p), "in cleanup");
    char text[2048];
    goc_panic_info_format(p, text, sizeof(text));
    ASSERT(strstr(text, "after panic: first") != NULL);
    goc_panic_info_free(p);
}

static void *thread_try(void *arg)
{
    int v = 5;
    *(int *)arg = goc_try(panics, &v, NULL);
    return NULL;
}

TEST(panic, plain_thread_can_try)
{
    ASSERT_EQ(goc_defer(note_a, NULL), -EPERM); /* no scope here */
    pthread_t t;
    int r = 0;
    ASSERT_OK(pthread_create(&t, NULL, thread_try, &r));
    test_join(t, NULL);
    ASSERT_EQ(r, GOC_EPANIC);
}

/* A goroutine's own cleanups run when it ends, panic or not. */
static _Atomic int goroutine_cleanups;

static void count_cleanup(void *arg)
{
    (void)arg;
    atomic_fetch_add(&goroutine_cleanups, 1);
}

static void ends_normally(void *arg)
{
    goc_defer(count_cleanup, NULL);
    goc_wg_done(arg);
}

TEST_G(panic, goroutine_cleanups_run_at_exit)
{
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 3);
    for (int i = 0; i < 3; i++)
        ASSERT_OK(goc_go(ends_normally, &wg));
    ASSERT_OK(goc_wg_wait(&wg, NULL));
    /* The cleanups run as each goroutine ends, after its wg_done: wait
     * for them (bounded), not a guess of how long that takes. */
    int64_t end = goc_now() + 5 * GOC_SECOND;
    while (atomic_load(&goroutine_cleanups) < 3 && goc_now() < end)
        goc_sleep(GOC_MILLISECOND, NULL);
    goc_sleep(10 * GOC_MILLISECOND, NULL); /* and no more come */
    int ran = atomic_load(&goroutine_cleanups);
    ASSERT_EQ(ran, 3);
}

static void say_cleanup(void *arg)
{
    (void)arg;
    fprintf(stderr, "cleanup ran\n");
}

static void unrecovered(void *arg)
{
    (void)arg;
    goc_defer(say_cleanup, NULL);
    /* Main, which started us, is asleep by then, as the dump must show
     * (on another P it could still be running otherwise). */
    goc_sleep(50 * GOC_MILLISECOND, NULL);
    goc_panic(-EINVAL, "nobody catches %s", "this");
}

static int unrecovered_main(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .name = "doomed" };
    goc_go_ex(unrecovered, NULL, &o);
    goc_sleep(5 * GOC_SECOND, NULL);
    return 0;
}

static void unrecovered_child(void)
{
    goc_run(unrecovered_main, NULL);
}

TEST(panic, unrecovered_panic_dumps_and_exits_2)
{
    test_expect_exit(unrecovered_child, 2,
                     "panic: nobody catches this [invalid argument]");
    test_expect_exit(unrecovered_child, 2, "cleanup ran");
    test_expect_exit(unrecovered_child, 2, "\"doomed\" [running]");
    test_expect_exit(unrecovered_child, 2, "[sleep");
}

/* Sleeps first, so the goroutine may go on on another thread. */
static void sleepy_panicking_cleanup(void *arg)
{
    (void)arg;
    goc_sleep(GOC_MILLISECOND, NULL);
    goc_panic(0, "second: the cleanup failed");
}

static int cleanup_panics_main(void *arg)
{
    (void)arg;
    goc_defer(sleepy_panicking_cleanup, NULL);
    goc_panic(0, "first: the root cause");
}

static void cleanup_panics_child(void)
{
    goc_run(cleanup_panics_main, NULL);
}

TEST(panic, unrecovered_panic_whose_cleanup_panics_reports_both)
{
    test_expect_exit(cleanup_panics_child, 2,
                     "panic: second: the cleanup failed\n"
                     "\t(while running cleanups after panic: first: the "
                     "root cause)");
}

/* ---- backtraces through a bogus frame pointer ---------------------------- */

#if defined(__x86_64__) || defined(__aarch64__)
/*
 * goc_test_call_with_fp(fp, fn): fn() with the frame-pointer register set
 * to fp, as code built without frame pointers may leave it: fn's frame
 * record then links to fp.
 */
void goc_test_call_with_fp(uintptr_t fp, void (*fn)(void));
__asm__(".text\n"
        ".type goc_test_call_with_fp, %function\n"
        "goc_test_call_with_fp:\n"
#if defined(__x86_64__)
        "  push %rbp\n"
        "  mov %rdi, %rbp\n"
        "  call *%rsi\n"
        "  pop %rbp\n"
        "  ret\n"
#else
        "  stp x29, x30, [sp, #-16]!\n"
        "  mov x29, x0\n"
        "  blr x1\n"
        "  ldp x29, x30, [sp], #16\n"
        "  ret\n"
#endif
        ".size goc_test_call_with_fp, . - goc_test_call_with_fp\n");

/* Named in the backtrace: the bogus record's return address is in it. */
void goc_test_bogus_frame_marker(void);
__attribute__((noinline)) void goc_test_bogus_frame_marker(void)
{
    __asm__ volatile("" ::: "memory");
}

/* A frame record on the stack whose link leads out of it. */
struct bogus_frame {
    uintptr_t rec[2]; /* next frame, return address */
};

static void panic_under_bogus_fp(void)
{
    goc_panic(0, "under a bogus frame pointer");
}

static int call_under_bogus_fp(void *arg)
{
    struct bogus_frame *b = arg;
    goc_test_call_with_fp((uintptr_t)b->rec, panic_under_bogus_fp);
    return 0;
}

/* Panic with the chain leading through b to its link, which must not be
 * read; the backtrace stops at b, and names the marker. */
static void panic_through(struct bogus_frame *b, uintptr_t link)
{
    b->rec[0] = link;
    b->rec[1] = (uintptr_t)goc_test_bogus_frame_marker + 1;
    goc_panic_info *p;
    ASSERT_EQ(goc_try(call_under_bogus_fp, b, &p), GOC_EPANIC);
    char text[4096];
    goc_panic_info_format(p, text, sizeof(text));
    fprintf(stderr, "%s\n", text);
    ASSERT(strstr(text, "panic: under a bogus frame pointer") != NULL);
    ASSERT(strstr(text, "panic_under_bogus_fp") != NULL);
    ASSERT(strstr(text, "goc_test_bogus_frame_marker") != NULL);
    goc_panic_info_free(p);
}

/* Goroutines whose stacks are looked at, then one panics. */
#define PROBE_GS 16

struct stack_probe {
    struct goc__g *g[PROBE_GS];
    _Atomic int chosen; /* index of the one to panic, -1 for none */
    uintptr_t link;
    goc_wg ready, go, done;
};

static void stack_prober(void *arg)
{
    struct stack_probe *sp = arg;
    int me = -1;
    for (int i = 0; i < PROBE_GS && me < 0; i++)
        if (!sp->g[i]) /* slots are filled one goroutine at a time */
            me = i;
    sp->g[me] = goc__g_current();
    goc_wg_done(&sp->ready);
    goc_wg_wait(&sp->go, NULL);
    if (atomic_load(&sp->chosen) == me) {
        struct bogus_frame b;
        panic_through(&b, sp->link);
        panic_through(&b, 0x10); /* low: a small integer */
    }
    goc_wg_done(&sp->done);
}

TEST_G(panic, backtrace_stops_at_the_goroutine_stack_edge)
{
    /* Find a goroutine whose stack lies right under another's: the page
     * above the first one's top is then the second one's guard, which a
     * load faults on, and a link to it is within the walk's old reach. */
    static struct stack_probe sp = { .chosen = -1 };
    sp.ready = sp.go = sp.done = (goc_wg)GOC_WG_INIT;
    ASSERT_OK(goc_wg_add(&sp.go, 1));
    ASSERT_OK(goc_wg_add(&sp.done, PROBE_GS));
    for (int i = 0; i < PROBE_GS; i++) {
        ASSERT_OK(goc_wg_add(&sp.ready, 1));
        ASSERT_OK(goc_go(stack_prober, &sp));
        ASSERT_OK(goc_wg_wait(&sp.ready, NULL));
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (int a = 0; a < PROBE_GS && atomic_load(&sp.chosen) < 0; a++) {
        uintptr_t top = (uintptr_t)sp.g[a]->stack_base + sp.g[a]->stack_size;
        for (int b = 0; b < PROBE_GS; b++) {
            if ((uintptr_t)sp.g[b]->stack_base != top)
                continue;
            /* A canary guard is readable: make it fault (it is never
             * touched, being the guard). */
            if (sp.g[b]->guard == GOC__GUARD_CANARY)
                ASSERT_OK(mprotect((void *)top, page, PROT_NONE));
            sp.link = top;
            atomic_store(&sp.chosen, a);
            break;
        }
    }
    if (atomic_load(&sp.chosen) < 0)
        printf("# skipped: no two stacks side by side\n");
    goc_wg_done(&sp.go);
    ASSERT_OK(goc_wg_wait(&sp.done, NULL));
}

/* The thread's stack, with a page of no access right above it. */
#define BOGUS_THREAD_STACK (256 * 1024)

static void *bogus_thread(void *arg)
{
    struct bogus_frame b;
    panic_through(&b, (uintptr_t)arg);
    return NULL;
}

TEST(panic, backtrace_stops_at_the_thread_stack_edge)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, BOGUS_THREAD_STACK + page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT(m != MAP_FAILED);
    ASSERT_OK(mprotect(m + BOGUS_THREAD_STACK, page, PROT_NONE));
    pthread_attr_t a;
    ASSERT_OK(pthread_attr_init(&a));
    ASSERT_OK(pthread_attr_setstack(&a, m, BOGUS_THREAD_STACK));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, &a, bogus_thread, m + BOGUS_THREAD_STACK));
    ASSERT_OK(pthread_join(t, NULL));
    pthread_attr_destroy(&a);
    munmap(m, BOGUS_THREAD_STACK + page);
}
#endif

static void leaked_for_quit(void *arg)
{
    goc_chan_recv(arg, NULL, NULL);
}

/* ---- faults -------------------------------------------------------------- */

static void null_deref(void *arg)
{
    volatile int *p = arg; /* NULL */
    *p = 1;
}

static int null_main(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .name = "careless" };
    goc_go_ex(null_deref, NULL, &o);
    goc_sleep(5 * GOC_SECOND, NULL);
    return 0;
}

static void null_child(void)
{
    goc_run(null_main, NULL);
}

TEST(panic, null_dereference_is_reported)
{
    if (test_instrumented()) {
        /* The sanitizers and valgrind take SIGSEGV for their own report. */
        printf("# skipped under a sanitizer or valgrind\n");
        return;
    }
    test_expect_exit(null_child, 2, "unexpected signal SIGSEGV");
    test_expect_exit(null_child, 2, "goroutine 2 \"careless\" [running]");
    test_expect_exit(null_child, 2, "addr=(nil)");
    test_expect_exit(null_child, 2, "null_deref+");
}

/* A function with a name of about 4,900 characters (C++ templates come
 * close): one frame of it overran the fault report's buffer, and the
 * report came out empty. */
#define CAT_(a, b) a##b
#define CAT(a, b)  CAT_(a, b)
#define TWICE(x)   CAT(x, x)
#define X16(x)     TWICE(TWICE(TWICE(TWICE(x))))
#define LONG_NAME  X16(X16(a_rather_long_name_))

__attribute__((noinline)) static void LONG_NAME(int depth)
{
    if (depth > 0) {
        LONG_NAME(depth - 1);
        __asm__ volatile(""); /* not a tail call: keep every frame */
    } else {
        volatile int *p = NULL;
        *p = 1;
    }
}

static void deep_long_names(void *arg)
{
    (void)arg;
    LONG_NAME(8);
}

static int long_names_main(void *arg)
{
    (void)arg;
    goc_go(deep_long_names, NULL);
    goc_sleep(5 * GOC_SECOND, NULL);
    return 0;
}

static void long_names_child(void)
{
    goc_run(long_names_main, NULL);
}

TEST(panic, fault_report_survives_long_symbols)
{
    if (test_instrumented()) {
        printf("# skipped under a sanitizer or valgrind\n");
        return;
    }
    test_expect_exit(long_names_child, 2, "unexpected signal SIGSEGV");
    test_expect_exit(long_names_child, 2, "a_rather_long_name_a_rather");
}

static int quit_main(void *arg)
{
    (void)arg;
    goc_dump_on_sigquit(true);
    goc_chan *ch;
    goc_chan_new(0, 0, &ch);
    struct goc_go_opts o = { .name = "stuck" };
    goc_go_ex(leaked_for_quit, ch, &o);
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    kill(getpid(), SIGQUIT);
    goc_sleep(5 * GOC_SECOND, NULL);
    return 0;
}

static void quit_child(void)
{
    goc_run(quit_main, NULL);
}

TEST(panic, sigquit_dumps_every_goroutine)
{
    test_expect_exit(quit_child, 2, "SIGQUIT: quit");
    test_expect_exit(quit_child, 2, "\"stuck\" [chan receive");
}

/* ---- the recovery handler --------------------------------------------------
 */

struct seen {
    _Atomic int calls;
    bool panic_in_callback;
};

static void on_panic(const struct goc_panic_record *r, void *arg)
{
    struct seen *s = arg;
    atomic_fetch_add(&s->calls, 1);
    ASSERT(r->message[0] == 'b');
    if (s->panic_in_callback)
        goc_panic(0, "callback panics");
}

TEST_G(panic, recovery_ring_wraps_and_counts)
{
    struct seen s = { 0 };
    goc_recovery *h;
    ASSERT_EQ(goc_recovery_new(0, NULL, NULL, &h), -EINVAL);
    ASSERT_OK(goc_recovery_new(3, on_panic, &s, &h));
    for (int i = 0; i < 5; i++)
        ASSERT_EQ(goc_recovery_run(h, panics, &i), GOC_EPANIC);
    ASSERT_EQ(goc_recovery_run(h, returns_7, NULL), 7);
    int64_t over;
    ASSERT_EQ(goc_recovery_count(h, &over), 5);
    ASSERT_EQ(over, 2);
    struct goc_panic_record r[5];
    ASSERT_EQ(goc_recovery_records(h, r, 5), 3);
    ASSERT_STR(r[0].message, "boom 2"); /* oldest kept first */
    ASSERT_STR(r[2].message, "boom 4");
    ASSERT_EQ(r[2].goroutine, goc_id());
    ASSERT_NE(r[2].thread, 0);
    ASSERT_EQ(r[2].code, -EIO);
    ASSERT(strstr(r[2].backtrace, "panics") != NULL);
    ASSERT_EQ(atomic_load(&s.calls), 5);
    /* A callback that panics is caught, counted, and not recursed into
     * (on_panic would fail on its message); its panic is recorded after
     * the one it was told of, flagged as the callback's. */
    s.panic_in_callback = true;
    int v = 9;
    ASSERT_EQ(goc_recovery_run(h, panics, &v), GOC_EPANIC);
    ASSERT_EQ(goc_recovery_callback_panics(h), 1);
    ASSERT_EQ(goc_recovery_count(h, NULL), 7);
    ASSERT_EQ(goc_recovery_records(h, r, 5), 3);
    ASSERT_STR(r[1].message, "boom 9");
    ASSERT(!r[1].from_callback);
    ASSERT_STR(r[2].message, "callback panics");
    ASSERT(r[2].from_callback);
    ASSERT(strstr(r[2].backtrace, "on_panic") != NULL);
    ASSERT_EQ(atomic_load(&s.calls), 6);
    goc_recovery_free(h);
}

static int panics_nil(void *arg)
{
    (void)arg;
    goc_panic(0, NULL); /* Go's panic(nil): still a panic */
}

static int rethrows(void *arg)
{
    int v = 1;
    return goc_recovery_run(arg, panics, &v);
}

TEST_G(panic, nil_panic_and_rethrow_policy)
{
    goc_panic_info *p;
    ASSERT_EQ(goc_try(panics_nil, NULL, &p), GOC_EPANIC);
    ASSERT_STR(goc_panic_info_message(p), "");
    goc_panic_info_free(p);
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &h));
    ASSERT_EQ(goc_recovery_set_policy(h, 7), -EINVAL);
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_RETHROW));
    /* Recorded, then thrown on to the outer goc_try. */
    ASSERT_EQ(goc_try(rethrows, h, &p), GOC_EPANIC);
    ASSERT_STR(goc_panic_info_message(p), "boom 1");
    ASSERT_EQ(goc_panic_info_code(p), -EIO);
    goc_panic_info_free(p);
    ASSERT_EQ(goc_recovery_count(h, NULL), 1);
    goc_recovery_free(h);
}

static char long_msg[300];

static int panics_long(void *arg)
{
    (void)arg;
    goc_panic(-EIO, "%s", long_msg);
}

static int rethrows_long(void *arg)
{
    return goc_recovery_run(arg, panics_long, NULL);
}

/* The record's message is clipped; the panic thrown on is not. */
TEST_G(panic, rethrow_keeps_the_whole_message_and_backtrace)
{
    memset(long_msg, 'm', sizeof(long_msg) - 1);
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(1, NULL, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_RETHROW));
    goc_panic_info *p;
    ASSERT_EQ(goc_try(rethrows_long, h, &p), GOC_EPANIC);
    ASSERT_STR(goc_panic_info_message(p), long_msg);
    ASSERT_EQ(goc_panic_info_code(p), -EIO);
    char text[4096];
    goc_panic_info_format(p, text, sizeof(text));
    ASSERT(strstr(text, "panics_long") != NULL); /* where it was raised */
    goc_panic_info_free(p);
    struct goc_panic_record r;
    ASSERT_EQ(goc_recovery_records(h, &r, 1), 1);
    ASSERT_EQ(strlen(r.message), sizeof(r.message) - 1);
    goc_recovery_free(h);
}

static int panics_with_frame_text(void *arg)
{
    (void)arg;
    goc_panic(0, "lookup m[k]:\nkey not found"); /* "]:\n" as a header ends */
}

static char huge_msg[5000];

static int panics_huge(void *arg)
{
    (void)arg;
    goc_panic(0, "%s", huge_msg);
}

/* A record's backtrace holds frames only, starting with the panicking
 * function, whatever the message: it was cut out of the formatted text
 * after the first "]:\n", so a message holding one put its tail there,
 * and one longer than that text's 4 KB buffer left it empty. */
TEST_G(panic, recovery_backtrace_ignores_the_message)
{
    memset(huge_msg, 'x', sizeof(huge_msg) - 1);
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(2, NULL, NULL, &h));
    ASSERT_EQ(goc_recovery_run(h, panics_with_frame_text, NULL), GOC_EPANIC);
    ASSERT_EQ(goc_recovery_run(h, panics_huge, NULL), GOC_EPANIC);
    struct goc_panic_record r[2];
    ASSERT_EQ(goc_recovery_records(h, r, 2), 2);
    const char *fn[] = { "panics_with_frame_text", "panics_huge" };
    for (int i = 0; i < 2; i++) {
        const char *bt = r[i].backtrace;
        if (bt[0] != '\t' || !strstr(bt, fn[i]) ||
            strstr(bt, "key not found") || strstr(bt, "xxx"))
            ASSERT_FAIL("record %d's backtrace: [%s]", i, bt);
        /* The first frame is the panicking function's. */
        ASSERT(strncmp(bt + 1, fn[i], strlen(fn[i])) == 0);
    }
    goc_recovery_free(h);
}

static int returns_epanic(void *arg)
{
    (void)arg;
    return GOC_EPANIC;
}

static int run_returns_epanic(void *arg)
{
    return goc_recovery_run(arg, returns_epanic, NULL);
}

/* goc_try() gives GOC_EPANIC with no info when the task merely returned
 * that code: RETHROW once turned it into a panic with an empty message. */
TEST_G(panic, rethrow_leaves_a_returned_epanic_alone)
{
    goc_recovery *h;
    ASSERT_OK(goc_recovery_new(4, NULL, NULL, &h));
    ASSERT_OK(goc_recovery_set_policy(h, GOC_RECOVER_RETHROW));
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(run_returns_epanic, h, &p), GOC_EPANIC);
    ASSERT(p == NULL); /* returned, not thrown */
    ASSERT_EQ(goc_recovery_count(h, NULL), 0);
    goc_recovery_free(h);
}

static void cleanup_panics(void *arg)
{
    goc_panic(-2, "after %s", (const char *)arg);
}

static int panics_out_of_memory(void *arg)
{
    ASSERT_OK(goc_defer(cleanup_panics, arg));
    goc__fault_after(0); /* from here on every allocation fails */
    goc_panic(-1, "%s", (const char *)arg);
}

/* A panic, and one in its cleanup, both made without memory. */
static goc_panic_info *oom_panic(const char *msg)
{
    goc_panic_info *p;
    int rc = goc_try(panics_out_of_memory, (void *)msg, &p);
    goc__fault_after(-1);
    ASSERT_EQ(rc, GOC_EPANIC);
    return p;
}

static void expect_chain(goc_panic_info *p, const char *first)
{
    char text[2048], want[128];
    goc_panic_info_format(p, text, sizeof(text));
    snprintf(want, sizeof(want), "panic: after %s [", first);
    ASSERT(strstr(text, want) != NULL);
    snprintf(want, sizeof(want), "cleanups after panic: %s)\n", first);
    ASSERT(strstr(text, want) != NULL);
}

/* In a child: a chain that loops would make format and free spin. */
static void oom_chains_format_and_free(void)
{
    alarm(10);
    goc_panic_info *held = oom_panic("one");
    goc_panic_info *p = oom_panic("two");
    expect_chain(held, "one");
    expect_chain(p, "two");
    goc_panic_info_free(held);
    goc_panic_info_free(p);
    fprintf(stderr, "both freed\n");
}

/* In a child: every spare held, the next one cannot be reused. */
static void oom_with_every_spare_held(void)
{
    for (int i = 0; i < 4; i++)
        oom_panic("held"); /* two spares each, never freed */
    oom_panic("five");
}

/* Out of memory, a panic's info is a spare: a cleanup that panics during
 * it, or a later panic while it is held, must get another one. */
TEST(panic, out_of_memory_panics_never_share_an_info)
{
    goc_panic_info *held = oom_panic("one");
    goc_panic_info *p = oom_panic("two");
    ASSERT_STR(goc_panic_info_message(held), "after one"); /* kept */
    ASSERT_STR(goc_panic_info_message(p), "after two");
    goc_panic_info_free(p);
    goc_panic_info_free(held);
    test_expect_exit(oom_chains_format_and_free, 0, "both freed");
    test_expect_exit(oom_with_every_spare_held, 2,
                     "out of memory while panicking (code -1): five");
}

/* ---- dumps ------------------------------------------------------------------
 */

struct parked {
    goc_chan *never;
    goc_mutex mu;
    goc_wg wg_never, started;
    goc_fd *rd, *wr;
};

static _Atomic int recv_result = 99;

static void on_chan(void *arg)
{
    struct parked *p = arg;
    goc_wg_done(&p->started);
    /* Not a tail call: on_chan's own frame stays for the backtrace. */
    atomic_store(&recv_result, goc_chan_recv(p->never, NULL, NULL));
}

static void on_mutex(void *arg)
{
    struct parked *p = arg;
    goc_wg_done(&p->started);
    goc_mutex_lock(&p->mu, NULL);
    goc_mutex_unlock(&p->mu);
}

static void on_io(void *arg)
{
    struct parked *p = arg;
    char c;
    goc_wg_done(&p->started);
    goc_fd_read(p->rd, &c, 1, NULL);
}

static void on_sleep(void *arg)
{
    struct parked *p = arg;
    goc_wg_done(&p->started);
    goc_sleep(300 * GOC_MILLISECOND, NULL);
}

TEST_G(panic, dump_names_every_wait)
{
    struct parked p = { .started = GOC_WG_INIT };
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &p.never));
    int fds[2];
    ASSERT_OK(pipe(fds));
    ASSERT_OK(goc_fd_open(fds[0], &p.rd));
    ASSERT_OK(goc_fd_open(fds[1], &p.wr));
    goc_mutex_lock(&p.mu, NULL);
    void (*fns[])(void *) = { on_chan, on_mutex, on_io, on_sleep };
    const char *names[] = { "waits-chan", "waits-mutex", "waits-io",
                            "waits-sleep" };
    goc_wg_add(&p.started, 4);
    for (int i = 0; i < 4; i++) {
        struct goc_go_opts o = { .name = names[i] };
        ASSERT_OK(goc_go_ex(fns[i], &p, &o));
    }
    goc_wg_wait(&p.started, NULL);
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    char path[] = "/tmp/goc-dump-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    ASSERT_GE(goc_dump(fd), 5);
    char text[16384];
    ssize_t n = pread(fd, text, sizeof(text) - 1, 0);
    ASSERT_GT(n, 0);
    text[n] = '\0';
    close(fd);
    ASSERT(strstr(text, "\"waits-chan\" [chan receive") != NULL);
    ASSERT(strstr(text, "\"waits-mutex\" [mutex") != NULL);
    ASSERT(strstr(text, "\"waits-io\" [io wait") != NULL);
    ASSERT(strstr(text, "\"waits-sleep\" [sleep") != NULL);
    ASSERT(strstr(text, "\"main\" [running]") != NULL);
    /* A parked goroutine's backtrace, from its saved context up to its
     * entry (its own frame may be folded away by the compiler). */
    const char *chan = strstr(text, "\"waits-chan\"");
    const char *bt = chan ? strstr(chan, "goc__wait_block") : NULL;
    if (!bt || !strstr(bt, "g_entry"))
        ASSERT_FAIL("no backtrace of a parked goroutine in:\n%s", text);
    ASSERT(strstr(text, "created by") != NULL);
    /* Release everyone. */
    goc_chan_close(p.never);
    goc_mutex_unlock(&p.mu);
    ASSERT_EQ(goc_fd_write(p.wr, "x", 1, NULL), 1);
    ASSERT_OK(goc_leakcheck(0, 5 * GOC_SECOND));
    goc_fd_close(p.rd);
    goc_fd_close(p.wr);
    goc_chan_release(p.never);
}

/* ---- leak check
 * ---------------------------------------------------------------- */

static void leaked(void *arg)
{
    goc_chan_recv(arg, NULL, NULL);
}

TEST_G(panic, leakcheck_finds_a_leak_then_passes)
{
    goc_chan *ch;
    ASSERT_OK(goc_chan_new(0, 0, &ch));
    ASSERT_OK(goc_go(leaked, ch));
    ASSERT_EQ(goc_leakcheck(0, 30 * GOC_MILLISECOND), -ETIMEDOUT);
    goc_chan_close(ch);
    ASSERT_OK(goc_leakcheck(0, 5 * GOC_SECOND));
    goc_chan_release(ch);
}

/* ---- deadlocks --------------------------------------------------------------
 */

static int recv_forever(void *arg)
{
    (void)arg;
    goc_chan *ch;
    goc_chan_new(sizeof(int), 0, &ch);
    int v;
    goc_chan_recv(ch, &v, NULL);
    return 0;
}

static int wg_forever(void *arg)
{
    (void)arg;
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 1);
    goc_wg_wait(&wg, NULL);
    return 0;
}

static int lock_twice(void *arg)
{
    (void)arg;
    goc_mutex mu = GOC_MUTEX_INIT;
    goc_mutex_lock(&mu, NULL);
    goc_mutex_lock(&mu, NULL);
    return 0;
}

static void deadlock_recv(void)
{
    goc_run(recv_forever, NULL);
}

static void deadlock_wg(void)
{
    goc_run(wg_forever, NULL);
}

static void deadlock_mutex(void)
{
    goc_run(lock_twice, NULL);
}

/* Threads in this process now (from /proc). */
static int threads_now(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

TEST(panic, deadlocks_are_reported)
{
    if (threads_now() != 1) {
        /* TSan or an emulator runs threads of its own, which the check
         * cannot tell from threads that might still wake someone: it
         * stays quiet, as it should. */
        printf("# skipped: this process has threads besides its own\n");
        return;
    }
    const char *msg = "fatal error: all goroutines are asleep - deadlock!";
    test_expect_exit(deadlock_recv, 2, msg);
    test_expect_exit(deadlock_recv, 2, "[chan receive");
    test_expect_exit(deadlock_wg, 2, "[waitgroup");
    test_expect_exit(deadlock_mutex, 2, "[mutex");
}

/* A deadlock found while a CPU profile runs: its writer thread is goc's
 * own, so it must not make the check think that another thread may still
 * wake someone. The alarm turns a hang into a failure. */
static int recv_forever_profiled(void *arg)
{
    (void)arg;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    struct goc_prof_cpu_opts o = { .fd = fd };
    if (fd < 0 || goc_prof_cpu_start_opts(&o) != 0)
        _exit(3);
    return recv_forever(NULL);
}

static void deadlock_recv_profiled(void)
{
    alarm(10);
    goc_run(recv_forever_profiled, NULL);
}

TEST(panic, deadlock_is_reported_while_a_cpu_profile_runs)
{
    if (threads_now() != 1) {
        printf("# skipped: this process has threads besides its own\n");
        return;
    }
    test_expect_exit(deadlock_recv_profiled, 2,
                     "fatal error: all goroutines are asleep - deadlock!");
}

/* Not a deadlock: a blocking call in flight will write the pipe the main
 * goroutine reads (an I/O wait), after a timer-free pause. */
static int late_write(void *arg)
{
    usleep(100 * 1000);
    return write(*(int *)arg, "z", 1) == 1 ? 0 : -EIO;
}

struct late {
    int wfd;
    int result;
};

static void blocking_writer(void *arg)
{
    struct late *l = arg;
    l->result = goc_blocking(late_write, &l->wfd, NULL);
}

TEST_G(panic, no_deadlock_while_io_or_blocking_call_pending)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    goc_fd *rd;
    ASSERT_OK(goc_fd_open(fds[0], &rd));
    struct late l = { .wfd = fds[1] };
    ASSERT_OK(goc_go(blocking_writer, &l));
    char c;
    ASSERT_EQ(goc_fd_read(rd, &c, 1, NULL), 1);
    ASSERT_OK(goc_leakcheck(0, 5 * GOC_SECOND));
    ASSERT_OK(l.result);
    goc_fd_close(rd);
    close(fds[1]);
}

TEST_G(panic, no_deadlock_while_a_timer_is_pending)
{
    /* Everyone asleep but a timer will wake the main goroutine. */
    ASSERT_OK(goc_sleep(100 * GOC_MILLISECOND, NULL));
}

/* ---- the gdb extension ------------------------------------------------------
 */

static void parked_for_gdb(void *arg)
{
    goc_chan_recv(arg, NULL, NULL);
}

static int gdb_child_main(void *arg)
{
    (void)arg;
    goc_chan *ch;
    goc_chan_new(0, 0, &ch);
    struct goc_go_opts o = { .name = "parked-for-gdb" };
    goc_go_ex(parked_for_gdb, ch, &o);
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    abort(); /* a core file, written by the kernel */
}

TEST(panic, gdb_lists_goroutines_of_a_core)
{
    if (test_instrumented() || system("command -v gdb >/dev/null 2>&1") != 0) {
        printf("# skipped: no gdb, or an instrumented build\n");
        return;
    }
    char dir[] = "/tmp/goc-core-XXXXXX";
    ASSERT(mkdtemp(dir) != NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
        setrlimit(RLIMIT_CORE, &unlimited);
        if (chdir(dir) != 0)
            _exit(1);
        goc_run(gdb_child_main, NULL);
        _exit(0);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    char core[128], cmd[2048], exe[512];
    snprintf(core, sizeof(core), "%s/core", dir);
    if (access(core, R_OK) != 0) {
        snprintf(core, sizeof(core), "%s/core.%d", dir, (int)pid);
        if (access(core, R_OK) != 0) {
            /* core_pattern sends cores elsewhere (a crash collector). */
            printf("# skipped: the kernel wrote no core file here\n");
            rmdir(dir);
            return;
        }
    }
    ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    ASSERT_GT(len, 0);
    exe[len] = '\0';
    snprintf(cmd, sizeof(cmd),
             "gdb -batch -nx -x %s/tools/goc-gdb.py -ex 'info goroutines' "
             "-ex 'goroutine 2 bt' %s %s >%s/out 2>&1",
             GOC_SOURCE_DIR, exe, core, dir);
    int rc = system(cmd);
    char text[16384] = "", out[160];
    snprintf(out, sizeof(out), "%s/out", dir);
    FILE *f = fopen(out, "r");
    ASSERT(f != NULL);
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(out);
    unlink(core);
    rmdir(dir);
    if (!strstr(text, "goroutine 2 \"parked-for-gdb\" [chan receive]") ||
        !strstr(text, "goroutine 1 \"main\" [running]") ||
        !strstr(text, "goc__wait_block") || !strstr(text, "g_entry"))
        ASSERT_FAIL("gdb said (rc %d):\n%s", rc, text);
}

/* ---- panics in pool tasks, futures and groups -------------------------------
 */

static _Atomic int tasks_ok;

static int pool_task(void *arg)
{
    if ((intptr_t)arg % 3 == 0)
        goc_panic(-EIO, "task %d panics", (int)(intptr_t)arg);
    atomic_fetch_add(&tasks_ok, 1);
    return 0;
}

static int future_task(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    *result = arg; /* set, then panic: the value must not escape */
    if ((intptr_t)arg == 1)
        goc_panic(0, "future panics");
    return 0;
}

static int group_task(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    if ((intptr_t)arg == 2)
        goc_panic(0, "group member panics");
    return 0;
}

static _Atomic int panic_reports;

/* Counts the panic reports (a slow run may log other things too). */
static void quiet(const char *msg, void *arg)
{
    (void)arg;
    if (strstr(msg, "a task panicked"))
        atomic_fetch_add(&panic_reports, 1);
}

TEST_G(panic, a_task_panic_fails_that_task_alone)
{
    goc_set_log_hook(quiet, NULL);
    /* Goroutine pool: one worker, so the same worker survives panics. */
    struct goc_pool_config pc = { .capacity = 1 };
    goc_pool *pool;
    ASSERT_OK(goc_pool_new(&pc, &pool));
    for (intptr_t i = 1; i <= 9; i++)
        ASSERT_OK(goc_pool_submit(pool, pool_task, (void *)i, NULL));
    ASSERT_OK(goc_pool_release_timeout(pool, 5 * GOC_SECOND));
    struct goc_pool_stats ps;
    goc_pool_stats(pool, &ps);
    ASSERT_EQ(ps.completed, 9);
    ASSERT_EQ(ps.failed, 3);
    ASSERT_EQ(atomic_load(&tasks_ok), 6);
    goc_pool_free(pool);
    /* Worker pool: the panicking task's handle says GOC_EPANIC. */
    struct goc_workerpool_config wc = { .max_workers = 1 };
    goc_workerpool *wp;
    ASSERT_OK(goc_workerpool_new(&wc, &wp));
    goc_future *t[3];
    for (intptr_t i = 0; i < 3; i++)
        ASSERT_OK(goc_workerpool_submit(wp, future_task, (void *)i, NULL, &t[i],
                                        NULL));
    for (int i = 0; i < 3; i++) {
        int st;
        void *v;
        ASSERT_OK(goc_future_get(t[i], &st, &v, NULL));
        ASSERT_EQ(st, i == 1 ? GOC_EPANIC : 0);
        ASSERT(i == 1 ? v == NULL : v == (void *)(intptr_t)i);
        goc_future_release(t[i]);
    }
    goc_workerpool_free(wp);
    /* Futures. */
    goc_future *f;
    ASSERT_OK(goc_future_async(future_task, (void *)1, NULL, NULL, &f));
    int st;
    ASSERT_OK(goc_future_get(f, &st, NULL, NULL));
    ASSERT_EQ(st, GOC_EPANIC);
    goc_future_release(f);
    /* errgroup: the panic is the group's first error. */
    goc_group *g;
    ASSERT_OK(goc_group_new(NULL, &g));
    for (intptr_t i = 0; i < 4; i++)
        ASSERT_OK(goc_group_go(g, group_task, (void *)i, NULL));
    ASSERT_EQ(goc_group_wait(g, NULL), GOC_EPANIC);
    goc_group_free(g);
    goc_set_log_hook(NULL, NULL);
    /* 3 pool tasks, 1 worker-pool task, 1 future, 1 group member. */
    ASSERT_EQ(atomic_load(&panic_reports), 6);
}

/* ---- symbol names under concurrency ------------------------------------ */

#define NAMERS 4

__attribute__((noinline)) static int local_function(int x)
{
    __asm__ volatile("" : "+r"(x));
    return x + 1;
}

static pthread_barrier_t namers_ready;

/* Names a static function (only .symtab knows it) over and over. */
static void *name_local_function(void *arg)
{
    _Atomic int *misses = arg;
    char name[128];
    pthread_barrier_wait(&namers_ready);
    for (int i = 0; i < 2000; i++) {
        goc__symbolize((char *)(uintptr_t)local_function + 1, name,
                       sizeof(name));
        if (strncmp(name, "local_function+", 15) != 0)
            atomic_fetch_add(misses, 1);
    }
    return NULL;
}

/* Threads naming frames at once, the first of them loading the symbol
 * table meanwhile, all get the name: a busy cache used to give up and
 * print a raw address. */
TEST(panic, backtraces_name_static_functions_under_concurrency)
{
    ASSERT_EQ(local_function(1), 2);
    static _Atomic int misses;
    pthread_t t[NAMERS];
    ASSERT_OK(pthread_barrier_init(&namers_ready, NULL, NAMERS));
    for (int i = 0; i < NAMERS; i++)
        ASSERT_OK(pthread_create(&t[i], NULL, name_local_function, &misses));
    for (int i = 0; i < NAMERS; i++)
        test_join(t[i], NULL);
    pthread_barrier_destroy(&namers_ready);
    int missed = atomic_load(&misses);
    ASSERT_EQ(missed, 0);
}

static int value_then_epanic(goc_ctx *ctx, void *arg, void **result)
{
    (void)ctx;
    *result = arg; /* a rejection may carry a value */
    return GOC_EPANIC;
}

static int then_value_then_epanic(const void *value, void *arg, void **result)
{
    (void)value;
    *result = arg;
    return GOC_EPANIC;
}

static int group_returns_epanic(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    return GOC_EPANIC;
}

static _Atomic int values_freed;

static void count_free(void *v)
{
    (void)v;
    atomic_fetch_add(&values_freed, 1);
}

static void expect_rejected_with(goc_future *f, void *want)
{
    int st;
    void *v;
    ASSERT_OK(goc_future_get(f, &st, &v, NULL));
    ASSERT_EQ(st, GOC_EPANIC);
    ASSERT(v == want); /* kept, so its destructor runs */
}

/* Only a real panic is reported and drops the task's value: returning
 * GOC_EPANIC is the task's own outcome. */
TEST_G(panic, a_task_returning_epanic_is_not_a_panic)
{
    static int x, y;
    atomic_store(&panic_reports, 0);
    atomic_store(&values_freed, 0);
    goc_set_log_hook(quiet, NULL);
    goc_future *f, *g;
    ASSERT_OK(goc_future_async(value_then_epanic, &x, count_free, NULL, &f));
    expect_rejected_with(f, &x);
    ASSERT_OK(goc_future_new(NULL, &g));
    ASSERT_EQ(goc_future_complete(g, 0, NULL), 1);
    goc_future *t;
    ASSERT_OK(goc_future_then(g, then_value_then_epanic, &y, count_free, &t));
    expect_rejected_with(t, &y);
    goc_future_release(t);
    goc_future_release(g);
    goc_future_release(f);
    /* The async task's goroutine may hold f a moment longer, after it
     * settled it: the last reference frees the value. */
    int64_t end = goc_now() + 5 * GOC_SECOND;
    while (atomic_load(&values_freed) < 2 && goc_now() < end)
        goc_sleep(GOC_MILLISECOND, NULL);
    int freed = atomic_load(&values_freed);
    ASSERT_EQ(freed, 2);
    goc_group *gr;
    ASSERT_OK(goc_group_new(NULL, &gr));
    ASSERT_OK(goc_group_go(gr, group_returns_epanic, NULL, NULL));
    ASSERT_EQ(goc_group_wait(gr, NULL), GOC_EPANIC);
    goc_group_free(gr);
    goc_set_log_hook(NULL, NULL);
    ASSERT_EQ(atomic_load(&panic_reports), 0);
}

/* ---- the end of a process ------------------------------------------- */

static void raises_a_fault(void *arg)
{
    (void)arg;
    raise(SIGSEGV);
    static const char msg[] = "went on after the fatal signal\n";
    ssize_t w = write(2, msg, sizeof(msg) - 1);
    (void)w;
    _exit(0);
}

static int raise_main(void *arg)
{
    (void)arg;
    ASSERT_OK(goc_go(raises_a_fault, NULL));
    goc_sleep(10 * GOC_SECOND, NULL);
    return 0;
}

static void crash_mode_child(void)
{
    setenv("GOC_TRACEBACK", "crash", 1);
    goc_run(raise_main, NULL);
}

/* GOC_TRACEBACK=crash ends by the signal, for a core, by letting the
 * fault come again; a fault signal sent (raise, kill) never comes again,
 * and the process went on after its report. */
TEST(panic, crash_traceback_ends_by_a_sent_fault_signal_too)
{
    test_expect_signal(crash_mode_child, SIGSEGV, "unexpected signal");
}

static int panics_in_thrower(void *arg)
{
    (void)arg;
    goc_panic(-EIO, "thrown");
}

/* Whether a panic caught on this thread has frames. */
static bool backtrace_has_frames(void)
{
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(panics_in_thrower, NULL, &p), GOC_EPANIC);
    char text[4096];
    goc_panic_info_format(p, text, sizeof(text));
    goc_panic_info_free(p);
    return strstr(text, "panics_in_thrower") != NULL;
}

static void *thread_out_of_descriptors(void *arg)
{
    bool *had_frames = arg;
    /* Out of descriptors, the lookup of this thread's stack fails... */
    struct rlimit old, none;
    ASSERT_OK(getrlimit(RLIMIT_NOFILE, &old));
    int fd = dup(0);
    ASSERT(fd >= 0);
    none = (struct rlimit){ (rlim_t)fd, old.rlim_max };
    close(fd);
    int spare[64], n = 0;
    while (n < 64 && (spare[n] = dup(0)) >= 0)
        n++;
    ASSERT_OK(setrlimit(RLIMIT_NOFILE, &none));
    (void)backtrace_has_frames();
    ASSERT_OK(setrlimit(RLIMIT_NOFILE, &old));
    while (n > 0)
        close(spare[--n]);
    /* ...and once they are back, it must be looked up again. */
    *had_frames = backtrace_has_frames();
    return NULL;
}

static void main_thread_out_of_descriptors(void)
{
    bool had_frames = false;
    thread_out_of_descriptors(&had_frames);
    if (!had_frames)
        _exit(1);
}

/* A failed lookup of a thread's stack was kept for the thread's life:
 * every later backtrace on it was empty. The main thread's lookup reads
 * /proc, so it fails when descriptors run out. */
TEST(panic, thread_stack_lookup_failing_once_is_tried_again)
{
    if (test_under_valgrind()) {
        /* valgrind keeps descriptors of its own above the limit a
         * program sets, and answers the lookup otherwise. */
        printf("# skipped under valgrind\n");
        return;
    }
    test_expect_exit(main_thread_out_of_descriptors, 0, "");
}

static void panics_with_little_stack(void *arg)
{
    (void)arg;
    volatile char pad[6 * 1024];
    pad[0] = 1;
    pad[sizeof(pad) - 1] = 1;
    goc_panic(-EIO, "shallow %d", pad[0]);
}

static int small_stack_main(void *arg)
{
    (void)arg;
    struct goc_go_opts o = { .stack_size = GOC_STACK_MIN };
    ASSERT_OK(goc_go_ex(panics_with_little_stack, NULL, &o));
    goc_sleep(10 * GOC_SECOND, NULL);
    return 0;
}

static void small_stack_child(void)
{
    goc_run(small_stack_main, NULL);
}

/* The report of an unrecovered panic ran on the panicking goroutine's
 * stack: on a small one nearly used up, the report itself overflowed it
 * (in plain builds once its text was there too, under a sanitizer with
 * this much left), and the panic was reported as a stack overflow. */
TEST(panic, unrecovered_panic_on_a_small_stack_is_reported_as_itself)
{
    test_expect_exit(small_stack_child, 2, "panic: shallow 1");
}

/* ---- NULL objects in calls with no error code --------------------------- */

enum null_call {
    NULL_COUNTER_INC,
    NULL_GAUGE_SET,
    NULL_HISTOGRAM_OBSERVE,
    NULL_BREAKER_STATE,
    NULL_LIMITER_LIMIT,
    NULL_BACKOFF_NEXT,
    NULL_COND_SIGNAL,
    NULL_CTX_INIT,
    NULL_CALLS
};

static const char *const null_call_name[NULL_CALLS] = {
    "goc_counter_inc",       "goc_gauge_set",         "goc_histogram_observe",
    "goc_breaker_state_now", "goc_limiter_limit",     "goc_backoff_next",
    "goc_cond_signal",       "goc_ctx_init_deadline",
};

static int call_with_null(void *arg)
{
    switch (*(enum null_call *)arg) {
    case NULL_COUNTER_INC:
        goc_counter_inc(NULL);
        break;
    case NULL_GAUGE_SET:
        goc_gauge_set(NULL, 1);
        break;
    case NULL_HISTOGRAM_OBSERVE:
        goc_histogram_observe(NULL, 1);
        break;
    case NULL_BREAKER_STATE:
        goc_breaker_state_now(NULL);
        break;
    case NULL_LIMITER_LIMIT:
        goc_limiter_limit(NULL);
        break;
    case NULL_BACKOFF_NEXT:
        goc_backoff_next(NULL);
        break;
    case NULL_COND_SIGNAL:
        goc_cond_signal(NULL);
        break;
    default:
        goc_ctx_init_timeout(NULL, NULL, GOC_SECOND);
        break;
    }
    return 0;
}

/* A NULL object given to a call that has no error code to return is a
 * panic naming the call, which goc_try() recovers (they crashed on it);
 * calls with a code or a bool refuse it instead. */
TEST_G(panic, null_object_without_an_error_code_panics_naming_the_call)
{
    for (int i = 0; i < NULL_CALLS; i++) {
        enum null_call c = (enum null_call)i;
        goc_panic_info *p = NULL;
        ASSERT_EQ(goc_try(call_with_null, &c, &p), GOC_EPANIC);
        ASSERT(p != NULL);
        ASSERT(strstr(goc_panic_info_message(p), null_call_name[i]));
        ASSERT_EQ(goc_panic_info_code(p), -EINVAL);
        goc_panic_info_free(p);
    }
    ASSERT(!goc_limiter_allow(NULL));
    ASSERT_EQ(goc_limiter_burst(NULL), -EINVAL);
    ASSERT(goc_breaker_name(NULL) == NULL);
    goc_backoff b;
    goc_backoff_constant(&b, -7); /* invalid: stops, never a negative wait */
    ASSERT_EQ(goc_backoff_next(&b), GOC_BACKOFF_STOP);
}

/* ---- GOC_ABORT_ON_MISUSE ------------------------------------------------ */

static int close_twice(void *arg)
{
    goc_chan *c = arg; /* the caller's: a panic here must not leak it */
    goc_chan_close(c);
    return goc_chan_close(c);
}

static int unlock_unlocked(void *arg)
{
    (void)arg;
    goc_mutex mu = GOC_MUTEX_INIT;
    return goc_mutex_unlock(&mu);
}

static int over_release(void *arg)
{
    (void)arg;
    goc_sem s;
    ASSERT_OK(goc_sem_init(&s, 1));
    return goc_sem_release(&s, 1);
}

static int misuse_main(void *arg)
{
    (void)arg;
    setenv("GOC_ABORT_ON_MISUSE", "1", 1);
    goc_wg wg = GOC_WG_INIT;
    goc_wg_done(&wg); /* a negative counter: Go panics */
    fprintf(stderr, "went on after the misuse\n");
    return 0;
}

static void misuse_child(void)
{
    goc_run(misuse_main, NULL);
}

/*
 * Misuse returns GOC_EMISUSE and changes nothing, unless
 * GOC_ABORT_ON_MISUSE=1: then it panics, naming the call, as Go does; a
 * goc_try() recovers it, and with none the process ends with the report.
 */
TEST_G(panic, abort_on_misuse_turns_misuse_into_a_panic)
{
    int (*const calls[])(void *) = { close_twice, unlock_unlocked,
                                     over_release };
    const char *const names[] = { "goc_chan_close", "goc_mutex_unlock",
                                  "goc_sem_release" };
    for (int i = 0; i < 3; i++) {
        goc_panic_info *p = NULL;
        goc_chan *c[2];
        ASSERT_OK(goc_chan_new(0, 0, &c[0]));
        ASSERT_OK(goc_chan_new(0, 0, &c[1]));
        ASSERT_EQ(goc_try(calls[i], c[0], &p), GOC_EMISUSE);
        ASSERT(p == NULL);
        setenv("GOC_ABORT_ON_MISUSE", "1", 1);
        ASSERT_EQ(goc_try(calls[i], c[1], &p), GOC_EPANIC);
        unsetenv("GOC_ABORT_ON_MISUSE");
        ASSERT(p != NULL);
        ASSERT(strstr(goc_panic_info_message(p), names[i]));
        ASSERT_EQ(goc_panic_info_code(p), GOC_EMISUSE);
        goc_panic_info_free(p);
        goc_chan_release(c[0]);
        goc_chan_release(c[1]);
    }
}

/* With none to recover it, the misuse's panic ends the process with the
 * report, as Go's does. */
TEST(panic, abort_on_misuse_ends_the_process_unrecovered)
{
    test_expect_exit(misuse_child, 2, "misuse: goc_wg_add: negative counter");
}

/* ---- goc_leak_find --------------------------------------------------------
 */

__attribute__((noinline)) static void leaky_inner(goc_chan *ch)
{
    goc_chan_recv(ch, NULL, NULL);
    __asm__ volatile(""); /* not a tail call: this frame stays */
}

__attribute__((noinline)) static void leaky_wait(void *arg)
{
    leaky_inner(arg);
    __asm__ volatile("");
}

static void leaves_soon(void *arg)
{
    (void)arg;
    goc_sleep(20 * GOC_MILLISECOND, NULL);
}

static void *find_from_thread(void *arg)
{
    struct goc_leak l;
    return (void *)(intptr_t)goc_leak_find(arg, &l, 1);
}

/*
 * goleak's checks: the goroutines left, with their entry function, name,
 * state and creator; left out by a function on their stack or as alive
 * before (a snapshot); looked for again until they are gone.
 */
TEST_G(panic, leak_find_names_what_is_left_and_ignores_what_it_is_told)
{
    struct goc_leak l[4];
    ASSERT_EQ(goc_leak_find(NULL, NULL, 1), -EINVAL);
    struct goc_leak_opts bad = { .timeout = -1 };
    ASSERT_EQ(goc_leak_find(&bad, l, 4), -EINVAL);
    ASSERT_EQ(goc_leak_find(NULL, l, 4), 0);
    int64_t before[8];
    ASSERT_EQ(goc_leak_snapshot(before, 8), 0);

    goc_chan *ch;
    ASSERT_OK(goc_chan_new(0, 0, &ch));
    struct goc_go_opts named = { .name = "stuck" };
    ASSERT_OK(goc_go_ex(leaky_wait, ch, &named));
    /* Until it has parked (a loaded machine may take a while). */
    for (int i = 0; i < 5000; i++) {
        if (goc_leak_find(NULL, l, 4) == 1 &&
            strcmp(l[0].state, "chan receive") == 0)
            break;
        goc_sleep(GOC_MILLISECOND, NULL);
    }
    ASSERT_EQ(goc_leak_find(NULL, l, 4), 1);
    ASSERT_STR(l[0].entry, "leaky_wait");
    ASSERT_STR(l[0].name, "stuck");
    ASSERT_STR(l[0].state, "chan receive");
    ASSERT_EQ(l[0].created_by, goc_id());
    ASSERT_EQ(goc_leak_find(NULL, NULL, 0), 1); /* counted only */

    /* By a function on its stack, its entry or deeper. */
    const char *const entry[] = { "leaky_wait", NULL };
    const char *const deeper[] = { "leaky_inner", NULL };
    struct goc_leak_opts by_entry = { .ignore_functions = entry };
    struct goc_leak_opts by_frame = { .ignore_functions = deeper };
    ASSERT_EQ(goc_leak_find(&by_entry, l, 4), 0);
    ASSERT_EQ(goc_leak_find(&by_frame, l, 4), 0);
    /* As alive before: a snapshot taken now. */
    int64_t now[8];
    int n = goc_leak_snapshot(now, 8);
    ASSERT_EQ(n, 1);
    struct goc_leak_opts known = { .ignore_ids = now, .nignore_ids = 1 };
    ASSERT_EQ(goc_leak_find(&known, l, 4), 0);
    /* From a plain thread too: it sees this goroutine as well. */
    pthread_t t;
    void *found;
    ASSERT_OK(pthread_create(&t, NULL, find_from_thread, NULL));
    ASSERT_OK(test_join(t, &found));
    ASSERT_EQ((intptr_t)found, 2);
    goc_chan_close(ch);

    /* One about to leave: waited for, not reported. */
    ASSERT_OK(goc_go(leaves_soon, NULL));
    struct goc_leak_opts patient = { .timeout = 5 * GOC_SECOND };
    ASSERT_EQ(goc_leak_find(&patient, l, 4), 0);
    goc_chan_release(ch);
}
