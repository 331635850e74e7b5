/* SPDX-License-Identifier: MIT */
/*
 * Tests of the symbolizer: it reads each module's symbols from the very
 * file that is loaded, whatever names the loader was given or keeps. Each
 * case runs twice, in children: as the tests run, and without
 * capabilities, where /proc/self/map_files cannot be opened and the file
 * must be found and checked some other way.
 */
#include "test.h"
#include "../src/runtime/runtime.h"

#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <linux/capability.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*symlib_fn)(int);

static char **program_argv;

/* glibc passes constructors the program's arguments: the very array
 * whose argv[0] dladdr() gives as the main program's file name. */
__attribute__((constructor)) static void save_argv(int argc,
                                                   char **argv,
                                                   char **envp)
{
    (void)argc;
    (void)envp;
    program_argv = argv;
}

/* Only the runner's own symbol table knows this name. */
__attribute__((noinline)) static int runner_static_function(int x)
{
    __asm__ volatile("" : "+r"(x));
    return x + 1;
}

static void drop_capabilities(void)
{
    struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct none[2];
    memset(none, 0, sizeof(none));
    ASSERT_OK(syscall(SYS_capset, &h, none));
}

/* Run fn in a child, without capabilities if bare. */
static void run_child(void (*fn)(void), bool bare)
{
    fflush(NULL);
    pid_t pid = fork();
    ASSERT(pid >= 0);
    if (pid == 0) {
        if (bare)
            drop_capabilities();
        fn();
        fflush(NULL);
        _exit(0);
    }
    int status;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0);
}

/* Run fn in a child, then again in one without capabilities. */
static void run_twice(void (*fn)(void))
{
    run_child(fn, false);
    run_child(fn, true);
}

static void expect_name(const void *fn, const char *want)
{
    char name[256];
    goc__symbolize_entry(fn, name, sizeof(name));
    ASSERT_STR(name, want);
}

static void copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    ASSERT(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        ASSERT_EQ(write(out, buf, (size_t)n), n);
    ASSERT_EQ(n, 0);
    close(in);
    close(out);
}

/* The library's static function, through its exported getter. */
static symlib_fn open_symlib(const char *path, symlib_fn (**getter)(void))
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        ASSERT_FAIL("dlopen %s: %s", path, dlerror());
    *(void **)getter = dlsym(h, "symlib_helper");
    ASSERT(*getter != NULL);
    symlib_fn fn = (*getter)();
    ASSERT_EQ(fn(1), 4);
    return fn;
}

static void relative_path_case(void)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", GOC_TEST_SYMLIB);
    *strrchr(dir, '/') = '\0';
    ASSERT_OK(chdir(dir));
    char rel[PATH_MAX];
    snprintf(rel, sizeof(rel), "./%s", strrchr(GOC_TEST_SYMLIB, '/') + 1);
    symlib_fn (*getter)(void);
    symlib_fn fn = open_symlib(rel, &getter);
    ASSERT_OK(chdir("/")); /* the relative name now leads nowhere */
    expect_name((const void *)(uintptr_t)fn, "symlib_static_helper");
    expect_name((const void *)(uintptr_t)getter, "symlib_helper");
}

/* A library opened by a relative name is read from its own file, not
 * taken for the main program (whose symbols named it wrongly). */
TEST(symbolize, library_opened_by_a_relative_path)
{
    run_twice(relative_path_case);
}

static void argv0_case(void)
{
    /* Another ELF file with symbols passes for the program. */
    program_argv[0] = (char *)GOC_TEST_SYMLIB;
    Dl_info info;
    ASSERT(dladdr((void *)(uintptr_t)runner_static_function, &info));
    ASSERT_STR(info.dli_fname, GOC_TEST_SYMLIB);
    expect_name((const void *)(uintptr_t)runner_static_function,
                "runner_static_function");
}

/* The main program's symbols come from its own file, not from whatever
 * argv[0] names (exec -a). */
TEST(symbolize, program_named_otherwise_by_argv0)
{
    ASSERT_EQ(runner_static_function(1), 2);
    run_twice(argv0_case);
}

static void replaced_case(void)
{
    char dir[] = "/tmp/goc-sym-XXXXXX", lib[64], next[64];
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(lib, sizeof(lib), "%s/libsym.so", dir);
    snprintf(next, sizeof(next), "%s/libsym.so.new", dir);
    copy_file(GOC_TEST_SYMLIB, lib);
    symlib_fn (*getter)(void);
    symlib_fn fn = open_symlib(lib, &getter);
    /* An upgrade puts the next build in its place. */
    copy_file(GOC_TEST_SYMLIB_REBUILT, next);
    ASSERT_OK(rename(next, lib));
    char name[256];
    goc__symbolize_entry((const void *)(uintptr_t)fn, name, sizeof(name));
    unlink(lib);
    rmdir(dir);
    /* Its own file may be out of reach: then no name beats a wrong one. */
    if (strcmp(name, "symlib_static_helper") != 0 && strstr(name, "rebuilt"))
        ASSERT_FAIL("named from the new file: %s", name);
    expect_name((const void *)(uintptr_t)getter, "symlib_helper");
}

/* A library replaced on disk while loaded is not named from the new
 * file's symbols. */
TEST(symbolize, library_replaced_on_disk)
{
    run_twice(replaced_case);
}

static int mappings_of(const char *path)
{
    FILE *f = fopen("/proc/self/maps", "r");
    ASSERT(f != NULL);
    char line[PATH_MAX + 128];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        n += strstr(line, path) != NULL;
    fclose(f);
    return n;
}

static void long_path_case(void)
{
    char dir[] = "/tmp/goc-sym-XXXXXX", path[PATH_MAX];
    ASSERT(mkdtemp(dir) != NULL);
    char sub[3][PATH_MAX];
    int len = snprintf(path, sizeof(path), "%s", dir);
    for (int i = 0; i < 3; i++) { /* 3 x 100 characters */
        len += snprintf(path + len, sizeof(path) - (size_t)len, "/%099d", i);
        snprintf(sub[i], sizeof(sub[i]), "%s", path);
        ASSERT_OK(mkdir(path, 0755));
    }
    snprintf(path + len, sizeof(path) - (size_t)len, "/libsym.so");
    copy_file(GOC_TEST_SYMLIB, path);
    symlib_fn (*getter)(void);
    symlib_fn fn = open_symlib(path, &getter);
    int loaded = mappings_of(path);
    for (int i = 0; i < 20; i++)
        expect_name((const void *)(uintptr_t)fn, "symlib_static_helper");
    expect_name((const void *)(uintptr_t)runner_static_function,
                "runner_static_function");
    /* The symbol table is mapped once, not once a lookup. */
    ASSERT_LE(mappings_of(path), loaded + 1);
    unlink(path);
    for (int i = 2; i >= 0; i--)
        rmdir(sub[i]);
    rmdir(dir);
}

/* A library at a path longer than 256 characters is loaded once, and
 * the modules after it are still named. */
TEST(symbolize, library_at_a_long_path)
{
    ASSERT_EQ(runner_static_function(1), 2);
    run_twice(long_path_case);
}

/*
 * A copy of the library, opened, then deleted, and a FIFO made at the
 * name /proc/self/maps now gives it ("... (deleted)"): without map_files
 * the symbolizer opens that FIFO to load the module, and waits there,
 * holding its lock, until a writer comes (release_fifo).
 */
static symlib_fn open_held_copy(const char *dir,
                                const char *name,
                                char *fifo,
                                size_t n)
{
    char lib[256];
    snprintf(lib, sizeof(lib), "%s/%s", dir, name);
    copy_file(GOC_TEST_SYMLIB, lib);
    symlib_fn (*getter)(void);
    symlib_fn fn = open_symlib(lib, &getter);
    ASSERT_OK(unlink(lib));
    snprintf(fifo, n, "%s (deleted)", lib);
    ASSERT_OK(mkfifo(fifo, 0600));
    return fn;
}

static void release_fifo(const char *fifo)
{
    int fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT(fd >= 0);
    close(fd);
}

/* Wait until the thread sleeps (in the FIFO's open, or for a lock). */
static void wait_asleep(_Atomic pid_t *tid)
{
    for (int i = 0; i < 10000; i++, usleep(1000)) {
        char path[64], stat[512];
        pid_t t = atomic_load(tid);
        if (!t)
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)t);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        ASSERT(fd >= 0);
        ssize_t n = read(fd, stat, sizeof(stat) - 1);
        close(fd);
        ASSERT(n > 0);
        stat[n] = '\0';
        const char *state = strrchr(stat, ')');
        if (state && state[1] == ' ' && state[2] == 'S')
            return;
    }
    ASSERT_FAIL("thread %d never slept", (int)atomic_load(tid));
}

struct sleeper {
    _Atomic pid_t tid;
    symlib_fn fn;        /* to name: its load waits on a FIFO */
    const char *release; /* or the FIFO to open once main sleeps */
    _Atomic pid_t *main;
};

static void *sleeper(void *arg)
{
    struct sleeper *s = arg;
    atomic_store(&s->tid, (pid_t)syscall(SYS_gettid));
    if (s->fn) {
        char name[256];
        goc__symbolize_entry((const void *)(uintptr_t)s->fn, name,
                             sizeof(name));
    } else {
        wait_asleep(s->main);
        release_fifo(s->release);
    }
    return NULL;
}

static void slow_load_case(void)
{
    char dir[] = "/tmp/goc-sym-XXXXXX", lib[64], fifo[2][PATH_MAX];
    ASSERT(mkdtemp(dir) != NULL);
    symlib_fn held[2];
    for (int i = 0; i < 2; i++) {
        char name[16];
        snprintf(name, sizeof(name), "held%d.so", i);
        held[i] = open_held_copy(dir, name, fifo[i], sizeof(fifo[i]));
    }
    snprintf(lib, sizeof(lib), "%s/libsym.so", dir);
    copy_file(GOC_TEST_SYMLIB, lib);
    symlib_fn (*getter)(void);
    symlib_fn fn = open_symlib(lib, &getter);
    _Atomic pid_t self = (pid_t)syscall(SYS_gettid);

    /* A load outlasts the wait for the lock: this lookup goes without. */
    struct sleeper load = { .fn = held[0] };
    pthread_t t[2];
    ASSERT_OK(pthread_create(&t[0], NULL, sleeper, &load));
    wait_asleep(&load.tid);
    char name[256];
    goc__symbolize_entry((const void *)(uintptr_t)fn, name, sizeof(name));
    release_fifo(fifo[0]);
    ASSERT_OK(pthread_join(t[0], NULL));

    /* A later, shorter one is waited for. */
    struct sleeper again = { .fn = held[1] };
    struct sleeper releaser = { .release = fifo[1], .main = &self };
    ASSERT_OK(pthread_create(&t[0], NULL, sleeper, &again));
    wait_asleep(&again.tid);
    ASSERT_OK(pthread_create(&t[1], NULL, sleeper, &releaser));
    expect_name((const void *)(uintptr_t)fn, "symlib_static_helper");
    for (int i = 0; i < 2; i++) {
        ASSERT_OK(pthread_join(t[i], NULL));
        unlink(fifo[i]);
    }
    unlink(lib);
    rmdir(dir);
}

/* A load that kept another lookup waiting too long, in a process that
 * goes on, does not stop later lookups from waiting for the lock (they
 * named no static function while another thread loaded a module). */
TEST(symbolize, waits_for_the_lock_after_a_slow_load)
{
    run_child(slow_load_case, true);
}

/* Open the library at path; *fn: its static function. */
static void *open_at(const char *path, symlib_fn *fn)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        ASSERT_FAIL("dlopen %s: %s", path, dlerror());
    symlib_fn (*getter)(void);
    *(void **)&getter = dlsym(h, "symlib_helper");
    ASSERT(getter != NULL);
    *fn = getter();
    ASSERT_EQ((*fn)(1), 4);
    return h;
}

static void reloaded_case(void)
{
    const char *libs[] = { GOC_TEST_SYMLIB, GOC_TEST_SYMLIB_TWIN,
                           GOC_TEST_SYMLIB };
    const char *names[] = { "symlib_static_helper", "symlib_static_second",
                            "symlib_static_helper" };
    uintptr_t base = 0;
    for (int i = 0; i < 3; i++) {
        symlib_fn fn;
        void *h = open_at(libs[i], &fn);
        Dl_info info;
        ASSERT(dladdr((void *)(uintptr_t)fn, &info));
        /* The case needs the loader to map each where the last was (as
         * glibc's does natively; qemu-user's placement may differ): the
         * names are checked either way. */
        if (i == 0)
            base = (uintptr_t)info.dli_fbase;
        else if ((uintptr_t)info.dli_fbase != base)
            printf("# %s loaded at %p, not at %p where the last was: "
                   "only the names are checked\n",
                   libs[i], info.dli_fbase, (void *)base);
        for (int k = 0; k < 3; k++)
            expect_name((const void *)(uintptr_t)fn, names[i]);
        ASSERT_OK(dlclose(h));
    }
}

/* A library loaded where another, laid out alike, was until dlclose (a
 * plugin rebuilt and loaded again) is named from its own symbols, not
 * from the other's. */
TEST(symbolize, library_loaded_where_another_was)
{
    run_twice(reloaded_case);
}

/* Point the symbol table's section header of the ELF file at @path far
 * out, where offset plus size wraps back inside the file. */
static void corrupt_symtab_header(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    ASSERT(fd >= 0);
    Elf64_Ehdr eh;
    ASSERT_EQ(pread(fd, &eh, sizeof(eh), 0), (ssize_t)sizeof(eh));
    bool done = false;
    for (int i = 0; i < eh.e_shnum && !done; i++) {
        Elf64_Shdr sh;
        off_t at = (off_t)(eh.e_shoff + (uint64_t)i * sizeof(sh));
        ASSERT_EQ(pread(fd, &sh, sizeof(sh), at), (ssize_t)sizeof(sh));
        if (sh.sh_type != SHT_SYMTAB)
            continue;
        sh.sh_offset = (uint64_t)1 << 63;
        sh.sh_size = ((uint64_t)1 << 63) + 0x1000;
        ASSERT_EQ(pwrite(fd, &sh, sizeof(sh), at), (ssize_t)sizeof(sh));
        done = true;
    }
    ASSERT(done);
    close(fd);
}

static void lying_section_header_case(void)
{
    char dir[] = "/tmp/goc-sym-XXXXXX", lib[PATH_MAX];
    ASSERT(mkdtemp(dir) != NULL);
    snprintf(lib, sizeof(lib), "%s/libsym.so", dir);
    copy_file(GOC_TEST_SYMLIB, lib);
    corrupt_symtab_header(lib);
    symlib_fn (*getter)(void);
    symlib_fn fn = open_symlib(lib, &getter); /* the loader pays no heed */
    char name[256];
    goc__symbolize_entry((const void *)(uintptr_t)fn, name, sizeof(name));
    expect_name((const void *)(uintptr_t)getter, "symlib_helper");
    unlink(lib);
    rmdir(dir);
}

/* A section header whose offset plus size wraps past 2^64 passed the
 * bounds check, and the symbolizer read far outside the file. A library
 * like that loads and runs: only naming a function in it crashed. */
TEST(symbolize, section_header_that_wraps_is_not_followed)
{
    if (test_under_valgrind()) {
        /* valgrind reads each library's debug information as it loads,
         * and its own reader stops on such a file. */
        printf("# skipped under valgrind\n");
        return;
    }
    run_child(lying_section_header_case, false);
}
