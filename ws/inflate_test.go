package ws

import (
	"bytes"
	"compress/flate"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"testing"
	"unicode/utf8"
)

// refInflate decodes in, followed by the flush tail, with compress/flate as
// a compressed message's reads do (readInflated): the input ending anywhere
// ends the message, and after a final block at most five bytes may follow.
// It reports the output and whether the reads would accept the message.
func refInflate(in []byte) ([]byte, bool) {
	src := bytes.NewReader(append(slices.Clone(in), deflateTail[:]...))
	out, err := io.ReadAll(flate.NewReader(src))
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return out, true
	case err == nil:
		// io.ReadAll returns nil at io.EOF: a final block ended it.
		return out, src.Len() <= len(deflateTail)+1
	}
	return nil, false
}

// checkInflate asserts that inflate accepts in only if compress/flate does,
// with the same output, limit and UTF-8 verdicts; it returns whether
// inflate accepted it.
func checkInflate(t *testing.T, f *inflater, in []byte) bool {
	t.Helper()
	want, ok := refInflate(in)
	for _, limit := range []int64{-1, int64(len(want)), int64(len(want)) - 1} {
		for _, text := range []bool{false, true} {
			var v *utf8Validator
			if text {
				v = new(utf8Validator)
			}
			total, whole, got := f.inflate(in, limit, v)
			if !got {
				continue
			}
			if !ok {
				t.Fatalf("inflate accepts what compress/flate rejects: %x", in)
			}
			if total != int64(len(want)) || limit >= 0 && total > limit || text && !utf8.Valid(want) {
				t.Fatalf("inflate: %d bytes (limit %d, text %v), compress/flate %d (valid UTF-8 %v): %x", total, limit, text, len(want), utf8.Valid(want), in)
			}
			if whole && !bytes.Equal(f.buf[maxHeaderSize:maxHeaderSize+total], want) {
				t.Fatalf("inflate's output differs from compress/flate's: %x", in)
			}
		}
	}
	_, _, got := f.inflate(in, -1, nil)
	return got
}

// deflateMsg compresses msg as a sender of permessage-deflate does: level,
// a sync flush, and the flush tail removed.
func deflateMsg(t testing.TB, msg []byte, level int) []byte {
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, level)
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(msg)
	fw.Flush()
	return bytes.TrimSuffix(b.Bytes(), deflateTail[:])
}

// TestInflate checks the package's decoder against compress/flate on the
// messages senders make (every level, sizes past a slide of its buffer,
// text and binary) and on corruptions of them: it must decode the former
// itself and may accept nothing compress/flate rejects.
func TestInflate(t *testing.T) {
	f := getInflater()
	defer putInflater(f)
	rng := rand.New(rand.NewPCG(1, 2))
	var msgs [][]byte
	for _, size := range []int{0, 1, 100, 1 << 10, 64 << 10, 300 << 10} {
		msgs = append(msgs, dflText(size, 1))
		bin := make([]byte, size)
		for i := range bin {
			bin[i] = byte(rng.IntN(4)) * 60
		}
		msgs = append(msgs, bin)
	}
	msgs = append(msgs, bytes.Repeat([]byte("é"), 70<<10), bytes.Repeat([]byte{0}, 200<<10))
	for _, msg := range msgs {
		for _, level := range []int{flate.NoCompression, flate.BestSpeed, 5, flate.BestCompression, flate.HuffmanOnly} {
			in := deflateMsg(t, msg, level)
			if !checkInflate(t, f, in) {
				t.Fatalf("inflate gave up on a %d-byte message at level %d", len(msg), level)
			}
			for range 20 {
				bad := slices.Clone(in)
				if len(bad) == 0 {
					break
				}
				switch rng.IntN(3) {
				case 0:
					bad[rng.IntN(len(bad))] ^= byte(1 << rng.IntN(8))
				case 1:
					bad = bad[:rng.IntN(len(bad))]
				default:
					bad[rng.IntN(len(bad))] = byte(rng.IntN(256))
				}
				checkInflate(t, f, bad)
			}
		}
	}
	// Invalid UTF-8, a final block, data after it.
	for _, in := range [][]byte{
		deflateMsg(t, []byte("ab\xffcd"), 1),
		deflateMsg(t, []byte("ab\xe2\x82"), 1),
		{0x4b, 0x4c, 0x4a, 0x06, 0x00}, // a final fixed block ("abc")
		{0x4b, 0x4c, 0x4a, 0x06, 0x00, 1, 2, 3, 4, 5, 6},
		{0x03, 0x00}, // an empty final block
	} {
		checkInflate(t, f, in)
	}
}

// FuzzInflate checks that the package's decoder accepts nothing
// compress/flate rejects and agrees with it on what it accepts.
func FuzzInflate(f *testing.F) {
	for _, size := range []int{0, 10, 1 << 10, 40 << 10} {
		for _, level := range []int{1, 9, flate.HuffmanOnly, flate.NoCompression} {
			f.Add(deflateMsg(f, dflText(size, 1), level))
		}
	}
	f.Add([]byte{0x4b, 0x4c, 0x4a, 0x06, 0x00})
	f.Fuzz(func(t *testing.T, in []byte) {
		fi := getInflater()
		defer putInflater(fi)
		checkInflate(t, fi, in)
	})
}

// BenchmarkInflate compares, per JSON-like text message as a sender
// compresses it, the package's decoder with compress/flate reading it
// through a pooled decompressor as the reads of a message do (into a 16 KiB
// buffer, checking UTF-8), which is what checking a passed-through message
// cost before.
//
//	go test -run '^$' -bench Inflate -benchmem ./ws/
func BenchmarkInflate(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		in := deflateMsg(b, dflText(size, 1), 1)
		b.Run(fmt.Sprintf("own/%dKiB", size>>10), func(b *testing.B) {
			f := getInflater()
			defer putInflater(f)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for range b.N {
				var v utf8Validator
				if n, _, ok := f.inflate(in, -1, &v); !ok || n != int64(size) {
					b.Fatal("inflate failed")
				}
			}
		})
		b.Run(fmt.Sprintf("compress-flate/%dKiB", size>>10), func(b *testing.B) {
			src := bytes.NewReader(nil)
			fr := flate.NewReader(src).(flate.Resetter)
			buf := make([]byte, writeBufSize)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for range b.N {
				src.Reset(append(in[:len(in):len(in)], deflateTail[:]...))
				fr.Reset(src, nil)
				var v utf8Validator
				n := 0
				for {
					m, err := fr.(io.Reader).Read(buf)
					n += m
					if !v.valid(buf[:m]) {
						b.Fatal("invalid UTF-8")
					}
					if err != nil {
						break
					}
				}
				if n != size {
					b.Fatal("short")
				}
			}
		})
	}
}
