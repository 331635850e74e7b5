/* SPDX-License-Identifier: MIT */
/*
 * The seed's RetryExample (section 5.1) in C: an operation retried with
 * exponential backoff (delays scaled down to milliseconds for the tour).
 *
 * Fixed against the original: max attempts <= 0 is refused instead of
 * "succeeding" without running; a zero max delay means "no cap", not a
 * hot loop; delays are jittered; permanent errors stop at once; and when
 * retries end, the result keeps the last error and the attempt count.
 */
#include <goc.h>

#include <stdbool.h>
#include <stdio.h>

static int calls;

static int flaky(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)ctx;
    (void)arg;
    if (++calls < 3) {
        *err = goc_error_new(-EIO, "operation failed (call %d)", calls);
        return -EIO;
    }
    return 0;
}

static int forbidden(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)ctx;
    (void)arg;
    *err = goc_retry_permanent(goc_error_new(-EACCES, "403 forbidden"));
    return -EACCES;
}

static int always_down(goc_ctx *ctx, void *arg, goc_error **err)
{
    (void)ctx;
    (void)arg;
    *err = goc_error_new(-ECONNREFUSED, "connection refused");
    return -ECONNREFUSED;
}

static void notify(const goc_error *err, int64_t wait, void *arg)
{
    (void)arg;
    printf("  %s; retrying in %.1f ms\n", goc_error_message(err),
           (double)wait / 1e6);
}

static void show(const char *what, int rc, struct goc_retry_result *r)
{
    printf("%s: %s after %lld attempt(s)", what, rc ? "failed" : "succeeded",
           (long long)r->attempts);
    if (r->err)
        printf(": %s", goc_error_message(r->err));
    printf("\n");
    goc_error_release(r->err);
}

static int example(void *unused)
{
    (void)unused;
    goc_backoff b;
    goc_backoff_exponential(&b);
    b.initial_interval = 10 * GOC_MILLISECOND; /* the seed: 1 s */
    b.max_interval = 100 * GOC_MILLISECOND;    /* the seed: 10 s */
    b.multiplier = 2.0;
    struct goc_retry_opts o = { .backoff = &b,
                                .max_tries = 3,
                                .notify = notify };
    struct goc_retry_result r;
    int rc = goc_retry(flaky, NULL, &o, &r, NULL);
    show("flaky operation", rc, &r);

    rc = goc_retry(forbidden, NULL, &o, &r, NULL);
    show("forbidden operation", rc, &r);

    rc = goc_retry(always_down, NULL, &o, &r, NULL);
    bool kept = goc_error_is(r.err, -ECONNREFUSED); /* show() releases it */
    show("dependency down", rc, &r);
    printf("  (retries exhausted: %s; the last error is kept: matches "
           "-ECONNREFUSED: %s)\n",
           rc == GOC_EEXHAUSTED ? "yes" : "no", kept ? "yes" : "no");

    o.max_tries = 0; /* the seed returned success without running */
    printf("max_tries 0: %s\n",
           goc_strerror(goc_retry(flaky, NULL, &o, &r, NULL)));
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
