package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wesos/wesos/internal/extest"
	"github.com/wesos/wesos/ws"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startEcho serves the echo server on 127.0.0.1:0, in-process, until the
// test ends, and returns its URL.
func startEcho(t *testing.T, limit int64) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ws.Serve(ctx, ws.HTTPServer(newEcho(limit, true)), ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "ws://" + ln.Addr().String()
}

func dial(t *testing.T, ctx context.Context, url string) *ws.Conn {
	t.Helper()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// payload returns n bytes of valid UTF-8 that differ from one size to the
// next.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte((i*7+n)%26)
	}
	return b
}

// roundTrip sends one message with send, reads one back and checks it.
func roundTrip(t *testing.T, ctx context.Context, c *ws.Conn, typ ws.MessageType, want []byte, send func() error) {
	t.Helper()
	sent := make(chan error, 1)
	go func() { sent <- send() }() // the echo streams back while we write
	gotType, got, err := c.Read(ctx)
	if err := <-sent; err != nil {
		t.Fatalf("send: %v", err)
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gotType != typ || !bytes.Equal(got, want) {
		t.Fatalf("got %v of %d bytes, want %v of %d bytes", gotType, len(got), typ, len(want))
	}
}

func TestEcho(t *testing.T) {
	ctx := extest.Context(t)
	c := dial(t, ctx, startEcho(t, 64<<20))

	// Sizes around the frame-length encodings (125/126, 65535/65536) and a
	// large one, in both types.
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 1 << 20} {
		for _, typ := range []ws.MessageType{ws.Text, ws.Binary} {
			p := payload(n)
			t.Run(fmt.Sprintf("%v/%d", typ, n), func(t *testing.T) {
				roundTrip(t, ctx, c, typ, p, func() error { return c.Write(ctx, typ, p) })
			})
		}
	}

	// A message written in fragments comes back whole, with its type.
	for _, typ := range []ws.MessageType{ws.Text, ws.Binary} {
		parts := []string{"frag", "ment", "ed ", strings.Repeat("x", 70000), " end"}
		roundTrip(t, ctx, c, typ, []byte(strings.Join(parts, "")), func() error {
			w, err := c.Writer(ctx, typ)
			if err != nil {
				return err
			}
			for _, p := range parts {
				if _, err := w.Write([]byte(p)); err != nil {
					return err
				}
			}
			return w.Close()
		})
	}

	if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}

// TestReadLimit: a message over -limit ends the connection with 1009.
func TestReadLimit(t *testing.T) {
	ctx := extest.Context(t)
	c := dial(t, ctx, startEcho(t, 1024))
	roundTrip(t, ctx, c, ws.Binary, payload(1024), func() error { return c.Write(ctx, ws.Binary, payload(1024)) })

	c.Write(ctx, ws.Binary, payload(1025)) // may fail: the server closes meanwhile
	_, _, err := c.Read(ctx)
	var ce ws.CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusMessageTooBig {
		t.Fatalf("got %v, want a close with 1009", err)
	}
}

// TestBinary runs the real program, talks to it and stops it with Ctrl-C;
// then runs it with -no-compress, which refuses permessage-deflate.
func TestBinary(t *testing.T) {
	ctx := extest.Context(t)
	bin := extest.Build(t)
	p := extest.Start(t, bin, nil, "-addr", "127.0.0.1:0")
	url := p.AwaitStderr(t, regexp.MustCompile(`url=(ws://127\.0\.0\.1:\d+)`))[1]
	c := dial(t, ctx, url)
	roundTrip(t, ctx, c, ws.Text, []byte("héllo"), func() error { return c.Write(ctx, ws.Text, []byte("héllo")) })

	p.Interrupt(t)
	_, _, err := c.Read(ctx)
	var ce ws.CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusGoingAway {
		t.Fatalf("got %v, want a close with 1001", err)
	}
	if code := p.Wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if !strings.Contains(p.Stderr(), "echo server stopped") {
		t.Errorf("stderr lacks the shutdown:\n%s", p.Stderr())
	}

	wantCompression(t, ctx, bin, "", true)
	wantCompression(t, ctx, bin, "-no-compress", false)
}

// wantCompression runs the program with flag (none if "") and checks
// whether a client that offers permessage-deflate gets it.
func wantCompression(t *testing.T, ctx context.Context, bin, flag string, want bool) {
	t.Helper()
	args := []string{"-addr", "127.0.0.1:0"}
	if flag != "" {
		args = append(args, flag)
	}
	p := extest.Start(t, bin, nil, args...)
	url := p.AwaitStderr(t, regexp.MustCompile(`url=(ws://127\.0\.0\.1:\d+)`))[1]
	c, resp, err := ws.Dial(ctx, url, &ws.DialOptions{Compression: &ws.CompressionOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	got := strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
	if got != want {
		t.Errorf("with %q: permessage-deflate negotiated %v, want %v", flag, got, want)
	}
	roundTrip(t, ctx, c, ws.Text, []byte("héllo"), func() error { return c.Write(ctx, ws.Text, []byte("héllo")) })
	c.Close(ws.StatusNormalClosure, "")
	p.Interrupt(t)
	if code := p.Wait(t); code != 0 {
		t.Fatalf("with %q: exit code %d, want 0", flag, code)
	}
}

// TestSubprotocol: a client that offers subprotocols gets the first one;
// one that offers none gets none.
func TestSubprotocol(t *testing.T) {
	ctx := extest.Context(t)
	url := startEcho(t, 64<<20)
	for _, offer := range [][]string{{"wamp.2.json", "chat"}, {"chat"}, nil} {
		c, _, err := ws.Dial(ctx, url, &ws.DialOptions{Subprotocols: offer})
		if err != nil {
			t.Fatal(err)
		}
		want := ""
		if len(offer) > 0 {
			want = offer[0]
		}
		if got := c.Subprotocol(); got != want {
			t.Errorf("offered %q: subprotocol %q, want %q", offer, got, want)
		}
		roundTrip(t, ctx, c, ws.Text, []byte("hi"), func() error { return c.Write(ctx, ws.Text, []byte("hi")) })
		if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEchoCompressed: a client that offers permessage-deflate gets it, and
// messages of every size come back intact, compressed both ways.
func TestEchoCompressed(t *testing.T) {
	ctx := extest.Context(t)
	c, resp, err := ws.Dial(ctx, startEcho(t, 64<<20), &ws.DialOptions{Compression: &ws.CompressionOptions{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
		t.Fatalf("Sec-WebSocket-Extensions: %q, want permessage-deflate", ext)
	}
	for _, n := range []int{0, 100, 300, 70000, 1 << 20} {
		p := payload(n)
		roundTrip(t, ctx, c, ws.Text, p, func() error { return c.Write(ctx, ws.Text, p) })
	}
	if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}
