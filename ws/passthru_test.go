package ws

import (
	"bytes"
	"compress/flate"
	"context"
	"testing"

	"github.com/wesos/wesos"
)

const (
	ptNoCtx    = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	ptTakeover = "permessage-deflate"
)

// ptServer returns a server Conn and its raw client, which offers offer
// (nothing if empty); takeover is the server's ContextTakeover.
func ptServer(t *testing.T, takeover bool, offer string) (*Conn, *rawConn) {
	t.Helper()
	o := &AcceptOptions{ReadLimit: 1 << 20, Compression: &CompressionOptions{ContextTakeover: takeover}}
	var offers []string
	if offer != "" {
		offers = append(offers, offer)
	}
	c, raw, _ := dflServerPair(t, o, offers...)
	return c, raw
}

// ptClient returns a client Conn and its raw server, which answers the
// offer with answer.
func ptClient(t *testing.T, takeover bool, answer string) (*Conn, *rawConn) {
	t.Helper()
	o := &DialOptions{ReadLimit: 1 << 20, Compression: &CompressionOptions{ContextTakeover: takeover}}
	c, raw, _, err := dflClientPair(t, o, "Sec-WebSocket-Extensions: "+answer)
	if err != nil {
		t.Fatal(err)
	}
	return c, raw
}

func ptRelay(t *testing.T, dst wesos.Sink[Message], src *Conn) {
	ctx, cancel := context.WithCancel(context.Background())
	done := goAsync(t, func() error { return wesos.Pipe(ctx, dst, src) })
	t.Cleanup(func() { cancel(); done() })
}

// ptMessage is a message as the raw peer sends it.
type ptMessage struct {
	op      opcode
	payload []byte // uncompressed
	z       []byte // compressed, as sent
}

// ptMessages are text and binary messages from 0 B to 64 KiB, compressed
// at level by a fresh compressor each (so that they refer to no earlier
// message, whatever was negotiated); the 64 KiB random one compresses to
// more than a relay buffer.
func ptMessages(t *testing.T, level int) []ptMessage {
	var ms []ptMessage
	for _, n := range []int{0, 1, 255, 256, 300, 4 << 10, 16 << 10, 64<<10 - 100} {
		ms = append(ms,
			ptMessage{op: opText, payload: dflText(n, uint64(n))},
			ptMessage{op: opBinary, payload: pattern(n, n)})
	}
	ms = append(ms, ptMessage{op: opBinary, payload: dflRandom(64<<10, 1)})
	for i := range ms {
		z := dflCompressor{level: level}
		ms[i].z = z.message(t, ms[i].payload)
	}
	return ms
}

// ptReceiver checks the messages a raw peer receives from a relay.
type ptReceiver struct {
	raw      *rawConn
	takeover bool     // its peer keeps compression context
	history  [][]byte // compressed payloads received so far, with takeover
	plain    bool     // it negotiated no compression
}

// expect reads one message, which must be m in a single final frame: its
// compressed bytes as sent if pass, else (for a compressible message)
// compressed anew; plain under the threshold.
func (r *ptReceiver) expect(t *testing.T, i int, m ptMessage, pass, differ bool) {
	t.Helper()
	f := r.raw.read()
	for f.op == opPong {
		f = r.raw.read()
	}
	if !f.fin || f.op != m.op {
		t.Fatalf("message %d (%d bytes): frame %v, want one final frame of op %#x", i, len(m.payload), f, byte(m.op))
	}
	switch {
	case f.rsv == 0:
		if !bytes.Equal(f.payload, m.payload) {
			t.Fatalf("message %d: %d plain bytes, want the %d sent", i, len(f.payload), len(m.payload))
		}
		if !r.plain && len(m.payload) >= DefaultCompressionThreshold {
			t.Fatalf("message %d of %d bytes left plain, want it compressed", i, len(m.payload))
		}
		return
	case f.rsv != bitRSV1 || r.plain:
		t.Fatalf("message %d: frame %v to a peer that negotiated compression %v", i, f, !r.plain)
	}
	if len(m.payload) < DefaultCompressionThreshold {
		t.Fatalf("message %d of %d bytes left compressed, want it plain", i, len(m.payload))
	}
	r.history = append(r.history, f.payload)
	if !r.takeover {
		r.history = r.history[len(r.history)-1:]
	}
	out, err := dflInflateStream(r.history)
	if err != nil {
		t.Fatalf("message %d: %v", i, err)
	}
	if got := out[len(out)-min(len(out), len(m.payload)):]; !bytes.Equal(got, m.payload) {
		t.Fatalf("message %d: %d bytes relayed, want the %d sent", i, len(got), len(m.payload))
	}
	passed := bytes.Equal(f.payload, m.z)
	if pass && !passed && len(m.z) <= relayBufSize-maxHeaderSize {
		t.Fatalf("message %d (%d bytes, %d compressed): relayed as %d compressed bytes, want the bytes received", i, len(m.payload), len(m.z), len(f.payload))
	}
	if differ && passed && m.op == opText && len(m.payload) >= 300 {
		t.Fatalf("message %d (%d bytes): relayed as it came, where its receiver cannot be relied on to decode it", i, len(m.payload))
	}
}

// TestDeflatePassThrough: a relayed compressed message of one frame leaves
// with the compressed bytes it came with, in one final frame with RSV1,
// when the receiver can decode them as they are (the sender kept no
// context, the receiver's window is as large, the relay keeps no context
// towards it); otherwise it is compressed anew. Echo, Conn to Conn both
// ways between client and server, Group (with a member that negotiated no
// compression, which gets plaintext) and Server.
func TestDeflatePassThrough(t *testing.T) {
	type topology struct {
		name  string
		level int // of the raw sender
		start func(t *testing.T) (from *rawConn, to []*ptReceiver)
		pass  bool // the message may pass as it came (to the first receiver)
	}
	recv := func(raw *rawConn, takeover bool) *ptReceiver { return &ptReceiver{raw: raw, takeover: takeover} }
	type end func(t *testing.T) (*Conn, *rawConn)
	srv := func(takeover bool, offer string) end {
		return func(t *testing.T) (*Conn, *rawConn) { return ptServer(t, takeover, offer) }
	}
	cli := func(takeover bool, answer string) end {
		return func(t *testing.T) (*Conn, *rawConn) { return ptClient(t, takeover, answer) }
	}
	// relay: what the raw peer of in sends, in relays to out, whose raw
	// peer receives it (and keeps context if takeover).
	relay := func(in, out end, takeover bool) func(t *testing.T) (*rawConn, []*ptReceiver) {
		return func(t *testing.T) (*rawConn, []*ptReceiver) {
			a, from := in(t)
			b, to := out(t)
			ptRelay(t, b, a)
			return from, []*ptReceiver{recv(to, takeover)}
		}
	}
	// echoOn: what the raw peer of e sends, e relays back to it.
	echoOn := func(e end, takeover bool) func(t *testing.T) (*rawConn, []*ptReceiver) {
		return func(t *testing.T) (*rawConn, []*ptReceiver) {
			c, raw := e(t)
			ptRelay(t, c, c)
			return raw, []*ptReceiver{recv(raw, takeover)}
		}
	}
	tops := []topology{
		{"echo/server", flate.BestCompression, echoOn(srv(false, ptNoCtx), false), true},
		{"echo/client", flate.BestCompression, echoOn(cli(false, ptNoCtx), false), true},
		{"server-to-client", flate.BestCompression, relay(srv(false, ptNoCtx), cli(false, ptNoCtx), false), true},
		{"client-window-10-to-server", flate.HuffmanOnly, relay(cli(false, ptNoCtx+"; server_max_window_bits=10"), srv(false, ptNoCtx), false), true},
		{"client-window-12-to-server-window-10", flate.HuffmanOnly, relay(cli(false, ptNoCtx+"; server_max_window_bits=12"), srv(false, ptNoCtx+"; server_max_window_bits=10"), false), false},
		{"server-to-window-10", flate.BestCompression, relay(srv(false, ptNoCtx), srv(false, ptNoCtx+"; server_max_window_bits=10"), false), false},
		{"takeover-in", flate.BestCompression, relay(srv(true, ptTakeover), srv(false, ptNoCtx), false), false},
		{"takeover-out", flate.BestCompression, relay(srv(false, ptNoCtx), srv(true, ptTakeover), true), false},
		{"takeover-both", flate.BestCompression, echoOn(srv(true, ptTakeover), true), false},
		{"group", flate.BestCompression, func(t *testing.T) (*rawConn, []*ptReceiver) {
			a, from := ptServer(t, false, ptNoCtx)
			b, to := ptServer(t, false, ptNoCtx)
			p, plain := ptServer(t, false, "")
			w, window := ptServer(t, false, ptNoCtx+"; server_max_window_bits=10")
			g := NewGroup(nil)
			g.Add(b)
			g.Add(p)
			g.Add(w)
			ptRelay(t, g, a)
			// A member whose peer limits the window takes plain frames
			// from a Group (fanDeflate), as before.
			return from, []*ptReceiver{recv(to, false), {raw: plain, plain: true}, {raw: window, plain: true}}
		}, true},
		{"server", flate.BestCompression, func(t *testing.T) (*rawConn, []*ptReceiver) {
			var srv *Server
			srv = NewServer(func(ctx context.Context, c *Conn) error {
				return wesos.Pipe(ctx, srv, c)
			}, &AcceptOptions{ReadLimit: 1 << 20, Compression: &CompressionOptions{}})
			host := dflHTTPServer(t, srv)
			resp, raw := rawRequest(t, host, upgradeRequest(host, "Sec-WebSocket-Extensions: "+ptNoCtx))
			if resp.StatusCode != 101 {
				t.Fatalf("handshake: %s", resp.Status)
			}
			return raw, []*ptReceiver{recv(raw, false)}
		}, true},
	}
	for _, top := range tops {
		t.Run(top.name, func(t *testing.T) {
			ms := ptMessages(t, top.level)
			from, to := top.start(t)
			for i, m := range ms {
				from.write(dflFrames(m.op, true, from.client, [][]byte{m.z}))
				for j, r := range to {
					pass := top.pass && j == 0
					r.expect(t, i, m, pass, !pass && top.level == flate.BestCompression)
				}
			}
		})
	}
}

// TestDeflatePassThroughChecks: a compressed message relayed as it came is
// still checked as a read would check it, and none of a bad one goes out:
// over the read limit once decompressed 1009, invalid UTF-8 in text 1007,
// corrupt deflate data 1007. Echo and Server.
func TestDeflatePassThroughChecks(t *testing.T) {
	bomb := dflCompress(t, make([]byte, 4<<20)) // 4 MiB of zeros: a few KiB
	bad := dflCompress(t, bytes.Repeat([]byte("ok \xff\xfe "), 100))
	cases := []struct {
		name string
		op   opcode
		z    []byte
		code StatusCode
	}{
		{"limit", opBinary, bomb, StatusMessageTooBig},
		{"utf8", opText, bad, StatusInvalidFramePayloadData},
		{"corrupt", opBinary, []byte{0x07, 0x01, 0x02, 0x03}, StatusInvalidFramePayloadData},
		{"trailing", opBinary, append(dflCompress(t, []byte("hello")), 0x03, 0x00, 0x01, 0x02, 0x03, 0x04, 0x05), StatusInvalidFramePayloadData},
	}
	for _, tc := range cases {
		for _, top := range []string{"echo", "server"} {
			t.Run(tc.name+"/"+top, func(t *testing.T) {
				o := &AcceptOptions{ReadLimit: 64 << 10, Compression: &CompressionOptions{}}
				var raw *rawConn
				if top == "echo" {
					var c *Conn
					c, raw, _ = dflServerPair(t, o, ptNoCtx)
					ptRelay(t, c, c)
				} else {
					var srv *Server
					srv = NewServer(func(ctx context.Context, c *Conn) error {
						return wesos.Pipe(ctx, srv, c)
					}, o)
					host := dflHTTPServer(t, srv)
					_, raw = rawRequest(t, host, upgradeRequest(host, "Sec-WebSocket-Extensions: "+ptNoCtx))
				}
				// A good message first: the relay is running.
				good := dflCompress(t, dflText(1000, 1))
				raw.write(dflFrames(opText, true, true, [][]byte{good}))
				if f := raw.read(); f.rsv != bitRSV1 || !bytes.Equal(f.payload, good) {
					t.Fatalf("good message relayed as %v", f)
				}
				raw.write(dflFrames(tc.op, true, true, [][]byte{tc.z}))
				raw.expectClose(tc.code)
			})
		}
	}
}

// TestDeflatePassThroughStats: a message relayed as it came counts as any
// other: one in, one out, the bytes on the wire each way.
func TestDeflatePassThroughStats(t *testing.T) {
	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, &AcceptOptions{Compression: &CompressionOptions{}})
	host := dflHTTPServer(t, srv)
	_, raw := rawRequest(t, host, upgradeRequest(host, "Sec-WebSocket-Extensions: "+ptNoCtx))
	const n = 5
	var wire uint64
	for i := range n {
		z := dflCompress(t, dflText(2000+i, uint64(i)))
		wire += uint64(len(z))
		raw.write(dflFrames(opText, true, true, [][]byte{z}))
		if f := raw.read(); !bytes.Equal(f.payload, z) {
			t.Fatalf("message %d relayed as %v", i, f)
		}
	}
	// The relay counts a message once it is written, maybe after the
	// peer read it: wait for the count, within the test's deadline.
	waitFor(t, "the relay's count", func() bool { return srv.Stats().MessagesOut >= n })
	if st := srv.Stats(); st.MessagesIn != n || st.MessagesOut != n || st.BytesIn != wire || st.BytesOut != wire {
		t.Fatalf("stats %+v, want %d messages and %d bytes each way", st, n, wire)
	}
}

// TestDeflatePassThroughLarge: a compressed frame that fits a relay
// buffer but inflates to more than one (512 KiB of repeated text in a
// few KiB) passes through Send as it came, checked through a scratch
// buffer; a Group, whose members without compression need the plaintext
// frame by frame, streams it as any large message instead, compressed
// anew frame by frame.
func TestDeflatePassThroughLarge(t *testing.T) {
	msg := bytes.Repeat(dflText(1000, 3), 512)
	z := dflCompress(t, msg)
	if len(z) > 16<<10 {
		t.Fatalf("%d bytes compressed: not the test's premise", len(z))
	}
	for _, top := range []string{"echo", "group"} {
		t.Run(top, func(t *testing.T) {
			a, from := ptServer(t, false, ptNoCtx)
			to := from
			var plain *rawConn
			if top == "echo" {
				ptRelay(t, a, a)
			} else {
				var b, p *Conn
				b, to = ptServer(t, false, ptNoCtx)
				p, plain = ptServer(t, false, "")
				g := NewGroup(nil)
				g.Add(b)
				g.Add(p)
				ptRelay(t, g, a)
			}
			from.write(dflFrames(opText, true, true, [][]byte{z}))
			if plain != nil {
				if _, got := plain.readMessage(); got != string(msg) {
					t.Fatalf("plain member: %d bytes, want %d", len(got), len(msg))
				}
			}
			frames := dflReadMessage(t, to)
			if frames[0].rsv != bitRSV1 {
				t.Fatalf("first frame %v, want RSV1", frames[0])
			}
			payload := dflPayload(frames)
			if got, err := dflInflate(payload); err != nil || !bytes.Equal(got, msg) {
				t.Fatalf("%d bytes relayed (%v), want %d", len(got), err, len(msg))
			}
			if passed := len(frames) == 1 && bytes.Equal(payload, z); passed != (top == "echo") {
				t.Fatalf("relayed in %d frames, %d bytes (passed as it came: %v)", len(frames), len(payload), passed)
			}
		})
	}
}
