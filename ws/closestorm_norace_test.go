//go:build !race

package ws

import (
	"context"
	"log/slog"
	"runtime"
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// TestCloseStormHeap opens n connections to an echo server on Serve, then
// has every client send a close frame and drop its TCP connection at once
// (a reconnect storm's leaving half), and measures what the server's close
// handshakes allocate and the heap's peak meanwhile: a connection that
// only ever gets a close frame must not leave a read buffer behind (each
// would take a new one: 4 KiB per connection, all at once).
func TestCloseStormHeap(t *testing.T) {
	n := 4000 // two descriptors each, within a common limit of 8,192
	if testing.Short() {
		n = 2000
	}
	srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) },
		&AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)})
	addr, stop := serveOn(t, srv, nil)
	defer stop()
	conns := make([]*Conn, n)
	for i := range conns {
		c, _, err := Dial(context.Background(), "ws://"+addr, nil)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	waitFor(t, "every handler to wait", func() bool { return srv.Len() == n })
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
		{Name: "/gc/heap/allocs:bytes"},
	}
	inuse := func() uint64 {
		metrics.Read(samples)
		return samples[0].Value.Uint64() + samples[1].Value.Uint64()
	}
	runtime.GC()
	base := inuse()
	alloc0 := samples[2].Value.Uint64()
	var peak atomic.Uint64
	peak.Store(base)
	done := make(chan struct{})
	var sampled sync.WaitGroup
	sampled.Go(func() {
		s := make([]metrics.Sample, 2)
		copy(s, samples)
		for {
			select {
			case <-done:
				return
			default:
			}
			metrics.Read(s)
			if v := s[0].Value.Uint64() + s[1].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			time.Sleep(100 * time.Microsecond)
		}
	})
	var next atomic.Int64
	var wg sync.WaitGroup
	closeFrame := []byte{0x03, 0xe8}
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				c := conns[i]
				c.writeFrame(context.Background(), opClose, true, closeFrame)
				c.CloseNow()
			}
		})
	}
	wg.Wait()
	waitFor(t, "every handler to end", func() bool { return srv.Len() == 0 })
	close(done)
	sampled.Wait()
	metrics.Read(samples)
	perConn := float64(samples[2].Value.Uint64()-alloc0) / float64(n)
	t.Logf("%d connections closed by their clients: heap in use %.1f MiB before, peak %.1f MiB; %.0f B allocated per close (both sides)",
		n, float64(base)/(1<<20), float64(peak.Load())/(1<<20), perConn)
	if perConn > readBufSize/2 {
		t.Errorf("a close allocates %.0f B: a read buffer (%d B) per connection?", perConn, readBufSize)
	}
}
