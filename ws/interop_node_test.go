package ws_test

// Interop tests against Node's ws (the npm package "ws", the most used
// third-party WebSocket implementation), driven through
// testdata/interop-node/peer.js with the harness of interop_test.go: the
// peer takes the same commands on stdin as the Python peer and reports what
// it sees as JSON lines on stdout; the conversation and every assertion are
// here. Both directions (Node's client against our server, our client
// against Node's server), plain and with permessage-deflate.
//
// testdata/interop-node/package-lock.json pins ws at an exact version. Without
// node, or without that version installed there (npm ci), the tests skip,
// except in CI (CI set), where they fail: .ci/run installs the peer.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/wesos/wesos/internal/testpeer"
	"github.com/wesos/wesos/ws"
)

const (
	nodeDir    = "testdata/interop-node"
	nodeScript = nodeDir + "/peer.js"
)

// nodeRequirePeer skips the test (fails it in CI) unless node runs and ws
// is installed in nodeDir at the version its package.json pins.
func nodeRequirePeer(t *testing.T) {
	t.Helper()
	install := "npm ci --no-audit --no-fund, in ws/" + nodeDir
	got := interopRequireProgram(t, "ws (Node)", install, "node", "-p",
		"require('./"+nodeDir+"/node_modules/ws/package.json').version + ' on node ' + process.version")
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	b, err := os.ReadFile(nodeDir + "/package.json")
	if err == nil {
		err = json.Unmarshal(b, &pkg)
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := pkg.Dependencies["ws"]; !strings.HasPrefix(got, want+" ") {
		testpeer.Missing(t, "ws (Node)", install, fmt.Sprintf("ws %s is installed in %s but package.json pins %s", got, nodeDir, want))
	}
}

// nodeConfig is peer.js's CONFIG argument.
type nodeConfig struct {
	// Deflate is ws's perMessageDeflate option: nil or false for none,
	// true for ws's defaults, or a map of its options.
	Deflate any `json:"deflate"`
	// Protocols: a client's offer, or the subprotocols a server speaks.
	Protocols []string `json:"protocols,omitempty"`
}

// nodeStartPeer runs peer.js with args ("client" URL, or "server") and
// config.
func nodeStartPeer(t *testing.T, config nodeConfig, args ...string) *interopPeer {
	t.Helper()
	b, err := json.Marshal(config)
	if err != nil {
		t.Fatal(err)
	}
	p := interopStartProcess(t, append(append([]string{"node", nodeScript}, args...), string(b)))
	p.rawText = true
	return p
}

// nodeConnect starts a Node client against our server s and returns it
// with its "open" event and the server side of its connection.
func nodeConnect(t *testing.T, s *interopServer, config nodeConfig) (*interopPeer, interopEvent, *ws.Conn) {
	t.Helper()
	p := nodeStartPeer(t, config, "client", s.url+"/echo")
	open := p.expect("open")
	return p, open, s.accepted(t)
}

// nodeMessages is the conversation of the plain tests: the Python tests'
// (Node sends text fragments as the bytes given, so all of them, split
// runes included) and two of 1 MiB.
func nodeMessages() []interopMsg {
	return append(interopMessages(),
		interopMsg{name: "binary/1MiB", typ: ws.Binary, frags: [][]byte{interopBytes(1<<20, 77)}},
		interopMsg{name: "text/1MiB", typ: ws.Text, frags: [][]byte{nodeCompressible(1<<20, 78)}},
	)
}

// nodeCompressible returns n bytes of ASCII text that deflate shrinks more
// than tenfold: lines of JSON whose few varying fields come from seed.
func nodeCompressible(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0))
	var b bytes.Buffer
	for seq := 0; b.Len() < n; seq++ {
		fmt.Fprintf(&b, `{"seq":%d,"symbol":"WSOS","side":"%s","qty":%d,"venue":"XNAS"}`+"\n",
			seq, [2]string{"buy", "sell"}[r.IntN(2)], 100*(1+r.IntN(9)))
	}
	return b.Bytes()[:n]
}

// nodeSplit cuts b into n pieces of about the same size.
func nodeSplit(b []byte, n int) [][]byte {
	pieces := make([][]byte, n)
	for i := range n {
		pieces[i] = b[len(b)*i/n : len(b)*(i+1)/n]
	}
	return pieces
}

// nodeExpectFailed checks that our side failed the connection with code
// (err is what its read returned) and that the peer got that close frame.
func nodeExpectFailed(t *testing.T, p *interopPeer, err error, code ws.StatusCode) {
	t.Helper()
	var pe *ws.ProtocolError
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("got %v, want a *ws.ProtocolError with code %d", err, code)
	}
	p.expectClosedRcvd(int(code), pe.Reason)
}

// ---- our server, Node's client ----

func TestInteropNodeClient(t *testing.T) {
	interopNoLeaks(t)
	nodeRequirePeer(t)

	t.Run("conversation", func(t *testing.T) {
		ctx := interopCtx(t)
		s := interopStartServer(t)
		p, _, sc := nodeConnect(t, s, nodeConfig{})

		// Every message, sent by Node (fragmented ones a frame per
		// fragment), echoed by our server as it streams in.
		for _, m := range nodeMessages() {
			p.send(m)
			interopCheckMsg(t, p.expect("msg"), m)
		}

		// Node pings; our server (reading inside Pipe) answers.
		interopPeerPings(t, p, s.pings, "node", 42)

		// Node pings between the fragments of a message it sends.
		pm := interopMsg{name: "ping-between-fragments", typ: ws.Binary,
			frags: [][]byte{interopBytes(1000, 11), interopBytes(70000, 12), interopBytes(5, 13)}, pingBetween: []byte("between")}
		p.send(pm)
		p.expectPong(pm.pingBetween)
		recvWithin(t, s.pings, "OnPing")
		interopCheckMsg(t, p.expect("msg"), pm)

		// Our server pings; Node answers; the pong reaches Ping through
		// Pipe's read.
		interopOurPings(t, ctx, sc, p)

		// Messages of our server's own, streamed through a Writer in many
		// Writes, with pings both ways while they are open: Node gets
		// each as one message.
		for _, m := range []interopMsg{
			{name: "server-writer/text", typ: ws.Text, frags: interopText("fragments ", "from our ", "server: ", "\xf0\x9f", "\x98\x80", "", "日本")},
			{name: "server-writer/1MiB", typ: ws.Binary, frags: nodeSplit(interopBytes(1<<20, 14), 64)},
		} {
			interopWritePinging(t, ctx, sc, p, s.pings, m, 1)
			interopCheckMsg(t, p.expect("msg"), m)
		}

		// A normal close from our side; ws echoes code and reason.
		if err := sc.Close(ws.StatusNormalClosure, "done"); err != nil {
			t.Errorf("Close: %v", err)
		}
		p.expectClosedRcvd(1000, "done")
		if err := s.end(t); err != nil {
			t.Errorf("Pipe after a normal close returned %v, want nil", err)
		}
		p.wait()
	})

	// ws sends a Buffer given with binary: false as a text frame without
	// checking it: our server must fail the connection with 1007, whether
	// the bad byte is in a single frame or the message ends inside a rune.
	for _, m := range []interopMsg{
		{name: "invalid-utf8/single-frame", typ: ws.Text, frags: interopText("bad \xc3\x28 byte")},
		{name: "invalid-utf8/fragmented", typ: ws.Text, frags: interopText("valid ", "so far \xe6\x97", "\xa5 then \xff")},
		{name: "invalid-utf8/truncated-rune", typ: ws.Text, frags: interopText("ends inside ", "a rune \xf0\x9f\x98")},
	} {
		t.Run(m.name, func(t *testing.T) {
			s := interopStartServer(t)
			p, _, _ := nodeConnect(t, s, nodeConfig{})
			p.send(m)
			nodeExpectFailed(t, p, s.end(t), ws.StatusInvalidFramePayloadData)
			p.wait()
		})
	}

	t.Run("close-by-server", func(t *testing.T) {
		s := interopStartServer(t)
		p, _, sc := nodeConnect(t, s, nodeConfig{})
		if err := sc.Close(4001, "bye"); err != nil {
			t.Errorf("Close(4001): %v", err)
		}
		p.expectClosedRcvd(4001, "bye")
		interopCloseError(t, "Pipe after our Close(4001)", s.end(t), 4001, "bye")
		p.wait()
	})

	t.Run("close-by-peer", func(t *testing.T) {
		// We echo the code without the reason.
		s := interopStartServer(t)
		p, _, _ := nodeConnect(t, s, nodeConfig{})
		p.close(4002, "node says bye ✓")
		interopCloseError(t, "Pipe after the peer's close(4002)", s.end(t), 4002, "node says bye ✓")
		p.expectClosedRcvd(4002, "")
		p.wait()
	})

	t.Run("subprotocol", func(t *testing.T) {
		// Our server picks by its own preference among those offered.
		s := interopStartServer(t, func(o *ws.AcceptOptions) { o.Subprotocols = []string{"v2.chat", "chat"} })
		p, open, sc := nodeConnect(t, s, nodeConfig{Protocols: []string{"chat", "v2.chat"}})
		if open.Protocol != "v2.chat" || sc.Subprotocol() != "v2.chat" {
			t.Errorf("subprotocol: node %q, ours %q; want v2.chat", open.Protocol, sc.Subprotocol())
		}
		if err := sc.Close(ws.StatusNormalClosure, ""); err != nil {
			t.Errorf("Close: %v", err)
		}
		p.expectClosedRcvd(1000, "")
		s.end(t)
		p.wait()
	})
}

// ---- Node's server, our client ----

// nodeDial starts a Node echo server with config and dials it; configure
// adjusts our options.
func nodeDial(t *testing.T, ctx context.Context, config nodeConfig, pings chan []byte, configure ...func(*ws.DialOptions)) (*interopPeer, interopEvent, *ws.Conn, *http.Response) {
	t.Helper()
	p := nodeStartPeer(t, config, "server")
	c, resp := interopDialPeer(t, ctx, p, pings, configure...)
	return p, p.expect("open"), c, resp
}

func TestInteropNodeServer(t *testing.T) {
	interopNoLeaks(t)
	nodeRequirePeer(t)

	t.Run("conversation", func(t *testing.T) {
		ctx := interopCtx(t)
		pings := make(chan []byte, 16)
		p, _, c, _ := nodeDial(t, ctx, nodeConfig{}, pings)

		// Every message, sent by us (Write, or a Writer with one Write per
		// fragment), checked by Node, echoed back.
		for _, m := range nodeMessages() {
			interopWrite(t, ctx, c, m)
			interopCheckMsg(t, p.expect("msg"), m)
			typ, got, err := c.Read(ctx)
			interopCheckRead(t, m, typ, got, err)
		}

		// Messages sent by Node (a frame per fragment); read whole, and
		// streamed through Next.
		interopReadSent(t, ctx, c, p, nodeMessages())

		// Node pings between the fragments of a message it sends: we
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

		interopPeerPings(t, p, pings, "node", 43)
		interopOurPings(t, ctx, c, p)

		// A message streamed through a Writer in many Writes, with pings
		// both ways while it is open: one message for Node.
		m := interopMsg{name: "client-writer/1MiB", typ: ws.Binary, frags: nodeSplit(interopBytes(1<<20, 8), 64)}
		interopWritePinging(t, ctx, c, p, pings, m, 0)
		interopCheckMsg(t, p.expect("msg"), m)
		r := recvWithin(t, reads, "the echo")
		interopCheckRead(t, m, r.typ, r.data, r.err)

		// A normal close from our side, with the reader running; ws
		// echoes code and reason.
		if err := c.Close(ws.StatusNormalClosure, "done"); err != nil {
			t.Errorf("Close: %v", err)
		}
		p.expectClosedRcvd(1000, "done")
		r = recvWithin(t, reads, "the reader's end")
		interopCloseError(t, "read after Close(1000)", r.err, 1000, "done")
		p.wait()
	})

	t.Run("invalid-utf8", func(t *testing.T) {
		ctx := interopCtx(t)
		p, _, c, _ := nodeDial(t, ctx, nodeConfig{}, make(chan []byte, 16))
		p.send(interopMsg{name: "invalid-utf8", typ: ws.Text, frags: interopText("ok ", "then \xed\xa0\x80 a surrogate")})
		_, _, err := c.Read(ctx)
		nodeExpectFailed(t, p, err, ws.StatusInvalidFramePayloadData)
		p.wait()
	})

	t.Run("close-by-client", func(t *testing.T) {
		// No goroutine reads: Close reads the peer's close frame itself.
		p, _, c, _ := nodeDial(t, interopCtx(t), nodeConfig{}, make(chan []byte, 16))
		if err := c.Close(4001, "bye"); err != nil {
			t.Errorf("Close(4001): %v", err)
		}
		p.expectClosedRcvd(4001, "bye")
		_, _, err := c.Read(interopCtx(t))
		interopCloseError(t, "Read after Close(4001)", err, 4001, "bye")
		p.wait()
	})

	t.Run("close-by-peer", func(t *testing.T) {
		ctx := interopCtx(t)
		p, _, c, _ := nodeDial(t, ctx, nodeConfig{}, make(chan []byte, 16))
		p.close(4002, "node says bye ✓")
		_, _, err := c.Read(ctx)
		interopCloseError(t, "Read after the peer's close(4002)", err, 4002, "node says bye ✓")
		p.expectClosedRcvd(4002, "")
		p.wait()
	})

	t.Run("close-by-peer/no-status", func(t *testing.T) {
		// ws.close() without a code sends an empty close frame; we echo
		// one.
		ctx := interopCtx(t)
		p, _, c, _ := nodeDial(t, ctx, nodeConfig{}, make(chan []byte, 16))
		p.do(map[string]any{"op": "close"})
		_, _, err := c.Read(ctx)
		interopCloseError(t, "Read after the peer's close()", err, ws.StatusNoStatusRcvd, "")
		p.expectClosedRcvd(int(ws.StatusNoStatusRcvd), "")
		p.wait()
	})

	for _, tc := range []struct {
		name        string
		ours, nodes []string // our offer; what Node's server speaks, by preference
		want        string
	}{
		{"subprotocol/server-preference", []string{"v2.chat", "chat"}, []string{"chat", "v2.chat"}, "chat"},
		// Node answers without a subprotocol; so does the connection.
		{"subprotocol/none-in-common", []string{"other"}, []string{"chat"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := interopCtx(t)
			p, open, c, _ := nodeDial(t, ctx, nodeConfig{Protocols: tc.nodes}, make(chan []byte, 16),
				func(o *ws.DialOptions) { o.Subprotocols = tc.ours })
			if open.Protocol != tc.want || c.Subprotocol() != tc.want {
				t.Errorf("subprotocol: node %q, ours %q; want %q", open.Protocol, c.Subprotocol(), tc.want)
			}
			if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
				t.Errorf("Close: %v", err)
			}
			p.expectClosedRcvd(1000, "")
			p.wait()
		})
	}
}

// ---- permessage-deflate ----

// nodeDeflateMessages is the conversation of the permessage-deflate tests:
// under both sides' thresholds, empty, 1 MiB compressible and 256 KiB
// random, whole and fragmented, and similar small messages (which context
// takeover compresses better, and which a side that dropped or kept the
// wrong context would garble).
func nodeDeflateMessages() []interopMsg {
	msgs := []interopMsg{
		{name: "text/small", typ: ws.Text, frags: interopText("under both sides' thresholds")},
		{name: "binary/empty", typ: ws.Binary, frags: [][]byte{{}}},
		{name: "compressible/1MiB", typ: ws.Text, frags: [][]byte{nodeCompressible(1<<20, 1)}},
		{name: "random/256KiB", typ: ws.Binary, frags: [][]byte{interopBytes(256<<10, 2)}},
		{name: "compressible/1MiB-fragmented", typ: ws.Text, frags: nodeSplit(nodeCompressible(1<<20, 3), 16)},
		{name: "random/256KiB-fragmented", typ: ws.Binary, frags: nodeSplit(interopBytes(256<<10, 4), 4)},
	}
	for i := range 4 {
		msgs = append(msgs, interopMsg{name: fmt.Sprintf("similar/%d", i), typ: ws.Text, frags: [][]byte{nodeCompressible(4<<10, uint64(10+i))}})
	}
	return msgs
}

// nodeWire asks the peer how many bytes its TCP connection read and wrote
// since the totals in last, which it updates.
func nodeWire(p *interopPeer, last *interopEvent) (read, written int64) {
	p.t.Helper()
	p.do(map[string]any{"op": "stats"})
	ev := p.expect("stats")
	read, written = ev.Read-last.Read, ev.Written-last.Written
	*last = ev
	return read, written
}

// nodeCheckWire checks the n bytes that a compressible message took on the
// wire (what says which way and whose): under a tenth of its size when
// compressed, at least its size when not. Other messages are not checked.
func nodeCheckWire(t *testing.T, m interopMsg, what string, n int64, compressed bool) {
	t.Helper()
	if !strings.HasPrefix(m.name, "compressible/") {
		return
	}
	size := int64(len(m.payload()))
	t.Logf("%s: %s took %d bytes on the wire", m.name, what, n)
	if compressed && n*10 > size || !compressed && n < size {
		t.Errorf("%s: %s took %d bytes on the wire for %d; compressed: %v", m.name, what, n, size, compressed)
	}
}

// nodeCheckOurs is nodeCheckWire for what our side (server or client)
// sent; with huffman (Huffman coding alone, for a window under 32 KiB) a
// compressible message need only come out smaller than it is.
func nodeCheckOurs(t *testing.T, m interopMsg, what string, n int64, compressed, huffman bool) {
	t.Helper()
	if !huffman {
		nodeCheckWire(t, m, what, n, compressed)
		return
	}
	if size := int64(len(m.payload())); strings.HasPrefix(m.name, "compressible/") && n >= size {
		t.Errorf("%s: %s took %d bytes on the wire for %d, Huffman-only", m.name, what, n, size)
	}
}

// nodeCheckNegotiation checks the Sec-WebSocket-Extensions offer and answer
// the peer saw, and that ws turned permessage-deflate on if there is an
// answer, which it returns.
func nodeCheckNegotiation(t *testing.T, open interopEvent, offer, answer string) (negotiated bool) {
	t.Helper()
	str := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	t.Logf("offer %q, answer %q", str(open.RequestExt), str(open.ResponseExt))
	if str(open.RequestExt) != offer || str(open.ResponseExt) != answer {
		t.Fatalf("offer %q, answer %q; want %q, %q", str(open.RequestExt), str(open.ResponseExt), offer, answer)
	}
	negotiated = answer != ""
	if on := open.Extensions == "permessage-deflate"; on != negotiated {
		t.Fatalf("ws's extensions %q with the answer %q", open.Extensions, answer)
	}
	return negotiated
}

// nodeOffer is what our client offers with opts (nil: nothing).
func nodeOffer(opts *ws.CompressionOptions) string {
	switch {
	case opts == nil:
		return ""
	case opts.ContextTakeover:
		return "permessage-deflate; client_max_window_bits"
	default:
		return "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
	}
}

func TestInteropNodeDeflateClient(t *testing.T) {
	interopNoLeaks(t)
	nodeRequirePeer(t)
	takeover := &ws.CompressionOptions{ContextTakeover: true}
	for _, tc := range []struct {
		name          string
		node          any // the client's perMessageDeflate option
		ours          *ws.CompressionOptions
		offer, answer string // "" for none
	}{
		{"node-defaults/ours-defaults", true, &ws.CompressionOptions{},
			"permessage-deflate; client_max_window_bits", "permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"node-defaults/ours-takeover", true, takeover,
			"permessage-deflate; client_max_window_bits", "permessage-deflate"},
		{"node-server-no-takeover", map[string]any{"serverNoContextTakeover": true}, takeover,
			"permessage-deflate; server_no_context_takeover; client_max_window_bits", "permessage-deflate; server_no_context_takeover"},
		{"node-client-no-takeover", map[string]any{"clientNoContextTakeover": true}, takeover,
			"permessage-deflate; client_no_context_takeover; client_max_window_bits", "permessage-deflate; client_no_context_takeover"},
		// Node compresses with a 1 KiB window (it takes an answer without
		// client_max_window_bits as its own limit); we inflate any window.
		{"node-client-window-10", map[string]any{"clientMaxWindowBits": 10}, takeover,
			"permessage-deflate; client_max_window_bits=10", "permessage-deflate"},
		// compress/flate cannot compress with a window under 32 KiB: our
		// server accepts and compresses with Huffman coding alone (no
		// back-references), which compresses less (nodeCheckWeak).
		{"node-server-window-10/huffman-only", map[string]any{"serverMaxWindowBits": 10}, &ws.CompressionOptions{},
			"permessage-deflate; server_max_window_bits=10; client_max_window_bits",
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"},
		{"ours-off", true, nil, "permessage-deflate; client_max_window_bits", ""},
		{"node-off", false, &ws.CompressionOptions{}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := interopCtx(t)
			s := interopStartServer(t, func(o *ws.AcceptOptions) { o.Compression = tc.ours })
			p, open, sc := nodeConnect(t, s, nodeConfig{Deflate: tc.node})
			negotiated := nodeCheckNegotiation(t, open, tc.offer, tc.answer)
			var last interopEvent
			nodeWire(p, &last)
			for _, m := range nodeDeflateMessages() {
				// Node sends, our server echoes.
				p.send(m)
				interopCheckMsg(t, p.expect("msg"), m)
				read, written := nodeWire(p, &last)
				nodeCheckWire(t, m, "Node's message", written, negotiated)
				huffman := strings.Contains(tc.answer, "server_max_window_bits=")
				nodeCheckOurs(t, m, "our echo", read, negotiated, huffman)
				// Our server sends (Write, or a Writer with a Write per
				// fragment) while Pipe reads.
				interopWrite(t, ctx, sc, m)
				interopCheckMsg(t, p.expect("msg"), m)
				read, _ = nodeWire(p, &last)
				nodeCheckOurs(t, m, "our message", read, negotiated, huffman)
			}
			if err := sc.Close(ws.StatusNormalClosure, "done"); err != nil {
				t.Errorf("Close: %v", err)
			}
			p.expectClosedRcvd(1000, "done")
			if err := s.end(t); err != nil {
				t.Errorf("Pipe after a normal close returned %v, want nil", err)
			}
			p.wait()
		})
	}
}

func TestInteropNodeDeflateServer(t *testing.T) {
	interopNoLeaks(t)
	nodeRequirePeer(t)
	takeover := &ws.CompressionOptions{ContextTakeover: true}
	for _, tc := range []struct {
		name   string
		node   any // the server's perMessageDeflate option
		ours   *ws.CompressionOptions
		answer string // "" for none
	}{
		{"node-defaults/ours-defaults", true, &ws.CompressionOptions{},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover"},
		{"node-defaults/ours-takeover", true, takeover, "permessage-deflate"},
		{"node-server-no-takeover", map[string]any{"serverNoContextTakeover": true}, takeover,
			"permessage-deflate; server_no_context_takeover"},
		{"node-client-no-takeover", map[string]any{"clientNoContextTakeover": true}, takeover,
			"permessage-deflate; client_no_context_takeover"},
		// Node compresses with a 1 KiB window; we inflate any window.
		{"node-server-window-10", map[string]any{"serverMaxWindowBits": 10}, takeover,
			"permessage-deflate; server_max_window_bits=10"},
		// Node limits our window to 1 KiB, which needs our offer of
		// client_max_window_bits (without it, ws refuses the handshake
		// with 400): we compress with Huffman coding alone, which Node
		// inflates with its 1 KiB window.
		{"node-client-window-10/huffman-only", map[string]any{"clientMaxWindowBits": 10}, &ws.CompressionOptions{},
			"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10"},
		{"node-client-window-10/takeover", map[string]any{"clientMaxWindowBits": 10}, takeover,
			"permessage-deflate; client_max_window_bits=10"},
		{"node-client-window-15/takeover", map[string]any{"clientMaxWindowBits": 15}, takeover,
			"permessage-deflate; client_max_window_bits=15"},
		{"ours-off", true, nil, ""},
		{"node-off", false, &ws.CompressionOptions{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := interopCtx(t)
			p, open, c, resp := nodeDial(t, ctx, nodeConfig{Deflate: tc.node}, make(chan []byte, 16),
				func(o *ws.DialOptions) { o.Compression = tc.ours })
			negotiated := nodeCheckNegotiation(t, open, nodeOffer(tc.ours), tc.answer)
			if got := strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", "); got != tc.answer {
				t.Fatalf("Dial's response: extensions %q, want %q", got, tc.answer)
			}
			huffman := strings.Contains(tc.answer, "client_max_window_bits=") && !strings.Contains(tc.answer, "client_max_window_bits=15")
			var last interopEvent
			nodeWire(p, &last)
			for _, m := range nodeDeflateMessages() {
				// We send, Node echoes.
				interopWrite(t, ctx, c, m)
				interopCheckMsg(t, p.expect("msg"), m)
				typ, got, err := c.Read(ctx)
				interopCheckRead(t, m, typ, got, err)
				read, written := nodeWire(p, &last)
				nodeCheckOurs(t, m, "our message", read, negotiated, huffman)
				nodeCheckWire(t, m, "Node's echo", written, negotiated)
				// Node sends.
				p.send(m)
				typ, got, err = c.Read(ctx)
				interopCheckRead(t, m, typ, got, err)
				_, written = nodeWire(p, &last)
				nodeCheckWire(t, m, "Node's message", written, negotiated)
			}
			if err := c.Close(ws.StatusNormalClosure, "done"); err != nil {
				t.Errorf("Close: %v", err)
			}
			p.expectClosedRcvd(1000, "done")
			p.wait()
		})
	}
}
