//go:build !race

package natsbus

// raceEnabled reports whether the race detector is on.
const raceEnabled = false
