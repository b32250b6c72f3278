package ws

import (
	"encoding/binary"
	"math/bits"
	"sync"
)

// inflater checks a compressed message that is relayed as it came
// (passThrough): it decodes the raw DEFLATE stream, whole in memory, into a
// flat buffer that is also the LZ77 window, so that nothing is copied out
// of a window and no interface call is made per input byte, as a streaming
// decompressor must. It decides only the ordinary case: a stream that
// decodes to the end of its input (the flush tail included) within the read
// limit, as valid UTF-8 for a text message. For anything else, an error
// above all, it gives up without changing the Conn's state, and the reads
// of the message decide with the configured Flate, so that every verdict
// and close code stays theirs. It therefore only needs to be no more
// lenient than compress/flate, which FuzzInflate checks.
type inflater struct {
	lit   [inflLitSize]uint32
	dist  [inflDistSize]uint32
	codes [1 << inflCodeBits]uint32
	lens  [maxLitSyms + maxDistSyms]uint8
	buf   []byte // maxHeaderSize bytes of room for a frame header, then the output
}

const (
	inflLitBits  = 10 // bits of the first lookup of a literal/length code
	inflDistBits = 8  // of a distance code
	inflCodeBits = 7  // of a code length code: the longest there is
	// The largest tables the first lookups and their subtables can take
	// (zlib's enough tool: 1334 and 402 entries); a code that needs more
	// is given up on.
	inflLitSize  = 1 << 11
	inflDistSize = 1 << 9

	maxLitSyms  = 286 // HLIT allows 288, compress/flate rejects the last two
	maxDistSyms = 30  // HDIST allows 32, compress/flate rejects the last two

	inflWindow = 32 << 10
	// inflOutSize is the output a message may reach before the buffer
	// slides, keeping the last window: a 64 KiB message fits without.
	inflOutSize = 96 << 10
	// inflSlack is the room a symbol needs: a longest match, and the
	// eight bytes a word-wise copy may write past it.
	inflSlack = 258 + 8
)

// Kinds of table entries. An entry is value<<16 | extra<<12 | kind<<8 |
// bits: the code's length in bits, its kind, how many extra bits follow it,
// and its value (a literal byte, the base of a length or a distance, or the
// start of a subtable, whose index bits are then in extra).
const (
	inflInvalid = iota // no code: the stream is corrupt (the zero entry)
	inflLiteral
	inflLength
	inflEnd
	inflDistance
	inflCodeLen
	inflSub
)

var inflaterPool = sync.Pool{New: func() any { return new(inflater) }}

func getInflater() *inflater { return inflaterPool.Get().(*inflater) }

func putInflater(f *inflater) { inflaterPool.Put(f) }

// inflPayloads are the entries, without their code lengths, of each
// alphabet's symbols, and the fixed Huffman code's tables.
var inflPayloads = sync.OnceValue(func() *inflTables {
	t := new(inflTables)
	for s := range 256 {
		t.lit[s] = uint32(s)<<16 | inflLiteral<<8
	}
	t.lit[256] = inflEnd << 8
	base := 3
	for s := 257; s < 285; s++ {
		extra := 0
		if s >= 265 {
			extra = (s - 261) / 4
		}
		t.lit[s] = uint32(base)<<16 | uint32(extra)<<12 | inflLength<<8
		base += 1 << extra
	}
	t.lit[285] = 258<<16 | inflLength<<8
	// 286 and 287 stay invalid.
	for s := range maxDistSyms {
		base, extra := s+1, 0
		if s >= 4 {
			extra = (s - 2) >> 1
			base = 1<<(extra+1) + 1 + (s&1)<<extra
		}
		t.dist[s] = uint32(base)<<16 | uint32(extra)<<12 | inflDistance<<8
	}
	for s := range t.code {
		t.code[s] = uint32(s)<<16 | inflCodeLen<<8
	}
	var lens [288]uint8
	for s := range lens {
		switch {
		case s < 144:
			lens[s] = 8
		case s < 256:
			lens[s] = 9
		case s < 280:
			lens[s] = 7
		default:
			lens[s] = 8
		}
	}
	if !inflBuild(t.fixedLit[:], inflLitBits, lens[:], t.lit[:]) {
		panic("ws: fixed literal/length code")
	}
	for s := range 32 {
		lens[s] = 5
	}
	if !inflBuild(t.fixedDist[:], inflDistBits, lens[:32], t.dist[:]) {
		panic("ws: fixed distance code")
	}
	return t
})

type inflTables struct {
	lit  [288]uint32 // entries of each symbol, without lengths
	dist [32]uint32
	code [19]uint32

	fixedLit  [inflLitSize]uint32 // the fixed code's tables
	fixedDist [inflDistSize]uint32
}

// codeOrder is the order of the code length code's lengths (RFC 1951 §3.2.7).
var codeOrder = [19]uint8{16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15}

// inflBuild fills table with the entries of the canonical Huffman code whose
// lengths are lens (RFC 1951 §3.2.2), looked up first by primary bits of the
// input, then in a subtable for longer codes. payload holds each symbol's
// entry without its length. It reports false for a code compress/flate
// rejects (one that assigns more codes than there are, or leaves some
// unassigned, except the empty code and a single one-bit code, which zlib
// emits) or one too large for table.
func inflBuild(table []uint32, primary uint, lens []uint8, payload []uint32) bool {
	var count [16]int
	for _, l := range lens {
		count[l]++
	}
	count[0] = 0
	left, maxLen, n := 1, 0, 0
	for l := 1; l <= 15; l++ {
		left = left<<1 - count[l]
		if left < 0 {
			return false
		}
		if count[l] != 0 {
			maxLen = l
		}
		n += count[l]
	}
	psize := 1 << primary
	if left > 0 {
		if maxLen != 0 && !(maxLen == 1 && count[1] == 1) {
			return false
		}
		// An empty code, or half of it: the rest of the entries are
		// invalid.
		clear(table[:psize])
	}
	var offs [16]int
	for l := 1; l < 15; l++ {
		offs[l+1] = offs[l] + count[l]
	}
	var sorted [288]uint16
	for s, l := range lens {
		if l != 0 {
			sorted[offs[l]] = uint16(s)
			offs[l]++
		}
	}
	// The codes of up to primary bits: each length's are put in a
	// table as long as they are, which is then doubled (its entries
	// repeat for every value of the bits past the code) before the next
	// length's go in. Copies, rather than a store per repeated entry, make
	// the table of a small message's block cheap to build.
	i, code, size := 0, 0, 1
	for l := uint(1); l <= primary; l++ {
		copy(table[size:2*size], table[:size])
		size *= 2
		for range count[l] {
			s := sorted[i]
			table[bits.Reverse16(uint16(code))>>(16-l)] = payload[s] | uint32(l)
			code++
			i++
		}
		code <<= 1
	}
	// Longer codes go in subtables, after the first table.
	next, start, subBits, prefix := psize, 0, uint(0), -1
	for l := primary + 1; l <= uint(maxLen); l++ {
		for ; count[l] > 0; count[l]-- {
			s := sorted[i]
			rev := int(bits.Reverse16(uint16(code)) >> (16 - l))
			if p := rev & (psize - 1); p != prefix {
				// A subtable for the codes that start with p: as
				// many index bits as the longest of them needs.
				sb := l - primary
				room := 1 << sb
				for {
					room -= count[primary+sb]
					if room <= 0 {
						break
					}
					sb++
					if primary+sb > 15 {
						return false
					}
					room <<= 1
				}
				start, subBits, prefix = next, sb, p
				next += 1 << sb
				if next > len(table) {
					return false
				}
				table[p] = uint32(start)<<16 | uint32(sb)<<12 | inflSub<<8 | uint32(primary)
			}
			e := payload[s] | uint32(l)
			for j := rev >> primary; j < 1<<subBits; j += 1 << (l - primary) {
				table[start+j] = e
			}
			code++
			i++
		}
		code <<= 1
	}
	return true
}

// inflate decodes the raw DEFLATE stream in, followed by the flush tail
// (deflateTail), as a compressed message's reads would. It returns the
// size of the output and whether it is done; whole reports whether the
// output, from f.buf[maxHeaderSize:], is all still in the buffer. The
// output is checked against limit (none if negative) and, with v, as
// UTF-8, which v then holds the state of (the caller resets it if it gives
// up). ok is false for anything it leaves to the reads to decide.
func (f *inflater) inflate(in []byte, limit int64, v *utf8Validator) (total int64, whole, ok bool) {
	if f.buf == nil {
		f.buf = make([]byte, maxHeaderSize+inflOutSize)
	}
	tab := inflPayloads()
	out := f.buf[maxHeaderSize:]
	end := len(out) - inflSlack // a symbol starts at most here
	vlen := len(in) + len(deflateTail)
	var bb uint64 // bits read, not yet used, from the lowest
	var nb uint   // how many
	ip, op, checked := 0, 0, 0
	var slid int64 // output before out[0]

	// refill makes nb at least 56, unless the input ends first.
	refill := func() {
		if ip+8 <= len(in) {
			bb |= binary.LittleEndian.Uint64(in[ip:]) << nb
			ip += int(63-nb) >> 3
			nb |= 56
			return
		}
		for nb <= 56 && ip < vlen {
			bb |= uint64(inflByte(in, ip)) << nb
			ip++
			nb += 8
		}
	}
	// slide keeps the last window of output, having checked the rest.
	slide := func() bool {
		if v != nil && !v.valid(out[checked:op]) {
			return false
		}
		slid += int64(op - inflWindow)
		if limit >= 0 && slid+inflWindow > limit {
			return false
		}
		copy(out, out[op-inflWindow:op])
		op, checked = inflWindow, inflWindow
		return true
	}

	for {
		if nb < 3 {
			refill()
			if nb < 3 {
				// The input ends where a block would start: the
				// message is complete.
				break
			}
		}
		final := bb&1 != 0
		typ := bb >> 1 & 3
		bb >>= 3
		nb -= 3
		var lt *[inflLitSize]uint32
		var dt *[inflDistSize]uint32
		switch typ {
		case 0:
			// Stored: from the next byte, its length and the length's
			// complement, then the bytes.
			bb >>= nb & 7
			nb -= nb & 7
			ip -= int(nb >> 3)
			bb, nb = 0, 0
			if ip+4 > vlen {
				return 0, false, false
			}
			n := int(inflByte(in, ip)) | int(inflByte(in, ip+1))<<8
			nn := int(inflByte(in, ip+2)) | int(inflByte(in, ip+3))<<8
			ip += 4
			if uint16(nn) != ^uint16(n) || ip+n > vlen {
				return 0, false, false
			}
			for n > 0 {
				if op >= end && !slide() {
					return 0, false, false
				}
				k := min(n, end-op)
				inflCopy(out[op:op+k], in, ip)
				ip += k
				op += k
				n -= k
			}
		case 1:
			lt, dt = &tab.fixedLit, &tab.fixedDist
		case 2:
			if !f.header(in, vlen, &bb, &nb, &ip, tab) {
				return 0, false, false
			}
			lt, dt = &f.lit, &f.dist
		default:
			return 0, false, false
		}
		for lt != nil {
			if op > end && !slide() {
				return 0, false, false
			}
			if nb < 48 {
				refill()
			}
			e := lt[bb&(1<<inflLitBits-1)]
			if e>>8&15 == inflSub {
				e = lt[int(e>>16)+int(bb>>inflLitBits)&(1<<(e>>12&15)-1)]
			}
			n := uint(e & 0xff)
			if n > nb {
				return 0, false, false
			}
			bb >>= n
			nb -= n
			switch e >> 8 & 15 {
			case inflLiteral:
				out[op] = byte(e >> 16)
				op++
				continue
			case inflEnd:
				lt = nil
				continue
			case inflLength:
			default:
				return 0, false, false
			}
			length := int(e >> 16)
			if x := uint(e >> 12 & 15); x != 0 {
				if x > nb {
					return 0, false, false
				}
				length += int(bb & (1<<x - 1))
				bb >>= x
				nb -= x
			}
			if nb < 28 {
				refill()
			}
			e = dt[bb&(1<<inflDistBits-1)]
			if e>>8&15 == inflSub {
				e = dt[int(e>>16)+int(bb>>inflDistBits)&(1<<(e>>12&15)-1)]
			}
			n = uint(e & 0xff)
			if n > nb || e>>8&15 != inflDistance {
				return 0, false, false
			}
			bb >>= n
			nb -= n
			dist := int(e >> 16)
			if x := uint(e >> 12 & 15); x != 0 {
				if x > nb {
					return 0, false, false
				}
				dist += int(bb & (1<<x - 1))
				bb >>= x
				nb -= x
			}
			if dist > op {
				// Before the start of the message: there is no
				// earlier context to refer to.
				return 0, false, false
			}
			src := op - dist
			switch {
			case dist >= 8:
				// Eight bytes at a time, each read written already;
				// most matches take two.
				d, s := out[op:op+inflSlack], out[src:src+inflSlack]
				binary.LittleEndian.PutUint64(d, binary.LittleEndian.Uint64(s))
				binary.LittleEndian.PutUint64(d[8:], binary.LittleEndian.Uint64(s[8:]))
				for i := 16; i < length; i += 8 {
					binary.LittleEndian.PutUint64(d[i:], binary.LittleEndian.Uint64(s[i:]))
				}
			case dist == 1:
				b := out[src]
				for i := range out[op : op+length] {
					out[op+i] = b
				}
			default:
				for i := range length {
					out[op+i] = out[src+i]
				}
			}
			op += length
		}
		if final {
			// At most an empty stored block's header byte and the
			// flush tail may follow (RFC 7692 §7.2.3.4), as
			// readInflated accepts.
			if vlen-(ip-int(nb>>3)) > len(deflateTail)+1 {
				return 0, false, false
			}
			break
		}
	}
	total = slid + int64(op)
	if limit >= 0 && total > limit {
		return 0, false, false
	}
	if v != nil && (!v.valid(out[checked:op]) || !v.complete()) {
		return 0, false, false
	}
	return total, slid == 0, true
}

// header reads a dynamic Huffman block's codes (RFC 1951 §3.2.7) into
// f.lit and f.dist, with the checks compress/flate makes.
func (f *inflater) header(in []byte, vlen int, bbp *uint64, nbp *uint, ipp *int, tab *inflTables) bool {
	bb, nb, ip := *bbp, *nbp, *ipp
	refill := func() {
		for nb <= 56 && ip < vlen {
			bb |= uint64(inflByte(in, ip)) << nb
			ip++
			nb += 8
		}
	}
	refill()
	if nb < 14 {
		return false
	}
	nlit := int(bb&31) + 257
	ndist := int(bb>>5&31) + 1
	nclen := int(bb>>10&15) + 4
	bb >>= 14
	nb -= 14
	if nlit > maxLitSyms || ndist > maxDistSyms {
		return false
	}
	var clens [19]uint8
	for i := range nclen {
		if nb < 3 {
			refill()
			if nb < 3 {
				return false
			}
		}
		clens[codeOrder[i]] = uint8(bb & 7)
		bb >>= 3
		nb -= 3
	}
	if !inflBuild(f.codes[:], inflCodeBits, clens[:], tab.code[:]) {
		return false
	}
	lens := f.lens[:nlit+ndist]
	for i := 0; i < len(lens); {
		if nb < 16 {
			refill()
		}
		e := f.codes[bb&(1<<inflCodeBits-1)]
		n := uint(e & 0xff)
		if n > nb || e>>8&15 != inflCodeLen {
			return false
		}
		bb >>= n
		nb -= n
		sym := int(e >> 16)
		if sym < 16 {
			lens[i] = uint8(sym)
			i++
			continue
		}
		var rep int
		var x uint
		var l uint8
		switch sym {
		case 16:
			if i == 0 {
				return false
			}
			rep, x, l = 3, 2, lens[i-1]
		case 17:
			rep, x = 3, 3
		default:
			rep, x = 11, 7
		}
		if x > nb {
			return false
		}
		rep += int(bb & (1<<x - 1))
		bb >>= x
		nb -= x
		if i+rep > len(lens) {
			return false
		}
		for range rep {
			lens[i] = l
			i++
		}
	}
	if !inflBuild(f.lit[:], inflLitBits, lens[:nlit], tab.lit[:]) ||
		!inflBuild(f.dist[:], inflDistBits, lens[nlit:], tab.dist[:]) {
		return false
	}
	*bbp, *nbp, *ipp = bb, nb, ip
	return true
}

// inflByte is byte i of in followed by the flush tail.
func inflByte(in []byte, i int) byte {
	if i < len(in) {
		return in[i]
	}
	return deflateTail[i-len(in)]
}

// inflCopy copies into p the bytes from i of in followed by the flush tail.
func inflCopy(p, in []byte, i int) {
	if i < len(in) {
		n := copy(p, in[i:])
		p, i = p[n:], len(in)
	}
	copy(p, deflateTail[i-len(in):])
}
