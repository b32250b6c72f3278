//go:build !race

package ws

// dflRace reports whether the race detector is on: the deflate tests that
// move hundreds of MiB scale their sizes down under it.
const dflRace = false
