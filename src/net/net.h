/* SPDX-License-Identifier: MIT */
/* Private side of goc/net.h: the handle and the I/O loop. */
#ifndef GOC_NET_PRIVATE_H
#define GOC_NET_PRIVATE_H

#include "goc/net.h"
#include "goc/server.h"
#include "../context/ctx.h"

#include <stdbool.h>

struct goc_fd {
    struct goc__pd *pd; /* from a cache that never frees */
    int fd;
    bool pollable;  /* false for regular files: calls block the thread */
    bool is_socket; /* writes use send(MSG_NOSIGNAL): no SIGPIPE */
    bool tcp_inq;   /* reads report the bytes left (TCP_INQ) */
    _Atomic bool closed;
    _Atomic int refs; /* the owner's, plus one per call in flight */
};

/*
 * One attempt of a system call: its result, or -errno (-EAGAIN: wait).
 * A read that can tell it emptied the receive queue sets *drained, and
 * the next call waits for an event instead of trying (and failing).
 */
typedef ssize_t (*goc__fd_op)(int fd, void *arg, bool *drained);

/* Wrap an open non-blocking descriptor (the runtime starts if needed). */
int goc__fd_wrap(int fd, goc_fd **out);
/* Hold f for a call; GOC_ECLOSED once closed. */
int goc__fd_acquire(goc_fd *f);
void goc__fd_release(goc_fd *f);
/* Fail every call on f with GOC_ECLOSED from now on, waking the blocked
 * ones, but keep the descriptor until the last reference goes. */
void goc__fd_interrupt(goc_fd *f);
/* Run op until it does not return -EAGAIN, parking on dir meanwhile. */
ssize_t goc__fd_io(goc_fd *f, int dir, goc__fd_op op, void *arg, goc_ctx *ctx);
/* Options goc sets on every TCP connection (TCP_NODELAY, TCP_INQ). */
void goc__tcp_defaults(goc_fd *f);
/* The size of an AF_INET or AF_INET6 address. */
socklen_t goc__addr_len(const struct sockaddr_storage *ss);
/* A new non-blocking, close-on-exec socket, wrapped. */
int goc__socket(int family, int type, goc_fd **out);
/* Keep s's memory for another holder (the shutdown manager): the last of
 * goc_server_free() and the holders' releases frees it. */
void goc__server_retain(goc_server *s);
void goc__server_release(goc_server *s);

#endif /* GOC_NET_PRIVATE_H */
