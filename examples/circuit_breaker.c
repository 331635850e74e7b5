/* SPDX-License-Identifier: MIT */
/*
 * The seed's CircuitBreakerExample (section 4.1) in C, then a dependency
 * that goes down and comes back, to show the states.
 *
 * Fixed against the original: the call runs outside the breaker's lock
 * (ten 50 ms calls overlap instead of taking 500 ms), half-open admits a
 * bounded number of probes and re-opens on the first failure, state
 * changes are reported in order outside the lock, and "open" is a typed
 * code (GOC_EOPEN).
 */
#include <goc.h>

#include <stdio.h>
#include <string.h>

static int i_global;

/* goc's names for its own codes, the C library's for -errno values. */
static const char *describe(int err)
{
    return err < 0 && err > -4096 ? strerror(-err) : goc_strerror(err);
}
static bool down;

static int operation(void *arg)
{
    (void)arg;
    if (i_global % 3 == 0) /* the seed's "may fail" */
        return -EIO;
    printf("operation %d succeeded\n", i_global);
    return 0;
}

static int dependency(void *arg)
{
    (void)arg;
    return down ? -ECONNREFUSED : 0;
}

static void changed(const char *name,
                    goc_breaker_state from,
                    goc_breaker_state to,
                    void *arg)
{
    (void)arg;
    printf("  [%s: %s -> %s]\n", name, goc_breaker_state_name(from),
           goc_breaker_state_name(to));
}

static int nap(void *arg)
{
    (void)arg;
    return goc_sleep(50 * GOC_MILLISECOND, NULL);
}

static void caller(void *arg)
{
    goc_breaker_execute(arg, nap, NULL);
}

static int example(void *unused)
{
    (void)unused;
    struct goc_breaker_settings s = { .name = "db",
                                      .max_requests = 2,
                                      .timeout = 100 * GOC_MILLISECOND,
                                      .on_state_change = changed };
    goc_breaker *cb;
    goc_breaker_new(&s, &cb);
    for (i_global = 0; i_global < 10; i_global++) {
        int err = goc_breaker_execute(cb, operation, NULL);
        if (err)
            printf("operation %d failed: %s\n", i_global, describe(err));
    }

    printf("the dependency goes down:\n");
    down = true;
    for (int i = 0; i < 8; i++) {
        int err = goc_breaker_execute(cb, dependency, NULL);
        printf("  call %d: %s\n", i, describe(err));
    }
    down = false;
    goc_sleep(110 * GOC_MILLISECOND, NULL); /* the open timeout passes */
    printf("it is back; two probes close the breaker:\n");
    for (int i = 0; i < 2; i++)
        printf("  probe %d: %s\n", i,
               describe(goc_breaker_execute(cb, dependency, NULL)));

    /* Ten 50 ms calls through the closed breaker overlap. */
    int64_t t0 = goc_now();
    for (int i = 0; i < 10; i++)
        goc_go(caller, cb);
    goc_sleep(10 * GOC_MILLISECOND, NULL);
    struct goc_breaker_counts c;
    goc_breaker_counts(cb, &c);
    printf("10 slow calls in flight at once: %lld\n", (long long)c.in_flight);
    while (c.in_flight) {
        goc_sleep(5 * GOC_MILLISECOND, NULL);
        goc_breaker_counts(cb, &c);
    }
    printf("all 10 done in %.0f ms (the seed's lock made it 500 ms)\n",
           (double)(goc_now() - t0) / 1e6);
    goc_breaker_free(cb);
    return 0;
}

int main(void)
{
    return goc_run(example, NULL);
}
