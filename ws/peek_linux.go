package ws

import (
	"os"
	"syscall"
	"unsafe"
)

// canPeek reports whether socketRead and socketReadv work here, so that a
// connection can wait for data without holding a read buffer.
const canPeek = true

// socketRead reads from the non-blocking socket fd into p. ready is false
// when there is nothing to read yet (EAGAIN): the caller waits for the
// poller. n == 0 with a nil error is the end of the stream.
func socketRead(fd uintptr, p []byte) (n int, ready bool, err error) {
	for {
		n, err = syscall.Read(int(fd), p)
		if err != syscall.EINTR {
			break
		}
	}
	if err == syscall.EAGAIN {
		return 0, false, nil
	}
	if err != nil {
		n = 0
	}
	return n, true, err
}

// socketReadv is socketRead into a then, once a is full, b: one system
// call that reads the rest of a frame's payload and the bytes after it.
// a and b must not be empty.
func socketReadv(fd uintptr, a, b []byte) (n int, ready bool, err error) {
	iov := [2]syscall.Iovec{
		{Base: unsafe.SliceData(a)},
		{Base: unsafe.SliceData(b)},
	}
	iov[0].SetLen(len(a))
	iov[1].SetLen(len(b))
	for {
		r, _, e := syscall.Syscall(syscall.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if e == syscall.EINTR {
			continue
		}
		if e == syscall.EAGAIN {
			return 0, false, nil
		}
		if e != 0 {
			return 0, true, e
		}
		return int(r), true, nil
	}
}

// socketWrite writes p to the non-blocking socket fd. ready is false when
// the socket cannot take a byte now (EAGAIN): the caller waits for the
// poller. A short write is not an error; the caller writes the rest.
func socketWrite(fd uintptr, p []byte) (n int, ready bool, err error) {
	for {
		r, _, e := syscall.Syscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		switch e {
		case 0:
			return int(r), true, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, false, nil
		}
		return 0, true, os.NewSyscallError("write", e)
	}
}
