/* SPDX-License-Identifier: MIT */
/*
 * sysmon: the runtime's watchdog thread. It runs without a P and wakes
 * once a second; today it returns the memory of stacks that have sat
 * unused in the global pool.
 */
#include "runtime.h"

#include <pthread.h>
#include <signal.h>
#include <time.h>

#define SYSMON_PERIOD_NS (1000 * 1000 * 1000)
#define STACK_IDLE_NS    ((int64_t)2 * 1000 * 1000 * 1000)

static void *sysmon_main(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = { .tv_sec = SYSMON_PERIOD_NS / 1000000000,
                               .tv_nsec = SYSMON_PERIOD_NS % 1000000000 };
        nanosleep(&ts, NULL);
        goc__stack_trim(goc__nanotime(), STACK_IDLE_NS);
    }
    return NULL;
}

int goc__sysmon_start(void)
{
    pthread_t t;
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* The watchdog never handles the application's signals. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int err = pthread_create(&t, &attr, sysmon_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return -err;
}
