// Command echo is a WebSocket echo server: every message comes back with its
// type, streamed fragment by fragment as it arrives. It is what conformance
// tools point at.
//
//	go run ./examples/echo -addr localhost:9001
package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

func main() {
	addr := flag.String("addr", "localhost:9001", "address to listen on")
	limit := flag.Int64("limit", 64<<20, "largest message in bytes (negative: no limit)")
	flag.Parse()

	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) {
		c.SetReadLimit(*limit)
		wesos.Pipe(ctx, c, c) // every message of c back to c, as it streams
	}, &ws.AcceptOptions{InsecureSkipOriginCheck: true})

	hs := &http.Server{Addr: *addr, Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	failed := make(chan error, 1)
	go func() { failed <- hs.ListenAndServe() }()
	slog.Info("echo server listening", "addr", "ws://"+*addr)
	select {
	case err := <-failed:
		slog.Error("echo server", "err", err)
		os.Exit(1)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs.Shutdown(shutdown)  // stop accepting
	srv.Shutdown(shutdown) // 1001 to every WebSocket, wait for the handlers
}
