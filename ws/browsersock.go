package ws

// The transport of a Conn in a browser: browserSock is a net.Conn over the
// browser's WebSocket object (browserWS, bound with syscall/js in
// browser_js.go), under the same protocol layer (Conn) as a TCP
// connection. The browser does the framing on the wire; browserSock
// translates between its whole messages and the frames Conn reads and
// writes:
//
//   - Each message the browser receives is queued (JavaScript's event loop
//     must never wait for Go) and read by Conn as one unmasked final frame;
//     the close event becomes the peer's close frame, or the end of the
//     stream when the browser saw none.
//   - The masked frames Conn writes are parsed back: a data message is
//     gathered until its final frame and handed to send; the close frame
//     becomes close(code, reason). The browser answers pings itself and
//     never shows them, so Conn never has pongs to send, and it cannot send
//     a ping: Conn.Ping asks pingError first.
//
// Nothing here uses syscall/js, so the tests run it natively over a fake
// browserWS (browsersock_test.go).

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"
)

const (
	// browserQueueLen and browserQueueBytes bound what a connection
	// holds of received messages it was not read: past either, the
	// connection is closed and its reads end, after the queued messages,
	// with errBrowserQueueFull. A message is always queued when it is
	// the only one, whatever its size: the read limit judges it.
	browserQueueLen   = 1 << 14
	browserQueueBytes = 64 << 20

	// browserMaxGathered is the largest message written in several
	// fragments (Writer) that the connection sends: the browser sends
	// whole messages only, so the fragments are gathered until the last.
	browserMaxGathered = 32 << 20

	// browserSendBuffer is how much the browser may hold unsent
	// (bufferedAmount) before a data frame waits for it to drain.
	browserSendBuffer = 4 << 20
)

var errBrowserQueueFull = fmt.Errorf("ws: more than %d messages or %d MiB received and not read: the browser's WebSocket was closed", browserQueueLen, browserQueueBytes>>20)

// browserEvent is a received message (text, or data, binary) or, if
// isClose, the peer's close frame.
type browserEvent struct {
	data    browserBytes
	text    string
	isText  bool
	size    int64 // the message's bytes
	isClose bool
	code    StatusCode // StatusNoStatusRcvd: a close frame without a code
	reason  string
}

// browserWS is what browserSock uses of the browser's WebSocket object:
// browser_js.go binds it with syscall/js, and the tests have a fake.
type browserWS interface {
	readyState() int       // 0 connecting, 1 open, 2 closing, 3 closed
	bufferedAmount() int64 // bytes sent and not yet on the wire
	protocol() string      // the subprotocol the server chose
	extensions() string    // the extensions the browser negotiated
	send(text bool, p []byte) error
	// close asks for the close handshake; code 0 sends a close frame
	// without a code.
	close(code StatusCode, reason string) error
	// release stops the events and frees what delivers them.
	release()
}

// browserBytes is a received binary message, which the browser holds until
// it is read.
type browserBytes interface {
	len() int
	copyTo(p []byte, off int) int // copies the bytes from off to p
}

// browserSock is a net.Conn over a browser's WebSocket. The WebSocket's
// events call opened, received and peerClosed, which never wait: they run
// in JavaScript's event loop, which must not wait for Go.
type browserSock struct {
	ws         browserWS
	url        string
	open       chan struct{} // closed by the open event
	onceOpened sync.Once

	// Guarded by mu, which is never held across a wait or a call into
	// JavaScript, so the event callbacks never wait for it.
	mu     sync.Mutex
	queue  []browserEvent
	qbytes int64
	ended  bool  // nothing more will be queued: the close event came, or the queue overflowed
	endErr error // what reads return once the queue is empty and ended
	closed bool  // Close was called

	notify chan struct{} // capacity 1: something was queued, or the stream ended
	done   chan struct{} // closed by Close
	rdl    pipeDeadline
	wdl    pipeDeadline

	// The frame being read out (the reader's, under Conn's read lock):
	// its header, then its payload: pay (a binary message, held by the
	// browser) or str (text, or a close frame's payload).
	hbuf   [maxHeaderSize]byte
	hdr    []byte
	pay    browserBytes
	payOff int
	payLen int
	str    string

	// The frames being written, parsed back (under wmu).
	wmu   sync.Mutex
	wh    [maxHeaderSize]byte // a header's bytes received so far
	whn   int
	fh    header // the frame whose payload is being received
	inFr  bool   // fh is current
	left  int64  // fh's payload bytes still to come
	mpos  int    // the masking key position
	msgOp opcode // the data message being gathered (opText or opBinary), or 0
	msg   []byte // its payload so far, unmasked
	wctl  []byte // a control frame's payload, unmasked
}

// newBrowserSock returns a browserSock for url, whose ws is still to be
// set.
func newBrowserSock(url string) *browserSock {
	return &browserSock{
		url:    url,
		open:   make(chan struct{}),
		notify: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
}

// opened is the open event.
func (s *browserSock) opened() { s.onceOpened.Do(func() { close(s.open) }) }

// received queues a received message, e (not a close).
func (s *browserSock) received(e browserEvent) {
	s.mu.Lock()
	if s.ended || s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.queue) > 0 && (len(s.queue) >= browserQueueLen || s.qbytes+e.size > browserQueueBytes) {
		s.ended, s.endErr = true, errBrowserQueueFull
		s.mu.Unlock()
		s.closeBrowser()
		s.wake()
		return
	}
	s.queue = append(s.queue, e)
	s.qbytes += e.size
	s.mu.Unlock()
	s.wake()
}

// peerClosed is the close event: it ends the queue with the peer's close
// frame, if the browser saw one (1005 is a close frame without a code;
// 1006 and 1015 are none).
func (s *browserSock) peerClosed(code StatusCode, reason string) {
	s.mu.Lock()
	if !s.ended {
		s.ended, s.endErr = true, io.EOF
		if code != StatusAbnormalClosure && code != StatusTLSHandshake {
			s.queue = append(s.queue, browserEvent{isClose: true, code: code, reason: reason})
		}
	}
	s.mu.Unlock()
	s.wake()
}

func (s *browserSock) wake() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// hasEnded reports whether nothing more will be queued.
func (s *browserSock) hasEnded() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended
}

// Read hands out the queued messages as frames. It waits only when it has
// nothing to return.
func (s *browserSock) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case len(s.hdr) > 0:
			k := copy(p[n:], s.hdr)
			s.hdr = s.hdr[k:]
			n += k
		case len(s.str) > 0:
			k := copy(p[n:], s.str)
			s.str = s.str[k:]
			n += k
		case s.payOff < s.payLen:
			k := s.pay.copyTo(p[n:], s.payOff)
			s.payOff += k
			n += k
			if s.payOff == s.payLen {
				s.pay = nil // the message's memory is the browser's to free
			}
		default:
			e, ok, err := s.pop(n == 0)
			if err != nil || !ok {
				if n > 0 {
					return n, nil
				}
				return 0, err
			}
			s.load(e)
		}
	}
	return n, nil
}

// pop takes the next queued event. Unless wait, it returns ok false at once
// when there is none.
func (s *browserSock) pop(wait bool) (e browserEvent, ok bool, err error) {
	for {
		s.mu.Lock()
		switch {
		case s.closed:
			s.mu.Unlock()
			return e, false, net.ErrClosed
		case len(s.queue) > 0:
			e = s.queue[0]
			s.queue[0] = browserEvent{}
			s.queue = s.queue[1:]
			s.qbytes -= e.size
			s.mu.Unlock()
			return e, true, nil
		case s.ended:
			err = s.endErr
			s.mu.Unlock()
			return e, false, err
		}
		s.mu.Unlock()
		if !wait {
			return e, false, nil
		}
		select {
		case <-s.notify:
		case <-s.done:
		case <-s.rdl.wait():
			return e, false, os.ErrDeadlineExceeded
		}
	}
}

// load makes e the frame that Read hands out.
func (s *browserSock) load(e browserEvent) {
	h := header{fin: true}
	switch {
	case e.isClose:
		h.op, s.str = opClose, ""
		if e.code != StatusNoStatusRcvd {
			s.str = string(binary.BigEndian.AppendUint16(nil, uint16(e.code))) + e.reason
		}
		h.length = int64(len(s.str))
	case e.isText:
		h.op, s.str, h.length = opText, e.text, int64(len(e.text))
	default:
		h.op = opBinary
		s.pay = e.data
		s.payOff, s.payLen = 0, e.data.len()
		h.length = int64(s.payLen)
	}
	s.hdr = s.hbuf[:putHeader(s.hbuf[:], h)]
}

// Write parses the frames Conn writes and does what they say.
func (s *browserSock) Write(p []byte) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.isClosed() {
		return 0, net.ErrClosed
	}
	// A data frame waits, before any of it is taken, while the browser
	// holds too much unsent: the browser's send never refuses, and the
	// write deadline (a write's ctx) can still stop the frame cleanly.
	if !s.inFr && s.whn == 0 && len(p) > 0 && isData(opcode(p[0]&0x0F)) {
		if err := s.waitRoom(); err != nil {
			return 0, err
		}
	}
	n := 0
	for {
		if !s.inFr {
			k, err := s.parseHeader(p[n:])
			n += k
			if err != nil || !s.inFr {
				return n, err
			}
		}
		k := int(min(s.left, int64(len(p)-n)))
		if k > 0 {
			s.unmaskInto(p[n : n+k])
			n += k
			s.left -= int64(k)
		}
		if s.left > 0 {
			return n, nil
		}
		s.inFr = false
		if err := s.endFrame(); err != nil {
			return n, err
		}
		if n == len(p) {
			return n, nil
		}
	}
}

func isData(op opcode) bool { return op == opText || op == opBinary || op == opContinuation }

// parseHeader takes bytes of a frame header from p, up to the end of the
// header, and starts the frame once it is whole.
func (s *browserSock) parseHeader(p []byte) (int, error) {
	n := 0
	for {
		h, hn, need, err := parseHeader(s.wh[:s.whn])
		if err != nil {
			return n, err
		}
		if hn > 0 {
			s.whn = 0
			return n, s.startFrame(h)
		}
		if n == len(p) {
			return n, nil
		}
		k := copy(s.wh[s.whn:need], p[n:])
		s.whn += k
		n += k
	}
}

func (s *browserSock) startFrame(h header) error {
	if !h.masked || h.rsv != 0 {
		return errors.New("ws: browser: a frame from Conn that is not a plain masked frame")
	}
	switch h.op {
	case opText, opBinary:
		if s.msgOp != 0 {
			return errors.New("ws: browser: a data message began inside another")
		}
		s.msgOp = h.op
	case opContinuation:
		if s.msgOp == 0 {
			return errors.New("ws: browser: a continuation frame outside a message")
		}
	case opPing:
		return pingUnsupported
	case opClose, opPong:
		s.wctl = s.wctl[:0]
	default:
		return fmt.Errorf("ws: browser: a frame with opcode %d from Conn", h.op)
	}
	if isData(h.op) && (h.op == opContinuation || !h.fin) && int64(len(s.msg))+h.length > browserMaxGathered {
		return fmt.Errorf("%w: a message written in fragments is sent whole by the browser, and is limited to %d MiB", ErrUnsupported, browserMaxGathered>>20)
	}
	s.fh, s.inFr, s.left, s.mpos = h, true, h.length, 0
	return nil
}

// unmaskInto appends payload bytes of the current frame, unmasked, to the
// message or control payload being gathered.
func (s *browserSock) unmaskInto(b []byte) {
	dst := &s.msg
	if !isData(s.fh.op) {
		dst = &s.wctl
	}
	old := len(*dst)
	*dst = append(*dst, b...)
	s.mpos = maskBytes(s.fh.key, s.mpos, (*dst)[old:])
}

// endFrame acts on a frame received whole.
func (s *browserSock) endFrame() error {
	switch {
	case s.fh.op == opClose:
		return s.closeWith(s.wctl)
	case s.fh.op == opPong:
		return nil // the browser answers pings itself: there are none for Conn to answer
	case !s.fh.fin:
		return nil
	}
	op, msg := s.msgOp, s.msg
	s.msgOp = 0
	if cap(s.msg) > 64<<10 {
		s.msg = nil
	} else {
		s.msg = s.msg[:0]
	}
	if s.ws.readyState() != 1 {
		return fmt.Errorf("ws: browser: the WebSocket is closing: %w", net.ErrClosed)
	}
	return s.ws.send(op == opText, msg)
}

// closeWith asks the browser to close with the close frame's payload p.
func (s *browserSock) closeWith(p []byte) error {
	if s.ws.readyState() >= 2 { // closing or closed
		return nil // the browser closes already (and answered the peer's close frame itself)
	}
	if len(p) < 2 {
		s.closeBrowser()
		return nil
	}
	code, reason := StatusCode(binary.BigEndian.Uint16(p)), string(p[2:])
	if code != StatusNormalClosure && (code < 3000 || code > 4999) {
		s.closeBrowser()
		return fmt.Errorf("%w: the browser sends close codes 1000 and 3000–4999 only, not %d: closed without a code", ErrUnsupported, code)
	}
	if s.ws.close(code, reason) != nil {
		// A reason the browser finds too long (invalid UTF-8 grows
		// when replaced): the code alone.
		return s.ws.close(code, "")
	}
	return nil
}

// waitRoom waits while the browser holds more than browserSendBuffer
// unsent, polling bufferedAmount (no event tells when it drains).
func (s *browserSock) waitRoom() error {
	wait := time.Millisecond
	for s.ws.bufferedAmount() > browserSendBuffer {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-s.done:
			t.Stop()
			return net.ErrClosed
		case <-s.wdl.wait():
			t.Stop()
			return os.ErrDeadlineExceeded
		}
		wait = min(2*wait, 50*time.Millisecond)
	}
	return nil
}

// pingUnsupported is what Conn.Ping returns in a browser.
var pingUnsupported = fmt.Errorf("%w: the browser sends no pings (it answers the peer's itself)", ErrUnsupported)

// pingError tells Conn.Ping that this transport cannot send a ping.
func (s *browserSock) pingError() error { return pingUnsupported }

func (s *browserSock) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// closeBrowser asks the browser to close the WebSocket (with a close frame
// without a code), unless it is closing already.
func (s *browserSock) closeBrowser() {
	if s.ws.readyState() < 2 {
		s.ws.close(0, "")
	}
}

// Close ends the connection: the browser finishes the close handshake by
// itself (it cannot drop the connection without one), and the event
// handlers are released.
func (s *browserSock) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.queue, s.qbytes = nil, 0
	s.mu.Unlock()
	close(s.done)
	s.closeBrowser()
	s.ws.release()
	return nil
}

// browserAddr is the address of either end of a browser's WebSocket.
type browserAddr string

func (a browserAddr) Network() string { return "websocket" }
func (a browserAddr) String() string  { return string(a) }

func (s *browserSock) LocalAddr() net.Addr  { return browserAddr("browser") }
func (s *browserSock) RemoteAddr() net.Addr { return browserAddr(s.url) }

func (s *browserSock) SetDeadline(t time.Time) error {
	s.rdl.set(t)
	s.wdl.set(t)
	return nil
}

func (s *browserSock) SetReadDeadline(t time.Time) error  { s.rdl.set(t); return nil }
func (s *browserSock) SetWriteDeadline(t time.Time) error { s.wdl.set(t); return nil }

// pipeDeadline is a deadline for waits on channels: wait returns a channel
// that is closed once the deadline has passed.
type pipeDeadline struct {
	mu    sync.Mutex
	gen   uint64 // counts set calls: a timer of an earlier one does nothing
	ch    chan struct{}
	timer *time.Timer
}

func (d *pipeDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.gen++
	if d.timer != nil {
		d.timer.Stop()
		d.timer = nil
	}
	if d.ch == nil || isClosedChan(d.ch) {
		d.ch = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	wait := time.Until(t)
	if wait <= 0 {
		close(d.ch)
		return
	}
	gen, ch := d.gen, d.ch
	d.timer = time.AfterFunc(wait, func() {
		d.mu.Lock()
		if d.gen == gen {
			close(ch)
		}
		d.mu.Unlock()
	})
}

func (d *pipeDeadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ch == nil {
		d.ch = make(chan struct{})
	}
	return d.ch
}

func isClosedChan(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
