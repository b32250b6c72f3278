package wesos_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestReadmeSnippets keeps the README in step with the Example functions:
// every Go snippet of README.md must be a part of one of them (compared line
// by line, ignoring indentation and runs of spaces), so that every snippet
// compiles, and the runnable ones are checked against their output.
func TestReadmeSnippets(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	var examples [][]string
	for _, name := range []string{"example_test.go", "example_gostreams_test.go", "ws/example_test.go", "ws/example_browser_test.go", "natsbus/example_test.go", "kflate/example_test.go"} {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		examples = append(examples, codeLines(string(src)))
	}
	snippets := regexp.MustCompile("(?s)```go\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	if len(snippets) < 5 {
		t.Fatalf("README.md has %d Go snippets; the pattern may be broken", len(snippets))
	}
	for _, m := range snippets {
		snippet := codeLines(m[1])
		found := false
		for _, ex := range examples {
			found = found || containsRun(ex, snippet)
		}
		if !found {
			t.Errorf("this README snippet is in no Example function:\n%s", m[1])
		}
	}
}

var spaces = regexp.MustCompile(`\s+`)

// codeLines returns the non-blank lines of src, trimmed, with every run of
// white space made one space.
func codeLines(src string) []string {
	var out []string
	for _, l := range strings.Split(src, "\n") {
		if l = strings.TrimSpace(spaces.ReplaceAllString(l, " ")); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// containsRun reports whether run occurs in lines as consecutive lines.
func containsRun(lines, run []string) bool {
	for i := 0; i+len(run) <= len(lines); i++ {
		match := true
		for j := range run {
			if lines[i+j] != run[j] {
				match = false
				break
			}
		}
		if match {
			return true
		}
	}
	return false
}

// TestReadmeTestCommandIsCI: the test command on the README's first screen
// is the one CI runs, word for word, so that a new user runs what CI checks.
func TestReadmeTestCommandIsCI(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := os.ReadFile(".ci/run")
	if err != nil {
		t.Fatal(err)
	}
	var cmd string
	for line := range strings.SplitSeq(string(readme), "\n") {
		if strings.HasPrefix(line, "go test ") {
			cmd, _, _ = strings.Cut(line, "#")
			cmd = strings.TrimSpace(cmd)
			break
		}
	}
	if cmd == "" {
		t.Fatal("README.md shows no line starting with `go test `")
	}
	if !slices.Contains(strings.Split(string(ci), "\n"), cmd) {
		t.Errorf(".ci/run does not run the README's test command %q on a line of its own", cmd)
	}
}

// TestStandardLibraryOnly keeps the README's word on dependencies: the
// packages ws and flow and the root package import, directly or through
// other packages of this module, nothing but the standard library (test
// files aside).
func TestStandardLibraryOnly(t *testing.T) {
	const module = "github.com/wesos/wesos"
	seen := map[string]bool{}
	var visit func(dir string)
	visit = func(dir string) {
		if seen[dir] {
			return
		}
		seen[dir] = true
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no Go files (%v)", dir, err)
		}
		for _, name := range files {
			if strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), name, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				switch {
				case path == module || strings.HasPrefix(path, module+"/"):
					visit(filepath.Join(".", strings.TrimPrefix(strings.TrimPrefix(path, module), "/")))
				case strings.Contains(strings.Split(path, "/")[0], "."):
					t.Errorf("%s imports %s, which is not in the standard library", name, path)
				}
			}
		}
	}
	for _, dir := range []string{".", "ws", "flow"} {
		visit(dir)
	}
}
