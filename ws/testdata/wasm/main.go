//go:build js && wasm

// Command wasm is the program that TestBrowserWasm (dial_browser_test.go)
// runs in headless Chromium: it dials the test's server with ws.Dial, over
// the browser's WebSocket, and posts to /result one line per step, "ok
// name" or "FAIL name: why".
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall/js"
	"time"

	"github.com/wesos/wesos/ws"
)

// notes are figures for the report.
var notes []string

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	loc := js.Global().Get("location")
	base := "ws://" + loc.Get("host").String()
	var report strings.Builder
	for _, s := range []struct {
		name string
		run  func(ctx context.Context, base string) error
	}{
		{"echo", echo},
		{"options", options},
		{"refused", refused},
		{"server-close", serverClose},
		{"read-limit", readLimit},
		{"close-code", closeCode},
		{"close-now", closeNow},
		{"deflate", deflate},
		{"netconn", netConn},
		{"timing", timing},
	} {
		if err := s.run(ctx, base); err != nil {
			fmt.Fprintf(&report, "FAIL %s: %v\n", s.name, err)
		} else {
			fmt.Fprintf(&report, "ok %s\n", s.name)
		}
	}
	for _, n := range notes {
		fmt.Fprintf(&report, "note: %s\n", n)
	}
	fmt.Print(report.String()) // to the console, for a failing test's log
	resp, err := http.Post(loc.Get("origin").String()+"/result", "text/plain", strings.NewReader(report.String()))
	if err != nil {
		fmt.Println("posting the result:", err)
		return
	}
	resp.Body.Close()
}

// echo sends messages of every kind and size, through every API, to the
// echo server, and checks what comes back.
func echo(ctx context.Context, base string) error {
	c, resp, err := ws.Dial(ctx, base+"/echo?id=main", &ws.DialOptions{Subprotocols: []string{"nope.v0", "echo.v1"}})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if c.Subprotocol() != "echo.v1" || resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Protocol") != "echo.v1" {
		return fmt.Errorf("subprotocol %q, response %d %v", c.Subprotocol(), resp.StatusCode, resp.Header)
	}
	roundTrip := func(what string, typ ws.MessageType, p []byte) error {
		if err := c.Write(ctx, typ, p); err != nil {
			return fmt.Errorf("%s: write: %w", what, err)
		}
		return expect(ctx, c, what, typ, p)
	}
	large := make([]byte, 200<<10)
	for i := range large {
		large[i] = byte(i * 7)
	}
	text := []byte(strings.Repeat("héllo, 世界 ", 10<<10)) // 150 KiB
	for _, m := range []struct {
		what string
		typ  ws.MessageType
		p    []byte
	}{
		{"short text", ws.Text, []byte("hello, 世界")},
		{"short binary", ws.Binary, []byte{0, 1, 2, 255}},
		{"empty binary", ws.Binary, []byte{}},
		{"200 KiB binary", ws.Binary, large},
		{"150 KiB text", ws.Text, text},
	} {
		if err := roundTrip(m.what, m.typ, m.p); err != nil {
			return err
		}
	}

	// A text message streamed in fragments, a rune cut between two of
	// them, arrives as one message.
	w, err := c.Writer(ctx, ws.Text)
	if err != nil {
		return err
	}
	é := []byte("é")
	for _, part := range [][]byte{[]byte("streamed, "), {'c', 'a', 'f', é[0]}, {é[1], ' ', 'o', 'k'}} {
		if _, err := w.Write(part); err != nil {
			return fmt.Errorf("streamed text: %w", err)
		}
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := expect(ctx, c, "streamed text", ws.Text, []byte("streamed, café ok")); err != nil {
		return err
	}
	// A binary one copied in (ReadFrom), larger than 64 KiB.
	if w, err = c.Writer(ctx, ws.Binary); err != nil {
		return err
	}
	if _, err := io.Copy(w, bytes.NewReader(large[:150<<10])); err != nil {
		return fmt.Errorf("streamed binary: %w", err)
	}
	if err := w.Close(); err != nil {
		return err
	}
	if err := expect(ctx, c, "streamed binary", ws.Binary, large[:150<<10]); err != nil {
		return err
	}

	// Send and Next, Reader.
	if err := c.Send(ctx, ws.Message{Type: ws.Binary, Body: bytes.NewReader(large[:70<<10])}); err != nil {
		return err
	}
	m, err := c.Next(ctx)
	if err != nil {
		return err
	}
	if got, err := io.ReadAll(m.Body); err != nil || m.Type != ws.Binary || !bytes.Equal(got, large[:70<<10]) {
		return fmt.Errorf("Send/Next: %v %d bytes, %v", m.Type, len(got), err)
	}
	if err := c.Write(ctx, ws.Text, []byte("by Reader")); err != nil {
		return err
	}
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return err
	}
	if got, err := io.ReadAll(r); err != nil || typ != ws.Text || string(got) != "by Reader" {
		return fmt.Errorf("Reader: %v %q, %v", typ, got, err)
	}

	// A burst, in order.
	for i := range 100 {
		if err := c.Write(ctx, ws.Text, fmt.Appendf(nil, "burst %d", i)); err != nil {
			return err
		}
	}
	for i := range 100 {
		if err := expect(ctx, c, "burst", ws.Text, fmt.Appendf(nil, "burst %d", i)); err != nil {
			return err
		}
	}

	// A read cut short by its context leaves the connection usable.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	_, _, err = c.Read(short)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("read with a 50 ms context and nothing to read: %v", err)
	}
	if err := roundTrip("after a timed-out read", ws.Text, []byte("still here")); err != nil {
		return err
	}

	// What the browser cannot do.
	if err := c.Ping(ctx); !errors.Is(err, ws.ErrUnsupported) || !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("Ping: %v, want ws.ErrUnsupported", err)
	}
	if err := roundTrip("after Ping", ws.Text, []byte("still here")); err != nil {
		return err
	}
	return c.Close(4000, "bye")
}

// expect reads a message and checks it.
func expect(ctx context.Context, c *ws.Conn, what string, typ ws.MessageType, want []byte) error {
	gotType, got, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("%s: read: %w", what, err)
	}
	if gotType != typ || !bytes.Equal(got, want) {
		return fmt.Errorf("%s: got %v of %d bytes, want %v of %d bytes", what, gotType, len(got), typ, len(want))
	}
	return nil
}

// options: the DialOptions the browser cannot honour fail Dial.
func options(ctx context.Context, base string) error {
	for _, o := range []*ws.DialOptions{
		{HTTPHeader: http.Header{"Authorization": {"Bearer x"}}},
		{KeepAlive: time.Second},
		{OnPing: func([]byte) {}},
		{Compression: &ws.CompressionOptions{}},
	} {
		c, _, err := ws.Dial(ctx, base+"/echo?id=options", o)
		if err == nil {
			c.CloseNow()
			return fmt.Errorf("Dial with %+v succeeded", o)
		}
		if !errors.Is(err, ws.ErrUnsupported) {
			return fmt.Errorf("Dial with %+v: %v, want ws.ErrUnsupported", o, err)
		}
	}
	return nil
}

// refused: a handshake the server refuses fails Dial.
func refused(ctx context.Context, base string) error {
	c, _, err := ws.Dial(ctx, base+"/nowhere", nil)
	if err == nil {
		c.CloseNow()
		return errors.New("Dial of a 404 succeeded")
	}
	var ce ws.CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusAbnormalClosure {
		return fmt.Errorf("Dial of a 404: %v, want a CloseError 1006", err)
	}
	return nil
}

// serverClose: the server's close code and reason reach the reader.
func serverClose(ctx context.Context, base string) error {
	c, _, err := ws.Dial(ctx, base+"/closer", nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	var ce ws.CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "done" {
		return fmt.Errorf("read: %v, want the server's close 4001 \"done\"", err)
	}
	return nil
}

// readLimit: a message over the read limit fails the connection with 1009.
func readLimit(ctx context.Context, base string) error {
	c, _, err := ws.Dial(ctx, base+"/big", &ws.DialOptions{ReadLimit: 1000})
	if err != nil {
		return err
	}
	defer c.CloseNow()
	_, _, err = c.Read(ctx)
	var pe *ws.ProtocolError
	if !errors.As(err, &pe) || pe.Code != ws.StatusMessageTooBig {
		return fmt.Errorf("read of 2000 bytes with a limit of 1000: %v, want a ProtocolError 1009", err)
	}
	return nil
}

// closeCode: a close code the browser does not send is an error, and the
// connection closes without a code.
func closeCode(ctx context.Context, base string) error {
	c, _, err := ws.Dial(ctx, base+"/echo?id=going-away", nil)
	if err != nil {
		return err
	}
	if err := c.Close(ws.StatusGoingAway, ""); !errors.Is(err, ws.ErrUnsupported) {
		return fmt.Errorf("Close(1001): %v, want ws.ErrUnsupported", err)
	}
	if err := c.Write(ctx, ws.Text, []byte("x")); err == nil {
		return errors.New("write after Close succeeded")
	}
	return nil
}

// closeNow: CloseNow closes at once (the browser sends a close frame
// without a code).
func closeNow(ctx context.Context, base string) error {
	c, _, err := ws.Dial(ctx, base+"/echo?id=close-now", nil)
	if err != nil {
		return err
	}
	if err := roundTrip1(ctx, c); err != nil {
		return err
	}
	return c.CloseNow()
}

// deflate: the browser negotiates permessage-deflate by itself, with a
// server that accepts it.
func deflate(ctx context.Context, base string) error {
	c, resp, err := ws.Dial(ctx, base+"/echo?id=deflate&deflate=1", nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.Contains(ext, "permessage-deflate") {
		return fmt.Errorf("extensions %q, want permessage-deflate", ext)
	}
	text := []byte(strings.Repeat("compressible text, ", 5000))
	if err := c.Write(ctx, ws.Text, text); err != nil {
		return err
	}
	if err := expect(ctx, c, "compressed", ws.Text, text); err != nil {
		return err
	}
	return c.Close(ws.StatusNormalClosure, "")
}

// netConn: a byte stream over the connection, with NetConn.
func netConn(ctx context.Context, base string) error {
	c, _, err := ws.Dial(ctx, base+"/echo?id=netconn", nil)
	if err != nil {
		return err
	}
	nc := ws.NetConn(ctx, c, ws.Binary)
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(nc, "line one\nline "); err != nil {
		return err
	}
	if _, err := io.WriteString(nc, "two\n"); err != nil {
		return err
	}
	got := make([]byte, len("line one\nline two\n"))
	if _, err := io.ReadFull(nc, got); err != nil || string(got) != "line one\nline two\n" {
		return fmt.Errorf("read %q, %v", got, err)
	}
	return nil
}

// timing measures round trips and a large echo (the figures go to the
// report; only errors fail the step).
func timing(ctx context.Context, base string) error {
	c, _, err := ws.Dial(ctx, base+"/echo?id=timing", nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	small := []byte("0123456789abcdef")
	const rounds = 200
	start := time.Now()
	for range rounds {
		if err := c.Write(ctx, ws.Binary, small); err != nil {
			return err
		}
		if _, _, err := c.Read(ctx); err != nil {
			return err
		}
	}
	perRound := time.Since(start) / rounds
	large := make([]byte, 8<<20)
	start = time.Now()
	if err := c.Write(ctx, ws.Binary, large); err != nil {
		return err
	}
	if err := expect(ctx, c, "8 MiB", ws.Binary, large); err != nil {
		return err
	}
	notes = append(notes, fmt.Sprintf("ws.Dial in wasm: %d round trips of 16 bytes: %v each; an 8 MiB echo: %v",
		rounds, perRound.Round(time.Microsecond), time.Since(start).Round(time.Millisecond)))
	return c.Close(ws.StatusNormalClosure, "")
}

func roundTrip1(ctx context.Context, c *ws.Conn) error {
	if err := c.Write(ctx, ws.Binary, []byte("one")); err != nil {
		return err
	}
	return expect(ctx, c, "one", ws.Binary, []byte("one"))
}
