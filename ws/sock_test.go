package ws

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyTransportTouchesDescriptor: the descriptor tricks stay in the
// transport. No non-test file of the package but sock*.go imports syscall
// or unsafe, or names a RawConn.
func TestOnlyTransportTouchesDescriptor(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "sock") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "syscall" || path == "unsafe" {
				t.Errorf("%s imports %s: descriptor work belongs in the transport (sock*.go)", name, path)
			}
		}
		if strings.Contains(string(src), "RawConn") {
			t.Errorf("%s names RawConn: descriptor work belongs in the transport (sock*.go)", name)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d files: not the package's directory?", checked)
	}
}
