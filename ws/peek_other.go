//go:build !linux

package ws

// canPeek is false where socketRead is not implemented: connections keep
// their read buffer while they wait, and read through net.Conn.
const canPeek = false

func socketRead(uintptr, []byte) (int, bool, error) { panic("unreachable") }

func socketReadv(uintptr, []byte, []byte) (int, bool, error) { panic("unreachable") }

func socketWrite(uintptr, []byte) (int, bool, error) { panic("unreachable") }
