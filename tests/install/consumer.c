/* SPDX-License-Identifier: MIT */
/*
 * consumer.c: a program from outside the goc tree, built by
 * tests/install/run.sh against an installed copy of goc, once through
 * pkg-config and once through CMake's find_package(goc).
 *
 * It starts 100 goroutines that each leave a WaitGroup, waits for them,
 * sleeps 1 ms, and prints "consumer ok". Exit status: goc_run()'s result.
 */
#include <goc.h>

#include <stdatomic.h>
#include <stdio.h>

#define NGOROUTINES 100

struct state {
    goc_wg wg;
    atomic_int ran;
    atomic_int failed;
};

static struct state st = { GOC_WG_INIT, 0, 0 };

static int fail(const char *what, int err)
{
    fprintf(stderr, "consumer: %s: %s (%d)\n", what, goc_strerror(err), err);
    return 1;
}

static void worker(void *arg)
{
    struct state *s = arg;

    atomic_fetch_add(&s->ran, 1);
    if (goc_wg_done(&s->wg) != 0)
        atomic_fetch_add(&s->failed, 1);
}

static int main_fn(void *arg)
{
    struct state *s = arg;
    int err;

    err = goc_wg_add(&s->wg, NGOROUTINES);
    if (err != 0)
        return fail("goc_wg_add", err);
    for (int i = 0; i < NGOROUTINES; i++) {
        err = goc_go(worker, s);
        if (err != 0)
            return fail("goc_go", err);
    }
    err = goc_wg_wait(&s->wg, NULL);
    if (err != 0)
        return fail("goc_wg_wait", err);
    if (atomic_load(&s->ran) != NGOROUTINES || atomic_load(&s->failed) != 0) {
        fprintf(stderr, "consumer: %d of %d goroutines ran, %d failed\n",
                atomic_load(&s->ran), NGOROUTINES, atomic_load(&s->failed));
        return 1;
    }

    err = goc_sleep(1000000, NULL); /* 1 ms */
    if (err != 0)
        return fail("goc_sleep", err);

    printf("consumer ok\n");
    return 0;
}

int main(void)
{
    int rc = goc_run(main_fn, &st);

    if (rc < 0)
        fprintf(stderr, "consumer: goc_run: %s (%d)\n", goc_strerror(rc), rc);
    fflush(stdout);
    return rc;
}
