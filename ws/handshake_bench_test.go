package ws

import (
	"context"
	"log/slog"
	"net"
	"testing"
)

// BenchmarkHandshake measures a whole connection's life on the server, one
// after the other: the client (a bare socket that allocates nothing of its
// own beyond the dial) sends a browser's upgrade request, reads the 101 and
// closes; the server's handler waits for the end. ServeHTTP and Serve side
// by side: allocs/op are the server's plus the dial's, the same for both.
func BenchmarkHandshake(b *testing.B) {
	for _, hs := range handshakeServers {
		b.Run(hs.name, func(b *testing.B) {
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				_, _, err := c.Read(ctx)
				return err
			}, &AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)})
			addr, _ := hs.start(b, srv)
			req := []byte(requestTo(addr, "/rooms/go?user=ann", "Cookie: session=ok",
				"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
				"Accept-Language: en-GB,en;q=0.9", "Origin: http://"+addr, "Pragma: no-cache", "Cache-Control: no-cache",
				"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"))
			buf := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := nc.Write(req); err != nil {
					b.Fatal(err)
				}
				readUpgraded(b, nc, buf)
				nc.Close()
			}
		})
	}
}

// BenchmarkHandshakeClose is BenchmarkHandshake with the close of the
// benchmark's handshake storm: the client sends a close frame (1000) and
// closes TCP without waiting for the answer, which the server sends (its
// handler's read ends with the peer's close). allocs/op and B/op count the
// close frame's answer on top of the handshake.
func BenchmarkHandshakeClose(b *testing.B) {
	closeFrame := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}
	for _, hs := range handshakeServers {
		b.Run(hs.name, func(b *testing.B) {
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				_, _, err := c.Read(ctx)
				return err
			}, &AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)})
			addr, _ := hs.start(b, srv)
			req := []byte(requestTo(addr, "/", "Origin: http://"+addr))
			buf := make([]byte, 512)
			b.ReportAllocs()
			for b.Loop() {
				nc, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := nc.Write(req); err != nil {
					b.Fatal(err)
				}
				readUpgraded(b, nc, buf)
				if _, err := nc.Write(closeFrame); err != nil {
					b.Fatal(err)
				}
				nc.Close()
			}
			b.StopTimer()
			waitFor(b, "the handlers to end", func() bool { return srv.Len() == 0 })
		})
	}
}
