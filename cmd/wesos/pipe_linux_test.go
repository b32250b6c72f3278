package main

import (
	"fmt"
	"syscall"
	"unsafe"
)

// pipeUnread returns how many bytes wait unread in the pipe that is the
// stdin of process pid, or -1 when that cannot be known.
func pipeUnread(pid int) int {
	fd, err := syscall.Open(fmt.Sprintf("/proc/%d/fd/0", pid), syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return -1
	}
	defer syscall.Close(fd)
	var n int32
	const fionread = 0x541B
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, uintptr(fd), fionread, uintptr(unsafe.Pointer(&n))); e != 0 {
		return -1
	}
	return int(n)
}
