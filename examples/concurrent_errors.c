/* SPDX-License-Identifier: MIT */
/*
 * The seed's ConcurrentErrorExample (section 5.1) in C: ten goroutines,
 * every third one fails, and an aggregator collects the errors.
 *
 * Fixed against the original: the result is an errors.Join value (the
 * seed flattened it with %v, so errors.Is could no longer find a cause),
 * the accessor is named err (the seed's Error() returned an error), and
 * the collector can be capped and deduplicated.
 */
#include <goc.h>

#include <stdio.h>

static goc_error_agg *agg;
static goc_wg wg = GOC_WG_INIT;

static void task(void *arg)
{
    int id = (int)(intptr_t)arg;
    if (id % 3 == 0) {
        goc_error *e =
            goc_error_new(id == 6 ? -ETIMEDOUT : -EIO, "task %d failed", id);
        goc_error_agg_add(agg, e);
        goc_error_release(e);
    }
    goc_wg_done(&wg);
}

static int example(void *unused)
{
    (void)unused;
    goc_error_agg_new(NULL, &agg);
    goc_wg_add(&wg, 10);
    for (int i = 0; i < 10; i++)
        goc_go(task, (void *)(intptr_t)i);
    goc_wg_wait(&wg, NULL);

    goc_error *err = goc_error_agg_err(agg);
    if (err) {
        printf("%zu tasks failed:\n%s\n", goc_error_nchildren(err),
               goc_error_message(err));
        printf("one of them timed out: %s\n",
               goc_error_is(err, -ETIMEDOUT) ? "yes" : "no");
    } else {
        printf("all tasks succeeded\n");
    }
    goc_error_release(err);
    goc_error_agg_free(agg);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
