package ws

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// pattern returns n bytes that differ from one offset to the next (a
// payload unmasked with the wrong key phase would not match).
func pattern(n, seed int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8 + seed)
	}
	return p
}

// expectFrames reads frames until the final one and checks that they carry
// want in chunks of the given sizes, the first with op.
func expectFrames(t *testing.T, raw *rawConn, op opcode, want []byte, sizes ...int) {
	t.Helper()
	off := 0
	for i, n := range sizes {
		f := raw.read()
		if f.op == opPong {
			f = raw.read()
		}
		wantOp := opContinuation
		if i == 0 {
			wantOp = op
		}
		last := i == len(sizes)-1
		if f.op != wantOp || f.fin != last || len(f.payload) != n {
			t.Fatalf("frame %d: %v, want op %#x fin %v len %d", i, f, byte(wantOp), last, n)
		}
		if !bytes.Equal(f.payload, want[off:off+n]) {
			t.Fatalf("frame %d: payload differs", i)
		}
		off += n
	}
	if off != len(want) {
		t.Fatalf("frames carry %d bytes, want %d", off, len(want))
	}
}

// expectRelayed reads the frames of a message relayed through large relay
// buffers and checks that they carry want, the first with op: each received
// frame (of the sizes given) leaves in pieces of up to 1 MiB, every piece
// but its last at least relayChunk long (one piece if it is no longer).
func expectRelayed(t *testing.T, raw *rawConn, op opcode, want []byte, sizes ...int) {
	t.Helper()
	off, first := 0, true
	for i, n := range sizes {
		for left := n; left > 0; {
			f := raw.read()
			if f.op == opPong {
				f = raw.read()
			}
			wantOp := opContinuation
			if first {
				wantOp = op
			}
			first = false
			m := len(f.payload)
			last := m == left && i == len(sizes)-1
			if f.op != wantOp || f.fin != last || m > left || m > 1<<20 || m < min(left, relayChunk) {
				t.Fatalf("piece of frame %d at %d: %v, want op %#x fin %v, %d to %d bytes", i, n-left, f, byte(wantOp), last, min(left, relayChunk), min(left, 1<<20))
			}
			if !bytes.Equal(f.payload, want[off:off+m]) {
				t.Fatalf("piece of frame %d at %d: payload differs", i, n-left)
			}
			off += m
			left -= m
		}
	}
	if off != len(want) {
		t.Fatalf("frames carry %d bytes, want %d", off, len(want))
	}
}

// TestPipeEchoLargeFrames: an echo server relays a frame longer than 64 KiB
// in frames of up to 1 MiB, each (but a frame's last) at least relayChunk
// long (so a frame up to relayChunk stays whole), with the bytes intact,
// also when frames arrive back to back in one write (the payload read
// picks up the next header with it).
func TestPipeEchoLargeFrames(t *testing.T) {
	raw, _ := echoServer(t, &AcceptOptions{ReadLimit: 8 << 20})
	s := raw.fs()
	const mib = 1 << 20
	for _, n := range []int{64 << 10, 64<<10 + 1, 200 << 10, relayChunk, mib, mib + 5, 3*mib + 12345} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			p := pattern(n, n)
			raw.write(s.frame(true, opBinary, p).bytes())
			expectRelayed(t, raw, opBinary, p, n)
		})
	}
	// Back to back: two large messages, a ping and a fragmented message
	// with a large first fragment, in one write.
	a, b := pattern(300<<10, 1), pattern(100<<10+3, 2)
	c1, c2 := pattern(70<<10, 3), pattern(10, 4)
	raw.write(cat(
		s.frame(true, opBinary, a).bytes(),
		s.frame(true, opText, bytes.Repeat([]byte("t"), 5000)).bytes(),
		s.msg(opPing, "between"),
		s.frame(true, opBinary, b).bytes(),
		s.frame(false, opBinary, c1).bytes(),
		s.frame(true, opContinuation, c2).bytes(),
	))
	expectRelayed(t, raw, opBinary, a, len(a))
	expectFrames(t, raw, opText, bytes.Repeat([]byte("t"), 5000), 5000)
	expectRelayed(t, raw, opBinary, b, len(b))
	expectRelayed(t, raw, opBinary, append(append([]byte{}, c1...), c2...), len(c1), len(c2))
}

// readRest reads frames, skipping pings, until the final one, and returns
// their payload.
func readRest(t *testing.T, raw *rawConn) []byte {
	t.Helper()
	var got []byte
	for {
		f := raw.read()
		if f.op == opPing {
			continue
		}
		if f.op != opContinuation || len(f.payload) > 1<<20 {
			t.Fatalf("got %v, want a continuation of up to 1 MiB", f)
		}
		got = append(got, f.payload...)
		if f.fin {
			return got
		}
	}
}

// TestRelayLargeFrameFlows: a relay sends on what it has of a large frame
// once relayChunk bytes are in, rather than waiting for the rest: the
// receiver gets the start of a 1 MiB frame while the sender still holds its
// end back. On both transports.
func TestRelayLargeFrameFlows(t *testing.T) {
	for _, portable := range []bool{false, true} {
		t.Run(fmt.Sprintf("portable=%v", portable), func(t *testing.T) {
			c, raw := serverPairOn(t, &AcceptOptions{ReadLimit: 8 << 20}, portable)
			ctx := testCtx(t)
			goAsync(t, func() error { return wesos.Pipe(ctx, c, c) })
			p := pattern(1<<20, 5)
			b := raw.fs().frame(true, opBinary, p).bytes()
			head := len(b) - len(p)
			cut := head + relayChunk + 1000
			raw.write(b[:cut])
			f := raw.read() // before the rest is sent
			if f.op != opBinary || f.fin || len(f.payload) < relayChunk || len(f.payload) > relayChunk+1000 {
				t.Fatalf("first piece %v, want a binary frame of %d to %d bytes, not final", f, relayChunk, relayChunk+1000)
			}
			raw.write(b[cut:])
			got := append(f.payload, readRest(t, raw)...)
			if !bytes.Equal(got, p) {
				t.Fatal("relayed payload differs")
			}
		})
	}
}

// TestLargeRelayBudget: at most maxLargeRelays large relay buffers are out
// at a time; past that, a large frame is relayed in 64 KiB frames.
func TestLargeRelayBudget(t *testing.T) {
	var held []*[]byte
	defer func() {
		// Given back to the count but not to the pool: 64 MiB of idle
		// buffers would weigh on the heap measurements of later tests.
		largeRelays.Add(-int32(len(held)))
	}()
	for len(held) < maxLargeRelays {
		b := getLargeRelayBuf()
		if b == nil {
			t.Fatalf("no large relay buffer with %d out", len(held))
		}
		held = append(held, b)
	}
	if b := getLargeRelayBuf(); b != nil {
		putLargeRelayBuf(b)
		t.Fatalf("a large relay buffer beyond the %d allowed", maxLargeRelays)
	}

	raw, _ := echoServer(t, nil)
	s := raw.fs()
	const chunk = relayBufSize - maxHeaderSize
	p := pattern(2*chunk+100, 9)
	raw.write(s.frame(true, opBinary, p).bytes())
	expectFrames(t, raw, opBinary, p, chunk, chunk, 100)

	largeRelays.Add(-1)
	held = held[:len(held)-1]
	raw.write(s.frame(true, opBinary, p).bytes())
	expectFrames(t, raw, opBinary, p, len(p))
	// The relay gives its buffer back once the frame is out.
	deadline := time.Now().Add(testTimeout)
	for largeRelays.Load() != maxLargeRelays-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d large relay buffers out after the relay, want %d", largeRelays.Load(), maxLargeRelays-1)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestRelayOneFrame: a message that arrives as one frame leaves a relay as
// one final frame, never as its data and then an empty final frame:
// echoed by wesos.Pipe(ctx, c, c), relayed to another Conn, through a
// Group and through Server.Send; plain and with permessage-deflate (the
// raw peer sends every other message compressed). With compression, a
// message under the threshold leaves plain, its frame no larger than the
// message. 1,000 messages (100 with -short) of sizes up to 64 KiB, text
// (of multibyte runes, so UTF-8 is checked across the relay) and binary.
func TestRelayOneFrame(t *testing.T) {
	sizes := []int{0, 1, 16, 125, 126, 4 << 10, 64 << 10}
	count := 1000
	if testing.Short() {
		count = 100
	}
	const offer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
	// The messages: for each size, a text and a binary payload, each as
	// the raw client sends it plain and compressed.
	type variant struct {
		op         opcode
		payload    []byte
		plain, dfl []byte // the message on the wire from the raw client
	}
	var variants []variant
	for _, n := range sizes {
		for _, op := range []opcode{opText, opBinary} {
			v := variant{op: op, payload: dflText(n, uint64(n))}
			if op == opBinary {
				v.payload = pattern(n, n)
			}
			v.plain = dflFrames(op, false, true, [][]byte{v.payload})
			v.dfl = dflFrames(op, true, true, [][]byte{dflCompress(t, v.payload)})
			variants = append(variants, v)
		}
	}

	// Each topology returns the raw peer that sends and the one that
	// receives; the relay runs until the test ends.
	accept := func(compress bool) *AcceptOptions {
		o := &AcceptOptions{ReadLimit: 1 << 20}
		if compress {
			o.Compression = &CompressionOptions{}
		}
		return o
	}
	pair := func(t *testing.T, compress bool) (*Conn, *rawConn) {
		var offers []string
		if compress {
			offers = append(offers, offer)
		}
		c, raw, _ := dflServerPair(t, accept(compress), offers...)
		return c, raw
	}
	relay := func(t *testing.T, dst wesos.Sink[Message], src *Conn) {
		ctx, cancel := context.WithCancel(context.Background())
		done := goAsync(t, func() error { return wesos.Pipe(ctx, dst, src) })
		t.Cleanup(func() { cancel(); done() })
	}
	topologies := []struct {
		name  string
		start func(t *testing.T, compress bool) (from, to *rawConn)
	}{
		{"echo", func(t *testing.T, compress bool) (*rawConn, *rawConn) {
			c, raw := pair(t, compress)
			relay(t, c, c)
			return raw, raw
		}},
		{"conn", func(t *testing.T, compress bool) (*rawConn, *rawConn) {
			a, from := pair(t, compress)
			b, to := pair(t, compress)
			relay(t, b, a)
			return from, to
		}},
		{"group", func(t *testing.T, compress bool) (*rawConn, *rawConn) {
			a, from := pair(t, compress)
			b, to := pair(t, compress)
			g := NewGroup(nil)
			g.Add(b)
			relay(t, g, a)
			return from, to
		}},
		{"server", func(t *testing.T, compress bool) (*rawConn, *rawConn) {
			var srv *Server
			srv = NewServer(func(ctx context.Context, c *Conn) error {
				return wesos.Pipe(ctx, srv, c)
			}, accept(compress))
			host := dflHTTPServer(t, srv)
			var extra []string
			if compress {
				extra = append(extra, "Sec-WebSocket-Extensions: "+offer)
			}
			resp, raw := rawRequest(t, host, upgradeRequest(host, extra...))
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %s", resp.Status)
			}
			return raw, raw
		}},
	}
	for _, top := range topologies {
		for _, compress := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/compress=%v", top.name, compress), func(t *testing.T) {
				from, to := top.start(t, compress)
				sent := goAsync(t, func() error {
					from.nc.SetWriteDeadline(time.Now().Add(testTimeout))
					for i := range count {
						v := variants[i%len(variants)]
						b := v.plain
						if compress && i/len(variants)%2 == 1 {
							b = v.dfl
						}
						if _, err := from.nc.Write(b); err != nil {
							return err
						}
					}
					return nil
				})
				for i := range count {
					v := variants[i%len(variants)]
					f := to.read()
					if !f.fin || f.op != v.op {
						t.Fatalf("message %d (%d bytes): first frame %v, want one final frame of op %#x", i, len(v.payload), f, byte(v.op))
					}
					got := f.payload
					if f.rsv == bitRSV1 && compress {
						var err error
						if got, err = dflInflate(f.payload); err != nil {
							t.Fatalf("message %d: %v", i, err)
						}
					} else if f.rsv != 0 {
						t.Fatalf("message %d: frame %v", i, f)
					}
					if !bytes.Equal(got, v.payload) {
						t.Fatalf("message %d: %d bytes relayed, want %d", i, len(got), len(v.payload))
					}
					if len(v.payload) < DefaultCompressionThreshold && len(f.payload) != len(v.payload) {
						t.Fatalf("message %d of %d bytes left as %d bytes, want it plain", i, len(v.payload), len(f.payload))
					}
				}
				if err := sent(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
