package wsclient

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"net"
	"strings"
	"testing"
)

// serverFrames compresses msg as a server would (no context takeover) and
// returns it as frames of at most split payload bytes each.
func serverFrames(t *testing.T, msg []byte, split int, compress bool) []byte {
	t.Helper()
	p := msg
	if compress {
		var z bytes.Buffer
		fw, _ := flate.NewWriter(&z, flate.BestSpeed)
		fw.Write(msg)
		fw.Flush()
		p = bytes.TrimSuffix(z.Bytes(), deflateTail[:])
	}
	var out []byte
	for first := true; first || len(p) > 0; first = false {
		n := min(split, len(p))
		b0 := byte(0x0)
		if first {
			b0 = 0x1
			if compress {
				b0 |= 0x40
			}
		}
		if n == len(p) {
			b0 |= 0x80
		}
		switch {
		case n <= 125:
			out = append(out, b0, byte(n))
		case n <= 0xffff:
			out = append(out, b0, 126, byte(n>>8), byte(n))
		default:
			t.Fatal("frame too large for this helper")
		}
		out = append(out, p[:n]...)
		p = p[n:]
	}
	return out
}

func TestTextTemplateIsJSONOfTheSize(t *testing.T) {
	for _, size := range []int{256, 1 << 10, 64 << 10} {
		tt := NewTextTemplate(size, 7)
		if len(tt.Plain) != size {
			t.Fatalf("size %d: template is %d bytes", size, len(tt.Plain))
		}
		var v map[string]any
		if err := json.Unmarshal(tt.Plain, &v); err != nil {
			t.Fatalf("size %d: not JSON: %v", size, err)
		}
		if !bytes.Equal(NewTextTemplate(size, 7).Plain, tt.Plain) {
			t.Fatalf("size %d: the same seed gave other bytes", size)
		}
	}
}

// TestReadText reads what a server sends back (the client's own message,
// compressed by compress/flate, whole or in fragments, or plain) and checks
// that a changed byte is caught.
func TestReadText(t *testing.T) {
	tt := NewTextTemplate(4<<10, 11)
	c := &Conn{Deflate: true}
	// The client's message, unmasked and inflated, is what the server echoes.
	wire := c.AppendText(nil, tt, 99, 5)
	if wire[1]&0x7f != 126 {
		t.Fatalf("want a 16-bit length for %d bytes", tt.Size)
	}
	payload := wire[4+4:] // 2-byte header, 2-byte length, 4-byte key
	for i := range payload {
		payload[i] ^= tt.Key[i&3]
	}
	plain, err := inflateAll(payload)
	if err != nil {
		t.Fatal(err)
	}
	bad := append([]byte(nil), plain...)
	bad[len(bad)-100] ^= 1
	cases := []struct {
		name    string
		frames  []byte
		wantErr string
	}{
		{"compressed", serverFrames(t, plain, 1<<16, true), ""},
		{"compressed fragments", serverFrames(t, plain, 100, true), ""},
		{"plain", serverFrames(t, plain, 1000, false), ""},
		{"changed byte", serverFrames(t, bad, 1<<16, true), "differs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := net.Pipe()
			defer a.Close()
			go func() { b.Write(tc.frames); b.Close() }()
			rc := &Conn{NC: a, Deflate: true, buf: make([]byte, 1024)}
			var got []Msg
			err := rc.ReadText(TextReadOpts{T: tt, OnMsg: func(m Msg) error { got = append(got, m); return nil }})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error containing %q", err, tc.wantErr)
				}
				return
			}
			if len(got) != 1 || got[0].TS != 99 || got[0].Seq != 5 || got[0].Len != int64(tt.Size) {
				t.Fatalf("got %+v (read error %v), want one message ts 99 seq 5", got, err)
			}
		})
	}
}

// inflateAll inflates a payload whose deflate tail was removed.
func inflateAll(p []byte) ([]byte, error) {
	var out bytes.Buffer
	_, err := out.ReadFrom(flate.NewReader(&wireSource{p: p}))
	if err != nil && out.Len() > 0 {
		err = nil // a sync-flushed stream ends with ErrUnexpectedEOF
	}
	return out.Bytes(), err
}
