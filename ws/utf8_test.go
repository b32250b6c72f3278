package ws

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

// utf8Completable reports whether some valid UTF-8 string starts with q.
// It is derived from utf8.Valid alone: q is a valid prefix iff appending at
// most three continuation bytes makes it valid, and only the first appended
// byte is constrained beyond 80..BF (to 80..8F, 80..9F, 90..BF or A0..BF), so
// trying 80, 90 and A0 for it is enough.
func utf8Completable(q []byte) bool {
	if utf8.Valid(q) {
		return true
	}
	for n := 1; n <= 3; n++ {
		for _, first := range []byte{0x80, 0x90, 0xA0} {
			t := append(bytes.Clone(q), first)
			for len(t) < len(q)+n {
				t = append(t, 0x80)
			}
			if utf8.Valid(t) {
				return true
			}
		}
	}
	return false
}

// utf8FirstInvalid returns the least i such that no valid UTF-8 string starts with
// s[:i+1], or -1 if s is a valid UTF-8 prefix.
func utf8FirstInvalid(s []byte) int {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRune(s[i:])
		if r != utf8.RuneError || size != 1 {
			i += size
			continue
		}
		// s[:i] is valid and complete; the error lies in s[i:i+4].
		for k := i; k < len(s) && k < i+4; k++ {
			if !utf8Completable(s[i : k+1]) {
				return k
			}
		}
		return -1 // a truncated but utf8Completable sequence at the end
	}
	return -1
}

// TestUTF8FirstInvalidReference checks the reference itself on hand-worked
// cases.
func TestUTF8FirstInvalidReference(t *testing.T) {
	cases := []struct {
		s    string
		want int
	}{
		{"", -1},
		{"abc", -1},
		{"\xce", -1},
		{"\xce\xba", -1},
		{"\xed\xa0", 1},
		{"\xf4\x90", 1},
		{"\xe0\x80", 1},
		{"a\xc0", 1},
		{"\xe2\x82a", 2},
		{"\xf0\x9f\x98\x80\x80", 4},
	}
	for _, c := range cases {
		if got := utf8FirstInvalid([]byte(c.s)); got != c.want {
			t.Errorf("utf8FirstInvalid(%q) = %d, want %d", c.s, got, c.want)
		}
	}
}

// utf8FeedChunks feeds chunks to a fresh validator and returns the index of the
// first chunk for which valid returned false (-1 if none) and whether the
// whole input was accepted (valid && complete). It also checks that valid
// keeps returning false once it has.
func utf8FeedChunks(t *testing.T, chunks [][]byte) (failedAt int, accepted bool) {
	t.Helper()
	var v utf8Validator
	failedAt = -1
	for i, c := range chunks {
		ok := v.valid(c)
		if failedAt >= 0 && ok {
			t.Fatalf("valid returned true at chunk %d after false at chunk %d", i, failedAt)
		}
		if !ok && failedAt < 0 {
			failedAt = i
		}
	}
	if failedAt >= 0 {
		if v.complete() {
			t.Fatal("complete() true after valid returned false")
		}
		if v.valid(nil) || v.valid([]byte("a")) {
			t.Fatal("valid returned true after false")
		}
	}
	return failedAt, failedAt < 0 && v.complete()
}

func utf8SplitAt(s []byte, cuts []int) [][]byte {
	var chunks [][]byte
	prev := 0
	for _, c := range cuts {
		chunks = append(chunks, s[prev:c])
		prev = c
	}
	return append(chunks, s[prev:])
}

// utf8CheckSplits checks s fed byte by byte (which pins down the exact failing
// byte), in one piece, and split at the given cuts (sorted, within s).
func utf8CheckSplits(t *testing.T, s []byte, cuts []int) {
	t.Helper()
	want := utf8.Valid(s)
	bad := utf8FirstInvalid(s)

	// One byte at a time: valid fails exactly at the first bad byte.
	var v utf8Validator
	failedAt := -1
	for i := range s {
		ok := v.valid(s[i : i+1])
		if !ok && failedAt < 0 {
			failedAt = i
		} else if ok && failedAt >= 0 {
			t.Fatalf("%q byte by byte: valid true at %d after false at %d", s, i, failedAt)
		}
	}
	if ok := failedAt < 0 && v.complete(); failedAt != bad || ok != want {
		t.Fatalf("%q byte by byte: failed at %d, want %d; accepted %v, want %v", s, failedAt, bad, ok, want)
	}

	// In one piece.
	if failedAt, ok := utf8FeedChunks(t, [][]byte{s}); ok != want || (failedAt == 0) != (bad >= 0) {
		t.Fatalf("%q whole: failed at %d, accepted %v; want accepted %v, first bad byte %d", s, failedAt, ok, want, bad)
	}

	// Split: fails at the chunk holding the first bad byte.
	chunks := utf8SplitAt(s, cuts)
	wantChunk := -1
	if bad >= 0 {
		end := 0
		for i, c := range chunks {
			end += len(c)
			if bad < end {
				wantChunk = i
				break
			}
		}
	}
	if failedAt, ok := utf8FeedChunks(t, chunks); failedAt != wantChunk || ok != want {
		t.Fatalf("%q split at %v: failed at chunk %d, want %d; accepted %v, want %v",
			s, cuts, failedAt, wantChunk, ok, want)
	}
}

func TestUTF8ValidatorTable(t *testing.T) {
	cases := []struct {
		name   string
		chunks []string
		fail   int  // index of the chunk where valid first returns false, -1 if none
		done   bool // complete() at the end, if fail < 0
	}{
		{"empty", nil, -1, true},
		{"empty chunks", []string{"", "", ""}, -1, true},
		{"ascii", []string{"Hello, world"}, -1, true},
		{"2-byte split", []string{"\xce", "\xba"}, -1, true},
		{"kosme", []string{"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"}, -1, true},
		{"kosme split", []string{"\xce\xba\xe1", "\xbd", "\xb9\xcf\x83\xce", "\xbc\xce\xb5"}, -1, true},
		{"4-byte split", []string{"\xf0", "\x9f", "\x98", "\x80"}, -1, true},
		{"open 2-byte", []string{"a\xce"}, -1, false},
		{"open 3-byte", []string{"\xe2\x82"}, -1, false},
		{"open 4-byte", []string{"\xf4\x8f\xbf"}, -1, false},
		{"surrogate split", []string{"\xed", "\xa0"}, 1, false},
		{"surrogate high", []string{"\xed\xbf\xbf"}, 0, false},
		{"last before surrogates", []string{"\xed\x9f\xbf"}, -1, true},
		{"above max", []string{"\xf4", "\x90"}, 1, false},
		{"above max 2", []string{"\xf4\x90\x80\x80"}, 0, false},
		{"max", []string{"\xf4\x8f\xbf\xbf"}, -1, true},
		{"overlong 3-byte", []string{"\xe0", "\x80"}, 1, false},
		{"overlong 3-byte max", []string{"\xe0\x9f\xbf"}, 0, false},
		{"min 3-byte", []string{"\xe0\xa0\x80"}, -1, true},
		{"overlong 4-byte", []string{"\xf0", "\x8f"}, 1, false},
		{"min 4-byte", []string{"\xf0\x90\x80\x80"}, -1, true},
		{"C0", []string{"ab", "\xc0"}, 1, false},
		{"C1", []string{"\xc1\xbf"}, 0, false},
		{"F5", []string{"\xf5"}, 0, false},
		{"FF", []string{"\xff"}, 0, false},
		{"stray continuation", []string{"a", "\x80"}, 1, false},
		{"too many continuations", []string{"\xce\xba", "\xba"}, 1, false},
		{"truncated then ascii", []string{"\xe2\x82", "a"}, 1, false},
		{"truncated then lead", []string{"\xce", "\xce\xba"}, 1, false},
		{"sticky", []string{"\xff", "a", ""}, 0, false},
		{"error after long ascii", []string{strings.Repeat("a", 1000) + "\xff"}, 0, false},
		{"error late in long chunk", []string{strings.Repeat("κόσμε", 100) + "\xed\xa0\x80" + strings.Repeat("a", 100)}, 0, false},
		{"long chunk ends open", []string{strings.Repeat("κόσμε", 100) + "\xf0\x9f", "\x98\x80"}, -1, true},
		{"long chunk four continuations", []string{strings.Repeat("a", 100) + "\xf0\x9f\x98\x80\x80"}, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			chunks := make([][]byte, len(c.chunks))
			for i, s := range c.chunks {
				chunks[i] = []byte(s)
			}
			failedAt, ok := utf8FeedChunks(t, chunks)
			if failedAt != c.fail || ok != (c.fail < 0 && c.done) {
				t.Errorf("failed at chunk %d, want %d; accepted %v", failedAt, c.fail, ok)
			}
			whole := []byte(strings.Join(c.chunks, ""))
			if ok != utf8.Valid(whole) {
				t.Errorf("accepted %v, utf8.Valid %v", ok, !ok)
			}
		})
	}
}

func TestUTF8ValidatorReset(t *testing.T) {
	var v utf8Validator
	if !v.valid([]byte("\xe2\x82")) || v.complete() {
		t.Fatal("open sequence")
	}
	v.reset()
	if !v.complete() || !v.valid([]byte("a")) {
		t.Fatal("reset did not return to the start state")
	}
	if v.valid([]byte{0xff}) || v.valid([]byte("a")) {
		t.Fatal("invalid input accepted")
	}
	v.reset()
	if !v.valid([]byte("\xce\xba")) || !v.complete() {
		t.Fatal("reset did not clear the error")
	}
}

// TestUTF8ValidatorBoundaries feeds every boundary code point, alone and
// between other text, split at every position.
func TestUTF8ValidatorBoundaries(t *testing.T) {
	runes := []rune{
		0, 0x7F, 0x80, 0x7FF, 0x800, 0xFFF, 0x1000, 0xCFFF, 0xD000, 0xD7FF,
		0xE000, 0xFFFD, 0xFFFE, 0xFFFF, 0x10000, 0x3FFFF, 0x40000, 0xFFFFF,
		0x100000, 0x10FFFF,
	}
	for _, r := range runes {
		enc := utf8.AppendRune(nil, r)
		for _, s := range [][]byte{enc, append(append([]byte("ab"), enc...), 'z')} {
			if !utf8.Valid(s) {
				t.Fatalf("%U: bad test", r)
			}
			for cut := 0; cut <= len(s); cut++ {
				utf8CheckSplits(t, s, []int{cut})
			}
		}
	}
	// Invalid encodings just outside the valid ranges.
	invalid := []string{
		"\xc0\x80", "\xc1\xbf", // overlong 2-byte
		"\xe0\x80\x80", "\xe0\x9f\xbf", // overlong 3-byte
		"\xed\xa0\x80", "\xed\xbf\xbf", // surrogates D800, DFFF
		"\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", // overlong 4-byte
		"\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf", // above U+10FFFF
		"\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80", // 5- and 6-byte forms
		"\xfe", "\xff", "\x80", "\xbf",
		"\xc2\x7f", "\xc2\xc0", "\xe1\x80\x7f", "\xf1\x80\x80\xc0",
	}
	for _, s := range invalid {
		b := []byte(s)
		if utf8.Valid(b) {
			t.Fatalf("%q: bad test", s)
		}
		for cut := 0; cut <= len(b); cut++ {
			utf8CheckSplits(t, b, []int{cut})
		}
	}
}

// TestUTF8ValidatorExhaustive compares byte-by-byte feeding with the reference
// for all 1- and 2-byte strings, all 3-byte strings starting with a
// multi-byte lead, and 4-byte strings over boundary byte values.
func TestUTF8ValidatorExhaustive(t *testing.T) {
	check := func(s []byte) {
		var v utf8Validator
		bad := utf8FirstInvalid(s)
		for i := range s {
			if ok := v.valid(s[i : i+1]); ok != (bad < 0 || i < bad) {
				t.Fatalf("%q: valid at byte %d = %v, first bad byte %d", s, i, ok, bad)
			}
		}
		if got, want := v.complete(), utf8.Valid(s); got != want {
			t.Fatalf("%q: complete() = %v, utf8.Valid %v", s, got, want)
		}
	}
	for a := range 256 {
		check([]byte{byte(a)})
		for b := range 256 {
			check([]byte{byte(a), byte(b)})
		}
	}
	if testing.Short() {
		return
	}
	for a := 0xC0; a < 256; a++ {
		for b := 0x70; b < 0xC8; b++ {
			for c := range 256 {
				check([]byte{byte(a), byte(b), byte(c)})
			}
		}
	}
	edges := []byte{0x00, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC2, 0xE0, 0xF0}
	for a := 0xF0; a < 0xF8; a++ {
		for _, b := range edges {
			for _, c := range edges {
				for _, d := range edges {
					check([]byte{byte(a), b, c, d})
				}
			}
		}
	}
}

// utf8Gen returns a random string made mostly of valid code points of
// every length, with occasional bad or boundary bytes mixed in.
func utf8Gen(r *rand.Rand, n int) []byte {
	var s []byte
	for len(s) < n {
		switch r.IntN(12) {
		case 0, 1, 2:
			s = append(s, byte(r.IntN(0x80)))
		case 3, 4:
			s = append(s, strings.Repeat("x", r.IntN(40))...)
		case 5:
			s = utf8.AppendRune(s, rune(0x80+r.IntN(0x800-0x80)))
		case 6:
			s = utf8.AppendRune(s, rune(0x800+r.IntN(0x10000-0x800)))
		case 7:
			s = utf8.AppendRune(s, rune(0x10000+r.IntN(0x110000-0x10000)))
		case 8:
			s = append(s, []byte{0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
				0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF}[r.IntN(17)])
		case 9:
			s = append(s, byte(r.Uint32()))
		default:
			if r.IntN(20) == 0 {
				// Truncate the last code point.
				if len(s) > 0 {
					s = s[:len(s)-1]
				}
			} else {
				s = append(s, "κόσμε"...)
			}
		}
	}
	return s
}

func TestUTF8ValidatorRandomSplits(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	iters := 20000
	if testing.Short() {
		iters = 2000
	}
	valid := 0
	for range iters {
		var s []byte
		if r.IntN(4) == 0 {
			s = maskRandBytes(r, r.IntN(20))
		} else {
			s = utf8Gen(r, r.IntN(300))
		}
		// Sometimes make it valid, so both outcomes are well covered.
		if r.IntN(3) == 0 {
			s = bytes.ToValidUTF8(s, []byte("\uFFFD"))
		}
		if utf8.Valid(s) {
			valid++
		}
		var cuts []int
		for range r.IntN(6) {
			cuts = append(cuts, r.IntN(len(s)+1))
		}
		slices.Sort(cuts)
		utf8CheckSplits(t, s, cuts)
	}
	if valid < iters/4 || valid > iters*3/4 {
		t.Logf("note: %d of %d random inputs valid", valid, iters)
	}
}

func FuzzUTF8Validator(f *testing.F) {
	seeds := []string{
		"", "a", "Hello, world", "κόσμε", "\xce\xba", "\xed\xa0\x80", "\xed\x9f\xbf",
		"\xf4\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xe0\x80\x80", "\xe0\xa0\x80",
		"\xf0\x8f\xbf\xbf", "\xf0\x90\x80\x80", "\xc0\x80", "\xc1\xbf", "\xc2\x80",
		"\xf5\x80\x80\x80", "\xff", "\x80", "\xe2\x82", "\xe2\x82a", "\xef\xbf\xbd",
		"\xf0\x9f\x98\x80\x80",
		strings.Repeat("a", 100) + "\xf0\x9f\x98\x80",
		strings.Repeat("κόσμε", 30) + "\xe2\x82",
		strings.Repeat("😀", 40) + "\xed\xa0\x80" + strings.Repeat("a", 70),
	}
	for i, s := range seeds {
		f.Add([]byte(s), uint16(i), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		cuts := []int{int(cut1) % (len(data) + 1), int(cut2) % (len(data) + 1)}
		slices.Sort(cuts)
		utf8CheckSplits(t, data, cuts)
	})
}

var utf8BenchSizes = []struct {
	name string
	n    int
}{
	{"1KiB", 1 << 10},
	{"1MiB", 1 << 20},
}

func utf8BenchText(kind string, n int) []byte {
	var unit string
	switch kind {
	case "ascii":
		unit = "The quick brown fox jumps over the lazy dog. 0123456789\n"
	case "mixed":
		// Mostly ASCII with 2-, 3- and 4-byte code points, like chat text.
		unit = "Hello, κόσμε! Grüße aus Köln — 你好，世界 😀 ok\n"
	case "multibyte":
		unit = "κόσμε 你好世界 Привет мир 😀🎉 "
	}
	s := []byte(strings.Repeat(unit, n/len(unit)+1))[:n]
	// Cut back to a code point boundary so the text is valid.
	for !utf8.Valid(s) {
		s = s[:len(s)-1]
	}
	return s
}

func BenchmarkUTF8Validator(b *testing.B) {
	for _, kind := range []string{"ascii", "mixed", "multibyte"} {
		for _, sz := range utf8BenchSizes {
			text := utf8BenchText(kind, sz.n)
			b.Run(fmt.Sprintf("%s/%s/validator", kind, sz.name), func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				var v utf8Validator
				for b.Loop() {
					v.reset()
					if !v.valid(text) || !v.complete() {
						b.Fatal("invalid")
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%s/validator-chunks-100", kind, sz.name), func(b *testing.B) {
				// Fed in 100-byte chunks that split code points.
				b.SetBytes(int64(len(text)))
				var v utf8Validator
				for b.Loop() {
					v.reset()
					for p := text; len(p) > 0; {
						n := min(100, len(p))
						if !v.valid(p[:n]) {
							b.Fatal("invalid")
						}
						p = p[n:]
					}
					if !v.complete() {
						b.Fatal("incomplete")
					}
				}
			})
			b.Run(fmt.Sprintf("%s/%s/utf8.Valid", kind, sz.name), func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				for b.Loop() {
					if !utf8.Valid(text) {
						b.Fatal("invalid")
					}
				}
			})
		}
	}
}

// TestIncompleteRune pins how many trailing bytes a relay holds back.
func TestIncompleteRune(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want int
	}{
		{"", 0}, {"abc", 0}, {"é", 0}, {"€", 0}, {"😀", 0},
		{"a\xc3", 1}, {"a\xe2\x82", 2}, {"a\xf0\x9f\x98", 3}, {"\xf0\x9f", 2},
		{"a\x82", 0},            // a stray continuation byte: not a rune's start
		{"a\xff", 0},            // not UTF-8 at all: nothing to wait for
		{"\x82\x82\x82\x82", 0}, // no start within the last three bytes
	} {
		if got := incompleteRune([]byte(tc.p)); got != tc.want {
			t.Errorf("incompleteRune(%q) = %d, want %d", tc.p, got, tc.want)
		}
	}
}
