/* SPDX-License-Identifier: MIT */
/*
 * Runtime settings from the environment: GOC_MAXPROCS and GOC_STACK_SIZE,
 * and the CPU count this process may really use (affinity mask and the
 * cgroup CPU quota, as Go 1.25 and the JVM read it). A value that is
 * malformed or out of range is reported through the log and the default
 * used; each is read once, when the runtime (or the blocking pool) starts.
 */
#include "runtime.h"

#include <errno.h>
#include <limits.h>

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* CPUs a quota per period allows, rounded up; 0 for none. Clamped: a
 * huge quota (many CPUs' worth) must not truncate to a few. */
static int quota_cpus(long quota, long period)
{
    if (quota <= 0 || period <= 0)
        return 0;
    long cpus = quota / period + (quota % period != 0);
    return cpus > INT_MAX ? INT_MAX : (int)cpus;
}

/* cgroup v2 "cpu.max": "max 100000" or "<quota> <period>". */
static int cgroup_v2_cpus(void)
{
    FILE *f = fopen("/sys/fs/cgroup/cpu.max", "r");
    if (!f)
        return 0;
    char quota[32];
    long period = 0;
    int n = fscanf(f, "%31s %ld", quota, &period);
    fclose(f);
    if (n != 2 || period <= 0 || strcmp(quota, "max") == 0)
        return 0;
    return quota_cpus(atol(quota), period);
}

/* cgroup v1: cpu.cfs_quota_us (-1 = none) and cpu.cfs_period_us. */
static int cgroup_v1_cpus(void)
{
    long quota = -1, period = 0;
    FILE *f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld", &quota) != 1)
        quota = -1;
    fclose(f);
    f = fopen("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%ld", &period) != 1)
        period = 0;
    fclose(f);
    return quota_cpus(quota, period);
}

static int usable_cpus(void)
{
    cpu_set_t set;
    int n = 1;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    int quota = cgroup_v2_cpus();
    if (quota == 0)
        quota = cgroup_v1_cpus();
    if (quota > 0 && quota < n)
        n = quota;
    return n > 0 ? n : 1;
}

/* Digits only, from 1 to max: 0 for anything else (a sign, a blank, a
 * suffix, an overflow), where strtol would read " 3", "+3" and "3x". */
static long parse_count(const char *s, long max)
{
    long v = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        v = v * 10 + (*s - '0');
        if (v > max)
            return 0;
    }
    return v;
}

/* Report now, or hold the report for later. */
#define REPORT(held, ...)                         \
    do {                                          \
        if (held)                                 \
            goc__held_log_add(held, __VA_ARGS__); \
        else                                      \
            goc__log(__VA_ARGS__);                \
    } while (0)

int goc__env_count(const char *var,
                   int max,
                   int dflt,
                   struct goc__held_log *held)
{
    const char *env = getenv(var);
    if (!env || !*env)
        return dflt;
    long v = parse_count(env, max);
    if (v > 0)
        return (int)v;
    /* Said, not silently replaced: the user meant something by it. */
    REPORT(held, "%s=\"%s\" ignored: not a whole number from 1 to %d; using %d",
           var, env, max, dflt);
    return dflt;
}

int goc__config_procs(int requested, struct goc__held_log *held)
{
    if (requested > 0)
        return requested;
    return goc__env_count("GOC_MAXPROCS", GOC_MAXPROCS_MAX, usable_cpus(),
                          held);
}

/* Parses "262144", "256k", "1m" or "1g"; 0 when malformed or out of range
 * (a sign, or a value that overflows: "-1" or "18014398509482048k" would
 * otherwise wrap to a plausible size). */
static size_t parse_size(const char *s)
{
    if (*s < '0' || *s > '9')
        return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE)
        return 0;
    int shift = 0;
    if (*end == 'k' || *end == 'K')
        shift = 10, end++;
    else if (*end == 'm' || *end == 'M')
        shift = 20, end++;
    else if (*end == 'g' || *end == 'G')
        shift = 30, end++;
    if (*end != '\0' || v > (unsigned long long)SIZE_MAX >> shift)
        return 0;
    return (size_t)v << shift;
}

size_t goc__config_stack(size_t requested, struct goc__held_log *held)
{
    if (requested)
        return requested;
    const char *env = getenv("GOC_STACK_SIZE");
    if (!env || !*env)
        return GOC_STACK_DEFAULT;
    size_t v = parse_size(env);
    if (v >= GOC_STACK_MIN && v <= GOC_STACK_MAX)
        return v;
    REPORT(held,
           "GOC_STACK_SIZE=\"%s\" ignored: not a size from 16k to 1g "
           "(bytes, or with a k, m or g suffix); using %d",
           env, GOC_STACK_DEFAULT);
    return GOC_STACK_DEFAULT;
}
