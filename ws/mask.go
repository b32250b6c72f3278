package ws

import (
	"encoding/binary"
	"math/bits"
)

// maskBytes XORs b in place with the 4-byte masking key (RFC 6455 §5.3), starting at key
// offset pos&3, and returns the key offset for the byte after b ((pos+len(b))&3).
//
// Masking is an involution: applying it twice with the same key and pos restores b.
// A payload split across several calls is masked exactly as in one call when each
// call passes the offset returned by the previous one.
func maskBytes(key [4]byte, pos int, b []byte) int {
	pos &= 3
	if len(b) < 8 {
		for i := range b {
			b[i] ^= key[pos&3]
			pos = (pos + 1) & 3
		}
		return pos
	}

	// Build a word whose little-endian byte i is key[(pos+i)&3]: rotating the
	// little-endian key word right by 8*pos bits moves key[pos] into byte 0.
	k32 := bits.RotateLeft32(binary.LittleEndian.Uint32(key[:]), -8*pos)
	k := uint64(k32)<<32 | uint64(k32)

	// Every step below consumes a multiple of 4 bytes, so the key offset for
	// the tail is still pos. The 64-byte blocks are indexed rather than
	// resliced: advancing the slice costs a pointer clamp per step, and at
	// 32 bytes a step that overhead made the loop about twice the
	// instructions of the XORs themselves (cachegrind, 64 KiB echo).
	blocks := len(b) &^ 63
	for i := 0; i < blocks; i += 64 {
		s := b[i : i+64 : i+64]
		binary.LittleEndian.PutUint64(s[0:8], binary.LittleEndian.Uint64(s[0:8])^k)
		binary.LittleEndian.PutUint64(s[8:16], binary.LittleEndian.Uint64(s[8:16])^k)
		binary.LittleEndian.PutUint64(s[16:24], binary.LittleEndian.Uint64(s[16:24])^k)
		binary.LittleEndian.PutUint64(s[24:32], binary.LittleEndian.Uint64(s[24:32])^k)
		binary.LittleEndian.PutUint64(s[32:40], binary.LittleEndian.Uint64(s[32:40])^k)
		binary.LittleEndian.PutUint64(s[40:48], binary.LittleEndian.Uint64(s[40:48])^k)
		binary.LittleEndian.PutUint64(s[48:56], binary.LittleEndian.Uint64(s[48:56])^k)
		binary.LittleEndian.PutUint64(s[56:64], binary.LittleEndian.Uint64(s[56:64])^k)
	}
	b = b[blocks:]
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b[:8], binary.LittleEndian.Uint64(b[:8])^k)
		b = b[8:]
	}
	if len(b) >= 4 {
		binary.LittleEndian.PutUint32(b[:4], binary.LittleEndian.Uint32(b[:4])^k32)
		b = b[4:]
	}
	for i := range b {
		b[i] ^= byte(k32 >> (8 * i))
	}
	return (pos + len(b)) & 3
}
