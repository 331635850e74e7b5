/* SPDX-License-Identifier: MIT */
/*
 * The TCP server: an accept loop on a goroutine, a goroutine per
 * connection, and a graceful shutdown in the manner of http.Server: the
 * listener closes, connections idle between requests close, and the
 * active ones are waited for. The server is shared by its owner, its
 * accept loop and its connections (a reference each), so goc_server_free()
 * never pulls it from under a running handler.
 *
 * The listener is closed, not shut down: shutdown(2) would stop the
 * socket itself listening, for every other holder of it too (a
 * descriptor passed on for a graceful restart, systemd's), where Go's
 * Shutdown only closes its own.
 */
#include "net.h"
#include "goc/server.h"
#include "goc/sync.h"
#include "goc/time.h"
#include "../internal/alloc.h"

#define BACKOFF_MIN_NS (5 * GOC_MILLISECOND)
#define BACKOFF_MAX_NS GOC_SECOND
#define ACCEPT_BATCH   64 /* accepts in a row before letting others run */

struct goc_conn {
    struct goc__dlink link; /* in srv->conns, under srv->lock */
    goc_server *srv;
    goc_fd *fd;
    goc_ctx *ctx;
    bool idle;      /* inside goc_conn_read_request() */
    bool shut_idle; /* closed by a shutdown while idle */
};

struct goc_server {
    goc__lock lock;
    goc_fd *listener;
    bool listener_closed; /* the server's reference dropped, under lock */
    /* The listener's address, kept: goc_server_addr() answers after the
     * close too. addr_err: getsockname's error. */
    struct sockaddr_storage addr;
    int addr_err;
    goc_conn_fn fn;
    void *arg;
    struct goc_server_opts opts;
    goc_ctx *ctx;        /* parent of the connections' contexts */
    goc_ctx *accept_ctx; /* ends the accept loop's waits */
    goc_sem slots;       /* max_conns */
    goc_wg running;      /* the accept loop and every handler */
    bool started, shutting_down, forced;
    struct goc__dlink *conns;
    _Atomic int refs;
    _Atomic int64_t accepted, closed_idle, accept_errors, dropped, nconns,
        nidle;
};

static void server_release(goc_server *s)
{
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (!s->listener_closed)
        goc_fd_close(s->listener);
    goc_ctx_release(s->accept_ctx);
    goc_ctx_release(s->ctx);
    goc__free(s);
}

int goc_server_new(goc_fd *listener,
                   goc_conn_fn fn,
                   void *arg,
                   const struct goc_server_opts *opts,
                   goc_server **out)
{
    struct goc_server_opts o = opts ? *opts : (struct goc_server_opts){ 0 };
    if (!listener || !fn || !out || o.max_conns < 0 ||
        (o.stack_size &&
         (o.stack_size < GOC_STACK_MIN || o.stack_size > GOC_STACK_MAX))) {
        goc_fd_close(listener);
        return -EINVAL;
    }
    goc_server *s = goc__calloc(1, sizeof(*s));
    if (!s) {
        goc_fd_close(listener);
        return -ENOMEM;
    }
    if (goc_ctx_with_cancel(NULL, &s->ctx) != 0 ||
        goc_ctx_with_cancel(NULL, &s->accept_ctx) != 0) {
        goc_ctx_release(s->ctx);
        goc__free(s);
        goc_fd_close(listener);
        return -ENOMEM;
    }
    s->listener = listener;
    socklen_t len = sizeof(s->addr);
    s->addr_err = getsockname(goc_fd_num(listener), (struct sockaddr *)&s->addr,
                              &len) == 0
                      ? 0
                      : -errno;
    s->fn = fn;
    s->arg = arg;
    s->opts = o;
    if (o.max_conns)
        goc_sem_init(&s->slots, o.max_conns);
    atomic_init(&s->refs, 1);
    *out = s;
    return 0;
}

/* ---- connections ------------------------------------------------------- */

static void conn_main(void *arg)
{
    goc_conn *c = arg;
    goc_server *s = c->srv;
    s->fn(c, s->arg);
    goc__lock_acquire(&s->lock);
    goc__dlist_remove(&s->conns, &c->link);
    goc__lock_release(&s->lock);
    goc_fd_close(c->fd);
    goc_ctx_release(c->ctx);
    goc__free(c);
    atomic_fetch_sub(&s->nconns, 1);
    if (s->opts.max_conns)
        goc_sem_release(&s->slots, 1);
    goc_wg_done(&s->running);
    server_release(s);
}

/* Serve fd on a new goroutine; on failure fd is closed and counted as
 * dropped. */
static void conn_start(goc_server *s, goc_fd *fd)
{
    goc_conn *c = goc__calloc(1, sizeof(*c));
    if (!c || goc_ctx_with_cancel(s->ctx, &c->ctx) != 0)
        goto fail;
    c->srv = s;
    c->fd = fd;
    atomic_fetch_add(&s->refs, 1);
    atomic_fetch_add(&s->nconns, 1);
    goc_wg_add(&s->running, 1);
    goc__lock_acquire(&s->lock);
    goc__dlist_push(&s->conns, &c->link);
    if (s->shutting_down) /* raced a shutdown: never served */
        goc__fd_interrupt(fd);
    goc__lock_release(&s->lock);
    struct goc_go_opts go = { .stack_size = s->opts.stack_size,
                              .name = "goc-conn" };
    if (goc_go_ex(conn_main, c, &go) == 0)
        return;
    /* No goroutine: undo, as if the connection had been served. */
    goc__lock_acquire(&s->lock);
    goc__dlist_remove(&s->conns, &c->link);
    goc__lock_release(&s->lock);
    goc_ctx_release(c->ctx);
    atomic_fetch_sub(&s->nconns, 1);
    goc_wg_done(&s->running);
    atomic_fetch_sub(&s->refs, 1);
fail:
    goc__free(c);
    goc_fd_close(fd);
    atomic_fetch_add(&s->dropped, 1);
    if (s->opts.max_conns)
        goc_sem_release(&s->slots, 1);
}

bool goc_conn_shutting_down(goc_conn *c)
{
    if (!c)
        return false;
    goc__lock_acquire(&c->srv->lock);
    bool stopping = c->srv->shutting_down;
    goc__lock_release(&c->srv->lock);
    return stopping;
}

ssize_t goc_conn_read_request(goc_conn *c, void *buf, size_t n, goc_ctx *ctx)
{
    if (!c)
        return -EINVAL;
    goc_server *s = c->srv;
    goc__lock_acquire(&s->lock);
    if (s->shutting_down) {
        /* Gone idle during a shutdown: it closes this one too. */
        if (!s->forced && !c->shut_idle) {
            c->shut_idle = true;
            atomic_fetch_add(&s->closed_idle, 1);
        }
        goc__lock_release(&s->lock);
        return GOC_ECLOSED;
    }
    c->idle = true;
    atomic_fetch_add(&s->nidle, 1);
    goc__lock_release(&s->lock);
    ssize_t r = goc_fd_read(c->fd, buf, n, ctx);
    goc__lock_acquire(&s->lock);
    c->idle = false;
    atomic_fetch_sub(&s->nidle, 1);
    bool shut = c->shut_idle;
    goc__lock_release(&s->lock);
    /* Closed as idle just as a request came: the request is refused,
     * as http.Server does; the client sees the connection close. */
    return shut ? GOC_ECLOSED : r;
}

goc_fd *goc_conn_fd(goc_conn *c)
{
    return c ? c->fd : NULL;
}

goc_ctx *goc_conn_ctx(goc_conn *c)
{
    return c ? c->ctx : NULL;
}

/* ---- accepting ----------------------------------------------------------- */

static bool accept_retryable(int err)
{
    return err == -ECONNABORTED || err == -EINTR || err == -EPROTO ||
           err == -EPERM; /* a firewall refused this one */
}

/* Errors that no pause can cure: the listener is not one (a socket
 * that does not listen, a datagram socket, not a socket at all). */
static bool accept_hopeless(int err)
{
    return err == -EINVAL || err == -ENOTSOCK || err == -EOPNOTSUPP ||
           err == -EBADF;
}

static void accept_loop(void *arg)
{
    goc_server *s = arg;
    int64_t backoff = 0;
    for (unsigned n = 1;; n++) {
        if (s->opts.max_conns &&
            goc_sem_acquire(&s->slots, 1, s->accept_ctx) != 0)
            break;
        goc_fd *fd;
        int err = goc_fd_accept(s->listener, &fd, NULL, NULL, s->accept_ctx);
        if (err == 0) {
            backoff = 0;
            atomic_fetch_add(&s->accepted, 1);
            conn_start(s, fd);
            if (n % ACCEPT_BATCH == 0)
                goc_yield();
            continue;
        }
        if (s->opts.max_conns)
            goc_sem_release(&s->slots, 1);
        if (err == GOC_ECLOSED || goc_ctx_err(s->accept_ctx))
            break;
        if (accept_retryable(err))
            continue;
        atomic_fetch_add(&s->accept_errors, 1);
        if (accept_hopeless(err)) {
            goc__log("server: its listener cannot accept (%s): it accepts "
                     "no more connections",
                     goc_strerror(err));
            break;
        }
        /* Out of descriptors or memory: wait for some to be freed. */
        backoff = backoff ? backoff * 2 : BACKOFF_MIN_NS;
        if (backoff > BACKOFF_MAX_NS)
            backoff = BACKOFF_MAX_NS;
        if (goc_sleep(backoff, s->accept_ctx) != 0)
            break;
    }
    goc_fd_release(s->listener); /* the loop's reference */
    goc_wg_done(&s->running);
    server_release(s);
}

int goc_server_start(goc_server *s)
{
    if (!s)
        return -EINVAL;
    goc__lock_acquire(&s->lock);
    int err = s->shutting_down ? GOC_ECLOSED : s->started ? -EBUSY : 0;
    s->started = true;
    /* Before a stop can begin (under the lock): the loop's own reference
     * on the listener, which may outlive the close of the server's, and
     * its count in running, which a shutdown waits for. */
    if (!err) {
        goc_fd_retain(s->listener);
        atomic_fetch_add(&s->refs, 1);
        goc_wg_add(&s->running, 1);
    }
    goc__lock_release(&s->lock);
    if (err)
        return err;
    struct goc_go_opts go = { .name = "goc-accept" };
    if ((err = goc_go_ex(accept_loop, s, &go)) != 0) {
        goc_fd_release(s->listener);
        goc_wg_done(&s->running);
        atomic_fetch_sub(&s->refs, 1);
        goc__lock_acquire(&s->lock);
        s->started = false;
        goc__lock_release(&s->lock);
    }
    return err;
}

/* ---- stopping ------------------------------------------------------------ */

/* Stop accepting; close idle connections, or all of them (force). */
static void stop(goc_server *s, bool force)
{
    goc__lock_acquire(&s->lock);
    s->shutting_down = true;
    s->forced |= force;
    bool close_listener = !s->listener_closed;
    s->listener_closed = true;
    for (struct goc__dlink *l = s->conns; l; l = l->next) {
        goc_conn *c = goc__container_of(l, goc_conn, link);
        if (force || (c->idle && !c->shut_idle)) {
            if (c->idle && !c->shut_idle) {
                c->shut_idle = true;
                /* Counted for a graceful shutdown only: a forced close
                 * ends every connection, idle or not. */
                if (!force)
                    atomic_fetch_add(&s->closed_idle, 1);
            }
            goc__fd_interrupt(c->fd);
        }
    }
    goc__lock_release(&s->lock);
    goc_ctx_cancel(s->accept_ctx);
    /* The accept loop's call returns GOC_ECLOSED, and its reference, the
     * last, closes the descriptor as it ends. */
    if (close_listener)
        goc_fd_close(s->listener);
    if (force)
        goc_ctx_cancel(s->ctx);
}

int goc_server_shutdown(goc_server *s, goc_ctx *ctx)
{
    if (!s)
        return -EINVAL;
    stop(s, false);
    /* Handlers that go idle later find shutting_down set and return. */
    return goc_wg_wait(&s->running, ctx);
}

int goc_server_close(goc_server *s)
{
    if (!s)
        return -EINVAL;
    stop(s, true);
    return 0;
}

void goc__server_retain(goc_server *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void goc__server_release(goc_server *s)
{
    server_release(s);
}

void goc_server_free(goc_server *s)
{
    if (!s)
        return;
    stop(s, true);
    server_release(s);
}

int goc_server_addr(goc_server *s, char *buf, size_t n)
{
    if (!s)
        return -EINVAL;
    return s->addr_err ? s->addr_err
                       : goc_addr_format((struct sockaddr *)&s->addr, buf, n);
}

void goc_server_get_stats(goc_server *s, struct goc_server_stats *st)
{
    if (!s || !st)
        return;
    int64_t conns = atomic_load(&s->nconns), idle = atomic_load(&s->nidle);
    *st = (struct goc_server_stats){
        .accepted = atomic_load(&s->accepted),
        .active = conns > idle ? conns - idle : 0,
        .idle = idle,
        .closed_idle = atomic_load(&s->closed_idle),
        .accept_errors = atomic_load(&s->accept_errors),
        .dropped = atomic_load(&s->dropped),
    };
}
