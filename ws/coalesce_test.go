package ws

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// writeCounter counts the writes made on a connection, and apart from them
// those the flush timer made.
type writeCounter struct {
	net.Conn
	writes atomic.Int64
	timed  atomic.Int64 // made by the flush timer (flushLater)
}

func (w *writeCounter) Write(p []byte) (int, error) {
	w.writes.Add(1)
	if calledFrom("flushLater") {
		w.timed.Add(1)
	}
	return w.Conn.Write(p)
}

// calledFrom reports whether a method of Conn (or sock) called name is on
// the calling goroutine's stack.
func calledFrom(name string) bool {
	pcs := make([]uintptr, 32)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(2, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "."+name) {
			return true
		}
		if !more {
			return false
		}
	}
}

// countWrites makes c's writes counted. Call it before c is used.
func countWrites(c *Conn) *writeCounter {
	w := &writeCounter{Conn: c.nc}
	c.nc = w
	c.noDirectWrites() // every write through nc, to be counted (not to the socket directly)
	return w
}

// burst returns n client text messages "<prefix>0", "<prefix>1", … as one
// byte slice, to be written at once.
func burst(fs frameSet, prefix string, n int) []byte {
	var b []byte
	for i := range n {
		b = append(b, fs.msg(opText, fmt.Sprintf("%s%d", prefix, i))...)
	}
	return b
}

// TestCoalesceEchoBurst: the answers to a burst of messages received
// together leave together, in far fewer writes than messages, in order and
// intact — including bursts larger than one output buffer.
func TestCoalesceEchoBurst(t *testing.T) {
	for _, tc := range []struct {
		n, size, maxWrites int
	}{
		{16, 0, 1},      // 16 small answers: one write
		{64, 1000, 32},  // 64 KiB: about a write per read buffer of input
		{200, 100, 200}, // arriving in several TCP reads: still all there
	} {
		t.Run(fmt.Sprintf("%dx%d", tc.n, tc.size), func(t *testing.T) {
			c, raw := serverPair(t, nil)
			w := countWrites(c)
			ctx := testCtx(t)
			pad := strings.Repeat("x", tc.size)
			raw.write(burst(raw.fs(), pad, tc.n))
			echoed := goAsync(t, func() error {
				for range tc.n {
					m, err := c.Next(ctx)
					if err != nil {
						return err
					}
					if err := c.Send(ctx, m); err != nil {
						return err
					}
				}
				return nil
			})
			for i := range tc.n {
				raw.expectFrame(true, opText, fmt.Sprintf("%s%d", pad, i))
			}
			if err := echoed(); err != nil {
				t.Fatal(err)
			}
			// The flush timer bounds how long a kept answer waits
			// (flushDelay, 250 µs); a machine slow enough to let it
			// fire in the middle of the burst sends in more writes,
			// and those are not the coalescing's fault.
			got, timed := w.writes.Load(), w.timed.Load()
			if got-timed > int64(tc.maxWrites) {
				t.Errorf("%d answers took %d writes (%d of them by the flush timer), want at most %d besides the timer's",
					tc.n, got, timed, tc.maxWrites)
			}
			if timed > 0 {
				t.Logf("the flush timer fired %d times: a loaded machine", timed)
			}
		})
	}
}

// TestCoalesceFlushTimer: a handler that answers one message of a burst and
// then does something else, without reading, still gets its answer out.
func TestCoalesceFlushTimer(t *testing.T) {
	c, raw := serverPair(t, nil)
	ctx := testCtx(t)
	raw.write(burst(raw.fs(), "m", 2))
	release := make(chan struct{})
	done := goAsync(t, func() error {
		_, b, err := c.Read(ctx) // "m1" stays buffered
		if err != nil {
			return err
		}
		if err := c.Write(ctx, Text, append(b, '!')); err != nil {
			return err
		}
		<-release // busy elsewhere, not reading
		_, b, err = c.Read(ctx)
		if err != nil {
			return err
		}
		return c.Write(ctx, Text, append(b, '!'))
	})
	raw.expectFrame(true, opText, "m0!")
	close(release)
	raw.expectFrame(true, opText, "m1!")
	if err := done(); err != nil {
		t.Fatal(err)
	}
}

// TestCoalesceOrder: frames kept for a burst leave before anything written
// after them — a large frame, a ping, a close — and never after.
func TestCoalesceOrder(t *testing.T) {
	big := strings.Repeat("B", 100<<10)
	for _, tc := range []struct {
		name string
		then func(ctx context.Context, c *Conn) error
		want func(raw *rawConn)
	}{
		{"large", func(ctx context.Context, c *Conn) error {
			return c.Write(ctx, Text, []byte(big))
		}, func(raw *rawConn) { raw.expectFrame(true, opText, big) }},
		{"ping", func(ctx context.Context, c *Conn) error {
			go c.Ping(ctx) // its pong is never read here
			return nil
		}, func(raw *rawConn) {
			if f := raw.read(); f.op != opPing {
				t.Errorf("got %v, want a ping", f)
			}
		}},
		{"close", func(ctx context.Context, c *Conn) error {
			go c.Close(StatusNormalClosure, "bye")
			return nil
		}, func(raw *rawConn) {
			if f := raw.expectClose(StatusNormalClosure); f.closeReason() != "bye" {
				t.Errorf("close reason %q", f.closeReason())
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, raw := serverPair(t, &AcceptOptions{CloseTimeout: 100 * time.Millisecond})
			ctx := testCtx(t)
			raw.write(burst(raw.fs(), "m", 2))
			done := goAsync(t, func() error {
				_, b, err := c.Read(ctx) // "m1" stays buffered
				if err != nil {
					return err
				}
				if err := c.Write(ctx, Text, b); err != nil {
					return err
				}
				return tc.then(ctx, c)
			})
			raw.expectFrame(true, opText, "m0")
			tc.want(raw)
			if err := done(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBroadcastBatch: broadcast messages that queue up for a connection
// (here, while its message lock is held) leave in order and intact once it
// is free — the drain sends them as one batch (a writev, which a counting
// wrapper cannot see; the bench module measures its effect).
func TestBroadcastBatch(t *testing.T) {
	conns := make(chan *Conn, 1)
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		conns <- c
		readAll(ctx, c)
		return nil
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	host := strings.TrimPrefix(hs.URL, "http://")
	raw := rawUpgrade(t, host)
	c := <-conns
	waitFor(t, "the connection to join", func() bool { return srv.Len() == 1 })

	ctx := testCtx(t)
	n := batchFrames + 10        // more than one batch
	c.wl.lock(lockMsg, nil, nil) // the connection is busy with a message of its own
	for i := range n {
		body := fmt.Sprintf("b%d", i)
		if i%7 == 3 {
			body += strings.Repeat("x", 60<<10) // batches bounded by bytes too
		}
		if err := srv.Send(ctx, Message{Type: Text, Body: strings.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	c.unlock(lockMsg)
	for i := range n {
		want := fmt.Sprintf("b%d", i)
		if i%7 == 3 {
			want += strings.Repeat("x", 60<<10)
		}
		raw.expectFrame(true, opText, want)
	}
}
