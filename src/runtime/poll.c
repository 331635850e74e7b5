/* SPDX-License-Identifier: MIT */
/*
 * The idle path's sleep: one idle M at a time (the poller) waits in epoll
 * until the earliest timer of any P, and an eventfd wakes it early when an
 * earlier timer or new work appears. There is no poller thread: the poller
 * is whichever M ran out of work last. Network descriptors join the same
 * epoll set.
 */
#include "runtime.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441 /* same number on x86_64 and aarch64 */
#endif

/* epoll_pwait2 (Linux 5.11) takes a nanosecond timeout; 0: unknown yet. */
static _Atomic int have_pwait2 = 1;

int goc__poll_init(void)
{
    goc__sched.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (goc__sched.epfd < 0)
        return -errno;
    goc__sched.evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (goc__sched.evfd < 0) {
        int err = -errno;
        close(goc__sched.epfd);
        return err;
    }
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(goc__sched.epfd, EPOLL_CTL_ADD, goc__sched.evfd, &ev) < 0) {
        int err = -errno;
        close(goc__sched.evfd);
        close(goc__sched.epfd);
        return err;
    }
    return 0;
}

static int epoll_sleep(struct epoll_event *evs, int n, int64_t timeout)
{
    if (atomic_load_explicit(&have_pwait2, memory_order_relaxed)) {
        struct timespec ts = { .tv_sec = timeout / 1000000000,
                               .tv_nsec = timeout % 1000000000 };
        long r = syscall(SYS_epoll_pwait2, goc__sched.epfd, evs, n,
                         timeout < 0 ? NULL : &ts, NULL, 0);
        /* Not only ENOSYS: a seccomp filter that does not know the call
         * may answer EPERM, and taking that for an interrupted sleep
         * would spin the poller. */
        if (r >= 0 || errno == EINTR)
            return (int)r;
        atomic_store(&have_pwait2, 0);
    }
    /* Millisecond epoll_wait: round up, so a timer is never early; a
     * wait longer than INT_MAX ms is cut short (and looked at again). */
    int ms = timeout < 0 ? -1
             : timeout / 1000000 >= INT_MAX - 1
                 ? INT_MAX
                 : (int)((timeout + 999999) / 1000000);
    return epoll_wait(goc__sched.epfd, evs, n, ms);
}

#define POLL_EVENTS 128

/*
 * Hand each event to its poll descriptor. Only the sleeping poller drains
 * the wake-up eventfd: it is level-triggered, so an event left in place by
 * a non-blocking poll still wakes the poller.
 */
static void dispatch(struct epoll_event *evs, int n, bool drain_wake)
{
    for (int i = 0; i < n; i++) {
        if (i + 4 < n && evs[i + 4].data.ptr)
            goc__pd_prefetch(evs[i + 4].data.ptr, evs[i + 4].events, 0);
        if (i + 2 < n && evs[i + 2].data.ptr)
            goc__pd_prefetch(evs[i + 2].data.ptr, evs[i + 2].events, 1);
        if (evs[i].data.ptr) {
            goc__pd_event(evs[i].data.ptr, evs[i].events);
        } else if (drain_wake) {
            uint64_t v;
            while (read(goc__sched.evfd, &v, sizeof(v)) > 0)
                ;
            /* Pairs with the exchange in goc__poll_wake. */
            atomic_store(&goc__sched.poll_wake_pending, 0);
        }
    }
}

void goc__poll_wait(int64_t deadline)
{
    struct epoll_event evs[POLL_EVENTS];
    int64_t timeout = -1;
    if (deadline != INT64_MAX) {
        int64_t now = goc__nanotime();
        timeout = deadline > now ? deadline - now : 0; /* never wraps */
    }
    int n = epoll_sleep(evs, POLL_EVENTS, timeout);
    atomic_store_explicit(&goc__sched.last_poll, goc__nanotime(),
                          memory_order_relaxed);
    dispatch(evs, n, true);
}

int goc__netpoll_nowait(void)
{
    if (atomic_load_explicit(&goc__sched.poller, memory_order_relaxed) ||
        goc__pollwait_count() == 0)
        return 0;
    struct epoll_event evs[POLL_EVENTS];
    int n = epoll_wait(goc__sched.epfd, evs, POLL_EVENTS, 0);
    atomic_store_explicit(&goc__sched.last_poll, goc__nanotime(),
                          memory_order_relaxed);
    dispatch(evs, n, false);
    return n > 0 ? n : 0;
}

void goc__poll_wake(void)
{
    /* One write per sleep is enough: later wakers see the flag. */
    if (atomic_exchange(&goc__sched.poll_wake_pending, 1) != 0)
        return;
    uint64_t one = 1;
    ssize_t r = write(goc__sched.evfd, &one, sizeof(one));
    (void)r; /* EAGAIN: the counter is full, so it is readable anyway */
}
