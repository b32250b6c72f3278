package ws

import (
	"bufio"
	"bytes"
	"cmp"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wesos/wesos"
)

func TestDeflateEcho(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		srv := httptest.NewServer(NewServer(func(ctx context.Context, c *Conn) error {
			for {
				m, err := c.Next(ctx)
				if err != nil {
					return err
				}
				if err := c.Send(ctx, m); err != nil {
					return err
				}
			}
		}, &AcceptOptions{Compression: &CompressionOptions{ContextTakeover: takeover}}))
		ctx := context.Background()
		c, resp, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{Compression: &CompressionOptions{ContextTakeover: takeover}})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(resp.Header.Get("Sec-WebSocket-Extensions"))
		for _, size := range []int{0, 1, 300, 65536, 1 << 20} {
			p := bytes.Repeat([]byte("hello world "), size/12+1)[:size]
			for range 3 {
				if err := c.Write(ctx, Text, p); err != nil {
					t.Fatal(err)
				}
				typ, got, err := c.Read(ctx)
				if err != nil || typ != Text || !bytes.Equal(got, p) {
					t.Fatalf("size %d: %v %v %d", size, err, typ, len(got))
				}
			}
		}
		w, _ := c.Writer(ctx, Binary)
		for range 10 {
			w.Write(bytes.Repeat([]byte("abcd"), 1000))
		}
		w.Close()
		_, r, err := c.Reader(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		if len(b) != 40000 || err != nil {
			t.Fatal(len(b), err)
		}
		c.Close(StatusNormalClosure, "")
		srv.Close()
	}
}

// Helpers shared by the permessage-deflate tests (deflate_*_test.go,
// interop_deflate_test.go). They build compressed messages and decode them
// with compress/flate directly, independently of the package's own code.

// dflCompress compresses p as a whole permessage-deflate message without
// context takeover: a raw deflate stream, sync-flushed, with the 4-byte tail
// removed (RFC 7692 §7.2.1).
func dflCompress(t testing.TB, p []byte) []byte {
	t.Helper()
	var z dflCompressor
	return z.message(t, p)
}

// dflCompressor compresses a sequence of messages with context takeover:
// each message continues the deflate stream of the previous ones.
type dflCompressor struct {
	level int // flate level; 0 means BestSpeed
	buf   bytes.Buffer
	fw    *flate.Writer
}

// message compresses p as the next message: sync flush, tail removed.
func (z *dflCompressor) message(t testing.TB, p []byte) []byte {
	t.Helper()
	if z.fw == nil {
		z.fw, _ = flate.NewWriter(&z.buf, cmp.Or(z.level, flate.BestSpeed))
	}
	z.buf.Reset()
	if _, err := z.fw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := z.fw.Flush(); err != nil {
		t.Fatal(err)
	}
	b := z.buf.Bytes()
	if !bytes.HasSuffix(b, dflTail) {
		t.Fatalf("sync flush does not end with 00 00 ff ff: % x", b[max(0, len(b)-8):])
	}
	return bytes.Clone(b[:len(b)-4])
}

var dflTail = []byte{0x00, 0x00, 0xff, 0xff}

// dflInflate decompresses one message's payload (the concatenated payloads
// of its frames) with compress/flate, the tail put back as RFC 7692 §7.2.2
// says.
func dflInflate(payload []byte) ([]byte, error) {
	return dflInflateStream([][]byte{payload})
}

// dflInflateStream decompresses the payloads of consecutive messages sent
// with context takeover: one deflate stream, each message followed by the
// tail. It returns the concatenated output.
func dflInflateStream(payloads [][]byte) ([]byte, error) {
	var in bytes.Buffer
	for _, p := range payloads {
		in.Write(p)
		in.Write(dflTail)
	}
	out, err := io.ReadAll(flate.NewReader(&in))
	if err == io.ErrUnexpectedEOF { // the stream ends after a sync flush, not with a final block
		err = nil
	}
	return out, err
}

// dflSplit cuts p at the given positions (sorted, within p).
func dflSplit(p []byte, cuts []int) [][]byte {
	var out [][]byte
	prev := 0
	for _, c := range cuts {
		out = append(out, p[prev:c])
		prev = c
	}
	return append(out, p[prev:])
}

// dflRandomCuts returns n sorted cut positions in [0, size], duplicates
// allowed (they make empty fragments).
func dflRandomCuts(rng *rand.Rand, size, n int) []int {
	cuts := make([]int, n)
	for i := range cuts {
		cuts[i] = rng.IntN(size + 1)
	}
	slices.Sort(cuts)
	return cuts
}

// dflFrames encodes a message as frames: the first with op and RSV1 if
// compressed, the rest continuations, masked if masked.
func dflFrames(op opcode, compressed, masked bool, frags [][]byte) []byte {
	var out []byte
	for i, f := range frags {
		fr := rf{fin: i == len(frags)-1, op: opContinuation, masked: masked, key: testKey, payload: f}
		if i == 0 {
			fr.op = op
			if compressed {
				fr.rsv = bitRSV1
			}
		}
		out = append(out, fr.bytes()...)
	}
	return out
}

// dflText returns n bytes of text that compresses well but not trivially:
// numbered lines of words.
func dflText(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	words := []string{"alpha", "beta", "gamma", "delta", "wesos", "stream", "frame", "deflate", "message", "é", "日本", "😀"}
	var b bytes.Buffer
	for line := 0; b.Len() < n; line++ {
		fmt.Fprintf(&b, "%d:", line)
		for range 8 {
			b.WriteString(" ")
			b.WriteString(words[rng.IntN(len(words))])
		}
		b.WriteString("\n")
	}
	p := b.Bytes()[:n]
	for !utf8.Valid(p) { // do not end inside a rune
		p = p[:len(p)-1]
	}
	return append(p, bytes.Repeat([]byte("."), n-len(p))...)
}

// dflRandom returns n pseudo-random (incompressible) bytes.
func dflRandom(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0], s[1] = byte(seed), byte(seed>>8)
	rand.NewChaCha8(s).Read(b)
	return b
}

// dflServerPair runs Accept with opts for a raw client whose handshake
// carries the given Sec-WebSocket-Extensions lines, and returns the server
// Conn, the raw client and the handshake response.
func dflServerPair(t testing.TB, opts *AcceptOptions, offers ...string) (*Conn, *rawConn, *http.Response) {
	t.Helper()
	srv, results := startAcceptServer(t, opts)
	host := strings.TrimPrefix(srv.URL, "http://")
	var extra []string
	for _, o := range offers {
		extra = append(extra, "Sec-WebSocket-Extensions: "+o)
	}
	resp, raw := rawRequest(t, host, upgradeRequest(host, extra...))
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %s", resp.Status)
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
	return res.c, raw, resp
}

// dflClientPair dials a raw server that answers the handshake with the
// given extra header lines, and returns the client Conn (nil and the error
// if Dial failed), the raw server side and the request the server got.
func dflClientPair(t testing.TB, opts *DialOptions, extra ...string) (*Conn, *rawConn, *http.Request, error) {
	t.Helper()
	type accepted struct {
		nc  net.Conn
		br  *bufio.Reader
		req *http.Request
	}
	ch := make(chan accepted, 1)
	s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		if err := accept101(nc, req, extra...); err != nil {
			nc.Close()
			return
		}
		ch <- accepted{nc, br, req}
	})
	c, _, err := Dial(testCtx(t), s.url, opts)
	var a accepted
	select {
	case a = <-ch:
	case <-time.After(testTimeout):
		t.Fatal("the raw server did not answer")
	}
	t.Cleanup(func() { a.nc.Close() })
	if err != nil {
		return nil, nil, a.req, err
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, &rawConn{t: t, nc: a.nc, br: a.br, client: false}, a.req, nil
}

// dflReadMessage reads one data message from raw, answering nothing, and
// returns its frames (control frames are not expected).
func dflReadMessage(t testing.TB, raw *rawConn) []wireFrame {
	t.Helper()
	var frames []wireFrame
	for {
		f := raw.read()
		if f.op.isControl() {
			t.Fatalf("unexpected control frame %v", f)
		}
		frames = append(frames, f)
		if f.fin {
			return frames
		}
	}
}

// dflPayload concatenates the payloads of frames.
func dflPayload(frames []wireFrame) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f.payload...)
	}
	return b
}

// dflNewHTTPServer starts an httptest server (on 127.0.0.1) for h.
func dflNewHTTPServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }

// dflWireRecorder is a net.Conn that keeps a copy of every byte read, for a
// raw view of what a Dial'ed client received.
type dflWireRecorder struct {
	net.Conn
	mu sync.Mutex
	in bytes.Buffer
}

func (r *dflWireRecorder) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.mu.Lock()
	r.in.Write(p[:n])
	r.mu.Unlock()
	return n, err
}

// messages parses what was received after the handshake response into data
// messages (each its frames), skipping control frames.
func (r *dflWireRecorder) messages(t testing.TB) [][]wireFrame {
	t.Helper()
	r.mu.Lock()
	b := bytes.Clone(r.in.Bytes())
	r.mu.Unlock()
	i := bytes.Index(b, []byte("\r\n\r\n"))
	if i < 0 {
		t.Fatal("no handshake response recorded")
	}
	br := bytes.NewReader(b[i+4:])
	var msgs [][]wireFrame
	var cur []wireFrame
	for br.Len() > 0 {
		f, err := readWireFrame(br)
		if err != nil {
			t.Fatalf("recorded wire: %v", err)
		}
		if f.op.isControl() {
			continue
		}
		cur = append(cur, f)
		if f.fin {
			msgs = append(msgs, cur)
			cur = nil
		}
	}
	return msgs
}

// dflDialRecorded dials url with opts, recording the bytes received.
func dflDialRecorded(t testing.TB, url string, opts *DialOptions) (*Conn, *dflWireRecorder, *http.Response) {
	t.Helper()
	rec := &dflWireRecorder{}
	o := *opts
	o.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		rec.Conn = nc
		if err != nil {
			return nil, err
		}
		return rec, nil
	}
	c, resp, err := Dial(testCtx(t), url, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c, rec, resp
}

// TestDeflateBroadcast relays one client's messages with a Server that has
// compression on, to a mix of receivers: without compression, with
// compression and no context takeover (two of them), and with context
// takeover. Every receiver gets every byte; the receivers without takeover
// get the same compressed frames, RSV1 on the first; the others get plain
// frames (an uncompressed message is always allowed).
func TestDeflateBroadcast(t *testing.T) {
	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error {
		return wesos.Pipe(ctx, srv, c)
	}, &AcceptOptions{ReadLimit: 64 << 20, Compression: &CompressionOptions{ContextTakeover: true}})
	url := "ws://" + dflHTTPServer(t, srv)

	type receiver struct {
		name     string
		opts     *CompressionOptions
		answer   string
		compress bool // takes compressed broadcast frames
	}
	receivers := []receiver{
		{"plain", nil, "", false},
		{"no-takeover-1", &CompressionOptions{}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"no-takeover-2", &CompressionOptions{Level: flate.BestCompression}, "permessage-deflate; server_no_context_takeover; client_no_context_takeover", true},
		{"takeover", &CompressionOptions{ContextTakeover: true}, "permessage-deflate", false},
	}
	ctx := testCtx(t)
	conns := make([]*Conn, len(receivers))
	recs := make([]*dflWireRecorder, len(receivers))
	for i, r := range receivers {
		c, rec, resp := dflDialRecorded(t, url, &DialOptions{ReadLimit: 64 << 20, Compression: r.opts})
		if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != r.answer {
			t.Fatalf("%s: answer %q, want %q", r.name, got, r.answer)
		}
		conns[i], recs[i] = c, rec
	}
	// The sender compresses what it sends; it receives the broadcasts too.
	sender, _, _ := dflDialRecorded(t, url, &DialOptions{ReadLimit: 64 << 20, Compression: &CompressionOptions{}})
	all := append(slices.Clone(conns), sender)
	for deadline := time.Now().Add(testTimeout); srv.Len() < len(all); {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections registered, want %d", srv.Len(), len(all))
		}
		time.Sleep(time.Millisecond)
	}

	msgs := []dflMsg{
		{"text/1MiB", opText, dflText(1<<20, 1)},
		{"binary/600k-mixed", opBinary, append(dflRandom(300_000, 2), dflText(300_000, 3)...)},
		{"text/small-under-threshold", opText, []byte("tiny")},
		{"text/300", opText, dflText(300, 4)},
		{"binary/empty", opBinary, nil},
		{"binary/100k-zeros", opBinary, make([]byte, 100_000)},
		{"text/70k-again", opText, dflText(70_000, 1)},
	}
	var readers []func() error
	for i, c := range all {
		readers = append(readers, goAsync(t, func() error {
			for j, m := range msgs {
				typ, b, err := c.Read(ctx)
				if err != nil {
					return fmt.Errorf("receiver %d, message %d: %w", i, j, err)
				}
				if int(typ) != int(m.op) || !bytes.Equal(b, m.body) {
					return fmt.Errorf("receiver %d, %s: got %v %d bytes, want %d", i, m.name, typ, len(b), len(m.body))
				}
			}
			return nil
		}))
	}
	for _, m := range msgs {
		if len(m.body) < 64<<10 {
			// A single frame, which the server's Body returns with its
			// end: a message under the threshold is relayed plain.
			if err := sender.Write(ctx, MessageType(m.op), m.body); err != nil {
				t.Fatal(err)
			}
			continue
		}
		// Large messages stream from the sender in fragments.
		w, err := sender.Writer(ctx, MessageType(m.op))
		if err != nil {
			t.Fatal(err)
		}
		for rest := m.body; len(rest) > 0; {
			n := min(len(rest), 100_000)
			w.Write(rest[:n])
			rest = rest[n:]
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	for _, wait := range readers {
		if err := wait(); err != nil {
			t.Fatal(err)
		}
	}

	wire := make([][][]wireFrame, len(receivers))
	for i, r := range receivers {
		wire[i] = recs[i].messages(t)
		if len(wire[i]) != len(msgs) {
			t.Fatalf("%s: %d messages on the wire, want %d", r.name, len(wire[i]), len(msgs))
		}
	}
	for j, m := range msgs {
		compressed := len(m.body) >= DefaultCompressionThreshold
		for i, r := range receivers {
			frames := wire[i][j]
			if len(m.body) > broadcastChunk && len(frames) < 2 {
				t.Fatalf("%s, %s: %d frames, want a fragmented broadcast", r.name, m.name, len(frames))
			}
			for k, f := range frames {
				want := byte(0)
				if k == 0 && r.compress && compressed {
					want = bitRSV1
				}
				if f.rsv != want {
					t.Fatalf("%s, %s: frame %d is %v, want rsv %#x", r.name, m.name, k, f, want)
				}
			}
			payload := dflPayload(frames)
			if r.compress && compressed {
				got, err := dflInflate(payload)
				if err != nil || !bytes.Equal(got, m.body) {
					t.Fatalf("%s, %s: inflates to %d bytes (%v)", r.name, m.name, len(got), err)
				}
				if m.name == "binary/100k-zeros" && len(payload) > len(m.body)/10 {
					t.Fatalf("%s: %d bytes of zeros compressed to %d", r.name, len(m.body), len(payload))
				}
			} else if !bytes.Equal(payload, m.body) {
				t.Fatalf("%s, %s: plain payload differs", r.name, m.name)
			}
		}
		// The two receivers without takeover got the same frames, though
		// they asked for different levels: the server compressed once, with
		// its own options.
		if !slices.EqualFunc(wire[1][j], wire[2][j], func(a, b wireFrame) bool {
			return a.rsv == b.rsv && a.op == b.op && a.fin == b.fin && bytes.Equal(a.payload, b.payload)
		}) {
			t.Fatalf("%s: the receivers without takeover got different frames", m.name)
		}
	}
	for _, c := range all {
		c.Close(StatusNormalClosure, "")
	}
}

// TestDeflateBroadcastEncoder drives the broadcast encoder directly: a
// message is compressed once, and every receiver without context takeover
// is handed the very same bytes.
func TestDeflateBroadcastEncoder(t *testing.T) {
	var f fan
	f.init(nil, nil, context.Background(), new(counters))
	level := int8((&CompressionOptions{}).level())
	z1, z2, plain := &member{z: true, zlevel: level, zpools: stdPools}, &member{z: true, zlevel: level, zpools: stdPools}, &member{}
	peers := []*member{z1, z2, plain}
	msg := dflText(3*broadcastChunk+1000, 1)
	chunks := dflSplit(msg, []int{broadcastChunk, 2 * broadcastChunk, 3 * broadcastChunk})
	var e encoder
	e.init(peers, nil)
	first := e.first(opText, false, chunks[0])
	if first.z == nil {
		t.Fatal("chunk 0: no compressed frame")
	}
	node := first.next
	for i, ch := range chunks[1:] {
		filled := node
		node = f.publish(peers, node, &e, opContinuation, i == len(chunks)-2, ch)
		if filled.z == nil {
			t.Fatalf("chunk %d: no compressed frame", i+1)
		}
	}
	e.release()
	var payload []byte
	for i, f := 0, first; f != nil; i, f = i+1, f.next {
		<-f.ready
		a, b, p := f.frameFor(z1), f.frameFor(z2), f.frameFor(plain)
		if &a[0] != &b[0] || &a[0] == &p[0] {
			t.Fatalf("frame %d: the compressed receivers do not share one encoding", i)
		}
		wf, err := readWireFrame(bytes.NewReader(a))
		if err != nil {
			t.Fatal(err)
		}
		wantRSV := byte(0)
		if i == 0 {
			wantRSV = bitRSV1
		}
		if wf.rsv != wantRSV || wf.masked {
			t.Fatalf("frame %d: %v", i, wf)
		}
		payload = append(payload, wf.payload...)
		pf, err := readWireFrame(bytes.NewReader(p))
		if err != nil || pf.rsv != 0 || !bytes.Equal(pf.payload, chunks[i]) {
			t.Fatalf("plain frame %d: %v %v", i, pf, err)
		}
		if want := int64(0); z1.pending.Load() == want {
			t.Fatal("nothing pending for a receiver")
		}
	}
	if got, err := dflInflate(payload); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("the compressed frames inflate to %d bytes (%v)", len(got), err)
	}

	// No receiver takes compressed frames, or the message is small: nothing
	// is compressed.
	z1.zthr, z2.zthr = DefaultCompressionThreshold, DefaultCompressionThreshold
	for _, tc := range []struct {
		name  string
		peers []*member
		p     []byte
	}{
		{"no-compressed-receiver", []*member{plain, {}}, msg[:5000]},
		{"under-threshold", peers, msg[:DefaultCompressionThreshold-1]},
	} {
		var e encoder
		e.init(tc.peers, nil)
		if f := e.first(opText, true, tc.p); f.z != nil {
			t.Fatalf("%s: compressed", tc.name)
		}
		e.release()
	}
}

// dflGen is a deterministic stream of n bytes: compressible text (numbered
// 4 KiB blocks of words) or incompressible bytes.
type dflGen struct {
	left   int64
	random *rand.ChaCha8
	block  []byte
	pos    int
	count  uint64
}

func newDflGen(n int64, random bool) *dflGen {
	g := &dflGen{left: n}
	if random {
		g.random = rand.NewChaCha8([32]byte{42})
	} else {
		g.block = dflText(4<<10, 77)
		g.pos = len(g.block)
	}
	return g
}

func (g *dflGen) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > g.left {
		p = p[:g.left]
	}
	var n int
	if g.random != nil {
		n, _ = g.random.Read(p)
	} else {
		for n < len(p) {
			if g.pos == len(g.block) {
				g.count++
				copy(g.block, fmt.Sprintf("%012d", g.count))
				g.pos = 0
			}
			m := copy(p[n:], g.block[g.pos:])
			g.pos += m
			n += m
		}
	}
	g.left -= int64(n)
	return n, nil
}

// TestDeflateBoundedMemory streams a very large compressed message (1 GiB
// of text, 256 MiB of random bytes; less under -short or -race) through an
// echo server, compression on both sides and no read limit: the message is
// never whole anywhere, and the live heap stays small.
func TestDeflateBoundedMemory(t *testing.T) {
	const heapBound = 64 << 20
	for _, tc := range []struct {
		name     string
		random   bool
		takeover bool
		size     int64
	}{
		{"text/no-takeover", false, false, 1 << 30},
		{"random/takeover", true, true, 256 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			size := tc.size
			switch {
			case testing.Short():
				size /= 64
			case dflRace: // flate runs about 30 times slower
				size /= 32
			}
			copts := &CompressionOptions{ContextTakeover: tc.takeover}
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				return wesos.Pipe(ctx, c, c)
			}, &AcceptOptions{ReadLimit: 1 << 20, Compression: copts})
			host := dflHTTPServer(t, srv)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			c, resp, err := Dial(ctx, "ws://"+host, &DialOptions{Compression: copts})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if resp.Header.Get("Sec-WebSocket-Extensions") == "" {
				t.Fatal("compression not negotiated")
			}
			c.SetReadLimit(-1)
			// The server's handler has not run yet when Dial returns: a
			// first small message confirms it runs, then its limit goes.
			if err := c.Write(ctx, Text, []byte("hello")); err != nil {
				t.Fatal(err)
			}
			if _, b, err := c.Read(ctx); err != nil || string(b) != "hello" {
				t.Fatalf("%v %q", err, b)
			}
			for _, p := range srv.openMembers() {
				p.c.SetReadLimit(-1)
			}

			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			base := ms.HeapInuse
			var peak atomic.Uint64
			stop := make(chan struct{})
			sampled := goAsync(t, func() int {
				n := 0
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return n
					case <-tick.C:
					}
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					if ms.HeapInuse > peak.Load() {
						peak.Store(ms.HeapInuse)
					}
					n++
				}
			})
			start := time.Now()
			wrote := goAsync(t, func() error {
				w, err := c.Writer(ctx, Binary)
				if err != nil {
					return err
				}
				if _, err := io.CopyN(w, newDflGen(size, tc.random), size); err != nil {
					return err
				}
				return w.Close()
			})
			_, r, err := c.Reader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			want := newDflGen(size, tc.random)
			got := make([]byte, 256<<10)
			exp := make([]byte, len(got))
			var total int64
			for {
				n, err := io.ReadFull(r, got)
				if n > 0 {
					if _, err := io.ReadFull(want, exp[:n]); err != nil {
						t.Fatalf("echo longer than the message: %d bytes and more", total)
					}
					if !bytes.Equal(got[:n], exp[:n]) {
						t.Fatalf("echo differs in the %d bytes after %d", n, total)
					}
					total += int64(n)
				}
				if err == io.EOF || err == io.ErrUnexpectedEOF {
					break
				}
				if err != nil {
					t.Fatalf("after %d bytes: %v", total, err)
				}
			}
			elapsed := time.Since(start)
			if err := wrote(); err != nil {
				t.Fatal(err)
			}
			close(stop)
			samples := sampled()
			if total != size {
				t.Fatalf("echoed %d bytes, want %d", total, size)
			}
			t.Logf("%d MiB echoed in %v (%.0f MB/s); heap in use: %d MiB before, %d MiB at most (%d samples)",
				size>>20, elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6, base>>20, peak.Load()>>20, samples)
			if peak.Load() >= heapBound {
				t.Fatalf("heap in use reached %d MiB while a %d MiB message streamed: want less than %d MiB", peak.Load()>>20, size>>20, heapBound>>20)
			}
			c.Close(StatusNormalClosure, "")
		})
	}
}
