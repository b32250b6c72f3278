package ws

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzParseHeader: parseHeader never panics, never claims more bytes than
// it has, asks for at most a full header, and round-trips through putHeader
// (byte for byte when the input used the minimal length encoding).
func FuzzParseHeader(f *testing.F) {
	for _, b := range [][]byte{
		nil, {0x81}, {0x81, 0x05}, {0x81, 0x85, 1, 2, 3},
		rf{fin: true, op: opText, payload: []byte("hello")}.bytes()[:2],
		rf{fin: true, op: opBinary, masked: true, key: testKey, payload: make([]byte, 126)}.bytes()[:8],
		rf{fin: false, op: opContinuation, announce: u64(1 << 20)}.bytes(),
		rf{fin: true, op: opBinary, announce: u64(1 << 63)}.bytes(),
		rf{fin: true, op: opPing, announce: u64(5), ext64: true}.bytes(),
		rf{fin: true, rsv: 0x70, op: 0xF, masked: true, announce: u64(0xFFFF)}.bytes(),
	} {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, need, err := parseHeader(b)
		if err != nil {
			if n != 0 || len(b) < 10 || b[1]&0x7F != 127 || b[2]&0x80 == 0 {
				t.Fatalf("error %v for % x (n=%d)", err, b, n)
			}
			return
		}
		if n == 0 {
			if need <= len(b) || need > maxHeaderSize || need < 2 {
				t.Fatalf("need %d with %d bytes", need, len(b))
			}
			return
		}
		if n > len(b) || n > maxHeaderSize || need != 0 || h.length < 0 {
			t.Fatalf("n=%d need=%d length=%d for %d bytes", n, need, h.length, len(b))
		}
		if n != headerSize(h) && b[1]&0x7F < 126 {
			t.Fatalf("n=%d, headerSize %d", n, headerSize(h))
		}
		var out [maxHeaderSize]byte
		m := putHeader(out[:], h)
		if m != headerSize(h) {
			t.Fatalf("putHeader wrote %d bytes, headerSize says %d", m, headerSize(h))
		}
		h2, n2, _, err := parseHeader(out[:m])
		if err != nil || n2 != m || h2 != h {
			t.Fatalf("round trip: %+v -> % x -> %+v, %d, %v", h, out[:m], h2, n2, err)
		}
		l7 := b[1] & 0x7F
		minimal := l7 < 126 || l7 == 126 && h.length > 125 || l7 == 127 && h.length > 0xFFFF
		if minimal && !bytes.Equal(out[:m], b[:n]) {
			t.Fatalf("re-encoded % x, input % x", out[:m], b[:n])
		}
	})
}

// FuzzClosePayload: parseClosePayload never panics, accepts only codes that
// may be sent and UTF-8 reasons, and round-trips through appendClosePayload;
// appendClosePayload always produces a payload parseClosePayload accepts.
func FuzzClosePayload(f *testing.F) {
	f.Add([]byte{}, uint16(1000), "")
	f.Add([]byte{3}, uint16(1005), "x")
	f.Add([]byte{3, 232}, uint16(4999), strings.Repeat("é", 100))
	f.Add([]byte{3, 232, 0xff}, uint16(999), "\xff")
	f.Add([]byte{0x0f, 0xa0, 'o', 'k'}, uint16(3000), "日本語")
	f.Fuzz(func(t *testing.T, p []byte, code uint16, reason string) {
		ce, pe := parseClosePayload(p)
		switch {
		case pe != nil:
			if pe.Code != StatusProtocolError && pe.Code != StatusInvalidFramePayloadData {
				t.Fatalf("code %v for % x", pe.Code, p)
			}
		case len(p) == 0:
			if ce.Code != StatusNoStatusRcvd || ce.Reason != "" {
				t.Fatalf("empty payload: %v", ce)
			}
		default:
			if !ce.Code.validOnWire() || !utf8.ValidString(ce.Reason) {
				t.Fatalf("accepted %v from % x", ce, p)
			}
			out, err := appendClosePayload(nil, ce.Code, ce.Reason)
			if err != nil {
				t.Fatalf("appendClosePayload(%v): %v", ce, err)
			}
			if len(p) <= maxControlPayload && !bytes.Equal(out, p) || !bytes.HasPrefix(p, out) {
				t.Fatalf("round trip % x -> % x", p, out)
			}
		}

		out, err := appendClosePayload(nil, StatusCode(code), reason)
		if err != nil {
			return
		}
		if len(out) > maxControlPayload {
			t.Fatalf("payload of %d bytes", len(out))
		}
		ce, pe = parseClosePayload(out)
		if pe != nil {
			t.Fatalf("appendClosePayload(%d, %q) made a payload that fails: %v", code, reason, pe)
		}
		if StatusCode(code) != StatusNoStatusRcvd && (ce.Code != StatusCode(code) || !strings.HasPrefix(reason, ce.Reason)) {
			t.Fatalf("round trip (%d, %q) -> %v", code, reason, ce)
		}
	})
}

// FuzzAcceptRequest: any request headers through Accept (on a
// ResponseWriter that cannot hijack): no panic; a refusal is answered with
// the status of the returned HandshakeError; a request that passes reaches
// the hijack, which fails with 500.
func FuzzAcceptRequest(f *testing.F) {
	f.Add("GET", "Upgrade", "websocket", "13", clientKey, "", "example.com", "chat", "")
	f.Add("GET", "keep-alive, Upgrade", "WebSocket", "13", clientKey, "http://example.com", "example.com", "superchat, chat", "permessage-deflate; client_max_window_bits")
	f.Add("POST", "Upgrade", "websocket", "13", clientKey, "https://a.example.com", "x", "", "permessage-deflate; server_max_window_bits=10, permessage-deflate")
	f.Add("GET", "upgrade", "websocket", "8", "short", "null", "", ",,", "x; y=\"z\"")
	f.Add("GET", "Upgrade", "websocket", " 13 ", " "+clientKey+" ", "http://[::1", "h:1", "a,b", "permessage-deflate; server_no_context_takeover; client_no_context_takeover")
	f.Fuzz(func(t *testing.T, method, connection, upgrade, version, key, origin, host, protos, exts string) {
		h := http.Header{}
		for name, v := range map[string]string{
			"Connection": connection, "Upgrade": upgrade, "Sec-WebSocket-Version": version, "Sec-WebSocket-Key": key,
			"Origin": origin, "Sec-WebSocket-Protocol": protos, "Sec-WebSocket-Extensions": exts,
		} {
			if v != "" {
				h[name] = strings.Split(v, "\n")
			}
		}
		r := &http.Request{Method: method, URL: &url.URL{Path: "/"}, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: h, Host: host}
		for _, opts := range []*AcceptOptions{
			nil,
			{Subprotocols: []string{"chat", "superchat"}, OriginPatterns: []string{"*.example.com", "[bad"}, Compression: &CompressionOptions{}},
		} {
			w := httptest.NewRecorder()
			c, err := Accept(w, r, opts)
			if c != nil {
				t.Fatal("Accept returned a Conn without hijacking")
			}
			var he *HandshakeError
			if !errors.As(err, &he) || w.Code != he.Status || he.Status < 400 {
				t.Fatalf("Accept: %v, status %d", err, w.Code)
			}
			o := opts
			if o == nil {
				o = &AcceptOptions{}
			}
			q := requestOf(r)
			_, proto, herr := checkRequest(&q, o)
			if herr == nil {
				if he.Status != http.StatusInternalServerError {
					t.Fatalf("a valid request was refused with %d", he.Status)
				}
				if proto != "" && !strings.Contains(protos, proto) {
					t.Fatalf("chose %q, not offered in %q", proto, protos)
				}
			} else if herr.Status != he.Status {
				t.Fatalf("checkRequest %d, Accept %d", herr.Status, he.Status)
			}
		}
	})
}

// FuzzCheckResponse: any handshake response headers through checkResponse:
// no panic, and an accepted response is a 101 with the right accept key
// and, if any, a subprotocol that was offered.
func FuzzCheckResponse(f *testing.F) {
	good := acceptKey(clientKey)
	f.Add(101, "websocket", "Upgrade", good, "", "", true, false)
	f.Add(101, "WebSocket", "keep-alive, upgrade", good, "b", "", true, true)
	f.Add(101, "websocket", "Upgrade", good, "c", "permessage-deflate; server_no_context_takeover", false, true)
	f.Add(200, "websocket", "Upgrade", "x", "a\nb", "permessage-deflate; client_max_window_bits=8; server_max_window_bits=15", true, true)
	f.Add(101, "websocket", "Upgrade", good, "", "permessage-deflate, permessage-deflate; x=\"1\"", false, true)
	f.Fuzz(func(t *testing.T, status int, upgrade, connection, accept, proto, ext string, offer, compress bool) {
		h := http.Header{}
		for name, v := range map[string]string{
			"Upgrade": upgrade, "Connection": connection, "Sec-WebSocket-Accept": accept,
			"Sec-WebSocket-Protocol": proto, "Sec-WebSocket-Extensions": ext,
		} {
			if v != "" {
				h[name] = strings.Split(v, "\n")
			}
		}
		resp := &http.Response{StatusCode: status, Header: h}
		opts := &DialOptions{}
		if offer {
			opts.Subprotocols = []string{"a", "b"}
		}
		if compress {
			opts.Compression = &CompressionOptions{}
		}
		_, err := checkResponse(resp, clientKey, offer, opts)
		if err != nil {
			return
		}
		if status != 101 || h.Get("Sec-WebSocket-Accept") != good ||
			!hasToken(h, "Upgrade", "websocket") || !hasToken(h, "Connection", "upgrade") {
			t.Fatalf("accepted status %d headers %v", status, h)
		}
		if p := h.Values("Sec-WebSocket-Protocol"); len(p) > 0 && (!offer || len(p) != 1 || (strings.TrimSpace(p[0]) != "a" && strings.TrimSpace(p[0]) != "b")) {
			t.Fatalf("accepted subprotocol %q (offered %v)", p, offer)
		}
		if len(h.Values("Sec-WebSocket-Extensions")) > 0 && !compress {
			t.Fatalf("accepted extensions that were not offered: %q", ext)
		}
	})
}

// connFuzzSeeds returns byte streams for a Conn of one side: the first byte
// selects the mode (see fuzzConn), the rest is what the peer sends.
func connFuzzSeeds(s frameSet) [][]byte {
	var seeds [][]byte
	add := func(mode byte, b ...[]byte) { seeds = append(seeds, append([]byte{mode}, cat(b...)...)) }
	add(0, s.msg(opText, "hello"), s.msg(opBinary, "\x00\xff"), s.close(1000, "bye"))
	add(1, s.frame(false, opText, []byte("he")).bytes(), s.msg(opPing, "p"), s.msg(opContinuation, "llo"), s.msg(opPong, "x"))
	add(0, s.msg(opText, strings.Repeat("é", 200)), s.msg(opClose, ""))
	add(1, s.frame(false, opText, []byte("\xf0\x9f")).bytes(), s.msg(opContinuation, "\x98\x80"), s.close(4000, "ok"))
	for _, v := range violations() {
		add(0, v.send(s))
		add(1, v.send(s))
	}
	// Compressed messages (mode bit 2 negotiates permessage-deflate).
	var zb bytes.Buffer
	zw, _ := flate.NewWriter(&zb, flate.BestSpeed)
	zw.Write([]byte(strings.Repeat("compressed hello ", 20)))
	zw.Flush()
	z := bytes.TrimSuffix(zb.Bytes(), deflateTail[:])
	comp := s.frame(true, opText, z)
	comp.rsv = bitRSV1
	add(4, comp.bytes(), s.close(1000, ""))
	add(5, comp.bytes(), comp.bytes())
	first := s.frame(false, opBinary, z[:len(z)/2])
	first.rsv = bitRSV1
	add(4|8, first.bytes(), s.msg(opPing, ""), s.msg(opContinuation, string(z[len(z)/2:])))
	bad := s.frame(true, opBinary, []byte{0xff, 0xff, 0xff})
	bad.rsv = bitRSV1
	add(4, bad.bytes())
	return seeds
}

// fuzzListener is a loopback listener shared by a fuzz target's iterations.
func fuzzListener(f *testing.F) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	return ln
}

// fuzzConn feeds data after a (virtual) handshake to a Conn of one side
// over a real loopback socket, reads until the Conn fails or closes, and
// checks: no panic, no hang, an error of the documented kinds, text
// messages valid UTF-8, messages within the read limit.
//
// data[0] is the mode: bit 0 reads with Next and small Body reads instead
// of Read; bit 2 negotiates permessage-deflate (bit 3: with context
// takeover).
func fuzzConn(t *testing.T, ln net.Listener, client bool, data []byte) {
	if len(data) == 0 {
		return
	}
	mode, data := data[0], data[1:]
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	const limit = 1 << 16
	var dfl *deflateState
	if mode&4 != 0 {
		dfl = newDeflateState(deflateParams{serverNoTakeover: mode&8 == 0, clientNoTakeover: mode&8 == 0}, client, &CompressionOptions{ContextTakeover: true})
	}
	// ownSocket: writes go to the socket directly, as on a hijacked or dialled connection.
	c := newConn(nc, client, "", connConfig{readLimit: limit, closeTimeout: 100 * time.Millisecond, ownSocket: true}, dfl, nil)
	defer c.CloseNow()

	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		peer.SetWriteDeadline(time.Now().Add(testTimeout))
		peer.Write(data)
		peer.(*net.TCPConn).CloseWrite()
	})
	wg.Go(func() {
		peer.SetReadDeadline(time.Now().Add(testTimeout))
		io.Copy(io.Discard, peer)
	})

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	fuzzReadAll(t, ctx, c, len(data), limit, mode&1 != 0)
	// Close after the end returns promptly.
	c.Close(StatusNormalClosure, "")
}

// fuzzReadAll reads c until it fails, by whole messages or (streamed)
// through Body in 7-byte reads, checking every message: valid UTF-8 text,
// within limit, no more messages than input bytes, and an end that is a
// close, a protocol error with a code RFC 6455 names, or a closed
// connection, never a hang.
func fuzzReadAll(t *testing.T, ctx context.Context, c *Conn, inputLen int, limit int, streamed bool) {
	t.Helper()
	var rerr error
	for i := 0; rerr == nil; i++ {
		if i > inputLen {
			t.Fatalf("%d messages from %d bytes", i, inputLen)
		}
		var typ MessageType
		var msg []byte
		if !streamed {
			typ, msg, rerr = c.Read(ctx)
		} else {
			var m Message
			if m, rerr = c.Next(ctx); rerr == nil {
				typ = m.Type
				var buf [7]byte
				for rerr == nil {
					var n int
					n, rerr = m.Body.Read(buf[:])
					msg = append(msg, buf[:n]...)
					if len(msg) > limit {
						t.Fatalf("body of %d bytes passed the limit", len(msg))
					}
				}
				if rerr == io.EOF {
					rerr = nil
				}
			}
		}
		if rerr != nil {
			break
		}
		if typ == Text && !utf8.Valid(msg) {
			t.Fatalf("text message %q is not valid UTF-8", msg)
		}
		if len(msg) > limit {
			t.Fatalf("message of %d bytes passed the limit", len(msg))
		}
	}
	if ctx.Err() != nil {
		t.Fatalf("the read hung: %v", rerr)
	}
	var pe *ProtocolError
	var ce CloseError
	if !errors.As(rerr, &pe) && !errors.As(rerr, &ce) && !errors.Is(rerr, net.ErrClosed) {
		t.Fatalf("read ended with %v (%T)", rerr, rerr)
	}
	if pe != nil && pe.Code != StatusProtocolError && pe.Code != StatusInvalidFramePayloadData && pe.Code != StatusMessageTooBig && pe.Code != StatusInternalError {
		t.Fatalf("protocol error with code %v", pe.Code)
	}
}

// FuzzServerConn feeds arbitrary bytes from a client to a server Conn.
func FuzzServerConn(f *testing.F) {
	for _, s := range connFuzzSeeds(frameSet{masked: true}) {
		f.Add(s)
	}
	ln := fuzzListener(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzConn(t, ln, false, data) })
}

// FuzzClientConn feeds arbitrary bytes from a server to a client Conn.
func FuzzClientConn(f *testing.F) {
	for _, s := range connFuzzSeeds(frameSet{masked: false}) {
		f.Add(s)
	}
	ln := fuzzListener(f)
	f.Fuzz(func(t *testing.T, data []byte) { fuzzConn(t, ln, true, data) })
}
