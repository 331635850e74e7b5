/* SPDX-License-Identifier: MIT */
/*
 * select2: two producers send N/2 values each on channels a and b
 * (capacity 128) and close them; the main goroutine selects over both,
 * dropping a closed channel from the select (Go's nil-channel idiom).
 */
#include "bench.h"

struct prod {
    goc_chan *c;
    long from, n;
};

static void producer(void *arg)
{
    struct prod *p = arg;
    for (long i = p->from; i < p->from + p->n; i++)
        goc_chan_send(p->c, &i, NULL);
    goc_chan_close(p->c);
}

static int64_t once(long n)
{
    goc_chan *a = bench_chan(sizeof(long), 128);
    goc_chan *b = bench_chan(sizeof(long), 128);
    struct prod pa = { a, 0, n / 2 }, pb = { b, n / 2, n / 2 };
    int64_t t0 = goc_now();
    goc_go(producer, &pa);
    goc_go(producer, &pb);
    long v, sum = 0, count = 0;
    struct goc_select_case cs[2] = { { a, GOC_SELECT_RECV, &v, 0 },
                                     { b, GOC_SELECT_RECV, &v, 0 } };
    while (cs[0].chan || cs[1].chan) {
        int k = goc_select(cs, 2, 0, NULL);
        if (cs[k].result == 0) {
            cs[k].chan = NULL;
            continue;
        }
        sum += v;
        count++;
    }
    int64_t ns = goc_now() - t0;
    long m = 2 * (n / 2);
    BENCH_CHECK(count == m && sum == m * (m - 1) / 2, "select2: %ld %ld", count,
                sum);
    goc_chan_release(a);
    goc_chan_release(b);
    return ns;
}

BENCH_MAIN("select2", 5000000, once)
