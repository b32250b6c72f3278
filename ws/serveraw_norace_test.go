//go:build !race

package ws

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// TestServeIdleMemory measures the heap an idle connection holds, served
// by Serve and by ServeHTTP, at 2,000 connections: Serve must hold no more
// (it keeps nothing of the request), and it leaves less garbage per
// handshake (TestHandshakeAllocs), which is what sets the GC's high-water
// mark, and so the RSS, under a crowd of connections.
func TestServeIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections, several times: not in -short")
	}
	const n = 2000
	per := map[string]float64{}
	for _, hs := range handshakeServers {
		idleHeapPerConnOn(t, hs, &AcceptOptions{}, n) // warms the pools and the runtime up
	}
	for range 2 { // the least of two rounds, the paths alternating
		for _, hs := range handshakeServers {
			v := idleHeapPerConnOn(t, hs, &AcceptOptions{}, n)
			if old, ok := per[hs.name]; !ok || v < old {
				per[hs.name] = v
			}
		}
	}
	t.Logf("idle heap per connection at %d connections: ServeHTTP %.0f B, Serve %.0f B", n, per["ServeHTTP"], per["Serve"])
	if per["Serve"] > per["ServeHTTP"]+64 {
		t.Errorf("an idle connection through Serve holds %.0f B, through ServeHTTP %.0f B", per["Serve"], per["ServeHTTP"])
	}
}

// TestHandshakeAllocs counts the allocations of one handshake, the
// server's and the client's dial (a bare socket, the same for both), and
// their bytes, through ServeHTTP and through Serve; Serve must allocate
// fewer.
func TestHandshakeAllocs(t *testing.T) {
	const runs = 200
	allocs := map[string]float64{}
	for _, hs := range handshakeServers {
		srv := NewServer(func(ctx context.Context, c *Conn) error {
			_, _, err := c.Read(ctx)
			return err
		}, &AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)})
		addr, stop := hs.start(t, srv)
		req := []byte(upgradeRequest(addr, "Origin: http://"+addr, "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"))
		buf := make([]byte, 512)
		handshake := func() {
			nc, err := net.DialTimeout("tcp", addr, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if _, err := nc.Write(req); err != nil {
				t.Fatal(err)
			}
			readUpgraded(t, nc, buf)
		}
		allocs[hs.name] = testing.AllocsPerRun(runs, handshake)
		waitFor(t, "the handlers to end", func() bool { return srv.Len() == 0 })
		stop()
	}
	t.Logf("allocations per handshake (server and dial): ServeHTTP %.1f, Serve %.1f", allocs["ServeHTTP"], allocs["Serve"])
	if allocs["Serve"] >= allocs["ServeHTTP"] {
		t.Errorf("a handshake through Serve allocates %.1f times, through ServeHTTP %.1f", allocs["Serve"], allocs["ServeHTTP"])
	}
}

// TestServeHandlerInPlace: through Serve, on a plain socket without Admit,
// a handler runs on its handshake's goroutine (below serveConn), where its
// stack did not grow; with Admit (or TLS) always on a goroutine of its own,
// whose stack the application's callback has not grown.
func TestServeHandlerInPlace(t *testing.T) {
	for _, admit := range []bool{false, true} {
		var inPlace, own atomic.Int64
		opts := &AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)}
		if admit {
			opts.Admit = func(w http.ResponseWriter, r *http.Request) (context.Context, error) { return r.Context(), nil }
		}
		srv := NewServer(func(ctx context.Context, c *Conn) error {
			buf := make([]byte, 8<<10)
			if strings.Contains(string(buf[:runtime.Stack(buf, false)]), "(*Server).serveConn(") {
				inPlace.Add(1)
			} else {
				own.Add(1)
			}
			_, _, err := c.Read(ctx)
			return err
		}, opts)
		addr, stop := serveOn(t, srv, nil)
		req := []byte(upgradeRequest(addr))
		buf := make([]byte, 512)
		const n = 20
		for range n {
			nc, err := net.DialTimeout("tcp", addr, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := nc.Write(req); err != nil {
				t.Fatal(err)
			}
			readUpgraded(t, nc, buf)
			nc.Close()
		}
		waitFor(t, "the handlers to end", func() bool { return inPlace.Load()+own.Load() == n && srv.Len() == 0 })
		stop()
		t.Logf("Admit %v: %d handlers on the handshake's goroutine, %d on their own", admit, inPlace.Load(), own.Load())
		if admit && inPlace.Load() != 0 || !admit && inPlace.Load() == 0 {
			t.Errorf("Admit %v: %d handlers on the handshake's goroutine, %d on their own", admit, inPlace.Load(), own.Load())
		}
	}
}
