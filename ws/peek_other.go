//go:build !linux

package ws

// canPeek is false where socketReadable is not implemented: connections
// keep their read buffer while they wait.
const canPeek = false

func socketReadable(uintptr) bool { return true }
