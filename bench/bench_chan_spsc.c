/* SPDX-License-Identifier: MIT */
/*
 * chan_spsc and chan_unbuf_spsc: a producer goroutine sends 0..N-1 and
 * closes; the main goroutine sums with the for-range idiom. The capacity
 * (1024, or 0 for the unbuffered variant) is chosen by the program name.
 */
#include "bench.h"

#include <string.h>

struct prod {
    goc_chan *c;
    long n;
};

static void producer(void *arg)
{
    struct prod *p = arg;
    for (long i = 0; i < p->n; i++)
        goc_chan_send(p->c, &i, NULL);
    goc_chan_close(p->c);
}

static int64_t once(long n, size_t cap)
{
    struct prod p = { bench_chan(sizeof(long), cap), n };
    int64_t t0 = goc_now();
    goc_go(producer, &p);
    long v, sum = 0;
    while (goc_chan_recv(p.c, &v, NULL) > 0)
        sum += v;
    int64_t ns = goc_now() - t0;
    BENCH_CHECK(sum == n * (n - 1) / 2, "spsc: sum %ld", sum);
    goc_chan_release(p.c);
    return ns;
}

static const char *name;

static int bench(void *arg)
{
    (void)arg;
    bool unbuf = strstr(name, "unbuf") != NULL;
    long n = bench_n(unbuf ? 2000000 : 10000000);
    size_t cap = unbuf ? 0 : 1024;
    once(n, cap);
    bench_report(unbuf ? "chan_unbuf_spsc" : "chan_spsc", once(n, cap), n);
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    name = argv[0];
    return goc_run(bench, NULL);
}
