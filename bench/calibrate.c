/* Machine-speed calibration for the benchmark tables.
 *
 * Runs a fixed chain of dependent integer multiply-adds (50M iterations of
 * four each), first on one thread, then on two threads at once, and prints
 * the time per iteration:
 *
 *   calib_1t X ns/op
 *   calib_2t X ns/op   (the slower of the two threads)
 *
 * On a noisy shared VM these show which speed level the machine was in
 * during a batch, and whether two threads really got two cores.
 * Plain C11 + pthreads; no goc.
 */
#include <pthread.h>
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

int main(void)
{
    printf("calib_1t %.1f ns/op\n", spin());
    printf("calib_2t %.1f ns/op\n", spin_two());
    return 0;
}
