package ws

import (
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// CompressionOptions turns on permessage-deflate (RFC 7692). A nil
// *CompressionOptions (the default) turns it off; the zero value turns it
// on with the defaults described at each field.
type CompressionOptions struct {
	// Level is the flate level, from flate.BestSpeed (1) to
	// flate.BestCompression (9). Zero, or any other value, means
	// flate.BestSpeed. A connection whose peer limits this side's window
	// under 15 bits (server_max_window_bits in the client's offer,
	// client_max_window_bits in the server's answer) compresses with
	// flate.HuffmanOnly instead, which fits any window.
	Level int

	// Threshold is the size under which a message goes out uncompressed
	// (decided on its first frame). Zero means DefaultCompressionThreshold;
	// negative compresses everything. (Send decides for a relayed
	// message that keeps its compressed bytes, see ContextTakeover, once
	// it is checked: one over 16 KiB stays compressed whatever the
	// threshold.)
	Threshold int

	// ContextTakeover keeps the compression context from one message to
	// the next in both directions, which compresses a stream of similar
	// messages better but keeps a compressor (about 1.2 MB at BestSpeed)
	// and a decompressor with its window alive per connection for its
	// whole life (see the package documentation for the figures).
	// Without it (the default), compressors and decompressors are pooled
	// and held only while a message passes, and a broadcast is compressed
	// once for all receivers; and a received compressed message that Send,
	// Server.Send or Group.Send relays goes on with the compressed bytes
	// it came with, checked but not compressed again, if it came in one
	// frame of up to 64 KiB and the receiver's window is at least the
	// sender's (see the package documentation).
	ContextTakeover bool

	// Flate is the DEFLATE implementation that compresses and
	// decompresses. Nil means the standard library's compress/flate. Its
	// compressors and decompressors are pooled per implementation (the
	// Flate value is the pool's key, so it should be comparable, such as a
	// struct without fields; a value that is not gets pools of its own per
	// connection). Each distinct value keeps its pools for the life of the
	// program: reuse one value rather than make a new pointer per Dial.
	// A relayed message that keeps its compressed bytes (see
	// ContextTakeover) is checked by the package's own decoder first;
	// only what that decoder leaves undecided is read with Flate.
	Flate Flate
}

// Flate is an implementation of DEFLATE (RFC 1951) for permessage-deflate:
// compress/flate by default, or a faster one plugged in through
// CompressionOptions.Flate. Its methods may be called from many goroutines
// at once; each compressor or decompressor they return is used by one
// goroutine at a time and reused with Reset.
//
// The levels are compress/flate's: flate.BestSpeed (1) to
// flate.BestCompression (9), and flate.HuffmanOnly (-2), which refers to no
// earlier bytes.
type Flate interface {
	// NewWriter returns a compressor at level that writes to w.
	NewWriter(w io.Writer, level int) (FlateWriter, error)
	// NewReader returns a decompressor of the raw DEFLATE stream r with
	// the preset dictionary dict (none if empty), as
	// flate.NewReaderDict. The r passed also implements io.ByteReader, so
	// the decompressor needs no buffer of its own.
	NewReader(r io.Reader, dict []byte) FlateReader
}

// FlateWriter is a compressor of a Flate: *flate.Writer is one.
type FlateWriter interface {
	// Write compresses p.
	Write(p []byte) (int, error)
	// Flush writes what is pending and ends with a sync flush: an empty
	// stored block, whose last four bytes are 00 00 ff ff.
	Flush() error
	// Reset discards the state and writes to w next, as a new compressor
	// at the same level would.
	Reset(w io.Writer)
}

// FlateReader is a decompressor of a Flate: the one flate.NewReaderDict
// returns is one. Read returns io.ErrUnexpectedEOF when its input ends
// before the stream does, as after a sync flush. A decompressor that reads
// its input ahead has a method Buffered() int that tells how many bytes it
// holds unread, so that data after a final block is still found.
type FlateReader interface {
	io.Reader
	// Reset discards the state and reads the raw DEFLATE stream r next,
	// with the preset dictionary dict (none if empty).
	Reset(r io.Reader, dict []byte) error
}

// DefaultCompressionThreshold is the size under which messages go out
// uncompressed when CompressionOptions.Threshold is zero: below it the
// frame overhead of deflate outweighs the savings.
const DefaultCompressionThreshold = 256

const deflateName = "permessage-deflate"

// level is the flate level the options ask for.
func (o *CompressionOptions) level() int {
	if o == nil || o.Level < flate.BestSpeed || o.Level > flate.BestCompression {
		return flate.BestSpeed // a kept compressor needs a valid level too
	}
	return o.Level
}

// threshold is the size under which messages go out uncompressed.
func (o *CompressionOptions) threshold() int {
	if o == nil || o.Threshold == 0 {
		return DefaultCompressionThreshold
	}
	return o.Threshold
}

// deflateTail ends every sync-flushed deflate block; the sender removes it
// from each message and the receiver puts it back (RFC 7692 §7.2.1).
var deflateTail = [4]byte{0x00, 0x00, 0xff, 0xff}

// deflateParams are the negotiated parameters of a connection.
type deflateParams struct {
	serverNoTakeover bool // the server resets its compressor per message
	clientNoTakeover bool // the client resets its compressor per message
	serverWindowBits int  // server_max_window_bits answered (0: none)
	clientWindowBits int  // client_max_window_bits answered (0: none); only a client reads it
}

// String renders the parameters as the server's response header value.
func (p deflateParams) String() string {
	s := deflateName
	if p.serverNoTakeover {
		s += "; server_no_context_takeover"
	}
	if p.clientNoTakeover {
		s += "; client_no_context_takeover"
	}
	if p.serverWindowBits != 0 {
		// An offer with server_max_window_bits is accepted by answering
		// it (RFC 7692 §7.1.2.1).
		s += "; server_max_window_bits=" + strconv.Itoa(p.serverWindowBits)
	}
	return s
}

// extension is one element of a Sec-WebSocket-Extensions header.
type extension struct {
	name   string
	params []extParam
}

type extParam struct {
	name, value string
	hasValue    bool
}

// parseExtensions parses Sec-WebSocket-Extensions values (RFC 6455 §9.1):
// comma-separated extensions, each a token with ;-separated parameters
// whose values are tokens or quoted strings.
func parseExtensions(values []string) ([]extension, error) {
	var exts []extension
	for _, v := range values {
		for item := range strings.SplitSeq(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			parts := strings.Split(item, ";")
			name := strings.TrimSpace(parts[0])
			if !isToken(name) {
				return nil, fmt.Errorf("bad extension name %q", name)
			}
			ext := extension{name: strings.ToLower(name)}
			for _, p := range parts[1:] {
				p = strings.TrimSpace(p)
				pname, pvalue, hasValue := strings.Cut(p, "=")
				pname, pvalue = strings.TrimSpace(pname), strings.TrimSpace(pvalue)
				if !isToken(pname) {
					return nil, fmt.Errorf("bad extension parameter %q", p)
				}
				if hasValue {
					if len(pvalue) >= 2 && pvalue[0] == '"' && pvalue[len(pvalue)-1] == '"' {
						pvalue = pvalue[1 : len(pvalue)-1]
					}
					if !isToken(pvalue) {
						return nil, fmt.Errorf("bad extension parameter value %q", p)
					}
				}
				ext.params = append(ext.params, extParam{strings.ToLower(pname), pvalue, hasValue})
			}
			exts = append(exts, ext)
		}
	}
	return exts, nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 {
			return false
		}
	}
	return true
}

// windowBits parses a max_window_bits value: 8 to 15, in decimal digits
// without leading zeroes (RFC 7692 §7.1.2).
func windowBits(v string) (int, bool) {
	n, err := strconv.Atoi(v)
	if err != nil || len(v) > 2 || v[0] < '1' || v[0] > '9' || n < 8 || n > 15 {
		return 0, false
	}
	return n, true
}

// acceptDeflate chooses, from a client's offers, the first permessage-deflate
// offer this side can honour, and returns the parameters to answer with. ok
// is false when no offer is acceptable: the connection goes on uncompressed.
func acceptDeflate(offers []extension, opts *CompressionOptions) (p deflateParams, ok bool) {
	for _, ext := range offers {
		if ext.name != deflateName {
			continue
		}
		if p, ok := acceptDeflateOffer(ext, opts); ok {
			return p, true
		}
	}
	return deflateParams{}, false
}

func acceptDeflateOffer(ext extension, opts *CompressionOptions) (deflateParams, bool) {
	p := deflateParams{
		serverNoTakeover: !opts.ContextTakeover,
		clientNoTakeover: !opts.ContextTakeover,
	}
	seen := map[string]bool{}
	for _, param := range ext.params {
		if seen[param.name] {
			return p, false // a parameter may appear once
		}
		seen[param.name] = true
		switch param.name {
		case "server_no_context_takeover":
			if param.hasValue {
				return p, false
			}
			p.serverNoTakeover = true
		case "client_no_context_takeover":
			if param.hasValue {
				return p, false
			}
			p.clientNoTakeover = true
		case "server_max_window_bits":
			bits, valid := windowBits(param.value)
			if !param.hasValue || !valid {
				return p, false
			}
			// compress/flate always uses a 32 KiB window; a smaller one
			// is honoured by compressing without back-references
			// (newDeflateState).
			p.serverWindowBits = bits
		case "client_max_window_bits":
			// Any window is fine to decompress; the answer need not limit it.
			if param.hasValue {
				if _, valid := windowBits(param.value); !valid {
					return p, false
				}
			}
		default:
			return p, false
		}
	}
	return p, true
}

// offerDeflate is the client's offer. It always carries
// client_max_window_bits without a value: the server may then limit the
// client's window to any size from 8 to 15 bits (RFC 7692 §7.1.2.2), which
// newDeflateState honours.
func offerDeflate(opts *CompressionOptions) string {
	if opts.ContextTakeover {
		return deflateName + "; client_max_window_bits"
	}
	return deflateName + "; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
}

// checkDeflateResponse validates the server's answer to our offer
// (offerDeflate). Every parameter may be answered; the window bits must
// have a value from 8 to 15, as our offer names no limit of its own (RFC
// 7692 §7.1.2.1, §7.1.2.2). An answer the client cannot follow fails the
// connection (§7.1).
func checkDeflateResponse(values []string) (p deflateParams, negotiated bool, err error) {
	exts, err := parseExtensions(values)
	if err != nil {
		return p, false, err
	}
	if len(exts) == 0 {
		return p, false, nil
	}
	if len(exts) > 1 || exts[0].name != deflateName {
		return p, false, fmt.Errorf("server chose extensions that were not offered: %q", strings.Join(values, ", "))
	}
	seen := map[string]bool{}
	for _, param := range exts[0].params {
		if seen[param.name] {
			return p, false, fmt.Errorf("duplicate permessage-deflate parameter %q", param.name)
		}
		seen[param.name] = true
		switch param.name {
		case "server_no_context_takeover", "client_no_context_takeover":
			if param.hasValue {
				return p, false, fmt.Errorf("permessage-deflate parameter %q has a value", param.name)
			}
			p.serverNoTakeover = p.serverNoTakeover || param.name == "server_no_context_takeover"
			p.clientNoTakeover = p.clientNoTakeover || param.name == "client_no_context_takeover"
		case "server_max_window_bits", "client_max_window_bits":
			bits, valid := windowBits(param.value)
			if !param.hasValue {
				return p, false, fmt.Errorf("permessage-deflate parameter %s has no value", param.name)
			}
			if !valid {
				return p, false, fmt.Errorf("bad %s %q: want 8 to 15", param.name, param.value)
			}
			if param.name == "server_max_window_bits" {
				p.serverWindowBits = bits
			} else {
				p.clientWindowBits = bits
			}
		default:
			return p, false, fmt.Errorf("permessage-deflate parameter %q was not offered", param.name)
		}
	}
	return p, true, nil
}

// deflateState is a connection's compression: what was negotiated and the
// (de)compressor it keeps when context takeover is on.
type deflateState struct {
	level       int
	threshold   int
	takeoverOut bool // this side keeps its compression context
	takeoverIn  bool // the peer keeps its context: keep a window of output
	window      int8 // the LZ77 window bits the peer decodes this side's messages with
	peerWindow  int8 // the window bits the peer compresses with (at most)

	pools *flatePools // of the implementation in use
	fw    FlateWriter // kept across messages if keepsContext
	msgW  FlateWriter // the compressor of the message being written, if any
	sw    sliceWriter // where the compressor writes (guarded by the message lock)
	fr    FlateReader // kept across messages with takeoverIn
	dict  []byte      // the last 32 to 64 KiB of decompressed output, with takeoverIn

	// The compressed message being read, if any (the Conn's read side,
	// under its readMu). Here rather than in Conn, which is smaller
	// without them when compression is not negotiated.
	msgOut int64         // its decompressed bytes so far
	ahead  [1]byte       // a byte of its output read ahead (readAhead)
	held   bool          // ahead is still to be read
	infl   FlateReader   // its decompressor
	src    inflateSource // the compressed bytes of its frames
}

// newDeflateState sets up the compression of a connection of either side
// with the negotiated parameters p.
func newDeflateState(p deflateParams, client bool, opts *CompressionOptions) *deflateState {
	d := &deflateState{level: opts.level(), threshold: opts.threshold(), pools: flatePoolsFor(opts.Flate)}
	window := p.serverWindowBits // the limit on this side's window (0: none)
	if client {
		window = p.clientWindowBits
	}
	peerWindow := 15 // a server answers no client_max_window_bits
	if client && p.serverWindowBits != 0 {
		peerWindow = p.serverWindowBits
	}
	d.peerWindow, d.window = int8(peerWindow), 15
	if window != 0 {
		d.window = int8(window)
	}
	if window > 0 && window < 15 {
		// The peer asks for a window under compress/flate's 32 KiB
		// (RFC 7692 §7.1.2.1, §7.1.2.2): Huffman coding alone refers to
		// no earlier bytes, so it fits any window, with or without
		// context takeover, at the cost of a lower ratio.
		d.level = flate.HuffmanOnly
	}
	if client {
		// Without ContextTakeover the client offered
		// client_no_context_takeover, a promise it keeps even if the
		// answer leaves it out (RFC 7692 §7.1.1.2).
		d.takeoverOut, d.takeoverIn = !p.clientNoTakeover && opts.ContextTakeover, !p.serverNoTakeover
	} else {
		d.takeoverOut, d.takeoverIn = !p.serverNoTakeover, !p.clientNoTakeover
	}
	return d
}

// keepsContext reports whether this side's compressor is kept from one
// message to the next. Huffman coding has no context to keep, so its
// compressor comes from the pool per message (a flate.Writer is large)
// even with takeover negotiated: a message that starts a fresh stream is a
// valid continuation for a peer that keeps its own.
func (d *deflateState) keepsContext() bool {
	return d.takeoverOut && d.level != flate.HuffmanOnly
}

// flatePools are the pooled compressors and decompressors of one Flate
// implementation: compressors by level (index level-1, Huffman-only last),
// decompressors in one pool. Nothing is held per idle connection without
// context takeover.
type flatePools struct {
	impl    Flate
	writers [10]sync.Pool
	readers sync.Pool
}

// stdFlate is the default Flate: the standard library's compress/flate.
type stdFlate struct{}

func (stdFlate) NewWriter(w io.Writer, level int) (FlateWriter, error) {
	return flate.NewWriter(w, level)
}

func (stdFlate) NewReader(r io.Reader, dict []byte) FlateReader {
	// The decompressor compress/flate returns has Reset(r, dict).
	return flate.NewReaderDict(r, dict).(FlateReader)
}

var (
	stdPools   = &flatePools{impl: stdFlate{}}
	otherPools sync.Map // Flate → *flatePools
)

// flatePoolsFor returns the pools of implementation f (nil: compress/flate).
// Every connection with the same implementation shares them; one whose
// value cannot be a map key gets pools of its own.
func flatePoolsFor(f Flate) *flatePools {
	if f == nil {
		return stdPools
	}
	if !reflect.ValueOf(f).Comparable() { // the value: an interface field may hold a slice
		return &flatePools{impl: f}
	}
	if p, ok := otherPools.Load(f); ok {
		return p.(*flatePools)
	}
	p, _ := otherPools.LoadOrStore(f, &flatePools{impl: f})
	return p.(*flatePools)
}

// writerPool returns the pool of compressors of level.
func (fp *flatePools) writerPool(level int) *sync.Pool {
	if level == flate.HuffmanOnly {
		return &fp.writers[len(fp.writers)-1]
	}
	if level < flate.BestSpeed || level > flate.BestCompression {
		level = flate.BestSpeed
	}
	return &fp.writers[level-1]
}

// getWriter returns a compressor of level writing to w, pooled if one is.
func (fp *flatePools) getWriter(level int, w io.Writer) (FlateWriter, error) {
	if fw, ok := fp.writerPool(level).Get().(FlateWriter); ok {
		fw.Reset(w)
		return fw, nil
	}
	return fp.impl.NewWriter(w, level)
}

// putWriter returns a compressor of level to its pool.
func (fp *flatePools) putWriter(level int, fw FlateWriter) {
	fw.Reset(io.Discard) // let go of the writer it wrote to
	fp.writerPool(level).Put(fw)
}

// getReader returns a decompressor reading r with the dictionary dict,
// pooled if one is.
func (fp *flatePools) getReader(r io.Reader, dict []byte) (FlateReader, error) {
	if fr, ok := fp.readers.Get().(FlateReader); ok {
		return fr, fr.Reset(r, dict)
	}
	return fp.impl.NewReader(r, dict), nil
}

// decompressor returns the decompressor for the next message, reading src.
func (d *deflateState) decompressor(src io.Reader) (FlateReader, error) {
	if !d.takeoverIn {
		return d.pools.getReader(src, nil)
	}
	if d.fr == nil {
		d.fr = d.pools.impl.NewReader(src, d.dict)
		return d.fr, nil
	}
	return d.fr, d.fr.Reset(src, d.dict)
}

// release ends a message's use of its decompressor.
func (d *deflateState) release(fr FlateReader) {
	if !d.takeoverIn {
		d.pools.readers.Put(fr)
	}
}

// remember notes decompressed output for the peer's context takeover.
func (d *deflateState) remember(p []byte) {
	if d.takeoverIn {
		d.rememberOutput(p)
	}
}

// compressor returns the compressor for the next message, writing to w,
// which is the same writer for every message of a connection.
func (d *deflateState) compressor(w io.Writer) (FlateWriter, error) {
	if !d.keepsContext() {
		return d.pools.getWriter(d.level, w)
	}
	if d.fw == nil {
		fw, err := d.pools.impl.NewWriter(w, d.level)
		if err != nil {
			return nil, err
		}
		d.fw = fw
	}
	return d.fw, nil // its context carries over
}

// releaseCompressor ends a message's use of its compressor.
func (d *deflateState) releaseCompressor(fw FlateWriter) {
	if !d.keepsContext() {
		d.pools.putWriter(d.level, fw)
	}
}

// passes reports whether a compressed message received by a connection
// whose compression is in can go out through this one as it came, its
// compressed bytes unchanged (RFC 7692 §7.1, §7.2): the message refers to
// no earlier one (in's peer keeps no context), this side's peer decodes
// with a window at least as large as the one it was compressed with, and
// this side keeps no context of its own, so its peer need not see the
// message as a continuation of anything (a message that ends with a final
// deflate block, which RFC 7692 §7.2.3.4 allows, ends a stream that a
// peer keeping context would continue).
func (d *deflateState) passes(in *deflateState) bool {
	return d != nil && in != nil && !d.takeoverOut && !in.takeoverIn && in.peerWindow <= d.window
}

// compresses reports whether a message whose first frame carries n bytes
// goes out compressed.
func (d *deflateState) compresses(n int) bool {
	return d != nil && (d.threshold < 0 || n >= d.threshold)
}

// deflateBufPool holds the buffers that compressed frames are assembled in.
// A buffer keeps the capacity its largest frame gave it, up to
// maxDeflateBuf, so that a stream of large messages allocates none.
var deflateBufPool = sync.Pool{New: func() any {
	b := make([]byte, writeBufSize)
	return &b
}}

// maxDeflateBuf bounds the buffers deflateBufPool keeps.
const maxDeflateBuf = 1 << 20

func getDeflateBuf() *[]byte { return deflateBufPool.Get().(*[]byte) }

// putDeflateBuf returns bp to the pool with b, its buffer or the one that
// appends grew from it.
func putDeflateBuf(bp *[]byte, b []byte) {
	if cap(b) > maxDeflateBuf {
		return
	}
	if cap(b) > cap(*bp) {
		*bp = b[:cap(b)]
	}
	deflateBufPool.Put(bp)
}

// sliceWriter appends what is written to it to a slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// appendCompressed compresses p as part of a message with fw, which writes
// into sw, and flushes. At the end of the message (fin) it strips the flush
// tail (RFC 7692 §7.2.1); a frame inside the message keeps it, since the
// receiver appends a tail only once, after the final frame.
func appendCompressed(fw FlateWriter, sw *sliceWriter, p []byte, fin bool) error {
	if _, err := fw.Write(p); err != nil {
		return err
	}
	if err := fw.Flush(); err != nil {
		return err
	}
	if len(sw.b) < 4 || [4]byte(sw.b[len(sw.b)-4:]) != deflateTail {
		return errors.New("ws: flate flush did not end with the sync marker")
	}
	if fin {
		sw.b = sw.b[:len(sw.b)-4]
	}
	return nil
}

// rememberOutput keeps at least the last 32 KiB of decompressed output (the
// decompressor takes the last 32 KiB of it) as the dictionary for the peer's
// next message (context takeover). The buffer holds up to twice the window
// and slides once per window's worth of output, so that small reads cost no
// more per byte than large ones.
func (d *deflateState) rememberOutput(p []byte) {
	const window = 32 << 10
	if len(p) >= window {
		p = p[len(p)-window:]
		d.dict = d.dict[:0]
	} else if len(d.dict)+len(p) > 2*window {
		d.dict = d.dict[:copy(d.dict, d.dict[len(d.dict)-window:])]
	}
	if n := len(d.dict) + len(p); n > cap(d.dict) {
		// Grow as the output does (an idle connection that saw small
		// messages keeps a small buffer), up to twice the window.
		grown := make([]byte, len(d.dict), min(2*window, max(n, 2*cap(d.dict))))
		copy(grown, d.dict)
		d.dict = grown
	}
	d.dict = append(d.dict, p...)
}
