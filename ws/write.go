package ws

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"unicode/utf8"
)

func opcodeOf(t MessageType) (opcode, error) {
	switch t {
	case Text:
		return opText, nil
	case Binary:
		return opBinary, nil
	}
	return 0, fmt.Errorf("ws: invalid message type %d", int(t))
}

// Write sends p as one message of type t, in a single frame. It is safe to
// call from any goroutine; ctx bounds the wait for the connection and the
// write itself. A write interrupted after part of its frame went out leaves
// the stream broken, so it closes the connection.
func (c *Conn) Write(ctx context.Context, t MessageType, p []byte) error {
	op, err := opcodeOf(t)
	if err != nil {
		return err
	}
	if err := c.lock(ctx, lockMsg); err != nil {
		return err
	}
	defer c.unlock(lockMsg)
	if c.deflate.compresses(len(p)) {
		c.mw.start(ctx, op)
		return c.mw.frame(p, true)
	}
	return c.writeFrame(ctx, op, true, p)
}

// Writer starts a message of type t and returns its stream: every Write
// leaves at once as a fragment (a frame with FIN unset; the first carries
// the message type, the rest are continuations), and Close sends the final
// frame. The writer also implements io.ReaderFrom, so io.Copy into it needs
// no extra buffer. Until Close, other data messages wait (control frames do
// not). ctx governs every write of the message. (In a browser, which sends
// whole messages only, the writes are gathered and the message leaves at
// Close, up to 32 MiB: see the package doc.) Once closed, the writer
// fails every call with an error (a second Close too) and touches nothing.
func (c *Conn) Writer(ctx context.Context, t MessageType) (io.WriteCloser, error) {
	op, err := opcodeOf(t)
	if err != nil {
		return nil, err
	}
	if err := c.lock(ctx, lockMsg); err != nil {
		return nil, err
	}
	c.mw.start(ctx, op)
	return (*msgWriter)(newHandle(c, c.wgen.Load())), nil
}

// msgWriter is the stream Writer returns: a handle on the Conn's message
// writer for one message, which fails with errWriterClosed once that
// message is closed (handle.go). A second Close, the usual deferred one
// after an explicit Close, so returns an error and touches nothing: it
// cannot end a message another goroutine has started since.
type msgWriter handle

func (w *msgWriter) stale() bool { return w.gen != w.c.wgen.Load() }

// Write sends p as one fragment.
func (w *msgWriter) Write(p []byte) (int, error) {
	if w.stale() {
		return 0, errWriterClosed
	}
	return w.c.mw.Write(p)
}

// ReadFrom sends what it reads from r, each read as one fragment.
func (w *msgWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.stale() {
		return 0, errWriterClosed
	}
	return w.c.mw.ReadFrom(r)
}

// Close sends the final frame and lets the next message go.
func (w *msgWriter) Close() error {
	if w.stale() {
		return errWriterClosed
	}
	return w.c.mw.Close()
}

// Send sends m, streaming its Body out as fragments as it is read; it makes
// Conn a wesos.Sink[Message]. A Body whose length is known (it has a Len
// method, like *bytes.Reader) and that fits a buffer leaves as a single
// frame; a Body that returns its last bytes together with io.EOF (as a
// received Message's Body does) ends the message with them, so an echoed
// single-frame message stays a single frame. If reading Body fails after
// part of the message went out, the message is ended with an empty final
// frame (the peer sees it cut short; a text message at a rune boundary) and
// the error is returned; if it fails before anything went out, nothing is
// sent.
func (c *Conn) Send(ctx context.Context, m Message) error {
	op, err := opcodeOf(m.Type)
	if err != nil {
		return err
	}
	if m.Body == nil {
		return c.Write(ctx, m.Type, nil)
	}
	if err := c.lock(ctx, lockMsg); err != nil {
		return err
	}
	c.mw.start(ctx, op)
	_, err = c.mw.copyFrom(m.Body, true)
	if err != nil && !c.mw.sent {
		// Nothing went out (a Body that failed on its first read, a
		// stale one): no message at all, rather than an empty one.
		c.mw.abandon()
		return err
	}
	if cerr := c.mw.Close(); err == nil {
		err = cerr
	}
	return err
}

// start readies w for a new message of opcode op. (Field by field: a
// composite literal would take a temporary in the caller's frame, which is
// under every write of Send; see copyFrom.)
func (w *messageWriter) start(ctx context.Context, op opcode) {
	w.ctx, w.op = ctx, op
	w.open, w.done, w.sent = true, false, false
	w.compress = false
}

// messageWriter is the stream of an outgoing message. There is one per Conn.
type messageWriter struct {
	c    *Conn
	ctx  context.Context
	op   opcode // the opcode of the next frame
	open bool   // Close not called yet
	done bool   // the final frame was sent
	sent bool   // at least one frame was sent

	compress bool // the message is compressed (decided on its first frame)
}

// frame sends p as the next frame of the message, compressed if the
// message is.
func (w *messageWriter) frame(p []byte, fin bool) error {
	c := w.c
	w.decide(len(p), fin)
	var err error
	if w.compress {
		err = w.compressed(p, fin)
	} else {
		err = c.writeFrame(w.ctx, w.op, fin, p)
	}
	if err != nil {
		return err
	}
	w.op = opContinuation
	w.sent = true
	w.done = fin
	return nil
}

// decide settles, on the first frame, whether the message is compressed: a
// whole message by the threshold, a streamed one (first frame not final)
// always, since its size is unknown.
func (w *messageWriter) decide(n int, fin bool) {
	if !w.sent {
		w.compress = w.c.deflate != nil && (!fin || w.c.deflate.compresses(n))
	}
}

// compressed sends p as a compressed frame: the first frame of the message
// carries RSV1 (RFC 7692 §6.1).
func (w *messageWriter) compressed(p []byte, fin bool) error {
	c := w.c
	d := c.deflate
	bp := getDeflateBuf()
	d.sw.b = (*bp)[:maxHeaderSize]
	var err error
	if d.msgW == nil {
		d.msgW, err = d.compressor(&d.sw)
	}
	if err == nil {
		err = appendCompressed(d.msgW, &d.sw, p, fin)
	}
	if (fin || err != nil) && d.msgW != nil {
		d.releaseCompressor(d.msgW)
		d.msgW = nil
	}
	var rsv byte
	if !w.sent {
		rsv = bitRSV1
	}
	if err == nil {
		err = c.writeFrameBuf(w.ctx, w.op, rsv, fin, d.sw.b)
	}
	putDeflateBuf(bp, d.sw.b)
	d.sw.b = nil
	if err != nil && d.keepsContext() {
		// The peer will never see what the compressor took in: the
		// shared context is lost.
		c.CloseNow()
	}
	return err
}

// Write sends p as one fragment.
func (w *messageWriter) Write(p []byte) (int, error) {
	if !w.open || w.done {
		return 0, errWriterClosed
	}
	if len(p) == 0 {
		return 0, nil
	}
	if err := w.frame(p, false); err != nil {
		return 0, err
	}
	return len(p), nil
}

// ReadFrom sends what it reads from r, each read as one fragment.
func (w *messageWriter) ReadFrom(r io.Reader) (int64, error) {
	if !w.open || w.done {
		return 0, errWriterClosed
	}
	return w.copyFrom(r, false)
}

// copyFrom sends what it reads from r, each read as one frame assembled in
// place in a pooled buffer. With final set, a read that returns data
// together with io.EOF sends that data as the final frame.
//
// copyFrom and what it calls are kept in small frames: they are under
// every write of an echoing handler, whose goroutine keeps its first 2 KiB
// stack (for its whole idle life) only while the deepest call fits in it.
func (w *messageWriter) copyFrom(r io.Reader, final bool) (int64, error) {
	mr, _ := r.(*messageReader)
	if final && !w.sent {
		if mr != nil && w.c.deflate != nil {
			if n, ok, err := w.passThrough(mr); ok {
				return n, err
			}
		}
		// A received Body has no Len: the relay of every echoed message
		// skips the interface assertion.
		if mr == nil {
			if n, ok, err := w.copyKnown(r); ok {
				return n, err
			}
		}
	}
	var bp *[]byte
	if mr != nil && w.c.deflate == nil && mr.frameLeftOver(relayBufSize-maxHeaderSize) {
		bp = getLargeRelayBuf()
	}
	if bp == nil {
		bp = getRelayBuf()
	}
	// The buffer goes back without a defer (a panic loses it to the GC):
	// this frame is under every write.
	buf := *bp
	var total int64
	text := final && w.op == opText && !w.sent
	carry := 0 // the start of a rune held back from the last frame
	for {
		n, rerr := readChunk(r, buf[maxHeaderSize+carry:])
		n += carry
		fin := final && rerr == io.EOF
		if carry = 0; text && !fin {
			// A text frame does not end inside a rune: if the message
			// breaks off here, what its receiver got is valid UTF-8.
			carry = incompleteRune(buf[maxHeaderSize : maxHeaderSize+n])
			n -= carry
		}
		if n > 0 || fin {
			w.decide(n, fin)
			var err error
			if w.compress {
				err = w.frame(buf[maxHeaderSize:maxHeaderSize+n], fin)
			} else if err = w.c.writeFrameBuf(w.ctx, w.op, 0, fin, buf[:maxHeaderSize+n]); err == nil {
				w.op = opContinuation
				w.sent = true
				w.done = fin
			}
			if err != nil {
				if rerr != nil && rerr != io.EOF {
					// The read that returned these bytes failed first,
					// and may be why the write did: a received Body
					// whose read fails the connection has closed it.
					err = rerr
				}
				putAnyRelayBuf(bp)
				return total, err
			}
			total += int64(n)
		}
		if rerr != nil {
			putAnyRelayBuf(bp)
			if rerr == io.EOF {
				rerr = nil
			}
			return total, rerr
		}
		copy(buf[maxHeaderSize:], buf[maxHeaderSize+n:maxHeaderSize+n+carry])
	}
}

// passThrough relays a received compressed message of one frame as it
// came, if this connection's peer can decode its compressed bytes
// (deflateState.passes): as one final frame with RSV1 set and the same
// payload. The message is decompressed only to check it, as a read would
// (the read limit, UTF-8, the deflate data), into a scratch buffer, so
// that compressing it again is saved: by the package's own decoder
// (inflateTaken), which is faster than a streaming one, or, for what it
// leaves undecided (an error above all), by the reads. A message shorter than the
// threshold leaves uncompressed, as any other would, if the scratch
// buffer held it whole. ok reports whether it relayed the message, or
// failed trying with err (then nothing went out).
//
//go:noinline
func (w *messageWriter) passThrough(mr *messageReader) (int64, bool, error) {
	bp, n, ok, err := mr.takeCompressed(w.c.deflate)
	if !ok {
		return 0, false, nil
	}
	buf := *bp
	var sp *[]byte
	var total int64
	var plain []byte // with room for a frame header before it
	f := getInflater()
	if err == nil {
		var done bool
		if total, plain, done = mr.inflateTaken(f, n); !done {
			sp = getWriteBuf()
			total, plain, err = drainMessage(mr, (*sp)[maxHeaderSize:])
			if plain != nil {
				plain = (*sp)[:maxHeaderSize+len(plain)]
			}
		}
	}
	mr.dropCompressed()
	if err == nil {
		frame, rsv := buf[:maxHeaderSize+n], byte(bitRSV1)
		if plain != nil && !w.c.deflate.compresses(len(plain)-maxHeaderSize) {
			frame, rsv = plain, 0
		}
		if err = w.c.writeFrameBuf(w.ctx, w.op, rsv, true, frame); err == nil {
			w.sent, w.done = true, true
		}
	}
	if sp != nil {
		putWriteBuf(sp)
	}
	putInflater(f)
	putRelayBuf(bp)
	return total, true, err
}

// drainMessage reads the rest of mr's message, checking it, into keep,
// over and over, and returns how many bytes it read and, if keep held
// them all, those bytes.
func drainMessage(mr *messageReader, keep []byte) (int64, []byte, error) {
	var total int64
	n, whole := 0, true
	for {
		if n == len(keep) {
			n, whole = 0, false
		}
		m, err := mr.read(keep[n:], 0)
		n += m
		total += int64(m)
		if err == io.EOF {
			if !whole {
				return total, nil, nil
			}
			return total, keep[:n], nil
		}
		if err != nil {
			return total, nil, err
		}
	}
}

// incompleteRune returns how many bytes at the end of p start a UTF-8
// sequence that p does not complete: 0 to 3.
func incompleteRune(p []byte) int {
	for i := len(p) - 1; i >= 0 && i > len(p)-utf8.UTFMax; i-- {
		if utf8.RuneStart(p[i]) {
			if utf8.FullRune(p[i:]) {
				return 0
			}
			return len(p) - i
		}
	}
	return 0
}

// copyKnown sends a whole body whose length it can learn as one frame, if
// it can (ok).
//
//go:noinline
func (w *messageWriter) copyKnown(r io.Reader) (int64, bool, error) {
	l, ok := r.(interface{ Len() int })
	if !ok {
		return 0, false, nil
	}
	// A body that fits one buffer leaves as a single frame.
	if n := l.Len(); n <= writeBufSize-maxHeaderSize {
		n, err := w.copySmall(r, n)
		return n, true, err
	}
	// A larger body that hands out its bytes in place (bytes.Reader,
	// strings.Reader, bytes.Buffer: their WriteTo makes one Write) leaves
	// as a single frame too, without a copy.
	if wt, ok := r.(io.WriterTo); ok {
		n, err := wt.WriteTo(&lengthWriter{w: w, left: l.Len()})
		return n, true, err
	}
	return 0, false, nil
}

// copySmall sends the n bytes of r as the final frame of the message.
func (w *messageWriter) copySmall(r io.Reader, n int) (int64, error) {
	bp := getWriteBuf()
	defer putWriteBuf(bp)
	n, err := io.ReadFull(r, (*bp)[maxHeaderSize:maxHeaderSize+n])
	if err != nil {
		return int64(n), err
	}
	p := (*bp)[:maxHeaderSize+n]
	if w.c.deflate.compresses(n) {
		return int64(n), w.frame(p[maxHeaderSize:], true)
	}
	if err := w.c.writeFrameBuf(w.ctx, w.op, 0, true, p); err != nil {
		return 0, err
	}
	w.sent, w.done = true, true
	return int64(n), nil
}

// lengthWriter sends the writes of a body whose length is known, each as a
// frame; the one that completes the length is the final frame.
type lengthWriter struct {
	w    *messageWriter
	left int
}

func (lw *lengthWriter) Write(p []byte) (int, error) {
	if len(p) > lw.left {
		return 0, errors.New("ws: body longer than its Len")
	}
	if err := lw.w.frame(p, len(p) == lw.left); err != nil {
		return 0, err
	}
	lw.left -= len(p)
	return len(p), nil
}

// readChunk reads the next chunk of a body to send; a received message's
// Body is read a whole frame at a time where it fits.
func readChunk(r io.Reader, p []byte) (int, error) {
	if mr, ok := r.(*messageReader); ok {
		return mr.readFrame(p)
	}
	return r.Read(p)
}

// Close sends the final frame (empty, since every Write left as a fragment)
// and lets the next message go. If the writer's context has ended, the final
// frame still goes out within the close timeout; if it cannot, the stream is
// broken and the connection is closed.
func (w *messageWriter) Close() error {
	if !w.open {
		return errWriterClosed
	}
	w.open = false
	c := w.c
	defer c.unlock(lockMsg)
	c.wgen.Add(1) // the handles on this message go stale
	if w.done {
		return nil
	}
	ctx := w.ctx
	if ctx.Err() != nil && w.sent {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), c.cfg.closeTimeout)
		defer cancel()
	}
	w.ctx = ctx
	err := w.frame(nil, true)
	if err != nil && w.sent {
		c.CloseNow()
	}
	w.done = true
	return err
}

// abandon ends a message of which no frame went out, sending nothing.
func (w *messageWriter) abandon() {
	w.open = false
	if d := w.c.deflate; d != nil && d.msgW != nil {
		d.releaseCompressor(d.msgW)
		d.msgW = nil
	}
	w.c.wgen.Add(1)
	w.c.unlock(lockMsg)
}

// writeFrame sends one frame with payload p, which it does not modify.
func (c *Conn) writeFrame(ctx context.Context, op opcode, fin bool, p []byte) error {
	if len(p) > writeBufSize-maxHeaderSize {
		return c.writeLarge(ctx, op, fin, p)
	}
	bp := getWriteBuf()
	err := c.writeFrameBuf(ctx, op, 0, fin, append((*bp)[:maxHeaderSize], p...))
	putWriteBuf(bp)
	return err
}

// writeLarge sends p as one frame, without copying it on the server side.
func (c *Conn) writeLarge(ctx context.Context, op opcode, fin bool, p []byte) error {
	if err := c.lock(ctx, lockFrame); err != nil {
		return err
	}
	defer c.unlock(lockFrame)
	if c.wclosed {
		return errClosed
	}
	h := header{fin: fin, op: op, length: int64(len(p)), masked: c.client}
	if c.client {
		return c.writeMaskedLocked(ctx, h, p)
	}
	if err := c.flushLocked(ctx); err != nil {
		return err
	}
	v := frameVecPool.Get().(*frameVec)
	defer frameVecPool.Put(v)
	hn := putHeader(v.hdr[:], h)
	v.bufs[0], v.bufs[1] = v.hdr[:hn], p
	v.vec = v.bufs[:]
	c.wdl.arm(c, ctx)
	n, err := c.writeVec(&v.vec)
	v.bufs[1] = nil
	if err = c.writeError(ctx, n, err, op); err == nil && c.cfg.stats != nil {
		c.countWritten(op, fin, len(p))
	}
	return err
}

// frameVec is the header and the two-buffer vector of a large frame written
// with one writev; pooled rather than kept in every Conn.
type frameVec struct {
	hdr  [maxHeaderSize]byte
	bufs [2][]byte
	vec  net.Buffers // bufs, as WriteTo consumes them
}

var frameVecPool = sync.Pool{New: func() any { return new(frameVec) }}

// writeMaskedLocked sends a large client frame, masking the payload through
// pooled buffers so that the caller's bytes stay untouched.
func (c *Conn) writeMaskedLocked(ctx context.Context, h header, p []byte) error {
	if err := c.flushLocked(ctx); err != nil {
		return err
	}
	c.maskKey(&h)
	bp := getWriteBuf()
	defer putWriteBuf(bp)
	buf := *bp
	hn := putHeader(buf, h)
	c.wdl.arm(c, ctx)
	var written int64
	pos, off := 0, hn
	for len(p) > 0 || off > 0 {
		n := copy(buf[off:], p)
		p = p[n:]
		pos = maskBytes(h.key, pos, buf[off:off+n])
		m, err := c.writeConn(buf[:off+n])
		written += int64(m)
		if err != nil {
			return c.writeError(ctx, written, err, h.op)
		}
		off = 0
	}
	return c.noteWritten(h.op)
}

// writeFrameBuf sends one frame assembled in b: b[:maxHeaderSize] is room
// for the header and b[maxHeaderSize:] is the payload, which is masked in
// place on the client side.
func (c *Conn) writeFrameBuf(ctx context.Context, op opcode, rsv byte, fin bool, b []byte) error {
	if err := c.lock(ctx, lockFrame); err != nil {
		return err
	}
	// No defer, and the header made by a call that returns first: this
	// frame is under every small write (see copyFrom).
	err := errClosed
	if !c.wclosed {
		err = c.emit(ctx, op, c.frameHeader(op, rsv, fin, b))
	}
	c.unlock(lockFrame)
	if err == nil && c.cfg.stats != nil {
		c.countWritten(op, fin, len(b)-maxHeaderSize)
	}
	return err
}

// countWritten counts a data frame with n bytes of payload written for the
// Server's statistics; a final one ends a message.
//
//go:noinline
func (c *Conn) countWritten(op opcode, fin bool, n int) {
	if op.isControl() {
		return
	}
	msgs := 0
	if fin {
		msgs = 1
	}
	c.cfg.stats.wrote(c, msgs, n)
}

// frameHeader puts the header of the frame whose payload is
// b[maxHeaderSize:] right before it, masking the payload on the client side,
// and returns the frame. The caller holds the frame lock.
//
//go:noinline
func (c *Conn) frameHeader(op opcode, rsv byte, fin bool, b []byte) []byte {
	p := b[maxHeaderSize:]
	h := header{fin: fin, rsv: rsv, op: op, length: int64(len(p)), masked: c.client}
	if c.client {
		c.maskKey(&h)
		maskBytes(h.key, 0, p)
	}
	start := maxHeaderSize - headerSize(h)
	putHeader(b[start:], h)
	return b[start:]
}

// writeRaw sends bytes that already form whole frames (a broadcast frame
// encoded once for many connections). The caller holds the message lock if the bytes
// are part of a data message.
func (c *Conn) writeRaw(ctx context.Context, b []byte) error {
	if err := c.lock(ctx, lockFrame); err != nil {
		return err
	}
	defer c.unlock(lockFrame)
	if c.wclosed {
		return errClosed
	}
	return c.emit(ctx, opBinary, b)
}

// writeBuffers sends bytes that already form whole frames, from several
// buffers, in one write (broadcast messages queued for this connection).
// The caller holds the message lock.
func (c *Conn) writeBuffers(ctx context.Context, bufs *net.Buffers) error {
	if len(*bufs) == 1 {
		return c.writeRaw(ctx, (*bufs)[0])
	}
	if err := c.lock(ctx, lockFrame); err != nil {
		return err
	}
	defer c.unlock(lockFrame)
	if c.wclosed {
		return errClosed
	}
	if err := c.flushLocked(ctx); err != nil {
		return err
	}
	c.wdl.arm(c, ctx)
	n, err := c.writeVec(bufs)
	return c.writeError(ctx, n, err, opBinary)
}

func (c *Conn) maskKey(h *header) {
	binary.LittleEndian.PutUint32(h.key[:], uint32(c.rare.Load().rng.Uint64()))
}

// writeError turns the result of a frame write into the error to return. A
// write stopped by ctx before any byte left keeps the connection usable; a
// frame cut in the middle breaks the stream, so the connection is closed.
func (c *Conn) writeError(ctx context.Context, written int64, err error, op opcode) error {
	if err == nil {
		return c.noteWritten(op)
	}
	if c.isClosed() {
		return errClosed
	}
	if ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) && written == 0 {
		return ctx.Err()
	}
	return c.breakWrite(ctx, err)
}

// breakWrite closes the connection after a write that failed with part of
// the stream sent (or for good), and returns the error to report.
func (c *Conn) breakWrite(ctx context.Context, err error) error {
	c.CloseNow()
	if ctx.Err() != nil {
		return fmt.Errorf("ws: write interrupted mid-frame, connection closed: %w", ctx.Err())
	}
	return fmt.Errorf("ws: write: %w", err)
}

// noteWritten records a close frame; nothing may follow it, so writers
// queued for the message lock give up. The caller holds the frame lock.
func (c *Conn) noteWritten(op opcode) error {
	if op == opClose {
		c.wclosed = true
		c.wl.abort(lockMsg)
	}
	return nil
}
