package ws

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
)

// TestStaleBody: a message's Body is valid until the next Next; read after
// it, it returns an error and reads nothing, whether or not it had been
// read from, and the current message is intact.
func TestStaleBody(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			fs := raw.fs()
			raw.write(fs.msg(opText, "first"), fs.msg(opText, "second"), fs.msg(opBinary, "third"), fs.msg(opText, "fourth"))

			m1, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var two [2]byte
			if n, err := io.ReadFull(m1.Body, two[:]); n != 2 || err != nil {
				t.Fatalf("reading m1: %d %v", n, err)
			}
			m2, err := c.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var buf [16]byte
			if n, err := m1.Body.Read(buf[:]); n != 0 || !errors.Is(err, errStaleBody) {
				t.Fatalf("stale Body read: %d %q %v", n, buf[:n], err)
			}
			b, err := io.ReadAll(m2.Body)
			if err != nil || string(b) != "second" {
				t.Fatalf("m2: %q %v", b, err)
			}

			// Reader and Read make a Body stale too.
			_, r3, err := c.Reader(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, p, err := c.Read(ctx); err != nil || string(p) != "fourth" {
				t.Fatalf("Read: %q %v", p, err)
			}
			for _, body := range []io.Reader{m2.Body, r3} {
				if n, err := body.Read(buf[:]); n != 0 || !errors.Is(err, errStaleBody) {
					t.Fatalf("stale Body read: %d %q %v", n, buf[:n], err)
				}
			}
		})
	}
}

// TestWriterAfterClose: a Writer closed once fails every later call, and
// its second Close (the usual deferred one) neither ends the message
// started since nor releases that message's lock.
func TestWriterAfterClose(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			w1, err := c.Writer(ctx, Text)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w1.Write([]byte("a")); err != nil {
				t.Fatal(err)
			}
			if err := w1.Close(); err != nil {
				t.Fatal(err)
			}
			w2, err := c.Writer(ctx, Binary)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w2.Write([]byte("b")); err != nil {
				t.Fatal(err)
			}
			if err := w1.Close(); !errors.Is(err, errWriterClosed) {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := w1.Write([]byte("x")); !errors.Is(err, errWriterClosed) {
				t.Fatalf("Write after Close: %v", err)
			}
			if _, err := w1.(io.ReaderFrom).ReadFrom(strings.NewReader("y")); !errors.Is(err, errWriterClosed) {
				t.Fatalf("ReadFrom after Close: %v", err)
			}
			if !c.wl.isHeld(lockMsg) {
				t.Fatal("the stale Close released the open message's lock")
			}
			if _, err := w2.Write([]byte("c")); err != nil {
				t.Fatal(err)
			}
			if err := w2.Close(); err != nil {
				t.Fatal(err)
			}
			raw.expectFrame(false, opText, "a")
			raw.expectFrame(true, opContinuation, "")
			raw.expectFrame(false, opBinary, "b")
			raw.expectFrame(false, opContinuation, "c")
			raw.expectFrame(true, opContinuation, "")
		})
	}
}

// TestCloseWakesQueuedWriter: a Write with no deadline, queued behind an
// open Writer, returns once the connection closes (CloseNow), or once Close
// has sent its close frame, without waiting for the peer's answer.
func TestCloseWakesQueuedWriter(t *testing.T) {
	for _, how := range []string{"CloseNow", "Close"} {
		for _, sd := range bothSides(connConfig{}) {
			t.Run(how+"/"+sd.name, func(t *testing.T) {
				c, raw := sd.pair(t)
				w, err := c.Writer(testCtx(t), Text)
				if err != nil {
					t.Fatal(err)
				}
				write := goAsync(t, func() error { return c.Write(context.Background(), Text, []byte("queued")) })
				waitFor(t, "the write to queue", func() bool {
					c.wl.mu.Lock()
					defer c.wl.mu.Unlock()
					return c.wl.waiting() == 1
				})
				var closed func() error
				if how == "CloseNow" {
					c.CloseNow()
				} else {
					closed = goAsync(t, func() error { return c.Close(StatusNormalClosure, "") })
				}
				if err := write(); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("queued Write: %v, want a closed-connection error", err)
				}
				if how == "Close" {
					// The peer answers only now: the write did not
					// wait for it.
					if f := raw.read(); f.op != opClose || f.closeCode() != StatusNormalClosure {
						t.Fatalf("got %v, want a close frame 1000", f)
					}
					raw.write(raw.fs().close(StatusNormalClosure, ""))
					if err := closed(); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); !errors.Is(err, net.ErrClosed) {
					t.Fatalf("Writer's Close after the connection closed: %v", err)
				}
			})
		}
	}
}

// TestHubOfMessages: a flow.Hub of ws.Message fed by Pipe hands each
// subscriber a Body that the next Next makes stale. Such a subscriber gets
// an error (or the message, if it read it in time), never another message's
// bytes and never a hang; a pipeline that buffers each body before the Hub
// delivers every message.
func TestHubOfMessages(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		name := "streamed"
		if buffered {
			name = "buffered"
		}
		t.Run(name, func(t *testing.T) {
			c, raw := serverPair(t, nil)
			ctx, cancel := context.WithCancel(testCtx(t))
			defer cancel()
			type result struct {
				body string
				err  error
			}
			results := make(chan result, 3)
			hub := flow.NewHub[Message](nil)
			defer hub.Close()
			hub.Subscribe(wesos.SinkFunc[Message](func(ctx context.Context, m Message) error {
				b, err := io.ReadAll(m.Body)
				results <- result{string(b), err}
				return nil
			}))
			var src wesos.Source[Message] = c
			if buffered {
				src = flow.Map(src, func(_ context.Context, m Message) (Message, error) {
					b, err := io.ReadAll(m.Body)
					return Message{Type: m.Type, Body: bytes.NewReader(b)}, err
				})
			}
			piped := goAsync(t, func() error { return wesos.Pipe(ctx, hub, src) })
			want := []string{"one", "two", "three"}
			for _, s := range want {
				raw.write(raw.fs().msg(opText, s))
			}
			for i := range want {
				select {
				case r := <-results:
					switch {
					case r.err == nil && r.body == want[i]:
					case !buffered && errors.Is(r.err, errStaleBody) && strings.HasPrefix(want[i], r.body):
					default:
						t.Fatalf("message %d: %q %v, want %q", i, r.body, r.err, want[i])
					}
				case <-ctx.Done():
					t.Fatalf("%d of %d messages reached the subscriber", i, len(want))
				}
			}
			raw.write(raw.fs().close(StatusNormalClosure, ""))
			if err := piped(); err != nil {
				t.Fatalf("Pipe: %v", err)
			}
		})
	}
}

// TestErrorLog: an error no caller sees (here, the close frame of a
// connection failed by a protocol violation, whose write fails) goes to the
// options' ErrorLog.
func TestErrorLog(t *testing.T) {
	var logged lockedBuffer
	var fc *failingConn
	opts := &DialOptions{
		ErrorLog: slog.New(slog.NewTextHandler(&logged, nil)),
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			fc = &failingConn{Conn: nc}
			return fc, nil
		},
	}
	c, raw := clientPair(t, opts)
	fc.fail.Store(true)
	raw.write(rf{fin: true, op: 0x3}.bytes()) // a reserved opcode: 1002
	_, err := c.Next(testCtx(t))
	wantProtocolError(t, err, StatusProtocolError)
	if got := logged.String(); !strings.Contains(got, "close frame") || !strings.Contains(got, errInjected.Error()) {
		t.Fatalf("ErrorLog got %q", got)
	}
}

var errInjected = errors.New("injected write failure")

// failingConn is a net.Conn whose writes fail once fail is set.
type failingConn struct {
	net.Conn
	fail atomic.Bool
}

func (f *failingConn) Write(p []byte) (int, error) {
	if f.fail.Load() {
		return 0, errInjected
	}
	return f.Conn.Write(p)
}

// lockedBuffer is a bytes.Buffer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
