// Memory workloads: parked_mem (cost of a parked goroutine) and
// baseline_rss (memory of the bare process, read in init).
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Read before any workload runs.
var baselineRSS, baselineSys uint64

func init() {
	baselineRSS = readRSS()
	baselineSys = readSys()
}

func runBaseline(int) {
	report("baseline_rss", float64(baselineRSS)/1024, "KiB")
	report("baseline_sys", float64(baselineSys)/1024, "KiB")
}

// runParkedMem: N goroutines parked on one channel; RSS and Sys growth per
// goroutine. No warm-up.
func runParkedMem(n int) {
	runtime.GC()
	rss0, sys0 := readRSS(), readSys()

	ch := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(n)
	done.Add(n)
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-ch
			done.Done()
		}()
	}
	started.Wait()
	time.Sleep(50 * time.Millisecond)
	rss1, sys1 := readRSS(), readSys()

	report("parked_mem", perItem(rss0, rss1, n), "bytes")
	report("parked_mem_sys", perItem(sys0, sys1, n), "bytes")

	t0 := time.Now()
	close(ch)
	done.Wait()
	fmt.Fprintf(os.Stderr, "parked_mem: wake+exit of %d goroutines: %.1f ms\n",
		n, ms(time.Since(t0)))
}

// perItem returns (after-before)/n, allowing a negative delta.
func perItem(before, after uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n)
}

// readRSS returns the resident set size in bytes (/proc/self/statm field 2).
func readRSS() uint64 {
	data, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		fmt.Fprintln(os.Stderr, "statm:", err)
		os.Exit(1)
	}
	fields := strings.Fields(string(data))
	if len(fields) < 2 {
		fmt.Fprintln(os.Stderr, "statm: unexpected format")
		os.Exit(1)
	}
	pages, err := strconv.ParseUint(fields[1], 10, 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, "statm:", err)
		os.Exit(1)
	}
	return pages * uint64(os.Getpagesize())
}

// readSys returns runtime.MemStats.Sys: memory obtained from the OS.
func readSys() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.Sys
}
