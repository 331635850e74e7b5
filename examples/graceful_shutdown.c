/* SPDX-License-Identifier: MIT */
/*
 * The seed's GracefulExample (section 1.3) in C, as a real service: a TCP
 * server that answers each line after 200 ms of "work", a background
 * worker, and a stats flush, all stopped by the shutdown manager on
 * SIGINT or SIGTERM.
 *
 *   graceful_shutdown            serve on 127.0.0.1:8080 until Ctrl-C
 *   graceful_shutdown --demo     start clients, send itself SIGINT while
 *                                their requests are in flight, and show
 *                                that they finish and new ones are refused
 *
 * Fixed against the original: registration is locked and refused once
 * the shutdown has begun; the shutdown runs once, and every caller gets
 * its result; servers stop first, then workers, then resources (the
 * original stopped tasks before servers); each phase has its own budget
 * and an overrun is reported by name; stop functions take a context and
 * return an error; a second Ctrl-C ends the process at once; and the
 * program waits for the shutdown instead of returning at once.
 */
#include <goc.h>

#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define WORK_NS (200 * GOC_MILLISECOND)

static _Atomic int served;

/* One line in, the same line upper-cased out, after some work. */
static void handle(goc_conn *c, void *arg)
{
    (void)arg;
    char line[256];
    ssize_t n;
    while ((n = goc_conn_read_request(c, line, sizeof(line), NULL)) > 0) {
        /* The request's work, abandoned (unanswered, not counted) if the
         * server closes the connection meanwhile. */
        if (goc_sleep(WORK_NS, goc_conn_ctx(c)) != 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (line[i] >= 'a' && line[i] <= 'z')
                line[i] = (char)(line[i] - 'a' + 'A');
        if (goc_fd_write(goc_conn_fd(c), line, (size_t)n, NULL) < 0)
            break;
        atomic_fetch_add(&served, 1);
    }
}

/* ---- a background worker: ticks until its context ends ----------------- */

struct worker {
    goc_ctx *ctx;
    goc_wg done;
    int ticks;
};

static void worker_main(void *arg)
{
    struct worker *w = arg;
    while (goc_sleep(50 * GOC_MILLISECOND, w->ctx) == 0)
        w->ticks++;
    goc_wg_done(&w->done);
}

static int stop_worker(goc_ctx *ctx, void *arg)
{
    struct worker *w = arg;
    goc_ctx_cancel(w->ctx);
    int err = goc_wg_wait(&w->done, ctx);
    printf("  worker stopped after %d ticks\n", w->ticks);
    return err;
}

static int flush_stats(goc_ctx *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    printf("  stats flushed: %d requests served\n", atomic_load(&served));
    return 0;
}

/* ---- the demo's clients -----------------------------------------------------
 */

struct client {
    const char *addr;
    int id;
    goc_wg *done;
};

static void client_main(void *arg)
{
    struct client *cl = arg;
    goc_fd *c;
    int err = goc_tcp_dial(cl->addr, &c, NULL);
    if (err) {
        printf("  client %d: dial: %s\n", cl->id, goc_strerror(err));
        goc_wg_done(cl->done);
        return;
    }
    char req[32], resp[32];
    int n = snprintf(req, sizeof(req), "hello %d\n", cl->id);
    goc_fd_write(c, req, (size_t)n, NULL);
    ssize_t r = goc_fd_read_full(c, resp, (size_t)n, NULL);
    printf("  client %d: %s", cl->id,
           r == n ? "answered in full\n" : "no answer\n");
    goc_fd_close(c);
    goc_wg_done(cl->done);
}

static void demo(const char *addr)
{
    enum { N = 5 };
    struct client cl[N];
    goc_wg done = GOC_WG_INIT;
    goc_wg_add(&done, N);
    for (int i = 0; i < N; i++) {
        cl[i] = (struct client){ addr, i, &done };
        goc_go(client_main, &cl[i]);
    }
    goc_sleep(50 * GOC_MILLISECOND, NULL); /* requests are in flight */
    printf("sending SIGINT to myself with %d requests in flight\n", N);
    kill(getpid(), SIGINT);
    goc_wg_wait(&done, NULL);
}

/* ---- the service
 * ---------------------------------------------------------------- */

static const char *state_name(int s)
{
    static const char *names[] = { "pending", "stopping", "stopped", "failed",
                                   "overran", "late",     "skipped" };
    return s >= 0 && s < 7 ? names[s] : "?";
}

static int service(void *arg)
{
    bool is_demo = arg != NULL;
    goc_fd *l;
    int err = goc_tcp_listen(is_demo ? "127.0.0.1:0" : "127.0.0.1:8080", &l);
    if (err) {
        fprintf(stderr, "listen: %s\n", goc_strerror(err));
        return 1;
    }
    goc_server *srv;
    goc_server_new(l, handle, NULL, NULL, &srv);
    goc_server_start(srv);
    char addr[GOC_ADDRSTRLEN];
    goc_server_addr(srv, addr, sizeof(addr));

    struct worker w = { .done = GOC_WG_INIT };
    goc_ctx_with_cancel(NULL, &w.ctx);
    goc_wg_add(&w.done, 1);
    goc_go(worker_main, &w);

    struct goc_shutdown_opts o = { .timeout = 10 * GOC_SECOND,
                                   .phase_timeout = 5 * GOC_SECOND };
    goc_shutdown *m;
    goc_shutdown_new(&o, &m);
    goc_shutdown_add(m, "stats", flush_stats, NULL, GOC_PHASE_RESOURCE);
    goc_shutdown_add(m, "worker", stop_worker, &w, GOC_PHASE_WORKERS);
    goc_shutdown_add_server(m, "tcp-server", srv);
    goc_shutdown_watch_signals(m, NULL, 0);
    printf("serving on %s; Ctrl-C to stop\n", addr);

    if (is_demo)
        demo(addr);
    int result = goc_shutdown_wait(m, NULL);
    printf("shutdown after signal %d: %s\n", goc_shutdown_signal(m),
           result ? goc_strerror(result) : "clean");
    struct goc_component_report r[8];
    int n = goc_shutdown_report(m, r, 8);
    for (int i = 0; i < n; i++)
        printf("  %-10s phase %3d  %-8s %6.1f ms\n", r[i].name, r[i].phase,
               state_name(r[i].state), (double)r[i].duration / 1e6);
    if (is_demo) {
        goc_fd *late;
        err = goc_tcp_dial(addr, &late, NULL);
        printf("a new connection now: %s\n",
               err ? goc_strerror(err) : "accepted (unexpected)");
        if (!err)
            goc_fd_close(late);
    }
    int code = goc_shutdown_exit_code(m);
    goc_shutdown_free(m);
    goc_server_free(srv);
    goc_ctx_release(w.ctx);
    return code;
}

int main(int argc, char **argv)
{
    bool is_demo = argc > 1 && strcmp(argv[1], "--demo") == 0;
    return goc_run(service, is_demo ? (void *)1 : NULL);
}
