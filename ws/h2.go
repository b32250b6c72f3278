package ws

// WebSockets over HTTP/2 (RFC 8441): the handshake is an extended CONNECT
// request, answered with 200, and the WebSocket frames then travel in the
// DATA frames of the request's stream. The Conn speaks over a net.Conn made
// of that stream (streamConn).

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"time"
)

// isExtendedConnect reports whether r is an RFC 8441 handshake: a CONNECT
// over HTTP/2 that carries a :protocol pseudo-header. net/http passes those
// to handlers only with GODEBUG=http2xconnect=1; without it the request is
// refused before any handler runs.
func isExtendedConnect(r *http.Request) bool {
	return r.ProtoMajor == 2 && r.Method == http.MethodConnect && r.Header.Get(":protocol") != ""
}

// acceptStream answers a checked RFC 8441 request and returns the Conn
// speaking over its stream, with shared (nil: its own).
func acceptStream(w http.ResponseWriter, r *http.Request, opts *AcceptOptions, hs *handshakeResult, shared *connShared) (*Conn, error) {
	rc := http.NewResponseController(w)
	// The stream may carry deadlines from the server's ReadTimeout and
	// WriteTimeout; the WebSocket connection starts without them. Write
	// deadlines are also how Close interrupts a blocked write, so a
	// ResponseWriter without them (middleware that hides net/http's,
	// having no Unwrap method) cannot carry a WebSocket.
	rc.SetReadDeadline(time.Time{})
	if err := rc.SetWriteDeadline(time.Time{}); err != nil {
		herr := &HandshakeError{http.StatusInternalServerError, "cannot set the stream's deadlines: " + err.Error()}
		http.Error(w, herr.Reason, herr.Status)
		return nil, herr
	}
	h := w.Header()
	// Headers that have no place in this response: HTTP/1.1 upgrade
	// headers (connection-specific, forbidden in HTTP/2), ours, and a
	// body's description.
	for _, k := range []string{"Upgrade", "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding",
		"Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Content-Type", "Content-Length"} {
		h.Del(k)
	}
	if hs.proto != "" {
		h.Set("Sec-WebSocket-Protocol", hs.proto)
	}
	if hs.compress {
		h.Set("Sec-WebSocket-Extensions", hs.deflate.String())
	}
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil, fmt.Errorf("ws: writing the handshake response: %w", err)
	}
	sc := newStreamConn(r.Body, func(b []byte) (int, error) {
		n, err := w.Write(b)
		if err == nil {
			err = rc.Flush()
		}
		return n, err
	})
	// A write blocked by flow control returns only when the stream ends;
	// a write deadline in the past resets it (RST_STREAM) at once.
	sc.abort = func() { rc.SetWriteDeadline(aLongTimeAgo) }
	// The stream's context ends when the stream is closed or reset, and
	// when the handler returns: then w may no longer be used. The body
	// may still hold what the peer sent before, such as its close frame,
	// so the reader goes on until the body fails, and only gives up
	// waiting for a Read a while later (a handler that returned without
	// closing the Conn leaves no goroutine behind for long).
	sc.gone = r.Context().Done()
	abandoned := make(chan struct{})
	sc.abandoned = abandoned
	context.AfterFunc(r.Context(), func() {
		time.AfterFunc(streamGrace, func() { close(abandoned) })
	})
	sc.raddr = parseAddr(r.RemoteAddr)
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		sc.laddr = a
	} else {
		sc.laddr = streamAddr("")
	}
	sc.start()
	cfg := opts.connConfig()
	cfg.shared = shared
	return newConn(sc, false, hs.proto, cfg, hs.deflateState(opts), nil), nil
}

// parseAddr returns the address of an http.Request's RemoteAddr.
func parseAddr(s string) net.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return net.TCPAddrFromAddrPort(ap)
	}
	return streamAddr(s)
}

// streamAddr is an address that is not an IP and port.
type streamAddr string

func (a streamAddr) Network() string { return "tcp" }
func (a streamAddr) String() string  { return string(a) }

// streamGrace is how long the reader of a stream that ended waits for a
// Read to take what it read, before it gives up.
const streamGrace = 5 * time.Second

// streamReadSize is the size of a streamConn's read buffer: the largest
// DATA frame that peers send unless they agreed otherwise.
const streamReadSize = 16 << 10

// errStreamGone is the error of reads and writes after the stream ended
// under the Conn: the peer reset it, the connection failed, or the handler
// returned.
var errStreamGone = errors.New("ws: the HTTP/2 stream has ended")

// streamConn is a net.Conn over a bidirectional stream made of an
// io.ReadCloser (the DATA the peer sends) and a write function (which
// sends and flushes). Its deadlines are its own, so that a deadline that
// passes interrupts a call without harming the stream, as on TCP: net/http's
// stream deadlines cannot do that, since a read deadline that passes closes
// the request body for good and a write deadline resets the stream. A
// goroutine reads the body, so that a read can be interrupted and resumed.
type streamConn struct {
	body  io.ReadCloser
	write func([]byte) (int, error)
	// abort makes a write in progress return; it may break the stream
	// for good. Called at most once, and only while a write is in
	// progress (so, on the server, while the handler runs).
	abort func()
	// end, if set, ends the stream's sending side on Close (a client's
	// END_STREAM), after reads and writes stopped.
	end func()
	// gone, if set, is closed when the stream no longer exists: writes
	// fail from then on.
	gone <-chan struct{}
	// abandoned, if set, is closed when the reader may stop waiting to
	// hand over what it read.
	abandoned    <-chan struct{}
	laddr, raddr net.Addr

	done      chan struct{} // closed by Close
	closeOnce sync.Once

	// The read side. The reader goroutine hands over chunks on in and
	// waits on free before it reads again.
	rmu        sync.Mutex // serialises Read; guards pend and rerr
	pend       []byte     // the chunk handed over, not yet read
	rerr       error      // the body's error, once it came
	in         chan streamChunk
	free       chan struct{}
	readerDone chan struct{}
	rdl        streamDeadline

	// The write side.
	wmu     sync.Mutex // serialises Write
	mu      sync.Mutex // guards what follows
	writing bool       // a Write is in progress
	closed  bool
	aborted bool // abort was called: the stream is broken
	expired bool // the write deadline passed during the Write in progress
	wdl     streamDeadline
}

type streamChunk struct {
	b   []byte
	err error
}

func newStreamConn(body io.ReadCloser, write func([]byte) (int, error)) *streamConn {
	c := &streamConn{
		body:       body,
		write:      write,
		done:       make(chan struct{}),
		in:         make(chan streamChunk),
		free:       make(chan struct{}),
		readerDone: make(chan struct{}),
	}
	c.rdl.init(nil)
	c.wdl.init(c.writeDeadlinePassed)
	return c
}

// start starts the reader goroutine, once the fields are set.
func (c *streamConn) start() { go c.readLoop() }

// readLoop reads the body, one chunk at a time, until it fails or ends, the
// Conn closes or the stream goes.
func (c *streamConn) readLoop() {
	defer close(c.readerDone)
	buf := make([]byte, streamReadSize)
	for {
		n, err := c.body.Read(buf)
		if n == 0 && err == nil {
			continue
		}
		select {
		case c.in <- streamChunk{buf[:n], err}:
		case <-c.done:
			return
		case <-c.abandoned:
			return
		}
		if err != nil {
			return
		}
		select {
		case <-c.free:
		case <-c.done:
			return
		case <-c.abandoned:
			return
		}
	}
}

// Read reads what the peer sent. It returns io.EOF once the peer ended the
// stream, and os.ErrDeadlineExceeded when the read deadline passes first;
// the next Read then goes on where this one stopped.
func (c *streamConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.isClosed() {
		return 0, net.ErrClosed
	}
	if len(c.pend) == 0 && c.rerr == nil {
		deadline := c.rdl.wait()
		select {
		case <-deadline:
			return 0, os.ErrDeadlineExceeded
		default:
		}
		select {
		case ch := <-c.in:
			c.pend, c.rerr = ch.b, ch.err
		case <-c.done:
			return 0, net.ErrClosed
		case <-deadline:
			return 0, os.ErrDeadlineExceeded
		case <-c.readerDone:
			return 0, errStreamGone // abandoned
		}
	}
	if len(c.pend) > 0 {
		n := copy(p, c.pend)
		c.pend = c.pend[n:]
		if len(c.pend) == 0 && c.rerr == nil {
			// The chunk is used up: the reader may read the next.
			select {
			case c.free <- struct{}{}:
			case <-c.readerDone:
			}
		}
		return n, nil
	}
	return 0, c.rerr
}

func (c *streamConn) isClosed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Write writes b and flushes it. It returns os.ErrDeadlineExceeded, having
// written nothing, when the write deadline has passed; a deadline that
// passes during the Write aborts it and breaks the stream.
func (c *streamConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	deadline := c.wdl.wait() // before mu: the deadline's callback takes mu
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return 0, net.ErrClosed
	case c.aborted:
		c.mu.Unlock()
		return 0, errStreamGone
	}
	select {
	case <-deadline:
		c.mu.Unlock()
		return 0, os.ErrDeadlineExceeded
	case <-c.gone:
		c.mu.Unlock()
		return 0, errStreamGone
	default:
	}
	c.writing = true
	c.mu.Unlock()

	n, err := c.write(b)

	c.mu.Lock()
	c.writing = false
	if err != nil {
		switch {
		case c.expired:
			err = os.ErrDeadlineExceeded
		case c.closed:
			err = net.ErrClosed
		}
	}
	c.expired = false
	c.mu.Unlock()
	return n, err
}

// writeDeadlinePassed aborts the Write in progress, if any.
func (c *streamConn) writeDeadlinePassed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writing && !c.aborted && !c.closed {
		c.expired = true
		c.aborted = true
		c.abort()
	}
}

// Close stops the Conn's reads and writes: blocked ones return, and later
// ones fail with net.ErrClosed. A Write in progress is aborted, which
// breaks the stream. It returns once no Read or Write uses the stream.
func (c *streamConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.done)
		c.mu.Lock()
		c.closed = true
		if c.writing && !c.aborted {
			c.aborted = true
			c.abort()
		}
		c.mu.Unlock()
		// Wait for the Write in progress, then close the stream.
		c.wmu.Lock()
		if c.end != nil {
			c.end()
		}
		c.wmu.Unlock()
		// Closing the body makes the reader's Read return.
		c.body.Close()
		<-c.readerDone
		c.rdl.set(time.Time{})
		c.wdl.set(time.Time{})
	})
	return nil
}

func (c *streamConn) LocalAddr() net.Addr  { return c.laddr }
func (c *streamConn) RemoteAddr() net.Addr { return c.raddr }

func (c *streamConn) SetDeadline(t time.Time) error {
	c.rdl.set(t)
	c.wdl.set(t)
	return nil
}

func (c *streamConn) SetReadDeadline(t time.Time) error {
	c.rdl.set(t)
	return nil
}

func (c *streamConn) SetWriteDeadline(t time.Time) error {
	c.wdl.set(t)
	return nil
}

// streamDeadline is a deadline as a channel that is closed when it passes.
type streamDeadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	passed chan struct{}
	onPass func() // if set, called (holding mu) when the deadline passes
}

func (d *streamDeadline) init(onPass func()) {
	d.passed = make(chan struct{})
	d.onPass = onPass
}

// set sets the deadline; the zero time removes it.
func (d *streamDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		if !d.timer.Stop() {
			// The timer fired: its function closed passed or waits
			// for mu, and must find a channel it does not know.
			d.passed = make(chan struct{})
		}
		d.timer = nil
	}
	select {
	case <-d.passed:
		d.passed = make(chan struct{})
	default:
	}
	if t.IsZero() {
		return
	}
	if dur := time.Until(t); dur > 0 {
		ch := d.passed
		d.timer = time.AfterFunc(dur, func() {
			d.mu.Lock()
			defer d.mu.Unlock()
			if d.passed == ch {
				d.pass()
			}
		})
		return
	}
	d.pass()
}

func (d *streamDeadline) pass() {
	close(d.passed)
	if d.onPass != nil {
		d.onPass()
	}
}

// wait returns a channel that is closed when the current deadline passes.
func (d *streamDeadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.passed
}
