package ws

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// handshakeCase is a hand-written handshake request, with the options of
// the server it goes to and the answer it must get.
type handshakeCase struct {
	name   string
	method string   // default GET
	proto  string   // default HTTP/1.1
	lines  []string // header lines besides Host; nil means the four valid ones
	opts   *AcceptOptions
	status int
	check  func(t *testing.T, resp *http.Response)
}

// handshakeLines are the four header lines of a valid handshake.
var handshakeLines = []string{
	"Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: " + clientKey,
}

// request returns tc's request to host: HOST in its lines stands for host,
// HOSTUPPER for host in upper case.
func (tc handshakeCase) request(host string) string {
	method, proto := tc.method, tc.proto
	if method == "" {
		method = "GET"
	}
	if proto == "" {
		proto = "HTTP/1.1"
	}
	lines := tc.lines
	if lines == nil {
		lines = handshakeLines
	}
	var req strings.Builder
	req.WriteString(method + " /ws " + proto + "\r\nHost: " + host + "\r\n")
	for _, l := range lines {
		l = strings.ReplaceAll(l, "HOSTUPPER", strings.ToUpper(host))
		l = strings.ReplaceAll(l, "HOST", host)
		req.WriteString(l + "\r\n")
	}
	req.WriteString("\r\n")
	return req.String()
}

// handshakeCases are the requests every way of accepting must answer
// alike: the checks, the origin policy, the choice of a subprotocol.
func handshakeCases() []handshakeCase {
	const (
		upgrade = "Upgrade: websocket"
		conn    = "Connection: Upgrade"
		version = "Sec-WebSocket-Version: 13"
		key     = "Sec-WebSocket-Key: " + clientKey
	)
	valid := func(extra ...string) []string { return append([]string{upgrade, conn, version, key}, extra...) }
	without := func(drop string, extra ...string) []string {
		var out []string
		for _, l := range valid() {
			if l != drop {
				out = append(out, l)
			}
		}
		return append(out, extra...)
	}
	header := func(name, want string) func(t *testing.T, resp *http.Response) {
		return func(t *testing.T, resp *http.Response) {
			t.Helper()
			if got := resp.Header.Get(name); got != want {
				t.Errorf("%s: %q, want %q", name, got, want)
			}
			if want == "" {
				if vs, ok := resp.Header[http.CanonicalHeaderKey(name)]; ok {
					t.Errorf("%s present: %q", name, vs)
				}
			}
		}
	}
	return []handshakeCase{
		{name: "valid", status: 101},
		{name: "POST", method: "POST", status: 405, check: header("Allow", "GET")},
		{name: "PUT", method: "PUT", status: 405},
		{name: "HTTP/1.0", proto: "HTTP/1.0", status: 400},
		{name: "no Upgrade", lines: without(upgrade), status: 400},
		{name: "Upgrade h2c", lines: without(upgrade, "Upgrade: h2c"), status: 400},
		{name: "Upgrade websockets", lines: without(upgrade, "Upgrade: websockets"), status: 400},
		{name: "Upgrade mixed case", lines: without(upgrade, "Upgrade: WebSocket"), status: 101},
		{name: "Upgrade in a list", lines: without(upgrade, "Upgrade: foo/1, websocket"), status: 101},
		{name: "no Connection", lines: without(conn), status: 400},
		{name: "Connection keep-alive", lines: without(conn, "Connection: keep-alive"), status: 400},
		{name: "Connection upgraded", lines: without(conn, "Connection: upgraded"), status: 400},
		{name: "Connection keep-alive, Upgrade", lines: without(conn, "Connection: keep-alive, Upgrade"), status: 101},
		{name: "Connection lower case, spaces", lines: without(conn, "Connection: keep-alive ,  upgrade "), status: 101},
		{name: "Connection UPGRADE", lines: without(conn, "Connection: UPGRADE"), status: 101},
		{name: "Connection on two lines", lines: without(conn, "Connection: keep-alive", "Connection: upgrade"), status: 101},
		{name: "no version", lines: without(version), status: 426, check: header("Sec-WebSocket-Version", "13")},
		{name: "version 8", lines: without(version, "Sec-WebSocket-Version: 8"), status: 426, check: header("Sec-WebSocket-Version", "13")},
		{name: "version 14", lines: without(version, "Sec-WebSocket-Version: 14"), status: 426, check: header("Sec-WebSocket-Version", "13")},
		{name: "version list", lines: without(version, "Sec-WebSocket-Version: 13, 8"), status: 426, check: header("Sec-WebSocket-Version", "13")},
		{name: "no key", lines: without(key), status: 400},
		{name: "empty key", lines: without(key, "Sec-WebSocket-Key: "), status: 400},
		{name: "key of 15 bytes", lines: without(key, "Sec-WebSocket-Key: "+base64Key(15)), status: 400},
		{name: "key of 17 bytes", lines: without(key, "Sec-WebSocket-Key: "+base64Key(17)), status: 400},
		{name: "key not base64", lines: without(key, "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!=="), status: 400},
		{name: "key unpadded", lines: without(key, "Sec-WebSocket-Key: "+strings.TrimRight(clientKey, "=")), status: 400},
		{name: "two keys", lines: valid("Sec-WebSocket-Key: " + base64Key(16)), status: 400},
		{name: "other key of 16 bytes", lines: without(key, "Sec-WebSocket-Key: "+base64Key(16)), status: 101, check: header("Sec-WebSocket-Accept", acceptKey(base64Key(16)))},

		// Origin policy.
		{name: "no Origin", status: 101},
		{name: "same-host Origin", lines: valid("Origin: http://HOST"), status: 101},
		{name: "same-host Origin, other case", lines: valid("Origin: https://HOSTUPPER"), status: 101},
		{name: "other Origin", lines: valid("Origin: https://evil.example"), status: 403},
		{name: "same host name, other port", lines: valid("Origin: http://127.0.0.1:1"), status: 403},
		{name: "Origin null", lines: valid("Origin: null"), status: 403},
		{name: "Origin allowed by pattern", lines: valid("Origin: https://app.example.com"), opts: &AcceptOptions{OriginPatterns: []string{"*.example.com"}}, status: 101},
		{name: "Origin pattern ignores case", lines: valid("Origin: https://APP.Example.com"), opts: &AcceptOptions{OriginPatterns: []string{"app.EXAMPLE.com"}}, status: 101},
		{name: "Origin not matching pattern", lines: valid("Origin: https://example.com.evil"), opts: &AcceptOptions{OriginPatterns: []string{"*.example.com", "example.com"}}, status: 403},
		{name: "Origin pattern with scheme", lines: valid("Origin: https://trusted.example"), opts: &AcceptOptions{OriginPatterns: []string{"https://trusted.example"}}, status: 101},
		{name: "Origin pattern with other scheme", lines: valid("Origin: http://trusted.example"), opts: &AcceptOptions{OriginPatterns: []string{"https://trusted.example"}}, status: 403},
		{name: "InsecureSkipOriginCheck", lines: valid("Origin: https://evil.example"), opts: &AcceptOptions{InsecureSkipOriginCheck: true}, status: 101},

		// Subprotocols.
		{name: "server preference wins", lines: valid("Sec-WebSocket-Protocol: superchat, chat"), opts: &AcceptOptions{Subprotocols: []string{"chat", "superchat"}}, status: 101, check: header("Sec-WebSocket-Protocol", "chat")},
		{name: "only common one", lines: valid("Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b , superchat"), opts: &AcceptOptions{Subprotocols: []string{"chat", "superchat"}}, status: 101, check: header("Sec-WebSocket-Protocol", "superchat")},
		{name: "none in common", lines: valid("Sec-WebSocket-Protocol: x, y"), opts: &AcceptOptions{Subprotocols: []string{"chat"}}, status: 101, check: header("Sec-WebSocket-Protocol", "")},
		{name: "subprotocols are case-sensitive", lines: valid("Sec-WebSocket-Protocol: Chat"), opts: &AcceptOptions{Subprotocols: []string{"chat"}}, status: 101, check: header("Sec-WebSocket-Protocol", "")},
		{name: "client offers none", opts: &AcceptOptions{Subprotocols: []string{"chat"}}, status: 101, check: header("Sec-WebSocket-Protocol", "")},
		{name: "server speaks none", lines: valid("Sec-WebSocket-Protocol: chat"), status: 101, check: header("Sec-WebSocket-Protocol", "")},
		{name: "no extension accepted", lines: valid("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-custom"), status: 101, check: header("Sec-WebSocket-Extensions", "")},
	}
}

// TestAcceptRequests sends hand-written handshake requests to Accept and
// checks the status, the headers of the answer, and the error Accept returns.
func TestAcceptRequests(t *testing.T) {
	for _, tc := range handshakeCases() {
		t.Run(tc.name, func(t *testing.T) {
			srv, results := startAcceptServer(t, tc.opts)
			host := strings.TrimPrefix(srv.URL, "http://")
			lines := tc.lines
			if lines == nil {
				lines = handshakeLines
			}
			resp, raw := rawRequest(t, host, tc.request(host))
			if resp.StatusCode != tc.status {
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				t.Fatalf("status %s (%s), want %d", resp.Status, body, tc.status)
			}
			var res acceptResult
			select {
			case res = <-results:
			case <-time.After(testTimeout):
				t.Fatal("Accept did not return")
			}
			if tc.status == 101 {
				if res.err != nil {
					t.Fatalf("Accept: %v", res.err)
				}
				defer res.c.CloseNow()
				if resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(keyOf(lines)) ||
					!strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") || !strings.EqualFold(resp.Header.Get("Connection"), "upgrade") {
					t.Fatalf("101 response headers %v", resp.Header)
				}
				if got, want := res.c.Subprotocol(), resp.Header.Get("Sec-WebSocket-Protocol"); got != want {
					t.Errorf("Subprotocol() %q, header %q", got, want)
				}
				// The connection works.
				raw.write(raw.fs().msg(opText, "hi"))
				if _, b, err := res.c.Read(testCtx(t)); err != nil || string(b) != "hi" {
					t.Fatalf("Read after the handshake: %q %v", b, err)
				}
			} else {
				var he *HandshakeError
				if !errors.As(res.err, &he) || he.Status != tc.status || res.c != nil {
					t.Fatalf("Accept returned %v, %v; want a *HandshakeError with status %d", res.c, res.err, tc.status)
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				if !strings.Contains(string(body), he.Reason) {
					t.Errorf("body %q does not say why (%q)", body, he.Reason)
				}
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
	}
}

func keyOf(lines []string) string {
	for _, l := range lines {
		if v, ok := strings.CutPrefix(l, "Sec-WebSocket-Key: "); ok {
			return v
		}
	}
	return ""
}

// TestAcceptKeepsHandlerHeaders: headers the handler set before Accept (a
// cookie) go out with the 101, and bytes the client sent right after its
// request reach the Conn.
func TestAcceptKeepsHandlerHeaders(t *testing.T) {
	results := make(chan acceptResult, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "session=1")
		w.Header().Set("Content-Length", "99") // must not leak into the 101
		c, err := Accept(w, r, nil)
		results <- acceptResult{c, err}
	}))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	frames := cat(frameSet{masked: true}.msg(opText, "early"), frameSet{masked: true}.msg(opBinary, "bird"))
	resp, _ := rawRequest(t, host, upgradeRequest(host)+string(frames))
	res := <-results
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.c.CloseNow()
	if resp.StatusCode != 101 || resp.Header.Get("Set-Cookie") != "session=1" || resp.Header.Get("Content-Length") != "" {
		t.Fatalf("response %s %v", resp.Status, resp.Header)
	}
	for _, want := range []string{"early", "bird"} {
		if _, b, err := res.c.Read(testCtx(t)); err != nil || string(b) != want {
			t.Fatalf("Read: %q %v, want %q", b, err, want)
		}
	}
}

// TestDialResponses runs Dial against hand-written servers that botch the
// handshake: each is an error, with the response when there is one.
func TestDialResponses(t *testing.T) {
	cases := []struct {
		name   string
		opts   *DialOptions
		answer func(w io.Writer, req *http.Request) // nil: a correct 101
		ok     bool
		status int
		body   string
		proto  string
	}{
		{name: "valid", ok: true, status: 101},
		{name: "wrong accept", status: 101, answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+acceptKey(clientKey)+"\r\n\r\n")
		}},
		{name: "no accept", status: 101, answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		}},
		{name: "no Upgrade", status: 101, answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+acceptKey(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
		}},
		{name: "no Connection", status: 101, answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: "+acceptKey(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
		}},
		{name: "tokens in other case", ok: true, status: 101, answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, UPGRADE\r\nSec-WebSocket-Accept: "+acceptKey(req.Header.Get("Sec-WebSocket-Key"))+"\r\n\r\n")
		}},
		{name: "200", status: 200, body: "hello", answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
		}},
		{name: "403 with body", status: 403, body: "go away\n", answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\ngo away\n")
		}},
		{name: "426", status: 426, body: "", answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n")
		}},
		{name: "chunked 500", status: 500, body: "oops", answer: func(w io.Writer, req *http.Request) {
			io.WriteString(w, "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n4\r\noops\r\n0\r\n\r\n")
		}},
		{name: "unoffered subprotocol", status: 101, answer: func(w io.Writer, req *http.Request) {
			accept101(w, req, "Sec-WebSocket-Protocol: chat")
		}},
		{name: "subprotocol not among the offered", opts: &DialOptions{Subprotocols: []string{"a", "b"}}, status: 101, answer: func(w io.Writer, req *http.Request) {
			accept101(w, req, "Sec-WebSocket-Protocol: c")
		}},
		{name: "two subprotocols", opts: &DialOptions{Subprotocols: []string{"a", "b"}}, status: 101, answer: func(w io.Writer, req *http.Request) {
			accept101(w, req, "Sec-WebSocket-Protocol: a", "Sec-WebSocket-Protocol: b")
		}},
		{name: "offered subprotocol", opts: &DialOptions{Subprotocols: []string{"a", "b"}}, ok: true, status: 101, proto: "b", answer: func(w io.Writer, req *http.Request) {
			if req.Header.Get("Sec-WebSocket-Protocol") != "a, b" {
				io.WriteString(w, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
				return
			}
			accept101(w, req, "Sec-WebSocket-Protocol: b")
		}},
		{name: "unoffered extension", status: 101, answer: func(w io.Writer, req *http.Request) {
			accept101(w, req, "Sec-WebSocket-Extensions: permessage-deflate")
		}},
		{name: "unoffered unknown extension", status: 101, answer: func(w io.Writer, req *http.Request) {
			accept101(w, req, "Sec-WebSocket-Extensions: x-webkit-deflate-frame")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
				defer nc.Close()
				if tc.answer == nil {
					accept101(nc, req)
				} else {
					tc.answer(nc, req)
				}
				// Hold the connection until the client is done with it.
				nc.SetReadDeadline(time.Now().Add(testTimeout))
				io.Copy(io.Discard, br)
			})
			c, resp, err := Dial(testCtx(t), s.url, tc.opts)
			if tc.ok {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				defer c.CloseNow()
				if c.Subprotocol() != tc.proto {
					t.Errorf("Subprotocol() %q, want %q", c.Subprotocol(), tc.proto)
				}
			} else {
				if err == nil {
					c.CloseNow()
					t.Fatal("Dial succeeded")
				}
				if c != nil {
					t.Fatal("Dial returned a Conn with an error")
				}
				t.Logf("error: %v", err)
			}
			if resp == nil {
				t.Fatal("no response")
			}
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if !tc.ok {
				body, err := io.ReadAll(resp.Body)
				if err != nil || string(body) != tc.body {
					t.Fatalf("body %q, %v; want %q", body, err, tc.body)
				}
			}
		})
	}
}

// TestDialRefusalHeldOpen: a server that refuses with a close-delimited body
// and then keeps the connection open must not hang Dial, even with a
// context that has no deadline.
func TestDialRefusalHeldOpen(t *testing.T) {
	release := make(chan struct{})
	s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		defer nc.Close()
		io.WriteString(nc, "HTTP/1.1 403 Forbidden\r\n\r\nnot you")
		select {
		case <-release:
		case <-time.After(testTimeout):
		}
	})
	defer close(release)
	done := goAsync(t, func() error {
		_, resp, err := Dial(context.Background(), s.url, nil)
		if err == nil {
			return errors.New("Dial succeeded")
		}
		if resp == nil || resp.StatusCode != 403 {
			return errors.New("no 403 response")
		}
		body, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix("not you", string(body)) {
			return errors.New("body " + string(body))
		}
		return nil
	})
	if err := done(); err != nil {
		t.Fatal(err)
	}
}

// TestDialHeaders: DialOptions.HTTPHeader reaches the server (a Host header
// there sets the request's host), next to the handshake headers.
func TestDialHeaders(t *testing.T) {
	got := make(chan *http.Request, 1)
	s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		got <- req
		accept101(nc, req)
		nc.Close()
	})
	h := http.Header{}
	h.Set("Authorization", "Bearer x")
	h.Add("X-Multi", "1")
	h.Add("X-Multi", "2")
	h.Set("Origin", "https://example.com")
	h.Set("Host", "virtual.example")
	c, _, err := Dial(testCtx(t), s.url, &DialOptions{HTTPHeader: h, Subprotocols: []string{"p"}})
	if err == nil {
		c.CloseNow()
	}
	req := <-got
	if req.Header.Get("Authorization") != "Bearer x" || strings.Join(req.Header.Values("X-Multi"), ",") != "1,2" ||
		req.Header.Get("Origin") != "https://example.com" || req.Host != "virtual.example" {
		t.Fatalf("request headers %v, host %q", req.Header, req.Host)
	}
	if req.Method != "GET" || req.URL.Path != "/ws" || req.Header.Get("Sec-WebSocket-Version") != "13" ||
		!validKey(req.Header.Get("Sec-WebSocket-Key")) || req.Header.Get("Sec-WebSocket-Protocol") != "p" ||
		!hasToken(req.Header, "Connection", "upgrade") || !hasToken(req.Header, "Upgrade", "websocket") {
		t.Fatalf("handshake request %s %s %v", req.Method, req.URL, req.Header)
	}
	if err != nil {
		t.Fatal(err) // the server answered a valid 101
	}
}

// TestDialCtx: the ctx deadline bounds a server that never answers the
// handshake, and a server that never accepts.
func TestDialCtx(t *testing.T) {
	release := make(chan struct{})
	s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		defer nc.Close()
		select {
		case <-release:
		case <-time.After(testTimeout):
		}
	})
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	c, resp, err := Dial(ctx, s.url, nil)
	if err == nil || c != nil || resp != nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a silent server: %v %v %v", c, resp, err)
	}

	// Cancellation, too.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx2, cancel2 := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel2)
	_, _, err = Dial(ctx2, "ws://"+ln.Addr().String(), nil) // accepted by the kernel, never answered
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial cancelled: %v", err)
	}
}

// TestDialURLs: schemes, and errors before any connection.
func TestDialURLs(t *testing.T) {
	srv, results := startAcceptServer(t, nil)
	for _, u := range []string{"ws://", "http://"} {
		c, resp, err := Dial(testCtx(t), u+strings.TrimPrefix(srv.URL, "http://")+"/path?q=1", nil)
		if err != nil || resp.StatusCode != 101 {
			t.Fatalf("Dial %s: %v", u, err)
		}
		res := <-results
		if res.err != nil {
			t.Fatal(res.err)
		}
		// Both ends work.
		if err := c.Write(testCtx(t), Text, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, b, err := res.c.Read(testCtx(t)); err != nil || string(b) != "ping" {
			t.Fatalf("%q %v", b, err)
		}
		c.CloseNow()
		res.c.CloseNow()
	}
	for _, u := range []string{"ftp://127.0.0.1/", "::not a url", "ws://127.0.0.1:1/"} {
		c, resp, err := Dial(testCtx(t), u, nil)
		if err == nil || c != nil || resp != nil {
			t.Errorf("Dial %q: %v %v %v", u, c, resp, err)
		}
	}
}

// TestServerFramesAfterHandshake: frames the server sends in the same write
// as its 101 reach the client.
func TestServerFramesAfterHandshake(t *testing.T) {
	s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		var b strings.Builder
		accept101(&b, req)
		b.Write(frameSet{}.msg(opText, "welcome"))
		b.Write(frameSet{}.close(1000, "bye"))
		io.WriteString(nc, b.String())
		nc.SetReadDeadline(time.Now().Add(testTimeout))
		io.Copy(io.Discard, br)
		nc.Close()
	})
	c, _, err := Dial(testCtx(t), s.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, b, err := c.Read(testCtx(t)); err != nil || string(b) != "welcome" {
		t.Fatalf("%q %v", b, err)
	}
	_, _, err = c.Read(testCtx(t))
	wantCloseError(t, err, 1000, "bye")
	if !errors.Is(err, io.EOF) {
		t.Fatalf("a normal close must match io.EOF: %v", err)
	}
}

// TestDialTLS: wss:// with a TLSConfig, against an httptest TLS server.
func TestDialTLS(t *testing.T) {
	results := make(chan acceptResult, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		results <- acceptResult{c, err}
	}))
	defer srv.Close()
	wss := "wss" + strings.TrimPrefix(srv.URL, "https")
	if _, _, err := Dial(testCtx(t), wss, nil); err == nil {
		t.Fatal("Dial trusted a self-signed certificate")
	}
	tlsCfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	c, _, err := Dial(testCtx(t), wss, &DialOptions{TLSConfig: tlsCfg})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	res := <-results
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.c.CloseNow()
	if err := c.Write(testCtx(t), Text, []byte("secret")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := res.c.Read(testCtx(t)); err != nil || string(b) != "secret" {
		t.Fatalf("%q %v", b, err)
	}
	closed := goAsync(t, func() error { return c.Close(StatusNormalClosure, "") })
	_, _, err = res.c.Read(testCtx(t))
	wantCloseError(t, err, StatusNormalClosure, "")
	if err := closed(); err != nil {
		t.Fatal(err)
	}
}

// connectProxy is an HTTP CONNECT proxy on loopback for one tunnel; it
// records the request it got.
func connectProxy(t *testing.T, answer string) (proxyURL string, got <-chan *http.Request) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reqs := make(chan *http.Request, 1)
	done := make(chan struct{})
	t.Cleanup(func() {
		ln.Close()
		<-done
	})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(testTimeout))
		br := bufio.NewReader(nc)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		reqs <- req
		if answer != "" {
			io.WriteString(nc, answer)
			return
		}
		target, err := net.Dial("tcp", req.Host)
		if err != nil {
			io.WriteString(nc, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
			return
		}
		defer target.Close()
		io.WriteString(nc, "HTTP/1.1 200 Connection established\r\n\r\n")
		var wg sync.WaitGroup
		wg.Go(func() {
			io.Copy(target, br)
			target.(*net.TCPConn).CloseWrite()
		})
		io.Copy(nc, target)
		nc.(*net.TCPConn).CloseWrite()
		wg.Wait()
	}()
	return "http://user:p%40ss@" + ln.Addr().String(), reqs
}

// TestDialProxy: Dial tunnels through an HTTP proxy with CONNECT (with
// basic credentials), and reports a proxy's refusal.
func TestDialProxy(t *testing.T) {
	srv, results := startAcceptServer(t, nil)
	target := strings.TrimPrefix(srv.URL, "http://")
	proxyURL, reqs := connectProxy(t, "")
	pu, _ := url.Parse(proxyURL)
	c, _, err := Dial(testCtx(t), "ws://"+target+"/x", &DialOptions{Proxy: http.ProxyURL(pu)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	req := <-reqs
	if req.Method != http.MethodConnect || req.Host != target || req.Header.Get("Proxy-Authorization") != "Basic dXNlcjpwQHNz" {
		t.Fatalf("proxy got %s %s %v", req.Method, req.Host, req.Header)
	}
	res := <-results
	if res.err != nil {
		t.Fatal(res.err)
	}
	defer res.c.CloseNow()
	if err := res.c.Write(testCtx(t), Binary, []byte("through the tunnel")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(testCtx(t)); err != nil || string(b) != "through the tunnel" {
		t.Fatalf("%q %v", b, err)
	}

	for _, answer := range []string{"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\nextra"} {
		proxyURL, _ := connectProxy(t, answer)
		pu, _ := url.Parse(proxyURL)
		if c, _, err := Dial(testCtx(t), "ws://"+target, &DialOptions{Proxy: http.ProxyURL(pu)}); err == nil {
			c.CloseNow()
			t.Fatalf("Dial through a proxy answering %q succeeded", answer)
		}
	}
	if _, _, err := Dial(testCtx(t), "ws://"+target, &DialOptions{Proxy: func(*http.Request) (*url.URL, error) { return url.Parse("socks5://127.0.0.1:1") }}); err == nil {
		t.Fatal("Dial through a socks5 proxy URL succeeded")
	}
}

// TestAcceptRefusesBody: an upgrade request that carries a body is refused
// with 400: its bytes would otherwise be read as WebSocket frames.
func TestAcceptRefusesBody(t *testing.T) {
	// A masked text frame "hi", which the server would read as a message.
	frame := string(rf{fin: true, op: opText, masked: true, payload: []byte("hi")}.bytes())
	for _, tc := range []struct {
		name   string
		extra  []string
		body   string
		status int
	}{
		{"Content-Length", []string{"Content-Length: " + strconv.Itoa(len(frame))}, frame, http.StatusBadRequest},
		{"chunked", []string{"Transfer-Encoding: chunked"}, "8\r\n" + frame + "\r\n0\r\n\r\n", http.StatusBadRequest},
		{"Content-Length 0", []string{"Content-Length: 0"}, "", http.StatusSwitchingProtocols},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, results := startAcceptServer(t, nil)
			host := strings.TrimPrefix(srv.URL, "http://")
			resp, _ := rawRequest(t, host, upgradeRequest(host, tc.extra...)+tc.body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			res := <-results
			if tc.status == http.StatusSwitchingProtocols {
				if res.err != nil {
					t.Fatal(res.err)
				}
				return
			}
			var he *HandshakeError
			if !errors.As(res.err, &he) || he.Status != tc.status {
				t.Fatalf("Accept: %v", res.err)
			}
		})
	}
}

// TestValidKey: validKey accepts what base64.StdEncoding decodes to 16
// bytes in 24 characters, and nothing else.
func TestValidKey(t *testing.T) {
	decodes := func(key string) bool {
		var b [18]byte
		n, err := base64.StdEncoding.Decode(b[:], []byte(key))
		return len(key) == 24 && err == nil && n == 16
	}
	keys := []string{"dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZR==", "dGhlIHNhbXBsZSBub25jZQ=", "dGhlIHNhbXBsZSBub25jZQ===",
		"dGhlIHNhbXBsZSBub25jZ===", "dGhlIHNhbXBsZSBub25jZQ\r\n", "dGhlIHNhbXBsZSBub25\njZQ==", "dGhlIHNhbXBsZSBub25jZQA=", "", "++++++++++++++++++++++==",
		"//////////////////////==", "-_-_-_-_-_-_-_-_-_-_-_==", "dGhlIHNhbXBsZSBub25jZQ=A"}
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\r\n -_."
	for range 20000 {
		b := []byte("dGhlIHNhbXBsZSBub25jZQ==")
		for range 1 + rng.IntN(3) {
			b[rng.IntN(len(b))] = alphabet[rng.IntN(len(alphabet))]
		}
		keys = append(keys, string(b))
	}
	for _, k := range keys {
		if got, want := validKey(k), decodes(k); got != want {
			t.Fatalf("validKey(%q) = %v, the decoder says %v", k, got, want)
		}
	}
}
