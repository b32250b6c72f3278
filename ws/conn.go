package ws

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// MessageType is the type of a data message.
type MessageType int

// The two data message types of RFC 6455 §5.6.
const (
	Text   MessageType = 1 // UTF-8 text, checked as it streams in
	Binary MessageType = 2 // arbitrary bytes
)

// String returns "text" or "binary".
func (t MessageType) String() string {
	switch t {
	case Text:
		return "text"
	case Binary:
		return "binary"
	}
	return fmt.Sprintf("MessageType(%d)", int(t))
}

// Message is one data message. Body streams the payload frame by frame as it
// arrives; it is valid only until the next call to Next, Reader or Read on
// the same Conn, which discards whatever of it was not read. Read after that,
// Body returns an error and reads nothing, so whatever holds a Message past
// the next Next (a queue, a flow.Hub, a batch) must read its Body into a
// buffer first.
type Message struct {
	Type MessageType
	Body io.Reader
}

// DefaultReadLimit is the read limit of a Conn whose options leave ReadLimit
// at zero: the largest message, in bytes, that it accepts.
const DefaultReadLimit = 32 << 20

// DefaultCloseTimeout is how long Close waits for the peer's close frame, and
// how long a close frame may take to send, when the options leave
// CloseTimeout at zero.
const DefaultCloseTimeout = 5 * time.Second

var errClosed = fmt.Errorf("ws: connection closed: %w", net.ErrClosed)

// connConfig is what AcceptOptions and DialOptions have in common.
type connConfig struct {
	readLimit    int64
	closeTimeout time.Duration
	onPing       func([]byte)
	logger       *slog.Logger
	keepAlive    time.Duration
	keepTimeout  time.Duration
	// ownSocket: nothing but the Conn will close the net.Conn (it came
	// from a hijack or from Dial's own dialer), so the transport may
	// write to its descriptor directly.
	ownSocket bool
	// shared, if set, is what the connections of a Server share; else
	// newConn makes one from onPing and logger.
	shared *connShared
}

// connOptions is what a Conn keeps of its connConfig: newConn applies the
// rest (read limit, keepalive) and drops it, which keeps the Conn small.
type connOptions struct {
	*connShared // never nil
}

// connShared is what the connections of a Server have in common: one
// pointer in each Conn, not four.
type connShared struct {
	onPing       func([]byte)
	logger       *slog.Logger  // nil: slog.Default()
	stats        *counters     // the Server's; nil for a Conn of Accept or Dial
	closeTimeout time.Duration // set (DefaultCloseTimeout if the options leave it 0)
}

// plainShared is the connShared of a connection whose options set none of
// it.
var plainShared = connShared{closeTimeout: DefaultCloseTimeout}

func (cfg connConfig) withDefaults() connConfig {
	switch {
	case cfg.readLimit == 0:
		cfg.readLimit = DefaultReadLimit
	case cfg.readLimit < 0:
		cfg.readLimit = -1
	}
	if cfg.closeTimeout <= 0 {
		cfg.closeTimeout = DefaultCloseTimeout
	}
	return cfg
}

// Conn is one WebSocket connection, from either side. It is a Source of
// incoming messages (Next, Reader, Read) and a Sink of outgoing ones (Send,
// Writer, Write).
//
// Reads are single-consumer: one goroutine at a time calls Next, Reader or
// Read and reads the message bodies. Control frames (ping, pong, close) are
// handled inside those reads, so a Conn whose peer may ping or close must be
// read. Every write method, Ping, Close and CloseNow is safe to call from any
// number of goroutines; data messages never interleave on the wire, and pongs
// and close frames still pass between the fragments of a message being
// written.
type Conn struct {
	// The transport: the socket, the read buffer and the frames kept for
	// coalescing (sock.go). Everything below is protocol.
	sock

	// What the handshake settled and the options keep.
	proto     string
	cfg       connOptions
	readLimit atomic.Int64
	// permessage-deflate, when negotiated, both ways. (The decompressor
	// of the message being read and its state are in deflate: a Conn
	// without compression does not carry them.)
	deflate *deflateState

	// Reading; owned by whoever holds readMu.
	readMu    sync.Mutex
	rctx      context.Context // the context of the read in progress
	rdl       ctxDeadline     // rctx's watch on the read deadline
	readErr   error           // sticky: the connection can no longer be read
	rgen      atomic.Uint64   // the message being read, for its Body handles (handle.go)
	frame     header          // the data frame being read
	frameLeft int64           // its unread payload bytes
	msgLen    int64

	// Writing. The message lock (lockMsg) is held by a data message from
	// its first frame to its last, the frame lock (lockFrame) for each
	// frame; waiting for them honours a context (wlock.go).
	wl   writeLocks
	wdl  ctxDeadline // the write context's watch on the write deadline
	mw   messageWriter
	wgen atomic.Uint64 // the message being written, for its Writer handles (handle.go)

	// Closing.
	closeMu sync.Mutex
	// closed is closed when the TCP connection is closed. Made by the
	// first goroutine that waits for it (doneChan); most connections
	// never have one.
	closed atomic.Pointer[chan struct{}]
	// Pings waiting for their pong; made by the first Ping.
	pings atomic.Pointer[pingTable]
	// What few connections need (connRare): nil until one does.
	rare atomic.Pointer[connRare]

	// The small fields, packed together at the end: the Conn fits the
	// 512-byte size class (TestConnSize).
	closeOnce onceClose
	// The peer's close code (0: none yet; its reason is in connRare).
	peerCloseCode uint16 // (closeMu; a close code is 16 bits on the wire)
	client        bool
	stripe        uint8 // the message counters it counts into (stats.go)
	maskPos       uint8 // the reading position in the frame's masking key
	msgOpen       bool  // a data message is being read (its final frame is not done)
	msgText       bool
	// The message being read is compressed; msgBroken: its decompression
	// was interrupted and cannot resume.
	msgCompressed bool
	msgBroken     bool
	utf8          utf8Validator
	wclosed       bool // a close frame has been written (guarded by the frame lock)
	closeSent     bool // a close frame is ours to send or was sent, or none will be (closeMu)
}

// connRare is the state of a Conn that few connections need, behind one
// pointer that stays nil until one does: a client's masking keys and the
// KeepAlive option's pinger, set when the Conn is made, and what an
// interrupted read or the peer's close frame leaves behind. Inline, these
// 48 bytes would put every Conn past the allocator's 512-byte size class,
// the largest whose objects carry no header, into the 576-byte one; a
// server connection without KeepAlive makes it only if one of those rare
// events happens.
type connRare struct {
	rng *rand.ChaCha8 // masking keys (client only; guarded by the frame lock)
	ka  *keepAlive    // nil unless the KeepAlive option is set

	// What an interrupted Read had read of the open message, for the next
	// Read to complete, or nil (readMu).
	partial *partialRead
	// The pong of a ping whose read was interrupted before it went out, or
	// nil (readMu).
	pong *[]byte

	// The reason in the peer's close frame (closeMu).
	peerCloseReason string
}

// rareState returns c's connRare, made if it is not yet. Each of its
// fields keeps the guard it names, so that two goroutines may both reach
// here: the first to publish its connRare wins, the other uses that one.
func (c *Conn) rareState() *connRare {
	if r := c.rare.Load(); r != nil {
		return r
	}
	r := new(connRare)
	if c.rare.CompareAndSwap(nil, r) {
		return r
	}
	return c.rare.Load()
}

func newConn(nc net.Conn, client bool, proto string, cfg connConfig, deflate *deflateState, buffered []byte) *Conn {
	cfg = cfg.withDefaults()
	c := &Conn{
		client:  client,
		proto:   proto,
		cfg:     connOptions{connShared: cfg.shared},
		deflate: deflate,
		stripe:  nextStripe(),
	}
	switch {
	case c.cfg.connShared != nil:
	case cfg.onPing == nil && cfg.logger == nil && cfg.closeTimeout == plainShared.closeTimeout:
		c.cfg.connShared = &plainShared
	default:
		c.cfg.connShared = &connShared{onPing: cfg.onPing, logger: cfg.logger, closeTimeout: cfg.closeTimeout}
	}
	if deflate != nil {
		deflate.src.c = c
	}
	c.initSock(nc, cfg.ownSocket, buffered, c)
	c.readLimit.Store(cfg.readLimit)
	c.mw.c = c
	c.wdl.write = true
	if client {
		var seed [32]byte
		crand.Read(seed[:])
		c.rareState().rng = rand.NewChaCha8(seed)
	}
	// Last: the first tick may run at once and uses the whole Conn.
	if cfg.keepAlive > 0 {
		startKeepAlive(c, cfg.keepAlive, cfg.keepTimeout)
	}
	return c
}

// received notes that bytes arrived, for the keepalive (sockOwner).
func (c *Conn) received() {
	if r := c.rare.Load(); r != nil && r.ka != nil {
		r.ka.alive()
	}
}

// flushKept sends the frames the transport kept (sockOwner): it takes the
// frame lock, at once (wait false: the reader, about to wait, leaves them
// to the writer that holds it) or waiting for it (the flush timer), and
// reports what fails to the ErrorLog, since no caller sees it.
func (c *Conn) flushKept(wait bool) {
	ctx := context.Background()
	if wait {
		if !c.lockUnlessClosed(lockFrame) {
			return
		}
	} else {
		if !c.wl.tryLock(lockFrame) {
			return
		}
		ctx = c.readContext()
	}
	if !c.wclosed {
		if err := c.flushLocked(ctx); err != nil && ctx.Err() == nil {
			// (A flush stopped by the read's context keeps the frames
			// for later: nothing is lost.)
			c.logDropped("flushing coalesced frames", err)
		}
	}
	c.unlock(lockFrame)
}

// emit sends the frame b of opcode op, or has the transport keep it to
// leave with the frames that follow (coalesce.go). The caller holds the
// frame lock.
func (c *Conn) emit(ctx context.Context, op opcode, b []byte) error {
	mayKeep := op != opClose && op != opPing
	if mayKeep && c.rmore.Load() {
		// Kept, nothing is written: no deadline to arm.
		if kept, now := c.keep(b); kept && !now {
			return nil
		} else if kept {
			c.wdl.arm(c, ctx)
			n, err := c.sendOut(len(b))
			return c.writeError(ctx, int64(n), err, op)
		}
	}
	c.wdl.arm(c, ctx)
	n, err := c.send(b, mayKeep)
	return c.writeError(ctx, int64(n), err, op)
}

// flushLocked sends what the transport kept, if anything. The caller holds
// the frame lock.
func (c *Conn) flushLocked(ctx context.Context) error {
	if c.outLen == 0 {
		return nil
	}
	c.wdl.arm(c, ctx)
	return c.writeError(ctx, 0, c.flush(), opBinary)
}

// unlockRead ends a read call: the transport records whether received
// bytes wait to be handed out, and readMu is released.
func (c *Conn) unlockRead() {
	c.noteUnread()
	c.readMu.Unlock()
}

// Subprotocol returns the subprotocol negotiated in the handshake, or "".
func (c *Conn) Subprotocol() string { return c.proto }

// LocalAddr returns the local network address.
func (c *Conn) LocalAddr() net.Addr { return c.nc.LocalAddr() }

// RemoteAddr returns the peer's network address.
func (c *Conn) RemoteAddr() net.Addr { return c.nc.RemoteAddr() }

// SetReadLimit sets the largest message, in bytes, that the Conn accepts
// from now on; a negative n removes the limit. A message announced larger
// than the limit fails the connection with 1009 (StatusMessageTooBig) before
// any of its payload is read. The default is DefaultReadLimit, or the
// ReadLimit of the options. Safe to call from any goroutine.
func (c *Conn) SetReadLimit(n int64) {
	if n < 0 {
		n = -1
	}
	c.readLimit.Store(n)
}

// doneChan returns a channel closed when the TCP connection is closed.
func (c *Conn) doneChan() <-chan struct{} {
	if p := c.closed.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{})
	if c.closed.CompareAndSwap(nil, &ch) {
		return ch
	}
	return *c.closed.Load() // made meanwhile, or closedChan
}

// CloseNow closes the TCP connection at once, without a close handshake.
// Blocked reads and writes return. It is idempotent and safe to call from
// any goroutine. (In a browser, which cannot drop a WebSocket, it asks the
// browser to close with a close frame without a code, and returns.)
func (c *Conn) CloseNow() error {
	if c.closeOnce.done.Load() {
		return nil
	}
	return c.closeNow()
}

// closeNow is CloseNow's first call; a call made meanwhile waits for it
// to finish. It is sync.Once.Do without the closure, Do's frame and its
// defers: a handler's stack is at its deepest when the peer's close frame
// closes the socket (net's close and the poller's are under this frame),
// and frames that small keep it within the goroutine's first 2 KiB stack.
// (Nothing it calls panics, for which Do has its defers.)
func (c *Conn) closeNow() error {
	c.closeOnce.mu.Lock()
	if c.closeOnce.done.Load() {
		c.closeOnce.mu.Unlock()
		return nil
	}
	c.endSending()
	err := c.closeSock()
	c.closeRest()
	c.closeOnce.done.Store(true)
	c.closeOnce.mu.Unlock()
	return err
}

// endSending notes, as the connection closes, that nothing may be sent on
// it: if no close frame was sent, none will be.
//
//go:noinline
func (c *Conn) endSending() {
	c.closeMu.Lock()
	if !c.closeSent {
		c.closeSent = true
		c.cfg.stats.closed(StatusAbnormalClosure)
	}
	c.closeMu.Unlock()
}

// closeRest is what closeNow does once the socket is closed: a function of
// its own, so that closeNow's frame, under which the socket's close runs,
// stays small.
//
//go:noinline
func (c *Conn) closeRest() {
	if !c.closed.CompareAndSwap(nil, &closedChan) {
		close(*c.closed.Load())
	}
	// Writers queued for a write lock give up (errClosed).
	c.wl.abort(lockMsg)
	c.wl.abort(lockFrame)
	if r := c.rare.Load(); r != nil {
		r.ka.stop()
	}
	// Drop the context watches, so a long-lived context does not
	// keep a closed Conn alive.
	c.rdl.disarm(c)
	c.wdl.disarm(c)
	c.leaveGroups()
}

// onceClose is CloseNow's sync.Once, open: done is set once the first
// call has closed the connection, and mu makes the calls meanwhile wait.
type onceClose struct {
	done atomic.Bool
	mu   sync.Mutex
}

// Close performs the closing handshake: it sends a close frame with code and
// reason, waits up to the close timeout for the peer's close frame, and then
// closes the TCP connection in every case. After it, reads return the
// CloseError the peer sent. The reason is cut to fit a control frame.
// StatusNoStatusRcvd sends a close frame without a code. A code that may not
// appear on the wire (for example 1004–1006 or 1015) is an error, and nothing
// is closed. In a browser, a code other than 1000 or 3000–4999 closes
// without a code and returns an error matching ErrUnsupported.
//
// Close is idempotent and safe to call from any goroutine: a second call
// waits for the first to finish and returns nil. Close does not need a
// concurrent reader; if none is reading it reads (and discards) what arrives
// until the peer's close frame.
func (c *Conn) Close(code StatusCode, reason string) error {
	var payload [maxControlPayload]byte
	p, err := appendClosePayload(payload[:0], code, reason)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(c.cfg.closeTimeout)
	if !c.startClose(code) {
		c.waitClosed(deadline)
		return nil
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	err = c.writeFrame(ctx, opClose, true, p)
	if err == nil {
		c.awaitPeerClose(deadline)
	}
	c.CloseNow()
	if errors.Is(err, net.ErrClosed) {
		return nil // closed meanwhile by the peer or CloseNow
	}
	return err
}

// startClose marks the close frame, with code, as ours to send. It returns
// false when a close frame was already sent (or is being sent) by someone
// else, or the connection is closed.
func (c *Conn) startClose(code StatusCode) bool {
	c.closeMu.Lock()
	defer c.closeMu.Unlock()
	if c.closeSent {
		return false
	}
	c.closeSent = true
	c.cfg.stats.closed(code)
	return true
}

// waitClosed waits for the TCP connection to close, up to deadline, and then
// closes it.
func (c *Conn) waitClosed(deadline time.Time) {
	if c.isClosed() {
		return // no timer to make
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-c.doneChan():
	case <-t.C:
		c.CloseNow()
	}
}

// awaitPeerClose waits for the peer's close frame until deadline. If no one
// is reading, it reads itself, and it takes over the reading when a reader
// leaves before the close frame came (a reader whose ctx ended, say). The
// reader that gets the peer's close frame closes the connection at once (it
// has no close frame of its own to send: ours went first), so waiting for
// closed is waiting for the peer's close frame.
func (c *Conn) awaitPeerClose(deadline time.Time) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	var poll *time.Ticker
	for {
		select {
		case <-c.doneChan():
			return
		default:
		}
		if c.readMu.TryLock() {
			c.readUntilClose(deadline)
			c.readMu.Unlock()
			return
		}
		if poll == nil {
			poll = time.NewTicker(closePoll)
			defer poll.Stop()
		}
		select {
		case <-c.doneChan():
			return
		case <-t.C:
			return
		case <-poll.C:
		}
	}
}

// closePoll is how often a Close whose peer has not answered checks whether
// the reader left.
const closePoll = 10 * time.Millisecond

// readUntilClose reads and discards until the peer's close frame, an error
// or deadline. The caller holds readMu.
func (c *Conn) readUntilClose(deadline time.Time) {
	c.rdl.disarm(c)
	c.rctx = nil
	c.setReadDeadline(deadline)
	for c.readErr == nil {
		if err := c.skipMessage(); err != nil {
			c.setReadErr(err)
			break
		}
		h, err := c.nextDataFrame()
		if err != nil {
			c.setReadErr(err)
			break
		}
		if err := c.beginMessage(h); err != nil {
			c.setReadErr(err)
		}
	}
}

// fail fails the connection (RFC 6455 §7.1.7): it sends a close frame with
// the error's code, if no close frame was sent yet, and closes TCP.
func (c *Conn) fail(pe *ProtocolError) *ProtocolError {
	if c.startClose(pe.Code) {
		var payload [maxControlPayload]byte
		p, _ := appendClosePayload(payload[:0], pe.Code, pe.Reason)
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout)
		c.logDropped("sending a close frame", c.writeFrame(ctx, opClose, true, p))
		cancel()
	}
	c.CloseNow()
	return pe
}

// logDropped logs err, an error that no caller will see (a failed flush of
// coalesced frames, a close frame that could not be sent), to the options'
// ErrorLog, unless it only says that the connection was closed already.
//
//go:noinline
func (c *Conn) logDropped(what string, err error) {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return
	}
	l := c.cfg.logger
	if l == nil {
		l = slog.Default()
	}
	l.Info("ws: "+what, "remote", c.RemoteAddr(), "err", err)
}

// Ping sends a ping and returns when its pong arrives, when ctx ends, or when
// the connection closes. The pong is read by the connection's reader, so a
// goroutine must be reading (Next, Reader or Read) for Ping to return nil.
// In a browser, which sends no pings, Ping returns ErrUnsupported.
func (c *Conn) Ping(ctx context.Context) error {
	if b, ok := c.nc.(interface{ pingError() error }); ok {
		return b.pingError() // a browser's WebSocket
	}
	t := c.pings.Load()
	if t == nil {
		c.pings.CompareAndSwap(nil, &pingTable{m: make(map[string]chan struct{})})
		t = c.pings.Load()
	}
	t.mu.Lock()
	t.seq++
	var p [8]byte
	for i := range p {
		p[i] = byte(t.seq >> (56 - 8*i))
	}
	key := string(p[:])
	done := make(chan struct{})
	t.m[key] = done
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.m, key)
		t.mu.Unlock()
	}()
	if err := c.writeFrame(ctx, opPing, true, p[:]); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.doneChan():
		return errClosed
	}
}

// pingTable holds the pings waiting for their pong, by payload. A Conn
// makes it for its first Ping: most connections never send one.
type pingTable struct {
	mu  sync.Mutex
	seq uint64
	m   map[string]chan struct{}
}

// gotPong wakes the Ping waiting for payload p, if any.
func (c *Conn) gotPong(p []byte) {
	t := c.pings.Load()
	if t == nil {
		return
	}
	t.mu.Lock()
	if done, ok := t.m[string(p)]; ok {
		close(done)
		delete(t.m, string(p))
	}
	t.mu.Unlock()
}

// aLongTimeAgo is a deadline in the past: setting it interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// ctxDeadline ties a context to a net.Conn deadline without a goroutine:
// while armed, the end of ctx sets the deadline in the past, which
// interrupts the blocked call; disarm undoes that so the connection can be
// used again. A watch stays in place from one call to the next as long as
// the calls bring the same context, so a connection used with one
// long-lived context (a Server handler's) registers it once, not per call.
//
// Its methods take the Conn whose read (or, with write, write) deadline the
// watch sets, rather than keep a pointer to it: the Conn is the one that
// holds the watch, and 8 bytes fewer in each of its two watches keep it in
// a smaller size class.
type ctxDeadline struct {
	mu   sync.Mutex
	ctx  context.Context // the context watched, or nil
	stop func() bool     // unregisters the watch; nil for a handlerCtx's own
	// gen tells a watch's callback, which may run late, whether the watch
	// it belongs to is still the one armed: 32 bits, as the callback would
	// have to wait for 2³² disarms to be mistaken (and 64 would put the
	// Conn in a larger size class).
	gen   uint32
	fired bool
	write bool
}

// set sets the deadline the watch controls.
func (d *ctxDeadline) set(c *Conn, t time.Time) {
	if d.write {
		c.setWriteDeadline(t)
	} else {
		c.setReadDeadline(t)
	}
}

func (d *ctxDeadline) arm(c *Conn, ctx context.Context) {
	d.mu.Lock()
	if d.ctx != nil && d.ctx == ctx && !d.fired {
		// Armed already: the case of every call but the first on a
		// handler's Conn, so it takes no defer.
		d.mu.Unlock()
		return
	}
	d.rearm(c, ctx)
}

// rearm is arm when the watch is not already on ctx. The caller holds
// d.mu, which rearm releases.
func (d *ctxDeadline) rearm(c *Conn, ctx context.Context) {
	defer d.mu.Unlock()
	d.disarmLocked(c)
	if ctx == nil {
		return
	}
	if h, ok := ctx.(*handlerCtx); ok && h.c == c {
		// The handler's context of this very Conn expires the watch
		// itself when cancelled (handlerCtx.cancel), so nothing is
		// registered or allocated. It sets its error before it looks at
		// the watch, so one of the two sees the other.
		d.ctx = ctx
		if h.Err() != nil {
			d.fired = true
			d.set(c, aLongTimeAgo)
		}
		return
	}
	if ctx.Done() == nil {
		return
	}
	gen := d.gen
	d.ctx = ctx
	d.stop = context.AfterFunc(ctx, func() {
		d.mu.Lock()
		if d.gen == gen {
			d.fired = true
			d.set(c, aLongTimeAgo)
		}
		d.mu.Unlock()
	})
}

// expire interrupts the blocked call if the watch is on ctx: what the
// context.AfterFunc of arm does, for a handlerCtx that calls it directly.
func (d *ctxDeadline) expire(c *Conn, ctx context.Context) {
	d.mu.Lock()
	if d.ctx == ctx && !d.fired {
		d.fired = true
		d.set(c, aLongTimeAgo)
	}
	d.mu.Unlock()
}

func (d *ctxDeadline) disarm(c *Conn) {
	d.mu.Lock()
	d.disarmLocked(c)
	d.mu.Unlock()
}

func (d *ctxDeadline) disarmLocked(c *Conn) {
	if d.stop != nil {
		d.stop()
		d.stop = nil
	}
	d.ctx = nil
	d.gen++
	if d.fired {
		d.fired = false
		d.set(c, time.Time{})
	}
}
