/* SPDX-License-Identifier: MIT */
/*
 * The threads profile: the threads goc made, counted by the stack that
 * created each (runtime/pprof's threadcreate), or listed one by one with
 * what each is doing (debug 2).
 */
#include "stacks.h"
#include "../runtime/runtime.h"
#include "goc/time.h"

#include <errno.h>
#include <stdlib.h>

static const char *kind_name(const struct goc__thread_view *v)
{
    switch (v->kind) {
    case GOC__TK_M:
        return "M";
    case GOC__TK_SYSMON:
        return "sysmon";
    case GOC__TK_BLOCKING:
        return "blocking";
    case GOC__TK_PROFILER:
        return "profile writer";
    }
    return "?";
}

static double ms(int64_t ns)
{
    return (double)ns / GOC_MILLISECOND;
}

static void put_m_state(struct goc__pb *out, const struct goc__thread_view *v)
{
    switch (v->state) {
    case GOC__THREAD_RUNNING:
        goc__pb_printf(out, "running goroutine %lld \"%s\" on P%d",
                       (long long)v->goroutine, v->gname, v->p);
        break;
    case GOC__THREAD_BLOCKING:
        goc__pb_printf(out, "goroutine %lld \"%s\" in a blocking section",
                       (long long)v->goroutine, v->gname);
        if (v->since > 0)
            goc__pb_printf(out, " for %.1f ms", ms(v->since));
        break;
    case GOC__THREAD_SPINNING:
        goc__pb_printf(out, "looking for goroutines");
        break;
    case GOC__THREAD_POLLING:
        goc__pb_printf(out, "waiting for I/O and timers");
        break;
    case GOC__THREAD_SCHEDULING:
        goc__pb_printf(out, "scheduling on P%d", v->p);
        break;
    default:
        goc__pb_printf(out, "idle");
    }
    if (v->pinned)
        goc__pb_printf(out, ", pinned");
}

static void put_state(struct goc__pb *out, const struct goc__thread_view *v)
{
    if (!v->tid) {
        goc__pb_printf(out, "starting");
    } else if (v->kind == GOC__TK_M) {
        put_m_state(out, v);
    } else if (v->kind == GOC__TK_SYSMON) {
        goc__pb_printf(out, "watching");
    } else if (v->kind == GOC__TK_PROFILER) {
        goc__pb_printf(out, "writing the CPU profile");
    } else if (v->job) {
        char fn[256];
        goc__symbolize_entry(v->job, fn, sizeof(fn));
        goc__pb_printf(out, "running a job (%s) for %.1f ms", fn, ms(v->since));
    } else {
        goc__pb_printf(out, "idle");
    }
}

static void put_thread(struct goc__pb *out, const struct goc__thread_view *v)
{
    if (v->kind == GOC__TK_M)
        goc__pb_printf(out, "M%d", v->m_id);
    else
        goc__pb_printf(out, "%s", kind_name(v));
    goc__pb_printf(out, " tid %d: ", v->tid);
    put_state(out, v);
    if (v->cpu_ns >= 0)
        goc__pb_printf(out, "; cpu %.1f ms", ms(v->cpu_ns));
    goc__pb_printf(out, "; up %.3f s\n", (double)v->age / GOC_SECOND);
    goc__pb_printf(out, "created by:\n");
    for (int i = 0; i < v->npc; i++) {
        char fr[256];
        goc__prof_frame_text(v->pcs[i], fr, sizeof(fr));
        goc__pb_printf(out, "\t%s\n", fr);
    }
    goc__pb_printf(out, "\n");
}

static int write_list(int fd, const struct goc__thread_view *v, int n)
{
    struct goc__pb out = { 0 };
    goc__pb_printf(&out, "threads: total %d\n\n", n);
    for (int i = n - 1; i >= 0; i--) /* oldest first */
        put_thread(&out, &v[i]);
    int err = out.oom ? -ENOMEM : goc__prof_write_all(fd, out.buf, out.len);
    goc__pb_free(&out);
    return err;
}

static int write_counted(int fd,
                         const struct goc__thread_view *v,
                         int n,
                         int debug)
{
    struct goc__stacks set = { 0 };
    for (int i = 0; i < n && !set.oom; i++) {
        struct goc__stack *s = goc__stacks_get(&set, v[i].pcs, v[i].npc);
        if (s)
            s->v[0]++;
    }
    int err = set.oom ? -ENOMEM
                      : goc__stacks_write(&set, "threadcreate", n, fd, debug);
    goc__stacks_free(&set);
    return err;
}

int goc_prof_write_threads(int fd, int debug)
{
    if (fd < 0 || debug < 0 || debug > 2)
        return -EINVAL;
    int err = goc__rt_ensure();
    if (err)
        return err;
    /* Threads come and go: size the copy, take it, retry if it grew. */
    struct goc__thread_view *v = NULL;
    int n = goc__thread_views(NULL, 0), got;
    for (;;) {
        free(v);
        v = malloc((size_t)(n + 8) * sizeof(*v));
        if (!v)
            return -ENOMEM;
        got = goc__thread_views(v, n + 8);
        if (got <= n + 8)
            break;
        n = got;
    }
    err =
        debug == 2 ? write_list(fd, v, got) : write_counted(fd, v, got, debug);
    free(v);
    return err < 0 ? err : got;
}

static int write_to(void *unused, int fd, int debug)
{
    (void)unused;
    return goc_prof_write_threads(fd, debug);
}

int goc_prof_write_threads_file(const char *path, int debug)
{
    if (debug < 0 || debug > 2)
        return -EINVAL;
    return goc__prof_to_file(path, write_to, NULL, debug);
}
