package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

// NetConn returns c as a net.Conn, for protocols that want a byte stream
// (HTTP, RPC, SSH, a database's wire protocol) over a WebSocket:
//
//	nc := ws.NetConn(ctx, c, ws.Binary)
//	defer nc.Close()         // a close handshake with 1000
//	go io.Copy(nc, backend)  // each Write leaves as one message
//	io.Copy(backend, nc)     // the messages' payloads, as one stream
//
// Read reads the payloads of the received messages of type t as one stream,
// across message boundaries, straight into the caller's buffer as the bytes
// arrive; a message of another type fails the connection with 1003
// (StatusUnsupportedData). Each message must fit the Conn's read limit
// (SetReadLimit), or the connection fails with 1009 when the frame that
// passes it arrives. After the peer's normal close (1000 or 1001) Read
// returns io.EOF; other close codes read as the CloseError.
//
// Write sends p as one message of type t (with Text, p must be valid UTF-8
// on its own). Like a socket's send buffer, Write returns once the message is
// handed over: it copies p, and writes it in the background while the caller
// goes on; the next Write waits until that message is on its way. An error
// of that background write is returned by the next Write or by Close. Close
// waits for the message in flight, then closes with 1000.
//
// Deadlines work as on a TCP connection: an expired deadline fails the
// blocked call and every later one with an error that matches
// os.ErrDeadlineExceeded and is a net.Error whose Timeout is true, and a
// deadline moved into the future makes the calls work again, with no byte
// lost (a Conn's read interrupted by its context resumes where it stopped;
// only a compressed message cannot, and Read says so with an error once
// the output it had is read, then goes on with the next message).
// A write deadline bounds the wait for the message in flight, never a
// message already handed over, which would leave half a frame on the wire.
//
// ctx bounds the life of the net.Conn: when it ends, calls fail with its
// error (a write in flight may be cut, which closes the connection). NetConn
// reads and writes through the Conn's own methods; while the net.Conn is in
// use no one else may read c, and writes of others interleave between its
// messages. All methods are safe for concurrent use.
func NetConn(ctx context.Context, c *Conn, t MessageType) net.Conn {
	n := &netConn{
		c:      c,
		typ:    t,
		ctx:    ctx,
		rsem:   make(chan struct{}, 1),
		wsem:   make(chan struct{}, 1),
		closed: make(chan struct{}),
	}
	n.rd.init(ctx)
	n.wd.init(ctx)
	n.writeFn = n.writeMessage
	return n
}

type netConn struct {
	c   *Conn
	typ MessageType
	ctx context.Context

	rd, wd netDeadline

	// rsem is held by the Read in progress; inMsg, whether a message is
	// started and not yet read to its end, belongs to it.
	rsem  chan struct{}
	inMsg bool

	// wsem is held by a Write from its start until its message has been
	// written in the background; wbuf and werr belong to its holder.
	wsem    chan struct{}
	wbuf    []byte
	werr    error
	writing sync.WaitGroup
	writeFn func() // writeMessage, bound once: a go statement with it allocates nothing

	mu        sync.Mutex // orders a Write's start of its goroutine before Close's wait
	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

// errDeadline is the cause of a netDeadline's context that expired.
var errDeadline = os.ErrDeadlineExceeded

// netDeadline is a deadline as a context: the context of the calls started
// while it holds, cancelled (with errDeadline as its cause) when it expires.
// A deadline moved after it expired starts a new context, so the calls
// after it work again.
type netDeadline struct {
	mu     sync.Mutex
	parent context.Context
	ctx    context.Context
	cancel context.CancelCauseFunc
	timer  *time.Timer
}

func (d *netDeadline) init(parent context.Context) {
	d.parent = parent
	d.ctx, d.cancel = context.WithCancelCause(parent)
}

// context returns the context of a call starting now.
func (d *netDeadline) context() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.ctx
}

// set moves the deadline to t; the zero t means none.
func (d *netDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		// The timer fired, or is firing: its cancel ends this context
		// whatever happens now, so the calls from now on get a new one.
		d.cancel(errDeadline)
		d.ctx, d.cancel = context.WithCancelCause(d.parent)
	} else if d.ctx.Err() != nil && d.parent.Err() == nil {
		d.ctx, d.cancel = context.WithCancelCause(d.parent)
	}
	d.timer = nil
	if t.IsZero() {
		return
	}
	if wait := time.Until(t); wait > 0 {
		cancel := d.cancel
		d.timer = time.AfterFunc(wait, func() { cancel(errDeadline) })
	} else {
		d.cancel(errDeadline)
	}
}

// stop stops the timer and ends the context.
func (d *netDeadline) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil {
		d.timer.Stop()
	}
	d.cancel(net.ErrClosed)
}

// opError returns err as a *net.OpError of op: os.ErrDeadlineExceeded when
// ctx, the call's context, ended at its deadline; net.ErrClosed once Close
// was called.
func (n *netConn) opError(op string, ctx context.Context, err error) error {
	switch {
	case n.isClosed():
		err = net.ErrClosed
	case ctx.Err() != nil && context.Cause(ctx) == errDeadline && n.ctx.Err() == nil:
		err = errDeadline
	}
	return &net.OpError{Op: op, Net: "websocket", Source: n.c.LocalAddr(), Addr: n.c.RemoteAddr(), Err: err}
}

func (n *netConn) isClosed() bool {
	select {
	case <-n.closed:
		return true
	default:
		return false
	}
}

// Read reads the payloads of the received messages as one stream.
func (n *netConn) Read(p []byte) (int, error) {
	ctx := n.rd.context()
	if err := ctx.Err(); err != nil || n.isClosed() {
		return 0, n.opError("read", ctx, err)
	}
	select {
	case n.rsem <- struct{}{}:
	case <-ctx.Done():
		return 0, n.opError("read", ctx, ctx.Err())
	case <-n.closed:
		return 0, n.opError("read", ctx, net.ErrClosed)
	}
	defer func() { <-n.rsem }()
	if len(p) == 0 {
		return 0, nil
	}
	for {
		if !n.inMsg {
			typ, err := n.c.startMessage(ctx)
			if err != nil {
				return 0, n.readError(ctx, err)
			}
			if typ != n.typ {
				err := fmt.Errorf("ws: NetConn of %v messages received a %v message", n.typ, typ)
				n.c.Close(StatusUnsupportedData, "want "+n.typ.String()+" messages")
				return 0, n.opError("read", ctx, err)
			}
			n.inMsg = true
		}
		k, err := n.c.readMore(ctx, p)
		switch {
		case err == io.EOF:
			n.inMsg = false
			if k == 0 {
				continue // an empty message, or the end of one
			}
		case err == errMessageBroken:
			// A compressed message whose read was cut by a deadline
			// cannot resume: the stream has lost bytes, say so.
			n.inMsg = false
			return k, n.opError("read", ctx, err)
		case err != nil:
			// Interrupted (a deadline) or failed: an interrupted
			// message resumes with the next Read.
			return k, n.readError(ctx, err)
		}
		return k, nil
	}
}

// readError turns the error of a read of the Conn into Read's: io.EOF after
// the peer's normal close, else a *net.OpError.
func (n *netConn) readError(ctx context.Context, err error) error {
	if errors.Is(err, io.EOF) && !n.isClosed() {
		return io.EOF
	}
	return n.opError("read", ctx, err)
}

// Write hands p over as one message and returns; the message is written in
// the background.
func (n *netConn) Write(p []byte) (int, error) {
	ctx := n.wd.context()
	if err := ctx.Err(); err != nil || n.isClosed() {
		return 0, n.opError("write", ctx, err)
	}
	select {
	case n.wsem <- struct{}{}:
	case <-ctx.Done():
		return 0, n.opError("write", ctx, ctx.Err())
	case <-n.closed:
		return 0, n.opError("write", ctx, net.ErrClosed)
	}
	if err := n.werr; err != nil || n.isClosed() {
		<-n.wsem
		return 0, n.opError("write", ctx, err)
	}
	if len(p) == 0 {
		<-n.wsem
		return 0, nil
	}
	if cap(n.wbuf) > 64<<10 && len(p) <= 64<<10 {
		n.wbuf = nil // let a burst's large buffer go
	}
	n.wbuf = append(n.wbuf[:0], p...)
	n.mu.Lock()
	if n.isClosed() {
		n.mu.Unlock()
		<-n.wsem
		return 0, n.opError("write", ctx, net.ErrClosed)
	}
	n.writing.Add(1)
	n.mu.Unlock()
	go n.writeFn()
	return len(p), nil
}

// writeMessage writes wbuf as one message and lets the next Write go. It is
// the goroutine of one Write, which it ends with; Close waits for it.
func (n *netConn) writeMessage() {
	defer n.writing.Done()
	if err := n.c.Write(n.ctx, n.typ, n.wbuf); err != nil {
		n.werr = err
	}
	<-n.wsem
}

// Close waits for the message in flight, closes the connection with 1000
// and makes blocked and later calls fail with net.ErrClosed.
func (n *netConn) Close() error {
	n.closeOnce.Do(func() {
		n.mu.Lock()
		close(n.closed)
		n.mu.Unlock()
		n.rd.stop()
		n.wd.stop()
		// The message in flight goes first (a close frame would not
		// wait for it): up to the close timeout, then the closed
		// connection ends its write.
		wait := time.NewTimer(n.c.cfg.closeTimeout)
		select {
		case n.wsem <- struct{}{}:
			<-n.wsem
		case <-wait.C:
		}
		wait.Stop()
		err := n.c.Close(StatusNormalClosure, "")
		n.writing.Wait()
		if werr := n.werr; werr != nil && err == nil && !errors.Is(werr, net.ErrClosed) {
			err = werr
		}
		if err != nil {
			n.closeErr = &net.OpError{Op: "close", Net: "websocket", Source: n.c.LocalAddr(), Addr: n.c.RemoteAddr(), Err: err}
		}
	})
	return n.closeErr
}

// LocalAddr returns the local network address of the WebSocket's
// connection.
func (n *netConn) LocalAddr() net.Addr { return n.c.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (n *netConn) RemoteAddr() net.Addr { return n.c.RemoteAddr() }

// SetDeadline sets the read and the write deadline.
func (n *netConn) SetDeadline(t time.Time) error {
	n.rd.set(t)
	n.wd.set(t)
	return nil
}

// SetReadDeadline sets the deadline of Read calls, pending and later ones;
// the zero time means none.
func (n *netConn) SetReadDeadline(t time.Time) error {
	n.rd.set(t)
	return nil
}

// SetWriteDeadline sets the deadline of Write calls, pending and later
// ones; the zero time means none.
func (n *netConn) SetWriteDeadline(t time.Time) error {
	n.wd.set(t)
	return nil
}
