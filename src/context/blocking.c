/* SPDX-License-Identifier: MIT */
/*
 * The blocking pool: blocking calls run on a bounded set of plain threads
 * while the calling goroutine parks. A job is shared by its caller and
 * the worker (two references): a caller whose context ends leaves at once,
 * taking the job off the queue if no worker has taken it yet; otherwise
 * the worker still owns the job until the function returns.
 */
#include "ctx.h"
#include "goc/time.h"
#include "../internal/alloc.h"
#include "../internal/list.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#define IDLE_EXPIRY_S 10
#define DEFAULT_MAX   512

struct job {
    struct goc__dlink link; /* in the pool's queue */
    bool in_queue;          /* under pool.mu: not yet taken by a worker */
    int (*fn)(void *);
    void *arg;
    int result;
    struct goc__wait w;
    _Atomic int refs;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* CLOCK_MONOTONIC, for idle expiry */
    struct goc__dqueue q; /* jobs, FIFO */
    int queued;           /* jobs in q */
    int threads, idle, max;
    pthread_once_t once;
    _Atomic int64_t abandoned;
} pool = { .mu = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT };

/* pool_init's report, made once pool.once is no longer held: a log hook
 * that calls goc_blocking() would wait on it for ever. */
static struct goc__held_log pool_held;
static _Atomic bool pool_held_pending;

static void pool_init(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&pool.cv, &a);
    pthread_condattr_destroy(&a);
    pool.max = goc__env_count("GOC_BLOCKING_THREADS", GOC_BLOCKING_THREADS_MAX,
                              DEFAULT_MAX, &pool_held);
    atomic_store(&pool_held_pending, pool_held.n > 0);
}

static void job_release(struct job *j)
{
    if (atomic_fetch_sub_explicit(&j->refs, 1, memory_order_acq_rel) == 1)
        goc__free(j);
}

/* Under pool.mu: the oldest job, or NULL. */
static struct job *pop(void)
{
    struct goc__dlink *l = goc__dqueue_pop(&pool.q);
    if (!l)
        return NULL;
    pool.queued--;
    struct job *j = goc__container_of(l, struct job, link);
    j->in_queue = false;
    return j;
}

/*
 * The caller of j gave up: take j off the queue if no worker has taken
 * it yet, so that its function never runs (its arguments may well be
 * gone by then, and its work is wanted no more). Drops the worker's
 * reference then.
 */
static void withdraw(struct job *j)
{
    pthread_mutex_lock(&pool.mu);
    bool queued = j->in_queue;
    if (queued) {
        goc__dqueue_remove(&pool.q, &j->link);
        j->in_queue = false;
        pool.queued--;
    }
    pthread_mutex_unlock(&pool.mu);
    if (queued) {
        atomic_fetch_sub(&goc__sched.nblocking_jobs, 1);
        job_release(j);
    }
}

/* Wait for a job; NULL once idle for IDLE_EXPIRY_S (the thread exits). */
static struct job *next_job(void)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += IDLE_EXPIRY_S;
    pthread_mutex_lock(&pool.mu);
    struct job *j;
    while (!(j = pop())) {
        pool.idle++;
        int rc = pthread_cond_timedwait(&pool.cv, &pool.mu, &until);
        pool.idle--;
        if (rc != 0 && !pool.q.head) {
            pool.threads--;
            break;
        }
    }
    pthread_mutex_unlock(&pool.mu);
    return j;
}

static void *worker(void *arg)
{
    struct goc__thread *self = arg;
    goc__thread_started(self);
    struct job *j;
    while ((j = next_job())) {
        goc__thread_job(self, (const void *)(uintptr_t)j->fn);
        j->result = j->fn(j->arg);
        goc__thread_job(self, NULL);
        if (goc__wait_claim(&j->w, 0))
            goc__wait_finish(&j->w);
        else
            atomic_fetch_add(&pool.abandoned, 1); /* caller gave up */
        job_release(j);
        atomic_fetch_sub(&goc__sched.nblocking_jobs, 1);
    }
    goc__thread_exited(self);
    goc__free(self);
    atomic_fetch_sub(&goc__sched.nblocking_threads, 1);
    return NULL;
}

/* Under pool.mu: a new worker thread; 0 or -errno. */
static int spawn_worker(void)
{
    struct goc__thread *rec = goc__calloc(1, sizeof(*rec));
    if (!rec)
        return -EAGAIN; /* as a thread that cannot be made */
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The application's signals are not for pool threads; the CPU time
     * of the jobs they run is profiled. */
    goc__sigmask_service(&all, true);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    atomic_fetch_add(&goc__sched.nblocking_threads, 1);
    /* A thread's stack is a mapping: injected faults fail it as one. */
    goc__thread_created(rec, GOC__TK_BLOCKING);
    int err =
        goc__fault_hit() ? EAGAIN : pthread_create(&t, &attr, worker, rec);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err == 0) {
        pool.threads++;
    } else {
        goc__thread_exited(rec);
        goc__free(rec);
        atomic_fetch_sub(&goc__sched.nblocking_threads, 1);
    }
    return -err;
}

/*
 * Queue j for a worker, starting one unless an idle worker is left for
 * it. A signalled worker stays counted idle until it runs, and it takes
 * one queued job: so the jobs already queued have spoken for that many
 * idle workers. (Comparing idle with 0 let two quick submits share one
 * idle worker, and a job that waits for the other then deadlocked.)
 * Below the pool's limit a job never waits for a busy worker: if its
 * thread cannot be started, the submit fails (it used to queue the job
 * behind the busy ones, for ever if one of them waited for it).
 */
static int submit(struct job *j)
{
    int err = 0;
    pthread_mutex_lock(&pool.mu);
    if (pool.queued >= pool.idle && pool.threads < pool.max)
        err = spawn_worker();
    if (!err) {
        atomic_fetch_add(&goc__sched.nblocking_jobs, 1);
        goc__dqueue_push_back(&pool.q, &j->link);
        j->in_queue = true;
        pool.queued++;
        pthread_cond_signal(&pool.cv);
    }
    pthread_mutex_unlock(&pool.mu);
    return err;
}

int goc__blocking(int (*fn)(void *), void *arg, goc_ctx *ctx, bool *queued)
{
    *queued = false;
    if (!fn)
        return -EINVAL;
    int err = goc_ctx_err(ctx);
    if (err)
        return err;
    pthread_once(&pool.once, pool_init);
    if (atomic_exchange(&pool_held_pending, false))
        goc__held_log_flush(&pool_held);
    struct job *j = goc__malloc(sizeof(*j));
    if (!j)
        return -ENOMEM;
    *j = (struct job){ .fn = fn, .arg = arg };
    atomic_init(&j->refs, 2);
    goc__wait_init(&j->w, GOC__WAIT_BLOCKING);
    struct goc__ctx_watch cw;
    if ((err = goc__ctx_watch(ctx, &cw, &j->w, 1)) != 0 ||
        (err = submit(j)) != 0) {
        goc__ctx_unwatch(&cw);
        goc__free(j);
        return err;
    }
    *queued = true;
    int won = goc__wait_block(&j->w, NULL, NULL);
    goc__ctx_unwatch(&cw);
    if (won != 0)
        withdraw(j);
    int result = won == 0 ? j->result : goc_ctx_err(ctx);
    job_release(j);
    return result;
}

int goc_blocking(int (*fn)(void *), void *arg, goc_ctx *ctx)
{
    bool queued;
    return goc__blocking(fn, arg, ctx, &queued);
}

int64_t goc_blocking_abandoned(void)
{
    return atomic_load(&pool.abandoned);
}
