package ws

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// waitFor polls cond every few milliseconds until it holds or testTimeout
// passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestServerLifecycle drives a Server with raw clients: the handler runs per
// connection, its return closes the connection with 1000, a broadcast
// reaches every connection, Shutdown sends 1001 and waits for the handlers,
// and requests after it get 503; a bad handshake gets its status.
func TestServerLifecycle(t *testing.T) {
	handlerErrs := make(chan error, 4)
	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error {
		typ, b, err := c.Read(ctx)
		if err != nil {
			handlerErrs <- err
			return nil
		}
		if string(b) == "echo once" {
			handlerErrs <- c.Write(ctx, typ, b)
			return nil // the Server closes c with 1000
		}
		_, err = readAll(ctx, c) // until Shutdown's close
		handlerErrs <- err
		return nil
	}, &AcceptOptions{CloseTimeout: time.Second})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")

	// A handler that returns closes its connection with 1000.
	a := rawUpgrade(t, host)
	a.write(a.fs().msg(opText, "echo once"))
	a.expectFrame(true, opText, "echo once")
	if err := <-handlerErrs; err != nil {
		t.Fatal(err)
	}
	f := a.read()
	if f.op != opClose || f.closeCode() != StatusNormalClosure {
		t.Fatalf("got %v, want close 1000", f)
	}
	a.write(a.fs().close(StatusNormalClosure, ""))
	a.expectEOF()
	waitFor(t, "the connection to leave the server", func() bool { return srv.Len() == 0 })

	// A bad handshake through ServeHTTP.
	resp, _ := rawRequest(t, host, "POST /ws HTTP/1.1\r\nHost: "+host+"\r\nContent-Length: 0\r\n\r\n")
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %s", resp.Status)
	}

	// Broadcast to two connections, then shut down.
	b, c := rawUpgrade(t, host), rawUpgrade(t, host)
	b.write(b.fs().msg(opText, "stay"))
	c.write(c.fs().msg(opText, "stay"))
	waitFor(t, "two connections", func() bool { return srv.Len() == 2 })
	if err := srv.Send(testCtx(t), Message{Type: Binary, Body: strings.NewReader("news")}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*rawConn{b, c} {
		if op, p := r.readMessage(); op != opBinary || p != "news" {
			t.Fatalf("broadcast arrived as %#x %q", byte(op), p)
		}
	}

	shut := goAsync(t, func() error { return srv.Shutdown(testCtx(t)) })
	for _, r := range []*rawConn{b, c} {
		f := r.read()
		if f.op != opClose || f.closeCode() != StatusGoingAway {
			t.Fatalf("got %v, want close 1001", f)
		}
		r.write(r.fs().close(StatusGoingAway, ""))
	}
	if err := shut(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	for range 2 {
		// The handler's ctx ends with Shutdown; its read returns that or
		// the peer's answer to the 1001, whichever comes first.
		if err := <-handlerErrs; !errors.Is(err, context.Canceled) {
			wantCloseError(t, err, StatusGoingAway, "")
		}
	}
	b.expectEOF()
	c.expectEOF()
	if n := srv.Len(); n != 0 {
		t.Fatalf("Len() = %d after Shutdown", n)
	}
	resp, _ = rawRequest(t, host, upgradeRequest(host))
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("after Shutdown: %s %s", resp.Status, body)
	}
	if err := srv.Send(testCtx(t), Message{Type: Text, Body: strings.NewReader("late")}); err != ErrServerClosed {
		t.Fatalf("Send after Shutdown: %v", err)
	}
}

// TestServerListDepartures checks the bookkeeping of departed connections:
// a finished handler's peer leaves broadcasts at once, the list is compacted
// once half of it has gone (so it stays within twice the live connections
// without a copy per departure), and a broadcast after many departures
// reaches exactly the connections that remain.
func TestServerListDepartures(t *testing.T) {
	const total, leave = 24, 18
	quit := make(chan struct{}, total)
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		select {
		case <-quit: // the handler returns: the Server closes c
		case <-ctx.Done():
		}
		return nil
	}, &AcceptOptions{CloseTimeout: 100 * time.Millisecond}) // the raw clients never answer a close
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	host := strings.TrimPrefix(hs.URL, "http://")
	conns := make([]*rawConn, total)
	for i := range conns {
		conns[i] = rawUpgrade(t, host)
	}
	waitFor(t, "every connection to be listed", func() bool { return srv.Len() == total })
	for i := range leave {
		quit <- struct{}{}
		waitFor(t, "a handler to finish", func() bool { return srv.Len() == total-i-1 })
		live := total - i - 1
		srv.fan.mu.Lock()
		n, gone, flagged := len(srv.fan.list), srv.fan.gone, 0
		for _, p := range srv.fan.list {
			if p.gone.Load() {
				flagged++
			}
		}
		srv.fan.mu.Unlock()
		if gone != flagged || n > 2*live+1 {
			t.Fatalf("after %d departures: list %d, gone %d (%d flagged), live %d", i+1, n, gone, flagged, live)
		}
	}
	// The departed connections got their close; the others get the
	// broadcast and nothing else.
	if err := srv.Send(testCtx(t), Message{Type: Text, Body: strings.NewReader("still here")}); err != nil {
		t.Fatal(err)
	}
	got := 0
	for _, raw := range conns {
		f := raw.read()
		switch {
		case f.op == opClose && f.closeCode() == StatusNormalClosure:
		case f.op == opText && string(f.payload) == "still here":
			got++
		default:
			t.Fatalf("unexpected %v", f)
		}
	}
	if got != total-leave {
		t.Fatalf("broadcast reached %d connections, want %d", got, total-leave)
	}
}

// TestRelayTextBreaksOnRune: a text message relayed as it streams whose
// source breaks off (here: a rune split across two frames, then invalid)
// reaches its receivers as valid UTF-8. The relay holds back the start of
// an unfinished rune until the next frame brings the rest, so a message
// that breaks off ends on a rune boundary, and one bad sender does not get
// every receiver's connection failed with 1007.
func TestRelayTextBreaksOnRune(t *testing.T) {
	split := func(raw *rawConn) {
		fs := raw.fs()
		raw.write(fs.frame(false, opText, []byte("hello \xe2\x82")).bytes())
		time.Sleep(20 * time.Millisecond) // the first frame goes on alone
		raw.write(fs.frame(true, opContinuation, []byte("A")).bytes())
	}
	opts := &AcceptOptions{CloseTimeout: 100 * time.Millisecond}

	t.Run("Conn.Send", func(t *testing.T) {
		srv := NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) }, opts)
		hs := httptest.NewServer(srv)
		defer hs.Close()
		defer srv.Shutdown(context.Background())
		raw := rawUpgrade(t, strings.TrimPrefix(hs.URL, "http://"))
		split(raw)
		raw.expectFrame(false, opText, "hello ") // not "hello \xe2\x82"
		if f := raw.read(); f.op != opClose || f.closeCode() != StatusInvalidFramePayloadData {
			t.Fatalf("got %v, want the sender's connection closed with 1007", f)
		}
	})

	t.Run("Server.Send", func(t *testing.T) {
		var srv *Server
		srv = NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, srv, c) }, opts)
		hs := httptest.NewServer(srv)
		defer hs.Close()
		defer srv.Shutdown(context.Background())
		host := strings.TrimPrefix(hs.URL, "http://")
		receiver := rawUpgrade(t, host)
		sender := rawUpgrade(t, host)
		waitFor(t, "both to be listed", func() bool { return srv.Len() == 2 })
		split(sender)
		op, msg := receiver.readMessage()
		if op != opText || msg != "hello " {
			t.Fatalf("the receiver got %#x %q, want the text %q", byte(op), msg, "hello ")
		}
	})
}

// TestBroadcastStall: a sender that stops in the middle of a message holds
// up every broadcast after it (receivers get messages whole and in order),
// so after StallTimeout the message is ended for its receivers and the
// sender is failed with 1008; a slow sender that keeps sending is not.
func TestBroadcastStall(t *testing.T) {
	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, srv, c) },
		&AcceptOptions{Broadcast: &GroupOptions{StallTimeout: 300 * time.Millisecond}, CloseTimeout: 100 * time.Millisecond})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	host := strings.TrimPrefix(hs.URL, "http://")
	receiver, slow, staller, other := rawUpgrade(t, host), rawUpgrade(t, host), rawUpgrade(t, host), rawUpgrade(t, host)
	waitFor(t, "every connection to be listed", func() bool { return srv.Len() == 4 })

	// A slow sender: a frame every 100 ms, each within the stall timeout.
	fs := slow.fs()
	for i := range 5 {
		op := opContinuation
		if i == 0 {
			op = opText
		}
		slow.write(fs.frame(i == 4, op, []byte{'a' + byte(i)}).bytes())
		time.Sleep(100 * time.Millisecond)
	}
	if op, msg := receiver.readMessage(); op != opText || msg != "abcde" {
		t.Fatalf("the slow sender's message arrived as %#x %q", byte(op), msg)
	}

	// A sender that stalls mid-message, and a message sent after it.
	staller.write(staller.fs().frame(false, opText, []byte("part")).bytes())
	time.Sleep(50 * time.Millisecond) // the stalled message starts first
	start := time.Now()
	other.write(other.fs().msg(opText, "after"))
	if op, msg := receiver.readMessage(); op != opText || msg != "part" {
		t.Fatalf("the stalled message arrived as %#x %q, want it cut short to %q", byte(op), msg, "part")
	}
	if op, msg := receiver.readMessage(); op != opText || msg != "after" {
		t.Fatalf("the next message arrived as %#x %q", byte(op), msg)
	}
	if waited := time.Since(start); waited < 200*time.Millisecond {
		t.Fatalf("the stalled message ended after %v, before the stall timeout", waited)
	}
	for {
		f := staller.read()
		if f.op == opClose {
			if f.closeCode() != StatusPolicyViolation {
				t.Fatalf("the staller got close %v, want 1008", f.closeCode())
			}
			break
		}
	}
}
