//go:build unix

// Package fdlimit lets a test that opens thousands of sockets raise the
// process's open-file limit, or skip where it cannot. It is imported by
// test files only.
package fdlimit

import (
	"syscall"
	"testing"
)

// Raise raises the soft RLIMIT_NOFILE of the test process to its hard
// limit if the soft one is below need, and skips the test if even the hard
// limit cannot hold need descriptors.
func Raise(t testing.TB, need uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("skipped: cannot read RLIMIT_NOFILE (%v); the test needs %d file descriptors", err, need)
	}
	if uint64(lim.Cur) >= need {
		return
	}
	if uint64(lim.Max) < need {
		t.Skipf("skipped: the test needs %d file descriptors, but the hard RLIMIT_NOFILE is %d (raise it with ulimit -Hn)", need, lim.Max)
	}
	old := lim.Cur
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Skipf("skipped: the test needs %d file descriptors; raising the soft RLIMIT_NOFILE from %d to %d failed: %v", need, old, lim.Max, err)
	}
	t.Logf("raised the soft RLIMIT_NOFILE from %d to %d", old, lim.Max)
}
