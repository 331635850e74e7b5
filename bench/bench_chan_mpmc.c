/* SPDX-License-Identifier: MIT */
/*
 * chan_mpmc: 4 producers send N/4 distinct values each into one channel of
 * capacity 1024; 4 consumers range over it; the main goroutine waits for
 * the producers, closes, waits for the consumers and checks the total.
 */
#include "bench.h"

#define P 4
#define C 4

struct mpmc {
    goc_chan *c;
    long per;
    long sums[C];
    goc_wg prod, cons;
};

struct producer_arg {
    struct mpmc *m;
    long base;
};

static void producer(void *arg)
{
    struct producer_arg *a = arg;
    for (long i = 0; i < a->m->per; i++) {
        long v = a->base + i;
        goc_chan_send(a->m->c, &v, NULL);
    }
    goc_wg_done(&a->m->prod);
}

struct consumer_arg {
    struct mpmc *m;
    int idx;
};

static void consumer(void *arg)
{
    struct consumer_arg *a = arg;
    long v, s = 0;
    while (goc_chan_recv(a->m->c, &v, NULL) > 0)
        s += v;
    a->m->sums[a->idx] = s;
    goc_wg_done(&a->m->cons);
}

static int64_t once(long n)
{
    struct mpmc m = { .c = bench_chan(sizeof(long), 1024), .per = n / P };
    struct producer_arg pa[P];
    struct consumer_arg ca[C];
    int64_t t0 = goc_now();
    goc_wg_add(&m.prod, P);
    goc_wg_add(&m.cons, C);
    for (int i = 0; i < P; i++) {
        pa[i] = (struct producer_arg){ &m, i * m.per };
        goc_go(producer, &pa[i]);
    }
    for (int i = 0; i < C; i++) {
        ca[i] = (struct consumer_arg){ &m, i };
        goc_go(consumer, &ca[i]);
    }
    goc_wg_wait(&m.prod, NULL);
    goc_chan_close(m.c);
    goc_wg_wait(&m.cons, NULL);
    int64_t ns = goc_now() - t0;
    long total = 0, want = P * m.per;
    for (int i = 0; i < C; i++)
        total += m.sums[i];
    BENCH_CHECK(total == want * (want - 1) / 2, "mpmc: sum %ld", total);
    goc_chan_release(m.c);
    return ns;
}

BENCH_MAIN("chan_mpmc", 10000000, once)
