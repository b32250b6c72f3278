package ws

// permessage-deflate against a real third-party peer: Debian's
// python3-websockets, driven through testdata/interop/deflate_peer.py, which
// echoes every message and reports what it saw (type, length, sha256, frames,
// RSV1, compressed size) and what was negotiated. Both directions (our server
// with a Python client, our client with a Python server), with and without
// context takeover, text and binary, large (8 MiB) and fragmented.
//
// Without the peer the tests skip, except in CI (CI set), where they fail:
// .ci/run installs python3-websockets.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/testpeer"
)

const (
	dflPeerPython = "/usr/bin/python3" // Debian's; the python3 on PATH may be another build
	dflPeerScript = "testdata/interop/deflate_peer.py"
	dflPeerLife   = 3 * time.Minute  // the longest a peer process may live
	dflPeerWait   = 60 * time.Second // for one event from the peer
	dflPeerFrag   = 1 << 20          // fragment size of the peer's echo
)

// dflRequirePeer skips the test under -short, and skips it (fails it in
// CI) if Debian's Python cannot import websockets.
func dflRequirePeer(t *testing.T) {
	t.Helper()
	testpeer.SkipShort(t, "permessage-deflate interop with python3-websockets")
	testpeer.Require(t, "python3-websockets", "apt-get install python3-websockets",
		dflPeerPython, "-I", "-c", "import websockets; print(websockets.__version__)")
}

// dflPeerEvent is one line the peer printed (see deflate_peer.py).
type dflPeerEvent struct {
	Ev          string            `json:"ev"`
	Port        int               `json:"port"`
	RequestExt  *string           `json:"request_ext"`
	ResponseExt *string           `json:"response_ext"`
	Negotiated  []json.RawMessage `json:"negotiated"`
	Type        string            `json:"type"`
	Len         int               `json:"len"`
	SHA256      string            `json:"sha256"`
	Frames      *int              `json:"frames"`
	RSV1        *bool             `json:"rsv1"`
	Wire        *int              `json:"wire"`
	Code        *int              `json:"code"`
	Msg         string            `json:"msg"`

	line string
}

// dflPeer is a running deflate_peer.py.
type dflPeer struct {
	t      *testing.T
	events chan dflPeerEvent
	exited chan struct{} // closed once the process exited and its output is read
	err    error         // its exit status, once exited is closed

	mu     sync.Mutex
	stderr bytes.Buffer
}

type dflLockedWriter struct{ p *dflPeer }

func (w dflLockedWriter) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

func (p *dflPeer) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// dflStartPeer runs the peer with args. It lives at most dflPeerLife; the
// test's cleanup waits for it to exit (it does once its connection closes)
// and kills it if it does not.
func dflStartPeer(t *testing.T, args ...string) *dflPeer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dflPeerLife)
	cmd := exec.CommandContext(ctx, dflPeerPython, append([]string{"-I", "-B", dflPeerScript}, args...)...)
	cmd.WaitDelay = 5 * time.Second
	p := &dflPeer{t: t, events: make(chan dflPeerEvent, 1024), exited: make(chan struct{})}
	cmd.Stderr = dflLockedWriter{p}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting the peer: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			ev := dflPeerEvent{line: sc.Text()}
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				ev = dflPeerEvent{Ev: "unparsable", Msg: err.Error(), line: sc.Text()}
			}
			p.events <- ev
		}
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("peer still running 10s after the test; killing it")
		}
		cancel()
		<-p.exited
		if t.Failed() {
			t.Logf("peer %v exit: %v; stderr:\n%s", args, p.err, p.stderrText())
		}
	})
	return p
}

// expect returns the next event, which must be of kind ev.
func (p *dflPeer) expect(ev string) dflPeerEvent {
	p.t.Helper()
	timer := time.NewTimer(dflPeerWait)
	defer timer.Stop()
	select {
	case e := <-p.events:
		if e.Ev != ev {
			p.t.Fatalf("peer: got %s, want a %q event; stderr:\n%s", e.line, ev, p.stderrText())
		}
		return e
	case <-p.exited:
		select {
		case e := <-p.events:
			if e.Ev == ev {
				return e
			}
			p.t.Fatalf("peer: got %s, want a %q event; stderr:\n%s", e.line, ev, p.stderrText())
		default:
		}
		p.t.Fatalf("peer exited (%v) while a %q event was awaited; stderr:\n%s", p.err, ev, p.stderrText())
	case <-timer.C:
		p.t.Fatalf("no %q event from the peer in %v; stderr:\n%s", ev, dflPeerWait, p.stderrText())
	}
	return dflPeerEvent{}
}

func dflPeerConfig(t *testing.T, deflate any) string {
	b, err := json.Marshal(map[string]any{"deflate": deflate, "frag": dflPeerFrag})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// dflInteropMsg is one message of the conversation.
type dflInteropMsg struct {
	name   string
	typ    MessageType
	body   []byte
	writes int // 0: one Write (one frame); n: a Writer with n Writes
}

// dflInteropMessages is the conversation; the large message is 8 MiB if
// big, else (to keep the suite short under the race detector) 1 MiB.
func dflInteropMessages(big bool) []dflInteropMsg {
	half := 4 << 20
	if !big {
		half = 512 << 10
	}
	large := append(dflText(half, 21), dflRandom(half, 22)...)
	msgs := []dflInteropMsg{
		{name: "text/short", typ: Text, body: []byte("hello, wesos")},
		{name: "text/multibyte", typ: Text, body: []byte(strings.Repeat("héllo wörld ß — €uro · 日本語 😀 ", 20))},
		{name: "text/100k", typ: Text, body: dflText(100_000, 23)},
		{name: "binary/empty", typ: Binary, body: nil},
		{name: "binary/random-64k", typ: Binary, body: dflRandom(64<<10, 24)},
		{name: "binary/large", typ: Binary, body: large, writes: 8},
		{name: "text/fragmented", typ: Text, body: dflText(50_000, 25), writes: 7},
		{name: "binary/fragmented-zeros", typ: Binary, body: make([]byte, 3<<20), writes: 3},
	}
	for i := range 20 {
		msgs = append(msgs, dflInteropMsg{name: fmt.Sprintf("json/%d", i), typ: Text, body: []byte(fmt.Sprintf(
			`{"type":"quote","symbol":"WSOS","seq":%d,"bid":%d.%02d,"ask":%d.%02d,"venue":"XNAS","note":"%s"}`,
			i, 100+i%7, i%100, 101+i%5, (i*7)%100, dflText(400, 26)))})
	}
	return msgs
}

// dflConverse sends every message to the echoing peer and checks both what
// the peer saw and the echo. negotiated says whether permessage-deflate is
// on; our compressor keeps its context if takeoverOut.
//
// The large message is 8 MiB when big is set or the race detector is off.
func dflConverse(t *testing.T, ctx context.Context, c *Conn, p *dflPeer, negotiated, big bool) {
	t.Helper()
	var jsonWire []int
	// Huffman coding alone (a server window under 15) takes a bit or more
	// a byte, and gains nothing from context takeover.
	huffman := negotiated && c.deflate.level == flate.HuffmanOnly
	for _, m := range dflInteropMessages(big || !dflRace) {
		frames := 1
		if m.writes == 0 {
			if err := c.Write(ctx, m.typ, m.body); err != nil {
				t.Fatalf("%s: %v", m.name, err)
			}
		} else {
			w, err := c.Writer(ctx, m.typ)
			if err != nil {
				t.Fatal(err)
			}
			for i, piece := range dflSplitN(m.body, m.writes) {
				if _, err := w.Write(piece); err != nil {
					t.Fatalf("%s: write %d: %v", m.name, i, err)
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			frames = m.writes + 1
		}
		ev := p.expect("msg")
		sum := sha256.Sum256(m.body)
		if ev.Type != m.typ.String() || ev.Len != len(m.body) || ev.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("%s: the peer got %s %d bytes sha256 %s; sent %s %d bytes sha256 %x", m.name, ev.Type, ev.Len, ev.SHA256, m.typ, len(m.body), sum)
		}
		if negotiated {
			wantRSV1 := m.writes > 0 || len(m.body) >= DefaultCompressionThreshold
			if ev.RSV1 == nil || *ev.RSV1 != wantRSV1 || ev.Frames == nil || *ev.Frames != frames {
				t.Fatalf("%s: the peer saw %s; want rsv1 %v in %d frames", m.name, ev.line, wantRSV1, frames)
			}
			if strings.HasPrefix(m.name, "json/") {
				jsonWire = append(jsonWire, *ev.Wire)
			}
			if m.name == "binary/fragmented-zeros" && *ev.Wire > len(m.body)/map[bool]int{false: 100, true: 7}[huffman] {
				t.Fatalf("%s: %d bytes on the wire", m.name, *ev.Wire)
			}
		} else if ev.RSV1 != nil {
			t.Fatalf("%s: frame stats without compression: %s", m.name, ev.line)
		}
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("%s: reading the echo: %v", m.name, err)
		}
		if typ != m.typ || !bytes.Equal(b, m.body) {
			t.Fatalf("%s: echo %v of %d bytes, want %v of %d", m.name, typ, len(b), m.typ, len(m.body))
		}
		// The peer compresses every message when compression is on.
		if c.msgCompressed != negotiated {
			t.Fatalf("%s: echo compressed %v, want %v", m.name, c.msgCompressed, negotiated)
		}
	}
	if negotiated {
		later := 0
		for _, n := range jsonWire[1:] {
			later += n
		}
		later /= len(jsonWire) - 1
		t.Logf("similar messages: first %d bytes on the wire, later %d on average", jsonWire[0], later)
		if c.deflate.takeoverOut && !huffman && later*2 > jsonWire[0] {
			t.Fatalf("with context takeover, later similar messages take %d bytes, the first %d", later, jsonWire[0])
		}
		if !c.deflate.takeoverOut && later*3 < jsonWire[0]*2 {
			t.Fatalf("without context takeover, later similar messages take %d bytes, the first %d", later, jsonWire[0])
		}
	}
	if err := c.Close(StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	if ev := p.expect("closed"); ev.Code == nil || *ev.Code != int(StatusNormalClosure) {
		t.Fatalf("peer: %s", ev.line)
	}
}

// dflSplitN cuts b into n pieces of about the same size.
func dflSplitN(b []byte, n int) [][]byte {
	var cuts []int
	for i := 1; i < n; i++ {
		cuts = append(cuts, len(b)*i/n)
	}
	return dflSplit(b, cuts)
}

func dflStr(s *string) string {
	if s == nil {
		return "<none>"
	}
	return *s
}

// TestDeflateInteropPythonClient: a Python client, with various offers,
// against our server.
func TestDeflateInteropPythonClient(t *testing.T) {
	dflRequirePeer(t)
	for _, tc := range []struct {
		name    string
		py      any // the client's permessage-deflate settings
		srv     *CompressionOptions
		answer  string // our server's answer, "" for none
		takeout bool   // our server keeps its compression context
		big     bool   // 8 MiB even under the race detector
	}{
		{"default-offer/no-takeover", "default", &CompressionOptions{}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false},
		{"default-offer/takeover", "default", &CompressionOptions{ContextTakeover: true}, "permessage-deflate", true, true},
		{"no-takeover-offer/takeover", map[string]any{"server_no_context_takeover": true, "client_no_context_takeover": true},
			&CompressionOptions{ContextTakeover: true}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false},
		{"client-no-takeover-offer/takeover", map[string]any{"client_no_context_takeover": true},
			&CompressionOptions{ContextTakeover: true}, "permessage-deflate; client_no_context_takeover", true, false},
		{"server-window-15/takeover", map[string]any{"server_max_window_bits": 15},
			&CompressionOptions{ContextTakeover: true}, "permessage-deflate; server_max_window_bits=15", true, false},
		{"client-window-9/takeover", map[string]any{"client_max_window_bits": 9},
			&CompressionOptions{ContextTakeover: true}, "permessage-deflate", true, false},
		// A server window under 15 is honoured with Huffman coding alone:
		// the peer's zlib, with a 1 KiB window, decodes it.
		{"server-window-10/no-takeover", map[string]any{"server_max_window_bits": 10},
			&CompressionOptions{}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10", false, false},
		{"server-window-10/takeover", map[string]any{"server_max_window_bits": 10},
			&CompressionOptions{ContextTakeover: true}, "permessage-deflate; server_max_window_bits=10", true, false},
		{"client-offers-nothing", nil, &CompressionOptions{}, "", false, false},
		{"server-compression-off", "default", nil, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conns := make(chan *Conn, 1)
			done := make(chan struct{})
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				conns <- c
				<-done // the test drives the connection
				return nil
			}, &AcceptOptions{ReadLimit: 64 << 20, Compression: tc.srv})
			host := dflHTTPServer(t, srv)
			p := dflStartPeer(t, "client", "ws://"+host+"/", dflPeerConfig(t, tc.py))
			defer close(done)
			open := p.expect("open")
			var c *Conn
			select {
			case c = <-conns:
			case <-time.After(dflPeerWait):
				t.Fatal("no connection")
			}
			t.Logf("offer %s, answer %s", dflStr(open.RequestExt), dflStr(open.ResponseExt))
			if got := dflStr(open.ResponseExt); (tc.answer == "" && open.ResponseExt != nil) || (tc.answer != "" && got != tc.answer) {
				t.Fatalf("answer %s, want %q", got, tc.answer)
			}
			negotiated := tc.answer != ""
			if len(open.Negotiated) != map[bool]int{false: 0, true: 1}[negotiated] || (c.deflate != nil) != negotiated {
				t.Fatalf("negotiated: peer %d extensions, ours %v; want %v", len(open.Negotiated), c.deflate != nil, negotiated)
			}
			if negotiated && c.deflate.takeoverOut != tc.takeout {
				t.Fatalf("takeoverOut %v, want %v", c.deflate.takeoverOut, tc.takeout)
			}
			dflConverse(t, dflCtxLong(t), c, p, negotiated, tc.big)
		})
	}
}

// TestDeflateInteropPythonServer: our client against a Python server with
// various settings.
func TestDeflateInteropPythonServer(t *testing.T) {
	dflRequirePeer(t)
	for _, tc := range []struct {
		name    string
		py      any // the server's permessage-deflate settings
		cli     *CompressionOptions
		answer  string // the server's answer, "" for none
		takeout bool   // our client keeps its compression context
		big     bool   // 8 MiB even under the race detector
	}{
		// The library's defaults: 4 KiB windows both ways. We decompress
		// any window; ours, limited by client_max_window_bits (which we
		// offer), is kept by Huffman coding alone, which the peer's zlib
		// inflates with its 4 KiB window (a back-reference beyond it
		// would fail the message).
		{"py-default/no-takeover", "default", &CompressionOptions{},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=12", false, true},
		{"py-default/takeover", "default", &CompressionOptions{ContextTakeover: true},
			"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12", true, false},
		// The smallest window, 256 bytes: zlib refuses to compress raw
		// deflate with it, but inflates with it, and so takes ours.
		{"py-client-window-8/no-takeover", map[string]any{"client_max_window_bits": 8}, &CompressionOptions{},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=8", false, false},
		{"py-client-window-15/takeover", map[string]any{"client_max_window_bits": 15}, &CompressionOptions{ContextTakeover: true},
			"permessage-deflate; client_max_window_bits=15", true, false},
		{"py-plain/takeover", map[string]any{}, &CompressionOptions{ContextTakeover: true}, "permessage-deflate", true, false},
		{"py-plain/no-takeover", map[string]any{}, &CompressionOptions{}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", false, false},
		{"py-server-no-takeover/takeover", map[string]any{"server_no_context_takeover": true}, &CompressionOptions{ContextTakeover: true}, "permessage-deflate; server_no_context_takeover", true, false},
		{"py-client-no-takeover/takeover", map[string]any{"client_no_context_takeover": true}, &CompressionOptions{ContextTakeover: true}, "permessage-deflate; client_no_context_takeover", false, false},
		// The server requires an offer of client_max_window_bits, which
		// ours has.
		{"py-requires-client-window", map[string]any{"client_max_window_bits": 12, "require_client_max_window_bits": true}, &CompressionOptions{},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=12", false, false},
		{"py-compression-off", nil, &CompressionOptions{}, "", false, false},
		{"client-compression-off", "default", nil, "", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := dflStartPeer(t, "server", dflPeerConfig(t, tc.py))
			port := p.expect("listening").Port
			ctx := dflCtxLong(t)
			c, resp, err := Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/", port), &DialOptions{ReadLimit: 64 << 20, Compression: tc.cli})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			open := p.expect("open")
			answer := resp.Header.Values("Sec-WebSocket-Extensions")
			t.Logf("offer %s, answer %q", dflStr(open.RequestExt), answer)
			if (tc.answer == "" && len(answer) != 0) || (tc.answer != "" && (len(answer) != 1 || answer[0] != tc.answer)) {
				t.Fatalf("answer %q, want %q", answer, tc.answer)
			}
			negotiated := tc.answer != ""
			if (c.deflate != nil) != negotiated || (len(open.Negotiated) == 1) != negotiated {
				t.Fatalf("negotiated: ours %v, peer %d extensions; want %v", c.deflate != nil, len(open.Negotiated), negotiated)
			}
			if negotiated && c.deflate.takeoverOut != tc.takeout {
				t.Fatalf("takeoverOut %v, want %v", c.deflate.takeoverOut, tc.takeout)
			}
			// A client window under 15 bits: Huffman coding alone.
			limited := strings.Contains(tc.answer, "client_max_window_bits=") && !strings.Contains(tc.answer, "client_max_window_bits=15")
			if negotiated && (c.deflate.level == flate.HuffmanOnly) != limited {
				t.Fatalf("Huffman coding alone: %v, want %v", c.deflate.level == flate.HuffmanOnly, limited)
			}
			dflConverse(t, ctx, c, p, negotiated, tc.big)
		})
	}
}

// dflCtxLong is testCtx for conversations that move tens of MiB through a
// Python peer (slow under the race detector).
func dflCtxLong(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}
