// Semaphore workload: sem (x/sync/semaphore.Weighted of size 4).
package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

const semGoroutines = 8

// runSem: 8 goroutines each acquire and release weight 1, N/8 times.
func runSem(n int) {
	semOnce(n) // warm-up
	reportPerOp("sem", semOnce(n), n)
}

func semOnce(n int) time.Duration {
	per := n / semGoroutines
	sem := semaphore.NewWeighted(4)
	ctx := context.Background()
	var wg sync.WaitGroup
	var pairs int64
	t0 := time.Now()
	wg.Add(semGoroutines)
	for g := 0; g < semGoroutines; g++ {
		go func() {
			i := 0
			for ; i < per; i++ {
				err := sem.Acquire(ctx, 1)
				check(err == nil, "sem: %v", err)
				sem.Release(1)
			}
			atomic.AddInt64(&pairs, int64(i))
			wg.Done()
		}()
	}
	wg.Wait()
	el := time.Since(t0)
	check(pairs == int64(per*semGoroutines), "sem: %d pairs, want %d", pairs, per*semGoroutines)
	check(sem.TryAcquire(4), "sem: weight left held")
	sem.Release(4)
	return el
}
