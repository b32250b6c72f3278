package ws

// Dead peers and timeouts: the KeepAlive option on both sides finds a peer
// that vanished without a FIN (simulated by a raw socket that stops reading
// and writing after a valid handshake), leaves live peers alone, and every
// blocking call has a bound.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// keepAliveSides returns the server and the client side of a connection
// whose Conn runs keepalive with interval and timeout.
func keepAliveSides(interval, timeout time.Duration) []side {
	return []side{
		{"server", false, func(t testing.TB) (*Conn, *rawConn) {
			return serverPair(t, &AcceptOptions{KeepAlive: interval, KeepAliveTimeout: timeout})
		}},
		{"client", true, func(t testing.TB) (*Conn, *rawConn) {
			return clientPair(t, &DialOptions{KeepAlive: interval, KeepAliveTimeout: timeout})
		}},
	}
}

// deadBound is how long a test waits for keepalive to declare a silent peer
// dead: five times the budget (interval + timeout), for slow CI machines and
// the race detector. Liveness only: nothing asserts how fast it happens.
func deadBound(interval, timeout time.Duration) time.Duration {
	return 5 * (interval + timeout)
}

// TestKeepAliveDeadPeer: the raw peer completes the handshake and then never
// reads or writes again, like a host that lost power. The Conn pings it,
// gets no answer, closes the connection within about KeepAlive +
// KeepAliveTimeout, and the blocked read returns the keepalive error.
func TestKeepAliveDeadPeer(t *testing.T) {
	const interval, timeout = 100 * time.Millisecond, 150 * time.Millisecond
	for _, sd := range keepAliveSides(interval, timeout) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			start := time.Now()
			readErr := make(chan error, 1)
			go func() {
				_, _, err := c.Read(context.Background()) // no deadline: only keepalive can end it
				readErr <- err
			}()
			var err error
			select {
			case err = <-readErr:
			case <-time.After(deadBound(interval, timeout)):
				c.CloseNow()
				<-readErr
				t.Fatalf("a silent peer was not detected within %v", deadBound(interval, timeout))
			}
			took := time.Since(start)
			if !errors.Is(err, errKeepAlive) {
				t.Fatalf("read returned %v, want the keepalive error", err)
			}
			if took < interval {
				t.Fatalf("closed after %v, before a single interval (%v) passed", took, interval)
			}
			t.Logf("dead peer detected after %v (budget %v)", took, interval+timeout)
			// Later reads and writes fail at once, with the same error for reads.
			if _, _, err := c.Read(context.Background()); !errors.Is(err, errKeepAlive) {
				t.Fatalf("second read: %v", err)
			}
			if err := c.Write(context.Background(), Text, []byte("x")); err == nil {
				t.Fatal("write after keepalive closed the connection succeeded")
			}
			// What reached the socket: the keepalive ping (masked on the
			// client side), then the end of the TCP connection.
			f := raw.read()
			if f.op != opPing || f.masked != !raw.client {
				t.Fatalf("got %v, want the keepalive ping", f)
			}
			raw.expectEOF()
		})
	}
}

// TestKeepAliveDeadPeerNoReader: keepalive runs on a timer, so a dead peer
// is found and the connection closed even when nobody reads; the next read
// then fails at once.
func TestKeepAliveDeadPeerNoReader(t *testing.T) {
	const interval = 50 * time.Millisecond
	for _, sd := range keepAliveSides(interval, 0) { // timeout 0 means interval
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			deadline := time.Now().Add(deadBound(interval, interval))
			for !c.isClosed() {
				if time.Now().After(deadline) {
					t.Fatalf("not closed within %v", deadBound(interval, interval))
				}
				time.Sleep(5 * time.Millisecond)
			}
			_, _, err := c.Read(testCtx(t))
			if !errors.Is(err, errKeepAlive) {
				t.Fatalf("read after keepalive closed: %v", err)
			}
			raw.nc.Close()
		})
	}
}

// TestKeepAliveLivePeer: a raw peer that answers every ping with its pong
// (and sends nothing else) keeps the connection open across many intervals;
// keepalive keeps pinging it; data still flows both ways at the end.
func TestKeepAliveLivePeer(t *testing.T) {
	// A generous timeout: the raw peer must answer within it even on a
	// loaded CI machine under the race detector.
	const interval, timeout = 50 * time.Millisecond, 300 * time.Millisecond
	for _, sd := range keepAliveSides(interval, timeout) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			ctx := testCtx(t)

			var pings atomic.Int64
			frames := make(chan wireFrame, 16)
			peerDone := make(chan struct{})
			go func() { // the live peer: pong every ping, hand other frames over
				defer close(peerDone)
				for range 100_000 {
					f, err := raw.readErr()
					if err != nil {
						return
					}
					if f.op == opPing {
						pings.Add(1)
						if _, err := raw.nc.Write(s.msg(opPong, string(f.payload))); err != nil {
							return
						}
						continue
					}
					frames <- f
				}
			}()
			msgs := make(chan string, 4)
			readErr := goAsync(t, func() error {
				for {
					_, b, err := c.Read(ctx)
					if err != nil {
						return err
					}
					msgs <- string(b)
				}
			})

			// At least ten intervals and three pings of silence from the
			// application on both ends.
			start := time.Now()
			early := int64(-1)
			for time.Since(start) < 10*interval || pings.Load() < 3 {
				if early < 0 && time.Since(start) >= 10*interval {
					early = pings.Load()
				}
				if c.isClosed() {
					t.Fatalf("keepalive closed a connection whose peer answers every ping (after %v, %d pings)", time.Since(start), pings.Load())
				}
				if time.Since(start) > testTimeout {
					t.Fatalf("%d keepalive pings in %v with a %v interval, want 3", pings.Load(), testTimeout, interval)
				}
				time.Sleep(interval / 4)
			}
			if early < 0 {
				early = pings.Load()
			}
			// Pings keep to the interval (about 9 in 10 intervals), not
			// to the longer timeout (2).
			if early < 4 {
				t.Errorf("%d pings in the first %v: pinging every timeout (%v), not every interval (%v)", early, 10*interval, timeout, interval)
			}
			if err := c.Write(ctx, Text, []byte("still here")); err != nil {
				t.Fatal(err)
			}
			if f := <-frames; f.op != opText || string(f.payload) != "still here" {
				t.Fatalf("got %v", f)
			}
			raw.write(s.msg(opText, "me too"))
			select {
			case m := <-msgs:
				if m != "me too" {
					t.Fatalf("got %q", m)
				}
			case <-time.After(testTimeout):
				t.Fatal("message from the live peer not read")
			}
			t.Logf("%d pings answered, connection open", pings.Load())
			raw.write(s.close(StatusNormalClosure, "bye"))
			wantCloseError(t, readErr(), StatusNormalClosure, "bye")
			raw.nc.Close()
			<-peerDone
		})
	}
}

// TestKeepAliveTrickledFrame: a relay that waits for many bytes of a large
// frame (the direct transport has the socket wake it only once they are
// there) still sees the few that a slow peer sends after each keepalive
// ping, so keepalive keeps the connection; the whole frame is relayed.
// (Mid-frame the peer cannot answer with a pong: its payload bytes are its
// only sign of life.)
func TestKeepAliveTrickledFrame(t *testing.T) {
	const interval, timeout = 50 * time.Millisecond, 300 * time.Millisecond
	c, raw := serverPair(t, &AcceptOptions{ReadLimit: 8 << 20, KeepAlive: interval, KeepAliveTimeout: timeout})
	ctx := testCtx(t)
	goAsync(t, func() error { return wesos.Pipe(ctx, c, c) })
	p := pattern(1<<20, 7)
	b := raw.fs().frame(true, opBinary, p).bytes()
	off := len(b) - len(p) + 100
	raw.write(b[:off])
	for pings := 0; pings < 4; {
		f, err := raw.readErr()
		if err != nil {
			t.Fatalf("after %d pings, each answered with 100 bytes of the frame: %v (keepalive closed a live connection?)", pings, err)
		}
		if f.op != opPing {
			t.Fatalf("got %v, want a keepalive ping", f)
		}
		pings++
		raw.write(b[off : off+100])
		off += 100
	}
	raw.write(b[off:])
	var got []byte
	for {
		f := raw.read()
		if f.op == opPing {
			continue
		}
		got = append(got, f.payload...)
		if f.fin {
			break
		}
	}
	if !bytes.Equal(got, p) {
		t.Fatal("relayed payload differs")
	}
}

// TestKeepAliveIdleConnection: two Conns of this package, both with
// keepalive, both reading, and no application data for many intervals: the
// pings (answered automatically by the readers) keep the connection open on
// both sides; then a message and a normal close still work.
func TestKeepAliveIdleConnection(t *testing.T) {
	const interval = 30 * time.Millisecond
	var serverPings, clientPings atomic.Int64
	serverConn := make(chan *Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{
			KeepAlive: interval, KeepAliveTimeout: 15 * interval,
			OnPing: func([]byte) { serverPings.Add(1) },
		})
		if err != nil {
			t.Error(err)
			return
		}
		serverConn <- c
	}))
	defer hs.Close()
	ctx := testCtx(t)
	cc, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &DialOptions{
		KeepAlive: interval, KeepAliveTimeout: 15 * interval,
		OnPing: func([]byte) { clientPings.Add(1) },
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.CloseNow()
	sc := <-serverConn
	defer sc.CloseNow()

	type result struct {
		msgs []string
		err  error
	}
	read := func(c *Conn) func() result {
		return goAsync(t, func() result {
			msgs, err := readAll(ctx, c)
			return result{msgs, err}
		})
	}
	serverRead, clientRead := read(sc), read(cc)

	deadline := time.Now().Add(testTimeout)
	for serverPings.Load() < 3 || clientPings.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("pings seen: server %d, client %d; want 3 each", serverPings.Load(), clientPings.Load())
		}
		if sc.isClosed() || cc.isClosed() {
			t.Fatal("keepalive closed an idle connection whose peer answers")
		}
		time.Sleep(interval)
	}
	time.Sleep(5 * interval)
	if sc.isClosed() || cc.isClosed() {
		t.Fatal("keepalive closed an idle connection whose peer answers")
	}
	if err := cc.Write(ctx, Text, []byte("after the silence")); err != nil {
		t.Fatal(err)
	}
	if err := cc.Close(StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	sr, cr := serverRead(), clientRead()
	if len(sr.msgs) != 1 || sr.msgs[0] != "after the silence" {
		t.Fatalf("server read %q", sr.msgs)
	}
	wantCloseError(t, sr.err, StatusNormalClosure, "done")
	if errors.Is(cr.err, errKeepAlive) || errors.Is(sr.err, errKeepAlive) {
		t.Fatalf("keepalive ended a live connection: server %v, client %v", sr.err, cr.err)
	}
	t.Logf("pings answered: by the server %d, by the client %d", serverPings.Load(), clientPings.Load())
}

// TestKeepAliveTinyInterval: a keepalive interval far below the time a
// connection takes to set up must not touch a half-built Conn (run with
// -race): the first tick may fire at once.
func TestKeepAliveTinyInterval(t *testing.T) {
	for _, sd := range keepAliveSides(time.Nanosecond, time.Millisecond) {
		t.Run(sd.name, func(t *testing.T) {
			for range 20 {
				c, raw := sd.pair(t)
				c.Read(testCtx(t)) // keepalive (or the ping flood) ends it
				raw.nc.Close()
				c.CloseNow()
			}
		})
	}
}

// TestKeepAliveEndsBlockedWrite: the peer stopped reading while a large
// message is being written with a context that never ends, so the write
// blocks on a full TCP buffer and keepalive's ping cannot even be sent.
// Keepalive still declares the peer dead, which ends the write.
func TestKeepAliveEndsBlockedWrite(t *testing.T) {
	const interval, timeout = 100 * time.Millisecond, 100 * time.Millisecond
	for _, sd := range keepAliveSides(interval, timeout) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			big := make([]byte, 64<<20)
			start := time.Now()
			writeErr := make(chan error, 1)
			go func() { writeErr <- c.Write(context.Background(), Binary, big) }()
			select {
			case err := <-writeErr:
				if err == nil {
					t.Fatal("a 64 MiB write to a peer that never reads succeeded")
				}
				t.Logf("write ended after %v: %v", time.Since(start), err)
			case <-time.After(deadBound(interval, timeout) + time.Second):
				c.CloseNow()
				<-writeErr
				t.Fatal("keepalive did not end a write blocked on a dead peer")
			}
			if _, _, err := c.Read(testCtx(t)); !errors.Is(err, errKeepAlive) {
				t.Fatalf("read: %v, want the keepalive error", err)
			}
			raw.nc.Close()
		})
	}
}

// TestTimeoutsEverywhere: each blocking call that a dead or hostile peer
// could stall has a bound.
func TestTimeoutsEverywhere(t *testing.T) {
	// Dial to a server that accepts TCP and never answers the handshake
	// returns at its ctx deadline.
	t.Run("dial-silent-server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		held := make(chan net.Conn, 1)
		go func() {
			nc, err := ln.Accept()
			if err == nil {
				held <- nc
			}
			close(held)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, _, err = Dial(ctx, "ws://"+ln.Addr().String(), nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Dial to a silent server: %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("Dial returned after %v", d)
		}
		ln.Close()
		for nc := range held {
			nc.Close()
		}
	})

	// Close to a peer that neither reads nor answers returns within the
	// close timeout and closes TCP, on both sides.
	for _, sd := range []side{
		{"close-server", false, func(t testing.TB) (*Conn, *rawConn) {
			return serverPair(t, &AcceptOptions{CloseTimeout: 150 * time.Millisecond})
		}},
		{"close-client", true, func(t testing.TB) (*Conn, *rawConn) {
			return clientPair(t, &DialOptions{CloseTimeout: 150 * time.Millisecond})
		}},
	} {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			// Fill the path first so that even the close frame cannot be
			// written: the bound must hold for the write as well.
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			c.Write(ctx, Binary, make([]byte, 32<<20))
			cancel()
			start := time.Now()
			c.Close(StatusNormalClosure, "")
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Close to a dead peer took %v with a 150ms close timeout", d)
			}
			if !c.isClosed() {
				t.Fatal("TCP still open after Close")
			}
			raw.nc.Close()
		})
	}

	// Send (the Sink method) and a Writer's Close, to a peer that never
	// reads, return within their ctx deadline plus the close timeout.
	for _, sd := range bothSides(connConfig{closeTimeout: 150 * time.Millisecond}) {
		t.Run("send-"+sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			start := time.Now()
			err := c.Send(ctx, Message{Type: Binary, Body: io.LimitReader(zeros{}, 64<<20)})
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send to a peer that never reads: %v", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Send returned after %v", d)
			}
			raw.nc.Close()
		})
		t.Run("writer-close-"+sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
			defer cancel()
			w, err := c.Writer(ctx, Binary)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			chunk := make([]byte, 1<<20)
			for i := 0; i < 64; i++ {
				if _, err := w.Write(chunk); err != nil {
					break
				}
			}
			w.Close()
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Writer.Write and Close returned after %v", d)
			}
			raw.nc.Close()
		})
	}

	// A server Conn's reads are bounded by their ctx even when the peer
	// sends half a frame and stalls (a frame-level slow loris).
	t.Run("read-half-frame", func(t *testing.T) {
		c, raw := serverPair(t, nil)
		b := raw.fs().msg(opText, "hello, world")
		raw.write(b[:5])
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_, _, err := c.Read(ctx)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("read of a stalled frame: %v", err)
		}
		raw.write(b[5:])
		if _, p, err := c.Read(testCtx(t)); err != nil || string(p) != "hello, world" {
			t.Fatalf("resumed read: %q %v", p, err)
		}
	})
}

// zeros is an endless reader of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
