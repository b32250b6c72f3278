//go:build race

package natsbus

// raceEnabled reports whether the race detector is on: its shadow memory
// makes the memory figures meaningless, so the tests that measure memory
// only report them under it.
const raceEnabled = true
