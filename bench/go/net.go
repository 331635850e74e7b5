// Network workload: echo_tcp (round trips over loopback TCP).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
)

const echoRounds = 200

// runEcho: a server with a goroutine per connection echoing 64-byte
// messages, and n clients doing echoRounds round trips each, after one
// complete run as a warm-up.
func runEcho(n int) {
	echoOnce(n) // warm-up
	el := echoOnce(n)
	fmt.Printf("echo_tcp %.0f rt/s\n", float64(n*echoRounds)/el.Seconds())
}

// echoOnce: one complete run; the time from the start barrier to the last
// client's end.
func echoOnce(n int) time.Duration {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err == nil, "listen: %v", err)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func(c net.Conn) {
				buf := make([]byte, 64)
				for {
					if _, err := io.ReadFull(c, buf); err != nil {
						break
					}
					if _, err := c.Write(buf); err != nil {
						break
					}
				}
				c.Close()
			}(c)
		}
	}()
	addr := ln.Addr().String()
	var ready sync.WaitGroup
	start := make(chan struct{})
	var g errgroup.Group
	ready.Add(n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		id := i
		g.Go(func() error {
			c, err := net.Dial("tcp", addr)
			ready.Done()
			if err != nil {
				return err
			}
			defer c.Close()
			<-start
			out := make([]byte, 64)
			in := make([]byte, 64)
			for r := 0; r < echoRounds; r++ {
				out[0], out[1] = byte(id), byte(r)
				if _, err := c.Write(out); err != nil {
					return err
				}
				if _, err := io.ReadFull(c, in); err != nil {
					return err
				}
				if in[0] != out[0] || in[1] != out[1] {
					return fmt.Errorf("echo mismatch")
				}
			}
			return nil
		})
	}
	ready.Wait()
	fmt.Fprintf(os.Stderr, "echo_tcp: connect phase %v\n", time.Since(t0))
	t1 := time.Now()
	close(start)
	err = g.Wait()
	el := time.Since(t1)
	check(err == nil, "echo: %v", err)
	ln.Close()
	return el
}
