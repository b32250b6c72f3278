//go:build unix

package ws

// Slow loris: handshakes that never finish must not hold server resources
// past the http.Server's ReadHeaderTimeout.

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/fdlimit"
)

// TestSlowlorisHandshakes opens 1,000 connections that start a handshake and
// never finish it (part of the request line, part of the headers, or
// nothing at all) against a ws.Server behind an http.Server with
// ReadHeaderTimeout. The server holds a goroutine per connection while it
// waits for the headers; after the timeout every one of them is gone, the
// connections are closed, and no handler ever ran.
func TestSlowlorisHandshakes(t *testing.T) {
	const (
		conns             = 1000
		readHeaderTimeout = 500 * time.Millisecond
		settle            = 15 * time.Second // bound on the wait for the goroutines to go
		slack             = 20               // goroutines of the runtime, timers, this test
	)
	fdlimit.Raise(t, 2*conns+100)

	var handled atomic.Int64
	srv := NewServer(func(ctx context.Context, c *Conn) error { handled.Add(1); return nil }, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: readHeaderTimeout,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		hs.Close()
		<-served
	}()
	time.Sleep(10 * time.Millisecond)
	base := runtime.NumGoroutine()

	// Sample the goroutine count while the connections are held.
	var peak atomic.Int64
	stopSampling := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-stopSampling:
				return
			case <-tick.C:
			}
		}
	}()

	partial := []string{
		"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", // headers never end
		"GET /ws HT", // the request line never ends
		"G",
		"", // connects and sends nothing
	}
	held := make([]net.Conn, conns)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	next := atomic.Int64{}
	opened := time.Now()
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= conns {
					return
				}
				nc, err := net.DialTimeout("tcp", ln.Addr().String(), testTimeout)
				if err != nil {
					errs <- err
					return
				}
				held[i] = nc
				if p := partial[i%len(partial)]; p != "" {
					nc.SetWriteDeadline(time.Now().Add(testTimeout))
					if _, err := io.WriteString(nc, p); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	openTook := time.Since(opened)
	defer func() {
		for _, nc := range held {
			if nc != nil {
				nc.Close()
			}
		}
	}()
	close(errs)
	for err := range errs {
		t.Fatalf("opening the connections: %v", err)
	}

	// The goroutines the server holds for the unfinished handshakes end.
	deadline := time.Now().Add(settle)
	var now int
	for {
		now = runtime.NumGoroutine()
		if now <= base+slack {
			break
		}
		if time.Now().After(deadline) {
			close(stopSampling)
			<-sampled
			t.Fatalf("%d goroutines %v after opening %d unfinished handshakes (baseline %d, peak %d): the server still holds them past ReadHeaderTimeout %v",
				now, settle, conns, base, peak.Load(), readHeaderTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	settled := time.Since(opened)
	close(stopSampling)
	<-sampled

	// The peak shows the connections were really held (a goroutine each
	// on the server) before the timeout freed them. Opening them may take
	// longer than the timeout on a slow machine, so ask for a quarter.
	if p := peak.Load(); p < int64(base+conns/4) {
		t.Errorf("goroutine peak %d with baseline %d: the %d connections were not held at the same time (opening took %v)", p, base, conns, openTook)
	}
	// Every connection was closed by the server: reads see EOF (or a
	// reset), never our own deadline.
	for i, nc := range held {
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		var b [512]byte
		_, err := nc.Read(b[:])
		for err == nil {
			_, err = nc.Read(b[:])
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("connection %d is still open on the server side", i)
		}
	}
	if n := handled.Load(); n != 0 {
		t.Errorf("the handler ran %d times for handshakes that never finished", n)
	}
	if n := srv.Len(); n != 0 {
		t.Errorf("Len = %d", n)
	}
	t.Logf("%d unfinished handshakes: goroutines baseline %d, peak %d, back to %d after %v (opening took %v, ReadHeaderTimeout %v)",
		conns, base, peak.Load(), now, settled, openTook, readHeaderTimeout)
}
