// Package wsclient is the load generator's own minimal WebSocket client (and
// its raw-TCP twin): a handshake, a frame writer that masks nothing per
// message but a 24-byte header (the payload template is masked once with a
// fixed key), and a streaming frame reader that checks a sample of every
// echoed byte range without copying payloads. It is built to cost the load
// generator as little CPU per message as possible, not to be a general
// client.
package wsclient

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// FieldsLen is the size of the header every message carries at its start:
// send timestamp, tag, sequence number (little endian). Shorter messages
// carry a prefix of it (16 B messages: timestamp and tag).
const FieldsLen = 24

// Template is the payload pattern of a scenario: byte o of every message
// (from FieldsLen on) is Plain[o % len(Plain)].
type Template struct {
	Plain  []byte
	Masked []byte // Plain masked with Key, phase 0 at offset 0
	Key    [4]byte
	Salt   uint64
}

// NewTemplate makes a template with period min(size, 1 MiB), rounded up to a
// multiple of 4 so that the mask phase repeats with it.
func NewTemplate(size int64, salt uint64) *Template {
	p := size
	if p > 1<<20 {
		p = 1 << 20
	}
	p = (p + 3) &^ 3
	if p < 4 {
		p = 4
	}
	t := &Template{Plain: make([]byte, p), Masked: make([]byte, p), Salt: salt}
	x := salt | 1
	for i := range t.Plain {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		t.Plain[i] = byte(x)
	}
	t.Key = [4]byte{0x5a, 0xc3, 0x17, 0xe9}
	for i := range t.Plain {
		t.Masked[i] = t.Plain[i] ^ t.Key[i&3]
	}
	return t
}

func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

// Tag is the check word of a message's header.
func (t *Template) Tag(ts, seq uint64) uint64 { return mix64(ts ^ mix64(seq+1) ^ t.Salt) }

// Fields returns the first min(size, FieldsLen) plain bytes of a message
// (a message shorter than FieldsLen has no room for seq, which is then 0).
func (t *Template) Fields(dst *[FieldsLen]byte, size int64, ts, seq uint64) {
	if size < FieldsLen {
		seq = 0
	}
	binary.LittleEndian.PutUint64(dst[0:], ts)
	binary.LittleEndian.PutUint64(dst[8:], t.Tag(ts, seq))
	binary.LittleEndian.PutUint64(dst[16:], seq)
}

// Conn is one client connection.
type Conn struct {
	NC  net.Conn
	Raw bool // raw-TCP framing: 4-byte big-endian length + payload

	buf      []byte
	pos, end int

	// Frame reader state.
	left     int64 // payload bytes left in the current frame
	fin      bool
	inMsg    bool
	msgOff   int64
	fields   [FieldsLen]byte
	wscratch []byte

	// Extensions is the server's Sec-WebSocket-Extensions answer ("" if
	// none); Deflate is set when it accepted permessage-deflate.
	Extensions string
	Deflate    bool
	text       *textReader // compressed text reading state (deflate.go)
}

// Dial connects to addr and, unless raw, performs the WebSocket handshake.
// bufSize is the read buffer size.
func Dial(addr string, raw bool, bufSize int, timeout time.Duration) (*Conn, error) {
	return dial(addr, raw, bufSize, timeout, "")
}

// dial is Dial with an optional Sec-WebSocket-Extensions offer.
func dial(addr string, raw bool, bufSize int, timeout time.Duration, offer string) (*Conn, error) {
	// No TCP keepalive: it costs three setsockopt calls per connection,
	// which the handshake storm would count as the load generator's work.
	d := net.Dialer{Timeout: timeout, KeepAlive: -1}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	if bufSize < 1024 {
		bufSize = 1024
	}
	c := &Conn{NC: nc, Raw: raw, buf: make([]byte, bufSize)}
	if raw {
		return c, nil
	}
	nc.SetDeadline(time.Now().Add(timeout))
	if err := c.handshake(addr, offer); err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return c, nil
}

// GrowBuffer makes the read buffer at least n bytes.
func (c *Conn) GrowBuffer(n int) {
	if len(c.buf) >= n {
		return
	}
	nb := make([]byte, n)
	c.end = copy(nb, c.buf[c.pos:c.end])
	c.pos = 0
	c.buf = nb
}

// Close closes the TCP connection.
func (c *Conn) Close() error { return c.NC.Close() }

func (c *Conn) handshake(addr, offer string) error {
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: " + key + "\r\nSec-WebSocket-Version: 13\r\n"
	if offer != "" {
		req += "Sec-WebSocket-Extensions: " + offer + "\r\n"
	}
	req += "\r\n"
	if _, err := io.WriteString(c.NC, req); err != nil {
		return err
	}
	for {
		if i := bytes.Index(c.buf[:c.end], []byte("\r\n\r\n")); i >= 0 {
			head := string(c.buf[:i])
			c.pos = i + 4
			ext, err := checkResponse(head, key)
			if err == nil && ext != "" {
				c.Extensions = ext
				err = c.acceptExtensions(offer)
			}
			return err
		}
		if c.end == len(c.buf) {
			return errors.New("handshake response too long")
		}
		n, err := c.NC.Read(c.buf[c.end:])
		c.end += n
		if err != nil {
			return fmt.Errorf("reading handshake response: %w", err)
		}
	}
}

// checkResponse checks the status and the accept key of a handshake
// response and returns its Sec-WebSocket-Extensions value, if any.
func checkResponse(head, key string) (ext string, err error) {
	lines := strings.Split(head, "\r\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "HTTP/1.1 101") {
		return "", fmt.Errorf("handshake refused: %q", lines[0])
	}
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	want := base64.StdEncoding.EncodeToString(h[:])
	accepted := false
	for _, l := range lines[1:] {
		name, val, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		switch name = strings.TrimSpace(name); {
		case strings.EqualFold(name, "Sec-WebSocket-Accept"):
			if strings.TrimSpace(val) != want {
				return "", errors.New("bad Sec-WebSocket-Accept")
			}
			accepted = true
		case strings.EqualFold(name, "Sec-WebSocket-Extensions"):
			if ext != "" {
				ext += ", "
			}
			ext += strings.TrimSpace(val)
		}
	}
	if !accepted {
		return "", errors.New("no Sec-WebSocket-Accept")
	}
	return ext, nil
}

// frameHeader appends a client frame header (masked, with the template's key).
func (c *Conn) frameHeader(b []byte, op byte, fin bool, n int64, key [4]byte) []byte {
	if c.Raw {
		return binary.BigEndian.AppendUint32(b, uint32(n))
	}
	b0 := op
	if fin {
		b0 |= 0x80
	}
	switch {
	case n <= 125:
		b = append(b, b0, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, b0, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, b0, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, key[:]...)
}

// AppendMessage appends a whole binary message of size bytes (one frame) to
// b, for messages small enough to batch.
func (c *Conn) AppendMessage(b []byte, t *Template, size int64, ts, seq uint64) []byte {
	b = c.frameHeader(b, 0x2, true, size, t.Key)
	var f [FieldsLen]byte
	t.Fields(&f, size, ts, seq)
	fl := min(int(size), FieldsLen)
	src := t.Plain
	if !c.Raw {
		src = t.Masked
		for i := 0; i < fl; i++ {
			f[i] ^= t.Key[i&3]
		}
	}
	b = append(b, f[:fl]...)
	if int(size) > fl {
		b = append(b, src[fl:size]...) // size <= len(src) for batched sizes
	}
	return b
}

// WriteLarge writes one binary message of size bytes as a single frame,
// header and fields from a small buffer and the body straight from the
// template (writev), repeating the template for sizes beyond its period.
func (c *Conn) WriteLarge(t *Template, size int64, ts, seq uint64) error {
	b := c.frameHeader(c.wscratch[:0], 0x2, true, size, t.Key)
	var f [FieldsLen]byte
	t.Fields(&f, size, ts, seq)
	fl := min(int(size), FieldsLen)
	src := t.Plain
	if !c.Raw {
		src = t.Masked
		for i := 0; i < fl; i++ {
			f[i] ^= t.Key[i&3]
		}
	}
	b = append(b, f[:fl]...)
	c.wscratch = b
	P := int64(len(src))
	off := int64(fl)
	first := true
	for off < size || first {
		end := min(size, (off/P+1)*P)
		if first {
			bufs := net.Buffers{b, src[off%P : off%P+(end-off)]}
			if _, err := bufs.WriteTo(c.NC); err != nil {
				return err
			}
			first = false
		} else if _, err := c.NC.Write(src[off%P : off%P+(end-off)]); err != nil {
			return err
		}
		off = end
	}
	return nil
}

// WriteControl writes a masked control frame (ping 0x9, close 0x8).
func (c *Conn) WriteControl(op byte, payload []byte) error {
	key := [4]byte{1, 2, 3, 4}
	b := c.frameHeader(nil, op, true, int64(len(payload)), key)
	for i, x := range payload {
		b = append(b, x^key[i&3])
	}
	_, err := c.NC.Write(b)
	return err
}

// WriteFragments writes one binary message split into frames of the given
// sizes, each from the template (for conformance checks).
func (c *Conn) WriteFragments(t *Template, sizes []int64, ts, seq uint64) error {
	var total int64
	for _, s := range sizes {
		total += s
	}
	var f [FieldsLen]byte
	t.Fields(&f, total, ts, seq)
	plain := make([]byte, total)
	for i := range plain {
		plain[i] = t.Plain[i%len(t.Plain)]
	}
	copy(plain, f[:min(int(total), FieldsLen)])
	var out []byte
	var off int64
	for i, s := range sizes {
		op := byte(0x0)
		if i == 0 {
			op = 0x2
		}
		key := [4]byte{byte(i), 0x33, 0x77, 0xee}
		out = c.frameHeader(out, op, i == len(sizes)-1, s, key)
		for j := int64(0); j < s; j++ {
			out = append(out, plain[off+j]^key[j&3])
		}
		off += s
	}
	_, err := c.NC.Write(out)
	return err
}

// Msg is what the reader reports for each received data message.
type Msg struct {
	Len    int64
	TS     uint64
	Seq    uint64
	Frames int

	// Text messages (ReadText) only.
	Wire       int64 // payload bytes on the wire (compressed size if Compressed)
	Compressed bool  // the message came compressed (RSV1)
}

// ErrClosed is returned by ReadLoop when the server sent a close frame.
var ErrClosed = errors.New("server sent a close frame")

// Reader options.
type ReadOpts struct {
	T      *Template
	Size   int64 // expected message size (0: any)
	Stride int64 // sample every Stride-th byte (0: about 64 samples of Size)
	OnMsg  func(m Msg) error
	OnPong func(p []byte)
}

// ReadLoop reads frames until an error, reporting each complete data
// message to o.OnMsg after checking its length, its header tag and a sample
// of its bytes against the template.
func (c *Conn) ReadLoop(o ReadOpts) error {
	stride := int64(8)
	if o.Size/64 > stride {
		stride = min(o.Size/64, 4096)
	}
	if o.Stride > 0 {
		stride = o.Stride
	}
	P := int64(len(o.T.Plain))
	var m Msg
	for {
		// Parse as much as is buffered.
		for {
			if c.left == 0 && !(c.inMsg && c.fin) {
				// Need a header.
				ok, ctrl, err := c.parseHeader(&m, o)
				if err != nil {
					return err
				}
				if !ok {
					break
				}
				if ctrl {
					continue
				}
			}
			if c.left > 0 {
				if c.pos == c.end {
					break
				}
				n := min(int64(c.end-c.pos), c.left)
				chunk := c.buf[c.pos : c.pos+int(n)]
				a := c.msgOff
				if a < FieldsLen {
					copy(c.fields[a:], chunk)
				}
				// Sampled bytes.
				s := max(a, FieldsLen)
				s = (s + stride - 1) / stride * stride
				for p := s; p < a+n; p += stride {
					if chunk[p-a] != o.T.Plain[p%P] {
						return fmt.Errorf("payload byte %d is %#x, want %#x", p, chunk[p-a], o.T.Plain[p%P])
					}
				}
				if a+n == c.msgOff+c.left && a+n > FieldsLen { // last byte of the frame
					p := a + n - 1
					if chunk[p-a] != o.T.Plain[p%P] {
						return fmt.Errorf("payload byte %d is %#x, want %#x", p, chunk[p-a], o.T.Plain[p%P])
					}
				}
				c.pos += int(n)
				c.left -= n
				c.msgOff += n
			}
			if c.left == 0 && c.inMsg && c.fin {
				c.inMsg = false
				m.Len = c.msgOff
				if o.Size > 0 && m.Len != o.Size {
					return fmt.Errorf("message of %d bytes, want %d", m.Len, o.Size)
				}
				fl := min(m.Len, FieldsLen)
				var f [FieldsLen]byte
				copy(f[:], c.fields[:fl])
				m.TS = binary.LittleEndian.Uint64(f[0:])
				tag := binary.LittleEndian.Uint64(f[8:])
				m.Seq = binary.LittleEndian.Uint64(f[16:])
				if fl >= 16 && tag != o.T.Tag(m.TS, m.Seq) {
					return fmt.Errorf("bad message tag (ts %d seq %d)", m.TS, m.Seq)
				}
				if err := o.OnMsg(m); err != nil {
					return err
				}
				m = Msg{}
			}
		}
		// Refill.
		if c.pos == c.end {
			c.pos, c.end = 0, 0
		} else if c.pos > len(c.buf)/2 || c.end == len(c.buf) {
			c.end = copy(c.buf, c.buf[c.pos:c.end])
			c.pos = 0
		}
		n, err := c.NC.Read(c.buf[c.end:])
		c.end += n
		if err != nil && n == 0 {
			return err
		}
	}
}

// parseHeader parses the next frame header if it is buffered. Control
// frames are consumed whole (ctrl=true).
func (c *Conn) parseHeader(m *Msg, o ReadOpts) (ok, ctrl bool, err error) {
	b := c.buf[c.pos:c.end]
	if c.Raw {
		if len(b) < 4 {
			return false, false, nil
		}
		c.pos += 4
		c.left = int64(binary.BigEndian.Uint32(b))
		c.fin = true
		c.inMsg = true
		c.msgOff = 0
		m.Frames++
		return true, false, nil
	}
	if len(b) < 2 {
		return false, false, nil
	}
	fin := b[0]&0x80 != 0
	op := b[0] & 0x0f
	if b[0]&0x70 != 0 {
		return false, false, errors.New("reserved bits set in a server frame")
	}
	if b[1]&0x80 != 0 {
		return false, false, errors.New("masked server frame")
	}
	n := int64(b[1] & 0x7f)
	hl := 2
	switch n {
	case 126:
		if len(b) < 4 {
			return false, false, nil
		}
		n = int64(binary.BigEndian.Uint16(b[2:]))
		hl = 4
	case 127:
		if len(b) < 10 {
			return false, false, nil
		}
		n = int64(binary.BigEndian.Uint64(b[2:]))
		hl = 10
	}
	if op >= 0x8 { // control
		if n > 125 || !fin {
			return false, false, errors.New("bad control frame")
		}
		if len(b) < hl+int(n) {
			return false, false, nil
		}
		p := b[hl : hl+int(n)]
		c.pos += hl + int(n)
		switch op {
		case 0x8:
			return false, false, ErrClosed
		case 0xA:
			if o.OnPong != nil {
				o.OnPong(p)
			}
		}
		return true, true, nil
	}
	switch {
	case op == 0x2 && !c.inMsg:
		c.inMsg = true
		c.msgOff = 0
	case op == 0x0 && c.inMsg:
	default:
		return false, false, fmt.Errorf("unexpected frame opcode %#x (in message: %v)", op, c.inMsg)
	}
	c.pos += hl
	c.left = n
	c.fin = fin
	m.Frames++
	return true, false, nil
}
