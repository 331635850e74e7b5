// Context workload: ctx_cancel, cancelling a flat tree of N children, each
// watched by its own goroutine.
package main

import (
	"context"
	"sync"
	"time"
)

func runCtxCancel(n int) {
	ctxCancelOnce(n) // warm-up
	report("ctx_cancel", float64(ctxCancelOnce(n).Nanoseconds())/1e3, "us")
}

func ctxCancelOnce(n int) time.Duration {
	root, cancelRoot := context.WithCancel(context.Background())
	children := make([]context.Context, n)
	cancels := make([]context.CancelFunc, n)
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for i := range children {
		children[i], cancels[i] = context.WithCancel(root)
		go func(child context.Context) {
			started.Done()
			<-child.Done()
			done.Done()
		}(children[i])
	}
	started.Wait()
	time.Sleep(20 * time.Millisecond)

	t0 := time.Now()
	cancelRoot()
	done.Wait()
	elapsed := time.Since(t0)

	for i, child := range children {
		check(child.Err() == context.Canceled, "ctx_cancel: child %d: %v", i, child.Err())
		cancels[i]()
	}
	return elapsed
}
