package ws

// Tests of WebSockets over HTTP/2 (RFC 8441). net/http's server supports
// extended CONNECT only when the process starts with GODEBUG containing
// http2xconnect=1, so TestH2 runs TestH2Child in a child process started
// with it. The client is net/http's own HTTP/2 transport, and our own Conn
// speaks WebSocket over the stream.

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// h2ChildEnv marks the child process of TestH2.
const h2ChildEnv = "WESOS_H2_CHILD"

// TestH2 runs the HTTP/2 tests (TestH2Child) in a child process whose
// GODEBUG turns extended CONNECT on.
func TestH2(t *testing.T) {
	if os.Getenv(h2ChildEnv) != "" {
		t.Skip("in the child process")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestH2Child$", "-test.count=1", "-test.v")
	godebug := "http2xconnect=1"
	if g := os.Getenv("GODEBUG"); g != "" {
		godebug = g + "," + godebug
	}
	cmd.Env = append(os.Environ(), h2ChildEnv+"=1", "GODEBUG="+godebug)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child process: %v\n%s", err, out)
	}
	// The child must have run the tests, not skipped them.
	passed := regexp.MustCompile(`(?m)^\s*--- PASS: TestH2Child/(\S+)`).FindAllSubmatch(out, -1)
	if len(passed) == 0 || bytes.Contains(out, []byte("--- SKIP: TestH2Child ")) {
		t.Fatalf("the child ran no HTTP/2 test:\n%s", out)
	}
	var names []string
	for _, m := range passed {
		names = append(names, string(m[1]))
	}
	t.Logf("passed in the child: %s", strings.Join(names, " "))
}

// TestH2Disabled checks that without the GODEBUG setting the server does
// not offer extended CONNECT: the client refuses to send it.
func TestH2Disabled(t *testing.T) {
	if strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		t.Skip("GODEBUG has http2xconnect=1")
	}
	srv := startH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the handler ran for %s %s", r.Method, r.Proto)
	}))
	_, _, err := h2Dial(t, newH2Client(t, srv), srv.URL, nil)
	if err == nil || !strings.Contains(err.Error(), "extended connect not supported") {
		t.Fatalf("got %v, want the client to refuse extended CONNECT", err)
	}
}

// TestH2Child holds the tests that need extended CONNECT.
func TestH2Child(t *testing.T) {
	if os.Getenv(h2ChildEnv) == "" {
		t.Skip("runs in the child process of TestH2")
	}
	t.Run("Echo", testH2Echo)
	t.Run("PingPong", testH2PingPong)
	t.Run("CloseFromClient", testH2CloseFromClient)
	t.Run("CloseFromServer", testH2CloseFromServer)
	t.Run("HandlerReturn", testH2HandlerReturn)
	t.Run("Refusals", testH2Refusals)
	t.Run("Subprotocol", testH2Subprotocol)
	t.Run("Compression", testH2Compression)
	t.Run("ReadDeadline", testH2ReadDeadline)
	t.Run("BlockedWrite", testH2BlockedWrite)
	t.Run("ServerTimeouts", testH2ServerTimeouts)
	t.Run("AllowedOrigin", testH2AllowedOrigin)
	t.Run("Middleware", testH2Middleware)
	t.Run("ServerBroadcast", testH2ServerBroadcast)
	t.Run("HTTP1Unchanged", testH2HTTP1Unchanged)
}

// startH2Server starts a TLS server speaking HTTP/2.
func startH2Server(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = nil
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// newH2Client returns an HTTP/2 RoundTripper over a new connection to srv.
// It is net/http's HTTP/2 transport itself: http.Transport.RoundTrip
// refuses the :protocol pseudo-header (not a valid header name), while the
// HTTP/2 transport, which TLSNextProto["h2"] returns, sends it.
func newH2Client(t testing.TB, srv *httptest.Server) http.RoundTripper {
	t.Helper()
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.CloseIdleConnections() // sets up HTTP/2: TLSNextProto["h2"]
	upgrade := tr.TLSNextProto["h2"]
	if upgrade == nil {
		t.Fatal("the transport has no HTTP/2")
	}
	cfg := tr.TLSClientConfig.Clone()
	cfg.NextProtos = []string{"h2"}
	addr := srv.Listener.Addr().String()
	tc, err := tls.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		tc.Close()
		t.Fatalf("negotiated %q, want h2", p)
	}
	rt := upgrade(addr, tc)
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		tc.Close()
	})
	return rt
}

var errH2Aborted = errors.New("write aborted")

// h2Dial sends an RFC 8441 handshake to url and, on 200, returns our client
// Conn over the stream. hdr adds request headers; a nil value in it
// removes one.
func h2Dial(t testing.TB, rt http.RoundTripper, url string, hdr http.Header, opts ...*CompressionOptions) (*http.Response, *Conn, error) {
	t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequestWithContext(testCtx(t), http.MethodConnect, url, pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set(":protocol", "websocket")
	req.Header.Set("Sec-WebSocket-Version", "13")
	var copts *CompressionOptions
	if len(opts) > 0 && opts[0] != nil {
		copts = opts[0]
		req.Header.Set("Sec-WebSocket-Extensions", offerDeflate(copts))
	}
	for k, v := range hdr {
		if v == nil {
			req.Header.Del(k)
		} else {
			req.Header[k] = v
		}
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		pw.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		pw.Close()
		resp.Body.Close()
		return resp, nil, nil
	}
	var deflate *deflateState
	if copts != nil {
		params, ok, err := checkDeflateResponse(resp.Header.Values("Sec-WebSocket-Extensions"))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			deflate = newDeflateState(params, true, copts)
		}
	}
	sc := newStreamConn(resp.Body, pw.Write)
	sc.abort = func() { pw.CloseWithError(errH2Aborted) }
	sc.end = func() { pw.Close() }
	sc.laddr, sc.raddr = streamAddr("client"), streamAddr(url)
	sc.start()
	c := newConn(sc, true, resp.Header.Get("Sec-WebSocket-Protocol"), connConfig{}, deflate, nil)
	t.Cleanup(func() { c.CloseNow() })
	return resp, c, nil
}

// h2Pair returns a server Conn from Accept with opts and our client Conn
// over HTTP/2. The server's handler runs until the test ends or until its
// Conn is closed and done is called; serverDone reports its return.
type h2Pair struct {
	srv        *httptest.Server
	server     *Conn
	client     *Conn
	resp       *http.Response
	release    func()        // lets the handler return
	serverDone chan struct{} // closed when the handler returned
}

func newH2Pair(t *testing.T, opts *AcceptOptions, hdr http.Header) *h2Pair {
	t.Helper()
	p := &h2Pair{serverDone: make(chan struct{})}
	accepted := make(chan *Conn, 1)
	release := make(chan struct{})
	var once sync.Once
	p.release = func() { once.Do(func() { close(release) }) }
	var handlers sync.WaitGroup
	p.srv = startH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers.Add(1)
		defer handlers.Done()
		c, err := Accept(w, r, opts)
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		accepted <- c
		<-release
		c.CloseNow() // the Conn must be closed before the handler returns
		close(p.serverDone)
	}))
	t.Cleanup(handlers.Wait)
	t.Cleanup(p.release)
	resp, c, err := h2Dial(t, newH2Client(t, p.srv), p.srv.URL+"/ws", hdr)
	if err != nil {
		t.Fatal(err)
	}
	if c == nil {
		t.Fatalf("handshake: %s", resp.Status)
	}
	p.resp, p.client = resp, c
	select {
	case p.server = <-accepted:
	case <-time.After(testTimeout):
		t.Fatal("Accept did not return")
	}
	return p
}

// echo runs an echo loop on c until it fails, and returns its error.
func echo(ctx context.Context, c *Conn) error {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, b); err != nil {
			return err
		}
	}
}

func testH2Echo(t *testing.T) {
	ctx := testCtx(t)
	p := newH2Pair(t, nil, nil)
	if p.resp.ProtoMajor != 2 {
		t.Fatalf("response over %s", p.resp.Proto)
	}
	if got := p.resp.Header.Get("Sec-WebSocket-Accept"); got != "" {
		t.Errorf("Sec-WebSocket-Accept %q in an HTTP/2 response", got)
	}
	echoed := goAsync(t, func() error { return echo(ctx, p.server) })

	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7)
	}
	msgs := []struct {
		typ MessageType
		b   []byte
	}{
		{Text, []byte("hello over HTTP/2")},
		{Binary, []byte{0, 1, 2, 3, 255}},
		{Text, []byte("")},
		{Binary, big},
		{Text, []byte(strings.Repeat("é", 40000))},
	}
	for _, m := range msgs {
		if err := p.client.Write(ctx, m.typ, m.b); err != nil {
			t.Fatal(err)
		}
		typ, b, err := p.client.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if typ != m.typ || !bytes.Equal(b, m.b) {
			t.Fatalf("echo of %v (%d bytes): got %v (%d bytes)", m.typ, len(m.b), typ, len(b))
		}
	}
	// A streamed message, in fragments.
	wc, err := p.client.Writer(ctx, Binary)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		fmt.Fprintf(wc, "part %d;", i)
	}
	if err := wc.Close(); err != nil {
		t.Fatal(err)
	}
	_, b, err := p.client.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := "part 0;part 1;part 2;part 3;part 4;part 5;part 6;part 7;part 8;part 9;"; string(b) != want {
		t.Fatalf("got %q, want %q", b, want)
	}
	if err := p.client.Close(StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	wantCloseError(t, echoed(), StatusNormalClosure, "bye")
	if p.server.RemoteAddr() == nil || p.server.LocalAddr() == nil ||
		!strings.HasPrefix(p.server.LocalAddr().String(), "127.0.0.1:") {
		t.Errorf("addresses: local %v, remote %v", p.server.LocalAddr(), p.server.RemoteAddr())
	}
}

func testH2PingPong(t *testing.T) {
	ctx := testCtx(t)
	var pings [][]byte
	var mu sync.Mutex
	p := newH2Pair(t, &AcceptOptions{OnPing: func(b []byte) {
		mu.Lock()
		pings = append(pings, bytes.Clone(b))
		mu.Unlock()
	}}, nil)
	echoed := goAsync(t, func() error { return echo(ctx, p.server) })
	read := goAsync(t, func() error {
		_, err := readAll(ctx, p.client)
		return err
	})
	// The client pings; the server's reader answers.
	for range 3 {
		if err := p.client.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// The server pings; the client's reader answers.
	if err := p.server.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	n := len(pings)
	mu.Unlock()
	if n != 3 {
		t.Errorf("OnPing saw %d pings, want 3", n)
	}
	p.server.Close(StatusGoingAway, "done")
	wantCloseError(t, read(), StatusGoingAway, "done")
	if err := echoed(); err == nil {
		t.Fatal("echo ended without an error")
	}
}

func testH2CloseFromClient(t *testing.T) {
	ctx := testCtx(t)
	p := newH2Pair(t, nil, nil)
	echoed := goAsync(t, func() error { return echo(ctx, p.server) })
	if err := p.client.Close(StatusCode(4001), "client leaves"); err != nil {
		t.Fatal(err)
	}
	wantCloseError(t, echoed(), StatusCode(4001), "client leaves")
	// The client's Conn is closed: its reads fail.
	if _, _, err := p.client.Read(ctx); err == nil {
		t.Fatal("a read after Close succeeded")
	}
	// The server's Conn closed its side; once the handler returns the
	// stream ends.
	p.server.CloseNow()
	p.release()
	<-p.serverDone
}

func testH2CloseFromServer(t *testing.T) {
	ctx := testCtx(t)
	p := newH2Pair(t, nil, nil)
	read := goAsync(t, func() error {
		_, err := readAll(ctx, p.client)
		return err
	})
	if err := p.server.Close(StatusCode(4002), "server leaves"); err != nil {
		t.Fatal(err)
	}
	wantCloseError(t, read(), StatusCode(4002), "server leaves")
	// Writes after the close fail without touching the stream.
	if err := p.server.Write(ctx, Text, []byte("late")); err == nil {
		t.Fatal("a write after Close succeeded")
	}
	p.release()
	<-p.serverDone
}

// testH2HandlerReturn checks that the handler's return ends the stream:
// the client's reads fail once it returns, even though the server's Conn
// sent no close frame.
func testH2HandlerReturn(t *testing.T) {
	ctx := testCtx(t)
	p := newH2Pair(t, nil, nil)
	read := goAsync(t, func() error {
		_, err := readAll(ctx, p.client)
		return err
	})
	// A blocked server read returns when the Conn is closed.
	serverRead := goAsync(t, func() error {
		_, _, err := p.server.Read(ctx)
		return err
	})
	time.Sleep(20 * time.Millisecond)
	p.release() // CloseNow, then return
	select {
	case <-p.serverDone:
	case <-time.After(testTimeout):
		t.Fatal("the handler did not return")
	}
	if err := serverRead(); err == nil {
		t.Fatal("the server's read returned no error")
	}
	err := read()
	if !errors.Is(err, CloseError{Code: StatusAbnormalClosure}) {
		t.Fatalf("client read: %v, want an abnormal closure", err)
	}
}

func testH2Refusals(t *testing.T) {
	srv := startH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, &AcceptOptions{OriginPatterns: []string{"good.example"}})
		if err == nil {
			t.Errorf("Accept took %v", r.Header)
			c.CloseNow()
		}
	}))
	rt := newH2Client(t, srv)
	for _, tc := range []struct {
		name    string
		hdr     http.Header
		status  int
		version string
	}{
		{"origin", http.Header{"Origin": {"https://evil.example"}}, http.StatusForbidden, ""},
		{"version", http.Header{"Sec-Websocket-Version": {"8"}}, http.StatusUpgradeRequired, "13"},
		{"no version", http.Header{"Sec-Websocket-Version": nil}, http.StatusUpgradeRequired, "13"},
		{"protocol", http.Header{":protocol": {"not-websocket"}}, http.StatusBadRequest, ""},
	} {
		resp, c, err := h2Dial(t, rt, srv.URL+"/ws", tc.hdr)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if c != nil || resp.StatusCode != tc.status {
			t.Fatalf("%s: got %s, want %d", tc.name, resp.Status, tc.status)
		}
		if got := resp.Header.Get("Sec-WebSocket-Version"); got != tc.version {
			t.Errorf("%s: Sec-WebSocket-Version %q, want %q", tc.name, got, tc.version)
		}
	}
}

func testH2Subprotocol(t *testing.T) {
	ctx := testCtx(t)
	p := newH2Pair(t, &AcceptOptions{Subprotocols: []string{"v2.chat", "v1.chat"}},
		http.Header{"Sec-Websocket-Protocol": {"v1.chat, v2.chat"}})
	if got := p.resp.Header.Get("Sec-WebSocket-Protocol"); got != "v2.chat" {
		t.Fatalf("response Sec-WebSocket-Protocol %q, want v2.chat", got)
	}
	if p.server.Subprotocol() != "v2.chat" || p.client.Subprotocol() != "v2.chat" {
		t.Fatalf("subprotocols %q and %q", p.server.Subprotocol(), p.client.Subprotocol())
	}
	echoed := goAsync(t, func() error { return echo(ctx, p.server) })
	p.client.Write(ctx, Text, []byte("hi"))
	if _, b, err := p.client.Read(ctx); err != nil || string(b) != "hi" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	p.client.Close(StatusNormalClosure, "")
	echoed()

	// No common subprotocol: accepted without one.
	q := newH2Pair(t, &AcceptOptions{Subprotocols: []string{"v3"}},
		http.Header{"Sec-Websocket-Protocol": {"v1.chat"}})
	if _, ok := q.resp.Header["Sec-Websocket-Protocol"]; ok || q.server.Subprotocol() != "" {
		t.Fatalf("subprotocol %q chosen", q.server.Subprotocol())
	}
}

func testH2Compression(t *testing.T) {
	ctx := testCtx(t)
	copts := &CompressionOptions{}
	p := newH2PairDeflate(t, &AcceptOptions{Compression: copts}, copts)
	if got := p.resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(got, "permessage-deflate") {
		t.Fatalf("Sec-WebSocket-Extensions %q", got)
	}
	if p.server.deflate == nil || p.client.deflate == nil {
		t.Fatal("permessage-deflate not negotiated on both ends")
	}
	echoed := goAsync(t, func() error { return echo(ctx, p.server) })
	msg := []byte(strings.Repeat("compress me over HTTP/2 ", 5000))
	for range 3 {
		if err := p.client.Write(ctx, Text, msg); err != nil {
			t.Fatal(err)
		}
		if _, b, err := p.client.Read(ctx); err != nil || !bytes.Equal(b, msg) {
			t.Fatalf("echo: %d bytes, %v", len(b), err)
		}
	}
	p.client.Close(StatusNormalClosure, "")
	wantCloseError(t, echoed(), StatusNormalClosure, "")
}

// newH2PairDeflate is newH2Pair with the client offering permessage-deflate.
func newH2PairDeflate(t *testing.T, opts *AcceptOptions, copts *CompressionOptions) *h2Pair {
	t.Helper()
	p := &h2Pair{serverDone: make(chan struct{})}
	accepted := make(chan *Conn, 1)
	release := make(chan struct{})
	p.release = func() { close(release) }
	p.srv = startH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			t.Errorf("Accept: %v", err)
			return
		}
		accepted <- c
		<-release
		c.CloseNow()
		close(p.serverDone)
	}))
	t.Cleanup(func() { p.release(); <-p.serverDone })
	resp, c, err := h2Dial(t, newH2Client(t, p.srv), p.srv.URL+"/ws", nil, copts)
	if err != nil || c == nil {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	p.resp, p.client = resp, c
	p.server = <-accepted
	return p
}

// testH2ReadDeadline checks that a read cut short by its context leaves the
// stream usable, as on TCP: the next read gets the message.
func testH2ReadDeadline(t *testing.T) {
	ctx := testCtx(t)
	p := newH2Pair(t, nil, nil)
	short, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	if _, _, err := p.server.Read(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read with a short context: %v", err)
	}
	if err := p.client.Write(ctx, Text, []byte("after the timeout")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := p.server.Read(ctx); err != nil || string(b) != "after the timeout" {
		t.Fatalf("read after the timeout: %q, %v", b, err)
	}
	// And a write the other way still goes through.
	if err := p.server.Write(ctx, Binary, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, b, err := p.client.Read(ctx); err != nil || !bytes.Equal(b, []byte{1, 2, 3}) {
		t.Fatalf("client read: %v, %v", b, err)
	}
}

// testH2BlockedWrite checks that a write blocked by HTTP/2 flow control (the
// client reads nothing) returns when its context ends, and when the Conn is
// closed.
func testH2BlockedWrite(t *testing.T) {
	ctx := testCtx(t)
	big := make([]byte, 16<<20) // more than the client's windows

	p := newH2Pair(t, nil, nil)
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := p.server.Write(short, Binary, big)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("blocked write with a short context: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("the write returned after %v", d)
	}
	// The frame was cut: the Conn is closed and the stream reset, so the
	// client's read fails.
	if _, _, err := p.client.Read(ctx); err == nil {
		t.Fatal("the client read a cut message")
	}

	q := newH2Pair(t, nil, nil)
	wrote := make(chan error, 1)
	go func() { wrote <- q.server.Write(ctx, Binary, big) }()
	select {
	case err := <-wrote:
		t.Fatalf("the write did not block: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	q.server.CloseNow()
	select {
	case err := <-wrote:
		if err == nil {
			t.Fatal("the interrupted write returned nil")
		}
	case <-time.After(testTimeout):
		t.Fatal("CloseNow did not unblock the write")
	}
	q.release()
	<-q.serverDone
}

// testH2ServerTimeouts checks that the server's ReadTimeout and
// WriteTimeout, which net/http applies to each HTTP/2 stream, do not cut a
// WebSocket connection.
func testH2ServerTimeouts(t *testing.T) {
	ctx := testCtx(t)
	accepted := make(chan error, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			accepted <- err
			return
		}
		defer c.CloseNow()
		accepted <- echo(ctx, c)
	}))
	srv.EnableHTTP2 = true
	// Long enough for the TLS handshake, which they also bound.
	srv.Config.ReadTimeout = 300 * time.Millisecond
	srv.Config.WriteTimeout = 300 * time.Millisecond
	srv.StartTLS()
	defer srv.Close()
	_, c, err := h2Dial(t, newH2Client(t, srv), srv.URL, nil)
	if err != nil || c == nil {
		t.Fatalf("dial: %v", err)
	}
	time.Sleep(700 * time.Millisecond)
	if err := c.Write(ctx, Text, []byte("still there")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "still there" {
		t.Fatalf("echo after the timeouts: %q, %v", b, err)
	}
	c.Close(StatusNormalClosure, "")
	wantCloseError(t, <-accepted, StatusNormalClosure, "")
}

// testH2AllowedOrigin checks that an origin matching OriginPatterns is
// accepted.
func testH2AllowedOrigin(t *testing.T) {
	p := newH2Pair(t, &AcceptOptions{OriginPatterns: []string{"*.example"}},
		http.Header{"Origin": {"https://good.example"}})
	if p.server == nil {
		t.Fatal("no server Conn")
	}
}

// unwrapWriter is middleware's ResponseWriter that lets
// http.ResponseController reach the one underneath.
type unwrapWriter struct{ http.ResponseWriter }

func (w unwrapWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// testH2Middleware checks Accept through middleware: with an Unwrap method
// it works, without one (no deadlines, no flushing) the request is refused
// with 500.
func testH2Middleware(t *testing.T) {
	ctx := testCtx(t)
	srv := startH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/opaque" {
			w = struct{ http.ResponseWriter }{w}
		} else {
			w = unwrapWriter{w}
		}
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(ctx, c)
	}))
	rt := newH2Client(t, srv)
	resp, c, err := h2Dial(t, rt, srv.URL+"/opaque", nil)
	if err != nil || c != nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("opaque writer: %v %v", resp, err)
	}
	_, c, err = h2Dial(t, rt, srv.URL+"/unwrap", nil)
	if err != nil || c == nil {
		t.Fatalf("unwrapping writer: %v", err)
	}
	if err := c.Write(ctx, Text, []byte("through middleware")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "through middleware" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	c.Close(StatusNormalClosure, "")
}

// testH2ServerBroadcast runs a Server over HTTP/2: its handler runs within
// ServeHTTP, a broadcast reaches two clients (on one HTTP/2 connection),
// the handler's return closes with 1000 and ends the stream, and Shutdown
// closes the rest with 1001.
func testH2ServerBroadcast(t *testing.T) {
	ctx := testCtx(t)
	handlerErrs := make(chan error, 4)
	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error {
		typ, b, err := c.Read(ctx)
		if err != nil {
			handlerErrs <- err
			return nil
		}
		if string(b) == "echo once" {
			handlerErrs <- c.Write(ctx, typ, b)
			return nil // the Server closes c with 1000
		}
		_, err = readAll(ctx, c) // until Shutdown's close
		handlerErrs <- err
		return nil
	}, &AcceptOptions{CloseTimeout: time.Second})
	hs := startH2Server(t, srv)
	rt := newH2Client(t, hs)
	dial := func() *Conn {
		_, c, err := h2Dial(t, rt, hs.URL+"/ws", nil)
		if err != nil || c == nil {
			t.Fatalf("dial: %v", err)
		}
		return c
	}

	// A handler that returns closes its connection with 1000.
	a := dial()
	if err := a.Write(ctx, Text, []byte("echo once")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := a.Read(ctx); err != nil || string(b) != "echo once" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	if err := <-handlerErrs; err != nil {
		t.Fatal(err)
	}
	_, _, err := a.Read(ctx)
	wantCloseError(t, err, StatusNormalClosure, "")
	waitFor(t, "the connection to leave the server", func() bool { return srv.Len() == 0 })

	// Broadcast to two connections.
	b, c := dial(), dial()
	for _, x := range []*Conn{b, c} {
		if err := x.Write(ctx, Text, []byte("stay")); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "two connections", func() bool { return srv.Len() == 2 })
	big := bytes.Repeat([]byte("broadcast "), 30000)
	for _, m := range [][]byte{[]byte("to all"), big} {
		if err := srv.Send(ctx, Message{Type: Text, Body: bytes.NewReader(m)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range []*Conn{b, c} {
		for _, want := range [][]byte{[]byte("to all"), big} {
			if _, got, err := x.Read(ctx); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("broadcast: %d bytes, %v", len(got), err)
			}
		}
	}
	// The clients read (and so answer the close frames) during Shutdown.
	var reads []func() error
	for _, x := range []*Conn{b, c} {
		reads = append(reads, goAsync(t, func() error {
			_, _, err := x.Read(ctx)
			return err
		}))
	}
	start := time.Now()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("Shutdown took %v: the close handshakes timed out", d)
	}
	for _, read := range reads {
		wantCloseError(t, read(), StatusGoingAway, "server shutting down")
	}
	for range 2 {
		if err := <-handlerErrs; err == nil {
			t.Error("a handler's read ended without an error")
		}
	}
	if srv.Len() != 0 {
		t.Fatalf("%d connections left", srv.Len())
	}
}

// testH2HTTP1Unchanged checks that with the setting on, HTTP/1.1 upgrades
// still work on the same server.
func testH2HTTP1Unchanged(t *testing.T) {
	ctx := testCtx(t)
	srv := startH2Server(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		echo(ctx, c)
	}))
	tlsConfig := srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	c, resp, err := Dial(ctx, "wss"+strings.TrimPrefix(srv.URL, "https"), &DialOptions{TLSConfig: tlsConfig})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %s", resp.Status)
	}
	if err := c.Write(ctx, Text, []byte("h1")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "h1" {
		t.Fatalf("echo: %q, %v", b, err)
	}
	c.Close(StatusNormalClosure, "")
}
