package ws

// Resource limits against hostile peers: the bound on the handshake response
// a client reads, the header bound of the http.Server in front of Accept,
// and the default read limit (also on decompressed bytes).

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the bytes read from a net.Conn.
type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// TestDialHandshakeResponseBound: a server that answers the handshake with
// an endless header (many lines, or one endless line) makes Dial fail after
// reading at most maxHandshakeResponse (64 KiB) bytes, not buffer it all.
func TestDialHandshakeResponseBound(t *testing.T) {
	line := "X-Pad: " + strings.Repeat("a", 1000) + "\r\n"
	for _, tc := range []struct {
		name  string
		start string
		chunk string
	}{
		{"many-lines", "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", line},
		{"one-endless-line", "HTTP/1.1 101 Switching Protocols\r\nX-Pad: ", strings.Repeat("a", 1024)},
		{"endless-status-line", "HTTP/1.1 101 ", strings.Repeat("b", 1024)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var written atomic.Int64
			s := startRawServer(t, func(nc net.Conn, br *bufio.Reader, req *http.Request) {
				defer nc.Close()
				nc.SetWriteDeadline(time.Now().Add(testTimeout))
				if _, err := io.WriteString(nc, tc.start); err != nil {
					return
				}
				for range (64 << 20) / len(tc.chunk) { // up to 64 MiB, until the client hangs up
					n, err := io.WriteString(nc, tc.chunk)
					written.Add(int64(n))
					if err != nil {
						return
					}
				}
			})
			var read atomic.Int64
			opts := &DialOptions{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var d net.Dialer
				nc, err := d.DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return countingConn{nc, &read}, nil
			}}
			start := time.Now()
			c, _, err := Dial(testCtx(t), s.url, opts)
			if err == nil {
				c.CloseNow()
				t.Fatal("Dial accepted an endless handshake response")
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("Dial took %v", d)
			}
			if n := read.Load(); n > maxHandshakeResponse {
				t.Fatalf("Dial read %d bytes of handshake response, more than the %d bound", n, maxHandshakeResponse)
			}
			t.Logf("Dial read %d bytes and failed: %v", read.Load(), err)
		})
	}
}

// TestServerHandshakeHeaderBound: the request headers of a handshake are
// read by net/http, and bounded by the http.Server's MaxHeaderBytes (1 MiB,
// http.DefaultMaxHeaderBytes, when left at zero): an oversized handshake is
// answered 431 and never reaches the WebSocket handler.
func TestServerHandshakeHeaderBound(t *testing.T) {
	for _, tc := range []struct {
		name     string
		maxBytes int
		pad      int
	}{
		{"MaxHeaderBytes-8KiB", 8 << 10, 64 << 10},
		{"default-1MiB", 0, 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var handled atomic.Int64
			srv := NewServer(func(ctx context.Context, c *Conn) error { handled.Add(1); return nil }, nil)
			hs := httptest.NewUnstartedServer(srv)
			hs.Config.MaxHeaderBytes = tc.maxBytes
			hs.Start()
			defer hs.Close()
			host := strings.TrimPrefix(hs.URL, "http://")
			// The server may stop reading (and close) before the whole
			// request is sent: write in the background.
			nc, err := net.DialTimeout("tcp", host, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			nc.SetDeadline(time.Now().Add(testTimeout))
			req := upgradeRequest(host, "X-Pad: "+strings.Repeat("p", tc.pad))
			go io.WriteString(nc, req)
			resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
			if err != nil {
				t.Fatalf("reading the response: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("oversized handshake answered %s, want 431", resp.Status)
			}
			if handled.Load() != 0 {
				t.Fatal("the handler ran for an oversized handshake")
			}
		})
	}
}

// TestDefaultReadLimit: with ReadLimit left at zero a Conn refuses a message
// over DefaultReadLimit bytes with 1009, before any of its payload is read:
// a single frame announcing more, or fragments that add up to more. (That a
// message at the limit passes is TestReadLimit's, with a small limit.)
func TestDefaultReadLimit(t *testing.T) {
	if DefaultReadLimit != 32<<20 {
		t.Fatalf("DefaultReadLimit = %d; SECURITY.md and the docs say 32 MiB", DefaultReadLimit)
	}
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name+"/one-frame", func(t *testing.T) {
			c, raw := sd.pair(t)
			f := raw.fs().frame(true, opBinary, nil)
			f.announce = u64(DefaultReadLimit + 1)
			raw.write(f.bytes()) // the header alone: no payload follows
			_, _, err := c.Read(testCtx(t))
			wantProtocolError(t, err, StatusMessageTooBig)
			raw.expectClose(StatusMessageTooBig)
		})
		t.Run(sd.name+"/fragments", func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			first := s.frame(false, opBinary, []byte("x"))
			rest := s.frame(true, opContinuation, nil)
			rest.announce = u64(DefaultReadLimit) // 1 + DefaultReadLimit in all
			raw.write(first.bytes(), rest.bytes())
			_, _, err := c.Read(testCtx(t))
			wantProtocolError(t, err, StatusMessageTooBig)
			raw.expectClose(StatusMessageTooBig)
		})
	}
}

// TestDefaultReadLimitDeflateBomb: with permessage-deflate the read limit
// counts decompressed bytes. A 32 KiB compressed frame that inflates to one
// byte over DefaultReadLimit fails with 1009, although its wire size is a
// thousandth of the limit.
func TestDefaultReadLimitDeflateBomb(t *testing.T) {
	srv, results := startAcceptServer(t, &AcceptOptions{Compression: &CompressionOptions{}})
	host := strings.TrimPrefix(srv.URL, "http://")
	resp, raw := rawRequest(t, host, upgradeRequest(host,
		"Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; server_no_context_takeover"))
	if resp.StatusCode != http.StatusSwitchingProtocols || !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatalf("handshake: %s, extensions %q", resp.Status, resp.Header.Get("Sec-WebSocket-Extensions"))
	}
	res := <-results
	if res.err != nil {
		t.Fatal(res.err)
	}
	c := res.c
	defer c.CloseNow()

	// One MiB of zeros, sync-flushed by a fresh compressor, is a run of
	// self-contained deflate blocks ending on a byte boundary: 33 copies
	// in a row are a valid stream of 33 MiB of zeros (and cheap to make
	// under the race detector).
	var z bytes.Buffer
	fw, _ := flate.NewWriter(&z, flate.BestCompression)
	fw.Write(make([]byte, 1<<20))
	fw.Flush()
	payload := bytes.TrimSuffix(bytes.Repeat(z.Bytes(), DefaultReadLimit>>20+1), deflateTail[:])
	if len(payload) > DefaultReadLimit/100 {
		t.Fatalf("the bomb is %d bytes compressed", len(payload))
	}
	f := raw.fs().frame(true, opBinary, payload)
	f.rsv = bitRSV1
	go raw.nc.Write(f.bytes())

	_, r, err := c.Reader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, r)
	wantProtocolError(t, err, StatusMessageTooBig)
	if n > DefaultReadLimit {
		t.Fatalf("the reader handed out %d bytes, more than the limit", n)
	}
	raw.expectClose(StatusMessageTooBig)
	t.Logf("a %d-byte compressed frame refused after %d decompressed bytes: %v", len(payload), n, err)
}
