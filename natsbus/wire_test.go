package natsbus

import (
	"testing"

	"github.com/wesos/wesos/ws"
)

func TestHeaderRoundTrip(t *testing.T) {
	for _, h := range []chunkHeader{
		{pub: "P", msg: 1, part: 0, typ: ws.Text, end: endMore},
		{pub: "AbCdEf0123456789xyzABC", msg: 1<<64 - 1, part: 1<<64 - 1, typ: ws.Binary, end: endLast},
		{pub: "x", msg: 7, part: 3, typ: ws.Text, end: endCut},
	} {
		v := string(appendHeader(nil, h))
		got, err := parseHeader(v)
		if err != nil || got != h {
			t.Errorf("parseHeader(%q) = %+v, %v; want %+v", v, got, err, h)
		}
	}
	for _, v := range []string{
		"", "1", "2 P 1 0 t e", "1 P 0 0 t e", "1 P 1 0 x e", "1 P 1 0 t ee", "1 P 1 0 t z",
		"1  1 0 t e", "1 P -1 0 t e", "1 P 1 0 t e extra", "1 P 1 99999999999999999999 t e",
	} {
		if _, err := parseHeader(v); err == nil {
			t.Errorf("parseHeader(%q) accepted it", v)
		}
	}
}

// FuzzParseHeader: any header value parses or is refused, never panics, and
// what parses encodes back to the same value.
func FuzzParseHeader(f *testing.F) {
	f.Add("1 P 1 0 t e")
	f.Add("1 AbCdEf0123456789xyzABC 18446744073709551615 3 b -")
	f.Add("1 x 7 3 t c")
	f.Fuzz(func(t *testing.T, v string) {
		h, err := parseHeader(v)
		if err != nil {
			return
		}
		if got := string(appendHeader(nil, h)); got != v {
			// Numbers with leading zeros or a "+" parse to the same value.
			h2, err := parseHeader(got)
			if err != nil || h2 != h {
				t.Fatalf("%q parsed to %+v, which encodes to %q, which parses to %+v, %v", v, h, got, h2, err)
			}
		}
	})
}

func TestIncompleteRune(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want int
	}{
		{"", 0}, {"a", 0}, {"é", 0}, {"\xc3", 1}, {"a\xe2\x82", 2}, {"€", 0}, {"\xf0\x9f\x98", 3}, {"😀", 0},
		{"\x80\x80\x80\x80", 0},
	} {
		if got := incompleteRune([]byte(tc.p)); got != tc.want {
			t.Errorf("incompleteRune(%q) = %d, want %d", tc.p, got, tc.want)
		}
	}
}
