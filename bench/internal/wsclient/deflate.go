package wsclient

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DeflateOffer is the permessage-deflate offer of the compressed
// scenarios: no context takeover in either direction, the mode every peer
// supports (gorilla supports no other) and most servers default to. Each
// message is then compressed on its own, and the client inflates each reply
// with a fresh window.
const DeflateOffer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// DialDeflate connects and offers DeflateOffer; a server that does not
// accept it is an error.
func DialDeflate(addr string, bufSize int, timeout time.Duration) (*Conn, error) {
	c, err := dial(addr, false, bufSize, timeout, DeflateOffer)
	if err != nil {
		return nil, err
	}
	if !c.Deflate {
		c.Close()
		return nil, errors.New("the server did not accept permessage-deflate")
	}
	return c, nil
}

// acceptExtensions checks the server's Sec-WebSocket-Extensions answer
// against the offer: only permessage-deflate, only parameters the offer
// allows, and server_no_context_takeover present (the client's inflater
// starts every message afresh).
func (c *Conn) acceptExtensions(offer string) error {
	if offer == "" {
		return fmt.Errorf("the server answered extensions that were not offered: %q", c.Extensions)
	}
	exts := strings.Split(c.Extensions, ",")
	if len(exts) != 1 {
		return fmt.Errorf("the server answered several extensions: %q", c.Extensions)
	}
	params := strings.Split(exts[0], ";")
	if strings.TrimSpace(params[0]) != "permessage-deflate" {
		return fmt.Errorf("the server answered an extension that was not offered: %q", c.Extensions)
	}
	noTakeover := false
	for _, p := range params[1:] {
		name, val, hasVal := strings.Cut(strings.TrimSpace(p), "=")
		switch name {
		case "server_no_context_takeover":
			noTakeover = true
		case "client_no_context_takeover":
		case "server_max_window_bits":
			// Any window inflates when every message starts afresh.
			if n, err := strconv.Atoi(strings.Trim(val, `"`)); !hasVal || err != nil || n < 8 || n > 15 {
				return fmt.Errorf("bad server_max_window_bits in %q", c.Extensions)
			}
		default:
			return fmt.Errorf("permessage-deflate parameter %q was not offered: %q", name, c.Extensions)
		}
	}
	if !noTakeover {
		return fmt.Errorf("the server keeps its compression context although the offer asked it not to: %q", c.Extensions)
	}
	c.Deflate = true
	return nil
}

// Offsets of the fields in the head of a text message: hexadecimal
// timestamp, tag and sequence number, as the first members of a JSON object.
const (
	textHead = `{"ts":"0000000000000000","tag":"0000000000000000","seq":"0000000000000000",`
	tsOff    = len(`{"ts":"`)
	tagOff   = tsOff + 16 + len(`","tag":"`)
	seqOff   = tagOff + 16 + len(`","seq":"`)
	// TextHeadLen is the length of the per-message head of a text message.
	TextHeadLen = len(textHead)
)

// TextTemplate is the message of a compressed scenario: JSON text of a
// fixed size whose head carries the timestamp, tag and sequence number (in
// hexadecimal) and whose body is the same records in every message,
// generated from a seed. The body is compressed once: a message on the wire
// is a stored deflate block holding the head, then that compressed body, so
// the client's cost per message is masking the head.
type TextTemplate struct {
	Size  int
	Plain []byte // the whole message, its head fields zero
	Key   [4]byte
	Salt  uint64

	bodyMasked []byte // Plain[TextHeadLen:] masked at phase TextHeadLen
	zMasked    []byte // the compressed body (tail removed), masked at phase 5+TextHeadLen
	// ZBody is the size of the compressed body: the message goes out in
	// 5+TextHeadLen+ZBody bytes of payload.
	ZBody int
}

// NewTextTemplate generates a JSON message of exactly size bytes (at least
// 256) from seed; the same seed gives the same message.
func NewTextTemplate(size int, seed uint64) *TextTemplate {
	if size < 256 {
		size = 256
	}
	t := &TextTemplate{Size: size, Salt: seed, Key: [4]byte{0x3c, 0x91, 0xa5, 0x0e}}
	t.Plain = genJSON(size, seed)
	t.bodyMasked = make([]byte, size-TextHeadLen)
	for i := range t.bodyMasked {
		t.bodyMasked[i] = t.Plain[TextHeadLen+i] ^ t.Key[(TextHeadLen+i)&3]
	}
	var zb bytes.Buffer
	fw, _ := flate.NewWriter(&zb, flate.BestSpeed)
	fw.Write(t.Plain[TextHeadLen:])
	fw.Flush()
	z := bytes.TrimSuffix(zb.Bytes(), deflateTail[:])
	t.ZBody = len(z)
	off := 5 + TextHeadLen
	t.zMasked = make([]byte, len(z))
	for i := range z {
		t.zMasked[i] = z[i] ^ t.Key[(off+i)&3]
	}
	return t
}

var deflateTail = [4]byte{0, 0, 0xff, 0xff}

// Tag is the check word of a message's head.
func (t *TextTemplate) Tag(ts, seq uint64) uint64 { return mix64(ts ^ mix64(seq+1) ^ t.Salt) }

const hexDigits = "0123456789abcdef"

func putHex(dst []byte, v uint64) {
	for i := 15; i >= 0; i-- {
		dst[i] = hexDigits[v&15]
		v >>= 4
	}
}

func getHex(src []byte) (uint64, bool) {
	var v uint64
	for _, c := range src[:16] {
		switch {
		case c >= '0' && c <= '9':
			v = v<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			v = v<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return v, true
}

// AppendText appends one text message (one frame) to b: compressed (RSV1
// set) when the connection negotiated permessage-deflate, plain otherwise.
func (c *Conn) AppendText(b []byte, t *TextTemplate, ts, seq uint64) []byte {
	var head [TextHeadLen]byte
	copy(head[:], textHead)
	putHex(head[tsOff:], ts)
	putHex(head[tagOff:], t.Tag(ts, seq))
	putHex(head[seqOff:], seq)
	if !c.Deflate {
		b = c.frameHeader(b, 0x1, true, int64(t.Size), t.Key)
		start := len(b)
		b = append(b, head[:]...)
		for i := start; i < len(b); i++ {
			b[i] ^= t.Key[(i-start)&3]
		}
		return append(b, t.bodyMasked...)
	}
	b = c.frameHeader(b, 0x1|0x40, true, int64(5+TextHeadLen+t.ZBody), t.Key)
	start := len(b)
	// A stored block (not final) holding the head, then the body.
	b = append(b, 0x00, byte(TextHeadLen), byte(TextHeadLen>>8), ^byte(TextHeadLen), ^byte(TextHeadLen>>8))
	b = append(b, head[:]...)
	for i := start; i < len(b); i++ {
		b[i] ^= t.Key[(i-start)&3]
	}
	return append(b, t.zMasked...)
}

// InflateCache lets the many receivers of one broadcast message verify it
// once: a compressed payload that is byte for byte one already inflated and
// checked carries the same message. Safe for concurrent use.
type InflateCache struct {
	seed  maphash.Seed
	slots [1024]cacheSlot
}

type cacheSlot struct {
	mu      sync.Mutex
	wire    []byte
	ts, seq uint64
}

// NewInflateCache returns an empty cache.
func NewInflateCache() *InflateCache { return &InflateCache{seed: maphash.MakeSeed()} }

func (k *InflateCache) slot(wire []byte) *cacheSlot {
	return &k.slots[maphash.Bytes(k.seed, wire)%uint64(len(k.slots))]
}

func (k *InflateCache) lookup(wire []byte) (ts, seq uint64, ok bool) {
	s := k.slot(wire)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wire != nil && bytes.Equal(s.wire, wire) {
		return s.ts, s.seq, true
	}
	return 0, 0, false
}

func (k *InflateCache) store(wire []byte, ts, seq uint64) {
	s := k.slot(wire)
	s.mu.Lock()
	s.wire = append(s.wire[:0], wire...)
	s.ts, s.seq = ts, seq
	s.mu.Unlock()
}

// TextReadOpts are the options of ReadText.
type TextReadOpts struct {
	T      *TextTemplate
	Cache  *InflateCache // optional: broadcast receivers share one
	OnMsg  func(m Msg) error
	OnPong func(p []byte)
}

// textReader is a connection's state for ReadText.
type textReader struct {
	wire  []byte // the current message's payload as received
	plain []byte // inflated
	fr    io.ReadCloser
	src   wireSource
}

// wireSource reads a compressed payload, then the deflate tail the sender
// removed (RFC 7692 §7.2.2).
type wireSource struct {
	p   []byte
	off int
}

func (s *wireSource) Read(b []byte) (int, error) {
	n := len(s.p) + len(deflateTail)
	if s.off >= n {
		return 0, io.EOF
	}
	var k int
	if s.off < len(s.p) {
		k = copy(b, s.p[s.off:])
	} else {
		k = copy(b, deflateTail[s.off-len(s.p):])
	}
	s.off += k
	return k, nil
}

func (s *wireSource) ReadByte() (byte, error) {
	var b [1]byte
	if _, err := s.Read(b[:]); err != nil {
		return 0, err
	}
	return b[0], nil
}

// fill makes at least n bytes readable in c.buf[c.pos:c.end].
func (c *Conn) fill(n int) error {
	for c.end-c.pos < n {
		if c.pos > 0 && len(c.buf)-c.pos < n || c.end == len(c.buf) {
			c.end = copy(c.buf, c.buf[c.pos:c.end])
			c.pos = 0
		}
		if n > len(c.buf) {
			c.GrowBuffer(n)
		}
		k, err := c.NC.Read(c.buf[c.end:])
		c.end += k
		if err != nil && k == 0 {
			return err
		}
	}
	return nil
}

// ReadText reads text messages until an error, inflating compressed ones,
// and reports each to o.OnMsg after checking it whole: its size, every byte
// of its body against the template, and its head's tag.
func (c *Conn) ReadText(o TextReadOpts) error {
	if c.text == nil {
		c.text = &textReader{plain: make([]byte, o.T.Size+1)}
	}
	tr := c.text
	maxWire := int64(2*o.T.Size + 4096) // deflate never grows text this much
	inMsg, compressed := false, false
	var m Msg
	for {
		if err := c.fill(2); err != nil {
			return err
		}
		b0, b1 := c.buf[c.pos], c.buf[c.pos+1]
		hl, n := 2, int64(b1&0x7f)
		switch n {
		case 126:
			hl = 4
		case 127:
			hl = 10
		}
		if err := c.fill(hl); err != nil {
			return err
		}
		switch hl {
		case 4:
			n = int64(c.buf[c.pos+2])<<8 | int64(c.buf[c.pos+3])
		case 10:
			n = 0
			for _, x := range c.buf[c.pos+2 : c.pos+10] {
				n = n<<8 | int64(x)
			}
		}
		fin, rsv1, op := b0&0x80 != 0, b0&0x40 != 0, b0&0x0f
		if b0&0x30 != 0 {
			return errors.New("RSV2 or RSV3 set in a server frame")
		}
		if b1&0x80 != 0 {
			return errors.New("masked server frame")
		}
		if op >= 0x8 {
			if n > 125 || !fin || rsv1 {
				return errors.New("bad control frame")
			}
			if err := c.fill(hl + int(n)); err != nil {
				return err
			}
			p := c.buf[c.pos+hl : c.pos+hl+int(n)]
			c.pos += hl + int(n)
			switch op {
			case 0x8:
				return ErrClosed
			case 0xA:
				if o.OnPong != nil {
					o.OnPong(p)
				}
			}
			continue
		}
		c.pos += hl
		switch {
		case op == 0x1 && !inMsg:
			inMsg, compressed = true, rsv1
			if rsv1 && !c.Deflate {
				return errors.New("compressed frame on a connection without permessage-deflate")
			}
			tr.wire = tr.wire[:0]
			m = Msg{}
		case op == 0x0 && inMsg:
			if rsv1 {
				return errors.New("RSV1 set on a continuation frame")
			}
		default:
			return fmt.Errorf("unexpected frame opcode %#x (in message: %v)", op, inMsg)
		}
		if int64(len(tr.wire))+n > maxWire {
			return fmt.Errorf("a message of more than %d bytes on the wire, for %d bytes of text", maxWire, o.T.Size)
		}
		m.Frames++
		for n > 0 {
			if c.pos == c.end {
				if err := c.fill(1); err != nil {
					return err
				}
			}
			k := min(n, int64(c.end-c.pos))
			tr.wire = append(tr.wire, c.buf[c.pos:c.pos+int(k)]...)
			c.pos += int(k)
			n -= k
		}
		if !fin {
			continue
		}
		inMsg = false
		if err := c.finishText(tr, compressed, &m, o); err != nil {
			return err
		}
		if err := o.OnMsg(m); err != nil {
			return err
		}
	}
}

// finishText inflates (if compressed) and checks the message in tr.wire.
func (c *Conn) finishText(tr *textReader, compressed bool, m *Msg, o TextReadOpts) error {
	t := o.T
	m.Wire = int64(len(tr.wire))
	m.Compressed = compressed
	plain := tr.wire
	if compressed {
		if o.Cache != nil {
			if ts, seq, ok := o.Cache.lookup(tr.wire); ok {
				m.Len, m.TS, m.Seq = int64(t.Size), ts, seq
				return nil
			}
		}
		tr.src = wireSource{p: tr.wire}
		if tr.fr == nil {
			tr.fr = flate.NewReader(&tr.src)
		} else if err := tr.fr.(flate.Resetter).Reset(&tr.src, nil); err != nil {
			return err
		}
		n := 0
		for {
			k, err := tr.fr.Read(tr.plain[n:])
			n += k
			if err != nil {
				// The tail is a sync flush, not a final block: the stream
				// ends with ErrUnexpectedEOF once the input is consumed.
				if (err == io.ErrUnexpectedEOF || err == io.EOF) && tr.src.off == len(tr.src.p)+len(deflateTail) {
					break
				}
				return fmt.Errorf("inflating a %d-byte message: %w", len(tr.wire), err)
			}
			if n == len(tr.plain) {
				return fmt.Errorf("a message inflates to more than %d bytes", t.Size)
			}
		}
		plain = tr.plain[:n]
	}
	m.Len = int64(len(plain))
	if len(plain) != t.Size {
		return fmt.Errorf("text message of %d bytes, want %d", len(plain), t.Size)
	}
	h := plain[:TextHeadLen]
	if string(h[:tsOff]) != textHead[:tsOff] || string(h[tsOff+16:tagOff]) != textHead[tsOff+16:tagOff] ||
		string(h[tagOff+16:seqOff]) != textHead[tagOff+16:seqOff] || string(h[seqOff+16:]) != textHead[seqOff+16:] {
		return fmt.Errorf("bad message head %q", h)
	}
	ts, ok1 := getHex(h[tsOff:])
	tag, ok2 := getHex(h[tagOff:])
	seq, ok3 := getHex(h[seqOff:])
	if !ok1 || !ok2 || !ok3 || tag != t.Tag(ts, seq) {
		return fmt.Errorf("bad message head %q", h)
	}
	if !bytes.Equal(plain[TextHeadLen:], t.Plain[TextHeadLen:]) {
		return errors.New("message body differs from what was sent")
	}
	m.TS, m.Seq = ts, seq
	if compressed && o.Cache != nil {
		o.Cache.store(tr.wire, ts, seq)
	}
	return nil
}
