// Package extest holds what the tests of the examples and of the wesos
// command share: building the package into a real binary, running it,
// reading its output and stopping it with a signal, the way a user at a
// terminal would.
package extest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeout bounds every wait of the examples' tests. It is no measure of
// speed (a passing test waits for events): a loaded machine under the race
// detector may take many times longer than an idle one.
const Timeout = 2 * time.Minute

// Context returns a context that ends with the test or after Timeout.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Logger returns a logger that writes to the test's output.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Build compiles the package in the test's working directory (the example)
// into a binary in t.TempDir and returns its path.
func Build(t testing.TB) string {
	t.Helper()
	bin, err := BuildIn(t.TempDir(), "example")
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// BuildIn compiles the package in the working directory into dir/name,
// with the extra go build flags, and returns the binary's path. It is for
// a TestMain that builds once for all the tests.
func BuildIn(dir, name string, flags ...string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(dir, name)
	args := append(append([]string{"build", "-o", bin}, flags...), ".")
	out, err := exec.Command(goBin, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// Process is a running example binary.
type Process struct {
	cmd    *exec.Cmd
	stdout Buffer
	stderr Buffer
	done   chan struct{} // closed when the process has exited
	err    error         // from Wait; set before done is closed
}

// Start runs bin with args and stdin (nil for none). The process is killed,
// if it still runs, when the test ends; its output is logged if the test
// failed.
func Start(t testing.TB, bin string, stdin io.Reader, args ...string) *Process {
	t.Helper()
	p := &Process{done: make(chan struct{})}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdin = stdin
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s stdout:\n%s\nstderr:\n%s", filepath.Base(bin), p.Stdout(), p.Stderr())
		}
	})
	return p
}

// Pid returns the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done returns a channel closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Signal sends sig to the process.
func (p *Process) Signal(t testing.TB, sig os.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v: %v", sig, err)
	}
}

// Stdout returns what the process has written to its standard output.
func (p *Process) Stdout() string { return p.stdout.String() }

// Stderr returns what the process has written to its standard error.
func (p *Process) Stderr() string { return p.stderr.String() }

// AwaitStderr waits until the process's standard error matches re and
// returns the submatches of the first match.
func (p *Process) AwaitStderr(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	return p.await(t, "stderr", &p.stderr, re)
}

// AwaitStdout waits until the process's standard output matches re and
// returns the submatches of the first match.
func (p *Process) AwaitStdout(t testing.TB, re *regexp.Regexp) []string {
	t.Helper()
	return p.await(t, "stdout", &p.stdout, re)
}

func (p *Process) await(t testing.TB, name string, b *Buffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(Timeout)
	for time.Now().Before(deadline) {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		select {
		case <-p.done:
			if m := re.FindStringSubmatch(b.String()); m != nil {
				return m
			}
			t.Fatalf("process exited (%v) before its %s matched %q", p.err, name, re)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not match %q within %v", name, re, Timeout)
	return nil
}

// Interrupt sends SIGINT, as Ctrl-C at a terminal does.
func (p *Process) Interrupt(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatalf("SIGINT: %v", err)
	}
}

// Wait waits for the process to exit and returns its exit code.
func (p *Process) Wait(t testing.TB) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(Timeout):
		t.Fatalf("process did not exit within %v", Timeout)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

// Buffer is a bytes.Buffer that a writer (a process, a goroutine) and the
// test may use at the same time.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
