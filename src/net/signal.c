/* SPDX-License-Identifier: MIT */
/*
 * Signals on channels. The handler does only async-signal-safe work: it
 * counts the signal and writes a byte to a self-pipe. The pipe's read end
 * is one of the runtime's own poll descriptors; whichever thread polls it
 * drains it and sends each counted signal to its subscribers. While any
 * subscription exists, it counts as an I/O waiter, so some thread always
 * watches the pipe (an idle one in epoll, or sysmon when all are busy).
 */
#include "net.h"
#include "goc/chan.h"
#include "goc/signal.h"
#include "../chan/chan.h"
#include "../internal/alloc.h"
#include "../runtime/san.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#define MAX_SIG 65

struct sub {
    struct sub *next;
    goc_chan *ch;
    sigset_t set;
};

static struct {
    pthread_mutex_t mu;
    struct sub *subs;
    int users[MAX_SIG]; /* subscriptions per signal */
    struct sigaction saved[MAX_SIG];
    int pipe_r, pipe_w;
    struct goc__pd pd;
    bool ready;
    _Atomic int64_t dropped;
} sig = { .mu = PTHREAD_MUTEX_INITIALIZER, .pipe_r = -1, .pipe_w = -1 };

static _Atomic uint32_t pending[MAX_SIG];

static void on_signal(int signo)
{
    int saved = errno;
    atomic_fetch_add_explicit(&pending[signo], 1, memory_order_relaxed);
    char b = 0;
    ssize_t r = write(sig.pipe_w, &b, 1); /* full pipe: a wake is due */
    (void)r;
    errno = saved;
}

/* Under sig.mu: deliver s to its subscribers if it was caught. */
static void deliver_locked(int s)
{
    if (!atomic_load_explicit(&pending[s], memory_order_relaxed) ||
        !atomic_exchange(&pending[s], 0))
        return;
    for (struct sub *u = sig.subs; u; u = u->next)
        if (sigismember(&u->set, s) && goc_chan_try_send(u->ch, &s) != 0)
            atomic_fetch_add(&sig.dropped, 1);
}

/* On the polling thread: drain the pipe, then deliver what was counted. */
static void dispatch(struct goc__pd *pd)
{
    (void)pd;
    char buf[64];
    while (read(sig.pipe_r, buf, sizeof(buf)) > 0)
        ;
    pthread_mutex_lock(&sig.mu);
    for (int s = 1; s < MAX_SIG; s++)
        deliver_locked(s);
    pthread_mutex_unlock(&sig.mu);
}

/* Under sig.mu: the pipe and its poll descriptor, once. */
static int setup_locked(void)
{
    if (sig.ready)
        return 0;
    int err = goc__rt_ensure();
    if (err)
        return err;
    int p[2];
    if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0)
        return -errno;
    sig.pd.on_event = dispatch;
    if ((err = goc__pd_register(&sig.pd, p[0])) != 0) {
        close(p[0]);
        close(p[1]);
        return err;
    }
    sig.pipe_r = p[0];
    sig.pipe_w = p[1];
    sig.ready = true;
    return 0;
}

static bool catchable(int s)
{
    /* Between the standard signals and SIGRTMIN, the C library keeps
     * some for itself (glibc's threads: 32 and 33). */
    return s > 0 && s < MAX_SIG && s != SIGKILL && s != SIGSTOP &&
           s != SIGSEGV && s != SIGBUS && s != SIGFPE && s != SIGILL &&
           (s < 32 || s >= SIGRTMIN);
}

/* Under sig.mu: one more subscription to s, installing the handler. */
static int use_signal(int s)
{
    if (sig.users[s]++ > 0)
        return 0;
    /* Caught for nobody (see unuse_signal): not for this subscriber. */
    atomic_store(&pending[s], 0);
    struct sigaction sa = { .sa_handler = on_signal,
                            .sa_flags =
                                SA_RESTART | GOC__SA_ONSTACK_RETURNING };
    sigfillset(&sa.sa_mask);
    if (sigaction(s, &sa, &sig.saved[s]) < 0) {
        sig.users[s]--;
        return -errno;
    }
    return 0;
}

/*
 * Under sig.mu: one subscription to s fewer; with the last, the old
 * disposition comes back. True if s was caught after the last delivery
 * (while the handler was still ours) and must be raised again, outside
 * the lock, for that disposition to act on it.
 */
static bool unuse_signal(int s)
{
    if (--sig.users[s] > 0)
        return false;
    sigaction(s, &sig.saved[s], NULL);
    return atomic_exchange(&pending[s], 0) != 0;
}

static struct sub *find_locked(goc_chan *ch)
{
    for (struct sub *u = sig.subs; u; u = u->next)
        if (u->ch == ch)
            return u;
    return NULL;
}

/* Raise again the signals of @set that no subscriber got. */
static void raise_each(const sigset_t *set)
{
    for (int s = 1; s < MAX_SIG; s++)
        if (sigismember(set, s))
            raise(s);
}

int goc_signal_notify(goc_chan *ch, const int *sigs, int n)
{
    if (!ch || !sigs || n < 1 || goc_chan_elem_size(ch) != sizeof(int))
        return -EINVAL;
    for (int i = 0; i < n; i++)
        if (!catchable(sigs[i]))
            return -EINVAL;
    /* Its owner alone sends on it: every signal would be dropped. */
    if (ch->recv_only)
        return goc__misuse("goc_signal_notify: a receive-only channel");
    pthread_mutex_lock(&sig.mu);
    int err = setup_locked();
    struct sub *u = err ? NULL : find_locked(ch);
    bool fresh = !err && !u;
    if (fresh) {
        if ((u = goc__calloc(1, sizeof(*u))) == NULL) {
            err = -ENOMEM;
        } else {
            u->ch = goc_chan_retain(ch);
            sigemptyset(&u->set);
        }
    }
    sigset_t added, reraise; /* by this call: what a failure takes back */
    sigemptyset(&added);
    sigemptyset(&reraise);
    for (int i = 0; !err && i < n; i++) {
        if (sigismember(&u->set, sigs[i]))
            continue;
        if ((err = use_signal(sigs[i])) != 0)
            break;
        sigaddset(&u->set, sigs[i]);
        sigaddset(&added, sigs[i]);
    }
    if (err && u) { /* undo, so that nothing changes */
        for (int s = 1; s < MAX_SIG; s++) {
            if (sigismember(&added, s)) {
                if (unuse_signal(s))
                    sigaddset(&reraise, s);
                sigdelset(&u->set, s);
            }
        }
        if (fresh) {
            goc_chan_release(u->ch);
            goc__free(u);
        }
    } else if (fresh) {
        u->next = sig.subs;
        sig.subs = u;
        atomic_fetch_add(&goc__sched.npollwait, 1);
    }
    pthread_mutex_unlock(&sig.mu);
    raise_each(&reraise);
    if (fresh && !err)
        goc__poll_ensure();
    return err;
}

int goc_signal_stop(goc_chan *ch)
{
    pthread_mutex_lock(&sig.mu);
    struct sub **pp = &sig.subs;
    while (*pp && (*pp)->ch != ch)
        pp = &(*pp)->next;
    struct sub *u = *pp;
    sigset_t reraise;
    sigemptyset(&reraise);
    if (u) {
        /* What was caught while u was subscribed goes out first: it was
         * lost, or handed to a later subscriber. */
        for (int s = 1; s < MAX_SIG; s++)
            if (sigismember(&u->set, s))
                deliver_locked(s);
        *pp = u->next;
        for (int s = 1; s < MAX_SIG; s++)
            if (sigismember(&u->set, s) && unuse_signal(s))
                sigaddset(&reraise, s);
        atomic_fetch_sub(&goc__sched.npollwait, 1);
    }
    pthread_mutex_unlock(&sig.mu);
    raise_each(&reraise);
    if (!u)
        return -EINVAL;
    goc_chan_release(u->ch);
    goc__free(u);
    return 0;
}

int64_t goc_signal_dropped(void)
{
    return atomic_load(&sig.dropped);
}
