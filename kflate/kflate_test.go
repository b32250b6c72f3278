package kflate_test

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kf "github.com/klauspost/compress/flate"
	"go.uber.org/goleak"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/kflate"
	"github.com/wesos/wesos/ws"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// impls are the implementations compared: nil is compress/flate.
var impls = []struct {
	name string
	f    ws.Flate
}{
	{"std", nil},
	{"klauspost", kflate.Flate{}},
}

// jsonText returns n bytes of JSON-like event records, which deflate
// shrinks several times.
func jsonText(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 7))
	names := []string{"ada", "grace", "linus", "ken", "barbara", "edsger", "tony", "frances"}
	rooms := []string{"lobby", "ops", "builds", "random", "release"}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"seq":%d,"user":%q,"room":%q,"at":%d,"text":"%s %s"},`,
			i, names[rng.IntN(len(names))], rooms[rng.IntN(len(rooms))], 1_700_000_000+rng.IntN(1e6),
			names[rng.IntN(len(names))], strings.Repeat("ok ", rng.IntN(6)))
	}
	return b.Bytes()[:n]
}

// randomBytes returns n incompressible bytes.
func randomBytes(n int, seed uint64) []byte {
	b := make([]byte, n)
	var s [32]byte
	s[0] = byte(seed)
	rand.NewChaCha8(s).Read(b)
	return b
}

// countingConn counts the bytes read from a net.Conn.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// echoPair starts an echo server compressing with server and dials it
// compressing with client, both with or without context takeover. It
// returns the client and a count of the bytes the client reads.
func echoPair(tb testing.TB, server, client ws.Flate, takeover bool) (*ws.Conn, *atomic.Int64) {
	tb.Helper()
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, &ws.AcceptOptions{Compression: &ws.CompressionOptions{Flate: server, ContextTakeover: takeover, Threshold: -1}})
	hs := httptest.NewServer(srv)
	tb.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		srv.Shutdown(ctx)
	})
	wire := new(atomic.Int64)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &ws.DialOptions{
		Compression: &ws.CompressionOptions{Flate: client, ContextTakeover: takeover, Threshold: -1},
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{nc, wire}, nil
		},
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.CloseNow() })
	return c, wire
}

// readEcho reads the echo of message i, msg, and checks it.
func readEcho(ctx context.Context, t *testing.T, c *ws.Conn, i int, msg []byte) {
	t.Helper()
	_, got, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("message %d: %v", i, err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("message %d: echo of %d bytes differs from the %d sent", i, len(got), len(msg))
	}
}

// TestInterop echoes messages between every pair of implementations, with
// and without context takeover: whole messages, streamed ones of several
// frames, empty, incompressible and large ones. The bytes on the wire show
// that the text travelled compressed.
func TestInterop(t *testing.T) {
	for _, s := range impls {
		for _, cl := range impls {
			for _, takeover := range []bool{false, true} {
				t.Run(fmt.Sprintf("server=%s/client=%s/takeover=%v", s.name, cl.name, takeover), func(t *testing.T) {
					c, wire := echoPair(t, s.f, cl.f, takeover)
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
					defer cancel()
					var msgs [][]byte
					for i := range 12 {
						msgs = append(msgs, jsonText(100<<10+i*997, uint64(i)))
					}
					msgs = append(msgs, nil, []byte("x"), randomBytes(70<<10, 1), jsonText(300<<10, 99))
					var text int64
					for i, msg := range msgs {
						text += int64(len(msg))
						if i%3 == 1 {
							// Streamed: each Write leaves as a frame.
							w, err := c.Writer(ctx, ws.Binary)
							if err != nil {
								t.Fatal(err)
							}
							for part := range slicesOf(msg, 7<<10) {
								if _, err := w.Write(part); err != nil {
									t.Fatal(err)
								}
							}
							if err := w.Close(); err != nil {
								t.Fatal(err)
							}
						} else if err := c.Write(ctx, ws.Binary, msg); err != nil {
							t.Fatal(err)
						}
						readEcho(ctx, t, c, i, msg)
					}
					if n := wire.Load(); n > text/2 {
						t.Fatalf("the client read %d bytes for %d bytes of messages: not compressed", n, text)
					}
					if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

// slicesOf yields p in pieces of at most n bytes.
func slicesOf(p []byte, n int) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(p) > 0 {
			k := min(n, len(p))
			if !yield(p[:k]) {
				return
			}
			p = p[k:]
		}
	}
}

// TestFlushInflatesWithStd checks what permessage-deflate relies on: a
// klauspost flush ends with the sync marker, and compress/flate inflates
// the flushed stream, for every level the package may ask for; and the
// other way round, with a preset dictionary as context takeover uses.
func TestFlushInflatesWithStd(t *testing.T) {
	msg := jsonText(80<<10, 3)
	for _, level := range []int{flate.HuffmanOnly, 1, 5, 9} {
		var out bytes.Buffer
		w, err := kflate.Flate{}.NewWriter(&out, level)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := w.(*kf.Writer); !ok {
			t.Fatalf("NewWriter returned a %T, not klauspost's own writer", w)
		}
		if _, err := w.Write(msg); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(out.Bytes(), []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("level %d: the flush does not end with the sync marker", level)
		}
		got, err := io.ReadAll(io.LimitReader(flate.NewReader(&out), int64(len(msg))))
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("level %d: compress/flate read back %d bytes (%v)", level, len(got), err)
		}
	}
	dict := jsonText(32<<10, 4)
	var out bytes.Buffer
	sw, _ := flate.NewWriterDict(&out, flate.BestSpeed, dict)
	sw.Write(msg)
	sw.Flush()
	r := kflate.Flate{}.NewReader(bytes.NewReader(out.Bytes()), dict)
	got, err := io.ReadAll(io.LimitReader(r, int64(len(msg))))
	if err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("klauspost read back %d bytes with a dictionary (%v)", len(got), err)
	}
	if err := r.Reset(bytes.NewReader(out.Bytes()), dict); err != nil {
		t.Fatal(err)
	}
	if got, _ = io.ReadAll(io.LimitReader(r, int64(len(msg)))); !bytes.Equal(got, msg) {
		t.Fatal("klauspost read back something else after Reset")
	}
}

// countingFlate counts the compressors an implementation (nil:
// compress/flate) makes.
type countingFlate struct {
	f       ws.Flate
	writers *atomic.Int64
}

func (c countingFlate) NewWriter(w io.Writer, level int) (ws.FlateWriter, error) {
	c.writers.Add(1)
	if c.f == nil {
		return flate.NewWriter(w, level)
	}
	return c.f.NewWriter(w, level)
}

func (c countingFlate) NewReader(r io.Reader, dict []byte) ws.FlateReader {
	if c.f == nil {
		return flate.NewReaderDict(r, dict).(ws.FlateReader)
	}
	return c.f.NewReader(r, dict)
}

// TestPassThrough: an echo server without context takeover relays each
// compressed message of one frame with the bytes it came with, whichever
// implementation each end uses: it makes no compressor, and the client
// inflates the echo with its own implementation.
func TestPassThrough(t *testing.T) {
	for _, s := range impls {
		for _, cl := range impls {
			t.Run(fmt.Sprintf("server=%s/client=%s", s.name, cl.name), func(t *testing.T) {
				sf := countingFlate{s.f, new(atomic.Int64)}
				c, _ := echoPair(t, sf, cl.f, false)
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
				defer cancel()
				for i, n := range []int{0, 1, 300, 4 << 10, 16 << 10, 64 << 10} {
					msg := jsonText(n, uint64(i))
					if err := c.Write(ctx, ws.Text, msg); err != nil {
						t.Fatal(err)
					}
					readEcho(ctx, t, c, i, msg)
				}
				if n := sf.writers.Load(); n != 0 {
					t.Fatalf("the server made %d compressors: it compressed the echoes again", n)
				}
				if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}
