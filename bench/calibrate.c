/* Machine-speed calibration for the benchmark tables.
 *
 * Runs a fixed chain of dependent integer multiply-adds (50M iterations of
 * four each), first on one thread, then on two threads at once, and prints
 * the time per iteration:
 *
 *   calib_1t X ns/op
 *   calib_2t X ns/op   (the slower of the two threads)
 *
 * then bounces one cache line between two threads and prints the time of
 * a round trip (a store seen by the other thread, and its answer seen
 * back):
 *
 *   calib_xcore X ns/op
 *
 * On a noisy shared VM these show which speed level the machine was in
 * during a batch, whether two threads really got two cores, and how far
 * apart those cores were: every workload whose goroutines talk across
 * Ps (chan_mpmc, workerpool) pays that round trip, and on a VM it swings
 * by a factor of five as the host moves the virtual CPUs.
 * Plain C11 + pthreads; no goc.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define ITERATIONS 50000000L

static volatile uint64_t sink; /* keeps the loop's result observable */

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Runs the fixed loop and returns nanoseconds per iteration. */
static double spin(void)
{
    uint64_t x = 12345;
    double t0 = now_ns();
    for (long i = 0; i < ITERATIONS; i++) {
        x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        x = x * 2862933555777941757ULL + 3037000493ULL;
        x = x * 3202034522624059733ULL + 4354685564936845319ULL;
        x = x * 2685821657736338717ULL + 1ULL;
        __asm__ volatile("" : "+r"(x)); /* no folding, no vectorising */
    }
    double t1 = now_ns();
    sink = x;
    return (t1 - t0) / (double)ITERATIONS;
}

static pthread_barrier_t start_line;

static void *spin_thread(void *arg)
{
    double *result = arg;
    pthread_barrier_wait(&start_line);
    *result = spin();
    return NULL;
}

/* Runs the loop on two threads released together; returns the slower. */
static double spin_two(void)
{
    pthread_t th[2];
    double result[2];
    if (pthread_barrier_init(&start_line, NULL, 2) != 0) {
        fprintf(stderr, "calibrate: pthread_barrier_init failed\n");
        exit(1);
    }
    for (int i = 0; i < 2; i++) {
        if (pthread_create(&th[i], NULL, spin_thread, &result[i]) != 0) {
            fprintf(stderr, "calibrate: pthread_create failed\n");
            exit(1);
        }
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start_line);
    return result[0] > result[1] ? result[0] : result[1];
}

#define XCORE_MAX_ROUNDS 1000000L
#define XCORE_BUDGET_NS  200e6

/* The bounced line: odd values are the main thread's, even the echo's. */
static _Alignas(64) _Atomic long ball;

static void *echo_thread(void *arg)
{
    (void)arg;
    for (long i = 1;; i += 2) {
        long seen;
        while ((seen = atomic_load_explicit(&ball, memory_order_acquire)) !=
               i) {
            if (seen < 0)
                return NULL;
        }
        atomic_store_explicit(&ball, i + 1, memory_order_release);
    }
}

/*
 * Round trips of one cache line between two threads, ns each. Bounded
 * by time as well as by count: on a bad day a round trip takes 20 us.
 */
static double xcore(void)
{
    pthread_t th;
    if (pthread_create(&th, NULL, echo_thread, NULL) != 0) {
        fprintf(stderr, "calibrate: pthread_create failed\n");
        exit(1);
    }
    double t0 = now_ns(), t1 = t0;
    long rounds = 0;
    while (rounds < XCORE_MAX_ROUNDS) {
        long serve = 2 * rounds + 1;
        atomic_store_explicit(&ball, serve, memory_order_release);
        while (atomic_load_explicit(&ball, memory_order_acquire) != serve + 1)
            ;
        if (++rounds % 1024 == 0 && (t1 = now_ns()) - t0 > XCORE_BUDGET_NS)
            break;
    }
    t1 = now_ns();
    atomic_store_explicit(&ball, -1, memory_order_release);
    pthread_join(th, NULL);
    return (t1 - t0) / (double)rounds;
}

int main(void)
{
    printf("calib_1t %.1f ns/op\n", spin());
    printf("calib_2t %.1f ns/op\n", spin_two());
    printf("calib_xcore %.1f ns/op\n", xcore());
    return 0;
}
