/* SPDX-License-Identifier: MIT */
/*
 * Leak finding, after go.uber.org/goleak: the goroutines alive besides
 * the caller, less those the options leave out (by a function on their
 * stack, or as alive before), looked for again with backoff until none
 * is left or the time is up. goc_leakcheck() (dump.c) is the counting
 * form.
 */
#include "runtime.h"
#include "goc/panic.h"
#include "goc/time.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct finding {
    const struct goc_leak_opts *o;
    struct goc_leak *out;
    int max, n;
    int64_t *ids; /* goc_leak_snapshot */
};

/* The function name of a symbolised return address (or, with entry, a
 * function's own address), without its "+0x..." offset. */
static void function_of(const void *pc, bool entry, char *buf, size_t n)
{
    if (entry)
        goc__symbolize_entry(pc, buf, n);
    else
        goc__symbolize(pc, buf, n);
    char *plus = strstr(buf, "+0x");
    if (plus)
        *plus = '\0';
}

static bool ignored_id(const struct goc_leak_opts *o, int64_t id)
{
    for (size_t i = 0; i < o->nignore_ids; i++)
        if (o->ignore_ids[i] == id)
            return true;
    return false;
}

static bool named(const struct goc_leak_opts *o, const char *fn)
{
    for (const char *const *f = o->ignore_functions; f && *f; f++)
        if (strcmp(*f, fn) == 0)
            return true;
    return false;
}

static bool ignored_function(const struct goc_leak_opts *o,
                             const struct goc__gsnap *s)
{
    if (!o->ignore_functions)
        return false;
    char fn[256];
    function_of(s->entry, true, fn, sizeof(fn));
    if (named(o, fn))
        return true;
    for (int i = 0; i < s->npc; i++) {
        function_of(s->pcs[i], false, fn, sizeof(fn));
        if (named(o, fn))
            return true;
    }
    return false;
}

static void state_of(const struct goc__gsnap *s, char *buf, size_t n)
{
    const char *st = s->status == GOC__G_RUNNING ? "running"
                     : s->status == GOC__G_RUNNABLE
                         ? "runnable"
                         : goc__wait_reason_names[s->wait_reason];
    snprintf(buf, n, "%s", st);
}

static void found(const struct goc__gsnap *s, void *arg)
{
    struct finding *f = arg;
    if (s->self || ignored_id(f->o, s->id) || ignored_function(f->o, s))
        return;
    if (f->n < f->max) {
        struct goc_leak *l = &f->out[f->n];
        *l = (struct goc_leak){ .id = s->id, .created_by = s->parent_id };
        snprintf(l->name, sizeof(l->name), "%s", s->name ? s->name : "");
        function_of(s->entry, true, l->entry, sizeof(l->entry));
        state_of(s, l->state, sizeof(l->state));
    }
    f->n++;
}

int goc_leak_find(const struct goc_leak_opts *opts,
                  struct goc_leak *out,
                  int max)
{
    static const struct goc_leak_opts none;
    const struct goc_leak_opts *o = opts ? opts : &none;
    if (o->timeout < 0 || max < 0 || (max > 0 && !out) ||
        (o->nignore_ids && !o->ignore_ids))
        return -EINVAL;
    if (!goc__rt_started())
        return 0; /* no runtime, no goroutine */
    int64_t now = goc_now();
    int64_t end = o->timeout > INT64_MAX - now ? INT64_MAX : now + o->timeout;
    int64_t delay = GOC_MILLISECOND;
    for (;;) {
        struct finding f = { .o = o, .out = out, .max = max };
        goc__goroutine_walk(found, &f);
        if (f.n == 0 || goc_now() >= end)
            return f.n;
        goc_sleep(delay, NULL);
        delay = delay * 2 > 100 * GOC_MILLISECOND ? 100 * GOC_MILLISECOND
                                                  : delay * 2;
    }
}

static void snap(const struct goc__gsnap *s, void *arg)
{
    struct finding *f = arg;
    if (s->self)
        return;
    if (f->n < f->max)
        f->ids[f->n] = s->id;
    f->n++;
}

int goc_leak_snapshot(int64_t *ids, int max)
{
    if (max < 0 || (max > 0 && !ids))
        return -EINVAL;
    if (!goc__rt_started())
        return 0;
    struct finding f = { .ids = ids, .max = max };
    goc__goroutine_walk(snap, &f);
    return f.n;
}
