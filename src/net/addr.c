/* SPDX-License-Identifier: MIT */
/*
 * "host:port" text to socket addresses and back. Numeric hosts are parsed
 * on the spot; names go to getaddrinfo() on the blocking pool, since the
 * resolver may wait on DNS for seconds.
 */
#include "net.h"
#include "../internal/alloc.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <net/if.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "[v6%zone]" of @in6 into @host (INET6_ADDRSTRLEN + IF_NAMESIZE + 3). */
static void format_v6_host(const struct sockaddr_in6 *in6, char *host)
{
    char ip[INET6_ADDRSTRLEN], zone[IF_NAMESIZE + 1] = "";
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
    if (in6->sin6_scope_id) {
        char name[IF_NAMESIZE];
        if (if_indextoname(in6->sin6_scope_id, name))
            snprintf(zone, sizeof(zone), "%%%s", name);
        else
            snprintf(zone, sizeof(zone), "%%%u", (unsigned)in6->sin6_scope_id);
    }
    sprintf(host, "[%s%s]", ip, zone);
}

int goc_addr_format(const struct sockaddr *sa, char *buf, size_t n)
{
    if (!sa || (!buf && n))
        return -EINVAL;
    char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 3];
    int port;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        /* An IPv4 peer of a dual-stack socket shows as IPv4, as in Go. */
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host));
        else
            format_v6_host(in6, host);
        port = ntohs(in6->sin6_port);
    } else {
        return -EAFNOSUPPORT;
    }
    int len = snprintf(buf, n, "%s:%d", host, port);
    return (size_t)len < n ? len : -ENOSPC;
}

/* Split "host:port", "[v6]:port" or ":port" (host "" = any). */
static int split_host_port(
    const char *addr, char *host, size_t hn, char *port, size_t pn)
{
    const char *colon, *h = addr;
    size_t hl;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (!end || end[1] != ':')
            return -EINVAL;
        h = addr + 1;
        hl = (size_t)(end - h);
        colon = end + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon)
            return -EINVAL;
        hl = (size_t)(colon - addr);
        /* A bare IPv6 address needs brackets, as in Go. */
        if (memchr(addr, ':', hl))
            return -EINVAL;
    }
    size_t pl = strlen(colon + 1);
    if (hl >= hn || pl == 0 || pl >= pn)
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    memcpy(port, colon + 1, pl + 1);
    return 0;
}

/*
 * A resolution on the blocking pool. It owns copies of its inputs and is
 * shared by the caller and the worker: a caller whose context ends
 * leaves at once, and the last of the two frees it.
 */
struct resolve_job {
    _Atomic int refs;
    char host[256], port[64];
    int socktype, max, count, gai;
    struct sockaddr_storage out[];
};

static void job_release(struct resolve_job *j)
{
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1)
        goc__free(j);
}

static int resolve_blocking(void *arg)
{
    struct resolve_job *j = arg;
    struct addrinfo hints = { .ai_socktype = j->socktype,
                              .ai_flags = AI_ADDRCONFIG };
    if (!j->host[0])
        hints.ai_flags |= AI_PASSIVE;
    struct addrinfo *res;
    j->gai = getaddrinfo(j->host[0] ? j->host : NULL, j->port, &hints, &res);
    if (j->gai == 0) {
        for (struct addrinfo *ai = res; ai && j->count < j->max;
             ai = ai->ai_next) {
            if (ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
                memcpy(&j->out[j->count++], ai->ai_addr, ai->ai_addrlen);
        }
        freeaddrinfo(res);
    }
    job_release(j);
    return 0;
}

#define SERVICE_NAME (-1)

/*
 * The port as a number: 0 to 65535; SERVICE_NAME for a name ("http"),
 * the resolver's to look up; -EINVAL for anything that starts with a
 * digit and is not a port, which the resolver would wrap ("70000" is
 * port 4464 to getaddrinfo), or a sign or a space.
 */
static long port_number(const char *port)
{
    if (!isdigit((unsigned char)port[0])) {
        /* A service name: letters, digits, '-' and '_' (/etc/services). */
        if (!isalpha((unsigned char)port[0]))
            return -EINVAL;
        for (const char *c = port; *c; c++)
            if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_')
                return -EINVAL;
        return SERVICE_NAME;
    }
    long v = 0;
    for (const char *c = port; *c; c++) {
        if (!isdigit((unsigned char)*c))
            return -EINVAL;
        v = v * 10 + (*c - '0');
        if (v > 65535)
            return -EINVAL;
    }
    return v;
}

/*
 * A numeric host and port parsed without the resolver: the number of
 * addresses (at most @max), 0 if it is the resolver's job.
 */
static int parse_numeric(const char *host,
                         long p,
                         struct sockaddr_storage *out,
                         int max)
{
    if (p == SERVICE_NAME)
        return 0; /* the resolver's job */
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *in = (void *)out;
    struct sockaddr_in6 *in6 = (void *)out;
    if (host[0] == '\0') {
        /* Any address: IPv6's, which also accepts IPv4 by default; then
         * IPv4's, for a system without IPv6 (as Go falls back). */
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_any;
        in6->sin6_port = htons((uint16_t)p);
        if (max < 2)
            return 1;
        struct sockaddr_in *v4 = (void *)&out[1];
        memset(&out[1], 0, sizeof(out[1]));
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = htons((uint16_t)p);
        return 2;
    }
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)p);
        return 1;
    }
    if (!strchr(host, '%') && inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        return 1;
    }
    return 0;
}

static long port_of(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET
               ? ntohs(((const struct sockaddr_in *)(const void *)ss)->sin_port)
               : ntohs(((const struct sockaddr_in6 *)(const void *)ss)
                           ->sin6_port);
}

int goc_addr_resolve(const char *addr,
                     int socktype,
                     struct sockaddr_storage *out,
                     int max,
                     goc_ctx *ctx)
{
    char host[256], port[64];
    if (!addr || !out || max < 1 ||
        (socktype != SOCK_STREAM && socktype != SOCK_DGRAM) ||
        split_host_port(addr, host, sizeof(host), port, sizeof(port)))
        return -EINVAL;
    int err = goc_ctx_err(ctx); /* for numeric hosts too */
    if (err)
        return err;
    long p = port_number(port);
    if (p < SERVICE_NAME)
        return (int)p;
    int n = parse_numeric(host, p, out, max);
    if (n)
        return n;
    struct resolve_job *j =
        goc__malloc(sizeof(*j) + (size_t)max * sizeof(*out));
    if (!j)
        return -ENOMEM;
    atomic_init(&j->refs, 2);
    memcpy(j->host, host, sizeof(host));
    memcpy(j->port, port, sizeof(port));
    j->socktype = socktype;
    j->max = max;
    j->count = j->gai = 0;
    bool queued;
    err = goc__blocking(resolve_blocking, j, ctx, &queued);
    if (!queued)
        job_release(j); /* the worker's reference: it will never run */
    if (err) {
        job_release(j);
        return err;
    }
    n = j->count;
    if (j->gai || n == 0)
        err = j->gai == EAI_MEMORY ? -ENOMEM : GOC_ERESOLVE;
    else if (!host[0]) /* ":service": its port, on the any addresses */
        n = parse_numeric(host, port_of(&j->out[0]), out, max);
    else
        memcpy(out, j->out, (size_t)n * sizeof(*out));
    job_release(j);
    return err ? err : n;
}

socklen_t goc__addr_len(const struct sockaddr_storage *ss)
{
    return ss->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                    : sizeof(struct sockaddr_in6);
}
