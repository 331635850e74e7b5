// Channel workloads: pingpong, chan_spsc, chan_unbuf_spsc, chan_mpmc,
// select2.
package main

import (
	"sync"
	"time"
)

// runPingpong: round trips over two unbuffered channels.
func runPingpong(n int) {
	pingpongOnce(n) // warm-up
	reportPerOp("pingpong", pingpongOnce(n), n)
}

func pingpongOnce(n int) time.Duration {
	ping, pong := make(chan int), make(chan int)
	go func() {
		for i := 0; i < n; i++ {
			v := <-ping
			pong <- v + 1
		}
	}()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		ping <- i
		v := <-pong
		if v != i+1 { // boxing the arguments on every pass would allocate
			check(false, "pingpong: got %d, want %d", v, i+1)
		}
	}
	return time.Since(t0)
}

// runChanSPSC: one producer, the main goroutine consumes; capacity 1024.
func runChanSPSC(n int) {
	spscOnce(n, 1024) // warm-up
	reportPerOp("chan_spsc", spscOnce(n, 1024), n)
}

// runChanUnbufSPSC: as chan_spsc on an unbuffered channel.
func runChanUnbufSPSC(n int) {
	spscOnce(n, 0) // warm-up
	reportPerOp("chan_unbuf_spsc", spscOnce(n, 0), n)
}

func spscOnce(n, capacity int) time.Duration {
	ch := make(chan int, capacity)
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			ch <- i
		}
		close(ch)
	}()
	s := 0
	for v := range ch {
		s += v
	}
	elapsed := time.Since(t0)
	check(s == sumRange(n), "spsc: sum %d, want %d", s, sumRange(n))
	return elapsed
}

// runChanMPMC: 4 producers and 4 consumers on one channel of capacity 1024.
func runChanMPMC(n int) {
	mpmcOnce(n) // warm-up
	reportPerOp("chan_mpmc", mpmcOnce(n), n)
}

const mpmcProducers, mpmcConsumers = 4, 4

func mpmcOnce(n int) time.Duration {
	per := n / mpmcProducers
	ch := make(chan int, 1024)
	var prod, cons sync.WaitGroup
	var sums [mpmcConsumers]int

	t0 := time.Now()
	prod.Add(mpmcProducers)
	for p := 0; p < mpmcProducers; p++ {
		go func(base int) {
			for i := 0; i < per; i++ {
				ch <- base + i
			}
			prod.Done()
		}(p * per)
	}
	cons.Add(mpmcConsumers)
	for c := 0; c < mpmcConsumers; c++ {
		go func(c int) {
			s := 0
			for v := range ch {
				s += v
			}
			sums[c] = s
			cons.Done()
		}(c)
	}
	prod.Wait()
	close(ch)
	cons.Wait()
	elapsed := time.Since(t0)

	total := 0
	for _, s := range sums {
		total += s
	}
	want := sumRange(per * mpmcProducers)
	check(total == want, "chan_mpmc: sum %d, want %d", total, want)
	return elapsed
}

// runSelect2: the main goroutine selects over two buffered channels, each
// fed by its own producer, until both are closed.
func runSelect2(n int) {
	select2Once(n) // warm-up
	reportPerOp("select2", select2Once(n), n)
}

func select2Once(n int) time.Duration {
	half := n / 2
	a, b := make(chan int, 128), make(chan int, 128)
	produce := func(ch chan int, base int) {
		for i := 0; i < half; i++ {
			ch <- base + i
		}
		close(ch)
	}

	t0 := time.Now()
	go produce(a, 0)
	go produce(b, half)
	s, count := 0, 0
	for a != nil || b != nil {
		select {
		case v, ok := <-a:
			if !ok {
				a = nil
				continue
			}
			s += v
			count++
		case v, ok := <-b:
			if !ok {
				b = nil
				continue
			}
			s += v
			count++
		}
	}
	elapsed := time.Since(t0)
	check(count == 2*half, "select2: count %d, want %d", count, 2*half)
	check(s == sumRange(2*half), "select2: sum %d, want %d", s, sumRange(2*half))
	return elapsed
}
