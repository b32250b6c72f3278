package ws

import (
	"bytes"
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDeflateEcho(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		srv := httptest.NewServer(NewServer(func(ctx context.Context, c *Conn) {
			for {
				m, err := c.Next(ctx)
				if err != nil {
					return
				}
				if err := c.Send(ctx, m); err != nil {
					return
				}
			}
		}, &AcceptOptions{Compression: &CompressionOptions{ContextTakeover: takeover}}))
		ctx := context.Background()
		c, resp, err := Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http"), &DialOptions{Compression: &CompressionOptions{ContextTakeover: takeover}})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(resp.Header.Get("Sec-WebSocket-Extensions"))
		for _, size := range []int{0, 1, 300, 65536, 1 << 20} {
			p := bytes.Repeat([]byte("hello world "), size/12+1)[:size]
			for range 3 {
				if err := c.Write(ctx, Text, p); err != nil {
					t.Fatal(err)
				}
				typ, got, err := c.Read(ctx)
				if err != nil || typ != Text || !bytes.Equal(got, p) {
					t.Fatalf("size %d: %v %v %d", size, err, typ, len(got))
				}
			}
		}
		w, _ := c.Writer(ctx, Binary)
		for range 10 {
			w.Write(bytes.Repeat([]byte("abcd"), 1000))
		}
		w.Close()
		_, r, err := c.Reader(ctx)
		b, err := io.ReadAll(r)
		if len(b) != 40000 || err != nil {
			t.Fatal(len(b), err)
		}
		c.Close(StatusNormalClosure, "")
		srv.Close()
	}
}
