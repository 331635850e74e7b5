// Go side of the goc benchmark suite: one program, one
// workload per invocation.
//
// Usage:
//
//	gobench -w <workload> [-n N]
//	gobench -list
//
// Each workload prints one line per figure, "name value unit", on stdout;
// diagnostics go to stderr. A failed result check exits with status 1, an
// unknown workload with status 2.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
)

// workload is one benchmark: its default size and its body. run does the
// warm-up itself (where the spec asks for one) and prints its figures.
type workload struct {
	defaultN int
	run      func(n int)
}

var workloads = map[string]workload{
	"spawn":           {1_000_000, runSpawn},
	"timers":          {100_000, runTimers},
	"parked_mem":      {1_000_000, runParkedMem},
	"baseline_rss":    {0, runBaseline},
	"pingpong":        {1_000_000, runPingpong},
	"chan_spsc":       {10_000_000, runChanSPSC},
	"chan_mpmc":       {10_000_000, runChanMPMC},
	"chan_unbuf_spsc": {2_000_000, runChanUnbufSPSC},
	"select2":         {5_000_000, runSelect2},
	"mutex":           {10_000_000, runMutex},
	"sem":             {4_000_000, runSem},
	"workerpool":      {1_000_000, runWorkerpool},
	"ctx_cancel":      {10_000, runCtxCancel},
	"pipeline":        {2_000_000, runPipeline},
	"pipeline_buf":    {2_000_000, runPipelineBuf},
	"echo_tcp":        {1_000, runEcho},
}

func main() {
	name := flag.String("w", "", "workload to run")
	n := flag.Int("n", 0, "override the workload's N (0: the spec's N)")
	list := flag.Bool("list", false, "print the supported workloads and exit")
	flag.Parse()

	if *list {
		printWorkloads()
		return
	}
	w, ok := workloads[*name]
	if !ok {
		fmt.Fprintf(os.Stderr, "gobench: unknown workload %q (try -list)\n", *name)
		os.Exit(2)
	}
	size := w.defaultN
	if *n > 0 {
		size = *n
	}
	w.run(size)
}

func printWorkloads() {
	names := make([]string, 0, len(workloads))
	for k := range workloads {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Println(k)
	}
}
