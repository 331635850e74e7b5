// Go side of the goc benchmark suite: one program, one
// workload per invocation.
//
// Usage:
//
//	gobench -w <workload> [-n N]
//	gobench -mode http [-addr HOST:PORT] [-serve-for DURATION]
//	gobench -list
//
// Each workload prints one line per figure, "name value unit", on stdout;
// diagnostics go to stderr. A failed result check exits with status 1, an
// unknown workload with status 2. -mode http (or -w http_hello) runs the
// http_hello server, which bench/run.sh measures with wrk.
package main

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"time"
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
	"rate_allow":      {10_000_000, runRateAllow},
	"rate_allow_par":  {10_000_000, runRateAllowPar},
}

func main() {
	name := flag.String("w", "", "workload to run")
	n := flag.Int("n", 0, "override the workload's N (0: the spec's N)")
	list := flag.Bool("list", false, "print the supported workloads and exit")
	mode := flag.String("mode", "", "\"http\": serve http_hello instead of running a workload")
	addr := flag.String("addr", "127.0.0.1:8080", "http_hello: the address to listen on")
	serveFor := flag.Duration("serve-for", time.Minute, "http_hello: stop serving after this long")
	flag.Parse()

	if *list {
		printWorkloads()
		return
	}
	if *mode == "http" || *name == "http_hello" {
		check(*serveFor > 0, "-serve-for must be positive")
		runHTTP(*addr, *serveFor)
		return
	}
	if *mode != "" {
		fmt.Fprintf(os.Stderr, "gobench: unknown mode %q\n", *mode)
		os.Exit(2)
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
	names := []string{"http_hello"}
	for k := range workloads {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		fmt.Println(k)
	}
}
