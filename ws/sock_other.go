//go:build !linux

package ws

import "net"

// directState is empty where the direct transport of sock_linux.go is not
// implemented: every connection takes the portable one.
type directState struct{}

func (s *sock) newTransport(net.Conn, bool) transport { return new(portable) }

func (s *sock) noDirectWrites() {}

func (s *sock) wakeAtFirstByte() {}

func (s *sock) wakeOnAnyByte() {}

// writeNow writes nothing: the portable transport has no write that does
// not wait.
func (s *sock) writeNow([]byte) int { return 0 }
