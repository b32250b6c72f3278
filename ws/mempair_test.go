package ws

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// memPair returns a client and a server Conn joined by an in-memory pipe
// (memPipe), with no handshake and no socket: the transport's portable
// path, for fast tests of the protocol.
func memPair(t testing.TB, cfg connConfig) (client, server *Conn) {
	t.Helper()
	a, b := memPipe()
	return pairOver(t, cfg, a, b)
}

// syncPair is memPair over net.Pipe, which is synchronous: a write waits
// until the peer reads it, so a peer that does not read stalls its writer
// at once, with nothing sent (what the Group tests of slow members need).
func syncPair(t testing.TB, cfg connConfig) (client, server *Conn) {
	t.Helper()
	a, b := net.Pipe()
	return pairOver(t, cfg, a, b)
}

// pairOver makes a client Conn over a and a server Conn over b, closed
// when the test ends.
func pairOver(t testing.TB, cfg connConfig, a, b net.Conn) (client, server *Conn) {
	client = newConn(a, true, "", cfg, nil, nil)
	server = newConn(b, false, "", cfg, nil, nil)
	t.Cleanup(func() {
		client.CloseNow()
		server.CloseNow()
	})
	return client, server
}

// memSide returns a Conn over one end of an in-memory pipe and the raw peer
// on the other: a side of the bothSides matrix without a socket.
func memSide(t testing.TB, cfg connConfig, client bool) (*Conn, *rawConn) {
	t.Helper()
	a, b := memPipe()
	c := newConn(a, client, "", cfg, nil, nil)
	t.Cleanup(func() {
		c.CloseNow()
		b.Close()
	})
	return c, &rawConn{t: t, nc: b, br: bufio.NewReader(b), client: !client}
}

// memPipeSize is how many bytes each direction of a memPipe holds before a
// write waits for the reader: as much as loopback TCP takes in a write
// that nobody reads yet (a test writes a 1 MiB frame, then reads it).
const memPipeSize = 4 << 20

// memPipe returns two net.Conns joined in memory: what one writes, the
// other reads. Unlike net.Pipe, which hands each write to a read waiting
// for it, each direction buffers up to memPipeSize bytes, as a socket
// does: a write returns once its bytes are buffered, and waits only while
// the buffer is full. Deadlines and Close interrupt waits as on a socket;
// a read after the peer closed gets what was buffered, then io.EOF; a
// write after the peer closed fails with a broken pipe.
func memPipe() (net.Conn, net.Conn) {
	ab, ba := newMemBuf(), newMemBuf()
	a := &memConn{in: ba, out: ab, local: "mem-a", remote: "mem-b"}
	b := &memConn{in: ab, out: ba, local: "mem-b", remote: "mem-a"}
	for _, d := range []*streamDeadline{&a.rd, &a.wd, &b.rd, &b.wd} {
		d.init(nil)
	}
	return a, b
}

// memBuf is one direction of a memPipe.
type memBuf struct {
	mu      sync.Mutex
	changed chan struct{} // closed, and replaced, at every change
	data    []byte
	wclosed bool // the writing end closed: reads get io.EOF once data is read
	rclosed bool // the reading end closed: writes fail
}

func newMemBuf() *memBuf { return &memBuf{changed: make(chan struct{})} }

// signal wakes whoever waits on b. The caller holds b.mu.
func (b *memBuf) signal() {
	close(b.changed)
	b.changed = make(chan struct{})
}

// memConn is one end of a memPipe.
type memConn struct {
	in, out       *memBuf
	rd, wd        streamDeadline // (h2.go's: a channel closed when it passes)
	local, remote memAddr
}

var errBrokenPipe = errors.New("mem pipe: write: broken pipe")

func (c *memConn) Read(p []byte) (int, error) {
	for {
		c.in.mu.Lock()
		switch {
		case c.in.rclosed:
			c.in.mu.Unlock()
			return 0, net.ErrClosed
		case len(c.in.data) > 0:
			n := copy(p, c.in.data)
			c.in.data = c.in.data[n:]
			c.in.signal()
			c.in.mu.Unlock()
			return n, nil
		case c.in.wclosed:
			c.in.mu.Unlock()
			return 0, io.EOF
		case len(p) == 0:
			c.in.mu.Unlock()
			return 0, nil
		}
		changed := c.in.changed
		c.in.mu.Unlock()
		select {
		case <-changed:
		case <-c.rd.wait():
			return 0, os.ErrDeadlineExceeded
		}
	}
}

func (c *memConn) Write(p []byte) (int, error) {
	n := 0
	for {
		c.out.mu.Lock()
		switch {
		case c.out.wclosed:
			c.out.mu.Unlock()
			return n, net.ErrClosed
		case c.out.rclosed:
			c.out.mu.Unlock()
			return n, errBrokenPipe
		}
		if room := memPipeSize - len(c.out.data); room > 0 && len(p) > 0 {
			k := min(room, len(p))
			c.out.data = append(c.out.data, p[:k]...)
			p = p[k:]
			n += k
			c.out.signal()
		}
		if len(p) == 0 {
			c.out.mu.Unlock()
			return n, nil
		}
		changed := c.out.changed
		c.out.mu.Unlock()
		select {
		case <-changed:
		case <-c.wd.wait():
			return n, os.ErrDeadlineExceeded
		}
	}
}

// Close closes this end: its reads and writes fail with net.ErrClosed, the
// peer reads io.EOF after what was written, and the peer's writes fail.
func (c *memConn) Close() error {
	for _, b := range []*memBuf{c.in, c.out} {
		b.mu.Lock()
		if b == c.in {
			b.rclosed = true
			b.data = nil
		} else {
			b.wclosed = true
		}
		b.signal()
		b.mu.Unlock()
	}
	return nil
}

func (c *memConn) LocalAddr() net.Addr  { return c.local }
func (c *memConn) RemoteAddr() net.Addr { return c.remote }

func (c *memConn) SetDeadline(t time.Time) error {
	c.rd.set(t)
	c.wd.set(t)
	return nil
}

func (c *memConn) SetReadDeadline(t time.Time) error  { c.rd.set(t); return nil }
func (c *memConn) SetWriteDeadline(t time.Time) error { c.wd.set(t); return nil }

// memAddr is the address of an end of a memPipe.
type memAddr string

func (a memAddr) Network() string { return "mem" }
func (a memAddr) String() string  { return string(a) }

// TestMemPair: over the in-memory pair, an echo server (Pipe(c, c)) answers
// streamed and whole messages, a stale Body fails, and the close handshake
// ends both sides with the code chosen.
func TestMemPair(t *testing.T) {
	client, server := memPair(t, connConfig{})
	ctx := testCtx(t)
	echoed := goAsync(t, func() error { return wesos.Pipe(ctx, server, server) })

	if err := client.Write(ctx, Text, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if typ, p, err := client.Read(ctx); err != nil || typ != Text || string(p) != "hello" {
		t.Fatalf("Read: %v %q %v", typ, p, err)
	}

	// A streamed message, larger than a read buffer.
	big := strings.Repeat("0123456789abcdef", 1<<10)
	w, err := client.Writer(ctx, Binary)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		m   Message
		err error
	}
	read := goAsync(t, func() got {
		m, err := client.Next(ctx)
		if err != nil {
			return got{err: err}
		}
		b, err := io.ReadAll(m.Body)
		if err == nil && string(b) != big+big {
			err = errors.New("streamed echo differs")
		}
		return got{m, err}
	})
	for range 2 {
		if _, err := io.WriteString(w, big); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := read()
	if r.err != nil {
		t.Fatal(r.err)
	}

	// The close handshake, the client reading; after it, the Body of the
	// last message is stale.
	next := goAsync(t, func() error { _, err := client.Next(ctx); return err })
	if err := server.Close(StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	wantCloseError(t, next(), StatusNormalClosure, "done")
	if _, err := r.m.Body.Read(make([]byte, 1)); !errors.Is(err, errStaleBody) {
		t.Fatalf("stale Body read: %v", err)
	}
	var ce CloseError
	if err := echoed(); !errors.As(err, &ce) && err != nil {
		t.Fatalf("echo: %v", err)
	}
}
