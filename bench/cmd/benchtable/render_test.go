package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wesos/wesos/bench/internal/stats"
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
	// The rows of the saved run that wesos loses keep their ratio, and the
	// starved connections of every peer are named on their row.
	for _, k := range res.EchoOrder {
		r, line := res.Echo[k.String()], ""
		for _, l := range strings.Split(sum, "\n") {
			if strings.HasPrefix(l, "| echo "+k.String()+", ") {
				line = l
			}
		}
		w := r["wesos"]
		if w == nil || w.Error != "" {
			continue
		}
		get := func(e *stats.Echo) float64 { return e.RepliesPerS }
		if k.Size > 1<<10 {
			get = func(e *stats.Echo) float64 { return e.MBPerS }
		}
		vals := map[string]float64{}
		for lib, e := range r {
			if e != nil && e.Error == "" {
				vals[lib] = get(e)
				if e.Starved > 0 && (!strings.Contains(line, "**starved**") || !strings.Contains(line, lib+" ")) {
					t.Errorf("the row %s does not say that %s starved %d connections: %s", k, lib, e.Starved, line)
				}
			}
		}
		if bl, bv, ok := best(vals, true); ok && vals["wesos"] < bv {
			ratio := fmt.Sprintf(" | %.2f× | ", vals["wesos"]/bv)
			if !strings.Contains(line, "| "+bl+" ") || !strings.Contains(line, ratio) {
				t.Errorf("the row %s, which wesos loses, does not name %s or the ratio%s: %s", k, bl, ratio, line)
			}
		}
	}
	if !strings.Contains(sum, "naive raw TCP echo") {
		t.Error("the summary does not call the raw TCP echo naive")
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
