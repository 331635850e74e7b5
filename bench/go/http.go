// HTTP workload: http_hello (net/http server measured by wrk).
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// runHTTP serves "Hello, World!\n" on "/" with a ServeMux until SIGTERM
// or SIGINT, or until serveFor has passed, then shuts down gracefully.
// It measures nothing itself: bench/run.sh loads it with wrk.
func runHTTP(addr string, serveFor time.Duration) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("Hello, World!\n"))
	})
	ln, err := net.Listen("tcp", addr)
	check(err == nil, "listen %s: %v", addr, err)
	fmt.Fprintf(os.Stderr, "http_hello: listening on %s\n", ln.Addr())
	srv := &http.Server{Handler: mux}
	stopped := make(chan error, 1)
	go func() {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
		select {
		case <-sig:
		case <-time.After(serveFor):
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		stopped <- srv.Shutdown(ctx)
	}()
	err = srv.Serve(ln)
	check(err == http.ErrServerClosed, "serve: %v", err)
	err = <-stopped
	check(err == nil, "shutdown: %v", err)
}
