//go:build !race

package ws

import (
	"context"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// TestEchoHandlerStack checks that a handler goroutine that has echoed a
// message still has its first 2 KiB stack: the runtime never shrinks the
// stack of a goroutine that waits, so a write path deeper than that first
// stack allows would double the stack of every idle connection for good.
// (Without the race detector only: it makes every frame larger.)
func TestEchoHandlerStack(t *testing.T) {
	const n = 500
	srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) },
		&AcceptOptions{CloseTimeout: 100 * time.Millisecond}) // the raw clients never answer a close
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	host := strings.TrimPrefix(hs.URL, "http://")

	// Warm up: the first uses of the pools and of the poller grow stacks
	// once per process, not per connection.
	warm := make([]*rawConn, 0, 16)
	echo := func(raw *rawConn) {
		raw.write(raw.fs().msg(opText, "ping"))
		raw.expectFrame(true, opText, "ping")
	}
	for range cap(warm) {
		raw := rawUpgrade(t, host)
		echo(raw)
		warm = append(warm, raw)
	}
	stack := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.StackInuse
	}
	before := stack()
	conns := make([]*rawConn, n)
	for i := range conns {
		conns[i] = rawUpgrade(t, host)
		echo(conns[i])
	}
	waitFor(t, "every handler to wait", func() bool { return srv.Len() == n+len(warm) })
	per := float64(stack()-before) / n
	t.Logf("stack per echoed idle connection: %.0f B", per)
	if per > 3072 {
		t.Fatalf("stack per echoed idle connection %.0f B: the handler's stack grew past 2 KiB", per)
	}
}
