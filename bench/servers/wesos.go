package servers

import (
	"context"
	"net"
	"net/http"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/kflate"
	"github.com/wesos/wesos/ws"
)

// wesos: the three-line servers of the package documentation. A Conn is a
// Source and a Sink of messages, a Server is a Sink that broadcasts.
// "wesos+klauspost" is the same server compressing with klauspost/compress
// (the kflate module) instead of compress/flate.
func init() {
	register("wesos", func(ln net.Listener, cfg Config) error { return serveWesos(ln, cfg, nil) })
	register("wesos+klauspost", func(ln net.Listener, cfg Config) error { return serveWesos(ln, cfg, kflate.Flate{}) })
}

// serveWesos serves cfg's scenario on ln, compressing with f (nil:
// compress/flate) when cfg asks for compression.
func serveWesos(ln net.Listener, cfg Config, f ws.Flate) error {
	opts := &ws.AcceptOptions{ReadLimit: cfg.ReadLimit}
	if cfg.Compress {
		opts.Compression = &ws.CompressionOptions{Flate: f} // no context takeover, flate.BestSpeed
	}
	var srv *ws.Server
	if cfg.Mode == "echo" {
		srv = ws.NewServer(func(ctx context.Context, c *ws.Conn) error { return wesos.Pipe(ctx, c, c) }, opts)
	} else {
		srv = ws.NewServer(func(ctx context.Context, c *ws.Conn) error { return wesos.Pipe(ctx, srv, c) }, opts)
	}
	return (&http.Server{Handler: srv}).Serve(ln)
}
