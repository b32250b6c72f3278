package main

// The tests run the built wesos binary, as a user at a terminal would: the
// servers and clients are processes, their output is read from their stdout
// and stderr, and their exit status is checked.

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wesos/wesos/internal/extest"
	"github.com/wesos/wesos/internal/testpeer"
)

// wesosBin is the binary under test, built once by TestMain.
var wesosBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wesos-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	wesosBin, err = extest.BuildIn(dir, "wesos", flags...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	testpeer.Report("cmd/wesos")
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintf(os.Stderr, "goroutines leaked: %v\n", err)
			code = 1
		}
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// startServe runs wesos serve on a free port of 127.0.0.1 with args and
// returns the server and its ws:// URL. The test's cleanup interrupts it and
// waits for it to exit, and fails the test if it does not exit with 0.
func startServe(t *testing.T, args ...string) (*extest.Process, string) {
	t.Helper()
	p := extest.Start(t, wesosBin, nil, append([]string{"serve", "-addr", "127.0.0.1:0"}, args...)...)
	url := p.AwaitStderr(t, regexp.MustCompile(`msg=listening url=(\S+)`))[1]
	t.Cleanup(func() {
		select {
		case <-p.Done():
			return // the test stopped it
		default:
		}
		p.Interrupt(t)
		if code := p.Wait(t); code != 0 {
			t.Errorf("wesos serve exited with %d after SIGINT; stderr:\n%s", code, p.Stderr())
		}
	})
	return p, url
}

// dialResult is what a finished wesos dial left.
type dialResult struct {
	stdout, stderr string
	code           int
}

// dialWith runs wesos dial with args and stdin to its end.
func dialWith(t *testing.T, stdin string, args ...string) dialResult {
	t.Helper()
	p := extest.Start(t, wesosBin, strings.NewReader(stdin), append([]string{"dial"}, args...)...)
	code := p.Wait(t)
	return dialResult{p.Stdout(), p.Stderr(), code}
}

// startDial runs wesos dial with args and a stdin that the test writes
// (and closes to end the session).
func startDial(t *testing.T, args ...string) (*extest.Process, io.WriteCloser) {
	t.Helper()
	// An *os.File, so that the child reads the pipe itself: with another
	// reader, exec's copying goroutine would hold Wait until the test
	// closes it.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	p := extest.Start(t, wesosBin, r, append([]string{"dial"}, args...)...)
	r.Close()
	return p, w
}

// line matches text as a whole line.
func line(text string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(text) + `$`)
}

// check fails the test unless the dial ended with code and its stderr
// matches each of want.
func (r dialResult) check(t *testing.T, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("exit status %d, want %d; stderr:\n%s", r.code, code, r.stderr)
	}
	for _, w := range want {
		if !regexp.MustCompile(w).MatchString(r.stderr) {
			t.Errorf("stderr does not match %q:\n%s", w, r.stderr)
		}
	}
}

// waitFor polls cond until it holds or the deadline (far beyond the event)
// passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(extest.Timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
