// Shared helpers for the Go benchmarks: output, result checks, timing.
package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// report prints one figure line: "name value unit", value with one decimal.
func report(name string, value float64, unit string) {
	fmt.Printf("%s %.1f %s\n", name, value, unit)
}

// reportPerOp prints elapsed/n in nanoseconds per operation.
func reportPerOp(name string, elapsed time.Duration, n int) {
	report(name, float64(elapsed.Nanoseconds())/float64(n), "ns/op")
}

// check exits with status 1 when a workload's result is wrong.
func check(ok bool, format string, args ...interface{}) {
	if !ok {
		fmt.Fprintf(os.Stderr, "check failed: "+format+"\n", args...)
		os.Exit(1)
	}
}

// sumRange returns 0+1+...+(n-1) (wrapping like the int sums it checks).
func sumRange(n int) int {
	a, b := uint64(n), uint64(n-1)
	if a%2 == 0 {
		a /= 2
	} else {
		b /= 2
	}
	return int(a * b)
}

// cpuTime returns the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fmt.Fprintln(os.Stderr, "getrusage:", err)
		os.Exit(1)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 {
	return float64(d.Nanoseconds()) / 1e6
}
