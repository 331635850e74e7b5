/* SPDX-License-Identifier: MIT */
/*
 * The goroutine profile: every goroutine's stack, from the runtime's walk
 * of the stack slabs (the one goc_dump() uses), counted per stack.
 */
#include "stacks.h"
#include "../runtime/runtime.h"
#include "goc/panic.h"

#include <stdlib.h>

static void add_one(const struct goc__gsnap *g, void *arg)
{
    struct goc__stacks *set = arg;
    struct goc__stack *s;
    if (g->npc > 0) {
        s = goc__stacks_get(set, g->pcs, g->npc);
    } else {
        /* Running elsewhere: its entry function stands for the stack,
         * +1 so that it reads as a return address inside it. */
        void *pc = (char *)(uintptr_t)g->entry + 1;
        s = goc__stacks_get(set, &pc, 1);
    }
    if (s)
        s->v[0]++;
}

int goc_prof_write_goroutine(int fd, int debug)
{
    if (fd < 0 || debug < 0 || debug > 2)
        return -EINVAL;
    if (debug == 2)
        return goc_dump(fd);
    struct goc__stacks set = { 0 };
    int total = goc__goroutine_walk(add_one, &set);
    int err = set.oom ? -ENOMEM
                      : goc__stacks_write(&set, "goroutine", total, fd, debug);
    goc__stacks_free(&set);
    return err < 0 ? err : total;
}

static int write_to(void *unused, int fd, int debug)
{
    (void)unused;
    return goc_prof_write_goroutine(fd, debug);
}

int goc_prof_write_goroutine_file(const char *path, int debug)
{
    if (debug < 0 || debug > 2)
        return -EINVAL;
    return goc__prof_to_file(path, write_to, NULL, debug);
}
