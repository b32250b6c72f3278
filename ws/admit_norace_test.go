//go:build !race

package ws

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// idleHeapPerConn opens n idle echo connections to a Server with opts,
// served through net/http (ServeHTTP), and returns the heap they hold, per
// connection, once idle; see idleHeapPerConnOn.
func idleHeapPerConn(t *testing.T, opts *AcceptOptions, n int) float64 {
	return idleHeapPerConnOn(t, handshakeServers[0], opts, n)
}

// idleHeapPerConnOn opens n idle echo connections to a Server with opts,
// served the way hs does, and returns the heap they hold, per connection,
// once idle. The clients are bare net.Conns (no buffer kept), the same in
// every measurement, so the differences between two measurements are the
// server's.
func idleHeapPerConnOn(t *testing.T, hs handshakeServer, opts *AcceptOptions, n int) float64 {
	t.Helper()
	opts.CloseTimeout = 100 * time.Millisecond    // the clients never answer a close
	opts.ErrorLog = slog.New(slog.DiscardHandler) // they vanish without a close, too
	srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) }, opts)
	host, stop := hs.start(t, srv)
	defer stop()
	req := requestTo(host, "/rooms/go?user=ann", "Cookie: session=ok",
		"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
		"Accept-Language: en-GB,en;q=0.9", "Origin: http://"+host, "Pragma: no-cache", "Cache-Control: no-cache",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
	dial := func() net.Conn {
		nc, err := net.DialTimeout("tcp", host, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(testTimeout))
		if _, err := io.WriteString(nc, req); err != nil {
			t.Fatal(err)
		}
		var buf [512]byte
		readUpgraded(t, nc, buf[:])
		nc.SetDeadline(time.Time{})
		return nc
	}
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	warm := make([]net.Conn, 0, 16)
	for range cap(warm) {
		warm = append(warm, dial())
	}
	waitFor(t, "the warm-up connections", func() bool { return srv.Len() == len(warm) })
	before := heap()
	conns := make([]net.Conn, n)
	for i := range conns {
		conns[i] = dial()
	}
	waitFor(t, "every handler to wait", func() bool { return srv.Len() == n+len(warm) })
	per := float64(heap()-before) / float64(n)
	for _, nc := range append(conns, warm...) {
		nc.Close()
	}
	return per
}

// TestAdmitIdleMemory measures what Admit costs an idle connection: nothing
// when it keeps only the request's context, a few dozen bytes when it keeps
// a user and a room, and what keeping the whole request would cost instead.
func TestAdmitIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections, several times: not in -short")
	}
	const n = 2000
	type key struct{}
	keep := func(v func(r *http.Request) any) func(http.ResponseWriter, *http.Request) (context.Context, error) {
		return func(w http.ResponseWriter, r *http.Request) (context.Context, error) {
			return context.WithValue(r.Context(), key{}, v(r)), nil
		}
	}
	// The least of two rounds, after a round that warms the pools and
	// the runtime up: the first connections of a process cost more.
	measure := func(admit func(http.ResponseWriter, *http.Request) (context.Context, error)) float64 {
		least := idleHeapPerConn(t, &AcceptOptions{Admit: admit}, n)
		least = min(least, idleHeapPerConn(t, &AcceptOptions{Admit: admit}, n))
		return least
	}
	idleHeapPerConn(t, &AcceptOptions{}, n)
	none := measure(nil)
	nilCtx := measure(func(http.ResponseWriter, *http.Request) (context.Context, error) { return nil, nil })
	values := measure(keep(func(r *http.Request) any {
		return admitted{r.URL.Query().Get("user"), strings.TrimPrefix(r.URL.Path, "/rooms/")}
	}))
	whole := measure(keep(func(r *http.Request) any { return r }))
	t.Logf("idle heap per connection: no Admit %.0f B; Admit keeping nothing %.0f B; a user and a room %.0f B; the whole request %.0f B",
		none, nilCtx, values, whole)
	if nilCtx > none+64 {
		t.Errorf("an Admit that keeps nothing costs %.0f B per idle connection, want at most 64", nilCtx-none)
	}
	// What the context of values costs (a valueCtx, the boxed value and
	// its strings: about 110 B), and nothing of the Server's.
	if values > nilCtx+160 {
		t.Errorf("an Admit that keeps a user and a room costs %.0f B per idle connection, want at most 160", values-nilCtx)
	}
}
