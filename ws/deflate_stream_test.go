package ws

// permessage-deflate on the wire: compressed messages built by hand with
// compress/flate and cut into frames at arbitrary byte positions, the
// violations a peer can commit, the frames our writers produce (checked
// with compress/flate), context takeover, and the read limit applied to the
// decompressed size (zip bombs).

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// dflSide makes a connection with permessage-deflate negotiated, on the
// server side or the client side: c is the Conn under test, raw its peer.
type dflSide struct {
	name string
	pair func(t testing.TB, takeover bool, limit int64) (c *Conn, raw *rawConn)
}

func dflBothSides() []dflSide {
	return []dflSide{
		{"server", func(t testing.TB, takeover bool, limit int64) (*Conn, *rawConn) {
			opts := &AcceptOptions{ReadLimit: limit, Compression: &CompressionOptions{ContextTakeover: takeover, Threshold: -1}}
			c, raw, _ := dflServerPair(t, opts, "permessage-deflate")
			if c.deflate == nil || c.deflate.takeoverIn != takeover || c.deflate.takeoverOut != takeover {
				t.Fatalf("negotiated %+v, want takeover %v", c.deflate, takeover)
			}
			return c, raw
		}},
		{"client", func(t testing.TB, takeover bool, limit int64) (*Conn, *rawConn) {
			opts := &DialOptions{ReadLimit: limit, Compression: &CompressionOptions{ContextTakeover: takeover, Threshold: -1}}
			answer := "Sec-WebSocket-Extensions: permessage-deflate"
			if !takeover {
				answer += "; server_no_context_takeover; client_no_context_takeover"
			}
			c, raw, _, err := dflClientPair(t, opts, answer)
			if err != nil {
				t.Fatal(err)
			}
			if c.deflate == nil || c.deflate.takeoverIn != takeover || c.deflate.takeoverOut != takeover {
				t.Fatalf("negotiated %+v, want takeover %v", c.deflate, takeover)
			}
			return c, raw
		}},
	}
}

// dflMsg is a message for the read tests.
type dflMsg struct {
	name string
	op   opcode
	body []byte
}

func dflReadMessages() []dflMsg {
	return []dflMsg{
		{"text/1", opText, []byte("x")},
		{"text/short", opText, []byte("héllo wörld, 日本語 😀")},
		{"text/70k", opText, dflText(70_000, 1)},
		{"binary/zeros-300k", opBinary, make([]byte, 300_000)},
		{"binary/random-100k", opBinary, dflRandom(100_000, 2)},
		{"binary/mixed", opBinary, append(dflText(40_000, 3), dflRandom(40_000, 4)...)},
	}
}

// dflReadBody reads a message from c with reads of varying sizes (1 byte
// to 64 KiB), the way a streaming consumer does.
func dflReadBody(ctx context.Context, c *Conn, rng *rand.Rand) (MessageType, []byte, error) {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return 0, nil, err
	}
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf[:1+rng.IntN(len(buf))])
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return typ, out, nil
		}
		if err != nil {
			return typ, out, err
		}
	}
}

// TestDeflateReadFragmented sends compressed messages whose payload is cut
// at arbitrary byte positions (empty fragments included) across
// continuation frames, and reads them whole and streamed.
func TestDeflateReadFragmented(t *testing.T) {
	for _, sd := range dflBothSides() {
		for _, takeover := range []bool{false, true} {
			t.Run(sd.name+"/"+dflTakeoverName(takeover), func(t *testing.T) {
				c, raw := sd.pair(t, takeover, -1)
				ctx := testCtx(t)
				rng := rand.New(rand.NewPCG(1, 2))
				var z dflCompressor
				for _, m := range dflReadMessages() {
					for round := range 4 {
						payload := dflCompress(t, m.body)
						if takeover {
							payload = z.message(t, m.body)
						}
						var cuts []int
						switch round {
						case 0: // one frame
						case 1: // a few cuts
							cuts = dflRandomCuts(rng, len(payload), 1+rng.IntN(4))
						case 2: // many cuts, empty fragments likely
							cuts = dflRandomCuts(rng, len(payload), 20+rng.IntN(50))
						case 3: // an empty first and last fragment
							cuts = append([]int{0}, dflRandomCuts(rng, len(payload), 3)...)
							cuts = append(cuts, len(payload))
						}
						frags := dflSplit(payload, cuts)
						wire := dflFrames(m.op, true, raw.client, frags)
						wrote := goAsync(t, func() error {
							_, err := raw.nc.Write(wire)
							return err
						})
						var typ MessageType
						var got []byte
						var err error
						if round%2 == 0 {
							typ, got, err = c.Read(ctx)
						} else {
							typ, got, err = dflReadBody(ctx, c, rng)
						}
						if err != nil {
							t.Fatalf("%s round %d (%d fragments): %v", m.name, round, len(frags), err)
						}
						if int(typ) != int(m.op) || !bytes.Equal(got, m.body) {
							t.Fatalf("%s round %d (%d fragments): got %v %d bytes, want %d bytes", m.name, round, len(frags), typ, len(got), len(m.body))
						}
						if !c.msgCompressed {
							t.Fatalf("%s: not read as a compressed message", m.name)
						}
						if err := wrote(); err != nil {
							t.Fatal(err)
						}
					}
				}
				// Byte by byte: every header and payload split.
				m := dflText(3000, 9)
				payload := dflCompress(t, m)
				if takeover {
					payload = z.message(t, m)
				}
				wire := dflFrames(opText, true, raw.client, dflSplit(payload, []int{1, 2, 10, 11, len(payload) / 2}))
				wrote := goAsync(t, func() error { raw.writeSlowly(wire); return nil })
				if _, got, err := dflReadBody(ctx, c, rng); err != nil || !bytes.Equal(got, m) {
					t.Fatalf("byte by byte: %v, %d bytes", err, len(got))
				}
				wrote()
			})
		}
	}
}

// TestDeflateReadEmpty reads the forms an empty compressed message takes:
// no payload at all, the single 0x00 byte that a sync flush leaves once its
// tail is removed, fragments that are all empty, and a final block.
func TestDeflateReadEmpty(t *testing.T) {
	var final bytes.Buffer
	fw, _ := flate.NewWriter(&final, flate.BestSpeed)
	fw.Close()
	for _, sd := range dflBothSides() {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t, false, 0)
			ctx := testCtx(t)
			for _, tc := range []struct {
				name  string
				frags [][]byte
			}{
				{"no-payload", [][]byte{nil}},
				{"sync-flush", [][]byte{{0x00}}},
				{"flate-output", [][]byte{dflCompress(t, nil)}},
				{"empty-fragments", [][]byte{nil, nil, nil}},
				{"empty-then-flush", [][]byte{nil, {0x00}}},
				{"flush-in-fragments", [][]byte{{0x00}, {0x00, 0x00, 0xff, 0xff}, nil, {0x00}}},
				{"final-block", [][]byte{final.Bytes()}},
				{"final-block-stripped", [][]byte{final.Bytes()[:len(final.Bytes())-4]}},
			} {
				for _, op := range []opcode{opText, opBinary} {
					raw.write(dflFrames(op, true, raw.client, tc.frags))
					typ, b, err := c.Read(ctx)
					if err != nil || int(typ) != int(op) || len(b) != 0 {
						t.Fatalf("%s: %v %v %q", tc.name, typ, err, b)
					}
				}
			}
			// The connection is still in step.
			raw.write(raw.fs().msg(opText, "after"))
			if _, b, err := c.Read(ctx); err != nil || string(b) != "after" {
				t.Fatalf("after the empty messages: %v %q", err, b)
			}
		})
	}
}

// TestDeflateReadFinalBlock reads messages whose deflate data ends with a
// final block (BFINAL set), as a sender that closes its compressor makes.
func TestDeflateReadFinalBlock(t *testing.T) {
	for _, sd := range dflBothSides() {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t, false, 0)
			ctx := testCtx(t)
			msg := dflText(5000, 5)
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, flate.BestCompression)
			fw.Write(msg)
			fw.Close()
			p := buf.Bytes()
			raw.write(dflFrames(opText, true, raw.client, dflSplit(p, []int{len(p) / 3, len(p) / 2})))
			if _, b, err := c.Read(ctx); err != nil || !bytes.Equal(b, msg) {
				t.Fatalf("%v, %d bytes", err, len(b))
			}
		})
	}
}

// TestDeflateRFC7692Examples reads the examples of RFC 7692 §7.2.3, byte
// for byte.
func TestDeflateRFC7692Examples(t *testing.T) {
	hex := func(s string) []byte {
		var b []byte
		for f := range strings.FieldsSeq(s) {
			var x byte
			fmt.Sscanf(f, "0x%02x", &x)
			b = append(b, x)
		}
		return b
	}
	for _, tc := range []struct {
		name     string
		takeover bool
		msgs     [][][]byte // messages, as fragment payloads
	}{
		{"7.2.3.1/one-frame", false, [][][]byte{{hex("0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00")}}},
		{"7.2.3.1/fragmented", false, [][][]byte{{hex("0xf2 0x48 0xcd"), hex("0xc9 0xc9 0x07 0x00")}}},
		{"7.2.3.2/no-takeover", false, [][][]byte{{hex("0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00")}, {hex("0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00")}}},
		{"7.2.3.2/takeover", true, [][][]byte{{hex("0xf2 0x48 0xcd 0xc9 0xc9 0x07 0x00")}, {hex("0xf2 0x00 0x11 0x00 0x00")}}},
		{"7.2.3.3/stored-block", false, [][][]byte{{hex("0x00 0x05 0x00 0xfa 0xff 0x48 0x65 0x6c 0x6c 0x6f 0x00")}}},
		{"7.2.3.4/bfinal", false, [][][]byte{{hex("0xf3 0x48 0xcd 0xc9 0xc9 0x07 0x00 0x00")}}},
		{"7.2.3.5/two-blocks", false, [][][]byte{{hex("0xf2 0x48 0x05 0x00 0x00 0x00 0xff 0xff 0xca 0xc9 0xc9 0x07 0x00")}}},
	} {
		for _, sd := range dflBothSides() {
			t.Run(tc.name+"/"+sd.name, func(t *testing.T) {
				c, raw := sd.pair(t, tc.takeover, 0)
				for i, m := range tc.msgs {
					raw.write(dflFrames(opText, true, raw.client, m))
					if _, b, err := c.Read(testCtx(t)); err != nil || string(b) != "Hello" {
						t.Fatalf("message %d: %v %q", i, err, b)
					}
				}
			})
		}
	}
}

// TestDeflateReadPingBetweenFragments interleaves pings (and a pong)
// between the fragments of a compressed message: each ping is answered at
// once, and the message is whole.
func TestDeflateReadPingBetweenFragments(t *testing.T) {
	for _, sd := range dflBothSides() {
		for _, takeover := range []bool{false, true} {
			t.Run(sd.name+"/"+dflTakeoverName(takeover), func(t *testing.T) {
				c, raw := sd.pair(t, takeover, 0)
				ctx := testCtx(t)
				s := raw.fs()
				var z dflCompressor
				for i, msg := range [][]byte{dflText(50_000, 11), dflRandom(20_000, 12)} {
					payload := dflCompress(t, msg)
					if takeover {
						payload = z.message(t, msg)
					}
					frags := dflSplit(payload, []int{3, len(payload) / 2, len(payload) - 1})
					read := goAsync(t, func() error {
						_, b, err := c.Read(ctx)
						if err == nil && !bytes.Equal(b, msg) {
							err = fmt.Errorf("got %d bytes, want %d", len(b), len(msg))
						}
						return err
					})
					for j, f := range frags {
						fr := rf{fin: j == len(frags)-1, op: opContinuation, masked: s.masked, key: testKey, payload: f}
						if j == 0 {
							fr.op, fr.rsv = opBinary, bitRSV1
						}
						raw.write(fr.bytes())
						if j < len(frags)-1 {
							ping := fmt.Sprintf("ping %d.%d", i, j)
							raw.write(s.msg(opPing, ping))
							// The pong comes back while the message is still open.
							raw.expectFrame(true, opPong, ping)
							raw.write(s.msg(opPong, "unsolicited"))
						}
					}
					if err := read(); err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
				}
			})
		}
	}
}

// TestDeflateReadViolations sends what a peer must not, on a connection
// with permessage-deflate (or without, for RSV1 itself), and checks the
// close code on the wire and the error of the read.
func TestDeflateReadViolations(t *testing.T) {
	badUTF8 := []byte("valid text, then \xff\xfe invalid")
	cutRune := []byte("ends inside a rune \xe6\x97")
	for _, tc := range []struct {
		name  string
		plain bool // deflate not negotiated
		send  func(t testing.TB, s frameSet) []byte
		code  StatusCode
	}{
		{"rsv1-without-deflate", true, func(t testing.TB, s frameSet) []byte {
			return dflFrames(opText, true, s.masked, [][]byte{dflCompress(t, []byte("hello"))})
		}, StatusProtocolError},
		{"rsv1-without-deflate/binary", true, func(t testing.TB, s frameSet) []byte {
			return dflFrames(opBinary, true, s.masked, [][]byte{dflCompress(t, []byte("hello"))})
		}, StatusProtocolError},
		{"rsv1-on-continuation", false, func(t testing.TB, s frameSet) []byte {
			p := dflCompress(t, dflText(1000, 1))
			first := rf{op: opText, rsv: bitRSV1, masked: s.masked, key: testKey, payload: p[:10]}
			second := rf{fin: true, op: opContinuation, rsv: bitRSV1, masked: s.masked, key: testKey, payload: p[10:]}
			return cat(first.bytes(), second.bytes())
		}, StatusProtocolError},
		{"rsv1-on-continuation-of-plain-message", false, func(t testing.TB, s frameSet) []byte {
			first := rf{op: opText, masked: s.masked, key: testKey, payload: []byte("a")}
			second := rf{fin: true, op: opContinuation, rsv: bitRSV1, masked: s.masked, key: testKey, payload: dflCompress(t, []byte("b"))}
			return cat(first.bytes(), second.bytes())
		}, StatusProtocolError},
		{"rsv1-on-ping", false, func(t testing.TB, s frameSet) []byte {
			return rf{fin: true, op: opPing, rsv: bitRSV1, masked: s.masked, key: testKey, payload: []byte("p")}.bytes()
		}, StatusProtocolError},
		{"rsv1-on-ping-between-fragments", false, func(t testing.TB, s frameSet) []byte {
			p := dflCompress(t, dflText(1000, 1))
			return cat(
				rf{op: opText, rsv: bitRSV1, masked: s.masked, key: testKey, payload: p[:10]}.bytes(),
				rf{fin: true, op: opPing, rsv: bitRSV1, masked: s.masked, key: testKey, payload: dflCompress(t, []byte("p"))}.bytes(),
				rf{fin: true, op: opContinuation, masked: s.masked, key: testKey, payload: p[10:]}.bytes())
		}, StatusProtocolError},
		{"rsv1-on-pong", false, func(t testing.TB, s frameSet) []byte {
			return rf{fin: true, op: opPong, rsv: bitRSV1, masked: s.masked, key: testKey}.bytes()
		}, StatusProtocolError},
		{"rsv1-on-close", false, func(t testing.TB, s frameSet) []byte {
			return rf{fin: true, op: opClose, rsv: bitRSV1, masked: s.masked, key: testKey, payload: []byte{0x03, 0xe8}}.bytes()
		}, StatusProtocolError},
		{"rsv2-on-compressed", false, func(t testing.TB, s frameSet) []byte {
			return rf{fin: true, op: opText, rsv: bitRSV1 | bitRSV2, masked: s.masked, key: testKey, payload: dflCompress(t, []byte("x"))}.bytes()
		}, StatusProtocolError},
		{"corrupt/reserved-block-type", false, func(t testing.TB, s frameSet) []byte {
			return dflFrames(opBinary, true, s.masked, [][]byte{{0x07, 0xff, 0xff}})
		}, StatusInvalidFramePayloadData},
		{"corrupt/stored-length", false, func(t testing.TB, s frameSet) []byte {
			return dflFrames(opBinary, true, s.masked, [][]byte{{0x00, 0x05, 0x00, 0x00, 0x00, 'a', 'b', 'c', 'd', 'e'}})
		}, StatusInvalidFramePayloadData},
		{"corrupt/garbage-after-good-data", false, func(t testing.TB, s frameSet) []byte {
			p := dflCompress(t, dflText(2000, 2))
			return dflFrames(opBinary, true, s.masked, [][]byte{p, {0xff, 0xff, 0xff, 0xff}})
		}, StatusInvalidFramePayloadData},
		{"corrupt/random", false, func(t testing.TB, s frameSet) []byte {
			return dflFrames(opBinary, true, s.masked, [][]byte{append([]byte{0x05}, dflRandom(5000, 3)...)})
		}, StatusInvalidFramePayloadData},
		{"corrupt/data-after-final-block", false, func(t testing.TB, s frameSet) []byte {
			var buf bytes.Buffer
			fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
			fw.Write([]byte("hello"))
			fw.Close()
			return dflFrames(opBinary, true, s.masked, [][]byte{append(buf.Bytes(), "trailing junk"...)})
		}, StatusInvalidFramePayloadData},
		{"text-invalid-utf8", false, func(t testing.TB, s frameSet) []byte {
			return dflFrames(opText, true, s.masked, [][]byte{dflCompress(t, badUTF8)})
		}, StatusInvalidFramePayloadData},
		{"text-invalid-utf8-fragmented", false, func(t testing.TB, s frameSet) []byte {
			p := dflCompress(t, append(dflText(20_000, 4), badUTF8...))
			return dflFrames(opText, true, s.masked, dflSplit(p, []int{5, len(p) / 2, len(p) - 2}))
		}, StatusInvalidFramePayloadData},
		{"text-ends-inside-rune", false, func(t testing.TB, s frameSet) []byte {
			return dflFrames(opText, true, s.masked, [][]byte{dflCompress(t, cutRune)})
		}, StatusInvalidFramePayloadData},
	} {
		for _, sd := range dflBothSides() {
			t.Run(tc.name+"/"+sd.name, func(t *testing.T) {
				var c *Conn
				var raw *rawConn
				if tc.plain {
					for _, ps := range bothSides(connConfig{}) {
						if ps.name == sd.name {
							c, raw = ps.pair(t)
						}
					}
				} else {
					c, raw = sd.pair(t, false, 0)
				}
				raw.write(tc.send(t, raw.fs()))
				_, _, err := c.Read(testCtx(t))
				wantProtocolError(t, err, tc.code)
				raw.expectClose(tc.code)
			})
		}
	}
}

// TestDeflateWriteFragmented writes compressed messages in many fragments
// (Writer, ReadFrom, Send of a stream) and checks the raw wire: RSV1 on the
// first frame only, the right opcodes, and a payload that compress/flate
// inflates to what was written.
func TestDeflateWriteFragmented(t *testing.T) {
	for _, sd := range dflBothSides() {
		for _, takeover := range []bool{false, true} {
			t.Run(sd.name+"/"+dflTakeoverName(takeover), func(t *testing.T) {
				c, raw := sd.pair(t, takeover, 0)
				ctx := testCtx(t)
				rng := rand.New(rand.NewPCG(3, 4))
				var all [][]byte // every compressed message, for the takeover stream
				var want []byte
				check := func(name string, typ MessageType, msg []byte, minFrames int) {
					t.Helper()
					frames := dflReadMessage(t, raw)
					if len(frames) < minFrames {
						t.Fatalf("%s: %d frames, want at least %d", name, len(frames), minFrames)
					}
					for i, f := range frames {
						wantRSV, wantOp := byte(0), opContinuation
						if i == 0 {
							wantRSV, wantOp = bitRSV1, opcode(typ)
						}
						if f.rsv != wantRSV || f.op != wantOp || f.fin != (i == len(frames)-1) || f.masked != c.client {
							t.Fatalf("%s: frame %d of %d is %v, want rsv %#x op %#x", name, i, len(frames), f, wantRSV, byte(wantOp))
						}
					}
					payload := dflPayload(frames)
					if !takeover {
						got, err := dflInflate(payload)
						if err != nil || !bytes.Equal(got, msg) {
							t.Fatalf("%s: compress/flate inflates %d bytes (%v), want %d", name, len(got), err, len(msg))
						}
					}
					all = append(all, payload)
					want = append(want, msg...)
				}

				// Writer, many Writes of random sizes.
				msg := append(dflText(200_000, 5), dflRandom(50_000, 6)...)
				w, err := c.Writer(ctx, Binary)
				if err != nil {
					t.Fatal(err)
				}
				writes := 0
				for rest := msg; len(rest) > 0; writes++ {
					n := min(len(rest), 1+rng.IntN(30_000))
					if _, err := w.Write(rest[:n]); err != nil {
						t.Fatal(err)
					}
					rest = rest[n:]
				}
				read := goAsync(t, func() error { check("writer", Binary, msg, writes+1); return nil })
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				read()

				// Writer with one-byte writes of text.
				text := []byte("héllo, 日本語 😀 and more")
				w, _ = c.Writer(ctx, Text)
				for i := range text {
					w.Write(text[i : i+1])
				}
				w.Close()
				check("one-byte-writes", Text, text, len(text)+1)

				// ReadFrom (io.Copy into the writer) of a stream.
				big := dflText(100_000, 7)
				w, _ = c.Writer(ctx, Text)
				read = goAsync(t, func() error { check("readfrom", Text, big, 2); return nil })
				if _, err := io.Copy(w, struct{ io.Reader }{bytes.NewReader(big)}); err != nil {
					t.Fatal(err)
				}
				w.Close()
				read()

				// Send of a Body of unknown length.
				body := io.MultiReader(bytes.NewReader(big[:30_000]), bytes.NewReader(big[30_000:]))
				read = goAsync(t, func() error { check("send", Text, big, 2); return nil })
				if err := c.Send(ctx, Message{Type: Text, Body: body}); err != nil {
					t.Fatal(err)
				}
				read()

				// An empty streamed message, and a Writer closed at once.
				w, _ = c.Writer(ctx, Binary)
				w.Close()
				check("writer-empty", Binary, nil, 1)

				// With takeover, everything is one deflate stream.
				got, err := dflInflateStream(all)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("the messages inflate as one stream to %d bytes (%v), want %d", len(got), err, len(want))
				}
			})
		}
	}
}

// TestDeflateWriteThreshold checks what goes out uncompressed: whole
// messages under the threshold, and nothing else.
func TestDeflateWriteThreshold(t *testing.T) {
	opts := &AcceptOptions{Compression: &CompressionOptions{Threshold: 100}}
	c, raw, _ := dflServerPair(t, opts, "permessage-deflate")
	ctx := testCtx(t)
	for _, tc := range []struct {
		name string
		send func() error
		rsv  byte
	}{
		{"write-under", func() error { return c.Write(ctx, Text, bytes.Repeat([]byte("a"), 99)) }, 0},
		{"write-at", func() error { return c.Write(ctx, Text, bytes.Repeat([]byte("a"), 100)) }, bitRSV1},
		{"send-under", func() error {
			return c.Send(ctx, Message{Type: Text, Body: strings.NewReader(strings.Repeat("a", 99))})
		}, 0},
		{"send-at", func() error {
			return c.Send(ctx, Message{Type: Text, Body: strings.NewReader(strings.Repeat("a", 100))})
		}, bitRSV1},
		{"writer-small-fragment", func() error {
			w, _ := c.Writer(ctx, Text)
			w.Write([]byte("a"))
			return w.Close()
		}, bitRSV1},
		{"write-empty", func() error { return c.Write(ctx, Binary, nil) }, 0},
	} {
		if err := tc.send(); err != nil {
			t.Fatal(err)
		}
		frames := dflReadMessage(t, raw)
		if frames[0].rsv != tc.rsv {
			t.Fatalf("%s: first frame %v, want rsv %#x", tc.name, frames[0], tc.rsv)
		}
	}
}

// TestDeflateTakeoverShrinks sends many similar messages: with context
// takeover the later ones compress to a fraction of the first (they refer
// back to it) and inflate only as one stream; without it every message is
// about the same size and inflates alone.
func TestDeflateTakeoverShrinks(t *testing.T) {
	msgs := make([][]byte, 30)
	for i := range msgs {
		msgs[i] = []byte(fmt.Sprintf(`{"type":"quote","symbol":"WSOS","seq":%d,"bid":%d.%02d,"ask":%d.%02d,"venue":"XNAS","flags":["regular","lit","odd-lot-eligible"],"note":"%s"}`,
			i, 100+i%7, i%100, 101+i%5, (i*7)%100, dflText(300, 1)))
	}
	for _, sd := range dflBothSides() {
		for _, takeover := range []bool{false, true} {
			t.Run(sd.name+"/"+dflTakeoverName(takeover), func(t *testing.T) {
				c, raw := sd.pair(t, takeover, 0)
				ctx := testCtx(t)
				var payloads [][]byte
				for _, m := range msgs {
					if err := c.Write(ctx, Text, m); err != nil {
						t.Fatal(err)
					}
					f := raw.read()
					if f.rsv != bitRSV1 || !f.fin {
						t.Fatalf("frame %v", f)
					}
					payloads = append(payloads, f.payload)
				}
				// Compare the first message with the average of the others
				// (the compressor's heuristics make single sizes vary).
				first := len(payloads[0])
				later := 0
				for _, p := range payloads[1:] {
					later += len(p)
				}
				later /= len(payloads) - 1
				t.Logf("compressed sizes: first %d, later %d on average (messages of %d bytes)", first, later, len(msgs[1]))
				if takeover && later*3 > first {
					t.Fatalf("with context takeover the later messages compress to %d bytes on average, the first to %d: the context is not carried", later, first)
				}
				if !takeover && later*3 < first*2 {
					t.Fatalf("without context takeover the later messages compress to %d bytes on average, the first to %d", later, first)
				}
				got, err := dflInflateStream(payloads)
				if err != nil || !bytes.Equal(got, bytes.Join(msgs, nil)) {
					t.Fatalf("the messages do not inflate as one stream: %v", err)
				}
				if !takeover {
					for i, p := range payloads {
						if got, err := dflInflate(p); err != nil || !bytes.Equal(got, msgs[i]) {
							t.Fatalf("message %d does not inflate alone: %v", i, err)
						}
					}
				}
				// The read side: the peer compresses with its context carried
				// over, long messages (past the 32 KiB window) and
				// uncompressed messages in between, which are not part of
				// the deflate stream.
				// Best compression refers as far back as the 32 KiB window
				// allows.
				z := dflCompressor{level: flate.BestCompression}
				rng := rand.New(rand.NewPCG(5, 6))
				readRng := rand.New(rand.NewPCG(7, 8))
				for i := range 40 {
					var m []byte
					switch i % 4 {
					case 0, 1:
						m = msgs[i%len(msgs)]
					case 2:
						m = dflText(20_000+rng.IntN(50_000), uint64(i/8)) // repeats every 8 messages
					case 3:
						raw.write(raw.fs().msg(opText, "plain between"))
						if _, b, err := c.Read(ctx); err != nil || string(b) != "plain between" {
							t.Fatalf("plain message: %v %q", err, b)
						}
						continue
					}
					payload := dflCompress(t, m)
					if takeover {
						payload = z.message(t, m)
					}
					read := goAsync(t, func() error {
						// Whole, or in reads of random sizes (1 byte to 64 KiB).
						var b []byte
						var err error
						if i%8 >= 4 {
							_, b, err = dflReadBody(ctx, c, readRng)
						} else {
							_, b, err = c.Read(ctx)
						}
						if err == nil && !bytes.Equal(b, m) {
							err = fmt.Errorf("got %d bytes, want %d", len(b), len(m))
						}
						return err
					})
					raw.write(dflFrames(opText, true, raw.client, dflSplit(payload, []int{len(payload) / 2})))
					if err := read(); err != nil {
						t.Fatalf("message %d: %v", i, err)
					}
				}
			})
		}
	}
}

// dflCountingReader counts what a message Body delivers.
type dflCountingReader struct {
	r io.Reader
	n int64
}

func (r *dflCountingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	return n, err
}

// TestDeflateZipBomb sends messages that inflate far past the read limit
// from a few compressed bytes: the reader fails with 1009 after delivering
// at most the limit, having produced at most one byte more.
func TestDeflateZipBomb(t *testing.T) {
	const limit = 64 << 10
	const size = 1 << 20
	zeros := make([]byte, size)
	for _, sd := range dflBothSides() {
		for _, tc := range []struct {
			name  string
			frags func(t testing.TB) [][]byte
		}{
			{"single-frame", func(t testing.TB) [][]byte {
				p := dflCompress(t, zeros)
				if len(p) > 2<<10 {
					t.Fatalf("bomb of %d bytes", len(p))
				}
				return [][]byte{p}
			}},
			{"many-fragments", func(t testing.TB) [][]byte {
				p := dflCompress(t, zeros)
				var cuts []int
				for i := 16; i < len(p); i += 16 {
					cuts = append(cuts, i, i) // and an empty fragment
				}
				return dflSplit(p, cuts)
			}},
			{"flushed-fragments", func(t testing.TB) [][]byte {
				// Each fragment is a sync-flushed 32 KiB of zeros: the limit
				// falls inside the third.
				var buf bytes.Buffer
				fw, _ := flate.NewWriter(&buf, flate.BestCompression)
				var frags [][]byte
				for range 32 {
					buf.Reset()
					fw.Write(zeros[:32<<10])
					fw.Flush()
					frags = append(frags, bytes.Clone(buf.Bytes()))
				}
				last := frags[len(frags)-1]
				frags[len(frags)-1] = last[:len(last)-4]
				return frags
			}},
		} {
			for _, whole := range []bool{false, true} {
				name := sd.name + "/" + tc.name + "/streamed"
				if whole {
					name = sd.name + "/" + tc.name + "/Read"
				}
				t.Run(name, func(t *testing.T) {
					c, raw := sd.pair(t, false, limit)
					ctx := testCtx(t)
					frags := tc.frags(t)
					var wire int
					for _, f := range frags {
						wire += len(f)
					}
					t.Logf("%d fragments, %d compressed bytes for %d bytes", len(frags), wire, size)
					raw.write(dflFrames(opBinary, true, raw.client, frags))
					var err error
					var delivered int64
					if whole {
						var b []byte
						_, b, err = c.Read(ctx)
						delivered = int64(len(b))
					} else {
						var r io.Reader
						_, r, err = c.Reader(ctx)
						if err != nil {
							t.Fatal(err)
						}
						cr := &dflCountingReader{r: r}
						_, err = io.Copy(io.Discard, cr)
						delivered = cr.n
					}
					wantProtocolError(t, err, StatusMessageTooBig)
					if delivered > limit {
						t.Fatalf("%d bytes delivered, limit %d", delivered, limit)
					}
					if c.deflate.msgOut > limit+1 {
						t.Fatalf("%d bytes inflated, limit %d", c.deflate.msgOut, limit)
					}
					raw.expectClose(StatusMessageTooBig)
				})
			}
		}
	}
}

// TestDeflateReadLimitDecompressed checks that the read limit counts
// decompressed bytes, exactly: a message of the limit passes, one byte more
// fails, however large or small its compressed form.
func TestDeflateReadLimitDecompressed(t *testing.T) {
	const limit = 50_000
	for _, sd := range dflBothSides() {
		for _, tc := range []struct {
			name string
			body []byte
			ok   bool
		}{
			{"text-at-limit", dflText(limit, 1), true},
			{"text-over-limit", dflText(limit+1, 1), false},
			{"zeros-at-limit", make([]byte, limit), true},
			{"zeros-over-limit", make([]byte, limit+1), false},
			// Incompressible: the compressed form is larger than the
			// message, and larger than the limit.
			{"random-at-limit", dflRandom(limit, 2), true},
			{"random-over-limit", dflRandom(limit+1, 2), false},
		} {
			t.Run(sd.name+"/"+tc.name, func(t *testing.T) {
				c, raw := sd.pair(t, false, limit)
				payload := dflCompress(t, tc.body)
				for _, frags := range [][][]byte{{payload}, dflSplit(payload, []int{len(payload) / 3, len(payload) / 2})} {
					raw.write(dflFrames(opBinary, true, raw.client, frags))
					_, b, err := c.Read(testCtx(t))
					if !tc.ok {
						wantProtocolError(t, err, StatusMessageTooBig)
						raw.expectClose(StatusMessageTooBig)
						return
					}
					if err != nil || !bytes.Equal(b, tc.body) {
						t.Fatalf("compressed to %d bytes: %v, %d bytes", len(payload), err, len(b))
					}
				}
			})
		}
	}
}

// TestDeflateReadInterrupted: a compressed message whose read is cut by the
// read's context cannot resume (the decompressor's state is lost). Without
// context takeover the message is abandoned and the connection goes on with
// the next one; with takeover the shared context is lost, so the
// connection fails with 1011.
func TestDeflateReadInterrupted(t *testing.T) {
	for _, sd := range dflBothSides() {
		for _, takeover := range []bool{false, true} {
			for _, whole := range []bool{false, true} {
				name := sd.name + "/" + dflTakeoverName(takeover) + "/Reader"
				if whole {
					name = sd.name + "/" + dflTakeoverName(takeover) + "/Read"
				}
				t.Run(name, func(t *testing.T) {
					c, raw := sd.pair(t, takeover, 0)
					msg := dflText(100_000, 8)
					var z dflCompressor
					payload := z.message(t, msg)
					wire := dflFrames(opText, true, raw.client, dflSplit(payload, []int{len(payload) / 2}))
					cut := len(wire) / 3
					raw.write(wire[:cut])
					short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
					defer cancel()
					var err error
					if whole {
						_, _, err = c.Read(short)
					} else {
						var r io.Reader
						if _, r, err = c.Reader(short); err != nil {
							t.Fatal(err)
						}
						_, err = io.Copy(io.Discard, r)
						if errors.Is(err, context.DeadlineExceeded) {
							// The body cannot go on; reading it again says so
							// and does not end the connection.
							if _, err2 := r.Read(make([]byte, 10)); err2 == nil || errors.Is(err2, io.EOF) {
								t.Fatalf("the interrupted body reads on: %v", err2)
							}
						}
					}
					if takeover {
						// The error and the close code say the context is lost.
						if err == nil {
							t.Fatal("no error")
						}
						wantProtocolError(t, err, StatusInternalError)
						raw.expectClose(StatusInternalError)
						return
					}
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Fatalf("interrupted read: %v", err)
					}
					// The rest of the message arrives, then the next one.
					next := dflText(3000, 9)
					raw.write(wire[cut:], dflFrames(opText, true, raw.client, [][]byte{dflCompress(t, next)}))
					ctx := testCtx(t)
					if _, b, err := c.Read(ctx); err != nil || !bytes.Equal(b, next) {
						t.Fatalf("next message: %v, %d bytes", err, len(b))
					}
					raw.write(raw.fs().msg(opText, "plain"))
					if _, b, err := c.Read(ctx); err != nil || string(b) != "plain" {
						t.Fatalf("plain message: %v %q", err, b)
					}
				})
			}
		}
	}
}

// TestDeflateRememberOutput checks the window of decompressed output kept
// for the peer's context takeover: after any sequence of reads, of any
// sizes, it ends with the last 32 KiB of output (or all of it, if less).
func TestDeflateRememberOutput(t *testing.T) {
	const window = 32 << 10
	rng := rand.New(rand.NewPCG(9, 10))
	stream := dflRandom(1<<20, 11)
	for _, maxRead := range []int{1, 100, 4 << 10, 40 << 10, 100 << 10} {
		d := &deflateState{takeoverIn: true}
		pos := 0
		for pos < len(stream) {
			n := min(len(stream)-pos, 1+rng.IntN(maxRead))
			d.remember(stream[pos : pos+n])
			pos += n
			if pos < len(stream) && n < 1000 && rng.IntN(100) != 0 {
				continue // checking costs 32 KiB; not after every small read
			}
			want := stream[max(0, pos-window):pos]
			if len(d.dict) < len(want) || !bytes.Equal(d.dict[len(d.dict)-len(want):], want) {
				t.Fatalf("reads up to %d bytes: after %d bytes the dictionary (%d bytes) does not end with the last %d", maxRead, pos, len(d.dict), len(want))
			}
			if cap(d.dict) > 2*window {
				t.Fatalf("the dictionary grew to %d bytes", cap(d.dict))
			}
		}
	}
	// A connection that saw a small message keeps a small buffer.
	d := &deflateState{takeoverIn: true}
	d.remember(stream[:1000])
	if !bytes.Equal(d.dict, stream[:1000]) || cap(d.dict) > 4<<10 {
		t.Fatalf("after 1000 bytes: %d bytes kept in a buffer of %d", len(d.dict), cap(d.dict))
	}
	// Without takeover nothing is kept.
	d = &deflateState{}
	d.remember(stream[:1000])
	if d.dict != nil {
		t.Fatal("output kept without context takeover")
	}
}

// TestDeflateLevels writes with every compression level, out-of-range
// ones included (they mean the default, BestSpeed), with and without
// context takeover; compress/flate inflates what goes out.
func TestDeflateLevels(t *testing.T) {
	msg := dflText(20_000, 3)
	for _, takeover := range []bool{false, true} {
		for _, level := range []int{flate.HuffmanOnly, flate.DefaultCompression, 0, 1, 2, 5, 9, 10, 100} {
			t.Run(fmt.Sprintf("%s/level%d", dflTakeoverName(takeover), level), func(t *testing.T) {
				opts := &AcceptOptions{Compression: &CompressionOptions{Level: level, ContextTakeover: takeover}}
				c, raw, _ := dflServerPair(t, opts, "permessage-deflate")
				ctx := testCtx(t)
				var payloads [][]byte
				for range 2 {
					if err := c.Write(ctx, Text, msg); err != nil {
						t.Fatal(err)
					}
					f := raw.read()
					if f.rsv != bitRSV1 || len(f.payload) >= len(msg) {
						t.Fatalf("frame %v", f)
					}
					payloads = append(payloads, f.payload)
				}
				if got, err := dflInflateStream(payloads); err != nil || !bytes.Equal(got, bytes.Repeat(msg, 2)) {
					t.Fatalf("inflates to %d bytes: %v", len(got), err)
				}
			})
		}
	}
}
