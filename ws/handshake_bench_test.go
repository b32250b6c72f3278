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
	benchHandshakes(b, func(addr string) string {
		return requestTo(addr, "/rooms/go?user=ann", "Cookie: session=ok",
			"User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
			"Accept-Language: en-GB,en;q=0.9", "Origin: http://"+addr, "Pragma: no-cache", "Cache-Control: no-cache",
			"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
	}, nil)
}

// BenchmarkHandshakeClose is BenchmarkHandshake with the close of the
// benchmark's handshake storm: the client sends a close frame (1000) and
// closes TCP without waiting for the answer, which the server sends (its
// handler's read ends with the peer's close). allocs/op and B/op count the
// close frame's answer on top of the handshake.
func BenchmarkHandshakeClose(b *testing.B) {
	closeFrame := []byte{0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xe8 ^ 2}
	benchHandshakes(b, func(addr string) string { return requestTo(addr, "/", "Origin: http://"+addr) }, closeFrame)
}

// benchHandshakes measures, on every handshake server, a connection that
// sends request(addr), reads the 101, sends closeFrame if there is one, and
// closes TCP. With a close frame it waits, untimed, for the handlers to end.
func benchHandshakes(b *testing.B, request func(addr string) string, closeFrame []byte) {
	for _, hs := range handshakeServers {
		b.Run(hs.name, func(b *testing.B) {
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				_, _, err := c.Read(ctx)
				return err
			}, &AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)})
			addr, _ := hs.start(b, srv)
			req := []byte(request(addr))
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
				if closeFrame != nil {
					if _, err := nc.Write(closeFrame); err != nil {
						b.Fatal(err)
					}
				}
				nc.Close()
			}
			if closeFrame != nil {
				b.StopTimer()
				waitFor(b, "the handlers to end", func() bool { return srv.Len() == 0 })
			}
		})
	}
}
