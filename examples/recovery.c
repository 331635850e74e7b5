/* SPDX-License-Identifier: MIT */
/*
 * The seed's RecoveryExample (section 5.2) in C: a recovery handler that
 * records panics from goroutines, SafeExecute and SafeExecuteResult.
 *
 * Fixed against the original: a record names the goroutine that panicked
 * (the original stored the number of goroutines); the callback runs on
 * the panicking goroutine, outside the lock, with its own recovery (the
 * original spawned a goroutine per panic, unrecovered); the records live
 * in a bounded ring; the policy is explicit (here: record and go on); a
 * panic with no message is still a failure; and the backtrace is kept.
 * The original panicked at random (time % 2); here each case is shown.
 * The handler also takes the panics of a goroutine pool's tasks, as the
 * seed's handler was meant to for its worker pools.
 */
#include <goc.h>

#include <stdio.h>
#include <string.h>

static void on_panic(const struct goc_panic_record *r, void *arg)
{
    (void)arg;
    /* The first line of the backtrace, without its indentation. */
    const char *frame = r->backtrace + strspn(r->backtrace, " \t\n");
    int len = (int)strcspn(frame, "\n");
    printf("  recorded: goroutine %lld: \"%s\" (innermost frame: %.*s)\n",
           (long long)r->goroutine, r->message, len, frame);
}

static void release_buffer(void *buf)
{
    printf("  cleanup: buffer released during the unwind\n");
    (void)buf;
}

/* A task that panics halfway, with a cleanup registered. */
static int faulty_task(void *arg)
{
    static char buffer[64];
    goc_defer(release_buffer, buffer);
    goc_panic(-EIO, "something went wrong in task %d", *(int *)arg);
}

struct worker {
    goc_recovery *h;
    int id;
    goc_wg *wg;
};

static void worker(void *arg)
{
    struct worker *w = arg;
    int r = goc_recovery_run(w->h, faulty_task, &w->id);
    printf("  worker %d: task ended with %s; the worker lives on\n", w->id,
           goc_strerror(r));
    goc_wg_done(w->wg);
}

static int may_panic(void *arg)
{
    if (*(bool *)arg)
        goc_panic(0, "random panic");
    printf("  safe execution completed\n");
    return 0;
}

/* SafeExecuteResult: the result is set only on success. */
static int compute(void *arg)
{
    snprintf(arg, 16, "success");
    return 0;
}

static int recovery_main(void *arg)
{
    (void)arg;
    goc_recovery *h;
    goc_recovery_new(100, on_panic, NULL, &h);

    printf("panics in goroutines, recorded:\n");
    goc_wg wg = GOC_WG_INIT;
    struct worker w[2];
    goc_wg_add(&wg, 2);
    for (int i = 0; i < 2; i++) {
        w[i] = (struct worker){ h, i + 1, &wg };
        goc_go(worker, &w[i]);
    }
    goc_wg_wait(&wg, NULL);

    printf("a goroutine pool reporting to the same handler:\n");
    goc_pool *pool;
    struct goc_pool_config cfg = { .capacity = 2 };
    goc_pool_new(&cfg, &pool);
    goc_pool_set_recovery(pool, h);
    int ids[2] = { 3, 4 };
    for (int i = 0; i < 2; i++)
        goc_pool_submit(pool, faulty_task, &ids[i], NULL);
    goc_pool_wait_idle(pool, NULL);
    struct goc_pool_stats st;
    goc_pool_stats(pool, &st);
    printf("  pool: %lld tasks, %lld failed; its workers live on\n",
           (long long)st.completed, (long long)st.failed);
    goc_pool_free(pool);

    printf("SafeExecute, both ways:\n");
    for (int i = 0; i < 2; i++) {
        bool do_panic = i == 0;
        goc_panic_info *p = NULL;
        int r = goc_try(may_panic, &do_panic, &p);
        if (r == GOC_EPANIC)
            printf("  safe execution failed: %s\n", goc_panic_info_message(p));
        goc_panic_info_free(p);
    }

    printf("SafeExecuteResult:\n");
    char result[16] = "";
    if (goc_try(compute, result, NULL) == 0)
        printf("  result: %s\n", result);

    int64_t over;
    int64_t recorded = goc_recovery_count(h, &over);
    printf("%lld panics recorded, %lld overwritten\n", (long long)recorded,
           (long long)over);
    goc_recovery_free(h);
    return 0;
}

int main(void)
{
    return goc_run(recovery_main, NULL);
}
