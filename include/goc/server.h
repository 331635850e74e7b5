/* SPDX-License-Identifier: MIT */
/*
 * goc/server.h: a TCP server that runs one goroutine per connection and
 * shuts down gracefully, like Go's http.Server.
 *
 * goc_server_shutdown() stops accepting, closes the connections that sit
 * idle between requests, and waits for the active ones to finish. A
 * handler tells the server where requests begin by reading their first
 * bytes with goc_conn_read_request(): while it waits there the
 * connection is idle, and a shutdown closes it.
 */
#ifndef GOC_SERVER_H
#define GOC_SERVER_H

#include "net.h"

#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct goc_server goc_server;
typedef struct goc_conn goc_conn;

/**
 * goc_conn_fn - serves one connection, on a goroutine of its own. The
 * server owns the connection and closes it when the handler returns.
 */
typedef void (*goc_conn_fn)(goc_conn *c, void *arg);

/** goc_server_opts - optional settings (zero: defaults). */
struct goc_server_opts {
    /* Connections served at once; the accept loop waits for a free slot
     * beyond it. 0: no limit. */
    int max_conns;
    /* Stack size of connection goroutines (0: the runtime's default). */
    size_t stack_size;
};

/** goc_server_stats - counters since the server started. */
struct goc_server_stats {
    int64_t accepted;      /* connections accepted */
    int64_t active;        /* being served, inside a request */
    int64_t idle;          /* being served, between requests */
    int64_t closed_idle;   /* closed by a graceful shutdown while idle
                              (at its start, or on going idle during it) */
    int64_t accept_errors; /* failed accepts (retried after a pause, but
                              for a listener that cannot accept) */
    int64_t dropped;       /* accepted, then closed unserved: no memory
                              or goroutine for it (counted in accepted) */
};

/**
 * goc_server_new - a server on @listener, not yet accepting.
 * @listener: a listening socket (from goc_tcp_listen()); the server owns
 *            it from now on, even on failure.
 * @fn, @arg: the connection handler.
 * @opts:     NULL for defaults.
 *
 * Return: 0; -EINVAL if @listener, @fn or @out is NULL or @opts is
 * invalid; -ENOMEM.
 */
GOC_API int goc_server_new(goc_fd *listener,
                           goc_conn_fn fn,
                           void *arg,
                           const struct goc_server_opts *opts,
                           goc_server **out);

/**
 * goc_server_start - start the accept loop on a goroutine.
 *
 * Accept failures for lack of resources (EMFILE, ENFILE, ENOBUFS,
 * ENOMEM) are counted and retried after a pause growing from 5 ms to 1 s,
 * so the loop neither spins nor stops. A listener that cannot accept at
 * all (not listening, not a stream socket: EINVAL, EOPNOTSUPP, ENOTSOCK,
 * EBADF) is reported through the log hook, counted once, and the loop
 * ends; connections already accepted are served on.
 *
 * Return: 0; -EBUSY if already started; GOC_ECLOSED after a shutdown.
 */
GOC_API int goc_server_start(goc_server *s);

/**
 * goc_server_shutdown - stop gracefully: close the listener, close idle
 * connections, then wait until every active one has finished.
 * @ctx: how long to wait; NULL waits as long as it takes.
 *
 * Connections that become idle while it waits are closed too. Calling it
 * again (or from several goroutines) waits the same way. It does not
 * interrupt active connections, even when @ctx ends: goc_server_close()
 * does.
 *
 * Return: 0 once no connection is left; -ECANCELED or -ETIMEDOUT if @ctx
 * ended first.
 */
GOC_API int goc_server_shutdown(goc_server *s, goc_ctx *ctx);

/**
 * goc_server_close - stop at once: close the listener and every
 * connection (their blocked calls fail with GOC_ECLOSED) and cancel
 * each connection's context. Handlers still run until they return.
 *
 * Return: 0. Never blocks.
 */
GOC_API int goc_server_close(goc_server *s);

/**
 * goc_server_free - release the server. If it still runs, it is closed
 * first (goc_server_close()); its memory goes once the accept loop and
 * every handler have returned.
 */
GOC_API void goc_server_free(goc_server *s);

/** goc_server_addr - the listener's address, as goc_fd_local_addr(). */
GOC_API int goc_server_addr(goc_server *s, char *buf, size_t n);

/** goc_server_get_stats - a snapshot of the counters (NULL: nothing). */
GOC_API void goc_server_get_stats(goc_server *s, struct goc_server_stats *st);

/** goc_conn_fd - the connection's descriptor (owned by the server). */
GOC_API goc_fd *goc_conn_fd(goc_conn *c);

/**
 * goc_conn_ctx - the connection's context: cancelled by
 * goc_server_close(), not by a graceful shutdown.
 */
GOC_API goc_ctx *goc_conn_ctx(goc_conn *c);

/**
 * goc_conn_shutting_down - whether the server's graceful shutdown has
 * begun. A handler that serves requests already read (pipelined) checks
 * it between them and ends the connection, as goc_conn_read_request()
 * would: a client that keeps the next request always half-sent would
 * otherwise hold the shutdown for as long as it likes.
 */
GOC_API bool goc_conn_shutting_down(goc_conn *c);

/**
 * goc_conn_read_request - read the first bytes of the next request.
 *
 * The connection counts as idle while this waits and as active once it
 * returns data. During a shutdown it returns GOC_ECLOSED at once (or as
 * soon as the shutdown begins, if it was waiting): the handler should
 * then return.
 *
 * Return: as goc_fd_read() (0 when the client closed the connection).
 */
GOC_API ssize_t goc_conn_read_request(goc_conn *c,
                                      void *buf,
                                      size_t n,
                                      goc_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* GOC_SERVER_H */
