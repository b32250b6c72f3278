//go:build !linux

package ws

import "net"

// sockDirect is empty where the descriptor tricks of sock_linux.go are not
// implemented: connections keep their read buffer while they wait, and read
// and write through net.Conn.
type sockDirect struct{}

func (s *sock) initDirect(net.Conn, bool) {}

func (s *sock) direct() bool { return false }

func (s *sock) noDirectWrites() {}

func (s *sock) waitReadable() error { panic("unreachable") }

func (s *sock) readAhead([]byte) (int, error) { panic("unreachable") }

func (s *sock) sockWrite(b []byte) (int, error) { return s.nc.Write(b) }

func (s *sock) releaseFd() {}
