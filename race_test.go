//go:build race

package wesos_test

// raceEnabled reports whether the race detector is on: the tests that move
// a GiB scale down under it (CI also runs them without it, at full size).
const raceEnabled = true
