package ws

import (
	"encoding/binary"
	"errors"
)

// This file is the stateless codec layer: a frame header as a value, and pure
// functions that decode it from and encode it into bytes (RFC 6455 §5.2).

type opcode byte

const (
	opContinuation opcode = 0x0
	opText         opcode = 0x1
	opBinary       opcode = 0x2
	opClose        opcode = 0x8
	opPing         opcode = 0x9
	opPong         opcode = 0xA
)

func (op opcode) isControl() bool { return op&0x8 != 0 }

func (op opcode) isReserved() bool {
	switch op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
		return false
	}
	return true
}

// Bits of the first header byte.
const (
	bitFIN  = 0x80
	bitRSV1 = 0x40
	bitRSV2 = 0x20
	bitRSV3 = 0x10
)

// maxHeaderSize is the largest frame header: 2 bytes, an 8-byte length and a
// 4-byte masking key.
const maxHeaderSize = 14

// maxControlPayload is the largest payload a control frame may carry.
const maxControlPayload = 125

// header is one frame header.
type header struct {
	fin    bool
	rsv    byte // the RSV1..RSV3 bits, in place (bitRSV1|bitRSV2|bitRSV3)
	op     opcode
	masked bool
	key    [4]byte
	length int64
}

var errLengthTopBit = errors.New("ws: 64-bit payload length has the most significant bit set")

// parseHeader decodes the frame header at the start of b. It returns the
// header and its encoded size. If b holds too few bytes it returns n == 0,
// a nil error and in need the total number of bytes required so far (at most
// maxHeaderSize). Only violations that the header alone shows are reported
// here; the rules that depend on connection state are checked by the reader.
func parseHeader(b []byte) (h header, n, need int, err error) {
	if len(b) < 2 {
		return h, 0, 2, nil
	}
	b0, b1 := b[0], b[1]
	h.fin = b0&bitFIN != 0
	h.rsv = b0 & (bitRSV1 | bitRSV2 | bitRSV3)
	h.op = opcode(b0 & 0x0F)
	h.masked = b1&0x80 != 0
	n = 2
	switch l := b1 & 0x7F; l {
	case 126:
		n += 2
	case 127:
		n += 8
	default:
		h.length = int64(l)
	}
	if h.masked {
		n += 4
	}
	if len(b) < n {
		return header{}, 0, n, nil
	}
	p := 2
	switch b1 & 0x7F {
	case 126:
		h.length = int64(binary.BigEndian.Uint16(b[2:]))
		p += 2
	case 127:
		u := binary.BigEndian.Uint64(b[2:])
		if u>>63 != 0 {
			return header{}, 0, 0, errLengthTopBit
		}
		h.length = int64(u)
		p += 8
	}
	if h.masked {
		copy(h.key[:], b[p:p+4])
	}
	return h, n, 0, nil
}

// headerSize is the encoded size of h.
func headerSize(h header) int {
	n := 2
	switch {
	case h.length > 0xFFFF:
		n += 8
	case h.length > 125:
		n += 2
	}
	if h.masked {
		n += 4
	}
	return n
}

// putHeader encodes h into b, which must have room for headerSize(h) bytes,
// and returns the number of bytes written. Lengths use their minimal encoding.
func putHeader(b []byte, h header) int {
	b0 := byte(h.op) | h.rsv
	if h.fin {
		b0 |= bitFIN
	}
	var b1 byte
	if h.masked {
		b1 = 0x80
	}
	b[0] = b0
	n := 2
	switch {
	case h.length > 0xFFFF:
		b[1] = b1 | 127
		binary.BigEndian.PutUint64(b[2:], uint64(h.length))
		n += 8
	case h.length > 125:
		b[1] = b1 | 126
		binary.BigEndian.PutUint16(b[2:], uint16(h.length))
		n += 2
	default:
		b[1] = b1 | byte(h.length)
	}
	if h.masked {
		copy(b[n:], h.key[:])
		n += 4
	}
	return n
}
