package ws_test

// Cases of the Autobahn|Testsuite fuzzingserver, replayed against a client
// from ws.Dial: a raw TCP server here does the opening handshake by hand
// and sends the frames of the suite's cases, while the client echoes every
// message, as the suite's test clients do. Each case checks what the client
// put on the wire (its echoes and pongs, masked; the close code with which
// it fails or answers the connection) and the error its Read returned.

import (
	"bufio"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wesos/wesos/ws"
)

// fzPause is a pause of a case (the suite waits 1 s; loopback answers in
// well under a millisecond).
const fzPause = 150 * time.Millisecond

// fzWait bounds every wait of these tests.
const fzWait = 5 * time.Second

// fzFrame is a frame as the raw server sends it or reads it.
type fzFrame struct {
	fin     bool
	rsv     byte // the RSV bits in place (0x40, 0x20, 0x10)
	op      byte
	masked  bool // sent masked (which a server must not do)
	payload []byte
}

// fz returns a final, unmasked frame with no reserved bits.
func fz(op byte, payload string) fzFrame {
	return fzFrame{fin: true, op: op, payload: []byte(payload)}
}

// encode returns f as bytes on the wire (RFC 6455 §5.2).
func (f fzFrame) encode() []byte {
	b0 := f.op&0x0F | f.rsv
	if f.fin {
		b0 |= 0x80
	}
	b := []byte{b0, 0}
	if f.masked {
		b[1] = 0x80
	}
	switch n := len(f.payload); {
	case n < 126:
		b[1] |= byte(n)
	case n <= 0xFFFF:
		b[1] |= 126
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b[1] |= 127
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !f.masked {
		return append(b, f.payload...)
	}
	key := [4]byte{0x0A, 0x0B, 0x0C, 0x0D}
	b = append(b, key[:]...)
	for i, c := range f.payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// fzReadFrame reads one frame of the client and unmasks it.
func fzReadFrame(r io.Reader) (fzFrame, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return fzFrame{}, err
	}
	f := fzFrame{fin: h[0]&0x80 != 0, rsv: h[0] & 0x70, op: h[0] & 0x0F, masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[:2]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(r, h[:8]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return f, err
		}
	}
	if n > 16<<20 {
		return f, fmt.Errorf("frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	for i := range f.payload {
		f.payload[i] ^= key[i&3]
	}
	return f, nil
}

// fzServer is the raw server end of one case's connection.
type fzServer struct {
	nc net.Conn
	br *bufio.Reader

	mu         sync.Mutex
	events     []string // what the client sent: "text:…", "binary:…", "pong:…", "timeout:…"
	violations []string // what the client did that RFC 6455 forbids
	gotClose   bool
	closeCode  ws.StatusCode // the client's close code (1005 for none)
	sentClose  bool
	changed    chan struct{}
	done       chan struct{} // closed when the client's TCP ended
}

// send writes frames to the client.
func (s *fzServer) send(frames ...fzFrame) {
	var b []byte
	for _, f := range frames {
		b = append(b, f.encode()...)
		if f.op == 0x8 {
			s.mu.Lock()
			s.sentClose = true
			s.mu.Unlock()
		}
	}
	s.nc.Write(b) // the client may have failed the connection: ignored
}

// mark waits a pause and records the timeout mark name if the client has
// not closed meanwhile, as the suite's continueLater does; it reports
// whether the case goes on.
func (s *fzServer) mark(name string) bool {
	time.Sleep(fzPause)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gotClose {
		return false
	}
	s.events = append(s.events, "timeout:"+name)
	return true
}

// record notes what the client sent and wakes an await.
func (s *fzServer) record(ev string) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// readLoop reads the client's frames until its TCP ends.
func (s *fzServer) readLoop() {
	defer close(s.done)
	var msg []byte
	var msgOp byte
	for {
		f, err := fzReadFrame(s.br)
		if err != nil {
			return
		}
		s.mu.Lock()
		if !f.masked {
			s.violations = append(s.violations, "unmasked frame")
		}
		if f.rsv != 0 {
			s.violations = append(s.violations, "reserved bits set")
		}
		if s.gotClose {
			s.violations = append(s.violations, "frame after the close frame")
		}
		s.mu.Unlock()
		switch f.op {
		case 0x1, 0x2:
			msg, msgOp = f.payload, f.op
		case 0x0:
			msg = append(msg, f.payload...)
		case 0xA:
			s.record("pong:" + string(f.payload))
			continue
		case 0x8:
			code := ws.StatusNoStatusRcvd
			if len(f.payload) >= 2 {
				code = ws.StatusCode(binary.BigEndian.Uint16(f.payload))
			}
			s.mu.Lock()
			s.gotClose, s.closeCode = true, code
			s.mu.Unlock()
			s.record("close")
			continue
		default:
			s.mu.Lock()
			s.violations = append(s.violations, fmt.Sprintf("opcode %#x", f.op))
			s.mu.Unlock()
			continue
		}
		if f.fin {
			kind := map[byte]string{0x1: "text:", 0x2: "binary:"}[msgOp]
			s.record(kind + string(msg))
		}
	}
}

// fzCase is one case: what the server sends, what the client must send
// back (before its close frame), how the client closes and what its Read
// returns.
type fzCase struct {
	id     string
	script func(s *fzServer)
	events []string // the client's messages, pongs and the case's timeout marks
	// The server closes with 1000 once the events are there (the suite's
	// finishWhenDone); otherwise the client must fail the connection.
	serverCloses bool
	code         ws.StatusCode // the client's close code
	protocolErr  bool          // Read returns a *ws.ProtocolError with code, else a ws.CloseError
}

// fzSend is a script that sends frames in one write.
func fzSend(frames ...fzFrame) func(s *fzServer) {
	return func(s *fzServer) { s.send(frames...) }
}

// fzEcho is a case the client answers with events, after which the server
// closes normally.
func fzEcho(id string, script func(s *fzServer), events ...string) fzCase {
	return fzCase{id: id, script: script, events: events, serverCloses: true, code: ws.StatusNormalClosure}
}

// fzFail is a case in which the client must fail the connection with code.
func fzFail(id string, code ws.StatusCode, script func(s *fzServer), events ...string) fzCase {
	return fzCase{id: id, script: script, events: events, code: code, protocolErr: true}
}

// fzClose is a case in which the server closes with payload and the client
// answers with code.
func fzClose(id string, payload []byte, code ws.StatusCode, protocolErr bool) fzCase {
	return fzCase{id: id, script: fzSend(fzFrame{fin: true, op: 0x8, payload: payload}), code: code, protocolErr: protocolErr}
}

// fzCases are the cases: a selection of each section's, where the client's
// part differs from the server's (masking, and close codes it must refuse
// from a server).
func fzCases() []fzCase {
	hello := "Hello, world!"
	kosme := "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"
	big := strings.Repeat("*", 1<<20)
	rsv := func(f fzFrame, bits byte) fzFrame { f.rsv = bits << 4; return f }
	frag := func(op byte, fin bool, p string) fzFrame { return fzFrame{fin: fin, op: op, payload: []byte(p)} }
	closeWith := func(code int, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
	}
	cases := []fzCase{
		fzEcho("1.1.2", fzSend(fz(0x1, strings.Repeat("*", 125))), "text:"+strings.Repeat("*", 125)),
		fzEcho("1.2.6", fzSend(fz(0x2, strings.Repeat("\xfe", 65535))), "binary:"+strings.Repeat("\xfe", 65535)),
		fzEcho("2.2", fzSend(fz(0x9, hello)), "pong:"+hello),
		fzEcho("2.4", fzSend(fz(0x9, strings.Repeat("\xfe", 125))), "pong:"+strings.Repeat("\xfe", 125)),
		fzFail("2.5", ws.StatusProtocolError, fzSend(fz(0x9, strings.Repeat("\xfe", 126)))),
		fzEcho("2.9", fzSend(fz(0xA, "unsolicited"), fz(0x9, "ping payload")), "pong:ping payload"),
		fzFail("3.1", ws.StatusProtocolError, fzSend(rsv(fz(0x1, hello), 1))),
		fzFail("3.2", ws.StatusProtocolError, fzSend(fz(0x1, hello), rsv(fz(0x1, hello), 2), fz(0x9, "")), "text:"+hello),
		fzFail("3.6", ws.StatusProtocolError, fzSend(rsv(fz(0x9, hello), 6))),
		fzFail("3.7", ws.StatusProtocolError, fzSend(rsv(fz(0x8, ""), 7))),
		fzFail("4.1.1", ws.StatusProtocolError, fzSend(fz(0x3, ""))),
		fzFail("4.1.3", ws.StatusProtocolError, fzSend(fz(0x1, hello), fz(0x5, ""), fz(0x9, "")), "text:"+hello),
		fzFail("4.2.1", ws.StatusProtocolError, fzSend(fz(0xB, ""))),
		fzFail("4.2.5", ws.StatusProtocolError, fzSend(fz(0xF, "reserved opcode payload"))),
		fzFail("masked-server-frame", ws.StatusProtocolError, fzSend(fzFrame{fin: true, op: 0x1, masked: true, payload: []byte(hello)})),
		fzFail("5.1", ws.StatusProtocolError, fzSend(frag(0x9, false, "fragment1"), frag(0x0, true, "fragment2"))),
		fzEcho("5.6", fzSend(frag(0x1, false, "fragment1"), fz(0x9, "ping payload"), frag(0x0, true, "fragment2")), "pong:ping payload", "text:fragment1fragment2"),
		fzFail("5.9", ws.StatusProtocolError, fzSend(frag(0x0, true, "non-continuation payload"), fz(0x1, hello))),
		fzFail("5.15", ws.StatusProtocolError, fzSend(frag(0x1, false, "fragment1"), frag(0x0, true, "fragment2"),
			frag(0x0, false, "fragment3"), frag(0x1, true, "fragment4")), "text:fragment1fragment2"),
		fzFail("5.18", ws.StatusProtocolError, fzSend(frag(0x1, false, "fragment1"), frag(0x1, true, "fragment2"))),
		fzEcho("6.2.3", fzSend(frag(0x1, false, kosme[:1]), frag(0x0, false, kosme[1:4]), frag(0x0, true, kosme[4:])), "text:"+kosme),
		fzFail("6.3.1", ws.StatusInvalidFramePayloadData, fzSend(fz(0x1, kosme+"\xed\xa0\x80edited"))),
		fzFail("6.4.1", ws.StatusInvalidFramePayloadData, func(s *fzServer) {
			s.send(frag(0x1, false, kosme))
			if !s.mark("A") {
				return
			}
			s.send(frag(0x0, false, "\xf4\x90\x80\x80"))
			if !s.mark("B") {
				return
			}
			s.send(frag(0x0, true, "edited"))
		}, "timeout:A"),
		fzFail("6.4.3", ws.StatusInvalidFramePayloadData, func(s *fzServer) {
			payload := kosme + "\xf4\x90\x80\x80" + "edited"
			b := fz(0x1, payload).encode()
			hdr := len(b) - len(payload)
			s.nc.Write(b[:hdr+11])
			if !s.mark("A") {
				return
			}
			s.nc.Write(b[hdr+11 : hdr+15])
			if !s.mark("B") {
				return
			}
			s.nc.Write(b[hdr+15:])
		}, "timeout:A"),
		fzFail("6.20.1", ws.StatusInvalidFramePayloadData, fzSend(fz(0x1, "\xed\xa0\x80"))),
		fzFail("6.6.10", ws.StatusInvalidFramePayloadData, fzSend(fz(0x1, kosme[:10]))),
		fzEcho("9.1.3", fzSend(fz(0x1, big)), "text:"+big),
		fzClose("7.3.1", nil, ws.StatusNoStatusRcvd, false),
		fzClose("7.3.2", []byte("a"), ws.StatusProtocolError, true),
		fzClose("7.3.4", closeWith(1000, "Hello World!"), ws.StatusNormalClosure, false),
		fzClose("7.3.6", closeWith(1000, strings.Repeat("*", 124)), ws.StatusProtocolError, true),
		fzClose("7.5.1", closeWith(1000, kosme+"\xed\xa0\x80edited"), ws.StatusInvalidFramePayloadData, true),
		{id: "7.1.3", script: fzSend(fz(0x8, string(closeWith(1000, ""))), fz(0x9, "")), code: ws.StatusNormalClosure},
	}
	for i, c := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		cases = append(cases, fzClose(fmt.Sprintf("7.7.%d", i+1), closeWith(c, ""), ws.StatusCode(c), false))
	}
	for i, c := range []int{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999} {
		cases = append(cases, fzClose(fmt.Sprintf("7.9.%d", i+1), closeWith(c, ""), ws.StatusProtocolError, true))
	}
	for i, c := range []int{5000, 65535} {
		cases = append(cases, fzClose(fmt.Sprintf("7.13.%d", i+1), closeWith(c, ""), ws.StatusProtocolError, true))
	}
	return cases
}

// TestAutobahnClient runs the cases against a ws.Dial client that echoes
// every message.
func TestAutobahnClient(t *testing.T) {
	for _, tc := range fzCases() {
		t.Run(tc.id, func(t *testing.T) {
			t.Parallel()
			tc.run(t)
		})
	}
}

// run plays the case: it serves one connection by hand and checks both
// ends.
func (tc fzCase) run(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*fzWait)
	defer cancel()

	// The client: echo every message until Read fails.
	readErr := make(chan error, 1)
	go func() {
		c, _, err := ws.Dial(ctx, "ws://"+ln.Addr().String()+"/", nil)
		if err != nil {
			readErr <- err
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			c.Write(ctx, typ, b) // a failure shows in the next Read
		}
	}()

	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(2 * fzWait))
	s := &fzServer{nc: nc, br: bufio.NewReader(nc), changed: make(chan struct{}, 1), done: make(chan struct{})}
	if err := s.handshake(); err != nil {
		t.Fatal(err)
	}
	go s.readLoop()
	defer func() { nc.Close(); <-s.done }()

	tc.script(s)
	if tc.serverCloses {
		s.await(func() bool { return slices.Equal(s.events, tc.events) })
		s.send(fz(0x8, string(binary.BigEndian.AppendUint16(nil, 1000))))
	}
	// The client answers or sends its close frame, then closes TCP.
	select {
	case <-s.done:
	case <-time.After(fzWait):
		t.Errorf("the client did not close TCP")
	}
	var rerr error
	select {
	case rerr = <-readErr:
	case <-time.After(fzWait):
		t.Fatal("the client's Read did not return")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	want := append(slices.Clone(tc.events), "close")
	if !slices.Equal(s.events, want) {
		t.Errorf("the client sent %q, want %q", fzShort(s.events), fzShort(want))
	}
	if len(s.violations) > 0 {
		t.Errorf("the client broke the protocol: %v", s.violations)
	}
	if s.closeCode != tc.code {
		t.Errorf("the client closed with %v, want %v", s.closeCode, tc.code)
	}
	var pe *ws.ProtocolError
	var ce ws.CloseError
	switch {
	case tc.protocolErr && (!errors.As(rerr, &pe) || pe.Code != tc.code):
		t.Errorf("Read: %v, want a *ws.ProtocolError with %v", rerr, tc.code)
	case !tc.protocolErr && (!errors.As(rerr, &ce) || ce.Code != tc.code):
		t.Errorf("Read: %v, want a ws.CloseError with %v", rerr, tc.code)
	}
}

// await waits until cond holds (called with s.mu held), the client's TCP
// ends, or fzWait passes.
func (s *fzServer) await(cond func() bool) {
	timer := time.NewTimer(fzWait)
	defer timer.Stop()
	for {
		s.mu.Lock()
		ok := cond()
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.changed:
		case <-s.done:
			return
		case <-timer.C:
			return
		}
	}
}

// handshake answers the client's opening handshake by hand (RFC 6455 §4.2).
func (s *fzServer) handshake() error {
	req, err := http.ReadRequest(s.br)
	if err != nil {
		return err
	}
	key := req.Header.Get("Sec-WebSocket-Key")
	if key == "" || !strings.EqualFold(req.Header.Get("Upgrade"), "websocket") {
		return fmt.Errorf("not a WebSocket handshake: %v", req.Header)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	_, err = io.WriteString(s.nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Accept: "+base64.StdEncoding.EncodeToString(sum[:])+"\r\n\r\n")
	return err
}

// fzShort shortens long events for messages.
func fzShort(events []string) []string {
	var out []string
	for _, e := range events {
		if len(e) > 60 {
			e = fmt.Sprintf("%s… (%d bytes)", e[:40], len(e))
		}
		out = append(out, e)
	}
	return out
}
