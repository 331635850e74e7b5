/* SPDX-License-Identifier: MIT */
/*
 * Rich errors: immutable, reference-counted values with a code, message,
 * cause and joined children, and errors.Is / errors.Join semantics. The
 * message is built once at creation, so reading it never allocates.
 */
#include "errors_int.h"
#include "goc/panic.h"
#include "../internal/alloc.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

struct goc_error {
    _Atomic int64_t refs; /* < 0: static, never freed */
    int code;
    char *msg;
    goc_error *cause;
    size_t n;
    goc_error **kids;
    void *payload;
    void (*dtor)(void *);
};

static char oom_msg[] = "out of memory";
static goc_error oom = { -1, -ENOMEM, oom_msg, NULL, 0, NULL, NULL, NULL };
static char permanent_oom_msg[] = "permanent (cause lost: out of memory)";
static goc_error permanent_oom = {
    -1, GOC_EPERMANENT, permanent_oom_msg, NULL, 0, NULL, NULL, NULL
};

goc_error *goc__error_permanent_oom(void)
{
    return &permanent_oom;
}

bool goc__error_is_oom(const goc_error *e)
{
    return e == &oom;
}

static char *vformat(const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int len = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (len < 0)
        return NULL;
    char *s = goc__malloc((size_t)len + 1);
    if (s)
        vsnprintf(s, (size_t)len + 1, fmt, ap);
    return s;
}

/* A new error owning @msg (NULL means allocation failed). */
static goc_error *make(int code, char *msg)
{
    if (!msg)
        return &oom;
    goc_error *e = goc__calloc(1, sizeof *e);
    if (!e) {
        goc__free(msg);
        return &oom;
    }
    atomic_init(&e->refs, 1);
    e->code = code ? code : GOC_EMISUSE;
    e->msg = msg;
    return e;
}

/* strerror_r is the GNU (char *) or the XSI (int) one depending on libc. */
static const char *pick_gnu(char *r, char *buf)
{
    (void)buf;
    return r;
}

static const char *pick_xsi(int r, char *buf)
{
    return r ? "unknown error" : buf;
}

#define PICK(r, buf) _Generic((r), char * : pick_gnu, int : pick_xsi)(r, buf)

/* goc's name for @code, or the C library's for a -errno goc leaves out. */
static char *code_text(int code)
{
    const char *t = goc_strerror(code);
    char buf[128];
    if (strcmp(t, "unknown error") == 0 && code < 0 && code > -4096)
        t = PICK(strerror_r(-code, buf, sizeof buf), buf);
    return goc__strdup(t);
}

static goc_error *vnew(int code, const char *fmt, va_list ap)
{
    if (!code)
        code = GOC_EMISUSE;
    return make(code, fmt ? vformat(fmt, ap) : code_text(code));
}

goc_error *goc_error_new(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    goc_error *e = vnew(code, fmt, ap);
    va_end(ap);
    return e;
}

goc_error *goc_error_new_payload(
    int code, void *payload, void (*dtor)(void *), const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    goc_error *e = vnew(code, fmt, ap);
    va_end(ap);
    if (e == &oom) {
        if (dtor)
            dtor(payload);
        return e;
    }
    e->payload = payload;
    e->dtor = dtor;
    return e;
}

/* "<context>: <cause message>" around @cause with @code. */
static goc_error *vwrap(int code, goc_error *cause, const char *fmt, va_list ap)
{
    char *ctx = fmt ? vformat(fmt, ap) : goc__strdup("");
    if (!ctx)
        return &oom;
    const char *cm = cause->msg;
    size_t len = strlen(ctx) + 2 + strlen(cm) + 1;
    char *msg = goc__malloc(len);
    if (msg)
        snprintf(msg, len, "%s%s%s", ctx, *ctx ? ": " : "", cm);
    goc__free(ctx);
    goc_error *e = make(code, msg);
    if (e != &oom)
        e->cause = goc_error_retain(cause);
    return e;
}

goc_error *goc__error_wrap_payload(int code,
                                   goc_error *cause,
                                   void *payload,
                                   void (*dtor)(void *),
                                   const char *msg)
{
    goc_error *e = cause ? goc_error_with_code(code, cause, "%s", msg)
                         : goc_error_new(code, "%s", msg);
    if (e == &oom) {
        if (dtor)
            dtor(payload);
        return e;
    }
    e->payload = payload;
    e->dtor = dtor;
    return e;
}

goc_error *goc_error_wrap(goc_error *cause, const char *fmt, ...)
{
    if (!cause)
        return NULL;
    va_list ap;
    va_start(ap, fmt);
    goc_error *e = vwrap(cause->code, cause, fmt, ap);
    va_end(ap);
    return e;
}

goc_error *goc_error_with_code(int code, goc_error *cause, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    goc_error *e = cause ? vwrap(code, cause, fmt, ap) : vnew(code, fmt, ap);
    va_end(ap);
    return e;
}

/* A join of @errs, with @suffix appended to the message (may be NULL). */
goc_error *goc__error_join_suffix(goc_error *const *errs,
                                  size_t n,
                                  const char *suffix)
{
    size_t kept = 0, len = suffix ? strlen(suffix) + 1 : 0;
    for (size_t i = 0; i < n; i++)
        if (errs[i]) {
            kept++;
            len += strlen(errs[i]->msg) + 1;
        }
    if (!kept)
        return NULL;
    char *msg = goc__malloc(len + 1);
    goc_error **kids = goc__calloc(kept, sizeof *kids);
    if (!msg || !kids) {
        goc__free(msg);
        goc__free(kids);
        return &oom;
    }
    char *p = msg;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!errs[i])
            continue;
        if (k)
            *p++ = '\n';
        size_t l = strlen(errs[i]->msg);
        memcpy(p, errs[i]->msg, l);
        p += l;
        kids[k++] = errs[i];
    }
    if (suffix) {
        *p++ = '\n';
        memcpy(p, suffix, strlen(suffix));
        p += strlen(suffix);
    }
    *p = '\0';
    goc_error *e = make(kids[0]->code, msg);
    if (e == &oom) {
        goc__free(kids);
        return e;
    }
    for (size_t i = 0; i < kept; i++)
        goc_error_retain(kids[i]);
    e->kids = kids;
    e->n = kept;
    return e;
}

goc_error *goc_error_join(goc_error *const *errs, size_t n)
{
    if (!errs)
        return NULL;
    return goc__error_join_suffix(errs, n, NULL);
}

/* A panic's error owns its info: this destructor also marks it as one. */
static void free_panic_payload(void *p)
{
    goc_panic_info_free(p);
}

goc_error *goc_panic_error(goc_panic_info *p)
{
    if (!p)
        return NULL;
    return goc_error_new_payload(GOC_EPANIC, p, free_panic_payload, "panic: %s",
                                 goc_panic_info_message(p));
}

const goc_panic_info *goc_error_panic(const goc_error *e)
{
    if (!e)
        return NULL;
    if (e->dtor == free_panic_payload)
        return e->payload;
    const goc_panic_info *p = goc_error_panic(e->cause);
    for (size_t i = 0; !p && i < e->n; i++)
        p = goc_error_panic(e->kids[i]);
    return p;
}

goc_error *goc_error_retain(goc_error *e)
{
    if (e && atomic_load_explicit(&e->refs, memory_order_relaxed) >= 0)
        atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
    return e;
}

void goc_error_release(goc_error *e)
{
    if (!e || atomic_load_explicit(&e->refs, memory_order_relaxed) < 0)
        return;
    if (atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) != 1)
        return;
    goc_error_release(e->cause);
    for (size_t i = 0; i < e->n; i++)
        goc_error_release(e->kids[i]);
    if (e->dtor)
        e->dtor(e->payload);
    goc__free(e->kids);
    goc__free(e->msg);
    goc__free(e);
}

int goc_error_code(const goc_error *e)
{
    return e ? e->code : 0;
}

const char *goc_error_message(const goc_error *e)
{
    return e ? e->msg : "";
}

goc_error *goc_error_cause(const goc_error *e)
{
    return e ? e->cause : NULL;
}

size_t goc_error_nchildren(const goc_error *e)
{
    return e ? e->n : 0;
}

goc_error *goc_error_child(const goc_error *e, size_t i)
{
    return e && i < e->n ? e->kids[i] : NULL;
}

void *goc_error_payload(const goc_error *e)
{
    return e ? e->payload : NULL;
}

bool goc_error_code_is(int code, int target)
{
    if (code == target)
        return true;
    return code == GOC_EWOULDEXCEED && target == -ETIMEDOUT;
}

bool goc_error_is(const goc_error *e, int code)
{
    if (!e)
        return false;
    /* A join's own code is its first child's: judge joins by children. */
    if (!e->n && goc_error_code_is(e->code, code))
        return true;
    if (goc_error_is(e->cause, code))
        return true;
    for (size_t i = 0; i < e->n; i++)
        if (goc_error_is(e->kids[i], code))
            return true;
    return false;
}

bool goc_error_is_err(const goc_error *e, const goc_error *target)
{
    if (!e || !target)
        return false;
    if (e == target)
        return true;
    if (goc_error_is_err(e->cause, target))
        return true;
    for (size_t i = 0; i < e->n; i++)
        if (goc_error_is_err(e->kids[i], target))
            return true;
    return false;
}

struct out {
    char *buf;
    size_t len, need;
};

static void put(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->need < o->len ? o->len - o->need : 0;
    int n = vsnprintf(room ? o->buf + o->need : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->need += (size_t)n;
}

static void tree(struct out *o, const goc_error *e, int depth)
{
    put(o, "%s%*s", depth ? "\n" : "", depth * 2, "");
    if (e->n)
        put(o, "joined (%zu) [code %d: %s]", e->n, e->code,
            goc_strerror(e->code));
    else
        put(o, "%s [code %d: %s]", e->msg, e->code, goc_strerror(e->code));
    if (e->cause)
        tree(o, e->cause, depth + 1);
    for (size_t i = 0; i < e->n; i++)
        tree(o, e->kids[i], depth + 1);
}

size_t goc_error_format(const goc_error *e, bool verbose, char *buf, size_t len)
{
    struct out o = { buf, len, 0 };
    if (len)
        buf[0] = '\0';
    if (!e)
        put(&o, "<nil>");
    else if (!verbose)
        put(&o, "%s", e->msg);
    else
        tree(&o, e, 0);
    return o.need;
}
