#!/usr/bin/env bash
# The tour: every example, in the order of the seed document, each with a
# headline. Usage: examples/tour.sh [build-dir]
set -euo pipefail
build=${1:-build}

examples=(
    "basic_goroutine|1.1 Goroutines joined with a WaitGroup (BasicGoroutineExample)"
    "goroutine_with_timeout|1.1 Work with a timeout that really stops the work (GoroutineWithTimeout)"
    "many_goroutines|1.1 One goroutine per task: 100,000 sleepers on every P"
    "goroutine_pool|1.2 100 tasks on at most 10 pooled goroutines (PoolExample)"
    "graceful_shutdown --demo|1.3 A TCP service stopped by SIGINT with requests in flight (GracefulExample)"
    "pipeline|2.1 A cancellable pipeline (PipelineExample)"
    "buffered_channel|2.1 Producer and consumer on a buffered channel (BufferedChannelExample)"
    "fan_out_fan_in|2.1 Fan-out to 4 workers, fan-in, then cancelled midway (FanOut, FanIn)"
    "channel_with_timeout|2.2 Receive with a timeout, closed told apart (ChannelWithTimeout)"
    "broadcaster|2.2 A broadcaster whose close ends every subscriber (BroadcasterExample)"
    "worker_pool|3.1 1000 jobs, 10 workers, a queue of 100, every outcome kept (WorkerPoolExample)"
    "futures|3.2 Futures: all, race, then, any (FuturesExample)"
    "semaphore|4.1 At most 10 tasks at a time with a weighted semaphore (SemaphoreExample)"
    "rate_limiter|4.1 Requests paced by a token bucket, deadline-aware waits (RateLimiterExample)"
    "circuit_breaker|4.1 A circuit breaker that fails fast and probes back (CircuitBreakerExample)"
    "object_pool|4.2 Reused buffers and a bounded connection pool (ObjectPoolExample)"
    "memory_monitor|4.2 Memory sampled while it grows, with a hysteresis alarm (MemoryMonitorExample)"
    "retry|5.1 Retry with exponential backoff, keeping the last error (RetryExample)"
    "concurrent_errors|5.1 Errors from many goroutines, joined (ConcurrentErrorExample)"
    "recovery|5.2 Panics recorded, cleanups run, work goes on (RecoveryExample)"
    "monitoring|6.1 Task metrics and the runtime's statistics scraped from /metrics (MonitoringExample)"
    "profiling|6.2 CPU, heap and goroutine profiles in pprof format (ProfilingExample)"
)

for entry in "${examples[@]}"; do
    name=${entry%%|*}
    title=${entry#*|}
    printf '\n=== %s ===\n' "$title"
    # shellcheck disable=SC2086 # an entry may carry arguments
    "$build"/examples/$name
done
printf '\nTour complete: %d examples ran.\n' "${#examples[@]}"
