// Command echo is a WebSocket echo server: every message comes back with its
// type, streamed fragment by fragment as it arrives. It is what conformance
// tools point at.
//
//	go run ./examples/echo -addr localhost:9001
//
// Flags: -addr (localhost:9001), -limit (the largest message, 64 MiB) and
// -no-compress (permessage-deflate, accepted by default from clients that
// offer it, is then refused).
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// newEcho returns the echo server: every message of c back to c. With
// compress, clients that offer permessage-deflate get it.
func newEcho(limit int64, compress bool) *ws.Server {
	opts := &ws.AcceptOptions{InsecureSkipOriginCheck: true}
	if compress {
		opts.Compression = &ws.CompressionOptions{}
	}
	return ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		c.SetReadLimit(limit)
		return wesos.Pipe(ctx, c, c) // every message of c back to c, as it streams
	}, opts)
}

// serve runs srv on ln until ctx ends, then shuts down gracefully: the HTTP
// server stops accepting and every WebSocket is closed with 1001.
func serve(ctx context.Context, ln net.Listener, srv *ws.Server) error {
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	// The budget outlasts a close handshake (ws.DefaultCloseTimeout).
	stop, cancel := context.WithTimeout(context.Background(), 2*ws.DefaultCloseTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var httpErr, wsErr error
	wg.Go(func() { httpErr = hs.Shutdown(stop) }) // stop accepting
	wg.Go(func() { wsErr = srv.Shutdown(stop) })  // 1001 to every WebSocket, wait for the handlers
	wg.Wait()
	<-served // http.ErrServerClosed
	return errors.Join(httpErr, wsErr)
}

func main() {
	addr := flag.String("addr", "localhost:9001", "address to listen on")
	limit := flag.Int64("limit", 64<<20, "largest message in bytes (negative: no limit)")
	noCompress := flag.Bool("no-compress", false, "refuse permessage-deflate (by default it is accepted from clients that offer it)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("echo server", "err", err)
		os.Exit(1)
	}
	slog.Info("echo server listening", "url", "ws://"+ln.Addr().String())
	if err := serve(ctx, ln, newEcho(*limit, !*noCompress)); err != nil {
		slog.Error("echo server", "err", err)
		os.Exit(1)
	}
	slog.Info("echo server stopped")
}
