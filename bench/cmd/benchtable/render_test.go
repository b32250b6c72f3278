package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// loadResults reads the saved full run that RESULTS.md was rendered from.
func loadResults(t *testing.T) *Results {
	t.Helper()
	b, err := os.ReadFile("../../results.json")
	if err != nil {
		t.Fatal(err)
	}
	var res Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.EchoOrder) == 0 {
		t.Fatal("results.json has no echo rows")
	}
	return &res
}

// The summary the README shows has a row for every echo scenario, the ones
// wesos loses included, flags the rows where connections got no reply, and
// calls the raw TCP echo what it is.
func TestSummaryShowsEveryRow(t *testing.T) {
	res := loadResults(t)
	sum := summaryTable(res)
	for _, k := range res.EchoOrder {
		if !strings.Contains(sum, "| echo "+k.String()+",") {
			t.Errorf("the summary lacks the row %s", k)
		}
	}
	// Rows of the saved run that wesos loses, and a starved one.
	for _, want := range []string{
		"| echo 64 conns × 64 KiB × 1, MB/s | 1,798† | gws 2,328† | 0.77× |",
		"| echo 1 conn × 16 B × 16, replies/s | 88.8k‡ | gorilla 115.1k | 0.77× |",
		"**starved** (connections of 1,024 with no reply while measured): gorilla 513, coder 789, gobwas 683, gws 10",
		"naive raw TCP echo",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("the summary lacks %q", want)
		}
	}
	if md := render(res); strings.Contains(strings.ToLower(md), "ceiling") {
		t.Error("RESULTS.md calls the raw TCP echo a ceiling")
	}
}

// -readme replaces what lies between the README's markers, and only that.
func TestWriteReadme(t *testing.T) {
	res := loadResults(t)
	path := filepath.Join(t.TempDir(), "README.md")
	before, after := "# title\n\ntext before\n", "\ntext after\n"
	os.WriteFile(path, []byte(before+readmeStart+"\nold table\n"+readmeEnd+after), 0o644)
	old := *readme
	*readme = path
	defer func() { *readme = old }()

	writeReadme(res)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	want := before + readmeStart + "\n" + readmeBlock(res) + readmeEnd + after
	if got != want {
		t.Fatalf("README after -readme:\n%s\nwant:\n%s", got, want)
	}
}
