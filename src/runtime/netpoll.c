/* SPDX-License-Identifier: MIT */
/*
 * Poll descriptors: how goroutines wait for a descriptor to become
 * readable or writable. Each descriptor joins the runtime's epoll set once,
 * edge-triggered for both directions. Readiness is a counter per direction
 * rather than a flag: a waiter reads it before its system call and parks
 * only if no event arrived since, so an event between the EAGAIN and the
 * park is never lost, and any number of goroutines may wait on the same
 * descriptor (an event wakes them all, and they retry).
 *
 * Nobody polls on a thread of its own: the idle M that sleeps until the
 * next timer sleeps in this epoll set too, an M about to go idle polls
 * once without blocking, and sysmon polls when nobody has for a while.
 */
#include "runtime.h"

#include <errno.h>
#include <sys/epoll.h>

struct goc__pd_waiter {
    struct goc__dlink link;
    struct goc__wait *w;
    struct goc__pd_waiter *wake_next;
    bool linked;
};

int goc__pd_register(struct goc__pd *pd, int fd)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = pd,
    };
    atomic_fetch_add_explicit(&pd->registered, 1, memory_order_release);
    if (epoll_ctl(goc__sched.epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    return 0;
}

/* Under pd->lock, after each change of waiters[dir]. */
static void publish_first(struct goc__pd *pd, int dir)
{
    atomic_store_explicit(&pd->first[dir], pd->waiters[dir],
                          memory_order_relaxed);
}

void goc__pd_prefetch(struct goc__pd *pd, uint32_t events, int stage)
{
    if (stage == 0) {
        __builtin_prefetch(pd, 1);
        __builtin_prefetch((char *)pd + 64, 1);
        return;
    }
    /* Unlocked: the waiter may be gone by the time it arrives, which
     * costs nothing but the prefetch. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        __builtin_prefetch(atomic_load_explicit(&pd->first[GOC__PD_READ],
                                                memory_order_relaxed),
                           1);
    if (events & EPOLLOUT)
        __builtin_prefetch(atomic_load_explicit(&pd->first[GOC__PD_WRITE],
                                                memory_order_relaxed),
                           1);
}

/* Under pd->lock: claim every waiter of dir onto the wake list. */
static struct goc__pd_waiter *take_waiters(struct goc__pd *pd,
                                           int dir,
                                           struct goc__pd_waiter *list)
{
    struct goc__dlink *l;
    if (pd->waiters[dir])
        atomic_store_explicit(&pd->first[dir], NULL, memory_order_relaxed);
    while ((l = goc__dlist_pop(&pd->waiters[dir]))) {
        struct goc__pd_waiter *pw =
            goc__container_of(l, struct goc__pd_waiter, link);
        pw->linked = false;
        /* A lost claim means a context won: that waiter leaves alone. */
        if (goc__wait_claim(pw->w, 0)) {
            pw->wake_next = list;
            list = pw;
        }
    }
    return list;
}

/* Outside the lock: each claimed waiter stays put until finished. */
static void wake_all(struct goc__pd_waiter *list)
{
    while (list) {
        struct goc__pd_waiter *next = list->wake_next;
        goc__wait_finish(list->w);
        list = next;
    }
}

void goc__pd_event(struct goc__pd *pd, uint32_t events)
{
    bool rd = events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR);
    bool wr = events & (EPOLLOUT | EPOLLHUP | EPOLLERR);
    struct goc__pd_waiter *list = NULL;
    (void)atomic_load_explicit(&pd->registered, memory_order_acquire);
    if (pd->on_event) {
        pd->on_event(pd);
        return;
    }
    goc__lock_acquire(&pd->lock);
    /* Before the seq increment that publishes it (release). */
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        atomic_store_explicit(&pd->hangup, true, memory_order_relaxed);
    if (rd) {
        atomic_fetch_add_explicit(&pd->seq[GOC__PD_READ], 1,
                                  memory_order_release);
        list = take_waiters(pd, GOC__PD_READ, list);
    }
    if (wr) {
        atomic_fetch_add_explicit(&pd->seq[GOC__PD_WRITE], 1,
                                  memory_order_release);
        list = take_waiters(pd, GOC__PD_WRITE, list);
    }
    goc__lock_release(&pd->lock);
    wake_all(list);
}

static void pd_unlock(void *arg)
{
    goc__lock_release(&((struct goc__pd *)arg)->lock);
}

/*
 * Count an I/O wait in: on the running P's count, or a plain thread's on
 * the global one. The caller counts it out on the same count, wherever it
 * wakes, so no count goes negative and a sum that reads it during the wait
 * sees the wait. (Counted out on another P, it could cancel another wait
 * in a sum that read that P's count before and this one's after.)
 */
static _Atomic int *pollwait_in(void)
{
    struct goc__m *m = goc__m_current();
    _Atomic int *n = m && m->p ? &m->p->npollwait : &goc__sched.npollwait;
    atomic_fetch_add(n, 1);
    return n;
}

int goc__pollwait_count(void)
{
    int n = atomic_load(&goc__sched.npollwait);
    for (int i = 0; i < goc__sched.nprocs; i++)
        n += atomic_load(&goc__sched.allp[i].npollwait);
    return n;
}

/*
 * Nobody sleeps in epoll and a P is idle: wake an M for it, so the event
 * we wait for is seen now rather than when a busy M runs dry. The loads
 * are seq_cst, like the caller's count before them and an idling M's
 * writes before its look at the count (m_idle): of the two, at least one
 * sees the other.
 */
void goc__poll_ensure(void)
{
    if (!atomic_load(&goc__sched.poller) && atomic_load(&goc__sched.npidle) > 0)
        goc__wakep();
}

int goc__pd_wait(struct goc__pd *pd, int dir, uint64_t seq, struct goc__wait *w)
{
    struct goc__pd_waiter pw = { .w = w };
    /* Counted, and a poller made sure of, before we may sleep, and
     * outside the descriptor's lock (waking an M may start a thread). */
    _Atomic int *counted = pollwait_in();
    goc__poll_ensure();
    goc__lock_acquire(&pd->lock);
    if (pd->closing || goc__pd_seq(pd, dir) != seq) {
        goc__lock_release(&pd->lock);
        atomic_fetch_sub(counted, 1);
        /* Something else (a context) may have claimed w meanwhile. */
        if (goc__wait_claim_self(w, 0))
            return 0;
        return goc__wait_block(w, NULL, NULL);
    }
    goc__dlist_push(&pd->waiters[dir], &pw.link);
    publish_first(pd, dir);
    pw.linked = true;
    int won = goc__wait_block(w, pd_unlock, pd);
    atomic_fetch_sub(counted, 1);
    if (won != 0) {
        goc__lock_acquire(&pd->lock);
        if (pw.linked) {
            goc__dlist_remove(&pd->waiters[dir], &pw.link);
            publish_first(pd, dir);
        }
        goc__lock_release(&pd->lock);
    }
    return won;
}

void goc__pd_close(struct goc__pd *pd)
{
    goc__lock_acquire(&pd->lock);
    pd->closing = true;
    struct goc__pd_waiter *list = take_waiters(pd, GOC__PD_READ, NULL);
    list = take_waiters(pd, GOC__PD_WRITE, list);
    goc__lock_release(&pd->lock);
    wake_all(list);
}

void goc__pd_reuse(struct goc__pd *pd)
{
    goc__lock_acquire(&pd->lock);
    pd->closing = false;
    atomic_store(&pd->hangup, false);
    /* The new descriptor's first read must try its system call. */
    atomic_store(&pd->drained_seq, atomic_load(&pd->seq[GOC__PD_READ]) - 1);
    goc__lock_release(&pd->lock);
}
