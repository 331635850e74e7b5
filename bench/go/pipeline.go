// Pipeline workloads: generator -> square -> sum, over unbuffered
// (pipeline) or capacity-1024 (pipeline_buf) channels.
package main

import "time"

func runPipeline(n int) {
	pipelineOnce(n, 0) // warm-up
	reportPerOp("pipeline", pipelineOnce(n, 0), n)
}

func runPipelineBuf(n int) {
	pipelineOnce(n, 1024) // warm-up
	reportPerOp("pipeline_buf", pipelineOnce(n, 1024), n)
}

func pipelineOnce(n, capacity int) time.Duration {
	c1, c2 := make(chan int, capacity), make(chan int, capacity)
	t0 := time.Now()
	go func() {
		for i := 0; i < n; i++ {
			c1 <- i
		}
		close(c1)
	}()
	go func() {
		for v := range c1 {
			c2 <- v * v
		}
		close(c2)
	}()
	s := 0
	for v := range c2 {
		s += v
	}
	elapsed := time.Since(t0)
	check(s == sumSquares(n), "pipeline: sum %d, want %d", s, sumSquares(n))
	return elapsed
}

// sumSquares returns (n-1)n(2n-1)/6 = 0²+...+(n-1)², dividing before
// multiplying so the result wraps exactly like the int sum it checks.
func sumSquares(n int) int {
	f := [3]uint64{uint64(n - 1), uint64(n), uint64(2*n - 1)}
	for _, d := range []uint64{2, 3} {
		for i := range f {
			if f[i]%d == 0 {
				f[i] /= d
				break
			}
		}
	}
	return int(f[0] * f[1] * f[2])
}
