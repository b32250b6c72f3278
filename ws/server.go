package ws

import (
	"compress/flate"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultBroadcastQueue is how many bytes of broadcast frames a connection
// may fall behind before Server.Send waits for it, when the options leave
// BroadcastQueue at zero.
const DefaultBroadcastQueue = 1 << 20

// DefaultSlowTimeout is how long Server.Send waits for a connection whose
// broadcast queue is full before it drops it, when the options leave
// SlowTimeout at zero.
const DefaultSlowTimeout = time.Second

// DefaultStallTimeout is how long Server.Send waits for the next part of a
// message it streams from a connection, when the options leave StallTimeout
// at zero. A part is at most 64 KiB (less when the sender's frame is
// smaller), so a sender must keep up about 6.5 KB/s.
const DefaultStallTimeout = 10 * time.Second

// ErrServerClosed is returned by Server.Send after Shutdown has begun.
var ErrServerClosed = errors.New("ws: server closed")

// broadcastChunk is the most payload one broadcast frame carries.
const broadcastChunk = 64 << 10

// Server is an http.Handler that upgrades requests, runs a handler for each
// connection, tracks the open ones, and is itself a wesos.Sink[Message] that
// broadcasts to all of them: the Go form of Node's wesos server, where
// wesos.Pipe(ctx, srv, c) relays every message of c to every socket.
//
// When a handler returns, its connection is closed (if it is not closed
// already) with the code its error says, and an error that is not a clean
// end goes to the error log:
//
//   - nil, or an error matching io.EOF (a peer's 1000 or 1001, the end of a
//     source): 1000;
//   - a CloseError (under errors.As): its code and reason, so a handler
//     chooses its close with return ws.CloseError{Code: 4001, Reason: "..."};
//   - a *ProtocolError (the peer broke the protocol): its code;
//   - a *DecodeError (a message that could not be decoded, from Typed or
//     wrapped by the handler): 1007, and any other error with a method
//     Code() StatusCode: that code;
//   - anything else, and a handler that panics: 1011, with the reason
//     "internal error" (the error's text stays in the log).
//
// Shutdown sends 1001 to every connection and waits for the handlers; a
// handler that returns once Shutdown has begun leaves its connection to
// Shutdown, so it too gets every broadcast Send accepted and then 1001.
type Server struct {
	handler func(ctx context.Context, c *Conn) error
	opts    AcceptOptions
	log     *slog.Logger
	queue   int64
	slow    time.Duration
	stall   time.Duration // 0: no limit

	ctx    context.Context // ends when Shutdown has closed the connections
	cancel context.CancelFunc

	mu       sync.Mutex
	peers    map[*Conn]*peer
	list     []*peer // the peers, as a snapshot: its elements never change in place
	gone     int     // peers in list whose handler has finished (p.gone)
	closing  bool
	handlers sync.WaitGroup
	sends    sync.WaitGroup // broadcasts in progress
	drains   sync.WaitGroup // goroutines writing broadcast frames

	order sync.Mutex // orders the start of broadcast messages
}

// NewServer returns a Server that runs handler for each accepted connection,
// in a goroutine of its own (ServeHTTP returns once the connection is
// upgraded, so net/http keeps nothing for it). A connection over HTTP/2
// (RFC 8441) lives in its request's stream, so for it ServeHTTP runs the
// handler itself and returns once the connection is closed. The handler's
// ctx carries the values of the request's context (or of the context the
// options' Admit function returned) and ends when the handler returns or
// Shutdown closes the connections. The request itself is not kept: what
// the handler needs of it (a user, a room, a header), Admit puts in that
// context. opts may be nil.
func NewServer(handler func(ctx context.Context, c *Conn) error, opts *AcceptOptions) *Server {
	s := &Server{handler: handler, peers: make(map[*Conn]*peer)}
	if opts != nil {
		s.opts = *opts
	}
	s.log = s.opts.ErrorLog
	if s.log == nil {
		s.log = slog.Default()
	}
	s.queue = s.opts.BroadcastQueue
	if s.queue <= 0 {
		s.queue = DefaultBroadcastQueue
	}
	s.slow = s.opts.SlowTimeout
	if s.slow <= 0 {
		s.slow = DefaultSlowTimeout
	}
	switch s.stall = s.opts.StallTimeout; {
	case s.stall == 0:
		s.stall = DefaultStallTimeout
	case s.stall < 0:
		s.stall = 0
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// ServeHTTP upgrades the request and runs the handler. During Shutdown it
// answers 503. A request that the options' Admit function refuses is
// answered with its status and never becomes a connection: it is not
// counted by Len, gets no broadcast, and its handler never runs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()

	c, ctx, refused, err := accept(w, r, &s.opts)
	if err != nil {
		s.handlers.Done()
		var herr *HandshakeError
		switch {
		case refused && errors.As(err, &herr):
			s.log.Debug("ws: request refused", "remote", r.RemoteAddr, "err", err)
		case refused:
			s.log.Info("ws: request refused", "remote", r.RemoteAddr, "err", err)
		default:
			s.log.Info("ws: handshake failed", "remote", r.RemoteAddr, "err", err)
		}
		return
	}
	// A broadcast is compressed once, at the level of the options: a
	// connection that needs another (a small window) gets it plain.
	z := c.deflate != nil && !c.deflate.takeoverOut && c.deflate.level == s.opts.Compression.level()
	p := &peer{c: c, z: z}
	// The handler's context keeps the request's values and ends when the
	// handler returns or Shutdown ends the connections. It is made before
	// p is listed, so that Shutdown, which cancels the listed ones, never
	// misses it.
	p.ctx = newHandlerCtx(ctx, c)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close(StatusGoingAway, "server is shutting down")
		s.handlers.Done()
		return
	}
	s.peers[c] = p
	// Appended in place when there is room: a snapshot taken before sees
	// only its own length, whose elements do not change (a removal copies
	// the list). Copying on every append made a connection's arrival cost
	// a copy of the whole list, garbage that grew with the square of the
	// connections and inflated the heap (and RSS) of a busy server.
	s.list = append(s.list, p)
	s.mu.Unlock()

	// The handler runs in a goroutine of its own and ServeHTTP returns, so
	// that net/http lets go of what it kept for the request (its buffers,
	// the request and the response, a deep stack): an idle connection
	// would otherwise hold them for its whole life.
	if _, ok := c.nc.(*streamConn); ok {
		// Over HTTP/2 (RFC 8441) the connection is the request's
		// stream, which ends when ServeHTTP returns: the handler, and
		// the closing after it, run here.
		s.serve(p)
		return
	}
	go s.serve(p)
}

// serve runs the handler of p's connection. It is the bottom frame of the
// handler's goroutine for the connection's whole life, so it does nothing
// else: every byte of its frame is under every idle connection's wait, and
// a goroutine whose deepest call stays within its first 2 KiB stack never
// grows it.
func (s *Server) serve(p *peer) {
	err := errHandlerPanicked // until the handler returns
	defer s.finish(p, &err)
	err = s.handler(p.ctx, p.c)
}

// errHandlerPanicked stands for the result of a handler that panicked (over
// HTTP/2, net/http recovers the panic; the connection still gets its close).
var errHandlerPanicked = errors.New("ws: the handler panicked")

// finish ends a handler's connection when the handler has returned *errp.
func (s *Server) finish(p *peer, errp *error) {
	defer s.handlers.Done()
	c := p.c
	herr := *errp
	p.ctx.cancel()
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		// A handler that ends because Shutdown began (Send failed, ctx
		// ended) leaves c to Shutdown, which first writes the broadcasts
		// Send accepted and then closes c with 1001.
		<-c.doneChan()
	}
	s.mu.Lock()
	delete(s.peers, c)
	// p stays in the list, marked, until the finished peers are half of
	// it; then the live ones are copied to a new list (snapshots keep the
	// old one). Copying the list at every departure made n departures
	// cost n² (10,000 connections closing: 800 MB of copies).
	p.gone.Store(true)
	if s.gone++; s.gone > len(s.list)/2 {
		live := make([]*peer, 0, len(s.list)-s.gone)
		for _, q := range s.list {
			if !q.gone.Load() {
				live = append(live, q)
			}
		}
		s.list, s.gone = live, 0
	}
	s.mu.Unlock()
	code, reason, level := closeStatus(herr)
	if herr != nil && !errors.Is(herr, io.EOF) {
		switch {
		case closing && (errors.Is(herr, context.Canceled) || errors.Is(herr, ErrServerClosed)):
			level = slog.LevelDebug // the handler ended because Shutdown began
		case errors.Is(herr, net.ErrClosed) && isDone(c.doneChan()):
			// This side closed c under the handler (Shutdown, a
			// broadcast that dropped it, the handler's own Close):
			// the close and its code are already decided and logged.
			level = slog.LevelDebug
		case errors.Is(herr, errKeepAlive):
			level = slog.LevelInfo // the peer vanished
		}
		s.log.Log(context.Background(), level, "ws: handler failed", "remote", c.RemoteAddr(), "code", int(code), "err", herr)
	}
	c.Close(code, reason)
}

// closeStatus maps the error a Server handler returned to the close code
// and reason its connection is closed with (see Server), and to the level
// at which the error is logged: an error of the server's own (1011) is an
// error; the others say what the peer did or what the handler chose.
func closeStatus(err error) (StatusCode, string, slog.Level) {
	if err == nil {
		return StatusNormalClosure, "", slog.LevelInfo
	}
	var ce CloseError
	if errors.As(err, &ce) {
		switch {
		case ce.Code.validOnWire(), ce.Code == StatusNoStatusRcvd:
			return ce.Code, ce.Reason, slog.LevelInfo
		default:
			// 1006 and the like: the connection has ended already
			// (the peer vanished); the code only goes to the log.
			return StatusInternalError, "internal error", slog.LevelInfo
		}
	}
	if errors.Is(err, io.EOF) {
		return StatusNormalClosure, "", slog.LevelInfo
	}
	var pe *ProtocolError
	if errors.As(err, &pe) && pe.Code.validOnWire() {
		return pe.Code, pe.Reason, slog.LevelInfo
	}
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Code(), "cannot decode message: " + de.Err.Error(), slog.LevelInfo
	}
	var coded interface{ Code() StatusCode }
	if errors.As(err, &coded) && coded.Code().validOnWire() {
		code := coded.Code()
		return code, statusNames[code], slog.LevelInfo
	}
	return StatusInternalError, "internal error", slog.LevelError
}

// Len returns the number of open connections.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.peers)
}

// Send broadcasts m to every open connection; it makes Server a
// wesos.Sink[Message]. The body streams: each read of m.Body becomes one
// frame, encoded once and written to every connection as it arrives, so a
// message of any size passes in bounded memory. Messages reach every
// connection in the order their Send calls began, and concurrent Sends are
// safe.
//
// Each connection has its own queue; the connections' pace does not stall
// one another. A connection that falls more than BroadcastQueue bytes behind
// makes Send wait up to SlowTimeout; if it is still behind then, it is
// dropped: closed with 1008 (StatusPolicyViolation, reason "too slow") and
// left out of later broadcasts. A failing connection is dropped likewise.
// Neither is an error of Send, which fails only when ctx ends, m.Body fails,
// or after Shutdown began. If the body fails midway, the message is ended
// with an empty final frame and the error is returned; a text message is
// cut at a rune boundary (a frame never ends inside a rune), so receivers
// still get valid UTF-8. A message streamed from one of the server's
// connections whose next part does not arrive within StallTimeout is ended
// that way too, and its sender is failed with 1008: messages after it wait
// for it at every receiver.
func (s *Server) Send(ctx context.Context, m Message) error {
	op, err := opcodeOf(m.Type)
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.sends.Add(1)
	s.mu.Unlock()
	defer s.sends.Done()

	first := &bframe{ready: make(chan struct{})}
	s.order.Lock()
	s.mu.Lock()
	peers := s.list // a snapshot: no copy per message
	s.mu.Unlock()
	for _, p := range peers {
		if !p.gone.Load() {
			s.enqueue(p, first)
		}
	}
	s.order.Unlock()

	if m.Body == nil {
		m.Body = http.NoBody
	}
	bp := getRelayBuf()
	defer putRelayBuf(bp)
	chunk := (*bp)[:broadcastChunk]
	enc := s.newEncoder(peers)
	defer enc.release()
	node := first
	text := op == opText
	carry := 0 // the start of a rune held back from the last frame
	var stall *time.Timer
	defer func() {
		if stall != nil {
			stall.Stop()
		}
	}()
	for {
		// The stall timer runs only while a read waits for the sender,
		// not while receivers are waited for (backpressure).
		if stall != nil {
			stall.Reset(s.stall)
		}
		n, rerr := readChunk(m.Body, chunk[carry:])
		if stall != nil {
			stall.Stop()
		} else if rerr == nil {
			stall = s.watchStall(m.Body)
		}
		n += carry
		if rerr == nil && drained(m.Body) {
			rerr = io.EOF // a whole bytes.Reader or the like: one frame
		}
		fin := rerr == io.EOF
		if rerr != nil && !fin {
			fin = true
			n = 0
		}
		if carry = 0; text && !fin {
			// A text frame does not end inside a rune: if the message
			// breaks off (its source fails), the receivers get valid
			// UTF-8, not a 1007 for the source's fault.
			carry = incompleteRune(chunk[:n])
			n -= carry
		}
		if n > 0 || fin {
			b, z := enc.encode(op, fin, chunk[:n])
			node = s.publish(peers, node, b, z)
			op = opContinuation
		}
		copy(chunk, chunk[n:n+carry])
		if rerr == io.EOF {
			// The message is complete; the next one waits, if need be,
			// for receivers to catch up.
			return s.backpressure(ctx, peers)
		}
		if rerr != nil {
			return rerr
		}
		if err := s.backpressure(ctx, peers); err != nil {
			b, z := enc.encode(op, true, nil)
			s.publish(peers, node, b, z)
			return err
		}
	}
}

// drained reports whether r, a reader that knows its length (bytes.Reader,
// strings.Reader, bytes.Buffer), has nothing left, so that the chunk just
// read ends the message instead of an empty final frame after it.
func drained(r io.Reader) bool {
	l, ok := r.(interface{ Len() int })
	return ok && l.Len() == 0
}

// encoder turns a broadcast message's chunks into frames: plain ones, and
// compressed ones, made once, for the receivers that negotiated
// permessage-deflate without server context takeover. (Receivers with
// takeover get the plain frames; an uncompressed message is always
// allowed.)
type encoder struct {
	s        *Server
	wantZ    bool // some receiver takes compressed frames
	decided  bool // the message's first frame is encoded
	compress bool
	zw       *flate.Writer
	zsw      sliceWriter
}

func (s *Server) newEncoder(peers []*peer) *encoder {
	e := &encoder{s: s}
	if s.opts.Compression != nil {
		for _, p := range peers {
			e.wantZ = e.wantZ || p.z
		}
	}
	return e
}

// encode returns the frames for one chunk: plain, and compressed or nil.
func (e *encoder) encode(op opcode, fin bool, p []byte) (plain, z []byte) {
	h := header{fin: fin, op: op, length: int64(len(p))}
	plain = make([]byte, headerSize(h)+len(p))
	copy(plain[putHeader(plain, h):], p)
	if !e.decided {
		e.decided = true
		threshold := e.s.opts.Compression.threshold()
		e.compress = e.wantZ && (!fin || threshold < 0 || len(p) >= threshold)
		if e.compress {
			e.zw = getFlateWriter(e.s.opts.Compression.level(), &e.zsw)
			h.rsv = bitRSV1
		}
	}
	if !e.compress {
		return plain, nil
	}
	e.zsw.b = make([]byte, maxHeaderSize, maxHeaderSize+len(p)/2+64)
	if err := appendCompressed(e.zw, &e.zsw, p, fin); err != nil {
		e.compress = false // cannot happen with a sliceWriter; stay correct anyway
		return plain, nil
	}
	h.length = int64(len(e.zsw.b) - maxHeaderSize)
	start := maxHeaderSize - headerSize(h)
	putHeader(e.zsw.b[start:], h)
	z = e.zsw.b[start:]
	e.zsw.b = nil
	return plain, z
}

func (e *encoder) release() {
	if e.zw != nil {
		putFlateWriter(e.s.opts.Compression.level(), e.zw)
		e.zw = nil
	}
}

// bframe is one broadcast frame, encoded once and shared by every receiver.
// Its fields are set before ready is closed and never change after.
type bframe struct {
	ready chan struct{}
	b     []byte  // the frame: header and payload
	z     []byte  // the same compressed, or nil
	fin   bool    // the last frame of the message
	next  *bframe // the following frame, if !fin
}

// peer is a connection's broadcast queue.
type peer struct {
	c       *Conn
	ctx     *handlerCtx  // the context of c's handler
	z       bool         // takes the compressed frames of a broadcast
	gone    atomic.Bool  // its handler has finished: no more broadcasts
	pending atomic.Int64 // bytes published to it and not yet written
	// space is signalled when pending drops, once a Send has waited for
	// this receiver (backpressure makes it: most receivers keep up).
	space   atomic.Pointer[chan struct{}]
	dropped atomic.Bool

	mu      sync.Mutex
	queue   []*bframe // first frames of the messages waiting for it
	running bool      // a drain goroutine serves the queue
}

// publish fills node with a frame and returns the next node to fill.
func (s *Server) publish(peers []*peer, node *bframe, b, z []byte) *bframe {
	node.b, node.z = b, z
	node.fin = b[0]&bitFIN != 0
	if !node.fin {
		node.next = &bframe{ready: make(chan struct{})}
	}
	for _, q := range peers {
		q.pending.Add(int64(len(node.frameFor(q))))
	}
	close(node.ready)
	return node.next
}

// frameFor returns the bytes of the frame that receiver p takes.
func (f *bframe) frameFor(p *peer) []byte {
	if p.z && f.z != nil {
		return f.z
	}
	return f.b
}

// watchStall returns a stopped timer that, once armed for a read of body (a
// received message streaming through Send), fails the sender's connection
// with 1008 if the read is not done within the stall timeout; nil if body
// is not such a message or there is no limit. Made only once a message
// takes more than one read: most are done in one.
func (s *Server) watchStall(body io.Reader) *time.Timer {
	mr, ok := body.(*messageReader)
	if !ok || s.stall <= 0 {
		return nil
	}
	c := mr.c
	t := time.AfterFunc(s.stall, func() {
		s.log.Info("ws: message stalled; failing its sender", "remote", c.RemoteAddr(), "after", s.stall)
		c.fail(&ProtocolError{StatusPolicyViolation, "message stalled"})
	})
	t.Stop()
	return t
}

// backpressure waits while a receiver is more than the queue size behind,
// dropping one that stays behind longer than the slow timeout.
func (s *Server) backpressure(ctx context.Context, peers []*peer) error {
	for _, p := range peers {
		if p.pending.Load() <= s.queue || p.dropped.Load() {
			continue
		}
		space := p.space.Load()
		if space == nil {
			ch := make(chan struct{}, 1)
			p.space.CompareAndSwap(nil, &ch)
			space = p.space.Load()
		}
		// written, which decreases pending before it loads space, sees
		// space or left a pending that the loop sees.
		t := time.NewTimer(s.slow)
		for p.pending.Load() > s.queue && !p.dropped.Load() {
			select {
			case <-*space:
			case <-p.c.doneChan():
				p.dropped.Store(true)
			case <-t.C:
				s.drop(p)
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			}
		}
		t.Stop()
	}
	return nil
}

// drop closes a receiver that cannot keep up. The close frame goes out after
// the frame being written, if the peer still reads at all.
func (s *Server) drop(p *peer) {
	if p.dropped.Swap(true) {
		return
	}
	s.log.Info("ws: dropping a connection that fell behind the broadcast", "remote", p.c.RemoteAddr())
	s.drains.Add(1)
	go func() {
		defer s.drains.Done()
		p.c.Close(StatusPolicyViolation, "too slow")
	}()
}

// enqueue adds a message to a receiver's queue, starting its drain goroutine
// if none runs.
func (s *Server) enqueue(p *peer, first *bframe) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.queue = append(p.queue, first)
	if !p.running {
		p.running = true
		s.drains.Add(1)
		go s.drain(p)
	}
}

// Bounds on one batch of broadcast messages written with a single writev.
const (
	batchFrames = 64
	batchBytes  = 256 << 10
)

var batchPool = sync.Pool{New: func() any {
	b := make(net.Buffers, 0, batchFrames)
	return &b
}}

// drain writes a receiver's queued messages, in order, and ends when the
// queue is empty. Messages already complete when it gets to them (a burst
// of small broadcasts) leave together in one write; a message still being
// published is streamed frame by frame.
func (s *Server) drain(p *peer) {
	defer s.drains.Done()
	bp := batchPool.Get().(*net.Buffers)
	defer batchPool.Put(bp)
	for {
		p.mu.Lock()
		if len(p.queue) == 0 {
			p.running = false
			p.mu.Unlock()
			return
		}
		batch, size, n := (*bp)[:0], 0, 0
		for _, f := range p.queue {
			if !f.complete() || len(batch) == batchFrames {
				break
			}
			b := f.frameFor(p)
			if len(batch) > 0 && size+len(b) > batchBytes {
				break
			}
			batch = append(batch, b)
			size += len(b)
			n++
		}
		var first *bframe
		if n == 0 {
			first, n = p.queue[0], 1
		}
		// Shift rather than reslice, so that the queue's array is reused
		// instead of reallocated as the front is consumed.
		rest := copy(p.queue, p.queue[n:])
		clear(p.queue[rest:])
		p.queue = p.queue[:rest]
		p.mu.Unlock()
		if first != nil {
			s.deliver(p, first)
		} else {
			*bp = batch // writing consumes *bp; batch keeps the array
			s.deliverBatch(p, bp, size)
			clear(batch)
			*bp = batch[:0]
		}
	}
}

// complete reports whether f is a whole message, published: a single final
// frame.
func (f *bframe) complete() bool {
	select {
	case <-f.ready:
		return f.fin
	default:
		return false
	}
}

// deliverBatch writes complete messages, size bytes in all, to a receiver
// in one write.
func (s *Server) deliverBatch(p *peer, batch *net.Buffers, size int) {
	c := p.c
	if !p.dropped.Load() {
		if c.lockUnlessClosed(lockMsg) {
			if err := c.writeBuffers(s.ctx, batch); err != nil {
				p.dropped.Store(true)
			}
			c.unlock(lockMsg)
		} else {
			p.dropped.Store(true)
		}
	}
	p.written(size)
}

// written accounts for n bytes of broadcast frames written to p (or, once
// p is dropped, for all of them) and wakes a Send waiting for room.
func (p *peer) written(n int) {
	if p.dropped.Load() {
		p.pending.Store(0)
	} else {
		p.pending.Add(-int64(n))
	}
	if space := p.space.Load(); space != nil {
		notify(*space)
	}
}

// deliver writes one broadcast message to a receiver, frame by frame as
// they are published, holding the receiver's message lock throughout so no
// other data message interleaves.
func (s *Server) deliver(p *peer, node *bframe) {
	c := p.c
	held := false
	defer func() {
		if held {
			c.unlock(lockMsg)
		}
	}()
	for {
		select {
		case <-node.ready:
		case <-c.doneChan():
			p.dropped.Store(true)
		}
		if !p.dropped.Load() && !held {
			if held = c.lockUnlessClosed(lockMsg); !held {
				p.dropped.Store(true)
			}
		}
		if !p.dropped.Load() {
			if err := c.writeRaw(s.ctx, node.frameFor(p)); err != nil {
				p.dropped.Store(true)
			}
		}
		if p.dropped.Load() {
			p.written(0) // node may not be published: its size is not read
			return
		}
		p.written(len(node.frameFor(p)))
		if node.fin {
			return
		}
		node = node.next
	}
}

// isDone reports whether ch is closed.
func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Shutdown stops the server: new requests get 503 and Send fails with
// ErrServerClosed; broadcasts already accepted are delivered; then every
// connection is sent 1001 (going away) and Shutdown waits for the handlers
// to return. If ctx ends first, the remaining connections are closed at once
// and ctx.Err() is returned. Shutdown does not stop the http.Server the
// Server is mounted on.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	defer s.cancelAll()

	if err := waitCtx(ctx, &s.sends); err != nil {
		return s.abort(err)
	}
	if err := waitCtx(ctx, &s.drains); err != nil {
		return s.abort(err)
	}
	s.mu.Lock()
	conns := make([]*Conn, 0, len(s.peers))
	for c := range s.peers {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Go(func() { c.Close(StatusGoingAway, "server shutting down") })
	}
	s.cancelAll()
	if err := waitCtx(ctx, &s.handlers); err != nil {
		return s.abort(err)
	}
	closing.Wait()
	return nil
}

// abort closes every connection at once.
func (s *Server) abort(err error) error {
	s.mu.Lock()
	for c := range s.peers {
		c.CloseNow()
	}
	s.mu.Unlock()
	s.cancelAll()
	return err
}

// cancelAll ends the Server's context and the context of every handler.
func (s *Server) cancelAll() {
	s.cancel()
	s.mu.Lock()
	ctxs := make([]*handlerCtx, 0, len(s.peers))
	for _, p := range s.peers {
		ctxs = append(ctxs, p.ctx)
	}
	s.mu.Unlock()
	for _, x := range ctxs {
		x.cancel()
	}
}

// waitCtx waits for wg or ctx.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
