//go:build !race

package main

// raceEnabled reports whether the race detector is on; the binary under
// test is then built with it too.
const raceEnabled = false
