/* SPDX-License-Identifier: MIT */
/*
 * Tests of the profiler: the CPU profile's start/stop contract (the
 * seed's D-121..D-123), profiles read back by `go tool pprof`, the
 * goroutine profile's counts and text forms, and heap profiles from a
 * child program with libgoc_heapprof preloaded or linked in.
 *
 * The go-tool checks skip (exit 77) when `go` is missing, unless
 * GOC_REQUIRE_GO=1 makes that a failure.
 */
#include "test.h"
#include "../src/prof/prof.h"
#include "../src/runtime/runtime.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void skip(const char *why)
{
    fprintf(stderr, "# SKIP %s\n", why);
    fflush(NULL);
    _exit(77);
}

/* A fresh directory and paths in it; removed by tmp_done. */
struct tmp {
    char dir[64];
    char path[8][128];
    int n;
};

static void tmp_init(struct tmp *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/goc-prof-XXXXXX");
    ASSERT(mkdtemp(t->dir) != NULL);
    t->n = 0;
}

static const char *tmp_path(struct tmp *t, const char *name)
{
    ASSERT_LT(t->n, 8);
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", t->dir, name);
    memcpy(t->path[t->n], path, sizeof(path));
    return t->path[t->n++];
}

static void tmp_done(struct tmp *t)
{
    for (int i = 0; i < t->n; i++)
        unlink(t->path[i]);
    rmdir(t->dir);
}

static off_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* The whole file, NUL-terminated (malloc'd). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ASSERT(f != NULL);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static bool have_go(void)
{
    if (access("/usr/bin/go", X_OK) == 0 ||
        system("command -v go >/dev/null 2>&1") == 0)
        return true;
    const char *req = getenv("GOC_REQUIRE_GO");
    if (req && strcmp(req, "1") == 0)
        ASSERT_FAIL("%s", "go is not installed and GOC_REQUIRE_GO=1");
    return false;
}

/* `go tool pprof ARGS FILE` output (malloc'd), from a child process. */
static char *pprof(const char *args, const char *file)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "HOME=${HOME:-/tmp} GOCACHE=${GOCACHE:-/tmp/goc-gocache} "
             "go tool pprof %s %s 2>&1",
             args, file);
    FILE *p = popen(cmd, "r");
    ASSERT(p != NULL);
    size_t cap = 1 << 16, n = 0, r;
    char *buf = malloc(cap);
    while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap)
            buf = realloc(buf, cap *= 2);
    }
    buf[n] = '\0';
    int status = pclose(p);
    if (status != 0)
        ASSERT_FAIL("go tool pprof failed (%d):\n%s", status, buf);
    return buf;
}

/* The `-top` line naming fn; NULL if none. */
static const char *top_line(const char *out, const char *fn)
{
    const char *at = strstr(out, fn);
    if (!at)
        return NULL;
    while (at > out && at[-1] != '\n')
        at--;
    return at;
}

/* The cum column of @fn's line in `go tool pprof -top FILE`: for a count
 * profile, how many of its samples have @fn on their stack. */
static long pprof_top_cum(const char *file, const char *fn)
{
    char *out = pprof("-top", file);
    fprintf(stderr, "%s\n", out);
    const char *line = top_line(out, fn);
    ASSERT(line != NULL);
    /* flat flat% sum% cum cum% name */
    long flat, cum;
    ASSERT_EQ(sscanf(line, "%ld %*s %*s %ld", &flat, &cum), 2);
    free(out);
    return cum;
}

/* ---- CPU profile: the start/stop contract ----------------------------- */

TEST(prof, cpu_start_twice_is_ebusy_stop_twice_is_esrch_d122)
{
    struct tmp t;
    tmp_init(&t);
    const char *a = tmp_path(&t, "a.prof"), *b = tmp_path(&t, "b.prof");
    ASSERT_EQ(goc_prof_cpu_stop(), -ESRCH);
    ASSERT_OK(goc_prof_cpu_start(a, 0));
    struct goc_prof_cpu_stats st;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    ASSERT_EQ(st.running, 1);
    ASSERT_GE(st.threads, 1);
    ASSERT_EQ(goc_prof_cpu_start(b, 0), -EBUSY);
    ASSERT_EQ(file_size(b), -1); /* the refused start created nothing */
    ASSERT_OK(goc_prof_cpu_stop());
    ASSERT_EQ(goc_prof_cpu_stop(), -ESRCH);
    ASSERT_OK(goc_prof_cpu_stats(&st));
    ASSERT_EQ(st.running, 0);
    ASSERT_GT(file_size(a), 0);
    tmp_done(&t);
}

TEST(prof, cpu_bad_input_fails_and_a_later_start_works_d121_d122)
{
    struct tmp t;
    tmp_init(&t);
    const char *ok = tmp_path(&t, "ok.prof");
    ASSERT_EQ(goc_prof_cpu_start("/nonexistent-dir/x/cpu.prof", 0), -ENOENT);
    ASSERT_EQ(goc_prof_cpu_start(NULL, 0), -EINVAL);
    ASSERT_EQ(goc_prof_cpu_start(ok, -1), -EINVAL);
    ASSERT_EQ(goc_prof_cpu_start(ok, GOC_PROF_MAX_HZ + 1), -EINVAL);
    ASSERT_EQ(goc_prof_cpu_start_opts(NULL), -EINVAL);
    struct goc_prof_cpu_opts o = { .path = NULL, .fd = -1 };
    ASSERT_EQ(goc_prof_cpu_start_opts(&o), -EINVAL);
    o = (struct goc_prof_cpu_opts){ .path = ok, .duration = -1 };
    ASSERT_EQ(goc_prof_cpu_start_opts(&o), -EINVAL);
    ASSERT_EQ(goc_prof_cpu_stop(), -ESRCH); /* nothing is running */
    ASSERT_OK(goc_prof_cpu_start(ok, 250));
    ASSERT_OK(goc_prof_cpu_stop());
    /* The profile is complete on return: a gzip member or protobuf. */
    char *data = slurp(ok);
    ASSERT_GT(file_size(ok), 10);
    ASSERT((unsigned char)data[0] == 0x1f || data[0] == 0x0a);
    free(data);
    tmp_done(&t);
}

/* A descriptor the profile can never be written to is refused by the
 * start, not found out by the stop once the profile is taken. */
TEST(prof, cpu_fd_not_open_for_writing_is_refused_at_start)
{
    int closed = open("/dev/null", O_WRONLY | O_CLOEXEC);
    ASSERT_GE(closed, 0);
    close(closed);
    struct goc_prof_cpu_opts o = { .fd = closed };
    ASSERT_EQ(goc_prof_cpu_start_opts(&o), -EBADF);
    int rd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(rd, 0);
    o.fd = rd;
    ASSERT_EQ(goc_prof_cpu_start_opts(&o), -EBADF);
    close(rd);
    struct goc_prof_cpu_stats st;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    ASSERT_EQ(st.running, 0);
    ASSERT_EQ(goc_prof_cpu_stop(), -ESRCH);
    /* Write-only and read-write descriptors are taken. */
    int wr = open("/dev/null", O_RDWR | O_CLOEXEC);
    ASSERT_GE(wr, 0);
    o.fd = wr;
    ASSERT_OK(goc_prof_cpu_start_opts(&o));
    ASSERT_OK(goc_prof_cpu_stop());
    close(wr);
}

TEST(prof, cpu_write_error_is_reported_by_stop)
{
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        skip("no /dev/full");
    struct goc_prof_cpu_opts o = { .fd = fd, .hz = 100 };
    ASSERT_OK(goc_prof_cpu_start_opts(&o));
    ASSERT_EQ(goc_prof_cpu_stop(), -ENOSPC);
    close(fd);
    /* A failed write leaves the profiler usable. */
    struct tmp t;
    tmp_init(&t);
    ASSERT_OK(goc_prof_cpu_start(tmp_path(&t, "after.prof"), 0));
    ASSERT_OK(goc_prof_cpu_stop());
    tmp_done(&t);
}

TEST_G(prof, cpu_duration_stops_and_writes_by_itself_d123)
{
    struct tmp t;
    tmp_init(&t);
    const char *path = tmp_path(&t, "dur.prof");
    struct goc_prof_cpu_opts o = { .path = path,
                                   .hz = 100,
                                   .duration = 50 * GOC_MILLISECOND };
    ASSERT_OK(goc_prof_cpu_start_opts(&o));
    /* Written and closed without a stop, within generous slack. */
    int64_t end = goc_now() + 10 * GOC_SECOND;
    while (file_size(path) <= 0 && goc_now() < end)
        goc_sleep(10 * GOC_MILLISECOND, NULL);
    ASSERT_GT(file_size(path), 0);
    /* Not collected yet: a new start is refused, the stop reports. */
    ASSERT_EQ(goc_prof_cpu_start(tmp_path(&t, "x.prof"), 0), -EBUSY);
    ASSERT_OK(goc_prof_cpu_stop());
    ASSERT_EQ(goc_prof_cpu_stop(), -ESRCH);
    tmp_done(&t);
}

static void *plain_start_stop(void *arg)
{
    const char *path = arg;
    ASSERT_OK(goc_prof_cpu_start(path, 0));
    ASSERT_EQ(goc_prof_cpu_start(path, 0), -EBUSY);
    ASSERT_OK(goc_prof_cpu_stop());
    return NULL;
}

TEST(prof, cpu_start_stop_from_a_plain_thread)
{
    struct tmp t;
    tmp_init(&t);
    const char *path = tmp_path(&t, "plain.prof");
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, plain_start_stop, (void *)path));
    ASSERT_OK(test_join(th, NULL));
    ASSERT_GT(file_size(path), 0);
    tmp_done(&t);
}

/* ---- CPU profile: the samples ----------------------------------------- */

__attribute__((noinline)) static uint64_t prof_busy_spin(int64_t ns)
{
    uint64_t x = 1;
    int64_t end = goc_now() + ns;
    while (goc_now() < end) {
        for (int i = 0; i < 20000; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            __asm__ volatile("" : "+r"(x));
        }
    }
    return x;
}

TEST_G(prof, cpu_huge_duration_runs_until_stopped)
{
    struct tmp t;
    tmp_init(&t);
    struct goc_prof_cpu_opts o = { .path = tmp_path(&t, "long.prof"),
                                   .hz = 100,
                                   .duration = INT64_MAX };
    ASSERT_OK(goc_prof_cpu_start_opts(&o));
    prof_busy_spin(300 * GOC_MILLISECOND);
    struct goc_prof_cpu_stats st;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    ASSERT_EQ(st.running, 1);
    ASSERT_OK(goc_prof_cpu_stop());
    ASSERT_OK(goc_prof_cpu_stats(&st));
    /* 0.3 s of CPU at 100 Hz is about 30 samples. */
    ASSERT_GE(st.samples, 5);
    tmp_done(&t);
}

static void spinner(void *arg)
{
    goc_wg *wg = arg;
    prof_busy_spin(400 * GOC_MILLISECOND);
    goc_wg_done(wg);
}

TEST_G(prof, cpu_profile_names_the_busy_function)
{
    struct tmp t;
    tmp_init(&t);
    const char *path = tmp_path(&t, "cpu.prof");
    struct timespec c0, c1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
    ASSERT_OK(goc_prof_cpu_start(path, 0));
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 2);
    goc_go(spinner, &wg);
    goc_go(spinner, &wg);
    goc_wg_wait(&wg, NULL);
    struct goc_prof_cpu_stats st;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    ASSERT_OK(goc_prof_cpu_stop());
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
    ASSERT_OK(goc_prof_cpu_stats(&st));
    fprintf(stderr, "samples %lld, dropped %lld, threads %d, cpu %.0f ms\n",
            (long long)st.samples, (long long)st.dropped, st.threads,
            (double)(c1.tv_sec - c0.tv_sec) * 1e3 +
                (double)(c1.tv_nsec - c0.tv_nsec) / 1e6);
    ASSERT_EQ(st.dropped, 0);
    /* 0.8 s of CPU at 100 Hz is about 80 samples; ask for a fraction. */
    ASSERT_GE(st.samples, 10);
    if (!have_go()) {
        tmp_done(&t);
        skip("go is not installed");
    }
    char *out = pprof("-top", path);
    fprintf(stderr, "%s\n", out);
    ASSERT(top_line(out, "prof_busy_spin") != NULL);
    free(out);
    /* Samples carry the goroutine label. */
    out = pprof("-tags", path);
    ASSERT(strstr(out, "goroutine") != NULL);
    free(out);
    tmp_done(&t);
}

/* ---- CPU profile: a frame-pointer register holding data -------------- */

#if defined(__x86_64__) || defined(__aarch64__)
/* Spin iters times with the frame-pointer register set to fp, as code
 * built without frame pointers may hold any value there (the alignment
 * mask ~15, say); the register is restored on return. */
long prof_masked_spin(long iters, uintptr_t fp);
#if defined(__x86_64__)
__asm__(".text\n.globl prof_masked_spin\n.type prof_masked_spin,@function\n"
        "prof_masked_spin:\n"
        "  push %rbp\n  mov %rsi, %rbp\n"
        "1: dec %rdi\n  jnz 1b\n"
        "  pop %rbp\n  mov %rdi, %rax\n  ret\n"
        ".size prof_masked_spin, .-prof_masked_spin\n");
#else
__asm__(".text\n.globl prof_masked_spin\n.type prof_masked_spin,%function\n"
        "prof_masked_spin:\n"
        "  stp x29, x30, [sp, #-16]!\n  mov x29, x1\n"
        "1: subs x0, x0, #1\n  b.ne 1b\n"
        "  ldp x29, x30, [sp], #16\n  ret\n"
        ".size prof_masked_spin, .-prof_masked_spin\n");
#endif

/* Spin for about ns of CPU with the frame-pointer register at fp. */
static void masked_spin_for(int64_t ns, uintptr_t fp)
{
    int64_t end = goc_now() + ns;
    while (goc_now() < end)
        prof_masked_spin(1000000, fp);
}

static void *plain_masked_spinner(void *arg)
{
    (void)arg;
    masked_spin_for(200 * GOC_MILLISECOND, (uintptr_t)-16);
    return NULL;
}
#endif

/* Samples taken where the register holds a value near the top of the
 * address space: the walk's bounds must not wrap and let it load there. */
TEST_G(prof, cpu_profile_survives_a_frame_pointer_near_the_top)
{
#if defined(__x86_64__) || defined(__aarch64__)
    struct tmp t;
    tmp_init(&t);
    const char *path = tmp_path(&t, "mask.prof");
    ASSERT_OK(goc_prof_cpu_start(path, 1000));
    /* A plain thread first: a walk of unknown extent... */
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, plain_masked_spinner, NULL));
    ASSERT_OK(test_join(th, NULL));
    /* ...then the main goroutine: a walk bounded by its stack. */
    masked_spin_for(200 * GOC_MILLISECOND, (uintptr_t)-8);
    masked_spin_for(100 * GOC_MILLISECOND, (uintptr_t)-16);
    ASSERT_OK(goc_prof_cpu_stop());
    struct goc_prof_cpu_stats st;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    ASSERT_GE(st.samples, 10);
    ASSERT_GT(file_size(path), 0);
    tmp_done(&t);
#else
    skip("no frame-pointer register known");
#endif
}

/* ---- goroutine profile ------------------------------------------------ */

struct parked {
    goc_chan *ch;
    goc_wg started, done;
};

__attribute__((noinline)) static void prof_parked_here(struct parked *p)
{
    int v;
    goc_wg_done(&p->started);
    goc_chan_recv(p->ch, &v, NULL);
    __asm__ volatile("" ::: "memory");
}

static void parker(void *arg)
{
    struct parked *p = arg;
    prof_parked_here(p);
    goc_wg_done(&p->done);
}

/* Start n goroutines parked in prof_parked_here. */
static void park_n(struct parked *p, int n)
{
    ASSERT_OK(goc_chan_new(sizeof(int), 0, &p->ch));
    goc_wg_init(&p->started);
    goc_wg_init(&p->done);
    goc_wg_add(&p->started, n);
    goc_wg_add(&p->done, n);
    for (int i = 0; i < n; i++)
        ASSERT_OK(goc_go(parker, p));
    goc_wg_wait(&p->started, NULL);
    /* Started is not parked yet: wait until all n show as waiting. */
    goc_sleep(20 * GOC_MILLISECOND, NULL);
}

static void unpark(struct parked *p)
{
    goc_chan_close(p->ch);
    goc_wg_wait(&p->done, NULL);
    goc_chan_release(p->ch);
}

#define NPARKED 7

/* In the text form, the count of the record whose stack names fn. */
static long text_count_of(const char *text, const char *fn)
{
    const char *at = strstr(text, fn);
    if (!at)
        return -1;
    /* Back to the record's "count @ ..." line, the one after a blank. */
    while (at > text && !(at[-1] == '\n' && at[0] != '#'))
        at--;
    return strtol(at, NULL, 10);
}

TEST_G(prof, goroutine_profile_counts_parked_goroutines_d132)
{
    struct tmp t;
    tmp_init(&t);
    struct parked p;
    park_n(&p, NPARKED);
    const char *txt = tmp_path(&t, "g.txt"), *pb = tmp_path(&t, "g.pb.gz");
    const char *dump = tmp_path(&t, "g2.txt");
    int n = goc_prof_write_goroutine_file(txt, 1);
    ASSERT_GE(n, NPARKED + 1);
    ASSERT_GE(goc_prof_write_goroutine_file(pb, 0), NPARKED + 1);
    ASSERT_GE(goc_prof_write_goroutine_file(dump, 2), NPARKED + 1);
    unpark(&p);

    char *text = slurp(txt);
    char head[64];
    snprintf(head, sizeof(head), "goroutine profile: total %d\n", n);
    ASSERT(strncmp(text, head, strlen(head)) == 0);
    ASSERT_EQ(text_count_of(text, "prof_parked_here"), NPARKED);
    ASSERT(strstr(text, "\n#\t0x") != NULL);
    free(text);
    text = slurp(dump);
    ASSERT(strstr(text, "goroutine ") && strstr(text, "prof_parked_here"));
    free(text);

    if (!have_go()) {
        tmp_done(&t);
        skip("go is not installed");
    }
    ASSERT_EQ(pprof_top_cum(pb, "prof_parked_here"), NPARKED);
    /* The text form too: its memory map lets pprof name the addresses of
     * a PIE program (with none, it named nothing). */
    char *out = pprof("-top", txt);
    fprintf(stderr, "%s\n", out);
    ASSERT(top_line(out, "prof_parked_here") != NULL);
    free(out);
    tmp_done(&t);
}

TEST_G(prof, write_bad_arguments_change_nothing)
{
    ASSERT_EQ(goc_prof_write_goroutine(-1, 0), -EINVAL);
    ASSERT_EQ(goc_prof_write_goroutine(1, 3), -EINVAL);
    ASSERT_EQ(goc_prof_write_goroutine(1, -1), -EINVAL);
    ASSERT_EQ(goc_prof_write_goroutine_file("/nonexistent-dir/g", 0), -ENOENT);
    ASSERT_EQ(goc_prof_write_goroutine_file("/tmp/never", 7), -EINVAL);
    ASSERT_EQ(file_size("/tmp/never"), -1);
    int fd = open("/dev/full", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        ASSERT_EQ(goc_prof_write_goroutine(fd, 1), -ENOSPC);
        close(fd);
    }
    ASSERT_EQ(goc_prof_cpu_stats(NULL), -EINVAL);
}

/* ---- heap profile ----------------------------------------------------- */

TEST(prof, heap_without_goc_heapprof_is_enotsup)
{
    /* The runner links libgoc only: malloc is glibc's own. */
    ASSERT_EQ(goc_prof_heap_available(), 0);
    ASSERT_EQ(goc_prof_heap_rate(), -ENOTSUP);
    ASSERT_EQ(goc_prof_heap_set_rate(4096), -ENOTSUP);
    ASSERT_EQ(goc_prof_write_heap(1, 0), -ENOTSUP);
    ASSERT_EQ(goc_prof_write_heap_file("/tmp/never", 0), -ENOTSUP);
    ASSERT_EQ(file_size("/tmp/never"), -1);
}

#if defined(GOC_HEAPCHILD)
/* Run the heap child; preload: the .so to LD_PRELOAD, or NULL; mode: its
 * second argument, or NULL. */
static void run_heapchild_mode(const char *exe,
                               const char *preload,
                               const char *dir,
                               const char *mode)
{
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        if (preload)
            setenv("LD_PRELOAD", preload, 1);
        execl(exe, exe, dir, mode, (char *)NULL);
        _exit(127);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

static void run_heapchild(const char *exe, const char *preload, const char *dir)
{
    run_heapchild_mode(exe, preload, dir, NULL);
}

static void check_heap_profiles(const char *exe, const char *preload)
{
    if (test_instrumented() && getenv("LD_PRELOAD"))
        skip("valgrind interposes malloc itself");
    struct tmp t;
    tmp_init(&t);
    const char *pb = tmp_path(&t, "heap.pb.gz"),
               *txt = tmp_path(&t, "heap.txt");
    const char *txt2 = tmp_path(&t, "heap2.txt");
    run_heapchild(exe, preload, t.dir);

    /* Live: 64 blocks of 256 KiB at a 64 KiB rate, nearly all sampled. */
    char *text = slurp(txt);
    ASSERT(strncmp(text, "heap profile: ", 14) == 0);
    ASSERT(strstr(text, "@ heap/131072\n") != NULL);
    long live = text_count_of(text, "prof_big_alloc");
    ASSERT_GE(live, 32);
    ASSERT_LE(live, 64);
    free(text);
    /* Written after sampling stopped: the same samples, at the rate they
     * were taken at (it said heap/0, and pprof left them unscaled). */
    text = slurp(tmp_path(&t, "heap0.txt"));
    ASSERT(strstr(text, "@ heap/131072\n") != NULL);
    ASSERT_EQ(text_count_of(text, "prof_big_alloc"), live);
    free(text);
    /* Freed: in use 0, allocations still counted. */
    text = slurp(txt2);
    const char *at = strstr(text, "prof_big_alloc");
    ASSERT(at != NULL);
    while (at > text && !(at[-1] == '\n' && at[0] != '#'))
        at--;
    long inuse, bytes, allocs;
    ASSERT_EQ(sscanf(at, "%ld: %ld [%ld:", &inuse, &bytes, &allocs), 3);
    ASSERT_EQ(inuse, 0);
    ASSERT_EQ(bytes, 0);
    ASSERT_EQ(allocs, live);
    free(text);
    /* At the highest rate the header's twice the rate saturates (it
     * wrapped to heap/-2). */
    text = slurp(tmp_path(&t, "heaphuge.txt"));
    ASSERT(strstr(text, "@ heap/9223372036854775807\n") != NULL);
    free(text);

    if (!have_go()) {
        tmp_done(&t);
        skip("go is not installed");
    }
    char *out = pprof("-top -sample_index=inuse_space", pb);
    fprintf(stderr, "%s\n", out);
    ASSERT(top_line(out, "prof_big_alloc") != NULL);
    free(out);
    /* Scaled by the highest rate, the figures saturate: none went
     * negative (a double past INT64_MAX converted to INT64_MIN). */
    out = pprof("-raw", tmp_path(&t, "heaphuge.pb.gz"));
    ASSERT(strstr(out, "prof_big_alloc") != NULL);
    ASSERT(strstr(out, ": -") == NULL && strstr(out, " -9") == NULL);
    free(out);
    tmp_done(&t);
}
#endif

#if defined(GOC_HEAPCHILD)
/* The text form's record whose leaf frame (first "#" line) is fn; NULL if
 * none. */
static const char *record_with_leaf(const char *text, const char *fn)
{
    char want[128];
    snprintf(want, sizeof(want), "\t%s+0x", fn);
    const char *records = strchr(text, '\n'); /* past the header's " @ " */
    for (const char *at = records ? strstr(records, " @ ") : NULL; at;
         at = strstr(at, " @ ")) {
        const char *leaf = strstr(at, "\n#\t");
        const char *end = leaf ? strchr(leaf + 3, '\n') : NULL;
        const char *name = leaf ? strstr(leaf + 3, want) : NULL;
        if (name && name < end) {
            while (at > text && at[-1] != '\n')
                at--;
            return at;
        }
        at += 3;
    }
    return NULL;
}

/* Run the heap child in frames mode (see prof_heapchild.c); check that
 * each of fns is the leaf of one record with one allocation: recorded,
 * and not hidden behind a hook of the library that it called through
 * another. */
static void check_heap_frames(const char *exe,
                              const char *preload,
                              const char *const *fns,
                              int n)
{
    if (test_instrumented() && getenv("LD_PRELOAD"))
        skip("valgrind interposes malloc itself");
    struct tmp t;
    tmp_init(&t);
    const char *txt = tmp_path(&t, "frames.txt");
    run_heapchild_mode(exe, preload, t.dir, "frames");
    char *text = slurp(txt);
    for (int i = 0; i < n; i++) {
        const char *rec = record_with_leaf(text, fns[i]);
        if (!rec || strtol(rec, NULL, 10) != 1)
            ASSERT_FAIL("no single record with leaf %s in:\n%s", fns[i], text);
    }
    free(text);
    tmp_done(&t);
}

static void check_heap_frames_both(const char *const *fns, int n)
{
    check_heap_frames(GOC_HEAPCHILD, GOC_HEAPPROF_SO, fns, n);
    check_heap_frames(GOC_HEAPCHILD_STATIC, NULL, fns, n);
}
#endif

/* A thread's first allocation is counted down like any later one: at
 * rate 1 it is recorded, and so is (nearly surely) a huge one. */
TEST(prof, heap_records_a_threads_first_allocation)
{
#if defined(GOC_HEAPCHILD)
    static const char *const fns[] = { "prof_first_alloc",
                                       "prof_first_big_alloc" };
    check_heap_frames_both(fns, 2);
#else
    skip("goc_heapprof is not built with the sanitizers");
#endif
}

/* Each entry point's sample starts at its caller, whichever hook serves
 * it inside the library; a block whose realloc failed is still in use
 * (it was counted freed). */
TEST(prof, heap_sample_leaf_is_the_caller_of_every_entry_point)
{
#if defined(GOC_HEAPCHILD)
    static const char *const fns[] = {
        "prof_via_posix_memalign", "prof_via_aligned_alloc",
        "prof_via_memalign",       "prof_via_realloc_null",
        "prof_via_reallocarray",   "prof_kept_by_failed_realloc",
    };
    check_heap_frames_both(fns, 6);
#else
    skip("goc_heapprof is not built with the sanitizers");
#endif
}

/* Rate 1 records every allocation from then on, as Go's MemProfileRate
 * 1 does, even on a thread whose countdown was drawn at a higher rate. */
TEST(prof, heap_rate_one_records_the_next_allocation_of_every_thread)
{
#if defined(GOC_HEAPCHILD)
    static const char *const fns[] = { "prof_after_rate_one" };
    check_heap_frames_both(fns, 1);
#else
    skip("goc_heapprof is not built with the sanitizers");
#endif
}

TEST(prof, heap_profile_preloaded_names_the_big_allocator)
{
#if defined(GOC_HEAPCHILD)
    check_heap_profiles(GOC_HEAPCHILD, GOC_HEAPPROF_SO);
#else
    skip("goc_heapprof is not built with the sanitizers");
#endif
}

TEST(prof, heap_profile_linked_in_names_the_big_allocator)
{
#if defined(GOC_HEAPCHILD)
    check_heap_profiles(GOC_HEAPCHILD_STATIC, NULL);
#else
    skip("goc_heapprof is not built with the sanitizers");
#endif
}

TEST_G(prof, cpu_profile_flushed_by_the_shutdown_manager)
{
    struct tmp t;
    tmp_init(&t);
    const char *path = tmp_path(&t, "shutdown.prof");
    goc_shutdown *m;
    ASSERT_OK(goc_shutdown_new(NULL, &m));
    ASSERT_OK(goc_prof_cpu_stop_on_shutdown(m));
    ASSERT_OK(goc_prof_cpu_start(path, 100));
    ASSERT_OK(goc_shutdown_run(m, NULL));
    /* The shutdown stopped it: the file is complete, a new one may start. */
    ASSERT_EQ(goc_prof_cpu_stop(), -ESRCH);
    ASSERT_GT(file_size(path), 0);
    struct goc_component_report rep[2];
    ASSERT_EQ(goc_shutdown_report(m, rep, 2), 1);
    ASSERT_STR(rep[0].name, "cpu-profile");
    ASSERT_EQ(rep[0].state, GOC_COMPONENT_STOPPED);
    goc_shutdown_free(m);
    /* With no profile running, the component has nothing to do. */
    ASSERT_OK(goc_shutdown_new(NULL, &m));
    ASSERT_OK(goc_prof_cpu_stop_on_shutdown(m));
    ASSERT_OK(goc_shutdown_run(m, NULL));
    ASSERT_EQ(goc_shutdown_report(m, rep, 2), 1);
    ASSERT_EQ(rep[0].state, GOC_COMPONENT_STOPPED);
    goc_shutdown_free(m);
    tmp_done(&t);
}

/* ---- CPU profile: concurrent stops ------------------------------------ */

struct stopper {
    _Atomic int done;
    int result;
};

static void *plain_stopper(void *arg)
{
    struct stopper *s = arg;
    s->result = goc_prof_cpu_stop();
    atomic_store(&s->done, 1);
    return NULL;
}

static void goroutine_stopper(void *arg)
{
    plain_stopper(arg);
}

/* Fill the pipe's buffer, so that the next write blocks until a read. */
static size_t fill_pipe(int fd)
{
    char buf[4096];
    memset(buf, 'x', sizeof(buf));
    ASSERT_OK(fcntl(fd, F_SETFL, O_NONBLOCK));
    size_t filled = 0;
    for (size_t chunk = sizeof(buf); chunk > 0; chunk /= 2) {
        ssize_t w;
        while ((w = write(fd, buf, chunk)) > 0)
            filled += (size_t)w;
        ASSERT_EQ(errno, EAGAIN);
    }
    ASSERT_OK(fcntl(fd, F_SETFL, 0));
    return filled;
}

TEST_G(prof, cpu_concurrent_stops_both_wait_for_the_profile)
{
    int p[2];
    ASSERT_OK(pipe(p));
    size_t filled = fill_pipe(p[1]);
    /* The writer blocks on the full pipe until the test reads it. */
    struct goc_prof_cpu_opts o = { .fd = p[1], .hz = 100 };
    ASSERT_OK(goc_prof_cpu_start_opts(&o));
    struct stopper a = { 0 }, b = { 0 };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, plain_stopper, &a));
    ASSERT_OK(goc_go(goroutine_stopper, &b));
    goc_sleep(200 * GOC_MILLISECOND, NULL);
    /* Whichever came second must wait too: the profile is not written. */
    ASSERT_EQ(atomic_load(&a.done), 0);
    ASSERT_EQ(atomic_load(&b.done), 0);

    ASSERT_OK(fcntl(p[0], F_SETFL, O_NONBLOCK));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int64_t end = goc_now() + 30 * GOC_SECOND;
    for (;;) {
        /* Both stops returned: everything is in the pipe already. */
        bool both = atomic_load(&a.done) && atomic_load(&b.done);
        ssize_t r = read(p[0], buf + n, cap - n);
        if (r > 0) {
            n += (size_t)r;
            if (n == cap)
                buf = realloc(buf, cap *= 2);
            continue;
        }
        if (both)
            break;
        ASSERT_LT(goc_now(), end);
        goc_sleep(GOC_MILLISECOND, NULL);
    }
    ASSERT_OK(test_join(th, NULL));
    ASSERT_OK(a.result);
    ASSERT_OK(b.result); /* the first stop's result */
    ASSERT_GT(n, filled + 10);
    const unsigned char *prof = (const unsigned char *)buf + filled;
    ASSERT(prof[0] == 0x1f || prof[0] == 0x0a);
    close(p[0]);
    close(p[1]);
    struct tmp t;
    tmp_init(&t);
    const char *path = tmp_path(&t, "both.prof");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, prof, n - filled), (ssize_t)(n - filled));
    close(fd);
    free(buf);
    ASSERT_EQ(goc_prof_cpu_stop(), -ESRCH);
    if (!have_go()) {
        tmp_done(&t);
        skip("go is not installed");
    }
    free(pprof("-top", path)); /* the whole profile parses */
    tmp_done(&t);
}

/* ---- CPU profile: threads without a timer ----------------------------- */

static _Atomic int idler_stop;

static void *idler(void *arg)
{
    (void)arg;
    while (!atomic_load(&idler_stop))
        usleep(5000);
    return NULL;
}

TEST(prof, cpu_thread_refused_a_timer_is_counted_once)
{
    struct tmp t;
    tmp_init(&t);
    ASSERT_OK(goc_prof_cpu_start(tmp_path(&t, "refused.prof"), 100));
    struct goc_prof_cpu_stats st;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    ASSERT_EQ(st.unprofiled, 0);
    /* No more pending signals may be allocated: timer_create fails. */
    struct rlimit old, none;
    ASSERT_OK(getrlimit(RLIMIT_SIGPENDING, &old));
    none = (struct rlimit){ 0, old.rlim_max };
    ASSERT_OK(setrlimit(RLIMIT_SIGPENDING, &none));
    struct sigevent sev = { .sigev_notify = SIGEV_NONE };
    timer_t probe;
    if (timer_create(CLOCK_MONOTONIC, &sev, &probe) == 0) {
        timer_delete(probe);
        setrlimit(RLIMIT_SIGPENDING, &old);
        goc_prof_cpu_stop();
        tmp_done(&t);
        skip("RLIMIT_SIGPENDING does not limit timers here");
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ASSERT_OK(pthread_create(&th[i], NULL, idler, NULL));
    /* Several of the writer's 50 ms scans see the threads... */
    usleep(400 * 1000);
    struct goc_prof_cpu_stats later;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    /* ...and as many again count nothing more. */
    usleep(400 * 1000);
    ASSERT_OK(goc_prof_cpu_stats(&later));
    ASSERT_OK(setrlimit(RLIMIT_SIGPENDING, &old));
    atomic_store(&idler_stop, 1);
    for (int i = 0; i < 2; i++)
        ASSERT_OK(test_join(th[i], NULL));
    ASSERT_OK(goc_prof_cpu_stop());
    /* Both threads; a sanitizer may have started a helper thread too. */
    ASSERT_GE(st.unprofiled, 2);
    ASSERT_LE(st.unprofiled, 4);
    ASSERT_EQ(later.unprofiled, st.unprofiled);
    tmp_done(&t);
}

/* A start that fails after its file was opened (here: the calling
 * thread is refused a timer) leaves the file as it was, and creates none;
 * a profile written over a longer file leaves nothing of it behind. */
TEST(prof, cpu_failed_start_leaves_the_file_as_it_was)
{
    struct tmp t;
    tmp_init(&t);
    const char *old = tmp_path(&t, "old.prof"),
               *fresh = tmp_path(&t, "new.prof");
    static char junk[1 << 20];
    memset(junk, 'x', sizeof(junk));
    int fd = open(old, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    struct rlimit lim, none;
    ASSERT_OK(getrlimit(RLIMIT_SIGPENDING, &lim));
    none = (struct rlimit){ 0, lim.rlim_max };
    ASSERT_OK(setrlimit(RLIMIT_SIGPENDING, &none));
    struct sigevent sev = { .sigev_notify = SIGEV_NONE };
    timer_t probe;
    if (timer_create(CLOCK_MONOTONIC, &sev, &probe) == 0) {
        timer_delete(probe);
        setrlimit(RLIMIT_SIGPENDING, &lim);
        tmp_done(&t);
        skip("RLIMIT_SIGPENDING does not limit timers here");
    }
    int r1 = goc_prof_cpu_start(old, 100);
    int r2 = goc_prof_cpu_start(fresh, 100);
    ASSERT_OK(setrlimit(RLIMIT_SIGPENDING, &lim));
    ASSERT_EQ(r1, -EAGAIN);
    ASSERT_EQ(r2, -EAGAIN);
    ASSERT_EQ(file_size(old), (off_t)sizeof(junk));
    ASSERT_EQ(file_size(fresh), -1);
    ASSERT_OK(goc_prof_cpu_start(old, 100));
    ASSERT_OK(goc_prof_cpu_stop());
    char *data = slurp(old);
    ASSERT_GT(file_size(old), 10);
    ASSERT_LT(file_size(old), (off_t)sizeof(junk));
    ASSERT((unsigned char)data[0] == 0x1f || data[0] == 0x0a);
    free(data);
    tmp_done(&t);
}

/* Fill the file descriptor table, under a low limit, but for one. */
static int fill_fds_but_one(int *fds, int max)
{
    int n = 0, fd;
    while (n < max && (fd = dup(0)) >= 0)
        fds[n++] = fd;
    ASSERT_EQ(errno, EMFILE);
    close(fds[--n]);
    return n;
}

TEST(prof, cpu_thread_whose_stat_cannot_be_read_is_counted_once)
{
    struct tmp t;
    tmp_init(&t);
    ASSERT_OK(goc_prof_cpu_start(tmp_path(&t, "emfile.prof"), 100));
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        ASSERT_OK(pthread_create(&th[i], NULL, idler, NULL));
    usleep(200 * 1000); /* the writer's scans see them */
    struct goc_prof_cpu_stats before, later;
    ASSERT_OK(goc_prof_cpu_stats(&before));
    /* The writer's opendir takes the one descriptor left: no thread's
     * stat can be opened (EMFILE) for several scans. */
    struct rlimit old, low;
    ASSERT_OK(getrlimit(RLIMIT_NOFILE, &old));
    low = (struct rlimit){ 64, old.rlim_max };
    ASSERT_OK(setrlimit(RLIMIT_NOFILE, &low));
    int fds[64];
    int n = fill_fds_but_one(fds, 64);
    usleep(300 * 1000);
    for (int i = 0; i < n; i++)
        close(fds[i]);
    ASSERT_OK(setrlimit(RLIMIT_NOFILE, &old));
    usleep(300 * 1000);
    ASSERT_OK(goc_prof_cpu_stats(&later));
    atomic_store(&idler_stop, 1);
    for (int i = 0; i < 2; i++)
        ASSERT_OK(test_join(th[i], NULL));
    ASSERT_OK(goc_prof_cpu_stop());
    /* The same threads, still profiled: none counted a second time. */
    ASSERT_GE(before.threads, 3);
    ASSERT_EQ(later.threads, before.threads);
    tmp_done(&t);
}

/* ---- the heap library's allocator entry points ----------------------- */

#if defined(GOC_HEAPPROF_SO)
/* libgoc_heapprof loaded beside glibc: its functions by name. */
static void *heapprof_sym(const char *name)
{
    void *h = dlopen(GOC_HEAPPROF_SO, RTLD_NOW | RTLD_LOCAL);
    ASSERT(h != NULL);
    void *f = dlsym(h, name);
    ASSERT(f != NULL);
    return f;
}
#endif

TEST(prof, heap_alignment_checks_match_glibc)
{
#if defined(GOC_HEAPPROF_SO)
    int (*pm)(void **, size_t, size_t);
    void *(*aa)(size_t, size_t), *(*ma)(size_t, size_t);
    void (*hfree)(void *);
    *(void **)&pm = heapprof_sym("posix_memalign");
    *(void **)&aa = heapprof_sym("aligned_alloc");
    *(void **)&ma = heapprof_sym("memalign");
    *(void **)&hfree = heapprof_sym("free");
    ASSERT((void *)pm != (void *)posix_memalign);
    void *x = NULL;
    ASSERT_EQ(pm(&x, 0, 32), EINVAL);
    ASSERT(x == NULL);
    const size_t aligns[] = { 0,       1,
                              2,       4,
                              8,       12,
                              16,      24,
                              48,      64,
                              4096,    (size_t)1 << 20,
                              3,       SIZE_MAX / 2 + 1,
                              SIZE_MAX };
    /* Through pointers: a compiler that knows these as builtins may move
     * the errno reads across its calls. */
    int (*volatile libc_pm)(void **, size_t, size_t) = posix_memalign;
    void *(*volatile libc_aa)(size_t, size_t) = aligned_alloc;
    void *(*volatile libc_ma)(size_t, size_t) = memalign;
    for (size_t i = 0; i < sizeof(aligns) / sizeof(aligns[0]); i++) {
        size_t al = aligns[i];
        void *want = NULL, *got = NULL;
        ASSERT_EQ(pm(&got, al, 32), libc_pm(&want, al, 32));
        ASSERT_EQ(got == NULL, want == NULL);
        free(want);
        hfree(got);
        errno = 0;
        want = libc_aa(al, 32);
        int want_errno = errno;
        errno = 0;
        got = aa(al, 32);
        ASSERT_EQ(got == NULL, want == NULL);
        if (!got)
            ASSERT_EQ(errno, want_errno);
        free(want);
        hfree(got);
        errno = 0;
        want = libc_ma(al, 32);
        want_errno = errno;
        errno = 0;
        got = ma(al, 32);
        ASSERT_EQ(got == NULL, want == NULL);
        if (!got)
            ASSERT_EQ(errno, want_errno);
        free(want);
        hfree(got);
    }
#else
    skip("goc_heapprof is not built with the sanitizers");
#endif
}

/* ---- pprof output: functions ------------------------------------------ */

#if defined(GOC_HEAPPROF_SO)
/* Named as a static function of heapprof.c, on purpose. */
__attribute__((noinline)) static int64_t get_rate(void)
{
    __asm__ volatile("");
    return 7;
}
#endif

TEST(prof, same_named_functions_stay_apart_in_pprof)
{
#if defined(GOC_HEAPPROF_SO)
    const struct goc__heapprof_iface *(*get)(void);
    *(void **)&get = heapprof_sym("goc_heapprof_iface");
    const struct goc__heapprof_iface *hp = get();
    ASSERT_EQ(get_rate(), 7);
    /* Return addresses inside either get_rate. */
    void *theirs = (char *)(uintptr_t)hp->get_rate + 1;
    void *ours = (char *)(uintptr_t)get_rate + 1;
    char name[128];
    goc__symbolize(theirs, name, sizeof(name));
    ASSERT_STR(name, "get_rate+0x1");
    goc__symbolize(ours, name, sizeof(name));
    ASSERT_STR(name, "get_rate+0x1");
    struct tmp t;
    tmp_init(&t);
    const char *path = tmp_path(&t, "twins.prof");
    struct goc__profile *p = goc__profile_new();
    ASSERT(p != NULL);
    goc__profile_sample_type(p, "samples", "count");
    int64_t one = 1, two = 2;
    goc__profile_sample(p, &theirs, 1, &one, 1, NULL, NULL);
    goc__profile_sample(p, &ours, 1, &two, 1, NULL, NULL);
    int fd = goc__prof_open(path);
    ASSERT_GE(fd, 0);
    ASSERT_OK(goc__prof_close(fd, goc__profile_write(p, fd)));
    goc__profile_free(p);
    if (!have_go()) {
        tmp_done(&t);
        skip("go is not installed");
    }
    char *out = pprof("-top", path);
    fprintf(stderr, "%s\n", out);
    /* Two functions, flat 2 and 1, not one with 3: the one met second is
     * shown with its module and offset. */
    const char *first = top_line(out, "get_rate@runner+0x");
    ASSERT(first != NULL);
    long flat;
    ASSERT_EQ(sscanf(first, "%ld", &flat), 1);
    ASSERT_EQ(flat, 2);
    ASSERT(strstr(out, "get_rate\n") != NULL);
    free(out);
    tmp_done(&t);
#else
    skip("goc_heapprof is not built with the sanitizers");
#endif
}

/* ---- stack walks under a seccomp filter ------------------------------- */

/* Make process_vm_readv fail with EPERM in this process and its children,
 * as a container's seccomp profile may; with probe_too, also
 * rt_sigprocmask with an invalid `how` (the walk's second way). */
static void forbid_process_vm_readv_probe(bool probe_too)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_process_vm_readv, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_rt_sigprocmask, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, probe_too ? 0xffffffffu : 0u, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    if (!probe_too) /* allow every rt_sigprocmask */
        f[5] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 1, 0, 0);
    struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        skip("no seccomp filters here");
    char buf[16] = "abc", got[16];
    struct iovec local = { got, 16 }, remote = { buf, 16 };
    ASSERT_EQ(syscall(SYS_process_vm_readv, (long)getpid(), &local, 1L, &remote,
                      1L, 0L),
              -1);
    ASSERT_EQ(errno, EPERM);
}

__attribute__((noinline)) static void prof_plain_outer(void)
{
    prof_busy_spin(300 * GOC_MILLISECOND);
    __asm__ volatile("" ::: "memory");
}

static void *plain_spinner(void *arg)
{
    (void)arg;
    prof_plain_outer();
    return NULL;
}

static void forbid_process_vm_readv(void)
{
    forbid_process_vm_readv_probe(false);
}

/*
 * Profile a plain thread spinning (and, with @goroutine, a goroutine too)
 * under the seccomp filter already installed; check the walk mode and
 * that `go tool pprof -traces` finds @caller above the spinning leaf.
 */
static void profile_under_seccomp(int want_walk,
                                  bool goroutine,
                                  const char *caller)
{
    struct tmp t;
    tmp_init(&t);
    const char *path = tmp_path(&t, "seccomp.prof");
    ASSERT_OK(goc_prof_cpu_start(path, 200));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, plain_spinner, NULL));
    if (goroutine) {
        goc_wg wg = GOC_WG_INIT;
        goc_wg_add(&wg, 1);
        goc_go(spinner, &wg);
        goc_wg_wait(&wg, NULL);
    }
    ASSERT_OK(test_join(th, NULL));
    ASSERT_OK(goc_prof_cpu_stop());
    struct goc_prof_cpu_stats st;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    ASSERT_EQ(st.walk, want_walk);
    ASSERT_GE(st.samples, 5);
    if (!have_go()) {
        tmp_done(&t);
        skip("go is not installed");
    }
    char *out = pprof("-traces", path);
    fprintf(stderr, "%s\n", out); /* what pprof saw, if this fails */
    ASSERT(strstr(out, "prof_busy_spin") != NULL);
    ASSERT(strstr(out, caller) != NULL);
    free(out);
    tmp_done(&t);
}

TEST(prof, cpu_profile_walks_plain_threads_under_seccomp)
{
    forbid_process_vm_readv();
    /* Not only the leaf: the spinner's caller is in the stacks. */
    profile_under_seccomp(GOC_PROF_WALK_PROBED, false, "prof_plain_outer");
}

TEST(prof, heap_profile_has_stacks_under_seccomp)
{
#if defined(GOC_HEAPCHILD)
    forbid_process_vm_readv();
    check_heap_profiles(GOC_HEAPCHILD, GOC_HEAPPROF_SO);
    check_heap_profiles(GOC_HEAPCHILD_STATIC, NULL);
#else
    skip("goc_heapprof is not built with the sanitizers");
#endif
}

TEST_G(prof, cpu_profile_bounded_walk_keeps_goroutine_stacks)
{
    forbid_process_vm_readv_probe(true);
    /* Goroutine stacks are known, so walked whole. */
    profile_under_seccomp(GOC_PROF_WALK_BOUNDED, true, " spinner\n");
}

/* Spin for @ns of this thread's CPU time. */
static void spin_cpu(int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    int64_t end = ts.tv_sec * GOC_SECOND + ts.tv_nsec + ns;
    do
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    while (ts.tv_sec * GOC_SECOND + ts.tv_nsec < end);
}

static int busy_job(void *arg)
{
    (void)arg;
    spin_cpu(300 * GOC_MILLISECOND);
    return 0;
}

static void run_busy_job(void *arg)
{
    ASSERT_OK(goc_blocking(busy_job, NULL, NULL));
    goc_wg_done(arg);
}

/* The blocking pool's threads blocked SIGPROF: CPU time spent in
 * goc_blocking() jobs never reached the profile, though the threads were
 * counted as profiled. */
TEST_G(prof, cpu_profile_samples_blocking_jobs)
{
    struct tmp t;
    tmp_init(&t);
    ASSERT_OK(goc_prof_cpu_start(tmp_path(&t, "cpu.prof"), 100));
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 1);
    ASSERT_OK(goc_go(run_busy_job, &wg));
    goc_wg_wait(&wg, NULL);
    ASSERT_OK(goc_prof_cpu_stop());
    struct goc_prof_cpu_stats st;
    ASSERT_OK(goc_prof_cpu_stats(&st));
    printf("# %lld samples of 300 ms at 100 Hz\n", (long long)st.samples);
    ASSERT_GE(st.samples, 10);
    tmp_done(&t);
}

/* Code of the kernel's vDSO (clock_gettime, in nearly every profile that
 * reads the time) was given the main program as its file, since dladdr()
 * names the vDSO relatively, as the main program. */
TEST(prof, vdso_frames_are_not_the_main_programs)
{
    void *vdso = dlopen("linux-vdso.so.1", RTLD_LAZY | RTLD_NOLOAD);
    void *fn = vdso ? dlsym(vdso, "__vdso_clock_gettime") : NULL;
    if (!fn)
        skip("no vDSO here");
    char frame[1024];
    goc__prof_frame_text((char *)fn + 1, frame, sizeof(frame));
    printf("# %s\n", frame);
    const char *tab = strchr(frame, '\t');
    ASSERT(tab != NULL);
    ASSERT_STR(tab + 1, "[vdso]");
    dlclose(vdso);
}

/* ---- custom profiles -------------------------------------------------- */

static int keys[64];

__attribute__((noinline)) static void prof_opened_here_a(goc_prof *p, int i)
{
    ASSERT_OK(goc_prof_add(p, &keys[i], 0));
    __asm__ volatile("");
}

__attribute__((noinline)) static void prof_opened_here_b(goc_prof *p, int i)
{
    ASSERT_OK(goc_prof_add(p, &keys[i], 0));
    __asm__ volatile("");
}

/* A helper that opens for its caller: skip 1 names the caller. */
__attribute__((noinline)) static void prof_helper_adds(goc_prof *p, int i)
{
    ASSERT_OK(goc_prof_add(p, &keys[i], 1));
    __asm__ volatile("");
}

__attribute__((noinline)) static void prof_helper_caller(goc_prof *p, int i)
{
    prof_helper_adds(p, i);
    __asm__ volatile("");
}

TEST_G(prof, custom_profile_names_where_each_key_was_added)
{
    struct tmp t;
    tmp_init(&t);
    goc_prof *p, *q;
    ASSERT_OK(goc_prof_new("open_files", &p));
    ASSERT_EQ(goc_prof_new("open_files", &q), -EINVAL); /* in use */
    ASSERT_EQ(goc_prof_new("goroutine", &q), -EINVAL);  /* predefined */
    ASSERT_EQ(goc_prof_new("", &q), -EINVAL);
    ASSERT_EQ(goc_prof_new(NULL, &q), -EINVAL);
    ASSERT(goc_prof_lookup("open_files") == p);
    ASSERT_STR(goc_prof_name(p), "open_files");
    /* One call site each (bounds the compiler cannot unroll by). */
    static volatile int five = 5, eight = 8;
    for (int i = 0; i < five; i++)
        prof_opened_here_a(p, i);
    for (int i = five; i < eight; i++)
        prof_opened_here_b(p, i);
    prof_helper_caller(p, 8);
    ASSERT_EQ(goc_prof_add(p, &keys[0], 0), -EINVAL); /* already there */
    ASSERT_EQ(goc_prof_add(p, NULL, 0), -EINVAL);
    ASSERT_EQ(goc_prof_add(p, &keys[9], -1), -EINVAL);
    ASSERT_EQ(goc_prof_count(p), 9);
    ASSERT_OK(goc_prof_remove(p, &keys[5])); /* closed */
    ASSERT_EQ(goc_prof_remove(p, &keys[5]), -ENOENT);
    ASSERT_EQ(goc_prof_count(p), 8);

    const char *txt = tmp_path(&t, "c.txt"), *pb = tmp_path(&t, "c.pb.gz");
    ASSERT_EQ(goc_prof_write_file(p, txt, 1), 8);
    ASSERT_EQ(goc_prof_write_file(p, pb, 0), 8);
    ASSERT_EQ(goc_prof_write(p, 1, 2), -EINVAL);
    char *text = slurp(txt);
    ASSERT(strncmp(text, "open_files profile: total 8\n", 28) == 0);
    ASSERT_EQ(text_count_of(text, "prof_opened_here_a"), 5);
    ASSERT_EQ(text_count_of(text, "prof_opened_here_b"), 2);
    ASSERT_EQ(text_count_of(text, "prof_helper_caller"), 1);
    ASSERT(strstr(text, "prof_helper_adds") == NULL); /* skipped */
    free(text);

    goc_prof_free(p);
    ASSERT(goc_prof_lookup("open_files") == NULL);
    ASSERT_OK(goc_prof_new("open_files", &q)); /* the name is free again */
    goc_prof_free(q);

    if (!have_go()) {
        tmp_done(&t);
        skip("go is not installed");
    }
    ASSERT_EQ(pprof_top_cum(pb, "prof_opened_here_a"), 5);
    tmp_done(&t);
}

struct churn {
    goc_prof *p;
    int from;
    goc_wg *wg;
};

static void churn_keys(void *arg)
{
    struct churn *c = arg;
    for (int64_t r = 0; r < test_scale(2000); r++)
        for (int i = c->from; i < c->from + 16; i++) {
            ASSERT_OK(goc_prof_add(c->p, &keys[i], 0));
            if (i % 4 == 0)
                goc_yield();
            ASSERT_OK(goc_prof_remove(c->p, &keys[i]));
        }
    goc_wg_done(c->wg);
}

static void *churn_thread(void *arg)
{
    churn_keys(arg);
    return NULL;
}

/* Goroutines and a plain thread add and remove at once; a writer reads
 * meanwhile. The table grows past its first size on the way. */
TEST_G(prof, custom_profile_under_concurrent_adds_and_removes)
{
    goc_prof *p;
    ASSERT_OK(goc_prof_new("churn", &p));
    goc_wg wg = GOC_WG_INIT;
    static struct churn c[4];
    goc_wg_add(&wg, 4);
    for (int i = 0; i < 3; i++) {
        c[i] = (struct churn){ p, i * 16, &wg };
        ASSERT_OK(goc_go(churn_keys, &c[i]));
    }
    c[3] = (struct churn){ p, 48, &wg };
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, churn_thread, &c[3]));
    int devnull = open("/dev/null", O_WRONLY);
    ASSERT_GE(devnull, 0);
    for (int i = 0; i < 20; i++)
        ASSERT_GE(goc_prof_write(p, devnull, i % 2), 0);
    close(devnull);
    goc_wg_wait(&wg, NULL);
    test_join(th, NULL);
    ASSERT_EQ(goc_prof_count(p), 0);
    goc_prof_free(p);
}

/* ---- the threads profile ---------------------------------------------- */

static _Atomic int job_running, section_open, let_go;

__attribute__((noinline)) static int prof_held_in_a_job(void *arg)
{
    (void)arg;
    atomic_store(&job_running, 1);
    while (!atomic_load(&let_go))
        usleep(1000);
    return 0;
}

static void runs_a_job(void *arg)
{
    goc_blocking(prof_held_in_a_job, NULL, NULL);
    goc_wg_done(arg);
}

static void sits_in_a_section(void *arg)
{
    ASSERT_OK(goc_blocking_enter());
    atomic_store(&section_open, 1);
    while (!atomic_load(&let_go))
        usleep(1000);
    ASSERT_OK(goc_blocking_exit());
    goc_wg_done(arg);
}

TEST_G(prof, threads_profile_lists_goc_threads_and_what_they_do)
{
    struct tmp t;
    tmp_init(&t);
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 2);
    atomic_store(&let_go, 0);
    ASSERT_OK(goc_go(runs_a_job, &wg));
    struct goc_go_opts o = { .name = "in_section" };
    ASSERT_OK(goc_go_ex(sits_in_a_section, &wg, &o));
    while (!atomic_load(&job_running) || !atomic_load(&section_open))
        goc_sleep(GOC_MILLISECOND, NULL);
    const char *list = tmp_path(&t, "t2.txt"), *txt = tmp_path(&t, "t.txt");
    const char *pb = tmp_path(&t, "t.pb.gz");
    /* The three forms list the same threads. Written one after another,
     * they agree once no thread comes or goes between them: sysmon may
     * still be handing the section's P to a new M. */
    int n = 0;
    bool same = false;
    for (int i = 0; i < 200 && !same; i++) {
        if (i)
            goc_sleep(5 * GOC_MILLISECOND, NULL);
        n = goc_prof_write_threads_file(list, 2);
        ASSERT_GE(n, 3); /* an M, sysmon, a blocking worker at least */
        same = goc_prof_write_threads_file(txt, 1) == n &&
               goc_prof_write_threads_file(pb, 0) == n;
    }
    ASSERT(same);
    atomic_store(&let_go, 1);
    goc_wg_wait(&wg, NULL);
    ASSERT_EQ(goc_prof_write_threads(-1, 2), -EINVAL);
    ASSERT_EQ(goc_prof_write_threads(1, 3), -EINVAL);
    ASSERT_EQ(goc_prof_write_threads_file(txt, -1), -EINVAL);

    char *text = slurp(list), head[64];
    snprintf(head, sizeof(head), "threads: total %d\n", n);
    ASSERT(strncmp(text, head, strlen(head)) == 0);
    ASSERT(strstr(text, "\nsysmon tid ") != NULL);
    ASSERT(strstr(text, "running a job (prof_held_in_a_job) for ") != NULL);
    ASSERT(strstr(text, "\"in_section\" in a blocking section") != NULL);
    char me[64];
    snprintf(me, sizeof(me), "running goroutine %lld ", (long long)goc_id());
    ASSERT(strstr(text, me) != NULL);           /* the M running this test */
    ASSERT(strstr(text, "goc__m_new") != NULL); /* creators' stacks */
    free(text);
    text = slurp(txt);
    snprintf(head, sizeof(head), "threadcreate profile: total %d\n", n);
    ASSERT(strncmp(text, head, strlen(head)) == 0);
    ASSERT(strstr(text, "goc__sysmon_start") != NULL);
    free(text);

    if (!have_go()) {
        tmp_done(&t);
        skip("go is not installed");
    }
    char *out = pprof("-top", pb);
    fprintf(stderr, "%s\n", out);
    ASSERT(strstr(out, "Type: threadcreate") != NULL);
    ASSERT(top_line(out, "goc__sysmon_start") != NULL);
    free(out);
    tmp_done(&t);
}

static void calls_blocking(void *arg)
{
    for (int i = 0; i < 20; i++)
        goc_blocking(prof_held_in_a_job, NULL, NULL);
    goc_wg_done(arg);
}

/* Written while blocking workers are made and Ms come and go between
 * states: the sanitizers see the reads. */
TEST_G(prof, threads_profile_written_while_threads_change)
{
    atomic_store(&let_go, 1);
    goc_wg wg = GOC_WG_INIT;
    goc_wg_add(&wg, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_OK(goc_go(calls_blocking, &wg));
    int devnull = open("/dev/null", O_WRONLY);
    ASSERT_GE(devnull, 0);
    for (int i = 0; i < 30; i++)
        ASSERT_GE(goc_prof_write_threads(devnull, i % 3), 2);
    close(devnull);
    goc_wg_wait(&wg, NULL);
}
