package ws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// The settings HTTPServer gives an http.Server (see SECURITY.md, "What the
// operator must set").
const (
	// DefaultReadHeaderTimeout bounds how long a client may take to send
	// its request headers: a handshake that never finishes (slow loris) is
	// dropped after it.
	DefaultReadHeaderTimeout = 10 * time.Second

	// DefaultIdleTimeout bounds how long a keep-alive HTTP connection
	// waits for its next request. It does not apply to WebSockets, whose
	// connections leave net/http when they are upgraded.
	DefaultIdleTimeout = time.Minute

	// DefaultMaxHeaderBytes is the largest request header accepted: a
	// handshake needs a few KiB plus the cookies. Larger requests get 431.
	DefaultMaxHeaderBytes = 64 << 10

	// DefaultShutdownTimeout is how long Serve gives a graceful shutdown
	// once its ctx ends: long enough for a close handshake
	// (DefaultCloseTimeout) and the broadcasts already accepted. After it,
	// the connections still open are closed at once.
	DefaultShutdownTimeout = 2 * DefaultCloseTimeout
)

// HTTPServer returns an http.Server for h with the timeouts and limits a
// server on the open internet needs, which the zero http.Server lacks:
// ReadHeaderTimeout DefaultReadHeaderTimeout, IdleTimeout
// DefaultIdleTimeout and MaxHeaderBytes DefaultMaxHeaderBytes. Change its
// fields before serving it with Serve if you need other values.
func HTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: DefaultReadHeaderTimeout,
		IdleTimeout:       DefaultIdleTimeout,
		MaxHeaderBytes:    DefaultMaxHeaderBytes,
	}
}

// ListenAndServe listens on the TCP address addr and serves h on it with
// HTTPServer's settings until ctx ends, then shuts down gracefully; see
// Serve. It is what http.ListenAndServe is for a WebSocket server on the
// open internet:
//
//	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
//	defer stop()
//	err := ws.ListenAndServe(ctx, "localhost:8080", srv) // Ctrl-C: 1001 to every socket
func ListenAndServe(ctx context.Context, addr string, h http.Handler, servers ...*Server) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return Serve(ctx, HTTPServer(h), ln, servers...)
}

// Serve serves hs on ln until ctx ends or serving fails, then shuts down
// gracefully, giving it DefaultShutdownTimeout: hs stops accepting and
// closes its idle connections (http.Server.Shutdown) while every WebSocket
// server, the servers listed and hs.Handler itself if it is a *Server,
// delivers the broadcasts it accepted, closes its connections with 1001
// (going away) and waits for their handlers (Server.Shutdown). List the
// Servers that hs.Handler routes to, a ServeMux say, so that they are shut
// down too.
//
// Serve returns nil after a shutdown that ctx asked for and that finished
// in time; otherwise the error that ended serving (never
// http.ErrServerClosed) joined with those of the shutdown. It closes ln.
//
// This Serve is for a port that carries HTTP, WebSockets among it (behind
// a ServeMux, say), through net/http. For a port that carries nothing but
// WebSockets, the method Server.Serve reads the upgrade requests itself,
// without net/http, with less memory and garbage per connection; stop it
// with Server.Shutdown.
func Serve(ctx context.Context, hs *http.Server, ln net.Listener, servers ...*Server) error {
	if s, ok := hs.Handler.(*Server); ok && !slices.Contains(servers, s) {
		servers = append(servers[:len(servers):len(servers)], s)
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-served:
	case <-ctx.Done():
	}

	stop, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultShutdownTimeout)
	defer cancel()
	errs := make([]error, 1+len(servers))
	var wg sync.WaitGroup
	wg.Go(func() { errs[0] = hs.Shutdown(stop) }) // stop accepting, close idle HTTP connections
	for i, s := range servers {
		wg.Go(func() { errs[1+i] = s.Shutdown(stop) }) // 1001 to every WebSocket, wait for the handlers
	}
	wg.Wait()
	if errs[0] != nil {
		hs.Close() // the shutdown ran out of time: close what is left of HTTP
	}
	if serveErr == nil {
		serveErr = <-served // http.ErrServerClosed, once Shutdown has begun
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(append([]error{serveErr}, errs...)...)
}
