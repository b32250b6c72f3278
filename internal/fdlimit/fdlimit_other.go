//go:build !unix

// Package fdlimit lets a test that opens thousands of sockets raise the
// process's open-file limit, or skip where it cannot. It is imported by
// test files only.
package fdlimit

import "testing"

// Raise does nothing where there is no RLIMIT_NOFILE.
func Raise(t testing.TB, need uint64) { t.Helper() }
