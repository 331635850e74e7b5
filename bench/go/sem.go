// Semaphore workload: sem (x/sync/semaphore.Weighted of size 4).
package main

import (
	"context"
	"sync"
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
	t0 := time.Now()
	wg.Add(semGoroutines)
	for g := 0; g < semGoroutines; g++ {
		go func() {
			for i := 0; i < per; i++ {
				err := sem.Acquire(ctx, 1)
				check(err == nil, "sem: %v", err)
				sem.Release(1)
			}
			wg.Done()
		}()
	}
	wg.Wait()
	return time.Since(t0)
}
