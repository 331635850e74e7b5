/* SPDX-License-Identifier: MIT */
/*
 * The test runner. Every test runs in a forked child with a timeout, so a
 * crash or a hang fails that test alone. Output is TAP, closed by the line
 * "N passed, N failed".
 *
 *   runner               run every test
 *   runner area.name...  run the named tests
 *   runner --list        print the test names
 */
#include "test.h"

#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct test {
    const char *name;
    void (*fn)(void);
};

static const struct test tests[] = {
#define X(area, name, label) { #area "." #name, test_##area##_##name },
#include "list.h"
#undef X
};

#define NTESTS (sizeof(tests) / sizeof(tests[0]))

static int timeout_seconds(void)
{
    const char *s = getenv("GOC_TEST_TIMEOUT");
    int t = s ? atoi(s) : 0;
    return t > 0 ? t : 300;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Run one test in a child; 1 if it passed. */
static int run_one(const struct test *t, int index)
{
    double start = now_s();
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        exit(2);
    }
    if (pid == 0) {
        alarm((unsigned)timeout_seconds());
        t->fn();
        fflush(NULL);
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    double secs = now_s() - start;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        printf("ok %d - %s # %.2fs\n", index, t->name, secs);
        return 1;
    }
    /* Exit status 77 (automake's convention): the test skipped itself and
     * said why on stderr. */
    if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
        printf("ok %d - %s # SKIP\n", index, t->name);
        return 1;
    }
    if (WIFSIGNALED(status))
        printf("not ok %d - %s # killed by signal %d%s\n", index, t->name,
               WTERMSIG(status),
               WTERMSIG(status) == SIGALRM ? " (timeout)" : "");
    else
        printf("not ok %d - %s # exit status %d\n", index, t->name,
               WEXITSTATUS(status));
    return 0;
}

static const struct test *find(const char *name)
{
    for (size_t i = 0; i < NTESTS; i++)
        if (strcmp(tests[i].name, name) == 0)
            return &tests[i];
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NTESTS; i++)
            puts(tests[i].name);
        return 0;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    int passed = 0, failed = 0;
    if (argc > 1) {
        printf("1..%d\n", argc - 1);
        for (int i = 1; i < argc; i++) {
            const struct test *t = find(argv[i]);
            if (!t) {
                printf("not ok %d - %s # no such test\n", i, argv[i]);
                failed++;
                continue;
            }
            run_one(t, i) ? passed++ : failed++;
        }
    } else {
        printf("1..%zu\n", NTESTS);
        for (size_t i = 0; i < NTESTS; i++)
            run_one(&tests[i], (int)i + 1) ? passed++ : failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
