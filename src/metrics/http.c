/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics over HTTP/1.x on goc's TCP server: one goroutine per
 * connection, keep-alive, pipelined requests kept in the buffer, a bounded
 * request head, and graceful shutdown from goc_server_shutdown() (a
 * connection waiting for its next request is idle and gets closed).
 */
#include "metrics_int.h"
#include "goc/context.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../patterns/patterns.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>

struct req {
    bool get, head, keep, close, body, bad;
    bool http10; /* keep-alive must then be said */
    bool has_length;
    int hosts; /* Host lines */
    const char *path;
    size_t pathlen;
};

/* Index just past the blank line ending the head, or 0 if incomplete. */
static size_t head_end(const char *b, size_t n)
{
    for (size_t i = 3; i < n; i++)
        if (b[i] == '\n' && b[i - 1] == '\r' && b[i - 2] == '\n' &&
            b[i - 3] == '\r')
            return i + 1;
    return 0;
}

/* Does the comma-separated header value [v, e) hold @tok? */
static bool has_token(const char *v, const char *e, const char *tok)
{
    size_t tl = strlen(tok);
    while (v < e) {
        while (v < e && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *s = v;
        while (v < e && *v != ',' && *v != ' ' && *v != '\t')
            v++;
        if ((size_t)(v - s) == tl && strncasecmp(s, tok, tl) == 0)
            return true;
    }
    return false;
}

/*
 * A Content-Length value: digits between optional blanks; false for
 * anything else. A proxy in front may read "0 26" or "1,2" otherwise
 * than we would, and the body would pass for a request of its own.
 */
static bool length_value(const char *v, const char *e, bool *zero)
{
    while (v < e && (*v == ' ' || *v == '\t'))
        v++;
    while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (v == e)
        return false;
    *zero = true;
    for (; v < e; v++) {
        if (*v < '0' || *v > '9')
            return false;
        *zero &= *v == '0';
    }
    return true;
}

static void header(struct req *r, const char *l, const char *e)
{
    const char *colon = memchr(l, ':', (size_t)(e - l));
    /* No blank in a field name: "Content-Length : 26" must not slip by
     * as some other header (RFC 9112, 5.1). */
    if (!colon || colon == l || memchr(l, ' ', (size_t)(colon - l)) ||
        memchr(l, '\t', (size_t)(colon - l))) {
        r->bad = true;
        return;
    }
    size_t nl = (size_t)(colon - l);
    const char *v = colon + 1;
    if (nl == 10 && strncasecmp(l, "connection", 10) == 0) {
        /* A close wins, on whichever of several lines it is said. */
        if (has_token(v, e, "close"))
            r->close = true;
        else if (has_token(v, e, "keep-alive"))
            r->keep = true;
    } else if (nl == 14 && strncasecmp(l, "content-length", 14) == 0) {
        bool zero;
        if (r->has_length || !length_value(v, e, &zero))
            r->bad = true; /* repeated, or not a number */
        else if (!zero)
            r->body = true;
        r->has_length = true;
    } else if (nl == 17 && strncasecmp(l, "transfer-encoding", 17) == 0) {
        r->body = true;
    } else if (nl == 4 && strncasecmp(l, "host", 4) == 0) {
        r->hosts++;
    }
}

/* Parse the head b[0, n) (ending with CRLF CRLF). */
static void parse(const char *b, size_t n, struct req *r)
{
    memset(r, 0, sizeof *r);
    const char *e = memchr(b, '\r', n);
    const char *sp1 = memchr(b, ' ', (size_t)(e - b));
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(e - sp1 - 1)) : NULL;
    if (e[1] != '\n' || memchr(b, '\n', (size_t)(e - b)) || !sp1 || !sp2 ||
        sp1 == b || sp2 == sp1 + 1 || e - sp2 != 9 ||
        strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
        (sp2[8] != '0' && sp2[8] != '1')) {
        r->bad = true;
        return;
    }
    r->get = sp1 - b == 3 && memcmp(b, "GET", 3) == 0;
    r->head = sp1 - b == 4 && memcmp(b, "HEAD", 4) == 0;
    r->keep = sp2[8] == '1';
    r->http10 = sp2[8] == '0';
    r->path = sp1 + 1;
    const char *q = memchr(r->path, '?', (size_t)(sp2 - r->path));
    r->pathlen = (size_t)((q ? q : sp2) - r->path);
    for (const char *l = e + 2; l < b + n - 2 && !r->bad;) {
        const char *le = memchr(l, '\r', (size_t)(b + n - l));
        /* A bare CR, or a bare LF inside the line: a proxy that takes
         * the LF for a line's end sees other headers than we would (a
         * Content-Length hidden in "X: y\nContent-Length: 26"). */
        if (le[1] != '\n' || memchr(l, '\n', (size_t)(le - l))) {
            r->bad = true;
            break;
        }
        header(r, l, le);
        l = le + 2;
    }
    /* HTTP/1.1 requires exactly one Host line (RFC 9112, 3.2); a proxy
     * in front that picks another of several than we would routes the
     * request by a name we never saw. */
    if (r->hosts > 1 || (!r->http10 && r->hosts == 0))
        r->bad = true;
    if (r->close)
        r->keep = false;
}

/* Whether the connection stays open after a response, and whether that
 * must be said (HTTP/1.0 closes unless told otherwise). */
enum keep { CLOSE, KEEP, KEEP_SAID };

static int respond(goc_conn *c,
                   struct http_cfg *cfg,
                   const char *status,
                   const char *extra,
                   const char *body,
                   size_t blen,
                   enum keep keep,
                   bool head_only)
{
    static const char *const connection[] = {
        [CLOSE] = "Connection: close\r\n",
        [KEEP] = "",
        [KEEP_SAID] = "Connection: keep-alive\r\n",
    };
    char h[512];
    int hl = snprintf(
        h, sizeof h,
        "HTTP/1.1 %s\r\nContent-Type: %s\r\n"
        "Content-Length: %zu\r\n%s%s\r\n",
        status, extra ? "text/plain; charset=utf-8" : GOC_METRICS_CONTENT_TYPE,
        blen, extra ? extra : "", connection[keep]);
    struct iovec iov[2] = { { h, (size_t)hl }, { (void *)body, blen } };
    goc_ctx_local lc;
    goc_ctx *ctx = goc_ctx_init_timeout(&lc, goc_conn_ctx(c), cfg->timeout);
    ssize_t n = goc_fd_writev(goc_conn_fd(c), iov, head_only ? 1 : 2, ctx);
    goc_ctx_destroy(ctx);
    return n < 0 ? (int)n : 0;
}

struct scrape_call {
    goc_registry *reg;
    char *text;
    size_t len;
};

static int scrape_text(void *arg)
{
    struct scrape_call *k = arg;
    return goc_metrics_text(k->reg, &k->text, &k->len);
}

static int serve_metrics(goc_conn *c,
                         struct http_cfg *cfg,
                         enum keep keep,
                         bool head_only)
{
    /* A callback that panics fails this scrape alone (a 500), reported as
     * a task's panic is, as net/http recovers a handler's. */
    struct scrape_call k = { .reg = cfg->reg };
    int err = goc__safe_call(scrape_text, &k);
    char *text = k.text;
    size_t len = k.len;
    if (err) {
        char msg[128];
        int n = snprintf(msg, sizeof msg, "metrics: %s\n", goc_strerror(err));
        return respond(c, cfg, "500 Internal Server Error", "", msg, (size_t)n,
                       keep, head_only);
    }
    err = respond(c, cfg, "200 OK", NULL, text, len, keep, head_only);
    free(text);
    return err;
}

#define TEXT(s) s, sizeof(s) - 1

/* Answer one request; false when the connection must end after it. */
static bool answer(goc_conn *c, struct http_cfg *cfg, const struct req *r)
{
    if (r->bad) {
        respond(c, cfg, "400 Bad Request", "", TEXT("400 Bad Request\n"), CLOSE,
                false);
        return false;
    }
    /* A shutdown ends the connection after this response, so that a
     * client pipelining request after request cannot hold it open. */
    enum keep keep = !r->keep || r->body || goc_conn_shutting_down(c) ? CLOSE
                     : r->http10 ? KEEP_SAID
                                 : KEEP;
    int err;
    if (r->pathlen != 8 || memcmp(r->path, "/metrics", 8) != 0)
        err = respond(c, cfg, "404 Not Found", "", TEXT("404 page not found\n"),
                      keep, r->head);
    else if (!r->get && !r->head)
        err = respond(c, cfg, "405 Method Not Allowed", "Allow: GET, HEAD\r\n",
                      TEXT("Method Not Allowed\n"), keep, false);
    else
        err = serve_metrics(c, cfg, keep, r->head);
    return err == 0 && keep != CLOSE;
}

/*
 * Wait for a request's first bytes, at most the idle timeout: a client
 * that connects and says nothing (or vanished behind a NAT) must not
 * hold one of the server's limited slots forever, or every scrape would
 * wait for a free one.
 */
static ssize_t read_first(goc_conn *c, struct http_cfg *cfg, char *buf)
{
    goc_ctx_local lc;
    goc_ctx *ctx =
        goc_ctx_init_timeout(&lc, goc_conn_ctx(c), cfg->idle_timeout);
    ssize_t n = goc_conn_read_request(c, buf, cfg->max_request, ctx);
    goc_ctx_destroy(ctx);
    return n;
}

/* Read until buf holds a whole head; its length, or 0 to end. The rest
 * of a head has cfg->timeout in all, so a sender that trickles it byte
 * by byte cannot hold the connection either. */
static size_t read_head(
    goc_conn *c, struct http_cfg *cfg, char *buf, size_t *have, bool *refused)
{
    size_t end;
    goc_ctx_local lc;
    goc_ctx *ctx = NULL;
    while (!(end = head_end(buf, *have))) {
        if (*have == cfg->max_request) {
            respond(c, cfg, "431 Request Header Fields Too Large", "",
                    TEXT("431 Request Header Fields Too Large\n"), CLOSE,
                    false);
            *refused = true;
            break;
        }
        ssize_t n;
        if (*have == 0) { /* idle until a request starts */
            n = read_first(c, cfg, buf);
        } else {
            if (!ctx)
                ctx = goc_ctx_init_timeout(&lc, goc_conn_ctx(c), cfg->timeout);
            n = goc_fd_read(goc_conn_fd(c), buf + *have,
                            cfg->max_request - *have, ctx);
        }
        if (n <= 0)
            break;
        *have += (size_t)n;
    }
    goc_ctx_destroy(ctx);
    return end;
}

/*
 * Close gracefully after a response the client may still be sending
 * into (a refused head, a body): stop writing, then drain its input for
 * a while. Closing with unread input would send a reset, which can
 * destroy the response before the client reads it (Go's net/http does
 * the same "close write and wait").
 */
static void linger(goc_conn *c, char *buf, size_t n)
{
    goc_fd *fd = goc_conn_fd(c);
    goc_fd_shutdown(fd, SHUT_WR);
    goc_ctx_local lc;
    goc_ctx *ctx =
        goc_ctx_init_timeout(&lc, goc_conn_ctx(c), 500 * GOC_MILLISECOND);
    for (size_t total = 0; total < 256 * 1024;) {
        ssize_t r = goc_fd_read(fd, buf, n, ctx);
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    goc_ctx_destroy(ctx);
}

static void handle(goc_conn *c, void *arg)
{
    struct http_cfg *cfg = arg;
    char *buf = goc__malloc(cfg->max_request);
    size_t have = 0, end;
    if (!buf) { /* said, not just closed */
        respond(c, cfg, "503 Service Unavailable", "",
                TEXT("503 Service Unavailable\n"), CLOSE, false);
        return;
    }
    bool refused = false;
    while ((end = read_head(c, cfg, buf, &have, &refused)) != 0) {
        struct req r;
        parse(buf, end, &r);
        if (!answer(c, cfg, &r)) {
            /* Input left unread would make the close a reset. */
            refused = r.bad || r.body || have > end;
            break;
        }
        memmove(buf, buf + end, have - end); /* a pipelined next request */
        have -= end;
    }
    if (refused)
        linger(c, buf, cfg->max_request);
    goc__free(buf);
}

/*
 * The settings for a server of @r: an equal one already kept in @r, or a
 * new one kept there until the registry is freed. A server cannot tell us
 * when its last handler returned, so the settings are not freed with it;
 * sharing them bounds what a registry keeps by the number of distinct
 * settings, however often servers are started (the default registry is
 * never freed).
 */
static struct http_cfg *cfg_get(goc_registry *r, const struct http_cfg *want)
{
    goc__lock_acquire(&r->mu);
    struct http_cfg *cfg = r->http;
    while (cfg && (cfg->max_request != want->max_request ||
                   cfg->timeout != want->timeout ||
                   cfg->idle_timeout != want->idle_timeout))
        cfg = cfg->next;
    if (!cfg && (cfg = goc__malloc(sizeof *cfg)) != NULL) {
        *cfg = *want;
        cfg->next = r->http;
        r->http = cfg;
    }
    goc__lock_release(&r->mu);
    return cfg;
}

int goc_metrics_serve(goc_registry *r,
                      const char *addr,
                      const struct goc_metrics_http_opts *o,
                      goc_server **out)
{
    struct goc_metrics_http_opts d = { 0 };
    if (!o)
        o = &d;
    if (!addr || !out || o->max_conns < 0 || o->timeout < 0 ||
        o->idle_timeout < 0 || (o->max_request && o->max_request < 64) ||
        o->max_request > GOC_METRICS_MAX_REQUEST)
        return -EINVAL;
    if (!r)
        r = goc_registry_default();
    struct http_cfg want = {
        .reg = r,
        .max_request = o->max_request ? o->max_request : 8192,
        .timeout = o->timeout ? o->timeout : 10 * GOC_SECOND,
        .idle_timeout = o->idle_timeout ? o->idle_timeout : 60 * GOC_SECOND,
    };
    struct http_cfg *cfg = cfg_get(r, &want);
    if (!cfg)
        return -ENOMEM;
    goc_fd *l;
    int err = goc_tcp_listen(addr, &l);
    if (err)
        return err;
    struct goc_server_opts so = { .max_conns =
                                      o->max_conns ? o->max_conns : 64 };
    goc_server *srv;
    if ((err = goc_server_new(l, handle, cfg, &so, &srv)) != 0)
        return err;
    if ((err = goc_server_start(srv)) != 0) {
        goc_server_free(srv);
        return err;
    }
    *out = srv;
    return 0;
}
