package ws

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
)

// maskRef is the obvious byte-at-a-time masking from RFC 6455 §5.3.
func maskRef(key [4]byte, pos int, b []byte) int {
	for i := range b {
		b[i] ^= key[(pos+i)&3]
	}
	return (pos + len(b)) & 3
}

func maskRandKey(r *rand.Rand) (k [4]byte) {
	for i := range k {
		k[i] = byte(r.Uint32())
	}
	return k
}

func maskRandBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func maskCheck(t *testing.T, key [4]byte, pos int, in []byte) {
	t.Helper()
	got := bytes.Clone(in)
	want := bytes.Clone(in)
	gotPos := maskBytes(key, pos, got)
	wantPos := maskRef(key, pos, want)
	if gotPos != wantPos || !bytes.Equal(got, want) {
		t.Fatalf("maskBytes(%x, %d, len %d): pos %d, want %d; bytes equal %v",
			key, pos, len(in), gotPos, wantPos, bytes.Equal(got, want))
	}
	// Masking is an involution.
	if p := maskBytes(key, pos, got); p != wantPos || !bytes.Equal(got, in) {
		t.Fatalf("maskBytes(%x, %d, len %d) twice did not restore the input", key, pos, len(in))
	}
}

func TestMaskBytes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{}
	for n := range 101 {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 127, 128, 129, 1000, 4093, 4096, 65536+7, 1<<20+3)
	for _, n := range lengths {
		reps := 3
		if n > 4096 {
			reps = 1
		}
		for pos := range 4 {
			for range reps {
				key := maskRandKey(r)
				in := maskRandBytes(r, n)
				maskCheck(t, key, pos, in)
				// Positions outside 0..3 are taken modulo 4.
				maskCheck(t, key, pos+4*int(r.IntN(100)), in)
			}
		}
	}
}

// TestMaskBytesUnaligned masks sub-slices at every start offset, so that word
// loads and stores hit every alignment, and checks that bytes outside the
// slice are untouched.
func TestMaskBytesUnaligned(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	buf := maskRandBytes(r, 256)
	for off := range 16 {
		for _, n := range []int{0, 1, 7, 8, 9, 31, 32, 33, 100, 200} {
			key := maskRandKey(r)
			pos := r.IntN(4)
			got := bytes.Clone(buf)
			want := bytes.Clone(buf)
			gp := maskBytes(key, pos, got[off:off+n])
			wp := maskRef(key, pos, want[off:off+n])
			if gp != wp || !bytes.Equal(got, want) {
				t.Fatalf("off %d len %d pos %d: mismatch", off, n, pos)
			}
		}
	}
}

func TestMaskBytesSplit(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		n := r.IntN(300)
		key := maskRandKey(r)
		pos := r.IntN(4)
		in := maskRandBytes(r, n)
		want := bytes.Clone(in)
		wantPos := maskBytes(key, pos, want)

		// Mask the same buffer in up to four calls, chaining the offset.
		got := bytes.Clone(in)
		p := pos
		rest := got
		for k := 0; k < 3 && len(rest) > 0; k++ {
			m := r.IntN(len(rest) + 1)
			p = maskBytes(key, p, rest[:m])
			rest = rest[m:]
		}
		p = maskBytes(key, p, rest)
		if p != wantPos || !bytes.Equal(got, want) {
			t.Fatalf("len %d pos %d: split masking differs from one call", n, pos)
		}
	}
}

func FuzzMaskBytes(f *testing.F) {
	f.Add([]byte{}, uint32(0), 0, 0)
	f.Add([]byte("Hello"), uint32(0x37fa213d), 0, 3)
	f.Add(bytes.Repeat([]byte{0xff}, 33), uint32(0x01020304), 1, 9)
	f.Add(bytes.Repeat([]byte("abcdefgh"), 20), uint32(0xdeadbeef), 3, 77)
	f.Add(make([]byte, 1000), uint32(0x80808080), 2, 500)
	f.Fuzz(func(t *testing.T, data []byte, k uint32, pos, split int) {
		key := [4]byte{byte(k), byte(k >> 8), byte(k >> 16), byte(k >> 24)}
		pos &= 3
		want := bytes.Clone(data)
		wantPos := maskRef(key, pos, want)

		got := bytes.Clone(data)
		if gp := maskBytes(key, pos, got); gp != wantPos || !bytes.Equal(got, want) {
			t.Fatalf("one call: pos %d, want %d; equal %v", gp, wantPos, bytes.Equal(got, want))
		}
		if gp := maskBytes(key, pos, got); gp != wantPos || !bytes.Equal(got, data) {
			t.Fatal("masking twice did not restore the input")
		}

		if split < 0 {
			split = -(split + 1)
		}
		split %= len(data) + 1
		got = bytes.Clone(data)
		p := maskBytes(key, pos, got[:split])
		p = maskBytes(key, p, got[split:])
		if p != wantPos || !bytes.Equal(got, want) {
			t.Fatalf("split at %d differs from one call", split)
		}
	})
}

var maskBenchSizes = []struct {
	name string
	n    int
}{
	{"16B", 16},
	{"1KiB", 1 << 10},
	{"64KiB", 64 << 10},
	{"1MiB", 1 << 20},
}

func BenchmarkMaskBytes(b *testing.B) {
	key := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	for _, sz := range maskBenchSizes {
		for _, pos := range []int{0, 1} {
			b.Run(fmt.Sprintf("%s/pos=%d", sz.name, pos), func(b *testing.B) {
				buf := make([]byte, sz.n)
				b.SetBytes(int64(sz.n))
				for b.Loop() {
					maskBytes(key, pos, buf)
				}
			})
		}
	}
	// Baseline: the byte-at-a-time reference.
	for _, sz := range maskBenchSizes {
		b.Run("ref/"+sz.name, func(b *testing.B) {
			buf := make([]byte, sz.n)
			b.SetBytes(int64(sz.n))
			for b.Loop() {
				maskRef(key, 0, buf)
			}
		})
	}
}
