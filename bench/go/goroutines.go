// Goroutine lifecycle workloads: spawn and timers.
package main

import (
	"sync"
	"time"
)

// runSpawn: N goroutines that only call wg.Done; ns per goroutine.
func runSpawn(n int) {
	spawnOnce(n) // warm-up
	reportPerOp("spawn", spawnOnce(n), n)
}

func spawnOnce(n int) time.Duration {
	var wg sync.WaitGroup
	wg.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() { wg.Done() }()
	}
	wg.Wait()
	return time.Since(t0)
}

// runTimers: N goroutines each sleeping 10 ms; wall and CPU ms of the batch.
func runTimers(n int) {
	timersOnce(n) // warm-up
	wall, cpu := timersOnce(n)
	report("timers", ms(wall), "ms")
	report("timers_cpu", ms(cpu), "ms")
}

func timersOnce(n int) (wall, cpu time.Duration) {
	var wg sync.WaitGroup
	wg.Add(n)
	c0 := cpuTime()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		go func() {
			time.Sleep(10 * time.Millisecond)
			wg.Done()
		}()
	}
	wg.Wait()
	wall = time.Since(t0)
	cpu = cpuTime() - c0
	return wall, cpu
}
