//go:build !race

package wesos_test

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
