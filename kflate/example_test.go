package kflate_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/kflate"
	"github.com/wesos/wesos/ws"
)

// An echo server that compresses and decompresses with klauspost/compress,
// and a client on the standard library's compress/flate: both ends speak
// plain DEFLATE, so either may use either implementation.
func ExampleFlate() {
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, &ws.AcceptOptions{
		Compression: &ws.CompressionOptions{Flate: kflate.Flate{}}, // nil Flate: compress/flate
	})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	ctx := context.Background()
	c, _, err := ws.Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &ws.DialOptions{
		Compression: &ws.CompressionOptions{Threshold: -1}, // compress every message
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	if err := c.Write(ctx, ws.Text, []byte("hello, compressed")); err != nil {
		fmt.Println(err)
		return
	}
	_, msg, err := c.Read(ctx)
	fmt.Println(string(msg), err)
	c.Close(ws.StatusNormalClosure, "")
	// Output: hello, compressed <nil>
}
