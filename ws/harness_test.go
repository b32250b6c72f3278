package ws

// The test harness: raw peers that speak bytes, so tests can put any frame on
// the wire and see exactly what a Conn puts there.
//
//   - serverPair: an httptest server running Accept, and a raw client socket
//     that did the HTTP upgrade by hand.
//   - clientPair: a raw listener that answers the handshake by hand, and a
//     Conn from Dial connected to it.
//   - rf / readWireFrame: encode any frame (FIN, RSV, opcode, mask, announced
//     length) and decode one frame from a raw socket, independently of the
//     package's own codec.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// testTimeout bounds every wait of a test that would otherwise hang on a bug.
// It is no measure of speed: a passing test waits for events, and a loaded
// 2-core machine under the race detector may take many times longer than an
// idle one, so the bound is far beyond what any event takes.
const testTimeout = 2 * time.Minute

// testCtx returns a context that ends with the test or after testTimeout.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// rf describes a raw frame to put on the wire.
type rf struct {
	fin     bool
	rsv     byte // bits in place: bitRSV1|bitRSV2|bitRSV3
	op      opcode
	masked  bool
	key     [4]byte
	payload []byte

	// announce, if non-nil, is the payload length written in the header
	// instead of len(payload) (for frames whose payload is sent separately
	// or never). It is encoded in the 64-bit form when ext64 is set or the
	// value needs it.
	announce *uint64
	ext64    bool
}

// bytes encodes f. The encoder is written from RFC 6455 §5.2 directly and
// does not use the package's codec.
func (f rf) bytes() []byte {
	b0 := byte(f.op&0x0F) | f.rsv
	if f.fin {
		b0 |= 0x80
	}
	length := uint64(len(f.payload))
	if f.announce != nil {
		length = *f.announce
	}
	var mbit byte
	if f.masked {
		mbit = 0x80
	}
	out := []byte{b0}
	switch {
	case f.ext64 || length > 0xFFFF:
		out = append(out, mbit|127)
		out = binary.BigEndian.AppendUint64(out, length)
	case length > 125:
		out = append(out, mbit|126)
		out = binary.BigEndian.AppendUint16(out, uint16(length))
	default:
		out = append(out, mbit|byte(length))
	}
	p := append([]byte(nil), f.payload...)
	if f.masked {
		out = append(out, f.key[:]...)
		for i := range p {
			p[i] ^= f.key[i%4]
		}
	}
	return append(out, p...)
}

// testKey is the masking key of the frames the raw client sends; it is not
// zero so that a reader that forgets to unmask reads garbage.
var testKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// frameSet builds the frames one side of a connection sends: masked for the
// client side, unmasked for the server side.
type frameSet struct{ masked bool }

func (s frameSet) frame(fin bool, op opcode, payload []byte) rf {
	return rf{fin: fin, op: op, masked: s.masked, key: testKey, payload: payload}
}

// msg is a complete single-frame data or control message.
func (s frameSet) msg(op opcode, payload string) []byte {
	return s.frame(true, op, []byte(payload)).bytes()
}

// close is a close frame with a code and a reason.
func (s frameSet) close(code StatusCode, reason string) []byte {
	p := binary.BigEndian.AppendUint16(nil, uint16(code))
	return s.frame(true, opClose, append(p, reason...)).bytes()
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// wireFrame is a frame read off the wire, unmasked.
type wireFrame struct {
	fin     bool
	rsv     byte
	op      opcode
	masked  bool
	payload []byte
}

func (f wireFrame) String() string {
	p := f.payload
	if len(p) > 32 {
		p = p[:32]
	}
	return fmt.Sprintf("{fin:%v rsv:%#x op:%#x masked:%v len:%d %q}", f.fin, f.rsv, byte(f.op), f.masked, len(f.payload), p)
}

// closeCode returns the code of a close frame (1005 when it has none).
func (f wireFrame) closeCode() StatusCode {
	if len(f.payload) < 2 {
		return StatusNoStatusRcvd
	}
	return StatusCode(binary.BigEndian.Uint16(f.payload))
}

func (f wireFrame) closeReason() string {
	if len(f.payload) < 2 {
		return ""
	}
	return string(f.payload[2:])
}

// maxWireFrame bounds the payload readWireFrame accepts.
const maxWireFrame = 256 << 20

// readWireFrame reads one frame from r, written from RFC 6455 §5.2 directly.
func readWireFrame(r io.Reader) (wireFrame, error) {
	var f wireFrame
	var h [2]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return f, err
	}
	f.fin = h[0]&0x80 != 0
	f.rsv = h[0] & 0x70
	f.op = opcode(h[0] & 0x0F)
	f.masked = h[1]&0x80 != 0
	length := uint64(h[1] & 0x7F)
	switch length {
	case 126:
		var x [2]byte
		if _, err := io.ReadFull(r, x[:]); err != nil {
			return f, err
		}
		length = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		if _, err := io.ReadFull(r, x[:]); err != nil {
			return f, err
		}
		length = binary.BigEndian.Uint64(x[:])
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(r, key[:]); err != nil {
			return f, err
		}
	}
	if length > maxWireFrame {
		return f, fmt.Errorf("frame of %d bytes is too large for the test reader", length)
	}
	f.payload = make([]byte, length)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

// rawConn is the raw end of a connection: a test writes bytes and reads
// frames on it.
type rawConn struct {
	t      testing.TB
	nc     net.Conn
	br     *bufio.Reader
	client bool // the raw side is the client: the frames it sends are masked
}

// fs returns the frame set this side sends correctly.
func (r *rawConn) fs() frameSet { return frameSet{masked: r.client} }

// write writes b, failing the test on error.
func (r *rawConn) write(bs ...[]byte) {
	r.t.Helper()
	r.nc.SetWriteDeadline(time.Now().Add(testTimeout))
	for _, b := range bs {
		if _, err := r.nc.Write(b); err != nil {
			r.t.Fatalf("raw write: %v", err)
		}
	}
}

// writeSlowly writes b one byte at a time, so the Conn sees every partial
// header and payload.
func (r *rawConn) writeSlowly(b []byte) {
	r.t.Helper()
	for i := range b {
		r.write(b[i : i+1])
	}
}

// read reads one frame, failing the test on error.
func (r *rawConn) read() wireFrame {
	r.t.Helper()
	f, err := r.readErr()
	if err != nil {
		r.t.Fatalf("raw read: %v", err)
	}
	return f
}

func (r *rawConn) readErr() (wireFrame, error) {
	r.nc.SetReadDeadline(time.Now().Add(testTimeout))
	return readWireFrame(r.br)
}

// expectFrame reads one frame and checks its opcode, FIN bit and payload.
func (r *rawConn) expectFrame(fin bool, op opcode, payload string) {
	r.t.Helper()
	f := r.read()
	if f.fin != fin || f.op != op || string(f.payload) != payload || f.rsv != 0 {
		short := payload
		if len(short) > 32 {
			short = short[:32] + "..."
		}
		r.t.Fatalf("got frame %v, want fin:%v op:%#x len:%d %q", f, fin, byte(op), len(payload), short)
	}
	if f.masked == r.client {
		r.t.Fatalf("frame %v: masked is %v, but the raw side is client=%v", f, f.masked, r.client)
	}
}

// readMessage reads the frames of one data message (skipping control
// frames) and returns its opcode and payload.
func (r *rawConn) readMessage() (opcode, string) {
	r.t.Helper()
	var op opcode
	var p []byte
	for {
		f := r.read()
		if f.op.isControl() {
			continue
		}
		if op == 0 {
			op = f.op
		}
		p = append(p, f.payload...)
		if f.fin {
			return op, string(p)
		}
	}
}

// expectClose reads the next frame other than a pong, which must be a close
// frame with code, and then expects the peer to close TCP.
func (r *rawConn) expectClose(code StatusCode) wireFrame {
	r.t.Helper()
	f := r.read()
	for f.op == opPong {
		f = r.read()
	}
	if f.op != opClose {
		r.t.Fatalf("got frame %v, want a close frame with code %v", f, code)
	}
	if got := f.closeCode(); got != code {
		r.t.Fatalf("close frame code %v (reason %q), want %v", got, f.closeReason(), code)
	}
	r.expectEOF()
	return f
}

// expectEOF expects the peer to have closed TCP without sending more.
func (r *rawConn) expectEOF() {
	r.t.Helper()
	r.nc.SetReadDeadline(time.Now().Add(testTimeout))
	var b [1]byte
	n, err := r.br.Read(b[:])
	if n > 0 {
		f, _ := readWireFrame(io.MultiReader(strings.NewReader(string(b[:n])), r.br))
		r.t.Fatalf("expected the connection to be closed, got more bytes: %v", f)
	}
	if !errors.Is(err, io.EOF) && !isReset(err) {
		r.t.Fatalf("expected EOF, got %v", err)
	}
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// clientKey is the Sec-WebSocket-Key of the raw client's handshakes.
const clientKey = "dGhlIHNhbXBsZSBub25jZQ=="

// upgradeRequest is a valid handshake request for host; extra lines
// ("Name: value") are appended.
func upgradeRequest(host string, extra ...string) string {
	var b strings.Builder
	b.WriteString("GET /ws HTTP/1.1\r\nHost: " + host + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Key: " + clientKey + "\r\nSec-WebSocket-Version: 13\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// rawUpgrade opens a raw client connection to the WebSocket server at
// host; the handshake must succeed.
func rawUpgrade(t testing.TB, host string) *rawConn {
	t.Helper()
	resp, raw := rawRequest(t, host, upgradeRequest(host))
	if resp.StatusCode != 101 {
		t.Fatalf("handshake: %s", resp.Status)
	}
	return raw
}

// rawRequest sends a raw HTTP request to addr and returns the response and
// the connection, positioned after the response headers.
func rawRequest(t testing.TB, addr, req string) (*http.Response, *rawConn) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	if _, err := io.WriteString(nc, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("reading the handshake response: %v", err)
	}
	nc.SetDeadline(time.Time{})
	return resp, &rawConn{t: t, nc: nc, br: br, client: true}
}

// acceptResult is what the server side of serverPair saw.
type acceptResult struct {
	c   *Conn
	err error
}

// startAcceptServer starts an httptest server whose handler runs Accept with
// opts and hands the result to the returned channel.
func startAcceptServer(t testing.TB, opts *AcceptOptions) (*httptest.Server, <-chan acceptResult) {
	return startAcceptServerOn(t, opts, false)
}

// startAcceptServerOn is startAcceptServer, with a listener that wraps its
// connections if portable (see portableConn).
func startAcceptServerOn(t testing.TB, opts *AcceptOptions, portable bool) (*httptest.Server, <-chan acceptResult) {
	t.Helper()
	results := make(chan acceptResult, 16)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		results <- acceptResult{c, err}
	}))
	if portable {
		srv.Listener = portableListener{srv.Listener}
	}
	srv.Start()
	t.Cleanup(func() {
		srv.Close()
		for {
			select {
			case res := <-results:
				if res.c != nil {
					res.c.CloseNow()
				}
			default:
				return
			}
		}
	})
	return srv, results
}

// serverPair returns a server Conn from Accept and the raw client socket
// connected to it, after a handshake done by hand.
func serverPair(t testing.TB, opts *AcceptOptions) (*Conn, *rawConn) {
	t.Helper()
	return serverPairOn(t, opts, false)
}

// serverPairOn is serverPair, over the portable transport if portable.
func serverPairOn(t testing.TB, opts *AcceptOptions, portable bool) (*Conn, *rawConn) {
	t.Helper()
	srv, results := startAcceptServerOn(t, opts, portable)
	host := strings.TrimPrefix(srv.URL, "http://")
	resp, raw := rawRequest(t, host, upgradeRequest(host))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), acceptKey(clientKey); got != want {
		t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, want)
	}
	var res acceptResult
	select {
	case res = <-results:
	case <-time.After(testTimeout):
		t.Fatal("Accept did not return")
	}
	if res.err != nil {
		t.Fatalf("Accept: %v", res.err)
	}
	t.Cleanup(func() { res.c.CloseNow() })
	return res.c, raw
}

// rawServer is a listener that answers one handshake by hand.
type rawServer struct {
	t    testing.TB
	ln   net.Listener
	url  string
	done chan struct{}
}

// startRawServer listens on 127.0.0.1 and, for the first connection, reads
// the request and calls respond with the socket; respond's return value, if
// not nil, is handed out by conn.
func startRawServer(t testing.TB, respond func(nc net.Conn, br *bufio.Reader, req *http.Request)) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{t: t, ln: ln, url: "ws://" + ln.Addr().String() + "/ws", done: make(chan struct{})}
	go func() {
		defer close(s.done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		nc.SetDeadline(time.Now().Add(testTimeout))
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			nc.Close()
			return
		}
		nc.SetDeadline(time.Time{})
		respond(nc, br, req)
	}()
	t.Cleanup(func() {
		ln.Close()
		<-s.done
	})
	return s
}

// accept101 writes a correct 101 answer to req, with extra header lines.
func accept101(w io.Writer, req *http.Request, extra ...string) error {
	var b strings.Builder
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
	b.WriteString("Sec-WebSocket-Accept: " + acceptKey(req.Header.Get("Sec-WebSocket-Key")) + "\r\n")
	for _, e := range extra {
		b.WriteString(e + "\r\n")
	}
	b.WriteString("\r\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// clientPair returns a client Conn from Dial and the raw server socket it is
// connected to, after a handshake answered by hand.
func clientPair(t testing.TB, opts *DialOptions) (*Conn, *rawConn) {
	t.Helper()
	type accepted struct {
		nc  net.Conn
		br  *bufio.Reader
		req *http.Request
	}
	ch := make(chan accepted, 1)
	s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		if err := accept101(nc, req); err != nil {
			nc.Close()
			return
		}
		ch <- accepted{nc, br, req}
	})
	c, resp, err := Dial(testCtx(t), s.url, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("Dial response %s", resp.Status)
	}
	a := <-ch
	t.Cleanup(func() { a.nc.Close() })
	return c, &rawConn{t: t, nc: a.nc, br: a.br, client: false}
}

// side runs a test body on the server side and on the client side of a
// connection: c is the Conn under test and raw its raw peer.
type side struct {
	name   string
	client bool // the Conn under test is the client
	pair   func(t testing.TB) (*Conn, *rawConn)
}

// Each side runs three times: over a plain TCP socket, where the transport
// takes its direct paths on Linux; over a wrapped net.Conn, where it takes
// the portable one (the path of TLS, HTTP/2 streams, wrapping listeners and
// custom dialers, and of other systems); and over an in-memory pipe
// (memPipe), the portable transport with no socket and no handshake.
func bothSides(cfg connConfig) []side {
	aopts := func() *AcceptOptions {
		return &AcceptOptions{ReadLimit: cfg.readLimit, CloseTimeout: cfg.closeTimeout, OnPing: cfg.onPing}
	}
	dopts := func() *DialOptions {
		return &DialOptions{ReadLimit: cfg.readLimit, CloseTimeout: cfg.closeTimeout, OnPing: cfg.onPing}
	}
	return []side{
		{"server", false, func(t testing.TB) (*Conn, *rawConn) { return serverPair(t, aopts()) }},
		{"client", true, func(t testing.TB) (*Conn, *rawConn) { return clientPair(t, dopts()) }},
		{"server/portable", false, func(t testing.TB) (*Conn, *rawConn) { return serverPairOn(t, aopts(), true) }},
		{"client/portable", true, func(t testing.TB) (*Conn, *rawConn) {
			o := dopts()
			o.NetDialContext = portableDial
			return clientPair(t, o)
		}},
		{"server/mem", false, func(t testing.TB) (*Conn, *rawConn) { return memSide(t, cfg, false) }},
		{"client/mem", true, func(t testing.TB) (*Conn, *rawConn) { return memSide(t, cfg, true) }},
	}
}

// portableConn hides what a *net.TCPConn is beyond a net.Conn, so the
// transport under a Conn takes its portable path (through Read and Write),
// as it does over TLS or a wrapping listener.
type portableConn struct{ net.Conn }

// portableListener hands out its connections as portableConns.
type portableListener struct{ net.Listener }

func (l portableListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return portableConn{nc}, nil
}

// portableDial dials TCP and returns the connection as a portableConn.
func portableDial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return portableConn{nc}, nil
}

// wantProtocolError checks that err is a *ProtocolError with code.
func wantProtocolError(t testing.TB, err error, code StatusCode) {
	t.Helper()
	var pe *ProtocolError
	if !errors.As(err, &pe) {
		t.Fatalf("got error %v (%T), want a *ProtocolError with code %v", err, err, code)
	}
	if pe.Code != code {
		t.Fatalf("got %v, want code %v", pe, code)
	}
}

// wantCloseError checks that err is a CloseError with code and reason.
func wantCloseError(t testing.TB, err error, code StatusCode, reason string) {
	t.Helper()
	var ce CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("got error %v (%T), want a CloseError %v %q", err, err, code, reason)
	}
	if ce.Code != code || ce.Reason != reason {
		t.Fatalf("got %v, want CloseError %v %q", ce, code, reason)
	}
}

// readAll reads messages from c until an error, returning the messages.
func readAll(ctx context.Context, c *Conn) ([]string, error) {
	var msgs []string
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			return msgs, err
		}
		msgs = append(msgs, string(b))
	}
}

// goAsync runs f in a goroutine and returns a function that waits for its
// result, failing the test if it does not come within testTimeout. (TestMain's
// leak check catches a goroutine that never ends.)
func goAsync[T any](t testing.TB, f func() T) func() T {
	ch := make(chan T, 1)
	go func() { ch <- f() }()
	var v T
	have := false
	return func() T {
		t.Helper()
		if !have {
			select {
			case v = <-ch:
				have = true
			case <-time.After(testTimeout):
				t.Fatal("timed out waiting for a goroutine")
			}
		}
		return v
	}
}

// base64Key returns the base64 encoding of n bytes, for handshake tests.
func base64Key(n int) string { return base64.StdEncoding.EncodeToString(make([]byte, n)) }

// readUpgraded reads a handshake response from nc into buf, up to the end of
// its headers, and fails tb unless it is a 101.
func readUpgraded(tb testing.TB, nc net.Conn, buf []byte) {
	tb.Helper()
	end := []byte("\r\n\r\n")
	got := 0
	for !bytes.Contains(buf[:got], end) {
		if got == len(buf) {
			tb.Fatalf("handshake response longer than %d bytes: %q", len(buf), buf)
		}
		n, err := nc.Read(buf[got:])
		got += n
		if err != nil && !bytes.Contains(buf[:got], end) {
			tb.Fatalf("reading the handshake response: %v after %q", err, buf[:got])
		}
	}
	if !bytes.HasPrefix(buf[:got], []byte("HTTP/1.1 101 ")) {
		tb.Fatalf("handshake: %q", buf[:got])
	}
}
