// Command echo is a WebSocket echo server: every message comes back with its
// type, streamed fragment by fragment as it arrives. It is what conformance
// tools point at. A client that offers subprotocols gets the first one it
// offers: an echo speaks every protocol.
//
//	go run ./examples/echo -addr localhost:9001
//
// Flags: -addr (localhost:9001), -limit (the largest message, 64 MiB) and
// -no-compress (permessage-deflate, accepted by default from clients that
// offer it, is then refused).
package main

import (
	"context"
	"flag"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// newEcho returns the echo server: every message of c back to c. With
// compress, clients that offer permessage-deflate get it.
func newEcho(limit int64, compress bool) *ws.Server {
	opts := &ws.AcceptOptions{
		InsecureSkipOriginCheck: true,
		// Whatever subprotocol a client asks for, an echo speaks it: the
		// first one offered is chosen.
		SelectSubprotocol: func(_ *http.Request, offered []string) string { return offered[0] },
	}
	if compress {
		opts.Compression = &ws.CompressionOptions{}
	}
	return ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		c.SetReadLimit(limit)
		return wesos.Pipe(ctx, c, c) // every message of c back to c, as it streams
	}, opts)
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
	if err := ws.Serve(ctx, ws.HTTPServer(newEcho(*limit, !*noCompress)), ln); err != nil {
		slog.Error("echo server", "err", err)
		os.Exit(1)
	}
	slog.Info("echo server stopped")
}
