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
// (the kflate module) instead of compress/flate. "wesos-raw" is the same
// Server on its own listener (Server.Serve), without net/http.
func init() {
	register("wesos", func(ln net.Listener, cfg Config) error { return serveWesos(ln, cfg, nil, false) })
	register("wesos+klauspost", func(ln net.Listener, cfg Config) error { return serveWesos(ln, cfg, kflate.Flate{}, false) })
	register("wesos-raw", func(ln net.Listener, cfg Config) error { return serveWesos(ln, cfg, nil, true) })
}

// serveWesos serves cfg's scenario on ln, compressing with f (nil:
// compress/flate) when cfg asks for compression; through net/http, or with
// Server.Serve if raw.
func serveWesos(ln net.Listener, cfg Config, f ws.Flate, raw bool) error {
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
	if raw {
		return srv.Serve(ln)
	}
	return (&http.Server{Handler: srv}).Serve(ln)
}
