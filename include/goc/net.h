/* SPDX-License-Identifier: MIT */
/*
 * goc/net.h: blocking-style I/O on descriptors, TCP and UDP.
 *
 * A goc_fd owns a descriptor made non-blocking and registered once with
 * the runtime's poller. Calls look blocking: a goroutine parks until the
 * descriptor is ready (its thread runs other goroutines meanwhile); a
 * plain thread blocks. Every call that can wait takes a context last
 * (NULL: no deadline), and fails with -ECANCELED or -ETIMEDOUT when it
 * ends. Sockets, pipes, FIFOs, eventfds, terminals work this way; regular
 * files cannot be polled, so their calls run in a blocking section
 * (goc_blocking_enter()).
 *
 * Closing a goc_fd (goc_fd_close()) wakes every call blocked on it with
 * GOC_ECLOSED; the descriptor itself is closed once the last call in
 * flight has returned, so its number is never reused under a running
 * call.
 */
#ifndef GOC_NET_H
#define GOC_NET_H

#include "common.h"

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A descriptor owned by goc (opaque). */
typedef struct goc_fd goc_fd;

/** Longest "host:port" text goc writes: "[v6 address%zone]:65535". */
#define GOC_ADDRSTRLEN 80

/**
 * goc_fd_open - take ownership of an open descriptor.
 * @fd:  the descriptor; goc sets O_NONBLOCK on it (on its open file
 *       description, so dups see it too) and closes it in goc_fd_close().
 * @out: receives the handle.
 *
 * Return: 0; -EBADF if @fd is not open; -EINVAL if @out is NULL; -ENOMEM.
 * On failure @fd is left open and unchanged.
 */
GOC_API int goc_fd_open(int fd, goc_fd **out);

/**
 * goc_fd_close - close the handle, waking every call blocked on it.
 * @f: the handle; it must not be used once this returns.
 *
 * Calls in flight on other goroutines or threads return GOC_ECLOSED. The
 * descriptor is closed when the last of them has returned, by whichever
 * call returns last. That close(2) may wait (a socket with SO_LINGER, a
 * file on a network filesystem); it runs as a blocking section, so it
 * never holds up other goroutines.
 *
 * Return: 0, or -EINVAL if @f is NULL.
 */
GOC_API int goc_fd_close(goc_fd *f);

/**
 * goc_fd_retain - take another reference on @f, for a goroutine or thread
 * that shares it (an accept loop, say, while another goroutine may close
 * the listener). Returns @f.
 *
 * A handle stays valid while any reference is held: once some holder has
 * closed it, calls on it return GOC_ECLOSED instead of touching freed
 * memory. Each reference taken here is dropped with goc_fd_release().
 */
GOC_API goc_fd *goc_fd_retain(goc_fd *f);

/**
 * goc_fd_release - drop a reference from goc_fd_retain() without closing
 * the handle for the other holders; the last reference closes the
 * descriptor. @f may be NULL.
 */
GOC_API void goc_fd_release(goc_fd *f);

/**
 * goc_fd_num - the descriptor number (for setsockopt() and the like).
 *
 * Return: the descriptor, or -EINVAL if @f is NULL.
 */
GOC_API int goc_fd_num(const goc_fd *f);

/**
 * goc_fd_read - read up to @n bytes (one read(2) once data is there).
 * @f: the handle. @buf, @n: the buffer. @ctx: deadline or cancellation.
 *
 * Return: bytes read (> 0), 0 at end of file, or a negative error:
 * -ECANCELED/-ETIMEDOUT when @ctx ended (nothing was read), GOC_ECLOSED
 * when the handle was closed, or -errno of read(2) (e.g. -ECONNRESET).
 * With @n = 0 it returns at once, 0 unless one of those errors applies
 * (as Go's Read of an empty buffer does); that 0 is not end of file.
 */
GOC_API ssize_t goc_fd_read(goc_fd *f, void *buf, size_t n, goc_ctx *ctx);

/**
 * goc_fd_read_full - read exactly @n bytes, like Go's io.ReadFull.
 *
 * Return: @n; fewer if end of file came first (0 if it came before any
 * byte); or a negative error as goc_fd_read() (bytes read before the
 * error are consumed).
 */
GOC_API ssize_t goc_fd_read_full(goc_fd *f, void *buf, size_t n, goc_ctx *ctx);

/**
 * goc_fd_write - write all @n bytes, looping over partial writes.
 *
 * Return: @n, or a negative error as goc_fd_read() (-EPIPE when the peer
 * is gone: goc ignores SIGPIPE for its sockets). After an error, a prefix
 * of @buf may have been written; goc_fd_write_some() tells how much.
 */
GOC_API ssize_t goc_fd_write(goc_fd *f,
                             const void *buf,
                             size_t n,
                             goc_ctx *ctx);

/**
 * goc_fd_write_some - one write(2) once the descriptor is writable.
 *
 * Return: bytes written (> 0 when @n > 0), or a negative error (then
 * nothing was written).
 */
GOC_API ssize_t goc_fd_write_some(goc_fd *f,
                                  const void *buf,
                                  size_t n,
                                  goc_ctx *ctx);

/**
 * goc_fd_readv - scatter read: one readv(2) once data is there.
 *
 * Return: as goc_fd_read(). -EINVAL if @cnt is negative or over IOV_MAX.
 */
GOC_API ssize_t goc_fd_readv(goc_fd *f,
                             const struct iovec *iov,
                             int cnt,
                             goc_ctx *ctx);

/**
 * goc_fd_writev - gather write of every byte of @iov, looping over
 * partial writes (@iov itself is not modified).
 *
 * Return: the total written, or a negative error as goc_fd_write().
 */
GOC_API ssize_t goc_fd_writev(goc_fd *f,
                              const struct iovec *iov,
                              int cnt,
                              goc_ctx *ctx);

/**
 * goc_fd_accept - accept a connection on a listening socket.
 * @l:    the listener.
 * @out:  receives the connection (non-blocking, close-on-exec, registered).
 * @peer: if not NULL, receives the peer's address (and @peerlen its size).
 * @ctx:  deadline or cancellation.
 *
 * TCP connections get TCP_NODELAY, as in Go.
 *
 * Return: 0, or a negative error: -ECANCELED/-ETIMEDOUT, GOC_ECLOSED, or
 * -errno of accept4(2) (-EMFILE when out of descriptors).
 */
GOC_API int goc_fd_accept(goc_fd *l,
                          goc_fd **out,
                          struct sockaddr_storage *peer,
                          socklen_t *peerlen,
                          goc_ctx *ctx);

/**
 * goc_fd_connect - connect a socket, waiting for the handshake.
 *
 * A UNIX stream socket whose listener's queue is full waits for room, as
 * a blocking connect does: no event says when, so it tries again after
 * pauses growing from 1 to 8 ms.
 *
 * Return: 0, or a negative error: -ECANCELED/-ETIMEDOUT (the socket is
 * then in an unspecified state: close it), GOC_ECLOSED, or the
 * connection's error (-ECONNREFUSED, -ENETUNREACH, ...).
 */
GOC_API int goc_fd_connect(goc_fd *f,
                           const struct sockaddr *addr,
                           socklen_t addrlen,
                           goc_ctx *ctx);

/**
 * goc_fd_shutdown - half-close a socket: SHUT_RD, SHUT_WR or SHUT_RDWR.
 *
 * After SHUT_WR the peer reads end of file while this side can still
 * read. A call blocked on the side shut down here returns as the kernel
 * then answers it: a read gets end of file (0), a write -EPIPE. To end
 * every call on the descriptor, use goc_fd_close().
 *
 * Return: 0, GOC_ECLOSED if the handle was closed (by any holder), or
 * -errno of shutdown(2).
 */
GOC_API int goc_fd_shutdown(goc_fd *f, int how);

/**
 * goc_fd_local_addr / goc_fd_remote_addr - a socket's address as text,
 * "1.2.3.4:80" or "[::1]:80" (an IPv4 peer of a dual-stack socket shows
 * as IPv4).
 * @buf: at least GOC_ADDRSTRLEN bytes for any address.
 *
 * Return: the text's length, or -errno (-ENOTCONN), GOC_ECLOSED if the
 * handle was closed (by any holder), or -ENOSPC if @n is too small.
 */
GOC_API int goc_fd_local_addr(goc_fd *f, char *buf, size_t n);
GOC_API int goc_fd_remote_addr(goc_fd *f, char *buf, size_t n);

/* ---- addresses ---------------------------------------------------------- */

/**
 * goc_addr_format - "ip:port" text of a socket address (IPv6 in
 * brackets, with its zone; an IPv4-mapped IPv6 address as IPv4).
 *
 * Return: the length, -EAFNOSUPPORT for a non-IP family, -ENOSPC.
 */
GOC_API int goc_addr_format(const struct sockaddr *sa, char *buf, size_t n);

/**
 * goc_addr_resolve - resolve "host:port" into socket addresses.
 * @addr:   "host:port", "[v6]:port" or ":port" (any address: IPv6's,
 *          then IPv4's for a system without IPv6); port is 0 to 65535
 *          in decimal digits, or a service name ("http").
 * @socktype: SOCK_STREAM or SOCK_DGRAM.
 * @out:    receives up to @max addresses, in the resolver's order.
 * @ctx:    deadline or cancellation.
 *
 * Numeric hosts resolve at once; names go through getaddrinfo() on the
 * blocking pool, so the goroutine's thread keeps running others.
 *
 * Return: the number of addresses (>= 1), -EINVAL for a malformed
 * @addr (a port out of range, or with a sign or a space, included),
 * GOC_ERESOLVE if the name does not resolve, -ECANCELED/-ETIMEDOUT.
 */
GOC_API int goc_addr_resolve(const char *addr,
                             int socktype,
                             struct sockaddr_storage *out,
                             int max,
                             goc_ctx *ctx);

/* ---- TCP ---------------------------------------------------------------- */

/**
 * goc_tcp_listen - a listening TCP socket on "host:port".
 * @addr: ":0" picks a free port on every address; "127.0.0.1:0" on
 *        loopback; "[::1]:8080" on IPv6 loopback.
 * @out:  receives the listener (SO_REUSEADDR set, backlog SOMAXCONN).
 *
 * Of a host's addresses, the first this system can bind is taken (IPv6's
 * any address, else IPv4's, for ":port"); a port in use or refused on it
 * is an error, not a listener on another of them.
 *
 * Return: 0, or -EINVAL, GOC_ERESOLVE, -errno (-EADDRINUSE, ...).
 */
GOC_API int goc_tcp_listen(const char *addr, goc_fd **out);

/**
 * goc_tcp_dial - connect to "host:port", trying each resolved address in
 * turn, with TCP_NODELAY set as in Go.
 *
 * Return: 0, or the last address's error, -ECANCELED/-ETIMEDOUT,
 * GOC_ERESOLVE, -EINVAL.
 */
GOC_API int goc_tcp_dial(const char *addr, goc_fd **out, goc_ctx *ctx);

/* ---- UDP ---------------------------------------------------------------- */

/**
 * goc_udp_listen - a UDP socket bound to "host:port" (":0": any port).
 *
 * Return: as goc_tcp_listen().
 */
GOC_API int goc_udp_listen(const char *addr, goc_fd **out);

/**
 * goc_udp_dial - a UDP socket connected to "host:port": goc_fd_read() and
 * goc_fd_write_some() then exchange datagrams with that peer only.
 *
 * Return: as goc_tcp_dial().
 */
GOC_API int goc_udp_dial(const char *addr, goc_fd **out, goc_ctx *ctx);

/**
 * goc_udp_send_to - send one datagram to @to.
 *
 * Return: bytes sent (the whole datagram), or a negative error as
 * goc_fd_write_some() (-EMSGSIZE when too big).
 */
GOC_API ssize_t goc_udp_send_to(goc_fd *f,
                                const void *buf,
                                size_t n,
                                const struct sockaddr *to,
                                socklen_t tolen,
                                goc_ctx *ctx);

/**
 * goc_udp_recv_from - receive one datagram; a longer one is truncated.
 * @from: if not NULL, receives the sender (and @fromlen its size).
 *
 * Return: the datagram's bytes stored, or a negative error as
 * goc_fd_read().
 */
GOC_API ssize_t goc_udp_recv_from(goc_fd *f,
                                  void *buf,
                                  size_t n,
                                  struct sockaddr_storage *from,
                                  socklen_t *fromlen,
                                  goc_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* GOC_NET_H */
