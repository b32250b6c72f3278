package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// TestPeerCloseEchoed: a close frame with a code that may be sent is
// answered with the same code, the read returns the peer's CloseError, and
// TCP ends. 1000 and 1001 match io.EOF; other codes do not.
func TestPeerCloseEchoed(t *testing.T) {
	codes := []StatusCode{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	for _, code := range codes {
		for _, sd := range bothSides(connConfig{}) {
			t.Run(fmt.Sprintf("%s/%d", sd.name, code), func(t *testing.T) {
				c, raw := sd.pair(t)
				raw.write(raw.fs().close(code, "reason ü"))
				_, _, err := c.Read(testCtx(t))
				wantCloseError(t, err, code, "reason ü")
				if got, want := errors.Is(err, io.EOF), code == 1000 || code == 1001; got != want {
					t.Errorf("errors.Is(%v, io.EOF) = %v, want %v", err, got, want)
				}
				f := raw.expectClose(code)
				if f.masked != sd.client {
					t.Errorf("close frame masked=%v on the %s side", f.masked, sd.name)
				}
				// Sticky, and Close after it is a no-op.
				_, err = c.Next(testCtx(t))
				wantCloseError(t, err, code, "reason ü")
				if err := c.Close(StatusNormalClosure, ""); err != nil {
					t.Errorf("Close after the peer's close: %v", err)
				}
			})
		}
	}
	// A close frame without a code is answered with an empty close frame
	// and reads as 1005.
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name+"/no code", func(t *testing.T) {
			c, raw := sd.pair(t)
			raw.write(raw.fs().msg(opClose, ""))
			_, _, err := c.Read(testCtx(t))
			wantCloseError(t, err, StatusNoStatusRcvd, "")
			f := raw.expectClose(StatusNoStatusRcvd)
			if len(f.payload) != 0 {
				t.Errorf("echo payload %q, want empty", f.payload)
			}
		})
	}
}

// TestCloseHandshake: Close sends the code and reason, waits for the peer's
// close (reading by itself when nothing reads: data before the peer's close
// is discarded, a ping still gets its pong), closes TCP, and later reads
// return the peer's CloseError.
func TestCloseHandshake(t *testing.T) {
	for _, reader := range []bool{false, true} {
		for _, sd := range bothSides(connConfig{closeTimeout: testTimeout}) {
			t.Run(fmt.Sprintf("%s/concurrent reader=%v", sd.name, reader), func(t *testing.T) {
				c, raw := sd.pair(t)
				s := raw.fs()
				var readErr func() error
				if reader {
					readErr = goAsync(t, func() error {
						_, err := readAll(testCtx(t), c)
						return err
					})
				}
				closed := goAsync(t, func() error { return c.Close(StatusGoingAway, "see you") })
				f := raw.read()
				if f.op != opClose || f.closeCode() != StatusGoingAway || f.closeReason() != "see you" {
					t.Fatalf("got %v, want close 1001 \"see you\"", f)
				}
				raw.write(s.msg(opText, "late"), s.msg(opPing, "p"), s.close(4001, "peer bye"))
				if err := closed(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				// At most the pong, then TCP ends: no second close frame.
				for {
					f, err := raw.readErr()
					if err != nil {
						if !errors.Is(err, io.EOF) && !isReset(err) {
							t.Fatalf("after close: %v", err)
						}
						break
					}
					if f.op != opPong {
						t.Fatalf("frame after our close: %v", f)
					}
				}
				if reader {
					wantCloseError(t, readErr(), 4001, "peer bye")
				}
				_, err := c.Next(testCtx(t))
				wantCloseError(t, err, 4001, "peer bye")
				if err := c.Write(testCtx(t), Text, []byte("x")); err == nil {
					t.Error("Write after Close succeeded")
				}
			})
		}
	}
}

// TestCloseTimeout: a peer that never answers the close frame is cut off
// after the close timeout, with or without a concurrent reader.
func TestCloseTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	for _, reader := range []bool{false, true} {
		for _, sd := range bothSides(connConfig{closeTimeout: timeout}) {
			t.Run(fmt.Sprintf("%s/concurrent reader=%v", sd.name, reader), func(t *testing.T) {
				c, raw := sd.pair(t)
				var readErr func() error
				if reader {
					readErr = goAsync(t, func() error {
						_, err := readAll(testCtx(t), c)
						return err
					})
				}
				start := time.Now()
				closed := goAsync(t, func() error { return c.Close(StatusNormalClosure, "") })
				raw.expectClose(StatusNormalClosure) // close frame, then TCP ends
				if err := closed(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				if d := time.Since(start); d < timeout/2 {
					t.Errorf("Close returned after %v, before the close timeout %v", d, timeout)
				}
				for _, err := range []error{readErrOrNil(readErr), nextErr(t, c)} {
					if err == nil && readErr == nil {
						continue
					}
					if err == nil || errors.Is(err, io.EOF) {
						t.Errorf("read after a close the peer never answered: %v", err)
					}
				}
			})
		}
	}
}

func readErrOrNil(f func() error) error {
	if f == nil {
		return nil
	}
	return f()
}

func nextErr(t *testing.T, c *Conn) error {
	_, err := c.Next(testCtx(t))
	return err
}

// TestCloseNow closes TCP at once, without a close frame; blocked reads end.
func TestCloseNow(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			readErr := goAsync(t, func() error {
				_, err := readAll(testCtx(t), c)
				return err
			})
			time.Sleep(10 * time.Millisecond) // let the read block
			if err := c.CloseNow(); err != nil {
				t.Fatalf("CloseNow: %v", err)
			}
			raw.expectEOF()
			if err := readErr(); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("read after CloseNow: %v, want net.ErrClosed", err)
			}
			if err := c.Write(testCtx(t), Binary, nil); !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Write after CloseNow: %v, want net.ErrClosed", err)
			}
			if err := c.CloseNow(); err != nil {
				t.Fatalf("second CloseNow: %v", err)
			}
			if err := c.Close(StatusNormalClosure, ""); err != nil {
				t.Fatalf("Close after CloseNow: %v", err)
			}
		})
	}
}

// TestCloseConcurrent calls Close and CloseNow from many goroutines at once,
// with a reader, against a peer that answers or not: every call returns, at
// most one close frame goes out, TCP ends.
func TestCloseConcurrent(t *testing.T) {
	for _, answer := range []bool{false, true} {
		for _, sd := range bothSides(connConfig{closeTimeout: 300 * time.Millisecond}) {
			t.Run(fmt.Sprintf("%s/peer answers=%v", sd.name, answer), func(t *testing.T) {
				c, raw := sd.pair(t)
				readErr := goAsync(t, func() error {
					_, err := readAll(testCtx(t), c)
					return err
				})
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i := range 24 {
					wg.Go(func() {
						<-start
						switch i % 3 {
						case 0:
							c.Close(StatusNormalClosure, "")
						case 1:
							c.Close(StatusGoingAway, "g")
						case 2:
							if i > 12 {
								c.CloseNow()
							}
							c.Ping(testCtx(t)) // must not hang once the conn is closed
						}
					})
				}
				close(start)
				closes := 0
				for {
					f, err := raw.readErr()
					if err != nil {
						break
					}
					if f.op != opClose {
						if f.op == opPing {
							continue
						}
						t.Fatalf("unexpected frame %v", f)
					}
					closes++
					if answer {
						raw.nc.Write(raw.fs().close(f.closeCode(), "ok"))
					}
				}
				if closes > 1 {
					t.Fatalf("%d close frames on the wire", closes)
				}
				done := make(chan struct{})
				go func() { wg.Wait(); close(done) }()
				select {
				case <-done:
				case <-time.After(testTimeout):
					t.Fatal("Close/CloseNow/Ping calls did not return")
				}
				if err := readErr(); err == nil {
					t.Fatal("reader ended without an error")
				}
			})
		}
	}
}

// TestCloseArguments: codes that may not be sent are refused without
// closing; 1005 sends an empty close frame; a long reason is cut on a rune
// boundary to fit the control frame.
func TestCloseArguments(t *testing.T) {
	c, raw := serverPair(t, &AcceptOptions{CloseTimeout: 200 * time.Millisecond})
	for _, code := range []StatusCode{0, 999, 1004, 1006, 1015, 2000, 5000} {
		if err := c.Close(code, ""); err == nil {
			t.Errorf("Close(%d) succeeded", code)
		}
	}
	if err := c.Close(StatusNormalClosure, "\xff"); err == nil {
		t.Error("Close with an invalid UTF-8 reason succeeded")
	}
	// Still open.
	if err := c.Write(testCtx(t), Text, []byte("open")); err != nil {
		t.Fatal(err)
	}
	raw.expectFrame(true, opText, "open")

	reason := strings.Repeat("é", 100) // 200 bytes
	closed := goAsync(t, func() error { return c.Close(4321, reason) })
	f := raw.read()
	if f.op != opClose || f.closeCode() != 4321 {
		t.Fatalf("got %v", f)
	}
	got := f.closeReason()
	if len(f.payload) > maxControlPayload || !utf8.ValidString(got) || !strings.HasPrefix(reason, got) || len(got) < maxCloseReason-1 {
		t.Fatalf("reason cut to %d bytes %q", len(got), got)
	}
	raw.write(raw.fs().msg(opClose, ""))
	if err := closed(); err != nil {
		t.Fatal(err)
	}
	_, err := c.Next(testCtx(t))
	wantCloseError(t, err, StatusNoStatusRcvd, "")

	c2, raw2 := clientPair(t, &DialOptions{CloseTimeout: 200 * time.Millisecond})
	closed = goAsync(t, func() error { return c2.Close(StatusNoStatusRcvd, "ignored") })
	if f := raw2.read(); f.op != opClose || len(f.payload) != 0 {
		t.Fatalf("Close(1005) sent %v, want an empty close frame", f)
	}
	raw2.write(raw2.fs().close(1000, ""))
	if err := closed(); err != nil {
		t.Fatal(err)
	}
}

// TestCloseBetweenFragments: a close frame passes between the fragments of
// a message being written; after it the writer fails.
func TestCloseBetweenFragments(t *testing.T) {
	for _, sd := range bothSides(connConfig{closeTimeout: testTimeout}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			w, err := c.Writer(ctx, Text)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("part")); err != nil {
				t.Fatal(err)
			}
			raw.expectFrame(false, opText, "part")
			closed := goAsync(t, func() error { return c.Close(StatusNormalClosure, "mid") })
			f := raw.read()
			if f.op != opClose || f.closeReason() != "mid" {
				t.Fatalf("got %v, want the close frame while the message is open", f)
			}
			raw.write(raw.fs().close(StatusNormalClosure, ""))
			if err := closed(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("more")); err == nil {
				t.Error("Write after the close frame succeeded")
			}
			w.Close()
			// The message lock is free again: other writes fail fast instead of hanging.
			if err := c.Write(ctx, Text, []byte("x")); err == nil {
				t.Error("Write after Close succeeded")
			}
			raw.expectEOF()
		})
	}
}

// TestPeerCloseWhileWriting: the peer's close is echoed even while a
// message is being written, and the writer then fails.
func TestPeerCloseWhileWriting(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx := testCtx(t)
			w, err := c.Writer(ctx, Binary)
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte{1})
			raw.write(raw.fs().close(3003, "x"))
			_, _, err = c.Read(ctx)
			wantCloseError(t, err, 3003, "x")
			raw.expectFrame(false, opBinary, "\x01")
			raw.expectClose(3003)
			if _, err := w.Write([]byte{2}); err == nil {
				t.Error("Write after the close handshake succeeded")
			}
			if err := w.Close(); err == nil {
				t.Error("final frame after the close handshake succeeded")
			}
		})
	}
}

// TestCloseAfterReaderLeaves: Close called while a reader is blocked, whose
// ctx then ends: Close takes over the reading and returns as soon as the
// peer answers, not at the close timeout.
func TestCloseAfterReaderLeaves(t *testing.T) {
	for _, sd := range bothSides(connConfig{closeTimeout: 2 * testTimeout}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			readErr := goAsync(t, func() error {
				_, _, err := c.Read(ctx)
				return err
			})
			waitFor(t, "the read to start", func() bool {
				if c.readMu.TryLock() {
					c.readMu.Unlock()
					return false
				}
				return true
			})
			start := time.Now()
			closed := goAsync(t, func() error { return c.Close(StatusGoingAway, "") })
			f := raw.read()
			if f.op != opClose {
				t.Fatalf("got %v", f)
			}
			cancel()
			if err := readErr(); !errors.Is(err, context.Canceled) {
				t.Fatalf("read: %v", err)
			}
			raw.write(raw.fs().close(StatusGoingAway, "ack"))
			if err := closed(); err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > testTimeout/2 {
				t.Fatalf("Close took %v with a peer that answered at once", d)
			}
			raw.expectEOF()
			_, err := c.Next(testCtx(t))
			wantCloseError(t, err, StatusGoingAway, "ack")
		})
	}
}

// TestCloseWhileWriteBlocked: Close while a large frame is stuck on a peer
// that does not read: the close frame cannot go out, but Close still ends
// within the close timeout and closes TCP, and the blocked write returns.
func TestCloseWhileWriteBlocked(t *testing.T) {
	for _, sd := range bothSides(connConfig{closeTimeout: 200 * time.Millisecond}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			wrote := goAsync(t, func() error { return c.Write(testCtx(t), Binary, make([]byte, 64<<20)) })
			waitFor(t, "the write to hold the frame lock", func() bool { return c.wl.isHeld(lockFrame) })
			start := time.Now()
			c.Close(StatusNormalClosure, "") // an error is fine: the close frame could not be sent
			if d := time.Since(start); d > testTimeout/2 {
				t.Fatalf("Close took %v", d)
			}
			if err := wrote(); err == nil {
				t.Fatal("the blocked Write succeeded")
			}
			if !c.isClosed() {
				t.Fatal("TCP not closed")
			}
			raw.nc.Close()
		})
	}
}
