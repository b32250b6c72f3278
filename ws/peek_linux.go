package ws

import (
	"syscall"
	"unsafe"
)

// canPeek reports whether socketReadable works here, so that a connection
// can wait for data without holding a read buffer.
const canPeek = true

// socketReadable reports whether a read of fd would not block: it has
// bytes, or end of stream, or an error to report.
//
// It makes the recvfrom system call itself rather than through
// syscall.Recvfrom, whose large frame (it decodes a source address this
// peek does not want) sits at the bottom of the idle wait and alone would
// make every waiting connection's goroutine outgrow its first 2 KiB stack.
// MSG_DONTWAIT never blocks, so the raw call (no scheduler notification)
// is enough.
func socketReadable(fd uintptr) bool {
	var b [1]byte
	_, _, errno := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1,
		syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
	// A byte, end of stream (0) or an error other than "would block".
	return errno != syscall.EAGAIN
}
