// Synchronisation workloads: mutex (contended lock) and workerpool
// (feeder -> 8 workers -> main goroutine).
package main

import (
	"sync"
	"time"
)

const mutexGoroutines = 8

// runMutex: 8 goroutines increment one counter under one sync.Mutex.
func runMutex(n int) {
	mutexOnce(n) // warm-up
	reportPerOp("mutex", mutexOnce(n), n)
}

func mutexOnce(n int) time.Duration {
	per := n / mutexGoroutines
	var mu sync.Mutex
	var wg sync.WaitGroup
	counter := 0

	t0 := time.Now()
	wg.Add(mutexGoroutines)
	for g := 0; g < mutexGoroutines; g++ {
		go func() {
			for i := 0; i < per; i++ {
				mu.Lock()
				counter++
				mu.Unlock()
			}
			wg.Done()
		}()
	}
	wg.Wait()
	elapsed := time.Since(t0)
	check(counter == per*mutexGoroutines, "mutex: counter %d, want %d",
		counter, per*mutexGoroutines)
	return elapsed
}

const poolWorkers = 8

// tinyJob is about 100 dependent adds; kept out of line on purpose.
//
//go:noinline
func tinyJob() int {
	s := 0
	for k := 0; k < 100; k++ {
		s += k
	}
	return s
}

// runWorkerpool: N jobs through 8 workers; the main goroutine sums results.
func runWorkerpool(n int) {
	workerpoolOnce(n) // warm-up
	reportPerOp("workerpool", workerpoolOnce(n), n)
}

func workerpoolOnce(n int) time.Duration {
	jobs, results := make(chan int, 1024), make(chan int, 1024)
	var workers sync.WaitGroup

	t0 := time.Now()
	workers.Add(poolWorkers)
	for w := 0; w < poolWorkers; w++ {
		go func() {
			for range jobs {
				results <- tinyJob()
			}
			workers.Done()
		}()
	}
	go func() {
		for i := 0; i < n; i++ {
			jobs <- i
		}
		close(jobs)
	}()
	s := 0
	for i := 0; i < n; i++ {
		s += <-results
	}
	workers.Wait()
	elapsed := time.Since(t0)
	check(s == n*4950, "workerpool: sum %d, want %d", s, n*4950)
	return elapsed
}
