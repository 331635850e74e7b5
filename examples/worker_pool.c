/* SPDX-License-Identifier: MIT */
/*
 * The seed's WorkerPoolExample (section 3.1) in C: 1000 jobs through 10
 * workers and a queue of 100.
 *
 * Fixed against the original: jobs are submitted by one producer with
 * backpressure (the original started 1000 goroutines, each with its own
 * 5 s timer); each job's outcome is a task handle settled exactly once,
 * so no worker ever blocks sending a result and jobs that return nothing
 * still complete; stop runs every queued job (the original dropped them);
 * cancel settles queued jobs as cancelled without running them; per-job
 * timing comes from the pool's statistics instead of a log line per job.
 */
#include <goc.h>

#include <stdio.h>
#include <stdlib.h>

static int job(goc_ctx *ctx, void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    int err = goc_sleep(100 * GOC_MICROSECOND, ctx);
    if (err)
        return err; /* cancelled: stop early */
    if (id % 100 == 99)
        return -EIO;
    if (id % 2) {
        int *v = malloc(sizeof(*v));
        if (!v)
            return -ENOMEM;
        *v = id * 2;
        *result = v;
    }
    return 0; /* even ids: no value and no error, still an outcome */
}

static goc_future *tasks[1000];

/* Submits jobs 0..n-1; returns how many were accepted. */
static int run(goc_workerpool *pool, int n)
{
    for (int i = 0; i < n; i++) {
        int err = goc_workerpool_submit(pool, job, (void *)(intptr_t)i, free,
                                        &tasks[i], NULL);
        if (err) {
            printf("job %d refused: %s\n", i, goc_strerror(err));
            return i;
        }
    }
    return n;
}

static void report(const char *what, int n)
{
    int ok = 0, failed = 0, cancelled = 0;
    for (int i = 0; i < n; i++) {
        int st, err = goc_future_get(tasks[i], &st, NULL, NULL);
        if (err)
            st = err; /* not settled: counted as failed */
        ok += st == 0;
        failed += st != 0 && st != -ECANCELED;
        cancelled += st == -ECANCELED;
        goc_future_release(tasks[i]);
    }
    printf("%s: %d jobs: %d succeeded, %d failed, %d cancelled\n", what, n, ok,
           failed, cancelled);
}

static int example(void *unused)
{
    (void)unused;
    struct goc_workerpool_config cfg = { .max_workers = 10, .queue_size = 100 };
    goc_workerpool *pool;
    if (goc_workerpool_new(&cfg, &pool) != 0)
        return 1;
    int n = run(pool, 1000);
    goc_workerpool_stop_wait(pool, NULL); /* queued jobs still run */
    report("stop", n);
    struct goc_workerpool_stats st;
    goc_workerpool_stats(pool, &st);
    double ran = n > 0 ? n : 1;
    printf("timing: mean wait %.1f us, mean run %.1f us, max run %.1f us\n",
           (double)st.wait_ns_total / ran / 1000,
           (double)st.run_ns_total / ran / 1000, (double)st.run_ns_max / 1000);
    goc_workerpool_free(pool);

    if (goc_workerpool_new(&cfg, &pool) != 0)
        return 1;
    n = run(pool, 100);
    int64_t queued = goc_workerpool_cancel(pool); /* settled, not run */
    printf("cancel settled %lld queued jobs without running them\n",
           (long long)queued);
    report("cancel", n);
    goc_workerpool_free(pool);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
