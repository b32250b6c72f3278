package main

import (
	"slices"
	"strings"
	"testing"
)

func TestSplitCommand(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string
	}{
		{"cat", []string{"cat"}, ""},
		{"  tr  a-z\tA-Z ", []string{"tr", "a-z", "A-Z"}, ""},
		{`sh -c 'echo "hi there"; exit 1'`, []string{"sh", "-c", `echo "hi there"; exit 1`}, ""},
		{`sed -u "s/^/you said: /"`, []string{"sed", "-u", "s/^/you said: /"}, ""},
		{`a "b\"c\\d\e" f\ g ''`, []string{"a", `b"c\d\e`, "f g", ""}, ""},
		{`x'y'"z"`, []string{"xyz"}, ""},
		{"", nil, "empty command"},
		{"   ", nil, "empty command"},
		{"'open", nil, "unterminated single quote"},
		{`"open`, nil, "unterminated double quote"},
		{`end\`, nil, "backslash at the end"},
	} {
		got, err := splitCommand(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("splitCommand(%q) = %q, %v; want error %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("splitCommand(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// FuzzSplitCommand: any input splits or fails without panicking, and the
// words it gives, quoted again, split into the same words.
func FuzzSplitCommand(f *testing.F) {
	for _, s := range []string{"cat", `sh -c 'a "b" c'`, `a\ b "c\"d" ''`, `'`, `"\`, "x\ty\nz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, err := splitCommand(s)
		if err != nil {
			return
		}
		if len(words) == 0 {
			t.Fatalf("splitCommand(%q): no words and no error", s)
		}
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
		}
		again, err := splitCommand(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(again, words) {
			t.Fatalf("splitCommand(%q) = %q; quoted again: %q, %v", s, words, again, err)
		}
	})
}

func TestTruncate(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes
	got := truncate(long)
	if len(got) > 123 || !strings.HasPrefix(long, got) || len(got)%2 != 0 {
		t.Errorf("truncate: %d bytes %q", len(got), got)
	}
	if truncate("short") != "short" {
		t.Error("truncate changed a short reason")
	}
}
