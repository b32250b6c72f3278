package ws

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPongBetweenFragments: a ping that arrives while another goroutine is
// in the middle of a fragmented message gets its pong before the message's
// final frame.
func TestPongBetweenFragments(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			readErr := goAsync(t, func() error {
				_, err := readAll(ctx, c)
				return err
			})
			next := make(chan struct{})
			wrote := goAsync(t, func() error {
				w, err := c.Writer(ctx, Text)
				if err != nil {
					return err
				}
				if _, err := w.Write([]byte("frag1")); err != nil {
					return err
				}
				<-next
				if _, err := w.Write([]byte("frag2")); err != nil {
					return err
				}
				return w.Close()
			})
			raw.expectFrame(false, opText, "frag1")
			payload := strings.Repeat("p", 125)
			raw.write(raw.fs().msg(opPing, payload))
			raw.expectFrame(true, opPong, payload) // while the message is open
			close(next)
			raw.expectFrame(false, opContinuation, "frag2")
			raw.expectFrame(true, opContinuation, "")
			if err := wrote(); err != nil {
				t.Fatal(err)
			}
			raw.write(raw.fs().close(1000, ""))
			wantCloseError(t, readErr(), 1000, "")
			raw.expectClose(1000)
		})
	}
}

// TestPing: Ping returns when the pong with its payload arrives (not on an
// unrelated pong), honours ctx, and fails once the connection is closed.
func TestPing(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			ctx := testCtx(t)
			msgs := make(chan string, 8)
			readErr := goAsync(t, func() error {
				for {
					_, b, err := c.Read(ctx)
					if err != nil {
						return err
					}
					msgs <- string(b)
				}
			})
			pingErr := make(chan error, 1)
			go func() { pingErr <- c.Ping(ctx) }()
			f := raw.read()
			if f.op != opPing || !f.fin || len(f.payload) == 0 {
				t.Fatalf("got %v, want a ping", f)
			}
			raw.write(s.msg(opPong, "not yours"), s.msg(opText, "marker"))
			if m := <-msgs; m != "marker" {
				t.Fatalf("got %q", m)
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case err := <-pingErr:
				t.Fatalf("Ping returned (%v) on a pong with another payload", err)
			}
			raw.write(s.msg(opPong, string(f.payload)))
			select {
			case err := <-pingErr:
				if err != nil {
					t.Fatalf("Ping: %v", err)
				}
			case <-time.After(testTimeout):
				t.Fatal("Ping did not return after its pong")
			}

			// A ping that gets no pong ends with its ctx; the conn stays usable.
			short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
			defer cancel()
			if err := c.Ping(short); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Ping without pong: %v", err)
			}
			raw.read() // that ping
			if err := c.Write(ctx, Text, []byte("still open")); err != nil {
				t.Fatal(err)
			}
			raw.expectFrame(true, opText, "still open")

			// Many concurrent pings, each answered.
			var wg sync.WaitGroup
			errs := make(chan error, 10)
			for range 10 {
				wg.Go(func() { errs <- c.Ping(ctx) })
			}
			for range 10 {
				f := raw.read()
				if f.op != opPing {
					t.Fatalf("got %v", f)
				}
				raw.write(s.msg(opPong, string(f.payload)))
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}

			c.CloseNow()
			if err := c.Ping(ctx); err == nil {
				t.Fatal("Ping after CloseNow succeeded")
			}
			readErr()
		})
	}
}

// TestReadResumesAfterCtx: a read interrupted by its context (while waiting
// for a header, inside a header, inside a payload, between fragments, inside
// a control frame) returns ctx.Err(), and a read with a fresh context gets
// the complete, correct message.
func TestReadResumesAfterCtx(t *testing.T) {
	payload := strings.Repeat("0123456789", 30) // 300 bytes: a 16-bit length
	cases := []struct {
		name  string
		first func(s frameSet) []byte // sent before the interrupted read
		rest  func(s frameSet) []byte // sent after it
	}{
		{"waiting for a header", func(frameSet) []byte { return nil }, func(s frameSet) []byte { return s.msg(opText, payload) }},
		{"after 1 header byte", func(s frameSet) []byte { return s.msg(opText, payload)[:1] }, func(s frameSet) []byte { return s.msg(opText, payload)[1:] }},
		{"inside the length", func(s frameSet) []byte { return s.msg(opText, payload)[:3] }, func(s frameSet) []byte { return s.msg(opText, payload)[3:] }},
		{"inside the masking key", func(s frameSet) []byte { return s.msg(opText, payload)[:5] }, func(s frameSet) []byte { return s.msg(opText, payload)[5:] }},
		{"inside the payload", func(s frameSet) []byte { return s.msg(opText, payload)[:150] }, func(s frameSet) []byte { return s.msg(opText, payload)[150:] }},
		{"inside a multi-byte rune", func(s frameSet) []byte { return s.msg(opText, "ab😀cd")[:len(s.msg(opText, ""))+4] }, func(s frameSet) []byte { return s.msg(opText, "ab😀cd")[len(s.msg(opText, ""))+4:] }},
		{"between fragments", func(s frameSet) []byte { return s.frame(false, opText, []byte(payload[:100])).bytes() }, func(s frameSet) []byte {
			return s.msg(opContinuation, payload[100:])
		}},
		{"inside a continuation header", func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte(payload[:100])).bytes(), s.msg(opContinuation, payload[100:])[:1])
		}, func(s frameSet) []byte { return s.msg(opContinuation, payload[100:])[1:] }},
		{"inside a ping between fragments", func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte(payload[:100])).bytes(), s.msg(opPing, "ping!")[:4])
		}, func(s frameSet) []byte { return cat(s.msg(opPing, "ping!")[4:], s.msg(opContinuation, payload[100:])) }},
	}
	type reader struct {
		name string
		read func(ctx context.Context, c *Conn) (string, error)
	}
	readers := []reader{
		{"Read", func(ctx context.Context, c *Conn) (string, error) {
			_, b, err := c.Read(ctx)
			return string(b), err
		}},
		{"Next", func(ctx context.Context, c *Conn) (string, error) {
			m, err := c.Next(ctx)
			if err != nil {
				return "", err
			}
			b, err := io.ReadAll(m.Body)
			return string(b), err
		}},
	}
	for _, tc := range cases {
		for _, rd := range readers {
			for _, sd := range bothSides(connConfig{}) {
				for _, cancelCtx := range []bool{false, true} {
					how := "deadline"
					if cancelCtx {
						how = "cancel"
					}
					nextInterrupted := tc.name == "waiting for a header" || tc.name == "after 1 header byte" || tc.name == "inside the length" ||
						(tc.name == "inside the masking key" && !sd.client)
					if rd.name == "Next" && !nextInterrupted {
						// Next returns as soon as a header is in: the
						// interruption then hits the body, which cannot
						// take a new context; TestBodyReadInterrupted
						// covers that.
						continue
					}
					t.Run(fmt.Sprintf("%s/%s/%s/%s", sd.name, rd.name, tc.name, how), func(t *testing.T) {
						c, raw := sd.pair(t)
						s := raw.fs()
						want := payload
						if strings.Contains(tc.name, "rune") {
							want = "ab😀cd"
						}
						raw.write(tc.first(s))
						var ctx context.Context
						var cancel context.CancelFunc
						if cancelCtx {
							ctx, cancel = context.WithCancel(context.Background())
							time.AfterFunc(50*time.Millisecond, cancel)
						} else {
							ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
						}
						defer cancel()
						got, err := rd.read(ctx, c)
						if !errors.Is(err, ctx.Err()) || ctx.Err() == nil {
							t.Fatalf("interrupted read: %q, %v; want %v", got, err, ctx.Err())
						}
						raw.write(tc.rest(s))
						got, err = rd.read(testCtx(t), c)
						if err != nil || got != want {
							t.Fatalf("resumed read: %.40q (%d bytes), %v; want %.40q (%d bytes)", got, len(got), err, want, len(want))
						}
						if strings.Contains(tc.name, "ping") {
							raw.expectFrame(true, opPong, "ping!")
						}
						// And the connection goes on.
						raw.write(s.msg(opBinary, "after"))
						if got, err := rd.read(testCtx(t), c); err != nil || got != "after" {
							t.Fatalf("next message: %q %v", got, err)
						}
					})
				}
			}
		}
	}
}

// TestBodyReadInterrupted: a Body read interrupted by the Next context
// returns ctx.Err() without failing the connection; the following Next
// discards the rest of that message and returns the next one.
func TestBodyReadInterrupted(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			b := s.msg(opBinary, strings.Repeat("x", 200))
			raw.write(b[:100])
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			m, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(m.Body)
			if !errors.Is(err, context.DeadlineExceeded) || len(got) == 0 {
				t.Fatalf("body read: %d bytes, %v", len(got), err)
			}
			raw.write(b[100:], s.msg(opText, "next"))
			_, msg, err := c.Read(testCtx(t))
			if err != nil || string(msg) != "next" {
				t.Fatalf("Read after an interrupted body: %q %v", msg, err)
			}
		})
	}
}

// TestPongWhileReadCtxEnds: a ping arrives while a large frame is being
// written to a peer that does not read, and the read's context ends while
// the pong waits for that frame. The read returns ctx.Err(), the connection
// stays usable and the pong still goes out after the frame.
func TestPongWhileReadCtxEnds(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			ctx := testCtx(t)
			big := bytes.Repeat([]byte("b"), 32<<20) // more than the socket buffers hold
			wrote := goAsync(t, func() error { return c.Write(ctx, Binary, big) })
			// The write fills the socket buffers and blocks, holding the frame lock.
			waitFor(t, "the write to hold the frame lock", func() bool { return c.wl.isHeld(lockFrame) })
			time.Sleep(20 * time.Millisecond)
			raw.write(s.msg(opPing, "hi"))
			short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			_, _, err := c.Read(short)
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Read: %v, want context.DeadlineExceeded", err)
			}
			readErr := goAsync(t, func() error {
				_, err := readAll(ctx, c)
				return err
			})
			f := raw.read()
			if f.op != opBinary || len(f.payload) != len(big) {
				t.Fatalf("got %v", f)
			}
			if err := wrote(); err != nil {
				t.Fatal(err)
			}
			raw.expectFrame(true, opPong, "hi")
			raw.write(s.close(1000, ""))
			wantCloseError(t, readErr(), 1000, "")
		})
	}
}

// TestWriteBlockedCtx: a Write blocked on a full TCP buffer (the peer does
// not read) returns when its ctx ends; a frame cut in the middle closes the
// connection. A Write waiting for another message's turn returns ctx.Err()
// and leaves the connection usable.
func TestWriteBlockedCtx(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			big := make([]byte, 64<<20)
			ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
			defer cancel()
			err := c.Write(ctx, Binary, big)
			if err == nil || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Write to a peer that does not read: %v", err)
			}
			// Part of the frame left, so the stream is broken: closed.
			if err := c.Write(testCtx(t), Text, []byte("x")); err == nil {
				t.Fatal("Write after a cut frame succeeded")
			}
			raw.nc.Close()

			// A Writer's Write, likewise.
			c2, raw2 := sd.pair(t)
			w, err := c2.Writer(ctx, Binary)
			if err == nil {
				_, err = w.Write(big)
				w.Close()
			}
			if err == nil {
				t.Fatal("Writer.Write to a peer that does not read succeeded")
			}
			raw2.nc.Close()

			// Waiting for the message lock: ctx.Err() and nothing broken.
			c3, raw3 := sd.pair(t)
			w3, err := c3.Writer(testCtx(t), Text)
			if err != nil {
				t.Fatal(err)
			}
			short, cancel3 := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel3()
			if err := c3.Write(short, Text, []byte("waits")); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Write waiting for the writer: %v", err)
			}
			if _, err := c3.Writer(short, Text); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Writer waiting for the writer: %v", err)
			}
			if err := c3.Send(short, Message{Type: Text}); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Send waiting for the writer: %v", err)
			}
			w3.Write([]byte("a"))
			w3.Close()
			raw3.expectFrame(false, opText, "a")
			raw3.expectFrame(true, opContinuation, "")
			if err := c3.Write(testCtx(t), Text, []byte("ok")); err != nil {
				t.Fatal(err)
			}
			raw3.expectFrame(true, opText, "ok")

			// An already-ended context writes nothing.
			done, cancel4 := context.WithCancel(context.Background())
			cancel4()
			for range 20 {
				if err := c3.Write(done, Binary, big[:1<<20]); !errors.Is(err, context.Canceled) {
					t.Fatalf("Write with an ended ctx: %v", err)
				}
			}
			if err := c3.Write(testCtx(t), Text, []byte("still ok")); err != nil {
				t.Fatal(err)
			}
			raw3.expectFrame(true, opText, "still ok")
		})
	}
}

// TestConcurrentWriters: many goroutines write with Write, Send, Writer and
// Ping at once; the raw peer checks on the wire that every message arrives
// whole and no two data messages interleave.
func TestConcurrentWriters(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			readErr := goAsync(t, func() error {
				_, err := readAll(ctx, c)
				return err
			})
			const goroutines, perG = 8, 25
			// body is self-describing, so a message cut or mixed with
			// another is detected.
			body := func(g, i int) string {
				head := fmt.Sprintf("<%d.%d>", g, i)
				return head + strings.Repeat(head, (g*7+i*13)%200) + "$"
			}
			want := make(map[string]bool)
			for g := range goroutines {
				for i := range perG {
					want[body(g, i)] = true
				}
			}
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*perG)
			for g := range goroutines {
				wg.Go(func() {
					r := rand.New(rand.NewPCG(uint64(g), 1))
					for i := range perG {
						b := body(g, i)
						var err error
						switch (g + i) % 4 {
						case 0:
							err = c.Write(ctx, Text, []byte(b))
						case 1:
							err = c.Send(ctx, Message{Type: Text, Body: strings.NewReader(b)})
						case 2:
							var w io.WriteCloser
							w, err = c.Writer(ctx, Text)
							for rest := b; err == nil && rest != ""; {
								n := 1 + r.IntN(len(rest))
								_, err = w.Write([]byte(rest[:n]))
								rest = rest[n:]
							}
							if err == nil {
								err = w.Close()
							}
						case 3:
							err = c.Send(ctx, Message{Type: Text, Body: io.MultiReader(strings.NewReader(b[:len(b)/2]), strings.NewReader(b[len(b)/2:]))})
							if err == nil {
								pctx, cancel := context.WithTimeout(ctx, testTimeout)
								err = c.Ping(pctx)
								cancel()
							}
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			// The raw peer: reassemble, check, answer pings.
			pings := 0
			for g := range goroutines {
				for i := range perG {
					if (g+i)%4 == 3 {
						pings++
					}
				}
			}
			got := 0
			var cur []byte
			open := false
			for got < goroutines*perG || pings > 0 {
				f := raw.read()
				switch f.op {
				case opPing:
					raw.write(raw.fs().msg(opPong, string(f.payload)))
					pings--
					continue
				case opText:
					if open {
						t.Fatalf("a text frame inside an open message: %v", f)
					}
					open, cur = true, append(cur[:0], f.payload...)
				case opContinuation:
					if !open {
						t.Fatalf("continuation with no open message: %v", f)
					}
					cur = append(cur, f.payload...)
				default:
					t.Fatalf("unexpected frame %v", f)
				}
				if f.fin {
					open = false
					if !want[string(cur)] {
						t.Fatalf("message %.60q... was mangled or duplicated", cur)
					}
					delete(want, string(cur))
					got++
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			raw.write(raw.fs().close(1000, ""))
			wantCloseError(t, readErr(), 1000, "")
		})
	}
}

// TestRandomStreamsWithInterruptions: random messages, randomly fragmented,
// with pings and pongs between fragments, arrive in random-sized TCP writes
// while the reader uses very short deadlines, so reads are cut at every
// kind of place; retried reads must yield exactly the messages sent, every
// ping gets its pong in order, and the close ends it all.
func TestRandomStreamsWithInterruptions(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			r := rand.New(rand.NewPCG(7, uint64(len(sd.name))))
			runes := []rune("aé€😀\u0000z")
			type msg struct {
				typ  MessageType
				body []byte
			}
			var want []msg
			var pings []string
			var wire []byte
			for range 40 {
				m := msg{typ: Text}
				n := r.IntN(3000)
				if r.IntN(2) == 0 {
					m.typ = Binary
					m.body = make([]byte, n)
					for i := range m.body {
						m.body[i] = byte(r.Uint32())
					}
				} else {
					var sb strings.Builder
					for sb.Len() < n {
						sb.WriteRune(runes[r.IntN(len(runes))])
					}
					m.body = []byte(sb.String())
				}
				want = append(want, m)
				// Cut into 1..5 fragments at random points (inside runes too).
				cuts := []int{0}
				for range r.IntN(5) {
					cuts = append(cuts, r.IntN(len(m.body)+1))
				}
				cuts = append(cuts, len(m.body))
				slices.Sort(cuts)
				for i := 0; i+1 < len(cuts); i++ {
					op := opContinuation
					if i == 0 {
						op = opcode(m.typ)
					}
					wire = append(wire, s.frame(i+2 == len(cuts), op, m.body[cuts[i]:cuts[i+1]]).bytes()...)
					if r.IntN(3) == 0 {
						p := make([]byte, r.IntN(126))
						for j := range p {
							p[j] = byte(r.Uint32())
						}
						pings = append(pings, string(p))
						wire = append(wire, s.msg(opPing, string(p))...)
					}
					if r.IntN(5) == 0 {
						wire = append(wire, s.msg(opPong, "unsolicited")...)
					}
				}
			}
			wire = append(wire, s.close(StatusNormalClosure, "done")...)

			// The raw peer: write in random chunks, with pauses; read the
			// pongs and the close echo.
			wr := rand.New(rand.NewPCG(8, 9))
			wrote := goAsync(t, func() error {
				for rest := wire; len(rest) > 0; {
					n := min(len(rest), 1+wr.IntN(300))
					if _, err := raw.nc.Write(rest[:n]); err != nil {
						return err
					}
					rest = rest[n:]
					if wr.IntN(4) == 0 {
						time.Sleep(time.Duration(wr.IntN(3000)) * time.Microsecond)
					}
				}
				return nil
			})
			pongs := make(chan []wireFrame, 1)
			go func() {
				var got []wireFrame
				for {
					f, err := raw.readErr()
					if err != nil {
						pongs <- got
						return
					}
					got = append(got, f)
				}
			}()

			got, interrupted := 0, 0
			for i := 0; ; i++ {
				if i > 100000 {
					t.Fatal("too many reads")
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Duration(100+r.IntN(2000))*time.Microsecond)
				typ, b, err := c.Read(ctx)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					interrupted++
					continue
				}
				if err != nil {
					wantCloseError(t, err, StatusNormalClosure, "done")
					break
				}
				if got >= len(want) {
					t.Fatalf("extra message %v %d bytes", typ, len(b))
				}
				if typ != want[got].typ || !bytes.Equal(b, want[got].body) {
					t.Fatalf("message %d: %v %d bytes, want %v %d bytes", got, typ, len(b), want[got].typ, len(want[got].body))
				}
				got++
			}
			if got != len(want) {
				t.Fatalf("%d messages, want %d", got, len(want))
			}
			if err := wrote(); err != nil {
				t.Fatal(err)
			}
			frames := <-pongs
			if len(frames) != len(pings)+1 {
				t.Fatalf("%d frames back, want %d pongs and the close", len(frames), len(pings))
			}
			for i, p := range pings {
				if f := frames[i]; f.op != opPong || string(f.payload) != p {
					t.Fatalf("frame %d: %v, want the pong %q", i, f, p)
				}
			}
			if f := frames[len(pings)]; f.op != opClose || f.closeCode() != StatusNormalClosure {
				t.Fatalf("last frame %v", f)
			}
			t.Logf("%d messages, %d pings, %d interrupted reads", got, len(pings), interrupted)
		})
	}
}

// TestReadInterruptedCompressed: a Read interrupted inside a compressed
// message (whose decompression cannot resume) does not fail the
// connection: that message is abandoned and the next one reads normally.
func TestReadInterruptedCompressed(t *testing.T) {
	ch := make(chan *rawConn, 1)
	s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
		accept101(nc, req, "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover")
		ch <- &rawConn{t: t, nc: nc, br: br}
	})
	c, _, err := Dial(testCtx(t), s.url, &DialOptions{Compression: &CompressionOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	raw := <-ch
	defer raw.nc.Close()

	var zb bytes.Buffer
	zw, _ := flate.NewWriter(&zb, flate.BestSpeed)
	zw.Write(bytes.Repeat([]byte("squeeze me "), 500))
	zw.Flush()
	z := bytes.TrimSuffix(zb.Bytes(), deflateTail[:])
	f := frameSet{}.frame(true, opText, z)
	f.rsv = bitRSV1
	b := f.bytes()
	raw.write(b[:len(b)/2])
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Read(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("interrupted Read: %v", err)
	}
	raw.write(b[len(b)/2:], frameSet{}.msg(opText, "next"))
	if _, got, err := c.Read(testCtx(t)); err != nil || string(got) != "next" {
		t.Fatalf("Read after the interruption: %q %v", got, err)
	}
}

// TestConnSize guards the size of a Conn, which every connection carries
// for its life: at 512 bytes it is in the allocator's 512-byte size class,
// the largest whose objects with pointers carry no header; one byte more
// costs 64 (the 576-byte class, with the 8-byte header objects of more
// than 512 bytes carry). Move rare state into connRare rather than grow it.
func TestConnSize(t *testing.T) {
	if size := reflect.TypeFor[Conn]().Size(); size > 512 {
		t.Fatalf("Conn is %d bytes, more than 512", size)
	}
}

// TestConnRareState: a server Conn without KeepAlive makes no connRare in
// the handshake, in reading, writing or answering pings, or for a close
// frame without a reason, so that it costs nothing past the Conn; a close
// reason, which needs it, still reaches the reader, and a client has one
// from Dial for its masking keys.
func TestConnRareState(t *testing.T) {
	for _, reason := range []string{"", "bye"} {
		c, raw := serverPair(t, nil)
		s := raw.fs()
		ctx := testCtx(t)
		if c.rare.Load() != nil {
			t.Fatal("a connRare after the handshake")
		}
		raw.write(cat(s.msg(opText, "one"), s.msg(opPing, "p"), s.msg(opBinary, "two")))
		if _, b, err := c.Read(ctx); err != nil || string(b) != "one" {
			t.Fatalf("Read: %q %v", b, err)
		}
		if m, err := c.Next(ctx); err != nil || m.Type != Binary {
			t.Fatalf("Next: %v %v", m.Type, err)
		} else if b, err := io.ReadAll(m.Body); err != nil || string(b) != "two" {
			t.Fatalf("Body: %q %v", b, err)
		}
		raw.expectFrame(true, opPong, "p")
		if err := c.Write(ctx, Text, []byte("three")); err != nil {
			t.Fatal(err)
		}
		raw.expectFrame(true, opText, "three")
		if c.rare.Load() != nil {
			t.Fatal("a connRare after reading, writing and a ping")
		}
		raw.write(s.close(StatusGoingAway, reason))
		_, err := c.Next(ctx)
		wantCloseError(t, err, StatusGoingAway, reason)
		if made := c.rare.Load() != nil; made != (reason != "") {
			t.Errorf("close reason %q: connRare made %v", reason, made)
		}
	}
	c, _ := clientPair(t, nil)
	if r := c.rare.Load(); r == nil || r.rng == nil {
		t.Error("a client Conn without its masking keys")
	}
}
