package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
)

// Next returns the next data message; it makes Conn a wesos.Source[Message].
// The message's Body streams the payload as its frames arrive and is valid
// until the next call to Next, Reader or Read, which discards what was not
// read; read after that, it returns an error and reads nothing. Whatever
// holds a Message past the next Next (a queue, a flow.Hub) must read its
// Body into a buffer first.
// After the peer's close frame Next returns a CloseError (matching io.EOF for
// a normal close), after a protocol violation a *ProtocolError.
//
// ctx governs this call and the reads of the returned Body. When ctx ends,
// the blocked read returns ctx.Err() but the connection stays usable: the
// frame being read resumes where it stopped on the next call (with a fresh
// context). A Body read cut short by ctx cannot go on (its context has
// ended), so the next Next discards the rest of that message; Read, which
// returns whole messages, resumes it instead. Closing is always explicit.
func (c *Conn) Next(ctx context.Context) (Message, error) {
	// Reader's body, not a call to it: an idle connection waits in Next,
	// and one frame less under the wait keeps it within a goroutine's
	// first stack.
	c.readMu.Lock()
	defer c.unlockRead()
	c.dropPartial()
	t, err := c.reader(ctx)
	if err != nil {
		return Message{}, err
	}
	return Message{Type: t, Body: c.body()}, nil
}

// Reader returns the type of the next data message and a reader of its
// payload, with the semantics of Next.
func (c *Conn) Reader(ctx context.Context) (MessageType, io.Reader, error) {
	c.readMu.Lock()
	defer c.unlockRead()
	c.dropPartial()
	t, err := c.reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	return t, c.body(), nil
}

// body returns a new handle on the message being read. The caller holds
// readMu.
func (c *Conn) body() *messageReader {
	return (*messageReader)(newHandle(c, c.rgen.Load()))
}

// reader starts reading the next message with ctx. The caller holds readMu.
// The Body handed out for the previous message goes stale first, whatever
// the outcome.
func (c *Conn) reader(ctx context.Context) (MessageType, error) {
	c.rgen.Add(1)
	if c.readErr != nil {
		return 0, c.readErr
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.rctx = ctx
	c.rdl.arm(c, ctx)
	if c.buffered() == 0 && !c.msgOpen && !c.msgBroken && c.pendingPong() == nil {
		// Nothing to finish and nothing buffered: wait for the next
		// frame here rather than deep in nextDataFrame. This is where an
		// idle connection waits, and two frames fewer under the wait keep
		// its goroutine within the first 2 KiB stack (the runtime starts
		// goroutines at the average stack depth it sees).
		if err := c.fill(1); err != nil {
			return 0, c.readError(err)
		}
	}
	if err := c.skipMessage(); err != nil {
		return 0, c.readError(err)
	}
	h, err := c.nextDataFrame()
	if err != nil {
		return 0, c.readError(err)
	}
	if err := c.beginMessage(h); err != nil {
		return 0, c.readError(err)
	}
	if c.msgText {
		return Text, nil
	}
	return Binary, nil
}

// readPrealloc bounds the buffer Read allocates up front for a message: the
// announced length is the peer's word, not bytes that arrived.
const readPrealloc = 64 << 10

// Read reads a whole message into a new slice. The read limit bounds its size.
// A Read interrupted by ctx keeps what it read, and the next Read completes
// that message (a Next or Reader call in between discards it).
func (c *Conn) Read(ctx context.Context) (MessageType, []byte, error) {
	c.readMu.Lock()
	defer c.unlockRead()
	var t MessageType
	var b []byte
	if p := c.partialRead(); p != nil && c.msgOpen && c.readErr == nil {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		t, b = p.typ, p.b
		c.rctx = ctx
		c.rdl.arm(c, ctx)
	} else {
		var err error
		if t, err = c.reader(ctx); err != nil {
			return 0, nil, err
		}
		b = make([]byte, 0, min(max(c.frameLeft, 512), readPrealloc))
	}
	c.dropPartial()
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		// The whole message is waited for: so is the room left in b.
		n, err := c.readMessage(b[len(b):cap(b)], cap(b)-len(b))
		b = b[:len(b)+n]
		if err == io.EOF {
			return t, b, nil
		}
		if err != nil {
			err = c.readError(err)
			if c.readErr == nil && c.msgOpen && !c.msgBroken {
				// Interrupted by ctx: the next Read goes on from here.
				c.rareState().partial = &partialRead{b: b, typ: t}
			}
			return 0, nil, err
		}
	}
}

// startMessage starts reading the next message with ctx, for a reader that
// reads it with readMore (NetConn), and returns its type. It has the
// semantics of Reader without a Body to hand out.
func (c *Conn) startMessage(ctx context.Context) (MessageType, error) {
	c.readMu.Lock()
	defer c.unlockRead()
	c.dropPartial()
	return c.reader(ctx)
}

// readMore reads more of the message startMessage started into p, with
// ctx; it returns io.EOF, together with the last bytes, when the message
// is done. A call interrupted by ctx leaves the message open, and the next
// call, with a fresh ctx, resumes it where it stopped: no byte is lost.
func (c *Conn) readMore(ctx context.Context, p []byte) (int, error) {
	c.readMu.Lock()
	defer c.unlockRead()
	if c.readErr != nil {
		return 0, c.readErr
	}
	if !c.msgOpen {
		return 0, io.EOF
	}
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	c.rctx = ctx
	c.rdl.arm(c, ctx)
	n, err := c.readMessage(p, 0)
	if err != nil && err != io.EOF {
		err = c.readError(err)
	}
	return n, err
}

// messageReader is the Body of a received message: a handle on the Conn's
// read state for one message, which fails with errStaleBody once the Conn has
// moved on to the next message (handle.go).
type messageReader handle

// stale reports whether the Conn has moved on from r's message.
func (r *messageReader) stale() bool { return r.gen != r.c.rgen.Load() }

// Read reads the message payload; it returns io.EOF, together with the last
// bytes, when the message's final frame is done. Once the Conn has moved on
// to the next message, it returns an error and reads nothing.
func (r *messageReader) Read(p []byte) (int, error) { return r.read(p, 0) }

// read is Read, for a caller that will wait for want bytes of p anyway.
func (r *messageReader) read(p []byte, want int) (int, error) {
	c := r.c
	if r.stale() {
		// Checked before readMu too: a Next that waits for the next
		// message holds it.
		return 0, errStaleBody
	}
	c.readMu.Lock()
	defer c.unlockRead()
	if r.stale() {
		return 0, errStaleBody
	}
	if c.readErr != nil {
		return 0, c.readErr
	}
	if c.msgCompressed && c.deflate.held && len(p) > 0 {
		// The byte readFrame read ahead comes first.
		p[0], c.deflate.held = c.deflate.ahead[0], false
		if !c.msgOpen {
			return 1, io.EOF
		}
		return 1, nil
	}
	if !c.msgOpen {
		return 0, io.EOF
	}
	n, err := c.readMessage(p, want)
	if err != nil && err != io.EOF {
		err = c.readError(err)
	}
	return n, err
}

// readFrame reads like Read but goes on until p is full or the current
// frame's payload ends (for a compressed message: until the final frame's
// output ends): the peer announced those bytes, so waiting for them holds
// nothing back. Send relays a received Body with it, so each frame
// that fits Send's buffer stays whole: an echoed single-frame message stays
// a single frame. A message that ends exactly where p does returns io.EOF
// with its last bytes too (readAhead), so no empty final frame follows.
// A p longer than relayChunk (a large relay buffer) is returned once a
// read leaves at least relayChunk bytes in it: the socket had no more for
// now, and what came leaves while the rest is on its way.
func (r *messageReader) readFrame(p []byte) (int, error) {
	enough := min(len(p), relayChunk)
	n := 0
	for {
		m, err := r.read(p[n:], enough-n)
		n += m
		if err != nil || m == 0 {
			return n, err
		}
		if n == len(p) {
			return n, r.readAhead()
		}
		if n >= enough {
			return n, nil
		}
		c := r.c
		c.readMu.Lock()
		// A compressed frame's output does not end with its input: once
		// the final frame is in hand, the rest of the output (or the
		// end) comes without waiting, so a relayed compressed message of
		// one frame stays one frame too.
		more := !r.stale() && c.msgOpen && c.readErr == nil && (c.frameLeft > 0 || c.msgCompressed && c.frame.fin)
		c.readMu.Unlock()
		if !more {
			return n, nil
		}
	}
}

// readAhead tells, after a read that filled the caller's buffer, whether
// the message ended there: io.EOF if it did. An uncompressed message says
// so with its last bytes already; a compressed one's output can end only
// after its input, so once its final frame is in hand (the rest comes
// without waiting) readAhead reads one byte ahead, which the next Read
// returns first.
func (r *messageReader) readAhead() error {
	c := r.c
	c.readMu.Lock()
	defer c.unlockRead()
	if r.stale() || c.readErr != nil || !c.msgOpen || !c.msgCompressed || !c.frame.fin || c.deflate.held {
		return nil
	}
	m, err := c.readMessage(c.deflate.ahead[:], 0)
	c.deflate.held = m == 1
	switch {
	case err == io.EOF && c.deflate.held:
		return nil // the held byte ends the message
	case err != nil && err != io.EOF:
		return c.readError(err)
	}
	return err
}

// takeCompressed reads the compressed payload of r's message, without
// decompressing it, into a relay buffer that it borrows (bp; from maxHeaderSize
// on, room is left for a frame header), if the message is compressed, still
// unread, of one frame that fits the buffer, and decodable as it is by the
// peer of a connection whose compression is to (deflateState.passes). ok
// reports whether it did (or failed trying: err); only then is there a
// buffer, which the caller returns (putRelayBuf) after dropCompressed. The
// payload is then decompressed from the buffer by the reads that follow,
// which check it as they would have checked the frame.
func (r *messageReader) takeCompressed(to *deflateState) (bp *[]byte, n int, ok bool, err error) {
	c := r.c
	if r.stale() {
		return nil, 0, false, nil
	}
	c.readMu.Lock()
	defer c.unlockRead()
	if r.stale() || c.readErr != nil || !c.msgOpen || !c.msgCompressed || c.msgBroken ||
		!c.frame.fin || c.frameLeft != c.frame.length || c.msgLen != c.frame.length ||
		c.frameLeft > relayBufSize-maxHeaderSize || c.deflate.msgOut != 0 || c.deflate.held || !to.passes(c.deflate) {
		return nil, 0, false, nil
	}
	bp = getRelayBuf()
	raw := (*bp)[maxHeaderSize:]
	want := int(c.frameLeft)
	for n < want {
		m, err := c.readPayload(raw[n:want], want-n)
		n += m
		if err != nil && n < want {
			c.deflate.src.fail(err)
			if c.deflate.src.cut {
				// Its context ended: the message is abandoned, the
				// connection stays usable and the next read skips
				// the rest of the frame (skipBroken).
				c.msgBroken = true
			}
			return bp, n, true, c.readError(err)
		}
	}
	c.deflate.src.pending = raw[:n]
	return bp, n, true, nil
}

// inflateTaken checks the message whose n compressed bytes takeCompressed
// took, still unread, with f (inflate.go) instead of reading it: if f
// decides it, the message is read and done, and inflateTaken returns its
// size and, if it fits a write buffer, its bytes, from plain[maxHeaderSize:]
// (room for a frame header is left before them). ok is false if f left it
// to the reads to decide; the message is then as it was.
func (r *messageReader) inflateTaken(f *inflater, n int) (total int64, plain []byte, ok bool) {
	c := r.c
	if r.stale() {
		return 0, nil, false
	}
	c.readMu.Lock()
	defer c.unlockRead()
	if r.stale() || c.readErr != nil || !c.msgOpen || c.msgBroken || c.deflate.infl != nil ||
		c.deflate.msgOut != 0 || c.deflate.held || len(c.deflate.src.pending) != n {
		return 0, nil, false
	}
	var v *utf8Validator
	if c.msgText {
		v = &c.utf8
	}
	total, whole, ok := f.inflate(c.deflate.src.pending, c.readLimit.Load(), v)
	if !ok {
		c.utf8.reset() // as beginMessage left it
		return 0, nil, false
	}
	c.deflate.src.pending = nil
	c.deflate.msgOut = total
	c.endMessage() // io.EOF: the UTF-8 it checks is complete
	if whole && total <= writeBufSize-maxHeaderSize {
		plain = f.buf[:maxHeaderSize+total]
	}
	return total, plain, true
}

// dropCompressed lets go of the buffer takeCompressed read into: a message
// not read to its end by then is abandoned.
func (r *messageReader) dropCompressed() {
	c := r.c
	c.readMu.Lock()
	if c.deflate.src.pending != nil {
		c.deflate.src.pending = nil
		if c.msgOpen && !r.stale() {
			c.msgBroken = true
		}
	}
	c.readMu.Unlock()
}

// frameLeftOver reports whether more than n payload bytes of the current
// (uncompressed) frame are still to be read.
func (r *messageReader) frameLeftOver(n int) bool {
	c := r.c
	if r.stale() {
		return false
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	return !r.stale() && c.msgOpen && c.readErr == nil && !c.msgCompressed && c.frameLeft > int64(n)
}

// readMessage reads payload bytes of the open message into p; the caller
// will wait for want bytes of p anyway (readLarge).
func (c *Conn) readMessage(p []byte, want int) (int, error) {
	if c.msgCompressed {
		return c.readInflated(p)
	}
	for c.frameLeft == 0 {
		if c.frame.fin {
			return 0, c.endMessage()
		}
		h, err := c.nextDataFrame()
		if err != nil {
			return 0, err
		}
		if err := c.continueMessage(h); err != nil {
			return 0, err
		}
	}
	if int64(len(p)) > c.frameLeft {
		p = p[:c.frameLeft]
	}
	n, err := c.readPayload(p, want)
	if c.msgText && !c.utf8.valid(p[:n]) {
		return 0, &ProtocolError{StatusInvalidFramePayloadData, "text message is not valid UTF-8"}
	}
	if err != nil {
		return n, err
	}
	if c.frameLeft == 0 && c.frame.fin {
		return n, c.endMessage()
	}
	return n, nil
}

// endMessage closes the message whose final frame is done.
func (c *Conn) endMessage() error {
	c.msgOpen = false
	if c.deflate != nil && c.deflate.infl != nil {
		c.deflate.release(c.deflate.infl)
		c.deflate.infl = nil
	}
	if c.msgText && !c.utf8.complete() {
		return &ProtocolError{StatusInvalidFramePayloadData, "text message ends inside a UTF-8 sequence"}
	}
	if st := c.cfg.stats; st != nil {
		st.received(c, c.msgLen)
	}
	return io.EOF
}

// skipMessage reads and discards the rest of the open message, if any.
func (c *Conn) skipMessage() error {
	if c.msgBroken {
		if err := c.skipBroken(); err != nil {
			return err
		}
	}
	if !c.msgOpen {
		return nil
	}
	scratch := make([]byte, 512) // rare: only a message left unread
	for c.msgOpen {
		if _, err := c.readMessage(scratch, 0); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
	return nil
}

// skipBroken discards, without decompressing, the frames of a compressed
// message whose decompression was interrupted.
func (c *Conn) skipBroken() error {
	var scratch [512]byte
	for {
		n, err := c.deflate.src.Read(scratch[:])
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		_ = n
	}
	c.msgBroken = false
	c.msgOpen = false
	c.deflate.release(c.deflate.infl)
	c.deflate.infl = nil
	return nil
}

// readInflated reads decompressed bytes of the open compressed message. The
// read limit applies to the decompressed size: at most one byte past it is
// ever produced before the connection fails with 1009.
func (c *Conn) readInflated(p []byte) (int, error) {
	if c.msgBroken {
		return 0, errMessageBroken
	}
	if c.deflate.infl == nil {
		infl, err := c.deflate.decompressor(&c.deflate.src)
		if err != nil {
			return 0, &ProtocolError{StatusInternalError, "decompressor: " + err.Error()}
		}
		c.deflate.infl = infl
	}
	limit := c.readLimit.Load()
	if limit >= 0 && int64(len(p)) > limit-c.deflate.msgOut+1 {
		p = p[:limit-c.deflate.msgOut+1]
	}
	n, err := c.deflate.infl.Read(p)
	if n > 0 {
		c.deflate.msgOut += int64(n)
		if limit >= 0 && c.deflate.msgOut > limit {
			return 0, &ProtocolError{StatusMessageTooBig, fmt.Sprintf("decompressed message exceeds the read limit of %d bytes", limit)}
		}
		if c.msgText && !c.utf8.valid(p[:n]) {
			return 0, &ProtocolError{StatusInvalidFramePayloadData, "text message is not valid UTF-8"}
		}
		c.deflate.remember(p[:n])
	}
	switch {
	case err == nil:
		return n, nil
	case c.deflate.src.err != nil:
		// The frames failed beneath the decompressor, which cannot resume.
		err = c.deflate.src.err
		if c.deflate.src.cut {
			if c.deflate.takeoverIn {
				return n, &ProtocolError{StatusInternalError, "compressed message interrupted; its context is lost"}
			}
			c.msgBroken = true
			if c.rctx == nil || c.rctx.Err() == nil {
				// The decompressor handed out the output it held
				// first, to reads after the one that was cut: this
				// one finds the message abandoned.
				return n, errMessageBroken
			}
		}
		return n, err
	case err == io.ErrUnexpectedEOF && c.deflate.src.tail == 0:
		// The flush tail is consumed: the message is complete.
		return n, c.endMessage()
	case err == io.EOF:
		// A final deflate block ended the stream: at most the flush tail
		// may follow it.
		var scratch [8]byte
		extra := 0
		if b, ok := c.deflate.infl.(interface{ Buffered() int }); ok {
			extra = b.Buffered() // input it read ahead (FlateReader)
		}
		// The sender may have appended an empty stored block to the
		// final block (RFC 7692 §7.2.3.4): its header byte, then our tail.
		for extra <= len(deflateTail)+1 {
			m, rerr := c.deflate.src.Read(scratch[:])
			extra += m
			if rerr == io.EOF {
				break
			}
			if rerr != nil {
				return n, rerr
			}
		}
		if extra > len(deflateTail)+1 {
			return 0, &ProtocolError{StatusInvalidFramePayloadData, "data after the final deflate block"}
		}
		return n, c.endMessage()
	}
	return 0, &ProtocolError{StatusInvalidFramePayloadData, "invalid deflate data: " + err.Error()}
}

var errMessageBroken = errors.New("ws: compressed message abandoned after an interrupted read")

// inflateSource feeds the decompressor the payload of the compressed
// message's frames, then the flush tail the sender removed. It records the
// first error of the frames beneath.
type inflateSource struct {
	c *Conn
	// The compressed payload, taken whole from its frame by
	// takeCompressed: given before the frame, which it consumed.
	pending []byte
	tail    int // bytes of deflateTail still to give
	err     error
	cut     bool // err ended a read whose context had ended: not the connection's fault
	one     [1]byte
}

func (s *inflateSource) Read(p []byte) (int, error) {
	c := s.c
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	for c.frameLeft == 0 {
		if c.frame.fin {
			if s.tail > 0 {
				n := copy(p, deflateTail[len(deflateTail)-s.tail:])
				s.tail -= n
				return n, nil
			}
			return 0, io.EOF
		}
		h, err := c.nextDataFrame()
		if err == nil {
			err = c.continueMessage(h)
		}
		if err != nil {
			s.fail(err)
			return 0, err
		}
	}
	if int64(len(p)) > c.frameLeft {
		p = p[:c.frameLeft]
	}
	n, err := c.readPayload(p, 0)
	if err != nil {
		s.fail(err)
	}
	return n, err
}

// fail records err, the failure of the frames beneath, and whether it cut
// a read whose context ended. That is judged now: the decompressor returns
// the error only after the output it still holds, possibly to a later read
// with a fresh context.
func (s *inflateSource) fail(err error) {
	c := s.c
	s.err = err
	s.cut = errors.Is(err, os.ErrDeadlineExceeded) && c.rctx != nil && c.rctx.Err() != nil
}

// ReadByte makes inflateSource a flate.Reader, so the decompressor reads it
// directly, without a bufio.Reader of its own.
func (s *inflateSource) ReadByte() (byte, error) {
	c := s.c
	if c.frameLeft > 0 && c.buffered() > 0 {
		b := c.peek()[0]
		if c.frame.masked {
			b ^= c.frame.key[c.maskPos]
			c.maskPos = (c.maskPos + 1) & 3
		}
		c.discard(1)
		c.frameLeft--
		return b, nil
	}
	if len(s.pending) > 0 {
		b := s.pending[0]
		s.pending = s.pending[1:]
		return b, nil
	}
	for {
		n, err := s.Read(s.one[:])
		if n == 1 {
			return s.one[0], nil
		}
		if err != nil {
			return 0, err
		}
	}
}

// beginMessage starts a message with its first frame h.
func (c *Conn) beginMessage(h header) error {
	if h.op == opContinuation {
		return &ProtocolError{StatusProtocolError, "continuation frame with no message to continue"}
	}
	c.msgOpen = true
	c.msgText = h.op == opText
	c.msgLen = 0
	c.utf8.reset()
	c.msgCompressed = h.rsv&bitRSV1 != 0
	c.msgBroken = false
	if c.msgCompressed {
		c.deflate.msgOut = 0
		c.deflate.held = false
		c.deflate.src.tail = len(deflateTail)
		c.deflate.src.err, c.deflate.src.cut = nil, false
		c.deflate.src.pending = nil
		// The decompressor is taken at the first read (readInflated):
		// a message that passes through, checked by inflateTaken,
		// needs none.
	}
	return c.continueMessage(h)
}

// continueMessage accepts the next frame h of the open message.
func (c *Conn) continueMessage(h header) error {
	// A compressed message is held to the limit by its decompressed
	// size (readInflated), whatever its size on the wire.
	if limit := c.readLimit.Load(); limit >= 0 && !c.msgCompressed && h.length > limit-c.msgLen {
		return &ProtocolError{StatusMessageTooBig, fmt.Sprintf("message exceeds the read limit of %d bytes", limit)}
	}
	c.msgLen += h.length
	c.frame = h
	c.frameLeft = h.length
	c.maskPos = 0
	return nil
}

// partialRead is what an interrupted Read had read of the open message.
type partialRead struct {
	b   []byte
	typ MessageType
}

// partialRead returns what an interrupted Read left for the next one, or
// nil. The caller holds readMu.
func (c *Conn) partialRead() *partialRead {
	if r := c.rare.Load(); r != nil {
		return r.partial
	}
	return nil
}

// dropPartial forgets what an interrupted Read left, if anything. The
// caller holds readMu.
func (c *Conn) dropPartial() {
	if r := c.rare.Load(); r != nil {
		r.partial = nil
	}
}

// pendingPong returns the pong an interrupted read kept, or nil. The
// caller holds readMu.
func (c *Conn) pendingPong() *[]byte {
	if r := c.rare.Load(); r != nil {
		return r.pong
	}
	return nil
}

// nextDataFrame reads frame headers, handling every control frame on the
// way, until the header of a data frame, which it checks against the state
// of the connection.
func (c *Conn) nextDataFrame() (header, error) {
	if pong := c.pendingPong(); pong != nil {
		// The pong of a ping read by an interrupted call.
		if err := c.writePong(*pong); err != nil {
			return header{}, err
		}
		c.rare.Load().pong = nil
	}
	for {
		h, n, err := c.peekHeader()
		if err != nil {
			return header{}, err
		}
		if err := c.checkHeader(h); err != nil {
			return header{}, err
		}
		if h.op.isControl() {
			if err := c.controlFrame(h, n); err != nil {
				if _, ok := err.(CloseError); ok { // the peer's close frame
					err = c.closeByPeer(err)
				}
				return header{}, err
			}
			continue
		}
		if c.msgOpen && h.op != opContinuation {
			return header{}, &ProtocolError{StatusProtocolError, "new data frame inside a fragmented message"}
		}
		if !c.msgOpen && h.op == opContinuation {
			return header{}, &ProtocolError{StatusProtocolError, "continuation frame with no message to continue"}
		}
		c.discard(n)
		return h, nil
	}
}

// controlFrame reads and handles the control frame whose n-byte header h
// is buffered. (Apart from nextDataFrame, whose frame is then smaller: an
// idle connection waits below it.)
func (c *Conn) controlFrame(h header, n int) error {
	// The whole control frame is buffered before any of it is consumed,
	// so that an interrupted read loses nothing.
	if err := c.fill(n + int(h.length)); err != nil {
		return err
	}
	payload := c.peek()[n : n+int(h.length)]
	if h.masked {
		maskBytes(h.key, 0, payload)
	}
	c.discard(n + int(h.length))
	return c.handleControl(h.op, payload)
}

// checkHeader applies the rules that need no payload.
func (c *Conn) checkHeader(h header) error {
	rsv := h.rsv
	if c.deflate != nil && (h.op == opText || h.op == opBinary) {
		rsv &^= bitRSV1 // a compressed message (RFC 7692 §6)
	}
	switch {
	case rsv != 0:
		return &ProtocolError{StatusProtocolError, "reserved bits set without a negotiated extension"}
	case h.op.isReserved():
		return &ProtocolError{StatusProtocolError, fmt.Sprintf("reserved opcode %#x", byte(h.op))}
	case h.op.isControl() && h.length > maxControlPayload:
		return &ProtocolError{StatusProtocolError, "control frame payload longer than 125 bytes"}
	case h.op.isControl() && !h.fin:
		return &ProtocolError{StatusProtocolError, "fragmented control frame"}
	case !c.client && !h.masked:
		return &ProtocolError{StatusProtocolError, "unmasked frame from a client"}
	case c.client && h.masked:
		return &ProtocolError{StatusProtocolError, "masked frame from a server"}
	}
	return nil
}

// peekHeader parses the next frame header, reading as needed, without
// consuming it.
func (c *Conn) peekHeader() (header, int, error) {
	for {
		h, n, need, err := parseHeader(c.peek())
		if err != nil {
			return header{}, 0, &ProtocolError{StatusProtocolError, err.Error()}
		}
		if n > 0 {
			return h, n, nil
		}
		if err := c.fill(need); err != nil {
			return header{}, 0, err
		}
	}
}

// handleControl acts on a control frame.
func (c *Conn) handleControl(op opcode, payload []byte) error {
	switch op {
	case opPing:
		if c.cfg.onPing != nil {
			c.cfg.onPing(payload)
		}
		if err := c.writePong(payload); err != nil {
			if c.rctx != nil && c.rctx.Err() != nil && !c.isClosed() {
				// The read's ctx ended while the pong waited: the
				// ping is consumed, so keep its pong for the next read.
				pong := slices.Clone(payload)
				c.rareState().pong = &pong
			}
			return err
		}
	case opPong:
		c.gotPong(payload)
	case opClose:
		return c.peerClose(payload)
	}
	return nil
}

// peerClose parses the peer's close frame and returns its CloseError (or
// the *ProtocolError of a malformed one), on which nextDataFrame answers
// it and closes the connection (closeByPeer).
//
//go:noinline
func (c *Conn) peerClose(payload []byte) error {
	ce, pe := parseClosePayload(payload)
	if pe != nil {
		return pe
	}
	if ce.Code == StatusNormalClosure && ce.Reason == "" {
		return errNormalClosure // the usual close, as an error without an allocation
	}
	return ce
}

// closeByPeer acts on err, the peer's close frame's CloseError: it
// answers it unless this end sent its own first (answerPeer), closes the
// connection and returns err. It runs in nextDataFrame rather than in
// peerClose, three frames deeper, because it is the deepest call of a
// handler's read: it and what it calls keep small frames, the rare cases in
// functions of their own, so that the answer's write and net's and the
// poller's close stay within the goroutine's first 2 KiB stack. A stack
// that outgrows it is copied into a larger one, which cost more
// instructions than the rest of the close (counted with callgrind on
// Serve's handshake storm). (err is passed through so that it needs no room
// in nextDataFrame's frame during the call.)
//
//go:noinline
func (c *Conn) closeByPeer(err error) error {
	c.answerPeer(err.(CloseError))
	c.CloseNow()
	return err
}

// answerPeer records the peer's close ce and answers it, unless this end
// sent its own close frame first.
//
//go:noinline
func (c *Conn) answerPeer(ce CloseError) {
	r := c.rare.Load()
	if r == nil && ce.Reason != "" {
		r = c.rareState() // (before closeMu: it may allocate)
	}
	c.closeMu.Lock()
	c.peerCloseCode = uint16(ce.Code) // a code from the wire: 16 bits
	if r != nil {
		r.peerCloseReason = ce.Reason
	}
	echo := !c.closeSent
	c.closeSent = true
	if echo {
		c.cfg.stats.closed(ce.Code)
	}
	c.closeMu.Unlock()
	if echo && !c.answerCloseNow(ce.Code) {
		c.answerClose(ce.Code)
	}
}

// answerClose writes the close frame with code that answers the peer's,
// within the close timeout.
//
//go:noinline
func (c *Conn) answerClose(code StatusCode) {
	var b [2]byte
	p, _ := appendClosePayload(b[:0], code, "")
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout)
	c.logDropped("answering a close frame", c.writeFrame(ctx, opClose, true, p))
	cancel()
}

// answerCloseNow writes the close frame with code that answers the peer's
// if it can start at once: the frame lock is free, nothing kept waits to go
// before it, and the socket takes the frame in one direct write. Then no
// close timeout is needed (a context, its timer and the write deadline's
// watch: most of what a close costs besides the system calls). It reports
// whether it wrote the frame; if not, nothing was written and the caller
// writes it within the close timeout.
func (c *Conn) answerCloseNow(code StatusCode) bool {
	if !c.wl.tryLock(lockFrame) {
		return false
	}
	n := 0
	if !c.wclosed && c.outLen == 0 && !c.client {
		// A server's frame, unmasked, made here on the stack rather
		// than in a pooled buffer through frameHeader: fewer calls and
		// smaller frames at the bottom of the handler's stack.
		f := [4]byte{0x80 | byte(opClose), 2, byte(code >> 8), byte(code)}
		if code == StatusNoStatusRcvd {
			f[1] = 0 // the peer's close had no code: neither has the answer
		}
		frame := f[:2+f[1]]
		switch n = c.writeNow(frame); {
		case n == len(frame):
			c.noteWritten(opClose)
		case n > 0:
			c.answerCloseRest(frame[n:], n)
		}
	}
	c.unlock(lockFrame)
	return n > 0
}

// answerCloseRest writes rest, what the socket did not take of the close
// frame after written bytes, within the close timeout. The caller holds the
// frame lock.
//
//go:noinline
func (c *Conn) answerCloseRest(rest []byte, written int) {
	bp := getWriteBuf()
	b := append((*bp)[:0], rest...) // a copy: the frame stays on the caller's stack
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.closeTimeout)
	c.wdl.arm(c, ctx)
	m, err := c.send(b, false)
	c.logDropped("answering a close frame", c.writeError(ctx, int64(written+m), err, opClose))
	cancel()
	putWriteBuf(bp)
}

// errNormalClosure is CloseError{Code: StatusNormalClosure} as an error.
var errNormalClosure error = CloseError{Code: StatusNormalClosure}

// writePong answers a ping. A connection already closed is not an error of
// the read that handles the ping.
func (c *Conn) writePong(payload []byte) error {
	err := c.writeFrame(c.readContext(), opPong, true, payload)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return err
	}
	return nil
}

func (c *Conn) readContext() context.Context {
	if c.rctx != nil {
		return c.rctx
	}
	return context.Background()
}

// readPayload reads payload bytes of the current frame into p, which must be
// no longer than frameLeft, and unmasks them; the caller will wait for want
// bytes of p anyway (readLarge).
func (c *Conn) readPayload(p []byte, want int) (int, error) {
	var n int
	var err error
	switch {
	case c.buffered() > 0:
		n = c.take(p)
	case len(p) >= readBufSize:
		n, err = c.readLarge(p, want)
	default:
		if err = c.fill(1); err == nil {
			n = c.take(p)
		}
	}
	if c.frame.masked {
		c.maskPos = uint8(maskBytes(c.frame.key, int(c.maskPos), p[:n]))
	}
	c.frameLeft -= int64(n)
	if n > 0 && err != nil && c.frameLeft == 0 {
		err = nil // the frame is complete; the error will show on the next read
	}
	return n, err
}

// readError turns an error met while reading into the error to return. A
// read interrupted by the end of the read context (a read deadline, or a
// pong that waited for the write lock) leaves the connection usable; every
// other error ends it and sticks.
func (c *Conn) readError(err error) error {
	if err == errMessageBroken {
		return err // the abandoned message's, not the connection's
	}
	if c.rctx != nil && c.rctx.Err() != nil && !c.isClosed() &&
		(errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, c.rctx.Err())) {
		return c.rctx.Err()
	}
	return c.setReadErr(err)
}

// setReadErr records why the connection can no longer be read, failing it
// for a protocol violation, and returns that error.
func (c *Conn) setReadErr(err error) error {
	if _, ok := err.(CloseError); !ok {
		// The peer's close frame, the usual end, is the error itself:
		// only other errors need errors.As, whose targets are allocated.
		err = c.readFailed(err)
	}
	c.readErr = err
	c.msgOpen = false
	c.rdl.disarm(c)
	c.rctx = nil
	c.dropReadBuf()
	return err
}

// readFailed is setReadErr's for an error other than the peer's close: it
// fails the connection for a protocol violation, or closes it, and returns
// the error the reads will report.
func (c *Conn) readFailed(err error) error {
	var pe *ProtocolError
	var ce CloseError
	switch {
	case errors.As(err, &pe):
		err = c.fail(pe)
	case errors.As(err, &ce):
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		err = fmt.Errorf("%w: %w", CloseError{Code: StatusAbnormalClosure}, io.ErrUnexpectedEOF)
		c.CloseNow()
	default:
		c.closeMu.Lock()
		peerClosed := c.peerCloseCode != 0
		ce = CloseError{Code: StatusCode(c.peerCloseCode)}
		r := c.rare.Load()
		if r != nil {
			ce.Reason = r.peerCloseReason
		}
		c.closeMu.Unlock()
		switch {
		case peerClosed:
			err = ce
		case r != nil && r.ka != nil && r.ka.dead.Load():
			err = errKeepAlive
		case c.isClosed():
			err = errClosed
		default:
			err = fmt.Errorf("%w: %w", CloseError{Code: StatusAbnormalClosure}, err)
		}
		c.CloseNow()
	}
	return err
}

// isClosed reports whether the TCP connection has been closed (CloseNow).
func (c *Conn) isClosed() bool {
	p := c.closed.Load()
	if p == nil {
		return false
	}
	select {
	case <-*p:
		return true
	default:
		return false
	}
}
