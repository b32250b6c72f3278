package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// logRecorder is a slog.Handler that keeps the records it is given.
type logRecorder struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logRecorder) WithGroup(string) slog.Handler            { return h }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// take returns the records kept so far and forgets them.
func (h *logRecorder) take() []slog.Record {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.records
	h.records = nil
	return r
}

// attr returns the value of the record's attribute key, or "".
func attr(r slog.Record, key string) string {
	v := ""
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value.String()
			return false
		}
		return true
	})
	return v
}

// codedError is an error of the handler's own that says its close code.
type codedError StatusCode

func (e codedError) Error() string    { return "coded " + StatusCode(e).String() }
func (e codedError) Code() StatusCode { return StatusCode(e) }

// TestHandlerErrorCloseCode checks, from a real client, the close code and
// reason a Server sends when its handler returns, and what goes to the
// error log: nothing for a clean end, the error otherwise.
func TestHandlerErrorCloseCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error // what the handler returns after the client's first message
		decode bool  // the handler decodes the message as JSON and returns that error instead
		code   StatusCode
		reason string
		level  slog.Level // of the logged error; unused when nothing is logged
		logged bool
	}{
		{name: "nil", code: StatusNormalClosure},
		{name: "EOF", err: io.EOF, code: StatusNormalClosure},
		{name: "wrapped EOF", err: fmt.Errorf("source ended: %w", io.EOF), code: StatusNormalClosure},
		{name: "CloseError 1000 with a reason", err: CloseError{StatusNormalClosure, "bye"}, code: StatusNormalClosure, reason: "bye"},
		{name: "CloseError 1001", err: CloseError{StatusGoingAway, "moving"}, code: StatusGoingAway, reason: "moving"},
		{name: "CloseError 4001", err: CloseError{4001, "not allowed"}, code: 4001, reason: "not allowed", level: slog.LevelInfo, logged: true},
		{name: "wrapped CloseError", err: fmt.Errorf("room: %w", CloseError{StatusPolicyViolation, "flood"}), code: StatusPolicyViolation, reason: "flood", level: slog.LevelInfo, logged: true},
		{name: "CloseError not for the wire", err: CloseError{Code: StatusAbnormalClosure}, code: StatusInternalError, reason: "internal error", level: slog.LevelInfo, logged: true},
		{name: "ProtocolError", err: &ProtocolError{StatusMessageTooBig, "too big"}, code: StatusMessageTooBig, reason: "too big", level: slog.LevelInfo, logged: true},
		{name: "DecodeError", err: fmt.Errorf("reading: %w", &DecodeError{errors.New("bad value")}), code: StatusInvalidFramePayloadData, reason: "cannot decode message: bad value", level: slog.LevelInfo, logged: true},
		{name: "Typed decode", decode: true, code: StatusInvalidFramePayloadData, reason: "cannot decode message: invalid character", level: slog.LevelInfo, logged: true},
		{name: "an error with a Code", err: fmt.Errorf("quota: %w", codedError(StatusTryAgainLater)), code: StatusTryAgainLater, reason: "try again later", level: slog.LevelInfo, logged: true},
		{name: "other error", err: errors.New("database is down"), code: StatusInternalError, reason: "internal error", level: slog.LevelError, logged: true},
		{name: "deadline", err: context.DeadlineExceeded, code: StatusInternalError, reason: "internal error", level: slog.LevelError, logged: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logs := &logRecorder{}
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				if tc.decode {
					_, err := JSON[int](c).Next(ctx)
					return err
				}
				if _, _, err := c.Read(ctx); err != nil {
					return err
				}
				return tc.err
			}, &AcceptOptions{ErrorLog: slog.New(logs)})
			hs := httptest.NewServer(srv)
			defer hs.Close()
			defer srv.Shutdown(context.Background())

			ctx := testCtx(t)
			c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if err := c.Write(ctx, Text, []byte("not json")); err != nil {
				t.Fatal(err)
			}
			_, _, err = c.Read(ctx)
			var ce CloseError
			if !errors.As(err, &ce) {
				t.Fatalf("read %v, want a CloseError", err)
			}
			if ce.Code != tc.code || !strings.HasPrefix(ce.Reason, tc.reason) || (tc.reason == "" && ce.Reason != "") {
				t.Fatalf("closed with %v %q, want %v %q", ce.Code, ce.Reason, tc.code, tc.reason)
			}
			// The error is logged before the close frame is sent.
			var failed []slog.Record
			for _, r := range logs.take() {
				if r.Message == "ws: handler failed" {
					failed = append(failed, r)
				}
			}
			switch {
			case !tc.logged && len(failed) != 0:
				t.Fatalf("logged %q for a clean end", attr(failed[0], "err"))
			case tc.logged && len(failed) != 1:
				t.Fatalf("%d handler errors logged, want 1", len(failed))
			case tc.logged:
				r := failed[0]
				if r.Level != tc.level || attr(r, "code") != fmt.Sprint(int(tc.code)) || attr(r, "err") == "" {
					t.Fatalf("logged %v code=%s err=%q, want level %v code %d", r.Level, attr(r, "code"), attr(r, "err"), tc.level, tc.code)
				}
			}
		})
	}
}

// TestHandlerErrorDuringShutdown checks that a handler that fails because
// Shutdown began (its ctx ended, or the broadcast refused) leaves its
// connection to Shutdown's 1001, and that its error is logged only at debug
// level.
func TestHandlerErrorDuringShutdown(t *testing.T) {
	logs := &logRecorder{}
	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error {
		<-ctx.Done()
		return ctx.Err()
	}, &AcceptOptions{ErrorLog: slog.New(logs)})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	ctx := testCtx(t)
	c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	waitFor(t, "the handler to start", func() bool { return srv.Len() == 1 })
	read := make(chan error, 1)
	go func() {
		_, _, err := c.Read(ctx)
		read <- err
	}()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var ce CloseError
	if err := <-read; !errors.As(err, &ce) || ce.Code != StatusGoingAway {
		t.Fatalf("read %v, want 1001", err)
	}
	for _, r := range logs.take() {
		if r.Message == "ws: handler failed" && r.Level != slog.LevelDebug {
			t.Fatalf("logged %v at %v during Shutdown, want debug", attr(r, "err"), r.Level)
		}
	}
}

// TestHandlerPanic checks that a handler's panic ends its connection with
// 1011, is logged with its stack, and leaves the program and the Server
// running (Shutdown returns), through ServeHTTP and through Serve.
func TestHandlerPanic(t *testing.T) {
	for _, hs := range handshakeServers {
		t.Run(hs.name, func(t *testing.T) {
			logs := &logRecorder{}
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				_, p, err := c.Read(ctx)
				if err != nil {
					return err
				}
				if string(p) == "panic" {
					panic("the handler's bug")
				}
				return c.Write(ctx, Text, p)
			}, &AcceptOptions{ErrorLog: slog.New(logs)})
			addr, stop := hs.start(t, srv)
			ctx := testCtx(t)
			for _, msg := range []string{"panic", "echo"} { // the second after the first's panic
				c, _, err := Dial(ctx, "ws://"+addr, nil)
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				if err := c.Write(ctx, Text, []byte(msg)); err != nil {
					t.Fatal(err)
				}
				_, p, err := c.Read(ctx)
				if msg == "echo" {
					if err != nil || string(p) != "echo" {
						t.Fatalf("after a panic: read %q, %v", p, err)
					}
					if _, _, err := c.Read(ctx); !errors.Is(err, io.EOF) { // the handler's 1000
						t.Fatalf("after the echo: read %v, want the handler's normal close", err)
					}
					continue
				}
				var ce CloseError
				if !errors.As(err, &ce) || ce.Code != StatusInternalError || ce.Reason != "internal error" {
					t.Fatalf("read %v, want a close 1011 \"internal error\"", err)
				}
			}
			stop() // Shutdown returns: the panicked handler's count was released
			var panicked []slog.Record
			for _, r := range logs.take() {
				if r.Message == "ws: handler panicked" {
					panicked = append(panicked, r)
				}
			}
			if len(panicked) != 1 || panicked[0].Level != slog.LevelError ||
				attr(panicked[0], "panic") != "the handler's bug" || !strings.Contains(attr(panicked[0], "stack"), "TestHandlerPanic") {
				t.Fatalf("logged %d panics (%v), want one at error level with the value and the stack", len(panicked), panicked)
			}
		})
	}
}
