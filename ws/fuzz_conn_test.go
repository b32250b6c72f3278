package ws

// FuzzDialRaw fuzzes what no other target reaches: the client's handshake
// from the first byte the server sends. FuzzCheckResponse starts from a
// parsed response and FuzzClientConn from a Conn that already exists; here
// the bytes go through Dial's own http.ReadResponse on its 64 KiB-bounded
// reader, checkResponse, and the hand-off of the bytes that arrived with the
// response (frames in the same packet) to the new Conn, which then reads
// them.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// acceptPlaceholder in a fuzz input is replaced by the Sec-WebSocket-Accept
// value of the request's key, which is random, so that the fuzzer can reach
// past the key check.
const acceptPlaceholder = "{ACCEPT}"

func dialRawSeeds() [][]byte {
	s := frameSet{masked: false}
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " + acceptPlaceholder + "\r\n"
	var zb bytes.Buffer
	zw, _ := flate.NewWriter(&zb, flate.BestSpeed)
	zw.Write([]byte(strings.Repeat("compressed hello ", 20)))
	zw.Flush()
	comp := s.frame(true, opText, bytes.TrimSuffix(zb.Bytes(), deflateTail[:]))
	comp.rsv = bitRSV1
	var seeds [][]byte
	add := func(mode byte, parts ...[]byte) { seeds = append(seeds, append([]byte{mode}, cat(parts...)...)) }
	add(0, []byte(ok+"\r\n"), s.msg(opText, "hello"), s.msg(opPing, "p"), s.close(1000, "bye"))
	add(1, []byte(ok+"Sec-WebSocket-Protocol: b\r\n\r\n"), s.frame(false, opBinary, []byte{1, 2}).bytes(), s.msg(opContinuation, "3"))
	add(2, []byte(ok+"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n"), comp.bytes(), s.close(1001, ""))
	add(2|8, []byte(ok+"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n"), comp.bytes(), s.close(1001, ""))
	add(2, []byte(ok+"Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=15\r\n\r\n"), comp.bytes())
	add(0, []byte(ok+"Sec-WebSocket-Protocol: c\r\n\r\n"))
	add(0, []byte("HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden"))
	add(0, []byte("HTTP/1.1 101 Switching Protocols\r\nTransfer-Encoding: chunked\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "+acceptPlaceholder+"\r\n\r\n"))
	add(0, []byte("HTTP/1.0 101 OK\nupgrade: WebSocket\nconnection: keep-alive, upgrade\nsec-websocket-accept: "+acceptPlaceholder+"\n\n"), s.msg(opText, "\xce\xba"))
	add(0, []byte(ok+"X-Pad: "+strings.Repeat("x", 70<<10)+"\r\n\r\n"))
	return seeds
}

// FuzzDialRaw: data[0] is the mode (bit 0 offers subprotocols "a" and "b",
// bit 1 offers permessage-deflate, bit 2 reads with Next and small Body
// reads, bit 3 decompresses with a plugged-in Flate that reads ahead); the rest is everything the server sends, with acceptPlaceholder
// replaced. Checks: no panic and no hang; Dial reads at most
// maxHandshakeResponse bytes before it returns; it returns a Conn only for
// a 101 with the right key, an offered subprotocol and offered extensions;
// the Conn then reads only valid messages (UTF-8 text, within the read
// limit) and ends with an error of the documented kinds.
func FuzzDialRaw(f *testing.F) {
	for _, s := range dialRawSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, data := data[0], data[1:]
		const limit = 1 << 16
		client, server := net.Pipe()
		defer client.Close()
		defer server.Close()

		var wg sync.WaitGroup
		defer wg.Wait()
		wg.Go(func() { // the server: read the request, send data, drain
			defer server.Close()
			server.SetDeadline(time.Now().Add(testTimeout))
			br := bufio.NewReader(server)
			req, err := http.ReadRequest(br)
			if err != nil {
				t.Errorf("the client's request does not parse: %v", err)
				return
			}
			b := bytes.ReplaceAll(data, []byte(acceptPlaceholder), []byte(acceptKey(req.Header.Get("Sec-WebSocket-Key"))))
			go io.Copy(io.Discard, br) // pongs and close frames; ends when the pipe closes
			server.Write(b)
		})

		var read atomic.Int64
		opts := &DialOptions{
			NetDialContext: func(context.Context, string, string) (net.Conn, error) {
				return countingConn{client, &read}, nil
			},
			Proxy:        func(*http.Request) (*url.URL, error) { return nil, nil },
			ReadLimit:    limit,
			CloseTimeout: 50 * time.Millisecond,
		}
		if mode&1 != 0 {
			opts.Subprotocols = []string{"a", "b"}
		}
		if mode&2 != 0 {
			opts.Compression = &CompressionOptions{}
			if mode&8 != 0 {
				opts.Compression.Flate = readAheadFlate{}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		c, resp, err := Dial(ctx, "ws://fuzz.example/", opts)
		if n := read.Load(); n > maxHandshakeResponse {
			t.Fatalf("Dial read %d bytes of handshake", n)
		}
		if err != nil {
			if c != nil {
				t.Fatal("Dial returned a Conn and an error")
			}
			if ctx.Err() != nil {
				t.Fatalf("Dial hung: %v", err)
			}
			return
		}
		defer c.CloseNow()
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("Dial succeeded with %s", resp.Status)
		}
		if p := c.Subprotocol(); p != "" && (mode&1 == 0 || (p != "a" && p != "b")) {
			t.Fatalf("subprotocol %q (offered: %v)", p, mode&1 != 0)
		}
		if c.deflate != nil && mode&2 == 0 {
			t.Fatal("compression negotiated without an offer")
		}

		fuzzReadAll(t, ctx, c, len(data), limit, mode&4 != 0)
		c.Close(StatusNormalClosure, "")
	})
}
