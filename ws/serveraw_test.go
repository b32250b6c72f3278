package ws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// serveOn runs srv.Serve on a loopback listener, wrapped by wrap if it is
// not nil, and returns the listener's address, and stop, which shuts srv
// down and checks that Serve then returned ErrServerClosed; the cleanup
// stops it too.
func serveOn(tb testing.TB, srv *Server, wrap func(net.Listener) net.Listener) (addr string, stop func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	addr = ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	stop = sync.OnceFunc(func() {
		srv.Shutdown(context.Background())
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			tb.Errorf("Serve returned %v after Shutdown, want ErrServerClosed", err)
		}
	})
	tb.Cleanup(stop)
	return addr, stop
}

// handshakeServer is a way of serving a Server: through net/http
// (httptest, ServeHTTP) or on its own listener (Serve). start returns the
// address and stop, which shuts it all down (the cleanup does too).
type handshakeServer struct {
	name  string
	start func(tb testing.TB, srv *Server) (addr string, stop func())
}

// handshakeServers are the two ways of serving a Server, side by side:
// ServeHTTP behind ws.HTTPServer's header limit, which Serve has too.
var handshakeServers = []handshakeServer{
	{"ServeHTTP", func(tb testing.TB, srv *Server) (string, func()) {
		hs := httptest.NewUnstartedServer(srv)
		hs.Config.MaxHeaderBytes = DefaultMaxHeaderBytes
		hs.Start()
		stop := sync.OnceFunc(func() { srv.Shutdown(context.Background()); hs.Close() })
		tb.Cleanup(stop)
		return strings.TrimPrefix(hs.URL, "http://"), stop
	}},
	{"Serve", func(tb testing.TB, srv *Server) (string, func()) { return serveOn(tb, srv, nil) }},
}

// serveCase is a request to a Server, which Serve and ServeHTTP must
// answer alike.
type serveCase struct {
	name     string
	req      func(host string) string
	opts     *AcceptOptions
	status   int
	check    func(t *testing.T, resp *http.Response)
	sameBody bool // the answer is the handshake's, not net/http's own
}

// serveCases are the handshake's cases (handshakeCases), the requests
// net/http itself refuses before any handler runs, and those of Admit.
func serveCases() []serveCase {
	var cases []serveCase
	for _, tc := range handshakeCases() {
		cases = append(cases, serveCase{tc.name, tc.request, tc.opts, tc.status, tc.check, true})
	}
	raw := func(name string, status int, req string) serveCase {
		return serveCase{name: name, status: status, req: func(host string) string {
			return strings.ReplaceAll(req, "HOST", host)
		}}
	}
	const rest = "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + clientKey + "\r\n\r\n"
	cases = append(cases,
		raw("request line of two words", 400, "GET /ws\r\nHost: HOST\r\n"+rest),
		raw("request line of four words", 400, "GET /ws HTTP/1.1 x\r\nHost: HOST\r\n"+rest),
		raw("method not a token", 400, "G(T /ws HTTP/1.1\r\nHost: HOST\r\n"+rest),
		raw("version in lower case", 400, "GET /ws http/1.1\r\nHost: HOST\r\n"+rest),
		raw("version HTTP/1", 400, "GET /ws HTTP/1\r\nHost: HOST\r\n"+rest),
		raw("HTTP/2.0", 505, "GET /ws HTTP/2.0\r\nHost: HOST\r\n"+rest),
		raw("HTTP/1.1 without Host", 400, "GET /ws HTTP/1.1\r\n"+rest),
		raw("two Host headers", 400, "GET /ws HTTP/1.1\r\nHost: HOST\r\nHost: HOST\r\n"+rest),
		raw("malformed Host", 400, "GET /ws HTTP/1.1\r\nHost: HO ST\r\n"+rest),
		raw("space before the colon", 400, "GET /ws HTTP/1.1\r\nHost: HOST\r\nUpgrade : websocket\r\n"+rest),
		raw("header line without a colon", 400, "GET /ws HTTP/1.1\r\nHost: HOST\r\nUpgrade websocket\r\n"+rest),
		raw("first header line folded", 400, "GET /ws HTTP/1.1\r\n Host: HOST\r\n"+rest),
		raw("control character in a value", 400, "GET /ws HTTP/1.1\r\nHost: HOST\r\nX-A: a\x01b\r\n"+rest),
		raw("Transfer-Encoding gzip", 501, "GET /ws HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: gzip\r\n"+rest),
		raw("Content-Length not a number", 400, "GET /ws HTTP/1.1\r\nHost: HOST\r\nContent-Length: x\r\n"+rest),
		raw("Content-Lengths that differ", 400, "GET /ws HTTP/1.1\r\nHost: HOST\r\nContent-Length: 0\r\nContent-Length: 1\r\n"+rest),
		raw("Content-Length with a body", 400, "GET /ws HTTP/1.1\r\nHost: HOST\r\nContent-Length: 2\r\n"+rest+"hi"),
		raw("chunked body", 400, "GET /ws HTTP/1.1\r\nHost: HOST\r\nTransfer-Encoding: chunked\r\n"+rest+"2\r\nhi\r\n0\r\n\r\n"),
		raw("bad escape in the path", 400, "GET /w%zz HTTP/1.1\r\nHost: HOST\r\n"+rest),
		raw("absolute target", 101, "GET http://HOST/ws HTTP/1.1\r\nHost: HOST\r\n"+rest),
		raw("absolute target names the host", 403, "GET http://other.example/ws HTTP/1.1\r\nHost: HOST\r\nOrigin: http://HOST\r\n"+rest),
		raw("bare line feeds", 101, strings.ReplaceAll("GET /ws HTTP/1.1\r\nHost: HOST\r\n"+rest, "\r\n", "\n")),
		raw("headers over the limit", 431, "GET /ws HTTP/1.1\r\nHost: HOST\r\nX-Pad: "+strings.Repeat("p", DefaultMaxHeaderBytes+8<<10)+"\r\n"+rest),
		raw("query and escapes", 101, "GET /ws%20x?a=%zz&b HTTP/1.1\r\nHost: HOST\r\n"+rest),
	)
	folded := raw("value folded over lines", 101, "GET /ws HTTP/1.1\r\nHost: HOST\r\nSec-WebSocket-Protocol: a,\r\n\t b \r\n c\r\n"+rest)
	folded.opts = &AcceptOptions{Subprotocols: []string{"c b", "b c", "b", "c"}}
	folded.check = func(t *testing.T, resp *http.Response) {
		if p := resp.Header.Get("Sec-WebSocket-Protocol"); p != "b c" { // as net/http joins the lines
			t.Errorf("chose %q from a folded offer", p)
		}
	}
	cases = append(cases, folded)
	admit := &AcceptOptions{Admit: roomAdmit}
	room := func(name, target, cookie string, status int, check func(t *testing.T, resp *http.Response)) serveCase {
		return serveCase{name: name, opts: admit, status: status, check: check, sameBody: true, req: func(host string) string {
			var extra []string
			if cookie != "" {
				extra = append(extra, "Cookie: session="+cookie)
			}
			return requestTo(host, target, extra...)
		}}
	}
	hasHeader := func(name, want string) func(t *testing.T, resp *http.Response) {
		return func(t *testing.T, resp *http.Response) {
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
		}
	}
	cases = append(cases,
		room("Admit: no cookie", "/rooms/go", "", 401, hasHeader("WWW-Authenticate", `Cookie realm="chat"`)),
		room("Admit: wrong session", "/rooms/go", "bad", 403, nil),
		room("Admit: its own error", "/rooms/go", "broken", 403, nil),
		room("Admit: no such room", "/rooms/java", "ok", 404, nil),
		room("Admit: admitted", "/rooms/go?user=ann", "ok", 101, hasHeader("Set-Cookie", "seen=go")),
		serveCase{name: "SelectSubprotocol", status: 101, sameBody: true, check: hasHeader("Sec-WebSocket-Protocol", "b"),
			opts: &AcceptOptions{SelectSubprotocol: func(r *http.Request, offered []string) string {
				if r.Header.Get("Sec-WebSocket-Key") != clientKey || r.URL.Path != "/ws" {
					return ""
				}
				return offered[len(offered)-1]
			}},
			req: func(host string) string { return upgradeRequest(host, "Sec-WebSocket-Protocol: a, b") }},
		serveCase{name: "compression", status: 101, sameBody: true, opts: &AcceptOptions{Compression: &CompressionOptions{}},
			check: hasHeader("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
			req:   func(host string) string { return upgradeRequest(host, "Sec-WebSocket-Extensions: permessage-deflate") }},
	)
	return cases
}

// answer is what a test compares of two answers to the same request.
type answer struct {
	status  int
	headers map[string][]string
	body    string
}

// answerHeaders are the headers that Serve and ServeHTTP must answer alike.
var answerHeaders = []string{
	"Upgrade", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Sec-Websocket-Version",
	"Allow", "Www-Authenticate", "Set-Cookie", "Content-Type", "X-Content-Type-Options",
}

// TestServeAnswersLikeServeHTTP sends every request of serveCases to a
// Server through net/http (ServeHTTP) and to one on its own listener
// (Serve), over real sockets: the status must be the case's, the headers
// and the text of the answer the same on both, a refusal of Serve must
// close the connection, and an upgraded connection must work.
func TestServeAnswersLikeServeHTTP(t *testing.T) {
	for _, tc := range serveCases() {
		t.Run(tc.name, func(t *testing.T) {
			var answers []answer
			for _, hs := range handshakeServers {
				opts := AcceptOptions{}
				if tc.opts != nil {
					opts = *tc.opts
				}
				opts.ErrorLog = slog.New(slog.DiscardHandler)
				opts.CloseTimeout = 100 * time.Millisecond // the raw clients never answer a close
				srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) }, &opts)
				host, _ := hs.start(t, srv)
				a := answerTo(t, hs.name, host, tc)
				if tc.check != nil {
					tc.check(t, &http.Response{Header: a.headers})
				}
				answers = append(answers, a)
			}
			want, got := answers[0], answers[1]
			if got.status != want.status {
				t.Fatalf("Serve answered %d, ServeHTTP %d", got.status, want.status)
			}
			for _, name := range answerHeaders {
				if !tc.sameBody && (name == "Content-Type" || name == "X-Content-Type-Options") {
					continue // net/http's own refusal, in its own words
				}
				if g, w := strings.Join(got.headers[name], "|"), strings.Join(want.headers[name], "|"); g != w {
					t.Errorf("%s: Serve %q, ServeHTTP %q", name, g, w)
				}
			}
			if tc.sameBody && got.body != want.body {
				t.Errorf("body: Serve %q, ServeHTTP %q", got.body, want.body)
			}
		})
	}
}

// answerTo sends tc's request to host and returns the answer; a 101 is
// checked with an echo, a refusal by Serve for its closing.
func answerTo(t *testing.T, path, host string, tc serveCase) answer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", host, testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(testTimeout))
	// The server may answer, and stop reading, before the whole request
	// is sent (headers over the limit): write in the background.
	written := make(chan error, 1)
	go func() {
		_, err := io.WriteString(nc, tc.req(host))
		written <- err
	}()
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s: reading the answer: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil && resp.StatusCode != 101 {
		t.Fatalf("%s: reading the body: %v", path, err)
	}
	if resp.StatusCode != tc.status {
		t.Fatalf("%s answered %s (%q), want %d", path, resp.Status, body, tc.status)
	}
	switch {
	case resp.StatusCode == 101 && (tc.opts == nil || tc.opts.Compression == nil):
		raw := &rawConn{t: t, nc: nc, br: br, client: true}
		raw.write(raw.fs().msg(opText, "hi"))
		raw.expectFrame(true, opText, "hi")
	case resp.StatusCode != 101 && path == "Serve":
		if !resp.Close {
			t.Errorf("Serve refused without Connection: close")
		}
		if n, err := br.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !isReset(err)) {
			t.Errorf("after its refusal, Serve's connection read %d bytes, %v; want it closed", n, err)
		}
	}
	if resp.StatusCode != 101 {
		nc.Close() // ends the writer of an oversized request
	}
	<-written
	return answer{resp.StatusCode, resp.Header, string(body)}
}

// TestServeDial: our own Dial to Serve, with a subprotocol and compression
// negotiated: messages both ways, a broadcast, the pipelined first frame,
// the close.
func TestServeDial(t *testing.T) {
	srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) }, &AcceptOptions{
		Subprotocols: []string{"chat"},
		Compression:  &CompressionOptions{Threshold: 1},
	})
	addr, _ := serveOn(t, srv, nil)
	ctx := testCtx(t)
	c, resp, err := Dial(ctx, "ws://"+addr+"/chat", &DialOptions{Subprotocols: []string{"x", "chat"}, Compression: &CompressionOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "chat" || !strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatalf("negotiated %q and %q", c.Subprotocol(), resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	big := strings.Repeat("wesos ", 50_000)
	for _, m := range []string{"hi", big} {
		if err := c.Write(ctx, Text, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if _, p, err := c.Read(ctx); err != nil || string(p) != m {
			t.Fatalf("echo of %d bytes: %d bytes, %v", len(m), len(p), err)
		}
	}
	waitFor(t, "the connection to be listed", func() bool { return srv.Len() == 1 })
	if err := srv.Send(ctx, Message{Type: Text, Body: strings.NewReader("to all")}); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "to all" {
		t.Fatalf("broadcast: %q, %v", p, err)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the connection to leave", func() bool { return srv.Len() == 0 })

	// A frame sent with the request, before the 101, is read after it.
	raw := func() *rawConn {
		nc, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		return &rawConn{t: t, nc: nc, br: bufio.NewReader(nc), client: true}
	}()
	raw.write([]byte(upgradeRequest(addr)), raw.fs().msg(opText, "early"))
	raw.nc.SetReadDeadline(time.Now().Add(testTimeout))
	if resp, err := http.ReadResponse(raw.br, nil); err != nil || resp.StatusCode != 101 {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	raw.expectFrame(true, opText, "early")
}

// TestServeTLS: Serve on a tls.NewListener, and our Dial over wss://.
func TestServeTLS(t *testing.T) {
	cert := httptest.NewUnstartedServer(http.NotFoundHandler()) // for its certificate
	cert.StartTLS()
	defer cert.Close()
	var sawTLS atomic.Bool
	srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) }, &AcceptOptions{
		Admit: func(w http.ResponseWriter, r *http.Request) (context.Context, error) {
			sawTLS.Store(r.TLS != nil && r.TLS.HandshakeComplete)
			return nil, nil
		},
	})
	addr, _ := serveOn(t, srv, func(ln net.Listener) net.Listener {
		return tls.NewListener(ln, &tls.Config{Certificates: cert.TLS.Certificates})
	})
	ctx := testCtx(t)
	if _, _, err := Dial(ctx, "wss://"+addr, nil); err == nil {
		t.Fatal("Dial trusted a self-signed certificate")
	}
	tlsCfg := cert.Client().Transport.(*http.Transport).TLSClientConfig
	c, _, err := Dial(ctx, "wss://"+addr, &DialOptions{TLSConfig: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, Binary, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "secret" {
		t.Fatalf("echo over TLS: %q, %v", p, err)
	}
	if !sawTLS.Load() {
		t.Error("Admit's request has no TLS state")
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}

// TestServeShutdown: Shutdown makes Serve return ErrServerClosed on every
// listener, sends 1001 to the open connections, closes one whose request
// has not finished, and waits for the handlers; Serve after Shutdown
// returns ErrServerClosed at once and closes its listener.
func TestServeShutdown(t *testing.T) {
	var handlers atomic.Int64
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		handlers.Add(1)
		defer handlers.Add(-1)
		return wesos.Pipe(ctx, c, c)
	}, nil)
	served := make(chan error, 2)
	var addrs []string
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() { served <- srv.Serve(ln) }()
	}
	ctx := testCtx(t)
	conns := []*Conn{dialEcho(t, ctx, "ws://"+addrs[0]), dialEcho(t, ctx, "ws://"+addrs[1])}
	half, err := net.DialTimeout("tcp", addrs[0], testTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	io.WriteString(half, "GET / HTTP/1.1\r\nHost: x\r\n")
	waitFor(t, "the connections to be listed", func() bool { return srv.Len() == 2 })

	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if handlers.Load() != 0 {
		t.Fatal("Shutdown returned before the handlers")
	}
	for range 2 {
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve returned %v, want ErrServerClosed", err)
		}
	}
	for _, c := range conns {
		wantGoingAway(t, ctx, c)
	}
	half.SetReadDeadline(time.Now().Add(testTimeout))
	if n, err := half.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !isReset(err)) {
		t.Fatalf("the unfinished handshake read %d bytes, %v; want it closed", n, err)
	}
	for _, addr := range addrs {
		if nc, err := net.DialTimeout("tcp", addr, testTimeout); err == nil {
			nc.Close()
			t.Fatalf("%s still accepts connections", addr)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve after Shutdown left its listener open: %v", err)
	}
}

// flakyListener fails its first Accepts with a temporary error, then
// accepts from the listener it wraps; it counts the calls.
type flakyListener struct {
	net.Listener
	fails   int64
	accepts atomic.Int64
	err     error
}

type temporaryError struct{}

func (temporaryError) Error() string   { return "accept: too many open files" }
func (temporaryError) Timeout() bool   { return false }
func (temporaryError) Temporary() bool { return true }

func (l *flakyListener) Accept() (net.Conn, error) {
	if n := l.accepts.Add(1); n <= l.fails {
		return nil, l.err
	}
	return l.Listener.Accept()
}

// TestServeAcceptErrors: Serve retries temporary errors of Accept, after a
// pause, and returns any other.
func TestServeAcceptErrors(t *testing.T) {
	srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) },
		&AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)})
	var fl *flakyListener
	addr, _ := serveOn(t, srv, func(ln net.Listener) net.Listener {
		fl = &flakyListener{Listener: ln, fails: 4, err: temporaryError{}}
		return fl
	})
	start := time.Now()
	dialEcho(t, testCtx(t), "ws://"+addr)
	// The pauses double from 5 ms: 5+10+20+40.
	if d := time.Since(start); d < 75*time.Millisecond {
		t.Errorf("served after 4 temporary errors in %v: no pause between them", d)
	}
	if n := fl.accepts.Load(); n != 5 && n != 6 {
		t.Errorf("%d calls of Accept for 4 failures and a connection", n)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fatal := errors.New("listener broken")
	if err := srv.Serve(&flakyListener{Listener: ln, fails: 1, err: fatal}); err != fatal {
		t.Fatalf("Serve returned %v, want the listener's error", err)
	}
}

// FuzzUpgradeRead: any bytes as the upgrade request Serve reads. Nothing
// panics; a request it takes, net/http takes too (http.ReadRequest), with
// the same method, host and header values, and the handshake decides the
// same on both views of it.
func FuzzUpgradeRead(f *testing.F) {
	for _, tc := range serveCases() {
		f.Add([]byte(tc.req("127.0.0.1:8080")))
	}
	f.Add([]byte("GET / HTTP/1.1\nHost: h\nConnection: upgrade\nUpgrade: websocket\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: " + clientKey + "\nOrigin: http://h\n\nrest"))
	f.Add([]byte("GET * HTTP/1.0\r\nX: a\r\n\tb\r\n\r\n"))
	names := []string{"Host", "Connection", "Upgrade", "Sec-Websocket-Version", "Sec-Websocket-Key", "Origin",
		"Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Content-Length"}
	opts := &AcceptOptions{Subprotocols: []string{"chat", "b c"}, OriginPatterns: []string{"*.example.com"}, Compression: &CompressionOptions{}}
	f.Fuzz(func(t *testing.T, data []byte) {
		q := getUpgradeRead()
		defer q.release()
		if err := q.read(bytes.NewReader(data), 1<<10); err != nil {
			var herr *HandshakeError
			if errors.As(err, &herr) && (herr.Status != 431 || len(data) < 1<<10) {
				t.Fatalf("read: %v", err)
			}
			return
		}
		if q.end > len(data) || q.n > len(data) || q.n < q.end {
			t.Fatalf("read %d bytes, the request %d, of %d", q.n, q.end, len(data))
		}
		hq, herr := q.parse()
		if herr != nil {
			if herr.Status < 400 {
				t.Fatalf("refused with %d", herr.Status)
			}
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data[:q.end])))
		if err != nil {
			t.Fatalf("taken, but net/http refuses it: %v", err)
		}
		body := r.ContentLength > 0 || len(r.TransferEncoding) > 0 // net/http takes Transfer-Encoding out of the headers
		if r.Method != hq.method || r.Host != hq.host || r.ProtoAtLeast(1, 1) != hq.proto11 || body != hq.body {
			t.Fatalf("method %q host %q HTTP/1.1 %v body %v; net/http: %q %q %v %v",
				hq.method, hq.host, hq.proto11, hq.body, r.Method, r.Host, r.ProtoAtLeast(1, 1), body)
		}
		for _, name := range names {
			got, want := strings.Join(hq.values(name), "\n"), strings.Join(r.Header[name], "\n")
			if name == "Host" {
				want = strings.Join(r.Header["Host"], "\n")
				if _, ok := r.Header["Host"]; !ok && hq.host != "" {
					want = got // net/http moves the Host header to r.Host
				}
			}
			if got != want {
				t.Fatalf("%s: %q; net/http: %q", name, got, want)
			}
		}
		hr := requestOf(r)
		k1, p1, e1 := checkRequest(&hq, opts)
		k2, p2, e2 := checkRequest(&hr, opts)
		if k1 != k2 || p1 != p2 || (e1 == nil) != (e2 == nil) || (e1 != nil && e1.Status != e2.Status) {
			t.Fatalf("handshake: %q %q %v; from net/http's request: %q %q %v", k1, p1, e1, k2, p2, e2)
		}
		if _, herr := q.httpRequest(&hq, fakeAddrConn{}); herr != nil {
			t.Fatalf("httpRequest: %v", herr)
		}
	})
}

// fakeAddrConn is a net.Conn with addresses only, for httpRequest.
type fakeAddrConn struct{ net.Conn }

func (fakeAddrConn) RemoteAddr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }

// TestServeHandshakeTimeout: a connection whose request does not arrive
// within the handshake timeout is closed, without an answer, and its
// handler never runs; connections meanwhile are served.
func TestServeHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	var handled atomic.Int64
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		handled.Add(1)
		return wesos.Pipe(ctx, c, c)
	}, &AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)})
	srv.handshakeTimeout = timeout
	addr, _ := serveOn(t, srv, nil)
	start := time.Now()
	var slow []net.Conn
	for _, p := range []string{"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n", "GET /ws HT", ""} {
		nc, err := net.DialTimeout("tcp", addr, testTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		io.WriteString(nc, p)
		slow = append(slow, nc)
	}
	dialEcho(t, testCtx(t), "ws://"+addr)
	for _, nc := range slow {
		nc.SetReadDeadline(time.Now().Add(testTimeout))
		if n, err := nc.Read(make([]byte, 1)); n != 0 || (err != io.EOF && !isReset(err)) {
			t.Fatalf("a slow handshake read %d bytes, %v; want it closed", n, err)
		}
	}
	if d := time.Since(start); d < timeout {
		t.Errorf("slow handshakes closed after %v, before the timeout of %v", d, timeout)
	}
	if n := handled.Load(); n != 1 {
		t.Errorf("%d handlers ran, want the echo's only", n)
	}
}

// TestServeAdmitPanics: a panic in Admit ends that request's connection
// without an answer, and the Server goes on serving, through Serve as
// through net/http (which recovers a handler's panic).
func TestServeAdmitPanics(t *testing.T) {
	for _, hs := range handshakeServers {
		t.Run(hs.name, func(t *testing.T) {
			srv := NewServer(func(ctx context.Context, c *Conn) error { return nil }, &AcceptOptions{
				ErrorLog:     slog.New(slog.DiscardHandler),
				CloseTimeout: 100 * time.Millisecond,
				Admit: func(w http.ResponseWriter, r *http.Request) (context.Context, error) {
					if r.Header.Get("X-Panic") != "" {
						panic(http.ErrAbortHandler) // net/http recovers it without a log line
					}
					return nil, nil
				},
			})
			host, _ := hs.start(t, srv)
			nc, err := net.DialTimeout("tcp", host, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			io.WriteString(nc, upgradeRequest(host, "X-Panic: yes"))
			nc.SetReadDeadline(time.Now().Add(testTimeout))
			if n, err := nc.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("the server answered (%d bytes, %v), want the connection closed", n, err)
			}
			if resp, _ := rawRequest(t, host, upgradeRequest(host)); resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("the next request was answered %s", resp.Status)
			}
		})
	}
}
