/* SPDX-License-Identifier: MIT */
/*
 * The seed's RateLimiterExample (section 4.1) in C: requests paced by a
 * token bucket (100 per second here, 10 in the seed, so the tour stays
 * short), each waiting for its token.
 *
 * Fixed against the original: Wait takes a per-call context, and a wait
 * that could not finish before the context's deadline fails at once
 * (x/time/rate's rule) instead of blocking; allow/reserve/set_limit are
 * there too; and a keyed limiter gives each client its own bucket.
 */
#include <goc.h>

#include <stdio.h>
#include <string.h>

static int example(void *unused)
{
    (void)unused;
    goc_limiter *lim;
    goc_limiter_new(100, 1, NULL, &lim); /* 100 requests/s, burst 1 */
    int64_t t0 = goc_now();
    for (int i = 0; i < 20; i++) {
        int err = goc_limiter_wait(lim, NULL);
        if (err) {
            printf("rate limit error: %s\n", goc_strerror(err));
            continue;
        }
        if (i % 5 == 4)
            printf("request %2d processed at %5.1f ms\n", i,
                   (double)(goc_now() - t0) / 1e6);
    }

    /* A 2 ms deadline cannot cover the 10 ms until the next token. */
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, NULL, 2 * GOC_MILLISECOND);
    int64_t t1 = goc_now();
    int err = goc_limiter_wait(lim, ctx);
    printf("wait with a 2 ms deadline: \"%s\" after %.2f ms (matches "
           "-ETIMEDOUT: %s)\n",
           goc_strerror(err), (double)(goc_now() - t1) / 1e6,
           goc_error_code_is(err, -ETIMEDOUT) ? "yes" : "no");
    goc_ctx_destroy(ctx);
    goc_limiter_free(lim);

    /* One bucket per client, bounded memory. */
    goc_keyed_limiter *kl;
    goc_keyed_limiter_new(1, 3, 1000, 60 * GOC_SECOND, NULL, &kl);
    const char *clients[] = { "alice", "alice", "alice", "alice", "bob" };
    for (int i = 0; i < 5; i++)
        printf("%-5s -> %s\n", clients[i],
               goc_keyed_limiter_allow(kl, clients[i], strlen(clients[i]))
                   ? "allowed"
                   : "rejected (burst of 3 used)");
    goc_keyed_limiter_free(kl);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
