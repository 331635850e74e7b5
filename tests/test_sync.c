/* SPDX-License-Identifier: MIT */
/* Tests of RWMutex, Cond and Once. */
#include "test.h"

#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ---- RWMutex ----------------------------------------------------------- */

struct rw {
    goc_rwmutex rw;
    _Atomic int readers_in, writers_in;
    long value;
    goc_wg wg;
};

static void rw_reader(struct rw *s)
{
    for (int i = 0; i < 2000; i++) {
        ASSERT_OK(goc_rwmutex_rlock(&s->rw, NULL));
        atomic_fetch_add(&s->readers_in, 1);
        ASSERT_EQ(atomic_load(&s->writers_in), 0);
        if (i % 50 == 0)
            goc_yield(); /* hold it across a switch sometimes */
        atomic_fetch_sub(&s->readers_in, 1);
        ASSERT_OK(goc_rwmutex_runlock(&s->rw));
    }
}

static void rw_writer(struct rw *s)
{
    for (int i = 0; i < 500; i++) {
        ASSERT_OK(goc_rwmutex_lock(&s->rw, NULL));
        ASSERT_EQ(atomic_fetch_add(&s->writers_in, 1), 0);
        ASSERT_EQ(atomic_load(&s->readers_in), 0);
        s->value++;
        atomic_fetch_sub(&s->writers_in, 1);
        ASSERT_OK(goc_rwmutex_unlock(&s->rw));
    }
}

static void reader_g(void *arg)
{
    rw_reader(arg);
    goc_wg_done(&((struct rw *)arg)->wg);
}

static void writer_g(void *arg)
{
    rw_writer(arg);
    goc_wg_done(&((struct rw *)arg)->wg);
}

static void *writer_t(void *arg)
{
    rw_writer(arg);
    goc_wg_done(&((struct rw *)arg)->wg);
    return NULL;
}

TEST_G(rwmutex, mixed_load_writers_alone)
{
    static struct rw s = { .rw = GOC_RWMUTEX_INIT };
    goc_wg_add(&s.wg, 11);
    for (int i = 0; i < 8; i++)
        ASSERT_OK(goc_go(reader_g, &s));
    ASSERT_OK(goc_go(writer_g, &s));
    ASSERT_OK(goc_go(writer_g, &s));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, writer_t, &s));
    goc_wg_wait(&s.wg, NULL);
    test_join(t, NULL);
    ASSERT_EQ(s.value, 1500);
}

struct holder {
    goc_rwmutex *rw;
    goc_wg held, release, done;
};

static void hold_read(void *arg)
{
    struct holder *h = arg;
    ASSERT_OK(goc_rwmutex_rlock(h->rw, NULL));
    goc_wg_done(&h->held);
    goc_wg_wait(&h->release, NULL);
    ASSERT_OK(goc_rwmutex_runlock(h->rw));
    goc_wg_done(&h->done);
}

TEST_G(rwmutex, readers_share_writer_excludes)
{
    goc_rwmutex rw = GOC_RWMUTEX_INIT;
    struct holder h = { &rw, GOC_WG_INIT, GOC_WG_INIT, GOC_WG_INIT };
    goc_wg_add(&h.held, 1);
    goc_wg_add(&h.release, 1);
    goc_wg_add(&h.done, 1);
    ASSERT_OK(goc_go(hold_read, &h));
    goc_wg_wait(&h.held, NULL);
    /* Another reader gets in while the first holds it... */
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, GOC_SECOND);
    ASSERT_OK(goc_rwmutex_rlock(&rw, ctx));
    ASSERT_OK(goc_rwmutex_runlock(&rw));
    goc_ctx_destroy(ctx);
    /* ...a writer does not. */
    ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_rwmutex_lock(&rw, ctx), -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    goc_wg_done(&h.release);
    goc_wg_wait(&h.done, NULL);
    ASSERT_OK(goc_rwmutex_lock(&rw, NULL));
    ASSERT_OK(goc_rwmutex_unlock(&rw));
}

struct pref {
    goc_rwmutex rw;
    _Atomic int writer_done, late_reader_saw_writer;
    goc_wg wg;
};

static void pref_writer(void *arg)
{
    struct pref *p = arg;
    ASSERT_OK(goc_rwmutex_lock(&p->rw, NULL));
    atomic_store(&p->writer_done, 1);
    ASSERT_OK(goc_rwmutex_unlock(&p->rw));
    goc_wg_done(&p->wg);
}

static void pref_reader(void *arg)
{
    struct pref *p = arg;
    ASSERT_OK(goc_rwmutex_rlock(&p->rw, NULL));
    atomic_store(&p->late_reader_saw_writer, atomic_load(&p->writer_done));
    ASSERT_OK(goc_rwmutex_runlock(&p->rw));
    goc_wg_done(&p->wg);
}

TEST_G(rwmutex, waiting_writer_blocks_new_readers)
{
    static struct pref p = { .rw = GOC_RWMUTEX_INIT };
    ASSERT_OK(goc_rwmutex_rlock(&p.rw, NULL)); /* an early reader */
    goc_wg_add(&p.wg, 2);
    ASSERT_OK(goc_go(pref_writer, &p));
    /* Time for the writer, then the reader, to queue (longer under
     * valgrind, which runs one thread at a time). */
    int64_t pause = (test_instrumented() ? 100 : 10) * GOC_MILLISECOND;
    goc_sleep(pause, NULL); /* the writer now waits */
    ASSERT_OK(goc_go(pref_reader, &p));
    goc_sleep(pause, NULL);
    ASSERT_OK(goc_rwmutex_runlock(&p.rw));
    goc_wg_wait(&p.wg, NULL);
    ASSERT_EQ(atomic_load(&p.late_reader_saw_writer), 1);
}

TEST_G(rwmutex, misuse_timeout_and_cancel)
{
    goc_rwmutex rw = GOC_RWMUTEX_INIT;
    ASSERT_EQ(goc_rwmutex_unlock(&rw), GOC_EMISUSE);
    ASSERT_EQ(goc_rwmutex_runlock(&rw), GOC_EMISUSE);
    ASSERT_OK(goc_rwmutex_rlock(&rw, NULL));
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_rwmutex_lock(&rw, ctx), -ETIMEDOUT);
    goc_ctx_destroy(ctx);
    /* The writer that gave up no longer holds readers back. */
    ASSERT_OK(goc_rwmutex_rlock(&rw, NULL));
    ASSERT_OK(goc_rwmutex_runlock(&rw));
    ASSERT_OK(goc_rwmutex_runlock(&rw));
    ASSERT_OK(goc_rwmutex_lock(&rw, NULL));
    goc_ctx *c2;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &c2));
    test_cancel_after(c2, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_rwmutex_rlock(&rw, c2), -ECANCELED);
    ASSERT_EQ(goc_rwmutex_lock(&rw, c2), -ECANCELED); /* at entry */
    ASSERT_OK(goc_rwmutex_unlock(&rw));
    goc_ctx_release(c2);
}

struct rw_writer {
    goc_rwmutex *rw;
    goc_ctx *ctx;
    int result;
};

static void *rw_writer_thread(void *arg)
{
    struct rw_writer *w = arg;
    w->result = goc_rwmutex_lock(w->rw, w->ctx);
    return NULL;
}

/*
 * A writer's context wins its wait, and before the writer runs again the
 * last reader's unlock pops it from the queue (the claim fails). The
 * writer must still count itself out of the waiting writers: otherwise
 * new readers queue behind a writer that is gone, for ever. A plain
 * thread as the writer wakes slowly, which opens that window nearly every
 * time.
 */
TEST_G(rwmutex, cancelled_writer_popped_by_unlock_is_counted_out)
{
    for (int i = 0; i < 40; i++) {
        goc_rwmutex rw = GOC_RWMUTEX_INIT;
        struct rw_writer w = { .rw = &rw, .result = 1 };
        ASSERT_OK(goc_ctx_with_cancel(NULL, &w.ctx));
        ASSERT_OK(goc_rwmutex_rlock(&rw, NULL));
        pthread_t t;
        ASSERT_OK(pthread_create(&t, NULL, rw_writer_thread, &w));
        goc_sleep(GOC_MILLISECOND, NULL); /* the writer queues */
        goc_ctx_cancel(w.ctx);
        ASSERT_OK(goc_rwmutex_runlock(&rw));
        ASSERT_OK(test_join(t, NULL));
        if (w.result == 0)
            ASSERT_OK(goc_rwmutex_unlock(&rw)); /* it won before the cancel */
        else
            ASSERT_EQ(w.result, -ECANCELED);
        /* Nothing is held or waiting: a reader gets in at once. */
        goc_ctx_local l;
        goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, GOC_SECOND);
        ASSERT_OK(goc_rwmutex_rlock(&rw, ctx));
        goc_ctx_destroy(ctx);
        ASSERT_OK(goc_rwmutex_runlock(&rw));
        ASSERT_OK(goc_rwmutex_lock(&rw, NULL));
        ASSERT_OK(goc_rwmutex_unlock(&rw));
        goc_ctx_release(w.ctx);
    }
}

/* ---- Cond -------------------------------------------------------------- */

struct box {
    goc_mutex mu;
    goc_cond cv;
    int items;
    long taken;
    goc_wg wg;
};

static void consumer(void *arg)
{
    struct box *b = arg;
    for (int i = 0; i < 1000; i++) {
        goc_mutex_lock(&b->mu, NULL);
        while (b->items == 0)
            ASSERT_OK(goc_cond_wait(&b->cv, &b->mu, NULL));
        b->items--;
        b->taken++;
        goc_mutex_unlock(&b->mu);
    }
    goc_wg_done(&b->wg);
}

static void *producer_t(void *arg)
{
    struct box *b = arg;
    for (int i = 0; i < 4000; i++) {
        goc_mutex_lock(&b->mu, NULL);
        b->items++;
        goc_cond_signal(&b->cv);
        goc_mutex_unlock(&b->mu);
    }
    return NULL;
}

TEST_G(cond, signal_wakes_consumers)
{
    static struct box b = { .mu = GOC_MUTEX_INIT, .cv = GOC_COND_INIT };
    goc_wg_add(&b.wg, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_OK(goc_go(consumer, &b));
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, producer_t, &b));
    goc_wg_wait(&b.wg, NULL);
    test_join(t, NULL);
    ASSERT_EQ(b.taken, 4000);
    ASSERT_EQ(b.items, 0);
}

struct gate {
    goc_mutex mu;
    goc_cond cv;
    int open;
    goc_wg started, done;
};

static void gate_waiter(void *arg)
{
    struct gate *g = arg;
    goc_mutex_lock(&g->mu, NULL);
    goc_wg_done(&g->started);
    while (!g->open)
        goc_cond_wait(&g->cv, &g->mu, NULL);
    goc_mutex_unlock(&g->mu);
    goc_wg_done(&g->done);
}

/* Go's Cond.Wait panics on an unlocked mutex; goc's returns misuse and
 * leaves everything as it was: no waiter queued, the mutex unlocked. */
TEST_G(cond, wait_without_the_lock_is_misuse)
{
    goc_mutex mu = GOC_MUTEX_INIT;
    goc_cond cv = GOC_COND_INIT;
    goc_ctx *ctx;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &ctx));
    ASSERT_EQ(goc_cond_wait(&cv, &mu, NULL), GOC_EMISUSE);
    ASSERT_EQ(goc_cond_wait(&cv, &mu, ctx), GOC_EMISUSE);
    /* Misuse comes before the context: a caller told "cancelled" would
     * believe it holds mu. */
    goc_ctx *done;
    ASSERT_OK(goc_ctx_with_cancel(NULL, &done));
    goc_ctx_cancel(done);
    ASSERT_EQ(goc_cond_wait(&cv, &mu, done), GOC_EMISUSE);
    goc_ctx_release(done);
    ASSERT_EQ(goc_mutex_unlock(&mu), GOC_EMISUSE); /* still unlocked */
    /* The cond still works: a real wait gets the signal and mu back. */
    ASSERT_OK(goc_mutex_lock(&mu, NULL));
    test_cancel_after(ctx, 5 * GOC_MILLISECOND);
    ASSERT_EQ(goc_cond_wait(&cv, &mu, ctx), -ECANCELED);
    ASSERT_OK(goc_mutex_unlock(&mu));
    goc_ctx_release(ctx);
}

/*
 * White box: struct cond { goc__lock lock; ... }. Holding the lock word
 * stalls a waiter between its check that the mutex is locked and its
 * unlock of it, so that the test can unlock the mutex in between.
 */
static _Atomic uint32_t *cond_lockword(goc_cond *cv)
{
    return (_Atomic uint32_t *)&cv->opaque_[0];
}

struct cond_race {
    goc_cond cv;
    goc_mutex mu;
    goc_ctx *ctx;
    goc_panic_info *p;
    int rc;
};

static int cond_race_wait(void *arg)
{
    struct cond_race *r = arg;
    return goc_cond_wait(&r->cv, &r->mu, r->ctx);
}

static void *cond_race_thread(void *arg)
{
    struct cond_race *r = arg;
    r->rc = goc_try(cond_race_wait, r, &r->p);
    return NULL;
}

/*
 * The unlock inside the wait is where a mutex unlocked by someone else
 * meanwhile is found. Under GOC_ABORT_ON_MISUSE=1 that misuse panics; a
 * goc_try() recovers it, and the cond must be as it was: its lock free,
 * no record of the dead wait in its queue or in the context.
 */
TEST_G(cond, misuse_found_by_the_unlock_panics_with_nothing_held)
{
    static struct cond_race r = { .cv = GOC_COND_INIT, .mu = GOC_MUTEX_INIT };
    ASSERT_OK(goc_ctx_with_cancel(NULL, &r.ctx));
    ASSERT_OK(goc_mutex_lock(&r.mu, NULL));
    uint32_t zero = 0;
    ASSERT(atomic_compare_exchange_strong(cond_lockword(&r.cv), &zero, 1));
    setenv("GOC_ABORT_ON_MISUSE", "1", 1);
    pthread_t t;
    ASSERT_OK(pthread_create(&t, NULL, cond_race_thread, &r));
    WAIT_UNTIL(atomic_load(cond_lockword(&r.cv)) == 2); /* it waits for it */
    ASSERT_OK(goc_mutex_unlock(&r.mu));                 /* behind its back */
    atomic_store(cond_lockword(&r.cv), 0);
    syscall(SYS_futex, cond_lockword(&r.cv), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1,
            NULL, NULL, 0);
    test_join(t, NULL);
    unsetenv("GOC_ABORT_ON_MISUSE");
    ASSERT_EQ(r.rc, GOC_EPANIC);
    ASSERT(r.p != NULL);
    ASSERT_EQ(goc_panic_info_code(r.p), GOC_EMISUSE);
    ASSERT(strstr(goc_panic_info_message(r.p), "goc_cond_wait"));
    goc_panic_info_free(r.p);
    ASSERT_EQ(atomic_load(cond_lockword(&r.cv)), 0); /* nothing held */
    ASSERT_EQ(goc_mutex_try_lock(&r.mu), 0);         /* nothing changed */
    goc_ctx_cancel(r.ctx);  /* it finds no watch of the dead wait */
    goc_cond_signal(&r.cv); /* nor does a signal find its record */
    ASSERT_OK(goc_mutex_unlock(&r.mu));
    goc_ctx_release(r.ctx);
}

TEST_G(cond, broadcast_and_timeout)
{
    static struct gate g = { .mu = GOC_MUTEX_INIT, .cv = GOC_COND_INIT };
    goc_wg_add(&g.started, 50);
    goc_wg_add(&g.done, 50);
    for (int i = 0; i < 50; i++)
        ASSERT_OK(goc_go(gate_waiter, &g));
    goc_wg_wait(&g.started, NULL);
    goc_mutex_lock(&g.mu, NULL);
    g.open = 1;
    goc_cond_broadcast(&g.cv);
    goc_mutex_unlock(&g.mu);
    goc_wg_wait(&g.done, NULL);
    /* A timed-out wait returns with the mutex held again. */
    goc_ctx_local l;
    goc_ctx *ctx = goc_ctx_init_timeout(&l, NULL, 5 * GOC_MILLISECOND);
    goc_mutex_lock(&g.mu, NULL);
    ASSERT_EQ(goc_cond_wait(&g.cv, &g.mu, ctx), -ETIMEDOUT);
    ASSERT_EQ(goc_mutex_try_lock(&g.mu), -EAGAIN); /* we hold it */
    goc_mutex_unlock(&g.mu);
    goc_ctx_destroy(ctx);
    goc_cond_signal(&g.cv); /* nobody waits: nothing happens */
}

/* ---- Once -------------------------------------------------------------- */

struct once_state {
    goc_once once, once_r;
    _Atomic int calls, calls_r;
    _Atomic int bad_result;
    goc_wg wg;
};

static void init_fn(void *arg)
{
    struct once_state *s = arg;
    goc_sleep(GOC_MILLISECOND, NULL); /* others arrive meanwhile */
    atomic_fetch_add(&s->calls, 1);
}

static int init_result(void *arg)
{
    struct once_state *s = arg;
    return 40 + atomic_fetch_add(&s->calls_r, 1) + 2;
}

static void once_racer(void *arg)
{
    struct once_state *s = arg;
    ASSERT_OK(goc_once_do(&s->once, init_fn, s));
    ASSERT_EQ(atomic_load(&s->calls), 1); /* its effects are visible */
    if (goc_once_do_result(&s->once_r, init_result, s) != 42)
        atomic_store(&s->bad_result, 1);
    goc_wg_done(&s->wg);
}

TEST_G(once, runs_once_under_a_race)
{
    static struct once_state s = { .once = GOC_ONCE_INIT,
                                   .once_r = GOC_ONCE_INIT };
    goc_wg_add(&s.wg, 100);
    for (int i = 0; i < 100; i++)
        ASSERT_OK(goc_go(once_racer, &s));
    goc_wg_wait(&s.wg, NULL);
    ASSERT_EQ(atomic_load(&s.calls), 1);
    ASSERT_EQ(atomic_load(&s.calls_r), 1);
    ASSERT_EQ(atomic_load(&s.bad_result), 0);
}

static goc_once panicky_once = GOC_ONCE_INIT;
static _Atomic int panicky_calls;

static void panics_once(void *arg)
{
    (void)arg;
    atomic_fetch_add(&panicky_calls, 1);
    goc_panic(-EIO, "init failed");
}

static int first_call(void *arg)
{
    return goc_once_do(&panicky_once, panics_once, arg);
}

/* A function that panics has run, as in Go: the panic reaches the
 * caller's goc_try(), and later calls neither hang on the once's lock nor
 * call anything. */
TEST_G(once, a_panicking_function_counts_as_run)
{
    goc_panic_info *p = NULL;
    ASSERT_EQ(goc_try(first_call, NULL, &p), GOC_EPANIC);
    ASSERT(p != NULL);
    ASSERT_STR(goc_panic_info_message(p), "init failed");
    goc_panic_info_free(p);
    ASSERT_EQ(goc_once_do(&panicky_once, panics_once, NULL), GOC_EPANIC);
    ASSERT_EQ(atomic_load(&panicky_calls), 1);
}

struct cond_thread {
    goc_mutex mu;
    goc_cond cv;
    goc_ctx *ctx;
    _Atomic int rc;
};

static void *cond_wait_thread(void *arg)
{
    struct cond_thread *t = arg;
    goc_mutex_lock(&t->mu, NULL);
    atomic_store(&t->rc, goc_cond_wait(&t->cv, &t->mu, t->ctx));
    goc_mutex_unlock(&t->mu);
    return NULL;
}

TEST(cond, plain_thread_cancel_and_signal)
{
    static struct cond_thread t = { .mu = GOC_MUTEX_INIT, .cv = GOC_COND_INIT };
    ASSERT_OK(goc_ctx_with_cancel(NULL, &t.ctx));
    pthread_t th;
    ASSERT_OK(pthread_create(&th, NULL, cond_wait_thread, &t));
    goc_sleep(5 * GOC_MILLISECOND, NULL);
    goc_ctx_cancel(t.ctx); /* cancel while waiting */
    test_join(th, NULL);
    ASSERT_EQ(atomic_load(&t.rc), -ECANCELED);
    ASSERT_OK(goc_mutex_lock(&t.mu, NULL));
    ASSERT_EQ(goc_cond_wait(&t.cv, &t.mu, t.ctx), -ECANCELED); /* entry */
    ASSERT_OK(goc_mutex_unlock(&t.mu));                        /* still held */
    goc_ctx_release(t.ctx);
    t.ctx = NULL;
    atomic_store(&t.rc, 99);
    ASSERT_OK(pthread_create(&th, NULL, cond_wait_thread, &t));
    for (int i = 0; i < 500 && atomic_load(&t.rc) == 99; i++) {
        goc_sleep(GOC_MILLISECOND, NULL);
        goc_cond_signal(&t.cv); /* until the thread has been woken */
    }
    test_join(th, NULL);
    ASSERT_OK(atomic_load(&t.rc));
}

/* ---- NULL objects ------------------------------------------------------ */

static int count_call(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
    return 7;
}

static void count_plain(void *arg)
{
    atomic_fetch_add((_Atomic int *)arg, 1);
}

/* A NULL object or function is refused with -EINVAL by every call of the
 * sync layer that returns a code: most crashed on it. A once given no
 * function is not used up by it: it used to take the refusal as its
 * function's result and give it to every later caller. */
TEST_G(sync, null_objects_are_refused_with_einval)
{
    goc_mutex mu = GOC_MUTEX_INIT;
    goc_cond cv = GOC_COND_INIT;
    ASSERT_EQ(goc_mutex_lock(NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_mutex_try_lock(NULL), -EINVAL);
    ASSERT_EQ(goc_mutex_unlock(NULL), -EINVAL);
    ASSERT_EQ(goc_rwmutex_rlock(NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_rwmutex_runlock(NULL), -EINVAL);
    ASSERT_EQ(goc_rwmutex_lock(NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_rwmutex_unlock(NULL), -EINVAL);
    ASSERT_EQ(goc_wg_add(NULL, 1), -EINVAL);
    ASSERT_EQ(goc_wg_done(NULL), -EINVAL);
    ASSERT_EQ(goc_wg_wait(NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_sem_acquire(NULL, 1, NULL), -EINVAL);
    ASSERT_EQ(goc_sem_try_acquire(NULL, 1), -EINVAL);
    ASSERT_EQ(goc_sem_release(NULL, 1), -EINVAL);
    ASSERT_EQ(goc_sem_held(NULL), -EINVAL);
    ASSERT_EQ(goc_sem_available(NULL), -EINVAL);
    ASSERT_EQ(goc_sem_waiters(NULL), -EINVAL);
    ASSERT_EQ(goc_cond_wait(NULL, &mu, NULL), -EINVAL);
    ASSERT_OK(goc_mutex_lock(&mu, NULL));
    ASSERT_EQ(goc_cond_wait(&cv, NULL, NULL), -EINVAL);
    ASSERT_OK(goc_mutex_unlock(&mu));
    ASSERT(!goc_ctx_after_stop(NULL));

    goc_once once = GOC_ONCE_INIT, plain = GOC_ONCE_INIT;
    _Atomic int calls = 0;
    ASSERT_EQ(goc_once_do_result(&once, NULL, NULL), -EINVAL);
    ASSERT_EQ(goc_once_do_result(NULL, count_call, &calls), -EINVAL);
    ASSERT_EQ(goc_once_do_result(&once, count_call, &calls), 7);
    ASSERT_EQ(goc_once_do(&plain, NULL, NULL), -EINVAL);
    ASSERT_OK(goc_once_do(&plain, count_plain, &calls));
    ASSERT_EQ(atomic_load(&calls), 2);
}
