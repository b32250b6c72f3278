//go:build !race

package ws

import (
	"context"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// The handler stack tests check that a handler goroutine that has done its
// work once (an echo, a broadcast, a compressed echo) still has its first
// 2 KiB stack: the runtime never shrinks the stack of a goroutine that
// waits, so a path deeper than that first stack allows would double the
// stack of every idle connection for good. The depth is the transport's
// business (sock_linux.go: direct system calls; no defer on the small paths);
// these tests guard it. (Without the race detector only: it makes every
// frame larger.)
//
// Echo stays within the first 2 KiB. The other paths do not yet, and their
// guards hold them where they are, measured alone on this machine: a
// handler that has echoed a compressed message holds 4 KiB (4.0-4.3 KiB per
// connection), one that has broadcast to 200 connections 8 KiB (6.7-7.5 KiB
// per connection). Bringing them down to 2 KiB is open work; when it is
// done, their limits go down to echo's.

// TestEchoHandlerStack: a handler that echoes (Pipe(c, c)).
func TestEchoHandlerStack(t *testing.T) {
	srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) },
		&AcceptOptions{CloseTimeout: 100 * time.Millisecond}) // the raw clients never answer a close
	handlerStack(t, srv, 500, 3<<10, nil, func(raw *rawConn) {
		raw.write(raw.fs().msg(opText, "ping"))
		raw.expectFrame(true, opText, "ping")
	})
}

// TestBroadcastHandlerStack: a handler that relays its connection's
// messages to every connection (Pipe(srv, c)).
func TestBroadcastHandlerStack(t *testing.T) {
	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, srv, c) },
		&AcceptOptions{CloseTimeout: 100 * time.Millisecond})
	// Each connection sends once and gets its own message back (and the
	// later connections' ones, which it leaves unread: they are small).
	handlerStack(t, srv, 200, 9<<10, nil, func(raw *rawConn) {
		raw.write(raw.fs().msg(opText, "hello"))
		raw.expectFrame(true, opText, "hello")
	})
}

// TestDeflateHandlerStack: a handler that echoes compressed messages.
func TestDeflateHandlerStack(t *testing.T) {
	srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) },
		&AcceptOptions{CloseTimeout: 100 * time.Millisecond, Compression: &CompressionOptions{}})
	msg := strings.Repeat("compress me, ", 40)
	payload := dflCompress(t, []byte(msg))
	handlerStack(t, srv, 300, 5<<10, []string{"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover"}, func(raw *rawConn) {
		raw.write(dflFrames(opText, true, true, [][]byte{payload}))
		frames := dflReadMessage(t, raw)
		got, err := dflInflate(dflPayload(frames))
		if err != nil || string(got) != msg {
			t.Fatalf("echo: %v (%d bytes)", err, len(got))
		}
	})
}

// TestPeerCloseHandlerStack: a handler whose connection the peer closed
// (Pipe returns on its close frame, answered and the socket closed) still
// has its first 2 KiB stack. Its goroutine is about to end, so a stack
// grown there holds no memory, but growing it costs a copy of the stack
// at every connection's close. The handler waits after Pipe returns, so
// that the stack the close left is the one measured.
func TestPeerCloseHandlerStack(t *testing.T) {
	var ended atomic.Int64
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		err := wesos.Pipe(ctx, c, c)
		ended.Add(1)
		<-ctx.Done() // Shutdown
		return err
	}, nil)
	handlerStack(t, srv, 500, 3<<10, nil, func(raw *rawConn) {
		want := ended.Load() + 1
		raw.write(raw.fs().close(StatusNormalClosure, ""))
		raw.expectClose(StatusNormalClosure)
		waitFor(t, "the handler's Pipe to return", func() bool { return ended.Load() == want })
	})
}

// handlerStack opens n connections to srv (upgrade requests with the extra
// header lines), runs exchange once on each, and fails if the stack in use
// grew by more than limit bytes per connection.
func handlerStack(t *testing.T, srv *Server, n int, limit float64, extra []string, exchange func(raw *rawConn)) {
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	host := strings.TrimPrefix(hs.URL, "http://")
	upgrade := func() *rawConn {
		resp, raw := rawRequest(t, host, upgradeRequest(host, extra...))
		if resp.StatusCode != 101 {
			t.Fatalf("handshake: %s", resp.Status)
		}
		return raw
	}

	// Warm up: the first uses of the pools and of the poller grow stacks
	// once per process, not per connection.
	const warm = 16
	for range warm {
		exchange(upgrade())
	}
	stack := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.StackInuse
	}
	waitFor(t, "every handler to wait", func() bool { return srv.Len() == warm })
	before := stack()
	goroutines := runtime.NumGoroutine()
	for range n {
		exchange(upgrade())
	}
	// One goroutine more per connection (its handler's; the net/http
	// connection goroutine that ran it ended with the hijack): any other
	// goroutine (a broadcast delivery) is done.
	waitFor(t, "every handler to wait, and nothing else", func() bool {
		return srv.Len() == n+warm && runtime.NumGoroutine() <= goroutines+n
	})
	per := float64(stack()-before) / float64(n)
	t.Logf("stack per idle connection: %.0f B", per)
	if per > limit {
		t.Fatalf("stack per idle connection %.0f B, more than %.0f: the handler's stack grew", per, limit)
	}
}
