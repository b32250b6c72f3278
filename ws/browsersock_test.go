package ws

// browserSock (the transport of Dial in a browser) tested natively, over a
// fake of the browser's WebSocket object that echoes what is sent. The
// real one is tested in headless Chromium (TestBrowserWasm).

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBrowser is a browserWS. Unless quiet, it echoes every message sent
// and answers a close with the same close, as a server would.
type fakeBrowser struct {
	s *browserSock

	mu       sync.Mutex
	state    int
	buffered int64
	polls    int // calls of bufferedAmount
	quiet    bool
	proto    string // the subprotocol the server chose
	sent     []fakeMsg
	closes   []fakeMsg // code in text, as "4000 bye"
	released bool
}

type fakeMsg struct {
	text bool
	p    string
}

// fakeBytes is a binary message held by the fake browser.
type fakeBytes []byte

func (b fakeBytes) len() int                     { return len(b) }
func (b fakeBytes) copyTo(p []byte, off int) int { return copy(p, b[off:]) }

func (f *fakeBrowser) readyState() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.state
}

func (f *fakeBrowser) bufferedAmount() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	return f.buffered
}

func (f *fakeBrowser) protocol() string   { return f.proto }
func (f *fakeBrowser) extensions() string { return "" }

func (f *fakeBrowser) send(text bool, p []byte) error {
	f.mu.Lock()
	f.sent = append(f.sent, fakeMsg{text, string(p)})
	quiet := f.quiet
	f.mu.Unlock()
	if !quiet {
		f.s.received(message(text, p))
	}
	return nil
}

func (f *fakeBrowser) close(code StatusCode, reason string) error {
	f.mu.Lock()
	f.closes = append(f.closes, fakeMsg{p: fmt.Sprint(int(code), " ", reason)})
	f.state = 2
	quiet := f.quiet
	f.mu.Unlock()
	if !quiet {
		if code == 0 {
			code = StatusNoStatusRcvd
		}
		f.peerClose(code, reason)
	}
	return nil
}

// peerClose is the close event, the close handshake over.
func (f *fakeBrowser) peerClose(code StatusCode, reason string) {
	f.mu.Lock()
	f.state = 3
	f.mu.Unlock()
	f.s.peerClosed(code, reason)
}

func (f *fakeBrowser) release() {
	f.mu.Lock()
	f.released = true
	f.mu.Unlock()
}

func (f *fakeBrowser) sentMsgs() []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeMsg(nil), f.sent...)
}

func (f *fakeBrowser) closeCalls() []fakeMsg {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeMsg(nil), f.closes...)
}

// message is the event of a received message.
func message(text bool, p []byte) browserEvent {
	if text {
		return browserEvent{isText: true, text: string(p), size: int64(len(p))}
	}
	return browserEvent{data: fakeBytes(bytes.Clone(p)), size: int64(len(p))}
}

// dialFake dials through a fakeBrowser that opens at once.
func dialFake(t *testing.T, opts *DialOptions) (*Conn, *fakeBrowser) {
	t.Helper()
	f := &fakeBrowser{}
	c, _, err := dialWith(context.Background(), "ws://example.test/", opts, func(s *browserSock, url string, protocols []string) (browserWS, error) {
		f.s, f.state = s, 1
		s.opened()
		return f, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, f
}

func TestBrowserSockEcho(t *testing.T) {
	ctx := context.Background()
	c, f := dialFake(t, nil)
	large := bytes.Repeat([]byte("0123456789abcdef"), 20<<10) // 320 KiB
	check := func(what string, typ MessageType, want []byte) {
		t.Helper()
		gotType, got, err := c.Read(ctx)
		if err != nil || gotType != typ || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %v of %d bytes, %v; want %v of %d bytes", what, gotType, len(got), err, typ, len(want))
		}
	}
	for _, m := range []struct {
		typ MessageType
		p   []byte
	}{{Text, []byte("hello, 世界")}, {Binary, []byte{0, 255}}, {Binary, nil}, {Binary, large}, {Text, large}} {
		if err := c.Write(ctx, m.typ, m.p); err != nil {
			t.Fatal(err)
		}
		check("Write", m.typ, m.p)
	}

	// A streamed message leaves whole, as one send.
	before := len(f.sentMsgs())
	w, err := c.Writer(ctx, Binary)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(large); i += 50 << 10 {
		if _, err := w.Write(large[i:min(i+50<<10, len(large))]); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(f.sentMsgs()) - before; n != 0 {
		t.Fatalf("%d sends before the Writer was closed", n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if sent := f.sentMsgs(); len(sent)-before != 1 || sent[len(sent)-1].p != string(large) {
		t.Fatalf("the streamed message left in %d sends", len(sent)-before)
	}
	check("Writer", Binary, large)

	if err := c.Send(ctx, Message{Type: Text, Body: strings.NewReader("sent")}); err != nil {
		t.Fatal(err)
	}
	check("Send", Text, []byte("sent"))

	// Received before they are read, in order, several to one Read of the
	// transport.
	for i := range 50 {
		f.s.received(message(true, fmt.Appendf(nil, "m%d", i)))
	}
	for i := range 50 {
		check("queued", Text, fmt.Appendf(nil, "m%d", i))
	}
}

func TestBrowserSockUnsupported(t *testing.T) {
	ctx := context.Background()
	c, f := dialFake(t, nil)
	if err := c.Ping(ctx); !errors.Is(err, ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("Ping: %v, want ErrUnsupported", err)
	}
	if err := c.Write(ctx, Text, []byte("after Ping")); err != nil {
		t.Fatalf("Write after Ping: %v", err)
	}
	if err := c.Close(StatusGoingAway, ""); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("Close(1001): %v, want ErrUnsupported", err)
	}
	if got := f.closeCalls(); len(got) != 1 || got[0].p != "0 " {
		t.Fatalf("the browser was asked to close with %v, want once without a code", got)
	}
	if !f.released {
		t.Fatal("the event handlers were not released")
	}

	for _, o := range []*DialOptions{
		{HTTPHeader: http.Header{"X": {"y"}}}, {TLSConfig: nil, Proxy: http.ProxyFromEnvironment},
		{Compression: &CompressionOptions{}}, {OnPing: func([]byte) {}}, {KeepAlive: time.Second}, {KeepAliveTimeout: time.Second},
	} {
		_, _, err := dialWith(ctx, "ws://example.test/", o, func(*browserSock, string, []string) (browserWS, error) {
			t.Fatal("a browser WebSocket was opened")
			return nil, nil
		})
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("Dial with %+v: %v, want ErrUnsupported", o, err)
		}
	}
}

// A streamed message past browserMaxGathered fails, and closes the
// connection.
func TestBrowserSockGatherLimit(t *testing.T) {
	ctx := context.Background()
	c, f := dialFake(t, nil)
	w, err := c.Writer(ctx, Binary)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := 0; ; i++ {
		_, err := w.Write(chunk)
		if i < browserMaxGathered>>20 {
			if err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			continue
		}
		if !errors.Is(err, ErrUnsupported) {
			t.Fatalf("write past %d MiB: %v, want ErrUnsupported", browserMaxGathered>>20, err)
		}
		break
	}
	if len(f.sentMsgs()) != 0 {
		t.Fatal("part of the message was sent")
	}
	if err := c.Write(ctx, Text, []byte("x")); err == nil {
		t.Fatal("the connection is still open")
	}
}

func TestBrowserSockClose(t *testing.T) {
	ctx := context.Background()
	t.Run("ours", func(t *testing.T) {
		c, f := dialFake(t, nil)
		if err := c.Close(4000, "bye"); err != nil {
			t.Fatal(err)
		}
		if got := f.closeCalls(); len(got) != 1 || got[0].p != "4000 bye" {
			t.Fatalf("the browser was asked to close with %v", got)
		}
		var ce CloseError
		if _, _, err := c.Read(ctx); !errors.As(err, &ce) || ce.Code != 4000 {
			t.Fatalf("read after Close: %v", err)
		}
	})
	t.Run("peer's", func(t *testing.T) {
		for _, tc := range []struct {
			code StatusCode
			want error
		}{
			{4001, CloseError{Code: 4001, Reason: "done"}},
			{StatusGoingAway, CloseError{Code: StatusGoingAway, Reason: "done"}},
			{StatusNoStatusRcvd, CloseError{Code: StatusNoStatusRcvd}},
			{StatusAbnormalClosure, CloseError{Code: StatusAbnormalClosure}},
		} {
			c, f := dialFake(t, nil)
			f.s.received(message(false, []byte("last")))
			f.peerClose(tc.code, "done")
			if _, p, err := c.Read(ctx); err != nil || string(p) != "last" {
				t.Fatalf("%d: read %q, %v; want the message before the close", tc.code, p, err)
			}
			_, _, err := c.Read(ctx)
			var ce CloseError
			if !errors.As(err, &ce) || ce != tc.want {
				t.Fatalf("close %d: read %v, want %v", tc.code, err, tc.want)
			}
		}
	})
	t.Run("now", func(t *testing.T) {
		c, f := dialFake(t, nil)
		f.quiet = true
		c.CloseNow()
		if got := f.closeCalls(); len(got) != 1 || got[0].p != "0 " || !f.released {
			t.Fatalf("CloseNow: the browser was asked to close with %v, released %v", got, f.released)
		}
	})
}

// Messages not read pile up in the page only to a bound.
func TestBrowserSockQueueFull(t *testing.T) {
	ctx := context.Background()
	c, f := dialFake(t, nil)
	f.quiet = true
	for i := range browserQueueLen + 1 {
		f.s.received(message(true, fmt.Appendf(nil, "%d", i)))
	}
	if got := f.closeCalls(); len(got) != 1 || got[0].p != "0 " {
		t.Fatalf("the browser was asked to close with %v, want once without a code", got)
	}
	for i := range browserQueueLen {
		if _, p, err := c.Read(ctx); err != nil || string(p) != fmt.Sprint(i) {
			t.Fatalf("message %d: %q, %v", i, p, err)
		}
	}
	if _, _, err := c.Read(ctx); !errors.Is(err, errBrowserQueueFull) {
		t.Fatalf("read after the queued messages: %v, want errBrowserQueueFull", err)
	}

	// Bytes: a large message alone is queued, a second is not.
	c, f = dialFake(t, nil)
	f.quiet = true
	big := browserEvent{data: fakeBytes("x"), size: browserQueueBytes + 1}
	f.s.received(big)
	f.s.received(big)
	if _, p, err := c.Read(ctx); err != nil || string(p) != "x" {
		t.Fatalf("the large message: %q, %v", p, err)
	}
	if _, _, err := c.Read(ctx); !errors.Is(err, errBrowserQueueFull) {
		t.Fatalf("read after it: %v, want errBrowserQueueFull", err)
	}
}

// A read or write cut short by its context leaves the connection usable.
func TestBrowserSockDeadlines(t *testing.T) {
	ctx := context.Background()
	c, f := dialFake(t, nil)
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	_, _, err := c.Read(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read with nothing to read: %v, want DeadlineExceeded", err)
	}

	// While the browser holds more than browserSendBuffer unsent, data
	// frames wait.
	f.mu.Lock()
	f.buffered = browserSendBuffer + 1
	f.mu.Unlock()
	short, cancel = context.WithTimeout(ctx, 20*time.Millisecond)
	err = c.Write(short, Text, []byte("waits"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || len(f.sentMsgs()) != 0 {
		t.Fatalf("write while the browser's buffer is full: %v, %d sent; want DeadlineExceeded", err, len(f.sentMsgs()))
	}
	f.mu.Lock()
	polls := f.polls
	f.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- c.Write(ctx, Text, []byte("drained")) }()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		waiting := f.polls >= polls+2 // it found the buffer full, waited, and looked again
		if waiting {
			f.buffered = 0
		}
		f.mu.Unlock()
		if waiting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the write never looked at the browser's buffer")
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("write once the buffer drained: %v", err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "drained" {
		t.Fatalf("read: %q, %v", p, err)
	}
}

func TestBrowserDial(t *testing.T) {
	ctx := context.Background()
	refused := func(s *browserSock, url string, protocols []string) (browserWS, error) {
		f := &fakeBrowser{s: s, state: 3}
		s.peerClosed(StatusAbnormalClosure, "")
		return f, nil
	}
	_, _, err := dialWith(ctx, "ws://example.test/", nil, refused)
	if !errors.Is(err, CloseError{Code: StatusAbnormalClosure}) {
		t.Fatalf("refused: %v", err)
	}

	// The server's subprotocol must be one offered.
	c, resp, err := dialWith(ctx, "http://example.test/", &DialOptions{Subprotocols: []string{"echo.v1"}}, func(s *browserSock, url string, protocols []string) (browserWS, error) {
		if url != "ws://example.test/" || len(protocols) != 1 {
			t.Errorf("opened %s with %q", url, protocols)
		}
		s.opened()
		return &fakeBrowser{s: s, state: 1, proto: "echo.v1"}, nil
	})
	if err != nil || c.Subprotocol() != "echo.v1" || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != "echo.v1" {
		t.Fatalf("Dial: %v, %v", resp, err)
	}
	c.CloseNow()
	f := &fakeBrowser{proto: "echo.v1"}
	if _, _, err := dialWith(ctx, "ws://example.test/", nil, func(s *browserSock, url string, protocols []string) (browserWS, error) {
		f.s, f.state = s, 1
		s.opened()
		return f, nil
	}); err == nil || !f.released {
		t.Fatalf("Dial with a subprotocol not offered: %v, released %v", err, f.released)
	}

	// ctx ends Dial while the browser connects.
	cctx, cancel := context.WithCancel(ctx)
	f = &fakeBrowser{}
	_, _, err = dialWith(cctx, "ws://example.test/", nil, func(s *browserSock, url string, protocols []string) (browserWS, error) {
		f.s = s
		cancel()
		return f, nil
	})
	if !errors.Is(err, context.Canceled) || !f.released {
		t.Fatalf("Dial with ctx cancelled: %v, released %v", err, f.released)
	}
	if _, _, err := dialWith(ctx, "ftp://example.test/", nil, nil); err == nil {
		t.Fatal("Dial of ftp:// succeeded")
	}
}

// The frames a Conn writes, cut anywhere, and bytes no Conn writes: the
// parser sends what whole messages it finds and never panics.
func FuzzBrowserSockWrite(f *testing.F) {
	var frames bytes.Buffer
	c := newConn(nopConn{w: &frames}, true, "", connConfig{}, nil, nil)
	ctx := context.Background()
	c.Write(ctx, Text, []byte("hello"))
	w, _ := c.Writer(ctx, Binary)
	w.Write([]byte("frag"))
	w.Write(bytes.Repeat([]byte{1}, 300))
	w.Close()
	c.Close(4000, "bye")
	f.Add(frames.Bytes(), 3)
	f.Add([]byte{0x89, 0x80, 1, 2, 3, 4}, 1) // a ping
	f.Add([]byte{0x01, 0x80, 1, 2, 3, 4, 0x01, 0x80, 1, 2, 3, 4}, 2)
	f.Fuzz(func(t *testing.T, b []byte, cut int) {
		s := newBrowserSock("ws://example.test/")
		fb := &fakeBrowser{s: s, state: 1, quiet: true}
		s.ws = fb
		cut = max(cut, 1)
		for len(b) > 0 {
			k := min(cut, len(b))
			if _, err := s.Write(b[:k]); err != nil {
				return
			}
			b = b[k:]
		}
		for _, m := range fb.sentMsgs() {
			if len(m.p) > browserMaxGathered {
				t.Fatalf("sent %d bytes", len(m.p))
			}
		}
	})
}

// nopConn is a net.Conn that writes to w and reads nothing.
type nopConn struct {
	net.Conn // nil: the methods below are all a Conn uses
	w        io.Writer
}

func (c nopConn) Write(p []byte) (int, error)    { return c.w.Write(p) }
func (nopConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (nopConn) Close() error                     { return nil }
func (nopConn) SetDeadline(time.Time) error      { return nil }
func (nopConn) SetReadDeadline(time.Time) error  { return nil }
func (nopConn) SetWriteDeadline(time.Time) error { return nil }
