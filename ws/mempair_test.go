package ws

import (
	"errors"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/wesos/wesos"
)

// memPair returns a client and a server Conn joined by an in-memory pipe
// (net.Pipe), with no handshake and no socket: the transport's portable
// path, for fast tests of the protocol. net.Pipe is synchronous (a write
// waits for the peer's read), so each side that writes needs its peer
// reading: run one side in a goroutine.
func memPair(t testing.TB, cfg connConfig) (client, server *Conn) {
	t.Helper()
	a, b := net.Pipe()
	client = newConn(a, true, "", cfg, nil, nil)
	server = newConn(b, false, "", cfg, nil, nil)
	t.Cleanup(func() {
		client.CloseNow()
		server.CloseNow()
	})
	return client, server
}

// TestMemPair: over the in-memory pair, an echo server (Pipe(c, c)) answers
// streamed and whole messages, a stale Body fails, and the close handshake
// ends both sides with the code chosen.
func TestMemPair(t *testing.T) {
	client, server := memPair(t, connConfig{})
	ctx := testCtx(t)
	echoed := goAsync(t, func() error { return wesos.Pipe(ctx, server, server) })

	if err := client.Write(ctx, Text, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if typ, p, err := client.Read(ctx); err != nil || typ != Text || string(p) != "hello" {
		t.Fatalf("Read: %v %q %v", typ, p, err)
	}

	// A streamed message, larger than a read buffer.
	big := strings.Repeat("0123456789abcdef", 1<<10)
	w, err := client.Writer(ctx, Binary)
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		m   Message
		err error
	}
	read := goAsync(t, func() got {
		m, err := client.Next(ctx)
		if err != nil {
			return got{err: err}
		}
		b, err := io.ReadAll(m.Body)
		if err == nil && string(b) != big+big {
			err = errors.New("streamed echo differs")
		}
		return got{m, err}
	})
	for range 2 {
		if _, err := io.WriteString(w, big); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r := read()
	if r.err != nil {
		t.Fatal(r.err)
	}

	// The close handshake, the client reading; after it, the Body of the
	// last message is stale.
	next := goAsync(t, func() error { _, err := client.Next(ctx); return err })
	if err := server.Close(StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	wantCloseError(t, next(), StatusNormalClosure, "done")
	if _, err := r.m.Body.Read(make([]byte, 1)); !errors.Is(err, errStaleBody) {
		t.Fatalf("stale Body read: %v", err)
	}
	var ce CloseError
	if err := echoed(); !errors.As(err, &ce) && err != nil {
		t.Fatalf("echo: %v", err)
	}
}
