package ws

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// listenEcho returns an echo Server and a listener on a loopback port.
func listenEcho(t *testing.T) (*Server, net.Listener) {
	t.Helper()
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return srv, ln
}

// dialEcho connects to the echo server at addr+path and checks one round
// trip, so that the connection's handler is known to run.
func dialEcho(t *testing.T, ctx context.Context, url string) *Conn {
	t.Helper()
	c, _, err := Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Write(ctx, Text, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := c.Read(ctx); err != nil || string(p) != "hi" {
		t.Fatalf("echo: %q, %v", p, err)
	}
	return c
}

// wantGoingAway reads c until the server's close and checks it is 1001.
func wantGoingAway(t *testing.T, ctx context.Context, c *Conn) {
	t.Helper()
	_, _, err := c.Read(ctx)
	var ce CloseError
	if !errors.As(err, &ce) || ce.Code != StatusGoingAway {
		t.Fatalf("read after shutdown: %v, want a close with 1001", err)
	}
}

// When Serve's ctx ends, every WebSocket gets 1001, the listener closes and
// Serve returns nil: with the Server as the handler, and with the Server
// behind a ServeMux and listed.
func TestServeGracefulShutdown(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mux    bool
		listed bool
	}{
		{"server is the handler", false, false},
		{"server behind a mux, listed", true, true},
		{"server is the handler and listed", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testCtx(t)
			srv, ln := listenEcho(t)
			var h http.Handler = srv
			url := "ws://" + ln.Addr().String()
			if tc.mux {
				mux := http.NewServeMux()
				mux.Handle("/ws", srv)
				h, url = mux, url+"/ws"
			}
			var servers []*Server
			if tc.listed {
				servers = append(servers, srv)
			}
			serveCtx, stop := context.WithCancel(ctx)
			served := make(chan error, 1)
			go func() { served <- Serve(serveCtx, HTTPServer(h), ln, servers...) }()

			c := dialEcho(t, ctx, url)
			stop()
			wantGoingAway(t, ctx, c)
			if err := <-served; err != nil {
				t.Fatalf("Serve: %v, want nil after a graceful shutdown", err)
			}
			if _, _, err := Dial(ctx, url, nil); err == nil {
				t.Fatal("Dial succeeded after the shutdown")
			}
		})
	}
}

// When serving fails (here: the listener is closed under it), Serve shuts
// the WebSocket servers down all the same and returns the error.
func TestServeListenerFails(t *testing.T) {
	ctx := testCtx(t)
	srv, ln := listenEcho(t)
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, HTTPServer(srv), ln) }()

	c := dialEcho(t, ctx, "ws://"+ln.Addr().String())
	ln.Close()
	wantGoingAway(t, ctx, c)
	if err := <-served; err == nil || errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v, want the listener's error", err)
	}
}

// A client that sends half its request headers and then nothing is cut off
// after ReadHeaderTimeout (set by the test), while the server goes on.
func TestServeSlowHeadersCut(t *testing.T) {
	ctx := testCtx(t)
	srv, ln := listenEcho(t)
	const timeout = 200 * time.Millisecond
	hs := HTTPServer(srv)
	hs.ReadHeaderTimeout = timeout
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- Serve(serveCtx, hs, ln) }()
	defer func() {
		stop()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	start := time.Now() // before the server can start its header timer
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, "GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(testTimeout)) // the test's bound, far beyond the timeout
	_, err = io.Copy(io.Discard, nc)                // whatever net/http answers, until it closes
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the slow client was not cut off within %v", testTimeout)
	}
	if elapsed := time.Since(start); elapsed < timeout {
		t.Fatalf("cut off after %v, before ReadHeaderTimeout %v", elapsed, timeout)
	}
	c := dialEcho(t, ctx, "ws://"+ln.Addr().String()) // the server still serves
	if err := c.Close(StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
}

// HTTPServer sets the timeouts and limits that the zero http.Server lacks.
func TestHTTPServerSettings(t *testing.T) {
	h := http.NotFoundHandler()
	hs := HTTPServer(h)
	if hs.ReadHeaderTimeout != DefaultReadHeaderTimeout || hs.IdleTimeout != DefaultIdleTimeout ||
		hs.MaxHeaderBytes != DefaultMaxHeaderBytes || hs.Handler == nil {
		t.Fatalf("HTTPServer: %+v", hs)
	}
	if DefaultReadHeaderTimeout <= 0 || DefaultIdleTimeout <= 0 || DefaultShutdownTimeout <= DefaultCloseTimeout {
		t.Fatal("a default is not a bound")
	}
}

// ListenAndServe returns the listen error at once (the address is taken).
func TestListenAndServeAddressInUse(t *testing.T) {
	_, ln := listenEcho(t)
	defer ln.Close()
	err := ListenAndServe(testCtx(t), ln.Addr().String(), http.NotFoundHandler())
	if err == nil {
		t.Fatal("ListenAndServe on a taken address returned nil")
	}
}
