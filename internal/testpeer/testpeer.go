// Package testpeer serves the tests that drive programs nobody on this
// project wrote (Python's websockets, Node's ws, Chromium): it skips such a
// test under -short, skips it when the program is missing (and fails it
// instead in CI, where .ci/run installs every peer), and remembers what was
// missing so that a plain `go test` run says so at its end instead of
// hiding a skipped suite behind "ok".
//
// It is imported by test files only.
package testpeer

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (the CI environment variable is
// set to anything but "", "0" or "false"), where a missing peer is a
// failure, not a skip.
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// SkipShort skips t under -short, saying in one line what it leaves out.
func SkipShort(t testing.TB, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip("skipped under -short: " + what)
	}
}

var (
	mu      sync.Mutex
	missing = map[string]string{} // peer name → how to install it
)

// Require runs probe, a command that prints the version of the peer called
// name, and returns that version. If the probe fails, the peer is missing:
// see Missing. install says how to install the peer.
func Require(t testing.TB, name, install string, probe ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, probe[0], probe[1:]...).CombinedOutput()
	if err != nil {
		Missing(t, name, install, fmt.Sprintf("%s does not run (%v: %s)",
			strings.Join(probe, " "), err, bytes.TrimSpace(out)))
	}
	version := string(bytes.TrimSpace(out))
	t.Logf("peer: %s %s", name, version)
	return version
}

// Missing ends t for want of the peer called name: it fails t in CI and
// skips it elsewhere, after recording the peer for Report. why says what
// is wrong, install how to put it right.
func Missing(t testing.TB, name, install, why string) {
	t.Helper()
	msg := fmt.Sprintf("third-party peer missing: %s: %s; install it with: %s", name, why, install)
	if InCI() {
		t.Fatal(msg + " (CI is set: skipping the peer is not allowed)")
	}
	mu.Lock()
	missing[name] = install
	mu.Unlock()
	t.Skip(msg)
}

// Report writes, after a package's tests (call it from TestMain after
// m.Run), which peers were missing and so which tests were skipped. go test
// shows a passing package's output only with -v, so the lines also go to
// the terminal (/dev/tty) when there is one.
func Report(pkg string) {
	mu.Lock()
	names := make([]string, 0, len(missing))
	for name := range missing {
		names = append(names, name)
	}
	mu.Unlock()
	if len(names) == 0 {
		return
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "%s: tests skipped: %s is not installed (%s)\n", pkg, name, missing[name])
	}
	os.Stdout.WriteString(b.String())
	if !testing.Verbose() {
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			tty.WriteString(b.String())
			tty.Close()
		}
	}
}
