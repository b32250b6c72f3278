package ws_test

// Interop tests against a real third-party WebSocket implementation: Debian's
// python3-websockets, driven through testdata/interop/peer.py. The Python
// peer takes commands on stdin and reports what it sees on the wire (message
// type, length, sha256, frame sizes, pings, pongs, close frames) as JSON lines
// on stdout; the conversation and every assertion are here.
//
// Without the peer the tests skip, except in CI (CI set), where they fail:
// .ci/run installs python3-websockets.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/internal/testpeer"
	"github.com/wesos/wesos/ws"
)

const (
	interopPython  = "/usr/bin/python3" // Debian's; the python3 on PATH may be another build
	interopScript  = "testdata/interop/peer.py"
	interopLife    = 60 * time.Second // the longest a peer process may live
	interopWait    = 20 * time.Second // for one event from the peer
	interopLimit   = 64 << 20         // read limit of our side
	interopBigSize = 8 << 20
)

// interopRequirePeer skips the test under -short, and skips it (fails it
// in CI) if Debian's Python cannot import websockets; it logs the version it
// finds.
func interopRequirePeer(t *testing.T) {
	t.Helper()
	interopRequireProgram(t, "python3-websockets", "apt-get install python3-websockets",
		interopPython, "-I", "-c", "import websockets; print(websockets.__version__)")
}

// interopRequireProgram skips the test under -short; otherwise it runs
// probe, a command that prints the version of a third-party peer (name),
// and returns that version. If the probe fails it skips the test, or fails
// it in CI, saying how to install the peer.
func interopRequireProgram(t *testing.T, name, install string, probe ...string) string {
	t.Helper()
	testpeer.SkipShort(t, "interop with "+name)
	return testpeer.Require(t, name, install, probe...)
}

// interopNoLeaks fails the test if it leaves goroutines behind. Call it first
// so that its cleanup runs last.
func interopNoLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				t.Errorf("goroutines leaked: %d before the test, %d after:\n%s", before, runtime.NumGoroutine(), buf)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// interopEvent is one line the peer printed (see peer.py, and
// testdata/interop-node/peer.js, for the list).
type interopEvent struct {
	Ev           string   `json:"ev"`
	Port         int      `json:"port"`
	Version      string   `json:"version"`
	Type         string   `json:"type"`
	Len          int      `json:"len"`
	SHA256       string   `json:"sha256"`
	Frames       []int    `json:"frames"`
	Data         string   `json:"data"`
	Pongs        []string `json:"pongs"`
	RcvdCode     *int     `json:"rcvd_code"`
	RcvdReason   *string  `json:"rcvd_reason"`
	SentCode     *int     `json:"sent_code"`
	SentReason   *string  `json:"sent_reason"`
	RcvdThenSent *bool    `json:"rcvd_then_sent"`
	Msg          string   `json:"msg"`
	// The Node peer's: the handshake's outcome, and the bytes its TCP
	// connection read and wrote so far.
	Protocol    string  `json:"protocol"`
	Extensions  string  `json:"extensions"`
	RequestExt  *string `json:"request_ext"`
	ResponseExt *string `json:"response_ext"`
	Read        int64   `json:"read"`
	Written     int64   `json:"written"`

	line string
}

// interopPeer is a running peer.py process.
type interopPeer struct {
	t      *testing.T
	stdin  io.WriteCloser
	exited chan struct{} // closed when the process has exited and its output is in
	err    error         // the process's exit status, once exited is closed
	// rawText: the peer takes text fragments as bytes (base64), as
	// binary ones, so that they may be invalid UTF-8 (the Node peer).
	rawText bool

	mu      sync.Mutex
	partial []byte
	events  []interopEvent
	stderr  bytes.Buffer
	notify  chan struct{} // a new event (capacity 1)
	seen    int           // events handed out by expect (test goroutine only)
}

type interopStdout struct{ p *interopPeer }

func (w interopStdout) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	p.partial = append(p.partial, b...)
	for {
		i := bytes.IndexByte(p.partial, '\n')
		if i < 0 {
			break
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		ev := interopEvent{line: line}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			ev = interopEvent{Ev: "unparsable", Msg: err.Error(), line: line}
		}
		p.events = append(p.events, ev)
	}
	p.mu.Unlock()
	select {
	case p.notify <- struct{}{}:
	default:
	}
	return len(b), nil
}

type interopStderr struct{ p *interopPeer }

func (w interopStderr) Write(b []byte) (int, error) {
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	return w.p.stderr.Write(b)
}

func (p *interopPeer) stderrText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// interopStartPeer runs peer.py with args.
func interopStartPeer(t *testing.T, args ...string) *interopPeer {
	t.Helper()
	// -I: isolated from PYTHON* variables and user site-packages; -B: no
	// __pycache__ in testdata.
	return interopStartProcess(t, append([]string{interopPython, "-I", "-B", interopScript}, args...))
}

// interopStartProcess runs a peer program (argv) that speaks the command and
// event protocol of peer.py. The process lives at most interopLife; the
// test's cleanup ends it (closing stdin, then killing it) and waits for it.
func interopStartProcess(t *testing.T, argv []string) *interopPeer {
	t.Helper()
	args := argv[1:]
	ctx, cancel := context.WithTimeout(context.Background(), interopLife)
	cmd := exec.CommandContext(ctx, argv[0], args...)
	cmd.WaitDelay = 5 * time.Second
	p := &interopPeer{t: t, exited: make(chan struct{}), notify: make(chan struct{}, 1)}
	cmd.Stdout = interopStdout{p}
	cmd.Stderr = interopStderr{p}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	p.stdin = stdin
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting the peer: %v", err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stdin.Close() // the peer closes its connection and exits
		select {
		case <-p.exited:
		case <-time.After(10 * time.Second):
			t.Errorf("peer did not exit 10s after its stdin closed; killing it")
			cancel()
			<-p.exited
		}
		cancel()
		if t.Failed() {
			t.Logf("peer %v exit: %v; stderr:\n%s", args, p.err, p.stderrText())
		}
	})
	return p
}

// next returns the next event, failing the test if none comes in time.
func (p *interopPeer) next() interopEvent {
	p.t.Helper()
	timer := time.NewTimer(interopWait)
	defer timer.Stop()
	for {
		p.mu.Lock()
		if p.seen < len(p.events) {
			ev := p.events[p.seen]
			p.seen++
			p.mu.Unlock()
			return ev
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-p.exited:
			p.mu.Lock()
			more := p.seen < len(p.events)
			p.mu.Unlock()
			if !more {
				p.t.Fatalf("peer exited (%v) while an event was awaited; stderr:\n%s", p.err, p.stderrText())
			}
		case <-timer.C:
			p.t.Fatalf("no event from the peer in %v; stderr:\n%s", interopWait, p.stderrText())
		}
	}
}

// expect returns the next event, which must be of kind ev.
func (p *interopPeer) expect(ev string) interopEvent {
	p.t.Helper()
	e := p.next()
	if e.Ev != ev {
		p.t.Fatalf("peer: got %s, want a %q event", e.line, ev)
	}
	return e
}

// do sends the peer a command.
func (p *interopPeer) do(cmd map[string]any) {
	p.t.Helper()
	b, err := json.Marshal(cmd)
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.stdin.Write(append(b, '\n')); err != nil {
		p.t.Fatalf("writing a command to the peer: %v", err)
	}
}

// send makes the peer send m: its fragments as one frame each (an iterable
// passed to send()) if m has several, else one frame.
func (p *interopPeer) send(m interopMsg) {
	p.t.Helper()
	frags := make([]any, len(m.frags))
	for i, f := range m.frags {
		if m.typ == ws.Text && !p.rawText {
			frags[i] = string(f)
		} else {
			frags[i] = f // base64 in JSON
		}
	}
	typ := "binary"
	if m.typ == ws.Text {
		typ = "text"
	}
	cmd := map[string]any{"op": "send", "type": typ, "frags": frags, "fragmented": len(m.frags) > 1}
	if m.delay > 0 {
		cmd["delay_ms"] = m.delay.Milliseconds()
	}
	if m.pingBetween != nil {
		cmd["ping_between"] = hex.EncodeToString(m.pingBetween)
	}
	p.do(cmd)
}

// ping makes the peer ping with payload and checks the pong it got back.
func (p *interopPeer) ping(payload []byte) {
	p.t.Helper()
	p.do(map[string]any{"op": "ping", "data": hex.EncodeToString(payload)})
	p.expectPong(payload)
}

// expectPong checks the peer's report of the pong to its ping with payload.
func (p *interopPeer) expectPong(payload []byte) {
	p.t.Helper()
	ev := p.expect("pong")
	if want := []string{hex.EncodeToString(payload)}; !slices.Equal(ev.Pongs, want) {
		p.t.Fatalf("peer pinged %x and got pongs %v, want exactly one with the same payload", payload, ev.Pongs)
	}
}

// close makes the peer run the closing handshake with code and reason.
func (p *interopPeer) close(code int, reason string) {
	p.do(map[string]any{"op": "close", "code": code, "reason": reason})
}

// expectClosed waits for the peer's "closed" event and checks the close frame
// it received and the one it sent.
func (p *interopPeer) expectClosed(rcvdCode int, rcvdReason string, sentCode int) interopEvent {
	p.t.Helper()
	ev := p.expectClosedRcvd(rcvdCode, rcvdReason)
	if ev.SentCode == nil || *ev.SentCode != sentCode {
		p.t.Errorf("peer sent close %s, want code %d", ev.line, sentCode)
	}
	return ev
}

// expectClosedRcvd waits for the peer's "closed" event and checks the close
// frame it received.
func (p *interopPeer) expectClosedRcvd(rcvdCode int, rcvdReason string) interopEvent {
	p.t.Helper()
	ev := p.expect("closed")
	p.t.Logf("peer: %s", ev.line)
	if ev.RcvdCode == nil || *ev.RcvdCode != rcvdCode || ev.RcvdReason == nil || *ev.RcvdReason != rcvdReason {
		p.t.Errorf("peer received close %s, want code %d reason %q", ev.line, rcvdCode, rcvdReason)
	}
	return ev
}

// wait waits for the peer to exit, which it must do cleanly and without
// events left unread.
func (p *interopPeer) wait() {
	p.t.Helper()
	select {
	case <-p.exited:
	case <-time.After(interopWait):
		p.t.Fatalf("peer did not exit in %v after its connection closed", interopWait)
	}
	if p.err != nil {
		p.t.Errorf("peer exited with %v; stderr:\n%s", p.err, p.stderrText())
	}
	p.mu.Lock()
	rest := p.events[p.seen:]
	p.mu.Unlock()
	for _, ev := range rest {
		p.t.Errorf("peer: unexpected event %s", ev.line)
	}
}

// interopMsg is one message of the conversation.
type interopMsg struct {
	name  string
	typ   ws.MessageType
	frags [][]byte      // one: a single frame; more: a fragmented message
	delay time.Duration // between the peer's fragments
	// pingBetween, if not nil, makes the peer ping with it after its first
	// fragment and wait for the pong before it sends the rest.
	pingBetween []byte
}

func (m interopMsg) payload() []byte { return bytes.Join(m.frags, nil) }

// pySendable reports whether python's send() can produce m: it sends text
// fragments from str values, so each must be valid UTF-8 on its own.
func (m interopMsg) pySendable() bool {
	if m.typ != ws.Text {
		return true
	}
	for _, f := range m.frags {
		if !utf8.Valid(f) {
			return false
		}
	}
	return true
}

// interopBytes returns n pseudo-random bytes.
func interopBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

func interopText(s ...string) [][]byte {
	frags := make([][]byte, len(s))
	for i, f := range s {
		frags[i] = []byte(f)
	}
	return frags
}

// interopMessages is the conversation both directions go through.
func interopMessages() []interopMsg {
	big := interopBytes(interopBigSize, 99)
	mixed := strings.Repeat("a€😀ß日", 40000) // 1, 3, 4, 2, 3-byte runes; 520 kB
	msgs := []interopMsg{
		{name: "text/ascii", typ: ws.Text, frags: interopText("hello, wesos")},
		{name: "text/empty", typ: ws.Text, frags: interopText("")},
		{name: "text/multibyte", typ: ws.Text, frags: interopText("héllo wörld ß — €uro · 日本語 · Ελληνικά · עברית")},
		{name: "text/emoji", typ: ws.Text, frags: interopText("😀🎉🚀 𝄞 👩‍💻 🇫🇷 \U0010FFFF")},
		{name: "text/mixed-520kB", typ: ws.Text, frags: interopText(mixed)},
	}
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, interopBigSize} {
		msgs = append(msgs, interopMsg{name: fmt.Sprintf("binary/%d", n), typ: ws.Binary, frags: [][]byte{interopBytes(n, byte(n))}})
	}
	msgs = append(msgs,
		interopMsg{name: "fragmented/text", typ: ws.Text, frags: interopText("héllo ", "😀🎉", " wörld ", "日本語")},
		// 4-byte and 3-byte sequences cut between fragments: valid only as a whole.
		interopMsg{name: "fragmented/text-split-runes", typ: ws.Text, frags: interopText("ab\xf0\x9f", "\x98\x80c\xe6", "\x97\xa5d\xf0", "\x9f", "\x8e\x89")},
		// Empty fragments: Python sends each as an empty frame; our Writer
		// sends none for an empty Write.
		interopMsg{name: "fragmented/empty-fragments", typ: ws.Text, frags: interopText("", "x", "", "😀", "")},
		interopMsg{name: "fragmented/binary", typ: ws.Binary, frags: [][]byte{
			interopBytes(1, 1), interopBytes(125, 2), interopBytes(126, 3), interopBytes(127, 4),
			interopBytes(65535, 5), interopBytes(65536, 6), interopBytes(3, 7)}},
		interopMsg{name: "fragmented/binary-8MiB", typ: ws.Binary, frags: [][]byte{
			big[:1], big[1 : 3<<20], big[3<<20 : 6<<20], big[6<<20:]}},
		interopMsg{name: "fragmented/text-slow", typ: ws.Text, frags: interopText("one ", "två ", "три ", "四 ", "🖐"), delay: 20 * time.Millisecond},
	)
	return msgs
}

// interopCheckMsg checks the peer's report of a message against what was sent.
func interopCheckMsg(t *testing.T, ev interopEvent, m interopMsg) {
	t.Helper()
	p := m.payload()
	sum := sha256.Sum256(p)
	if ev.Type != m.typ.String() || ev.Len != len(p) || ev.SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("%s: peer got %s %d bytes sha256 %s; sent %s %d bytes sha256 %x",
			m.name, ev.Type, ev.Len, ev.SHA256, m.typ, len(p), sum)
	}
}

// interopCheckFrames checks the frame sizes the peer saw for a message we
// wrote with Write (one frame) or with a Writer (one frame per non-empty
// Write, then an empty final frame).
func interopCheckFrames(t *testing.T, ev interopEvent, m interopMsg) {
	t.Helper()
	var want []int
	if len(m.frags) == 1 {
		want = []int{len(m.frags[0])}
	} else {
		for _, f := range m.frags {
			if len(f) > 0 {
				want = append(want, len(f))
			}
		}
		want = append(want, 0)
	}
	if !slices.Equal(ev.Frames, want) {
		t.Errorf("%s: peer got frames of %v bytes, want %v", m.name, ev.Frames, want)
	}
}

// interopCheckRead checks a message we read against what the peer sent.
func interopCheckRead(t *testing.T, m interopMsg, typ ws.MessageType, got []byte, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: reading the peer's message: %v", m.name, err)
	}
	want := m.payload()
	if typ != m.typ || !bytes.Equal(got, want) {
		t.Fatalf("%s: read %v %d bytes (sha256 %x), want %v %d bytes (sha256 %x)",
			m.name, typ, len(got), sha256.Sum256(got), m.typ, len(want), sha256.Sum256(want))
	}
}

func interopCloseError(t *testing.T, what string, err error, code ws.StatusCode, reason string) {
	t.Helper()
	var ce ws.CloseError
	if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
		t.Errorf("%s: got %v, want ws.CloseError{%d, %q}", what, err, code, reason)
	}
}

func interopCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), interopLife)
	t.Cleanup(cancel)
	return ctx
}

// ---- our server, Python's client ----

// interopServer is our echo server: ws.NewServer with wesos.Pipe(ctx, c, c).
type interopServer struct {
	url   string
	conns chan *ws.Conn // each accepted connection
	ends  chan error    // what Pipe returned, for each connection
	pings chan []byte   // payloads of the pings received (OnPing)
}

// interopStartServer starts our echo server on 127.0.0.1; configure, if
// given, adjusts its options (read limit and OnPing set) before it starts.
func interopStartServer(t *testing.T, configure ...func(*ws.AcceptOptions)) *interopServer {
	s := &interopServer{conns: make(chan *ws.Conn, 4), ends: make(chan error, 4), pings: make(chan []byte, 16)}
	opts := &ws.AcceptOptions{
		ReadLimit: interopLimit,
		OnPing: func(p []byte) {
			select {
			case s.pings <- bytes.Clone(p):
			default:
			}
		},
	}
	for _, f := range configure {
		f(opts)
	}
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		s.conns <- c
		s.ends <- wesos.Pipe(ctx, c, c)
		return nil
	}, opts)
	hs := httptest.NewServer(srv) // 127.0.0.1
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		hs.Close()
	})
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	return s
}

// connect starts a Python client against s and returns it with the server
// side of its connection.
func (s *interopServer) connect(t *testing.T) (*interopPeer, *ws.Conn) {
	t.Helper()
	p := interopStartPeer(t, "client", s.url+"/echo")
	p.expect("open")
	return p, s.accepted(t)
}

// accepted returns the server side of the next connection.
func (s *interopServer) accepted(t *testing.T) *ws.Conn {
	t.Helper()
	return recvWithin(t, s.conns, "the server's handler to run for the peer's connection")
}

func (s *interopServer) end(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.ends:
		return err
	case <-time.After(interopWait):
		t.Fatal("the server's handler did not return")
		return nil
	}
}

// interopPeerPings has the peer ping with an empty, a short and a 125-byte
// payload (made from seed) and checks that OnPing (on pings) saw each: the
// connection's reader answered.
func interopPeerPings(t *testing.T, p *interopPeer, pings <-chan []byte, who string, seed byte) {
	t.Helper()
	for _, payload := range [][]byte{{}, []byte("ping from " + who), interopBytes(125, seed)} {
		p.ping(payload)
		if got := recvWithin(t, pings, "OnPing"); !bytes.Equal(got, payload) {
			t.Errorf("OnPing got %x, peer sent %x", got, payload)
		}
	}
}

// interopOurPings pings twice from c and checks that the peer saw each
// ping, within a control frame's size, and that Ping returned: the pong
// came back through c's reader.
func interopOurPings(t *testing.T, ctx context.Context, c *ws.Conn, p *interopPeer) {
	t.Helper()
	for range 2 {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("Ping: %v", err)
		}
		if ev := p.expect("ping"); len(ev.Data) > 2*125 {
			t.Errorf("peer saw a ping of %d bytes", len(ev.Data)/2)
		}
	}
}

// interopWritePinging writes m through c's Writer, a Write per fragment,
// with a ping from the peer after fragment at and one of ours after the
// next: control frames pass between the fragments of a message being
// written. pings is where OnPing reports.
func interopWritePinging(t *testing.T, ctx context.Context, c *ws.Conn, p *interopPeer, pings <-chan []byte, m interopMsg, at int) {
	t.Helper()
	w, err := c.Writer(ctx, m.typ)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range m.frags {
		if _, err := w.Write(f); err != nil {
			t.Fatalf("%s: Write %d: %v", m.name, i, err)
		}
		switch i {
		case at:
			p.ping([]byte("mid-message"))
			recvWithin(t, pings, "OnPing")
		case at + 1:
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("Ping inside a fragmented message: %v", err)
			}
			p.expect("ping")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// interopReadSent has the peer send each of msgs and reads them with c,
// alternately whole (Read) and streamed through Next in small reads.
func interopReadSent(t *testing.T, ctx context.Context, c *ws.Conn, p *interopPeer, msgs []interopMsg) {
	t.Helper()
	for i, m := range msgs {
		p.send(m)
		if i%2 == 0 {
			typ, got, err := c.Read(ctx)
			interopCheckRead(t, m, typ, got, err)
			continue
		}
		msg, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("%s: Next: %v", m.name, err)
		}
		got, err := io.ReadAll(io.LimitReader(struct{ io.Reader }{msg.Body}, interopLimit))
		interopCheckRead(t, m, msg.Type, got, err)
	}
}

func recvWithin[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(interopWait):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

func TestInteropPythonClient(t *testing.T) {
	interopNoLeaks(t)
	interopRequirePeer(t)

	t.Run("conversation", func(t *testing.T) {
		ctx := interopCtx(t)
		s := interopStartServer(t)
		p, sc := s.connect(t)

		// Every message, sent by Python (fragmented ones as an iterable),
		// echoed by our server as it streams in.
		for _, m := range interopMessages() {
			if !m.pySendable() {
				continue
			}
			p.send(m)
			ev := p.expect("msg")
			interopCheckMsg(t, ev, m)
			if len(m.frags) == 1 && len(m.frags[0]) <= 125 && !slices.Equal(ev.Frames, []int{len(m.frags[0])}) {
				t.Errorf("%s: echo of a single small frame came back in frames %v", m.name, ev.Frames)
			}
			t.Logf("%s: echoed in %d frame(s)", m.name, len(ev.Frames))
		}

		// Python pings; our server (reading inside Pipe) answers.
		interopPeerPings(t, p, s.pings, "python", 42)

		// Python pings between the fragments of a message it sends: our
		// server answers while it reads (and streams out the echo of) that
		// message.
		pm := interopMsg{name: "ping-between-fragments", typ: ws.Binary,
			frags: [][]byte{interopBytes(1000, 11), interopBytes(70000, 12), interopBytes(5, 13)}, pingBetween: []byte("between")}
		p.send(pm)
		p.expectPong(pm.pingBetween)
		recvWithin(t, s.pings, "OnPing")
		interopCheckMsg(t, p.expect("msg"), pm)

		// Our server pings; Python answers; the pong reaches Ping through
		// Pipe's read.
		interopOurPings(t, ctx, sc, p)

		// A message of our server's own, through a Writer, with pings both
		// ways while it is open: control frames pass between its fragments.
		m := interopMsg{name: "server-writer", typ: ws.Text, frags: interopText("fragments ", "from our ", "server: ", "\xf0\x9f", "\x98\x80")}
		interopWritePinging(t, ctx, sc, p, s.pings, m, 1)
		ev := p.expect("msg")
		interopCheckMsg(t, ev, m)
		interopCheckFrames(t, ev, m)

		// A normal close from our side.
		if err := sc.Close(ws.StatusNormalClosure, "done"); err != nil {
			t.Errorf("Close: %v", err)
		}
		p.expectClosed(1000, "done", 1000)
		if err := s.end(t); err != nil {
			t.Errorf("Pipe after a normal close returned %v, want nil", err)
		}
		p.wait()
	})

	t.Run("close-by-server", func(t *testing.T) {
		s := interopStartServer(t)
		p, sc := s.connect(t)
		if err := sc.Close(4001, "bye"); err != nil {
			t.Errorf("Close(4001): %v", err)
		}
		p.expectClosed(4001, "bye", 4001)
		interopCloseError(t, "Pipe after our Close(4001)", s.end(t), 4001, "bye")
		p.wait()
	})

	t.Run("close-reason-cut", func(t *testing.T) {
		// A reason longer than a close frame holds is cut at a rune
		// boundary: 40 four-byte runes leave 30 (120 of 123 bytes).
		s := interopStartServer(t)
		p, sc := s.connect(t)
		if err := sc.Close(4003, strings.Repeat("😀", 40)); err != nil {
			t.Errorf("Close(4003): %v", err)
		}
		p.expectClosed(4003, strings.Repeat("😀", 30), 4003)
		interopCloseError(t, "Pipe after our Close(4003)", s.end(t), 4003, strings.Repeat("😀", 30))
		p.wait()
	})

	t.Run("close-by-peer", func(t *testing.T) {
		s := interopStartServer(t)
		p, _ := s.connect(t)
		p.close(4002, "python says bye ✓")
		interopCloseError(t, "Pipe after the peer's close(4002)", s.end(t), 4002, "python says bye ✓")
		ev := p.expect("closed")
		t.Logf("peer: %s", ev.line)
		if ev.SentCode == nil || *ev.SentCode != 4002 || ev.RcvdCode == nil || *ev.RcvdCode != 4002 {
			t.Errorf("peer: %s; want 4002 sent and echoed", ev.line)
		}
		p.wait()
	})
}

// ---- Python's server, our client ----

// interopDial starts a Python echo server and dials it.
func interopDial(t *testing.T, ctx context.Context, pings chan []byte) (*interopPeer, *ws.Conn) {
	t.Helper()
	p := interopStartPeer(t, "server")
	c, _ := interopDialPeer(t, ctx, p, pings)
	p.expect("open")
	return p, c
}

// interopDialPeer dials the peer p, a server that has yet to report
// "listening", with our read limit and an OnPing that feeds pings;
// configure, if given, adjusts the options before the dial.
func interopDialPeer(t *testing.T, ctx context.Context, p *interopPeer, pings chan []byte, configure ...func(*ws.DialOptions)) (*ws.Conn, *http.Response) {
	t.Helper()
	port := p.expect("listening").Port
	opts := &ws.DialOptions{
		ReadLimit: interopLimit,
		OnPing: func(b []byte) {
			select {
			case pings <- bytes.Clone(b):
			default:
			}
		},
	}
	for _, f := range configure {
		f(opts)
	}
	c, resp, err := ws.Dial(ctx, fmt.Sprintf("ws://127.0.0.1:%d/", port), opts)
	if err != nil {
		t.Fatalf("Dial: %v (response %v)", err, resp)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, resp
}

// interopWrite sends m: one Write, or a Writer with one Write per fragment.
func interopWrite(t *testing.T, ctx context.Context, c *ws.Conn, m interopMsg) {
	t.Helper()
	if len(m.frags) == 1 {
		if err := c.Write(ctx, m.typ, m.frags[0]); err != nil {
			t.Fatalf("%s: Write: %v", m.name, err)
		}
		return
	}
	w, err := c.Writer(ctx, m.typ)
	if err != nil {
		t.Fatalf("%s: Writer: %v", m.name, err)
	}
	for _, f := range m.frags {
		if _, err := w.Write(f); err != nil {
			t.Fatalf("%s: Writer.Write: %v", m.name, err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatalf("%s: Writer.Close: %v", m.name, err)
	}
}

type interopRead struct {
	typ  ws.MessageType
	data []byte
	err  error
}

// interopReader reads c in a goroutine until a read fails (the last value
// sent carries the error). The goroutine ends with the connection; the
// test's cleanup waits for it.
func interopReader(t *testing.T, ctx context.Context, c *ws.Conn) <-chan interopRead {
	ch := make(chan interopRead, 8)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		for {
			typ, b, err := c.Read(ctx)
			ch <- interopRead{typ, b, err}
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		c.CloseNow()
		for range ch {
		}
		<-done
	})
	return ch
}

func TestInteropPythonServer(t *testing.T) {
	interopNoLeaks(t)
	interopRequirePeer(t)

	t.Run("conversation", func(t *testing.T) {
		ctx := interopCtx(t)
		pings := make(chan []byte, 16)
		p, c := interopDial(t, ctx, pings)

		// Every message, sent by us (Write, or a Writer with one Write per
		// fragment), checked frame by frame by Python, echoed back.
		for _, m := range interopMessages() {
			interopWrite(t, ctx, c, m)
			ev := p.expect("msg")
			interopCheckMsg(t, ev, m)
			interopCheckFrames(t, ev, m)
			typ, got, err := c.Read(ctx)
			interopCheckRead(t, m, typ, got, err)
		}

		// Messages sent by Python, fragmented ones as an iterable; read
		// whole, and streamed through Next in small reads.
		var sendable []interopMsg
		for _, m := range interopMessages() {
			if m.pySendable() {
				sendable = append(sendable, m)
			}
		}
		interopReadSent(t, ctx, c, p, sendable)

		// Python pings between the fragments of a message it sends: we
		// answer inside the Read of that message.
		pm := interopMsg{name: "ping-between-fragments", typ: ws.Text,
			frags: interopText("first ", "😀 second", " third"), pingBetween: []byte("between")}
		p.send(pm)
		typ, got, err := c.Read(ctx)
		interopCheckRead(t, pm, typ, got, err)
		p.expectPong(pm.pingBetween)
		recvWithin(t, pings, "OnPing")

		// From here on a goroutine reads, as Ping requires.
		reads := interopReader(t, ctx, c)

		// Python pings; our reader answers.
		interopPeerPings(t, p, pings, "python", 43)

		// We ping; Python answers.
		interopOurPings(t, ctx, c, p)

		// Pings both ways between the fragments of a message we write.
		m := interopMsg{name: "client-writer", typ: ws.Binary, frags: [][]byte{interopBytes(70000, 8), interopBytes(10, 9), interopBytes(125, 10)}}
		interopWritePinging(t, ctx, c, p, pings, m, 0)
		ev := p.expect("msg")
		interopCheckMsg(t, ev, m)
		interopCheckFrames(t, ev, m)
		r := recvWithin(t, reads, "the echo")
		interopCheckRead(t, m, r.typ, r.data, r.err)

		// A normal close from our side, with the reader running.
		if err := c.Close(ws.StatusNormalClosure, "done"); err != nil {
			t.Errorf("Close: %v", err)
		}
		p.expectClosed(1000, "done", 1000)
		r = recvWithin(t, reads, "the reader's end")
		interopCloseError(t, "read after Close(1000)", r.err, 1000, "done")
		if !errors.Is(r.err, io.EOF) {
			t.Errorf("read after a normal close: %v does not match io.EOF", r.err)
		}
		p.wait()
	})

	t.Run("close-by-client", func(t *testing.T) {
		// No goroutine reads: Close reads the peer's close frame itself.
		p, c := interopDial(t, interopCtx(t), make(chan []byte, 16))
		if err := c.Close(4001, "bye"); err != nil {
			t.Errorf("Close(4001): %v", err)
		}
		p.expectClosed(4001, "bye", 4001)
		_, _, err := c.Read(interopCtx(t))
		interopCloseError(t, "Read after Close(4001)", err, 4001, "bye")
		p.wait()
	})

	t.Run("close-by-peer", func(t *testing.T) {
		ctx := interopCtx(t)
		p, c := interopDial(t, ctx, make(chan []byte, 16))
		p.close(4002, "python says bye ✓")
		_, _, err := c.Read(ctx)
		interopCloseError(t, "Read after the peer's close(4002)", err, 4002, "python says bye ✓")
		ev := p.expect("closed")
		t.Logf("peer: %s", ev.line)
		if ev.SentCode == nil || *ev.SentCode != 4002 || ev.RcvdCode == nil || *ev.RcvdCode != 4002 {
			t.Errorf("peer: %s; want 4002 sent and echoed", ev.line)
		}
		p.wait()
	})
}
