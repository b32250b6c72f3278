package ws

import "syscall"

// canPeek reports whether socketReadable works here, so that a connection
// can wait for data without holding a read buffer.
const canPeek = true

// socketReadable reports whether a read of fd would not block: it has
// bytes, or end of stream, or an error to report.
func socketReadable(fd uintptr) bool {
	var b [1]byte
	n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return n > 0 || err != syscall.EAGAIN
}
