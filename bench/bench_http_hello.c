/* SPDX-License-Identifier: MIT */
/*
 * http_hello: an HTTP/1.1 server on goc's TCP server (a goroutine per
 * connection) answering every GET with "Hello, World!\n", as Go's
 * net/http does with a ServeMux and one "/" handler: status 200, a Date
 * header, Content-Length: 14, Content-Type: text/plain; charset=utf-8.
 * Keep-alive as HTTP/1.1 and 1.0 define it; a malformed head is a 400
 * and ends the connection.
 *
 * It measures nothing itself: bench/run.sh runs it, loads it with wrk
 * and reports wrk's figures. It prints "http_hello: listening on ADDR" on
 * stderr once it accepts, and shuts down gracefully on SIGTERM or
 * SIGINT, or after -serve-for seconds.
 *
 * Usage: bench_http_hello [-addr HOST:PORT] [-serve-for SECONDS]
 */
#include "bench.h"

#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define HEAD_MAX 8192

static const char hello[] = "Hello, World!\n";
_Static_assert(sizeof(hello) - 1 == 14, "Content-Length below says 14");

/* What the server needs of a request head. */
struct request {
    bool head; /* HEAD: the headers of a GET, no body */
    bool http11;
    bool keep_alive;
    long long body; /* Content-Length, 0 if none */
};

/* The "Date:" value of the current second, kept per connection. */
struct date {
    time_t sec;
    char text[40];
};

static const char *date_now(struct date *d)
{
    time_t now = time(NULL);
    if (now != d->sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(d->text, sizeof(d->text), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        d->sec = now;
    }
    return d->text;
}

/* Length of the head in buf[0..n) up to and with its blank line; 0 if
 * it is not complete yet. */
static size_t head_length(const char *buf, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (buf[i] == '\n' && buf[i - 1] == '\r' && buf[i - 2] == '\n' &&
            buf[i - 3] == '\r')
            return i + 1;
    return 0;
}

static bool token_is(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(s, word, n) == 0;
}

/* Whether the comma-separated list s[0..n) holds the token word. */
static bool list_has(const char *s, size_t n, const char *word)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == ','))
            i++;
        size_t b = i;
        while (i < n && s[i] != ',' && s[i] != ' ' && s[i] != '\t')
            i++;
        if (i > b && token_is(s + b, i - b, word))
            return true;
    }
    return false;
}

static bool parse_length(const char *s, size_t n, long long *out)
{
    long long v = 0;
    if (n == 0 || n > 15)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Parses the request line and the headers the answer depends on.
 * Returns false for a head Go's server would refuse with a 400. */
static bool parse_head(const char *h, size_t n, struct request *rq)
{
    const char *end = h + n - 2; /* before the blank line's CRLF */
    const char *eol = memchr(h, '\r', (size_t)(end - h));
    const char *sp1 = memchr(h, ' ', (size_t)(eol - h));
    const char *sp2 =
        sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || sp1 == h || !sp2 || sp2 == sp1 + 1 || eol - sp2 != 9 ||
        memcmp(sp2 + 1, "HTTP/1.", 7) != 0 || (sp2[8] != '0' && sp2[8] != '1'))
        return false;
    bool http11 = rq->http11 = sp2[8] == '1';
    rq->head = sp1 - h == 4 && memcmp(h, "HEAD", 4) == 0;
    bool conn_close = false, conn_keep = false, have_length = false;
    bool have_host = false;
    rq->body = 0;
    for (const char *line = eol + 2; line < end;) {
        const char *le = memchr(line, '\r', (size_t)(end - line + 1));
        if (!le || le[1] != '\n')
            return false;
        const char *colon = memchr(line, ':', (size_t)(le - line));
        if (!colon || colon == line || colon[-1] == ' ' || colon[-1] == '\t')
            return false;
        const char *v = colon + 1, *ve = le;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t nl = (size_t)(colon - line), vl = (size_t)(ve - v);
        if (token_is(line, nl, "Connection")) {
            conn_close |= list_has(v, vl, "close");
            conn_keep |= list_has(v, vl, "keep-alive");
        } else if (token_is(line, nl, "Content-Length")) {
            long long len;
            if (!parse_length(v, vl, &len) || (have_length && len != rq->body))
                return false;
            rq->body = len;
            have_length = true;
        } else if (token_is(line, nl, "Host")) {
            have_host = true;
        } else if (token_is(line, nl, "Transfer-Encoding")) {
            return false; /* no request body is chunked here */
        }
        line = le + 2;
    }
    if (http11 && !have_host)
        return false; /* as Go: HTTP/1.1 requires a Host header */
    rq->keep_alive = http11 ? !conn_close : conn_keep && !conn_close;
    return true;
}

/* Appends @n bytes of @s at @p; the end. */
static char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}

#define PUT(p, lit) put(p, lit, sizeof(lit) - 1)

/* The answer, in Go's order of headers; an HTTP/1.0 client gets 1.0. */
static bool respond(goc_fd *fd, struct date *d, const struct request *rq)
{
    char out[256], *p = out;
    p = rq->http11 ? PUT(p, "HTTP/1.1 200 OK\r\nDate: ")
                   : PUT(p, "HTTP/1.0 200 OK\r\nDate: ");
    const char *date = date_now(d);
    p = put(p, date, strlen(date));
    p = PUT(p, "\r\nContent-Length: 14\r\n"
               "Content-Type: text/plain; charset=utf-8\r\n");
    if (rq->http11 && !rq->keep_alive)
        p = PUT(p, "Connection: close\r\n");
    else if (!rq->http11 && rq->keep_alive)
        p = PUT(p, "Connection: keep-alive\r\n");
    p = PUT(p, "\r\n");
    if (!rq->head)
        p = put(p, hello, sizeof(hello) - 1);
    ssize_t n = p - out;
    return goc_fd_write(fd, out, (size_t)n, NULL) == n;
}

static void bad_request(goc_fd *fd)
{
    static const char msg[] = "HTTP/1.1 400 Bad Request\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Connection: close\r\n\r\n400 Bad Request";
    goc_fd_write(fd, msg, sizeof(msg) - 1, NULL);
}

/* Reads until buf holds a complete head; its length, or 0 when the
 * connection ends (closed, shut down, or a head too large: 400). */
static size_t read_head(goc_conn *c, char *buf, size_t *have)
{
    size_t len;
    while ((len = head_length(buf, *have)) == 0) {
        if (*have == HEAD_MAX) {
            bad_request(goc_conn_fd(c));
            return 0;
        }
        /* A new request begins with the first byte: read it as one, so
         * that a graceful shutdown closes the connection while idle. */
        ssize_t r = *have == 0 ? goc_conn_read_request(c, buf, HEAD_MAX, NULL)
                               : goc_fd_read(goc_conn_fd(c), buf + *have,
                                             HEAD_MAX - *have, NULL);
        if (r <= 0)
            return 0;
        *have += (size_t)r;
    }
    return len;
}

/* Drops @n body bytes: those already in buf, then from the socket. */
static bool skip_body(goc_conn *c, char *buf, size_t *have, long long n)
{
    while (n > 0) {
        if (*have == 0) {
            ssize_t r = goc_fd_read(goc_conn_fd(c), buf, HEAD_MAX, NULL);
            if (r <= 0)
                return false;
            *have = (size_t)r;
        }
        size_t take = (long long)*have < n ? *have : (size_t)n;
        memmove(buf, buf + take, *have - take);
        *have -= take;
        n -= (long long)take;
    }
    return true;
}

static void serve(goc_conn *c, void *arg)
{
    (void)arg;
    char buf[HEAD_MAX];
    size_t have = 0;
    struct date date = { 0 };
    for (;;) {
        size_t len = read_head(c, buf, &have);
        if (len == 0)
            return;
        struct request rq;
        if (!parse_head(buf, len, &rq)) {
            bad_request(goc_conn_fd(c));
            return;
        }
        memmove(buf, buf + len, have - len);
        have -= len;
        if (!skip_body(c, buf, &have, rq.body) ||
            !respond(goc_conn_fd(c), &date, &rq) || !rq.keep_alive ||
            goc_conn_shutting_down(c))
            return;
    }
}

/* Waits for SIGTERM or SIGINT, or for the time to serve to run out. */
static void wait_for_stop(int64_t serve_for)
{
    goc_chan *sig = bench_chan(sizeof(int), 1);
    const int sigs[] = { SIGTERM, SIGINT };
    BENCH_CHECK(goc_signal_notify(sig, sigs, 2) == 0, "signal_notify");
    goc_ctx *t;
    BENCH_CHECK(goc_ctx_with_timeout(goc_ctx_background(), serve_for, &t) == 0,
                "ctx");
    int s;
    goc_chan_recv(sig, &s, t);
    goc_ctx_release(t);
    goc_signal_stop(sig);
    goc_chan_release(sig);
}

struct args {
    const char *addr;
    int64_t serve_for;
};

static int http_main(void *arg)
{
    struct args *a = arg;
    goc_fd *l;
    goc_server *srv;
    int err = goc_tcp_listen(a->addr, &l);
    BENCH_CHECK(err == 0, "listen %s: %s", a->addr, goc_strerror(err));
    BENCH_CHECK(goc_server_new(l, serve, NULL, NULL, &srv) == 0, "server");
    BENCH_CHECK(goc_server_start(srv) == 0, "server start");
    char addr[GOC_ADDRSTRLEN];
    goc_server_addr(srv, addr, sizeof(addr));
    fprintf(stderr, "http_hello: listening on %s\n", addr);
    wait_for_stop(a->serve_for);
    goc_ctx *t;
    BENCH_CHECK(
        goc_ctx_with_timeout(goc_ctx_background(), GOC_SECOND * 5, &t) == 0,
        "ctx");
    err = goc_server_shutdown(srv, t);
    goc_ctx_release(t);
    goc_server_free(srv);
    BENCH_CHECK(err == 0, "shutdown: %s", goc_strerror(err));
    return 0;
}

int main(int argc, char **argv)
{
    struct args a = { "127.0.0.1:8080", 60 * GOC_SECOND };
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-addr") == 0)
            a.addr = argv[i + 1];
        else if (strcmp(argv[i], "-serve-for") == 0)
            a.serve_for = (int64_t)(atof(argv[i + 1]) * (double)GOC_SECOND);
        else
            BENCH_CHECK(0, "usage: %s [-addr HOST:PORT] [-serve-for SECONDS]",
                        argv[0]);
    }
    BENCH_CHECK(argc % 2 == 1 && a.serve_for > 0,
                "usage: %s [-addr HOST:PORT] [-serve-for SECONDS]", argv[0]);
    return goc_run(http_main, &a);
}
