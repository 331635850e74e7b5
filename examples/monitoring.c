/* SPDX-License-Identifier: MIT */
/*
 * The seed's MonitoringExample (section 6.1) in C: 100 goroutines do some
 * work while metrics record it, and the result is scraped from /metrics.
 *
 * The original records "task_completed" with the task's id as the value
 * (so the metric ends up as whichever id finished last) under one global
 * mutex with a time.Now() per record, and has no exposition at all. Here:
 * a counter incremented once per task, a gauge of tasks in flight, a
 * histogram of task durations, and the runtime's statistics (the seed's
 * SystemMonitor: goroutines, threads, memory) read at scrape time, served in
 * the Prometheus text format by goc's own TCP server and fetched once over TCP.
 */
#include <goc.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mon {
    goc_counter *completed;
    goc_gauge *in_flight;
    goc_histogram *duration;
    goc_wg wg;
};

static struct mon mon;

static void task(void *arg)
{
    long id = (long)(intptr_t)arg;
    int64_t t0 = goc_now();
    goc_gauge_inc(mon.in_flight);
    goc_sleep((id % 100) * GOC_MILLISECOND / 2, NULL); /* the work */
    goc_gauge_dec(mon.in_flight);
    goc_histogram_observe(mon.duration, (double)(goc_now() - t0) / 1e9);
    goc_counter_inc(mon.completed); /* not the task id (seed defect D-126) */
    goc_wg_done(&mon.wg);
}

static int setup(goc_registry *r)
{
    double b[8];
    goc_buckets_exponential(0.001, 2, 8, b); /* 1 ms .. 128 ms */
    struct goc_metric_opts h = { .type = GOC_METRIC_HISTOGRAM,
                                 .name = "task_duration_seconds",
                                 .help = "Time each task took.",
                                 .buckets = b,
                                 .nbuckets = 8 };
    goc_metric *hm;
    goc_collector *rt;
    int err = goc_counter_new(r, "tasks_completed_total",
                              "Tasks that finished.", &mon.completed);
    if (!err)
        err = goc_gauge_new(r, "tasks_in_flight", "Tasks running now.",
                            &mon.in_flight);
    if (!err)
        err = goc_metric_new(r, &h, &hm);
    if (!err)
        err = goc_histogram_with(hm, NULL, &mon.duration);
    /* The SystemMonitor part: the runtime's own figures (goroutines,
     * threads, run queues, memory), read afresh at each scrape. */
    if (!err)
        err = goc_metrics_register_runtime(
            r, GOC_STATS_SCHED | GOC_STATS_PROCESS, &rt);
    return err;
}

/* GET /metrics over TCP; prints the status line and the body. */
static int scrape(const char *addr)
{
    static char resp[16384];
    const char *req = "GET /metrics HTTP/1.1\r\nHost: example\r\n\r\n";
    char *body = NULL;
    size_t n = 0;
    goc_fd *c;
    int err = goc_tcp_dial(addr, &c, NULL);
    if (err)
        return err;
    ssize_t k = goc_fd_write(c, req, strlen(req), NULL);
    while (k >= 0 && !body && n < sizeof resp - 1) {
        if ((k = goc_fd_read(c, resp + n, sizeof resp - 1 - n, NULL)) <= 0)
            break;
        n += (size_t)k;
        resp[n] = '\0';
        body = strstr(resp, "\r\n\r\n");
    }
    const char *cl = body ? strstr(resp, "Content-Length: ") : NULL;
    size_t len = cl ? (size_t)atol(cl + 16) : 0;
    size_t have = body ? n - (size_t)(body + 4 - resp) : 0;
    if (!cl || body + 4 + len >= resp + sizeof resp ||
        goc_fd_read_full(c, body + 4 + have, len - have, NULL) !=
            (ssize_t)(len - have)) {
        goc_fd_close(c);
        return k < 0 ? (int)k : -EPROTO;
    }
    goc_fd_close(c); /* a keep-alive connection: we close it */
    body[4 + len] = '\0';
    printf("%.*s\n\n%s", (int)(strchr(resp, '\r') - resp), resp, body + 4);
    return 0;
}

static int monitoring_example(void *arg)
{
    (void)arg;
    goc_registry *r;
    goc_server *srv;
    char addr[GOC_ADDRSTRLEN];
    int err = goc_registry_new(&r);
    if (!err)
        err = setup(r);
    if (!err)
        err = goc_metrics_serve(r, "127.0.0.1:0", NULL, &srv);
    if (err) {
        fprintf(stderr, "metrics: %s\n", goc_strerror(err));
        return 1;
    }
    goc_server_addr(srv, addr, sizeof addr);
    printf("serving http://%s/metrics\n", addr);
    goc_wg_add(&mon.wg, 100);
    for (long i = 0; i < 100; i++)
        goc_go(task, (void *)(intptr_t)i);
    goc_wg_wait(&mon.wg, NULL);
    err = scrape(addr);
    goc_server_shutdown(srv, NULL);
    goc_server_free(srv);
    goc_registry_free(r);
    return err ? 1 : 0;
}

int main(void)
{
    return goc_run(monitoring_example, NULL);
}
