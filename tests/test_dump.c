/* SPDX-License-Identifier: MIT */
/*
 * Tests of goroutine dumps and of the goroutine profile that shares their
 * walk: stacks whose frames cannot be trusted (code without frame
 * pointers, goroutines running meanwhile) must not fault the reader.
 */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- a frame pointer into a guard page ---------------------------------- */

#if defined(__x86_64__) || defined(__aarch64__)
/* Call fn with the frame-pointer register at fp, as a caller built without
 * frame pointers may leave any value there; fn saves it as its caller's
 * frame. */
void dump_call_with_fp(uintptr_t fp, void (*fn)(void));
#if defined(__x86_64__)
__asm__(".text\n.globl dump_call_with_fp\n"
        ".type dump_call_with_fp,@function\n"
        "dump_call_with_fp:\n"
        "  push %rbp\n  mov %rdi, %rbp\n  call *%rsi\n  pop %rbp\n  ret\n"
        ".size dump_call_with_fp, .-dump_call_with_fp\n");
#else
__asm__(".text\n.globl dump_call_with_fp\n"
        ".type dump_call_with_fp,%function\n"
        "dump_call_with_fp:\n"
        "  stp x29, x30, [sp, #-16]!\n  mov x29, x0\n  blr x1\n"
        "  ldp x29, x30, [sp], #16\n  ret\n"
        ".size dump_call_with_fp, .-dump_call_with_fp\n");
#endif

/* Whether the kernel can read the byte at a (write(2) fails with EFAULT
 * where a load would fault). */
static bool readable(uintptr_t a)
{
    int fds[2];
    ASSERT_OK(pipe(fds));
    bool ok = write(fds[1], (const void *)a, 1) == 1;
    close(fds[0]);
    close(fds[1]);
    return ok;
}

/* The first page above the caller's stack that cannot be read (the guard
 * of the stack carved above), within the reach of a frame walk (1 MiB);
 * 0 if there is none. */
__attribute__((noinline)) static uintptr_t unreadable_above(void)
{
    char here;
    uintptr_t a = ((uintptr_t)&here + 4096) & ~(uintptr_t)4095;
    for (; a < (uintptr_t)&here + (1u << 20) - 8192; a += 4096)
        if (!readable(a))
            return a;
    return 0;
}

static goc_chan *wake, *go_dump;
static goc_wg parked, dumped, done;
static int null_fd;

__attribute__((noinline)) static void park_here(void)
{
    goc_wg_done(&parked);
    goc_chan_recv(wake, NULL, NULL);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) static void dump_here(void)
{
    ASSERT_GE(goc_dump(null_fd), 5);
    __asm__ volatile("" ::: "memory");
}

/* With the guard page above its stack as its caller's frame: parks, or
 * (arg set) dumps every goroutine, itself included, once told to. */
static void bad_frame(void *arg)
{
    if (arg)
        goc_chan_recv(go_dump, NULL, NULL);
    else
        goc_sleep(10 * GOC_MILLISECOND, NULL); /* the others get carved */
    uintptr_t target = unreadable_above();
    if (!target) {
        fprintf(stderr, "# no guard page above this stack\n");
        target = (uintptr_t)-16;
    }
    dump_call_with_fp(target, arg ? dump_here : park_here);
    if (arg)
        goc_wg_done(&dumped);
    goc_wg_done(&done);
}

static void waiter(void *arg)
{
    (void)arg;
    goc_chan_recv(wake, NULL, NULL);
    goc_wg_done(&done);
}
#endif

TEST_G(dump, frames_through_a_guard_page_are_not_followed)
{
#if defined(__x86_64__) || defined(__aarch64__)
    null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(null_fd, 0);
    ASSERT_OK(goc_chan_new(0, 0, &wake));
    ASSERT_OK(goc_chan_new(0, 0, &go_dump));
    goc_wg_init(&parked);
    goc_wg_init(&dumped);
    goc_wg_init(&done);
    goc_wg_add(&parked, 1);
    goc_wg_add(&dumped, 1);
    goc_wg_add(&done, 5);
    /* Carved before the waiters, so a guard page lies above each. */
    ASSERT_OK(goc_go(bad_frame, NULL));
    ASSERT_OK(goc_go(bad_frame, &null_fd));
    for (int i = 0; i < 3; i++)
        ASSERT_OK(goc_go(waiter, NULL));
    goc_wg_wait(&parked, NULL);
    goc_sleep(20 * GOC_MILLISECOND, NULL); /* parked, not only started */
    /* A parked goroutine's frames, by every reader of them. */
    ASSERT_GE(goc_prof_write_goroutine(null_fd, 0), 6);
    ASSERT_GE(goc_prof_write_goroutine(null_fd, 1), 6);
    ASSERT_GE(goc_prof_write_goroutine(null_fd, 2), 6);
    ASSERT_GE(goc_dump(null_fd), 6);
    /* The dumping goroutine's own frames. */
    ASSERT_OK(goc_chan_send(go_dump, NULL, NULL));
    goc_wg_wait(&dumped, NULL);
    goc_chan_close(wake);
    goc_wg_wait(&done, NULL);
    goc_chan_release(wake);
    goc_chan_release(go_dump);
    close(null_fd);
#else
    fprintf(stderr, "# SKIP no frame-pointer register known\n");
    fflush(NULL);
    _exit(77);
#endif
}

/* ---- goroutines running while their stacks are read --------------------- */

#define RING 64

static goc_chan *ring[RING];
static goc_wg ring_done;

/* Fill frames with words that look like frame pointers a little above,
 * for a reader to find once the goroutine runs on. */
__attribute__((noinline)) static uintptr_t scribble(int depth, uintptr_t seed)
{
    volatile uintptr_t buf[64];
    uintptr_t base = (uintptr_t)&buf[0];
    for (int i = 0; i < 64; i++)
        buf[i] = base +
                 ((seed * 2654435761u + (unsigned)i * 40503u) % (1u << 19)) * 8;
    if (depth > 0)
        return scribble(depth - 1, seed + buf[seed % 64]) + buf[3];
    return buf[5];
}

static void ring_worker(void *arg)
{
    long i = (long)arg;
    uintptr_t s = (uintptr_t)i;
    int v;
    while (goc_chan_recv(ring[i], &v, NULL) > 0) {
        s += scribble(4 + (int)(s % 8), s);
        goc_chan_send(ring[(i + 1) % RING], &v, NULL); /* -EPIPE at the end */
    }
    goc_wg_done(&ring_done);
}

static int ring_main(void *arg)
{
    (void)arg;
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    goc_wg_init(&ring_done);
    goc_wg_add(&ring_done, RING);
    for (int i = 0; i < RING; i++)
        ASSERT_OK(goc_chan_new(sizeof(int), 1, &ring[i]));
    for (long i = 0; i < RING; i++)
        ASSERT_OK(goc_go(ring_worker, (void *)i));
    int v = 0;
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_chan_send(ring[i * 8], &v, NULL));
    int64_t end = goc_now() + 300 * GOC_MILLISECOND;
    for (int k = 0; goc_now() < end; k++)
        ASSERT_GE(goc_prof_write_goroutine(fd, k & 1), 1);
    for (int i = 0; i < RING; i++)
        goc_chan_close(ring[i]);
    goc_wg_wait(&ring_done, NULL);
    for (int i = 0; i < RING; i++)
        goc_chan_release(ring[i]);
    close(fd);
    return 0;
}

TEST(dump, goroutine_profile_while_stacks_change)
{
    /* Two Ps: the workers run on one while the profile reads them. */
    setenv("GOC_MAXPROCS", "2", 1);
    ASSERT_OK(goc_run(ring_main, NULL));
    test_no_leaks();
}

/* ---- the leak check's timeout ------------------------------------------- */

static void nap(void *arg)
{
    (void)arg;
    goc_sleep(50 * GOC_MILLISECOND, NULL);
}

TEST_G(dump, leakcheck_waits_for_ever_on_a_huge_timeout)
{
    ASSERT_OK(goc_go(nap, NULL));
    /* INT64_MAX from now is far in the future, not in the past. */
    ASSERT_OK(goc_leakcheck(0, INT64_MAX));
}

/* goc_leakcheck(allowed, timeout) with standard error captured: its
 * result; *wrote: whether it wrote anything there. */
static int leakcheck_captured(int64_t allowed, int64_t timeout, bool *wrote)
{
    char path[] = "/tmp/goc-leak-XXXXXX";
    int fd = mkstemp(path);
    ASSERT_GE(fd, 0);
    unlink(path);
    int saved = dup(2);
    ASSERT_GE(saved, 0);
    ASSERT_EQ(dup2(fd, 2), 2);
    int r = goc_leakcheck(allowed, timeout);
    ASSERT_EQ(dup2(saved, 2), 2);
    close(saved);
    *wrote = lseek(fd, 0, SEEK_END) != 0;
    close(fd);
    return r;
}

TEST_G(dump, leakcheck_refuses_a_negative_timeout)
{
    ASSERT_OK(goc_go(nap, NULL));
    /* Refused without a check: nothing is dumped to standard error. */
    bool wrote;
    ASSERT_EQ(leakcheck_captured(0, -1, &wrote), -EINVAL);
    ASSERT(!wrote);
    ASSERT_EQ(goc_leakcheck(0, INT64_MIN), -EINVAL);
    ASSERT_OK(goc_leakcheck(0, 5 * GOC_SECOND));
}

/* A negative allowance can never be met: with a long timeout the check
 * would wait for ever. Refused at once, nothing dumped. */
TEST_G(dump, leakcheck_refuses_a_negative_allowance)
{
    bool wrote1, wrote2;
    int64_t t0 = goc_now();
    ASSERT_EQ(leakcheck_captured(-1, 200 * GOC_MILLISECOND, &wrote1), -EINVAL);
    ASSERT_EQ(leakcheck_captured(INT64_MIN, 200 * GOC_MILLISECOND, &wrote2),
              -EINVAL);
    ASSERT_LT(goc_now() - t0, 100 * GOC_MILLISECOND);
    ASSERT(!wrote1 && !wrote2);
}

/* ---- a dump's writes interrupted by signals ----------------------------- */

#define SLEEPERS 1000

static goc_chan *never;
static goc_wg never_done;
static _Atomic pid_t kick_tid;
static _Atomic int kick_stop;

static void never_woken(void *arg)
{
    (void)arg;
    goc_chan_recv(never, NULL, NULL);
    goc_wg_done(&never_done);
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void block_all_signals(void)
{
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
}

/* Signal the dumping thread every millisecond. */
static void *kicker(void *arg)
{
    (void)arg;
    block_all_signals();
    while (!atomic_load(&kick_stop)) {
        pid_t tid = atomic_load(&kick_tid);
        if (tid)
            syscall(SYS_tgkill, getpid(), tid, SIGALRM);
        usleep(1000);
    }
    return NULL;
}

/* Read the pipe slowly, so that the dump's writes block on it. */
static void *slow_reader(void *arg)
{
    int fd = *(int *)arg;
    char buf[512];
    block_all_signals();
    while (read(fd, buf, sizeof(buf)) > 0)
        usleep(200);
    return NULL;
}

TEST_G(dump, dump_retries_writes_cut_short_by_a_signal)
{
    ASSERT_OK(goc_chan_new(0, 0, &never));
    goc_wg_init(&never_done);
    goc_wg_add(&never_done, SLEEPERS);
    for (int i = 0; i < SLEEPERS; i++)
        ASSERT_OK(goc_go(never_woken, NULL));
    goc_sleep(20 * GOC_MILLISECOND, NULL);
    int p[2];
    ASSERT_OK(pipe(p));
    pthread_t rd, kick;
    ASSERT_OK(pthread_create(&rd, NULL, slow_reader, &p[0]));
    /* No SA_RESTART: a write blocked on the pipe fails with EINTR. */
    struct sigaction sa = { .sa_handler = on_alarm }, old;
    sigemptyset(&sa.sa_mask);
    ASSERT_OK(sigaction(SIGALRM, &sa, &old));
    ASSERT_OK(goc_pin()); /* the signalled thread stays the dumper's */
    atomic_store(&kick_tid, (pid_t)syscall(SYS_gettid));
    ASSERT_OK(pthread_create(&kick, NULL, kicker, NULL));
    int r1 = goc_dump(p[1]);
    int r2 = goc_prof_write_goroutine(p[1], 2);
    atomic_store(&kick_stop, 1);
    ASSERT_OK(test_join(kick, NULL));
    ASSERT_OK(goc_unpin());
    ASSERT_OK(sigaction(SIGALRM, &old, NULL));
    close(p[1]);
    ASSERT_OK(test_join(rd, NULL));
    close(p[0]);
    ASSERT_GE(r1, SLEEPERS + 1);
    ASSERT_GE(r2, SLEEPERS + 1);
    goc_chan_close(never);
    goc_wg_wait(&never_done, NULL);
    goc_chan_release(never);
}
