package main

// The browser test over HTTP/2: the chat served over TLS with HTTP/2, and
// Chromium opening its WebSockets on the page's HTTP/2 connection with an
// extended CONNECT (RFC 8441) rather than a GET with Upgrade. net/http's
// server offers extended CONNECT only when the process starts with
// GODEBUG=http2xconnect=1, so TestBrowserChatH2 runs the test in a child
// process started with it, as ws's TestH2 does.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/browsertest"
	"github.com/wesos/wesos/internal/extest"
	"github.com/wesos/wesos/ws"
)

// browserH2ChildEnv marks the child process of TestBrowserChatH2.
const browserH2ChildEnv = "WESOS_BROWSER_H2_CHILD"

// TestBrowserChatH2 runs TestBrowserChatH2Child in a child process whose
// GODEBUG turns extended CONNECT on, streaming its output.
func TestBrowserChatH2(t *testing.T) {
	if os.Getenv(browserH2ChildEnv) != "" {
		t.Skip("in the child process")
	}
	needChromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestBrowserChatH2Child$", "-test.count=1", "-test.v")
	godebug := "http2xconnect=1"
	if g := os.Getenv("GODEBUG"); g != "" {
		godebug = g + "," + godebug
	}
	cmd.Env = append(os.Environ(), browserH2ChildEnv+"=1", "GODEBUG="+godebug)
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(t.Output(), &out)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("child process: %v", err)
	}
	// The child must have run both tests, not skipped them.
	for _, name := range []string{"plain", "deflate"} {
		if !regexp.MustCompile(`(?m)^\s*--- PASS: TestBrowserChatH2Child/` + name + ` `).Match(out.Bytes()) {
			t.Errorf("the child did not pass TestBrowserChatH2Child/%s", name)
		}
	}
}

// TestBrowserChatH2Child is the test proper.
func TestBrowserChatH2Child(t *testing.T) {
	if os.Getenv(browserH2ChildEnv) == "" {
		t.Skip("runs in the child process of TestBrowserChatH2")
	}
	needChromium(t)
	if !strings.Contains(os.Getenv("GODEBUG"), "http2xconnect=1") {
		t.Fatal("the child process lacks GODEBUG=http2xconnect=1")
	}
	cert := selfSigned(t)
	t.Run("plain", func(t *testing.T) { chatInBrowserH2(t, cert, false) })
	t.Run("deflate", func(t *testing.T) { chatInBrowserH2(t, cert, true) })
}

func chatInBrowserH2(t *testing.T, cert tls.Certificate, compress bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The chat over TLS, offering HTTP/2 and HTTP/1.1 (ALPN), with the
	// requests for /ws recorded, on a port that the restart below reuses.
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	config := &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}
	rec := &requestLog{}
	startTLS := func(ln net.Listener) (*ws.Server, func()) {
		h, srv := newChat(testRooms, nil, compress, extest.Logger(t))
		return srv, serveChat(t, tls.NewListener(ln, config), rec.wrap(h), srv)
	}
	srv, stop := startTLS(ln)
	url := "https://" + addr + "/"

	b := startChromium(t, ctx, "--ignore-certificate-errors") // the certificate is self-signed
	// Both pages join the first room, general, by default.
	pages := []*page{b.open(t, ctx, url+"#name=ann"), b.open(t, ctx, url+"#name=bob")}
	connected := func(srv *ws.Server) func(states []pageState) bool {
		return func(states []pageState) bool {
			for _, s := range states {
				if !s.in("general", "ann, bob") {
					return false
				}
			}
			return srv.Len() == 2
		}
	}

	// Both pages come over HTTP/2, and open their WebSockets on it.
	b.eventually(t, ctx, "both pages connected, ann and bob in general", connected(srv))
	var seen handshakes
	if h2 := seen.check(t, rec, b, compress); h2 != 2 {
		t.Errorf("%d of the pages' WebSockets went over HTTP/2, want both", h2)
	}
	b.checkDocuments(t, "h2", "h2")

	// Messages go from one page to both, short and long (over the
	// compression threshold, when there is compression).
	pages[0].say(t, ctx, "general", "hello over HTTP/2 from page 1")
	b.eventually(t, ctx, "the message on both pages", showing("general", "hello over HTTP/2 from page 1"))
	long := strings.Repeat("a longer line, to be compressed; ", 40)
	pages[1].say(t, ctx, "general", long)
	b.eventually(t, ctx, "the long message on both pages", showing("general", strings.TrimSpace(long)))

	// The server restarts on the same port; both pages reconnect by
	// themselves. Chromium opens a WebSocket over HTTP/2 only on an HTTP/2
	// connection that it already has, and the pages have none to the new
	// server: as it is, they reconnect over HTTP/1.1, each on a connection
	// of its own. Either way is right.
	stop()
	srv, _ = startTLS(listen(t, addr))
	b.eventually(t, ctx, "both pages reconnected to the new server", connected(srv))
	t.Logf("%d of the reconnections went over HTTP/2", seen.check(t, rec, b, compress))
	pages[1].say(t, ctx, "general", "hello again from page 2")
	b.eventually(t, ctx, "the new message on both pages", showing("general", "hello again from page 2"))

	// Page 1, reloaded, comes over HTTP/2 again and so does its WebSocket,
	// while page 2 keeps the one it has: they chat all the same.
	if err := b.Call(ctx, pages[0].Session, "Page.reload", nil, nil, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	b.eventually(t, ctx, "page 1 reloaded and connected, ann and bob in general", func(states []pageState) bool {
		return states[0].Err == "" && len(states[0].Messages) == 0 && connected(srv)(states) // a new page has no messages
	})
	if h2 := seen.check(t, rec, b, compress); h2 != 1 {
		t.Errorf("the reloaded page's WebSocket did not go over HTTP/2")
	}
	b.checkDocuments(t, "h2", "h2", "h2")
	pages[0].say(t, ctx, "general", "page 1, reloaded")
	b.eventually(t, ctx, "the message of the reloaded page on both", showing("general", "page 1, reloaded"))
	long = strings.Repeat("another long line, over HTTP/2 and HTTP/1.1; ", 40)
	pages[1].say(t, ctx, "general", long)
	b.eventually(t, ctx, "the other long message on both pages", showing("general", strings.TrimSpace(long)))

	if os.Getenv(browsertest.ScreenshotEnv) != "" {
		b.Screenshots(t)
	}
}

// handshakes counts the WebSocket handshakes already checked.
type handshakes struct{ requests, responses int }

// check checks the WebSocket handshakes since the last check, as the server
// and Chromium saw them, and returns how many were over HTTP/2. The server
// must have seen extended CONNECTs over HTTP/2 or GETs over HTTP/1.1, and
// Chromium as many responses: 200 without Sec-WebSocket-Accept for the
// former (RFC 8441 §5), 101 with it for the latter, with the extensions that
// the server chose.
func (s *handshakes) check(t *testing.T, rec *requestLog, b *browser, compress bool) (h2 int) {
	t.Helper()
	reqs := rec.get()[s.requests:]
	var resps []browsertest.Response
	// Chromium's report may come a little after the page saw its socket open.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		resps = b.Responses()[s.responses:]
		if len(resps) >= len(reqs) || time.Now().After(deadline) {
			break
		}
	}
	s.requests += len(reqs)
	s.responses += len(resps)

	for _, r := range reqs {
		t.Logf("the server saw a WebSocket request %s from %s", r.kind, r.remote)
		switch r.kind {
		case "HTTP/2.0 CONNECT websocket":
			h2++
		case "HTTP/1.1 GET":
		default:
			t.Errorf("a WebSocket request was %q", r)
		}
	}
	if len(resps) != len(reqs) {
		t.Errorf("Chromium reported %d WebSocket handshakes, the server saw %d", len(resps), len(reqs))
	}
	ok := 0
	for _, r := range resps {
		t.Logf("page %d: Chromium saw the handshake response %d %v", r.Page, r.Status, r.Headers)
		header := http.Header{}
		for k, v := range r.Headers {
			header.Set(k, v)
		}
		switch accept := header.Get("Sec-WebSocket-Accept"); {
		case r.Status == http.StatusOK && accept == "":
			ok++
		case r.Status == http.StatusSwitchingProtocols && accept != "":
		default:
			t.Errorf("page %d: handshake response %d with Sec-WebSocket-Accept %q", r.Page, r.Status, accept)
		}
		if ext := header.Get("Sec-WebSocket-Extensions"); strings.Contains(ext, "permessage-deflate") != compress {
			t.Errorf("page %d: compression %v, but Chromium saw extensions %q", r.Page, compress, ext)
		}
	}
	if ok != h2 {
		t.Errorf("Chromium saw %d handshakes answered by 200, the server %d over HTTP/2", ok, h2)
	}
	return h2
}

// checkDocuments checks the protocols that the pages were loaded over, in
// order.
func (b *browser) checkDocuments(t *testing.T, want ...string) {
	t.Helper()
	docs := b.Documents()
	if !slices.Equal(docs, want) {
		t.Errorf("the pages were loaded over %q, want %q", docs, want)
	}
}

// requestLog records the requests for /ws and /ws/{room} that reach the chat.
type requestLog struct {
	mu sync.Mutex
	ws []wsRequest
}

type wsRequest struct {
	kind   string // protocol, method and :protocol, e.g. "HTTP/2.0 CONNECT websocket"
	remote string // the client's address: that of its TCP connection
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" || strings.HasPrefix(r.URL.Path, "/ws/") {
			l.mu.Lock()
			l.ws = append(l.ws, wsRequest{strings.TrimSpace(r.Proto + " " + r.Method + " " + r.Header.Get(":protocol")), r.RemoteAddr})
			l.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) get() []wsRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ws)
}

// selfSigned returns a certificate for 127.0.0.1, valid for an hour.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wesos test"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
