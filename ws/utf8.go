package ws

import (
	"encoding/binary"
	"unicode/utf8"
)

// UTF-8 validation for text messages (RFC 6455 §8.1) uses a shift-based DFA:
// each state is a bit offset (a multiple of 6) into a 64-bit row, and
// utf8Trans[b] holds, for every state s, the next state at bits s..s+5. One
// step is a single table load and shift, with no data-dependent branch:
//
//	s = utf8Trans[b] >> s & 63
//
// Every state other than utf8Reject can still be completed to valid UTF-8, and
// every byte that turns the input into an impossible prefix (bad lead byte,
// missing or stray continuation byte, overlong form, surrogate, code point
// above U+10FFFF) leads to utf8Reject, which is absorbing. The validator thus
// fails at the first offending byte, exactly as utf8.Valid's definition
// implies.
const (
	utf8Accept  = 0 * 6 // on a code point boundary (the zero value)
	utf8Reject  = 1 * 6 // invalid; absorbing
	utf8Need1   = 2 * 6 // one more continuation byte, 80..BF
	utf8Need2   = 3 * 6 // two more continuation bytes, 80..BF
	utf8Need3   = 4 * 6 // three more continuation bytes, 80..BF
	utf8AfterE0 = 5 * 6 // after E0: next A0..BF, then one more (rejects overlongs)
	utf8AfterED = 6 * 6 // after ED: next 80..9F, then one more (rejects surrogates)
	utf8AfterF0 = 7 * 6 // after F0: next 90..BF, then two more (rejects overlongs)
	utf8AfterF4 = 8 * 6 // after F4: next 80..8F, then two more (rejects > U+10FFFF)
	utf8States  = 9
)

var utf8Trans = buildUTF8Trans()

// utf8Next is the DFA's transition function in readable form; buildUTF8Trans
// packs it into utf8Trans.
func utf8Next(s uint64, b byte) uint64 {
	in := func(lo, hi byte) bool { return lo <= b && b <= hi }
	switch s {
	case utf8Accept:
		switch {
		case b < 0x80:
			return utf8Accept
		case in(0xC2, 0xDF):
			return utf8Need1
		case b == 0xE0:
			return utf8AfterE0
		case b == 0xED:
			return utf8AfterED
		case in(0xE1, 0xEF):
			return utf8Need2
		case b == 0xF0:
			return utf8AfterF0
		case b == 0xF4:
			return utf8AfterF4
		case in(0xF1, 0xF3):
			return utf8Need3
		}
		// 80..BF (stray continuation), C0, C1 (always overlong), F5..FF.
	case utf8Need1:
		if in(0x80, 0xBF) {
			return utf8Accept
		}
	case utf8Need2:
		if in(0x80, 0xBF) {
			return utf8Need1
		}
	case utf8Need3:
		if in(0x80, 0xBF) {
			return utf8Need2
		}
	case utf8AfterE0:
		if in(0xA0, 0xBF) {
			return utf8Need1
		}
	case utf8AfterED:
		if in(0x80, 0x9F) {
			return utf8Need1
		}
	case utf8AfterF0:
		if in(0x90, 0xBF) {
			return utf8Need2
		}
	case utf8AfterF4:
		if in(0x80, 0x8F) {
			return utf8Need2
		}
	}
	return utf8Reject
}

func buildUTF8Trans() (t [256]uint64) {
	for b := range t {
		for i := range utf8States {
			s := uint64(i * 6)
			t[b] |= utf8Next(s, byte(b)) << s
		}
	}
	return t
}

// utf8Validator checks UTF-8 incrementally. The zero value is ready to use.
type utf8Validator struct {
	state uint8 // a DFA state (utf8Accept, utf8Reject, ...)
}

// utf8BulkMin is the length from which, on a code point boundary, valid
// hands the rest of a chunk that is not plain ASCII to utf8.Valid, which
// checks multi-byte text faster than the byte-at-a-time DFA.
const utf8BulkMin = 64

const utf8HiBits = 0x8080808080808080

// valid feeds p and reports whether everything fed so far is a valid prefix of UTF-8.
// Once it returns false it keeps returning false until reset.
func (v *utf8Validator) valid(p []byte) bool {
	s := uint64(v.state)
	if s == utf8Reject {
		return false
	}
	for {
		if s == utf8Accept {
			// ASCII fast path: 32, then 8, then 1 byte at a time.
			for len(p) >= 32 {
				w0 := binary.LittleEndian.Uint64(p[0:8])
				w1 := binary.LittleEndian.Uint64(p[8:16])
				w2 := binary.LittleEndian.Uint64(p[16:24])
				w3 := binary.LittleEndian.Uint64(p[24:32])
				if (w0|w1|w2|w3)&utf8HiBits != 0 {
					break
				}
				p = p[32:]
			}
			for len(p) >= 8 && binary.LittleEndian.Uint64(p[:8])&utf8HiBits == 0 {
				p = p[8:]
			}
			if len(p) >= utf8BulkMin {
				n, ok := utf8Bulk(p)
				if !ok {
					v.state = utf8Reject
					return false
				}
				p = p[n:]
			}
			for len(p) > 0 && p[0] < utf8.RuneSelf {
				p = p[1:]
			}
		}
		if len(p) == 0 {
			break
		}
		s = utf8Trans[p[0]] >> (s & 63) & 63
		p = p[1:]
		if s == utf8Reject {
			v.state = utf8Reject
			return false
		}
	}
	v.state = uint8(s)
	return true
}

// utf8Bulk validates, with utf8.Valid, p[:n] for a cut n within the last
// four bytes of p (len(p) >= 4), where p starts on a code point boundary. If
// ok, p[:n] is valid UTF-8 ending on a code point boundary, and the caller
// continues with p[n:] in the accept state. If not ok, p itself is not a valid
// UTF-8 prefix.
func utf8Bulk(p []byte) (n int, ok bool) {
	// Cut before the last byte in p's final four that is not a continuation
	// byte. p[:n] is then either valid and complete, or invalid; in the latter
	// case p is invalid too, because either p[:n] already contains an error or
	// it ends in a truncated sequence that p[n] (not a continuation) cannot
	// continue. If the last four bytes are all continuation bytes, cut before
	// them: p is invalid (no sequence takes four continuation bytes) and the
	// DFA rejects the rest unless utf8.Valid already did.
	n = len(p) - 4
	for i := len(p) - 1; i >= len(p)-4; i-- {
		if !utf8.RuneStart(p[i]) {
			continue
		}
		n = i
		break
	}
	return n, utf8.Valid(p[:n])
}

// complete reports whether the input so far ends on a code point boundary (no sequence is open); call at message end.
func (v *utf8Validator) complete() bool {
	return v.state == utf8Accept
}

// reset returns the validator to the start state.
func (v *utf8Validator) reset() {
	v.state = utf8Accept
}
