/* SPDX-License-Identifier: MIT */
/*
 * A small protobuf encoder, enough for profile.proto: varints,
 * length-delimited fields, packed repeated varints and nested messages
 * (written in place, their length inserted in front at the end, as Go's
 * runtime/pprof does). Also the hash map the profile builders share.
 */
#include "prof.h"

#include <stdlib.h>
#include <string.h>

void goc__pb_free(struct goc__pb *pb)
{
    free(pb->buf);
    *pb = (struct goc__pb){ 0 };
}

/* Room for n more bytes; false (and pb->oom) if there is none. */
static bool reserve(struct goc__pb *pb, size_t n)
{
    if (pb->oom)
        return false;
    if (pb->len + n <= pb->cap)
        return true;
    size_t cap = pb->cap ? pb->cap * 2 : 4096;
    while (cap < pb->len + n)
        cap *= 2;
    uint8_t *b = realloc(pb->buf, cap);
    if (!b) {
        pb->oom = true;
        return false;
    }
    pb->buf = b;
    pb->cap = cap;
    return true;
}

static int varint_len(uint64_t v)
{
    int n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static void put_varint(uint8_t *at, uint64_t v)
{
    while (v >= 0x80) {
        *at++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *at = (uint8_t)v;
}

void goc__pb_raw(struct goc__pb *pb, const void *p, size_t n)
{
    if (n && reserve(pb, n)) {
        memcpy(pb->buf + pb->len, p, n);
        pb->len += n;
    }
}

void goc__pb_varint(struct goc__pb *pb, uint64_t v)
{
    if (!reserve(pb, 10))
        return;
    put_varint(pb->buf + pb->len, v);
    pb->len += (size_t)varint_len(v);
}

/* Wire types: 0 varint, 2 length-delimited. */
static void key(struct goc__pb *pb, int tag, int wire)
{
    goc__pb_varint(pb, (uint64_t)tag << 3 | (uint64_t)wire);
}

void goc__pb_uint(struct goc__pb *pb, int tag, uint64_t v)
{
    key(pb, tag, 0);
    goc__pb_varint(pb, v);
}

void goc__pb_uint_opt(struct goc__pb *pb, int tag, uint64_t v)
{
    if (v)
        goc__pb_uint(pb, tag, v);
}

void goc__pb_bytes(struct goc__pb *pb, int tag, const void *p, size_t n)
{
    key(pb, tag, 2);
    goc__pb_varint(pb, n);
    goc__pb_raw(pb, p, n);
}

void goc__pb_packed(struct goc__pb *pb, int tag, const uint64_t *v, int n)
{
    if (n <= 0)
        return;
    size_t bytes = 0;
    for (int i = 0; i < n; i++)
        bytes += (size_t)varint_len(v[i]);
    key(pb, tag, 2);
    goc__pb_varint(pb, bytes);
    for (int i = 0; i < n; i++)
        goc__pb_varint(pb, v[i]);
}

size_t goc__pb_start(struct goc__pb *pb)
{
    return pb->len;
}

void goc__pb_end(struct goc__pb *pb, int tag, size_t mark)
{
    if (pb->oom)
        return;
    size_t body = pb->len - mark;
    uint64_t k = (uint64_t)tag << 3 | 2;
    size_t head = (size_t)(varint_len(k) + varint_len(body));
    if (!reserve(pb, head))
        return;
    /* The body moves up to make room for its key and length. */
    memmove(pb->buf + mark + head, pb->buf + mark, body);
    put_varint(pb->buf + mark, k);
    put_varint(pb->buf + mark + varint_len(k), body);
    pb->len += head;
}

/* ---- hash map ------------------------------------------------------------ */

uint64_t goc__hash64(const void *p, size_t n)
{
    /* FNV-1a, then a final mix so that nearby keys spread. */
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static size_t slot_of(uint64_t key, size_t cap)
{
    uint64_t h = key * 0x9e3779b97f4a7c15ull;
    return (size_t)(h ^ (h >> 29)) & (cap - 1);
}

uint32_t goc__u64map_get(const struct goc__u64map *m, uint64_t key)
{
    if (!m->cap)
        return 0;
    for (size_t i = slot_of(key, m->cap);; i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == key)
            return m->vals[i];
        if (m->keys[i] == 0)
            return 0;
    }
}

static bool grow(struct goc__u64map *m)
{
    size_t cap = m->cap ? m->cap * 2 : 256;
    uint64_t *keys = calloc(cap, sizeof(*keys));
    uint32_t *vals = calloc(cap, sizeof(*vals));
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return false;
    }
    for (size_t j = 0; j < m->cap; j++) {
        if (!m->keys[j])
            continue;
        size_t i = slot_of(m->keys[j], cap);
        while (keys[i])
            i = (i + 1) & (cap - 1);
        keys[i] = m->keys[j];
        vals[i] = m->vals[j];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
    return true;
}

bool goc__u64map_put(struct goc__u64map *m, uint64_t key, uint32_t val)
{
    if ((m->n + 1) * 2 > m->cap && !grow(m))
        return false;
    size_t i = slot_of(key, m->cap);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = key;
    m->vals[i] = val;
    return true;
}

void goc__u64map_free(struct goc__u64map *m)
{
    free(m->keys);
    free(m->vals);
    *m = (struct goc__u64map){ 0 };
}
