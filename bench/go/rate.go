// Rate limiter workloads: rate_allow, rate_allow_par
// (golang.org/x/time/rate, 1e9 events/s, burst 1000).
package main

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const rateGoroutines = 8

// runRateAllow: one goroutine calls lim.Allow() N times.
func runRateAllow(n int) {
	rateAllowOnce(n) // warm-up
	reportPerOp("rate_allow", rateAllowOnce(n), n)
}

func rateAllowOnce(n int) time.Duration {
	lim := rate.NewLimiter(1e9, 1000)
	allowed := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		if lim.Allow() {
			allowed++
		}
	}
	d := time.Since(t0)
	check(allowed == n, "rate_allow: %d of %d allowed", allowed, n)
	return d
}

// runRateAllowPar: the limiter shared by 8 goroutines, N/8 calls each.
func runRateAllowPar(n int) {
	rateAllowParOnce(n) // warm-up
	reportPerOp("rate_allow_par", rateAllowParOnce(n), n)
}

func rateAllowParOnce(n int) time.Duration {
	lim := rate.NewLimiter(1e9, 1000)
	per := n / rateGoroutines
	var allowed int64
	var wg sync.WaitGroup
	t0 := time.Now()
	wg.Add(rateGoroutines)
	for g := 0; g < rateGoroutines; g++ {
		go func() {
			ok := int64(0)
			for i := 0; i < per; i++ {
				if lim.Allow() {
					ok++
				}
			}
			atomic.AddInt64(&allowed, ok)
			wg.Done()
		}()
	}
	wg.Wait()
	d := time.Since(t0)
	check(allowed == int64(per*rateGoroutines), "rate_allow_par: %d of %d allowed",
		allowed, per*rateGoroutines)
	return d
}
