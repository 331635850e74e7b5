/* SPDX-License-Identifier: MIT */
/*
 * The seed's SemaphoreExample (section 4.1) in C: 100 tasks, at most 10 at
 * a time, each acquiring a permit from a weighted semaphore.
 *
 * Fixed against the original: each acquire takes its own context (a per
 * call deadline here), and an already-cancelled context fails even when
 * permits are free (the original's random select let it through half the
 * time); releasing more than is held is reported, not ignored; the size
 * is validated; and the peak concurrency is measured, not assumed.
 */
#include <goc.h>

#include <stdatomic.h>
#include <stdio.h>

static goc_sem sem;
static goc_wg wg = GOC_WG_INIT;
static _Atomic int running, peak, completed;

static void task(void *arg)
{
    (void)arg;
    goc_ctx_local local;
    goc_ctx *ctx = goc_ctx_init_timeout(&local, NULL, 5 * GOC_SECOND);
    int err = goc_sem_acquire(&sem, 1, ctx);
    goc_ctx_destroy(ctx);
    if (err) {
        printf("task %lld: %s\n", (long long)goc_id(), goc_strerror(err));
        goc_wg_done(&wg);
        return;
    }
    int now = atomic_fetch_add(&running, 1) + 1;
    for (int p = atomic_load(&peak); now > p;)
        atomic_compare_exchange_weak(&peak, &p, now);
    goc_sleep(10 * GOC_MILLISECOND, NULL); /* the work (100 ms in the seed) */
    atomic_fetch_sub(&running, 1);
    atomic_fetch_add(&completed, 1);
    goc_sem_release(&sem, 1);
    goc_wg_done(&wg);
}

static int example(void *unused)
{
    (void)unused;
    if (goc_sem_init(&sem, 0) != -EINVAL) /* a size of 0 is refused */
        return 1;
    goc_sem_init(&sem, 10);
    int64_t t0 = goc_now();
    goc_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        goc_go(task, NULL);
    goc_wg_wait(&wg, NULL);
    printf("100 tasks of 10 ms, at most 10 at a time: %d completed in "
           "%.0f ms, peak concurrency %d\n",
           atomic_load(&completed), (double)(goc_now() - t0) / 1e6,
           atomic_load(&peak));

    goc_ctx *cancelled;
    goc_ctx_with_cancel(NULL, &cancelled);
    goc_ctx_cancel(cancelled);
    printf("acquire with a cancelled context: %s (permits were free)\n",
           goc_strerror(goc_sem_acquire(&sem, 1, cancelled)));
    goc_ctx_release(cancelled);
    printf("release without acquire: %s\n",
           goc_strerror(goc_sem_release(&sem, 1)));
    return atomic_load(&peak) <= 10 ? 0 : 1;
}

int main(void)
{
    return goc_run(example, NULL);
}
