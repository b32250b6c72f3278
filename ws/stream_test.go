package ws

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/wesos/wesos"
)

// TestWriterFrames: every Write of a Writer leaves at once as one frame
// with FIN unset (the first with the message's opcode, then
// continuations), an empty Write sends nothing, and Close sends an empty
// final frame.
func TestWriterFrames(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			for _, typ := range []MessageType{Text, Binary} {
				w, err := c.Writer(ctx, typ)
				if err != nil {
					t.Fatal(err)
				}
				big := strings.Repeat("z", 100<<10)
				for i, part := range []string{"ab", "", "cd", big} {
					if n, err := w.Write([]byte(part)); err != nil || n != len(part) {
						t.Fatalf("Write %d: %d %v", i, n, err)
					}
				}
				op := opcode(typ)
				raw.expectFrame(false, op, "ab") // it left before Close
				raw.expectFrame(false, opContinuation, "cd")
				raw.expectFrame(false, opContinuation, big)
				if err := w.Close(); err != nil {
					t.Fatal(err)
				}
				raw.expectFrame(true, opContinuation, "")
				if err := w.Close(); err == nil {
					t.Error("second Close succeeded")
				}
				if _, err := w.Write([]byte("x")); err == nil {
					t.Error("Write after Close succeeded")
				}
			}
			// A Writer closed without a Write is one empty final frame.
			w, _ := c.Writer(ctx, Binary)
			w.Close()
			raw.expectFrame(true, opBinary, "")
			// io.Copy into a Writer: each read of the source is a fragment.
			w, _ = c.Writer(ctx, Binary)
			if n, err := io.Copy(w, iotest.OneByteReader(strings.NewReader("xyz"))); err != nil || n != 3 {
				t.Fatalf("io.Copy: %d %v", n, err)
			}
			w.Close()
			raw.expectFrame(false, opBinary, "x")
			raw.expectFrame(false, opContinuation, "y")
			raw.expectFrame(false, opContinuation, "z")
			raw.expectFrame(true, opContinuation, "")
			// An invalid message type is refused.
			if _, err := c.Writer(ctx, MessageType(3)); err == nil {
				t.Error("Writer(3) succeeded")
			}
			if err := c.Write(ctx, 0, nil); err == nil {
				t.Error("Write(0) succeeded")
			}
		})
	}
}

// TestWholeMessageOneFrame: Write, and Send of a body whose length is
// known, put a whole message in a single frame, of any size.
func TestWholeMessageOneFrame(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			for _, n := range []int{0, 1, 125, 126, 16 << 10, 100 << 10, 1 << 20} {
				p := bytes.Repeat([]byte("w"), n)
				if err := c.Write(ctx, Binary, p); err != nil {
					t.Fatal(err)
				}
				raw.expectFrame(true, opBinary, string(p))
				if !bytes.Equal(p, bytes.Repeat([]byte("w"), n)) {
					t.Fatal("Write modified the caller's bytes")
				}
			}
			for _, n := range []int{0, 5, 1000, writeBufSize - maxHeaderSize, 100 << 10, 1 << 20} {
				s := strings.Repeat("s", n)
				if err := c.Send(ctx, Message{Type: Text, Body: bytes.NewReader([]byte(s))}); err != nil {
					t.Fatal(err)
				}
				raw.expectFrame(true, opText, s)
				if err := c.Send(ctx, Message{Type: Text, Body: strings.NewReader(s)}); err != nil {
					t.Fatal(err)
				}
				raw.expectFrame(true, opText, s)
			}
			if err := c.Send(ctx, Message{Type: Binary}); err != nil {
				t.Fatal(err)
			}
			raw.expectFrame(true, opBinary, "")
		})
	}
}

// TestSendStreams: Send of a body of unknown length streams it as
// fragments; the bytes arrive in order; a body that fails midway ends the
// message with an empty final frame and the error is returned.
func TestSendStreams(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			body := io.MultiReader(strings.NewReader("one,"), strings.NewReader("two,"), strings.NewReader("three"))
			if err := c.Send(ctx, Message{Type: Text, Body: body}); err != nil {
				t.Fatal(err)
			}
			var got []byte
			for {
				f := raw.read()
				got = append(got, f.payload...)
				if f.fin {
					break
				}
			}
			if string(got) != "one,two,three" {
				t.Fatalf("got %q", got)
			}
			boom := errors.New("boom")
			body = io.MultiReader(strings.NewReader("partial"), iotest.ErrReader(boom))
			if err := c.Send(ctx, Message{Type: Binary, Body: body}); !errors.Is(err, boom) {
				t.Fatalf("Send with a failing body: %v", err)
			}
			raw.expectFrame(false, opBinary, "partial")
			raw.expectFrame(true, opContinuation, "")
			// The next message goes out normally.
			if err := c.Write(ctx, Text, []byte("next")); err != nil {
				t.Fatal(err)
			}
			raw.expectFrame(true, opText, "next")
		})
	}
}

// echoServer returns a server Conn running wesos.Pipe(ctx, c, c) and the
// raw client connected to it; the returned function waits for Pipe.
func echoServer(t *testing.T, opts *AcceptOptions) (*rawConn, func() error) {
	c, raw := serverPair(t, opts)
	ctx := testCtx(t)
	return raw, goAsync(t, func() error { return wesos.Pipe(ctx, c, c) })
}

// TestPipeEcho: an echo server wesos.Pipe(ctx, c, c) keeps each message's
// type and content, keeps a single-frame message single-frame, and ends
// cleanly on a normal close.
func TestPipeEcho(t *testing.T) {
	raw, piped := echoServer(t, nil)
	s := raw.fs()
	for _, n := range []int{0, 1, 1000, 16<<10 - maxHeaderSize} {
		p := strings.Repeat("e", n)
		raw.write(s.msg(opBinary, p))
		raw.expectFrame(true, opBinary, p)
		raw.write(s.msg(opText, p))
		raw.expectFrame(true, opText, p)
	}
	// A fragmented message comes back whole and in order, fragmented or not.
	raw.write(cat(s.frame(false, opText, []byte("frag")).bytes(), s.msg(opPing, "p"), s.frame(false, opContinuation, []byte("mented ")).bytes(), s.msg(opContinuation, "message")))
	var got []byte
	first := true
	for {
		f := raw.read()
		if f.op == opPong {
			continue
		}
		if first && f.op != opText || !first && f.op != opContinuation {
			t.Fatalf("frame %v", f)
		}
		first = false
		got = append(got, f.payload...)
		if f.fin {
			break
		}
	}
	if string(got) != "fragmented message" {
		t.Fatalf("got %q", got)
	}
	raw.write(s.close(1000, ""))
	raw.expectClose(1000)
	if err := piped(); err != nil {
		t.Fatalf("Pipe after a normal close: %v", err)
	}
}

// TestPipeEchoFailsWith1007: a text message whose final frame ends inside a
// rune fails an echo server's connection with 1007, and Pipe returns that
// *ProtocolError, not the error of the echo's write that the failed
// connection refused (the read returns the frame's bytes with the error).
// Seen with Node's ws, which sends a Buffer as text unchecked.
func TestPipeEchoFailsWith1007(t *testing.T) {
	raw, piped := echoServer(t, nil)
	s := raw.fs()
	raw.write(cat(s.frame(false, opText, []byte("ends inside ")).bytes(), s.msg(opContinuation, "a rune \xf0\x9f\x98")))
	raw.expectFrame(false, opText, "ends inside ")
	raw.expectClose(StatusInvalidFramePayloadData)
	wantProtocolError(t, piped(), StatusInvalidFramePayloadData)
}

// TestStream256MiB streams a 256 MiB message from a client through an echo
// server (wesos.Pipe) and back, writing it with Writer in chunks of a
// generated stream and checking it on the fly against the regenerated
// stream, while a sampler checks that the live heap stays under 32 MiB.
func TestStream256MiB(t *testing.T) {
	if testing.Short() {
		t.Skip("streams 512 MiB through loopback")
	}
	const (
		total   = 256 << 20
		chunk   = 64 << 10
		maxHeap = 32 << 20
	)
	srv, results := startAcceptServer(t, &AcceptOptions{ReadLimit: -1})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{ReadLimit: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	res := <-results
	if res.err != nil {
		t.Fatal(res.err)
	}
	sc := res.c
	defer sc.CloseNow()
	piped := goAsync(t, func() error { return wesos.Pipe(ctx, sc, sc) })

	// The sampler: the live heap after a GC, every 100ms, until stopped.
	stop := make(chan struct{})
	var peak uint64
	var samples int
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			samples++
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})

	seed := [32]byte{'w', 'e', 's', 'o', 's'}
	wrote := goAsync(t, func() error {
		gen := rand.NewChaCha8(seed)
		w, err := c.Writer(ctx, Binary)
		if err != nil {
			return err
		}
		buf := make([]byte, chunk)
		for sent := 0; sent < total; sent += chunk {
			gen.Read(buf)
			if _, err := w.Write(buf); err != nil {
				return err
			}
		}
		return w.Close()
	})

	typ, r, err := c.Reader(ctx)
	if err != nil || typ != Binary {
		t.Fatalf("Reader: %v %v", typ, err)
	}
	want := rand.NewChaCha8(seed)
	buf := make([]byte, 48<<10+7) // not aligned with the writer's chunks
	exp := make([]byte, len(buf))
	received := 0
	for {
		n, err := r.Read(buf)
		if n > 0 {
			want.Read(exp[:n])
			if !bytes.Equal(buf[:n], exp[:n]) {
				t.Fatalf("stream differs in the %d bytes after offset %d", n, received)
			}
			received += n
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("after %d bytes: %v", received, err)
		}
		if received > total {
			t.Fatalf("received %d bytes, more than sent", received)
		}
	}
	close(stop)
	sampler.Wait()
	if err := wrote(); err != nil {
		t.Fatal(err)
	}
	if received != total {
		t.Fatalf("received %d bytes, want %d", received, total)
	}
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	if err := piped(); err != nil {
		t.Fatalf("Pipe: %v", err)
	}
	t.Logf("peak live heap %.1f MiB over %d samples", float64(peak)/(1<<20), samples)
	if samples < 2 {
		t.Fatalf("only %d heap samples", samples)
	}
	if peak >= maxHeap {
		t.Fatalf("live heap peaked at %.1f MiB, want under %d MiB", float64(peak)/(1<<20), maxHeap>>20)
	}
}
