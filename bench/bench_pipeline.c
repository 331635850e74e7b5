/* SPDX-License-Identifier: MIT */
/*
 * pipeline and pipeline_buf: generator -> square -> sum over channels c1
 * and c2, unbuffered or of capacity 1024 (chosen by the program name).
 */
#include "bench.h"

#include <string.h>

struct stage {
    goc_chan *in, *out;
    long n;
};

static void generator(void *arg)
{
    struct stage *s = arg;
    for (long i = 0; i < s->n; i++)
        goc_chan_send(s->out, &i, NULL);
    goc_chan_close(s->out);
}

static void square(void *arg)
{
    struct stage *s = arg;
    long v;
    while (goc_chan_recv(s->in, &v, NULL) > 0) {
        v *= v;
        goc_chan_send(s->out, &v, NULL);
    }
    goc_chan_close(s->out);
}

static int64_t once(long n, size_t cap)
{
    goc_chan *c1 = bench_chan(sizeof(long), cap);
    goc_chan *c2 = bench_chan(sizeof(long), cap);
    struct stage gen = { NULL, c1, n }, sq = { c1, c2, n };
    int64_t t0 = goc_now();
    goc_go(generator, &gen);
    goc_go(square, &sq);
    long v, sum = 0;
    while (goc_chan_recv(c2, &v, NULL) > 0)
        sum += v;
    int64_t ns = goc_now() - t0;
    /* (n-1)n(2n-1)/6, ordered so that no intermediate overflows. */
    long want = (n - 1) * n / 2 * (2 * n - 1) / 3;
    BENCH_CHECK(sum == want, "pipeline: %ld, want %ld", sum, want);
    goc_chan_release(c1);
    goc_chan_release(c2);
    return ns;
}

static const char *name;

static int bench(void *arg)
{
    (void)arg;
    bool buf = strstr(name, "_buf") != NULL;
    long n = bench_n(2000000);
    size_t cap = buf ? 1024 : 0;
    once(n, cap);
    bench_report(buf ? "pipeline_buf" : "pipeline", once(n, cap), n);
    return 0;
}

int main(int argc, char **argv)
{
    (void)argc;
    name = argv[0];
    return goc_run(bench, NULL);
}
