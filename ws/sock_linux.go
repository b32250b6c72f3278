package ws

// The Linux direct transport. Where the net.Conn is a plain TCP or Unix
// socket (not a TLS or HTTP/2 stream, not a wrapper, whose Read may add to
// the socket's), the sock reads and writes its descriptor itself:
//
//   - the idle wait holds no read buffer: it waits in the poller's callback
//     and takes a buffer from the pool only when bytes are there
//     (awaitInput, readIdle);
//   - a large payload read also reads what follows it, with one readv,
//     and when it must wait for many bytes it has the system wake it only
//     once they are there, not at every arrival (readLarge, SO_RCVLOWAT);
//   - writes make the write system call directly (write), a much shallower
//     call chain than net.Conn.Write's, when nothing but the Conn can close
//     the socket (a hijacked or self-dialed connection).
//
// The rest (reads that complete a frame, vectored writes, deadlines) goes
// through net.Conn, as in the portable transport (sock.go).

import (
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// directState is what the direct transport keeps in the sock.
type directState struct {
	raw     syscall.RawConn
	rawRead func(uintptr) bool // rawReadFd, made once
	rawP    []byte             // where readAheadFd reads payload
	rawWant int                // how much of rawP readLarge's caller waits for
	rawErr  error              // what the RawConn callbacks met
	// The descriptor, for writes that make the system call directly, or
	// -1; fdUse counts those in progress.
	fd    int32
	fdUse atomic.Int32

	// lowat is the socket's receive low-water mark (SO_RCVLOWAT) as the
	// reader last set it: 0 for the system's default (wake at the first
	// byte), -1 when it may differ from what the reader set (the
	// keepalive lowered it). Only the reader sets it, and the socket's
	// mark is never above it.
	lowat atomic.Int32
	// anyByte: the keepalive asked the reader's waits to end at the first
	// byte until bytes come (wakeOnAnyByte).
	anyByte atomic.Bool
}

// minLowat is the least a readLarge must wait for to set the socket's
// low-water mark: below it, the two system calls (set, then reset before
// the next small wait) would cost more than the wake-ups they save.
const minLowat = 32 << 10

// direct is the transport that reads and writes the socket's descriptor
// itself; its state is the sock's directState.
type direct struct{}

// newTransport returns the direct transport where nc is a plain socket
// (with direct writes only if own: nothing but the Conn will close nc), the
// portable one otherwise.
func (s *sock) newTransport(nc net.Conn, own bool) transport {
	s.fd = -1
	sc, ok := plainSocket(nc)
	if !ok {
		return new(portable)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return new(portable)
	}
	s.raw = raw
	s.rawRead = s.rawReadFd
	if own {
		raw.Control(func(fd uintptr) { s.fd = int32(fd) })
	}
	return new(direct)
}

// noDirectWrites sends every write through nc (for tests that count them).
func (s *sock) noDirectWrites() { s.fd = -1 }

// awaitInput blocks until the socket has bytes (or an error, or EOF) and
// reads them into a read buffer, holding none while it waits. Its first
// read goes into the buffer the connection holds, if any: only when the
// socket has nothing yet (EAGAIN) does the buffer go back to the pool, and
// a buffer comes from the pool again when the poller says bytes are there
// (a message that is already there costs no pool round trip). Reading in
// the poller's callback, where a peek used to go before the read, saves a
// system call per wait. The read deadline applies. The caller has emptied
// the read buffer.
func (*direct) awaitInput(s *sock) error {
	for {
		s.rawErr = nil
		if err := s.raw.Read(s.rawRead); err != nil {
			return err
		}
		if s.rawErr != errNoReadBuf {
			break
		}
		s.takeReadBuf() // the pool was empty: allocate here, and read
	}
	if s.rawErr != nil {
		return s.rawErr
	}
	if s.rend == 0 {
		return io.ErrUnexpectedEOF // TCP ended: never an io.EOF to the reader
	}
	s.owner.received()
	return nil
}

// readIdle is the RawConn callback of awaitInput. The poller is edge
// triggered: it waits only after the socket said "not yet" (EAGAIN), and
// the connection waits without its buffer.
func (s *sock) readIdle(fd uintptr) bool {
	if s.rbuf == &noReadBuf && !s.pooledReadBuf() {
		s.rawErr = errNoReadBuf
		return true
	}
	n, ready, err := socketRead(fd, *s.rbuf)
	if !ready {
		s.releaseReadBuf()
		s.wakeAtFirstByte()
		return false
	}
	s.gotBytes()
	s.rend, s.rawErr = int32(n), s.sockError(err)
	return true
}

// errNoReadBuf is what readIdle reports when the pool had no read buffer.
var errNoReadBuf = errors.New("ws: no read buffer")

// readLarge reads payload into p, which the read buffer (empty) bypasses,
// and, in the same system call, what follows it into the read buffer: the
// header of the next frame, and the start of its payload, come with the
// end of this one (a relayed 64 KiB frame costs one read, not two). If it
// must wait and the caller waits for at least minLowat bytes, the socket's
// low-water mark is set to that many: the reader sleeps until they are
// all there instead of waking (a poller wake-up, a read and a wait again)
// at each arrival, a dozen times per MiB on loopback.
func (*direct) readLarge(s *sock, p []byte, want int) (int, error) {
	s.takeReadBuf()
	s.rpos, s.rend = 0, 0
	s.rawP, s.rawWant, s.rawErr = p, want, nil
	err := s.raw.Read(s.rawRead)
	s.rawP = nil
	// readAheadFd left the count in rend.
	n := int(s.rend)
	s.rend = 0
	if err == nil {
		err = s.rawErr
	}
	if n > len(p) {
		s.rend = int32(n - len(p))
		n = len(p)
	}
	if err == nil && n == 0 {
		err = io.ErrUnexpectedEOF // TCP ended inside the frame
	}
	return n, err
}

// rawReadFd is the RawConn callback of the reads: readLarge's if it has
// set rawP, else awaitInput's. (One callback, made once per connection.)
func (s *sock) rawReadFd(fd uintptr) bool {
	if s.rawP != nil {
		return s.readAheadFd(fd)
	}
	return s.readIdle(fd)
}

// readAheadFd is the RawConn callback of readLarge.
func (s *sock) readAheadFd(fd uintptr) bool {
	n, ready, err := socketReadv(fd, s.rawP, *s.rbuf)
	if !ready {
		if want := min(s.rawWant, len(s.rawP)); want >= minLowat {
			s.setLowat(fd, want)
		} else {
			s.wakeAtFirstByte()
		}
		return false
	}
	s.gotBytes()
	s.rend, s.rawErr = int32(n), s.sockError(err)
	return true
}

// setLowat sets the socket's low-water mark to n bytes before the reader
// waits for them, unless the keepalive wants any byte seen.
func (s *sock) setLowat(fd uintptr, n int) {
	if s.anyByte.Load() || int32(n) == s.lowat.Load() {
		return
	}
	s.lowat.Store(int32(n))
	setSocketLowat(fd, n)
	if s.anyByte.Load() {
		// The keepalive asked meanwhile, and may have lowered the
		// mark before it was raised: lower it again.
		s.lowat.Store(0)
		setSocketLowat(fd, 1)
	}
}

// wakeAtFirstByte brings the socket's low-water mark back to the default
// before a wait for fewer bytes than it was set to (a frame header): it is
// never above what the peer has announced.
func (s *sock) wakeAtFirstByte() {
	if s.lowat.Load() != 0 {
		s.resetLowat()
	}
}

//go:noinline
func (s *sock) resetLowat() {
	s.lowat.Store(0)
	if s.raw != nil {
		s.raw.Control(func(fd uintptr) { setSocketLowat(fd, 1) })
	}
}

// gotBytes notes, in a read's callback, that bytes came: a keepalive's
// request for any byte is answered.
func (s *sock) gotBytes() {
	if s.anyByte.Load() {
		s.anyByte.Store(false)
		s.lowat.Store(-1) // the keepalive may have lowered it
	}
}

// wakeOnAnyByte has the reader's wait end at the first byte that comes,
// whatever low-water mark it set, until bytes come: the keepalive calls it
// when it pings, since a peer that trickles a large frame is alive though
// the mark is not reached. Any goroutine may call it.
func (s *sock) wakeOnAnyByte() {
	if s.raw == nil {
		return
	}
	s.anyByte.Store(true)
	if s.lowat.Load() != 0 {
		s.raw.Control(func(fd uintptr) { setSocketLowat(fd, 1) })
	}
}

// sockError wraps an error of a read made on the socket itself the way
// net.Conn's Read does.
func (s *sock) sockError(err error) error {
	if err == nil {
		return nil
	}
	return &net.OpError{Op: "read", Net: s.nc.LocalAddr().Network(), Source: s.nc.LocalAddr(), Addr: s.nc.RemoteAddr(), Err: os.NewSyscallError("read", err)}
}

// write writes b to the connection. On a socket it can write to directly
// (s.fd), it makes the write system call itself: a much shallower call
// chain than net.Conn.Write's, so that a handler goroutine that echoes
// stays within its first 2 KiB stack, which an idle connection keeps for as
// long as it lives (a stack that once grew never shrinks back while its
// goroutine waits). What the socket cannot take at once goes through nc,
// which waits for room within the write deadline.
func (*direct) write(s *sock, b []byte) (int, error) {
	n := 0
	if s.fd >= 0 {
		// fdUse keeps CloseNow from closing the descriptor (whose number
		// the system may then give to another connection) during the
		// call.
		if s.fdUse.Add(1) < fdClosing {
			m, ready, err := socketWrite(uintptr(s.fd), b)
			s.fdUse.Add(-1)
			if err != nil {
				return 0, err
			}
			if ready {
				n = m
			}
		} else {
			s.fdUse.Add(-1)
		}
		if n == len(b) {
			return n, nil
		}
	}
	m, err := s.nc.Write(b[n:])
	return n + m, err
}

// writeNow writes what of b the socket takes at once, in one direct
// write, and returns how much that was: 0 if it can take nothing now, or
// failed (a write that waits will report it), or the transport has no
// direct writes. The caller holds the frame lock and nothing is kept.
func (s *sock) writeNow(b []byte) int {
	if s.fd < 0 {
		return 0
	}
	n := 0
	if s.fdUse.Add(1) < fdClosing {
		if m, ready, err := socketWrite(uintptr(s.fd), b); ready && err == nil {
			n = m
		}
	}
	s.fdUse.Add(-1)
	return n
}

// fdClosing is the bit of directState.fdUse set once the descriptor is to
// be closed: no direct write starts after it.
const fdClosing = 1 << 30

// close waits for the direct writes in progress to end and keeps new ones
// from starting, before it closes the descriptor.
func (*direct) close(s *sock) error {
	if s.fd >= 0 {
		s.fdUse.Add(fdClosing)
		for s.fdUse.Load() != fdClosing {
			runtime.Gosched() // a write system call on a non-blocking socket: short
		}
	}
	return s.nc.Close()
}

// plainSocket returns nc as a syscall.Conn if its Read is a read of the
// socket.
func plainSocket(nc net.Conn) (syscall.Conn, bool) {
	switch nc := nc.(type) {
	case *net.TCPConn:
		return nc, true
	case *net.UnixConn:
		return nc, true
	}
	return nil, false
}

// socketRead reads from the non-blocking socket fd into p. ready is false
// when there is nothing to read yet (EAGAIN): the caller waits for the
// poller. n == 0 with a nil error is the end of the stream.
func socketRead(fd uintptr, p []byte) (n int, ready bool, err error) {
	for {
		// The call made here rather than in a function of its own that
		// both share: one frame less under the idle wait.
		var r uintptr
		var e syscall.Errno
		switch {
		case !rawCalls:
			r, e = sockCallRace(syscall.SYS_READ, fd, p)
		case len(p) <= maxRawCall:
			r, _, e = syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		default:
			r, _, e = syscall.Syscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		}
		switch e {
		case 0:
			return int(r), true, nil
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return 0, false, nil
		}
		return 0, true, e
	}
}

// maxRawCall is the most a read or write of the socket moves with a raw
// system call (socketRead, socketWrite). On a non-blocking socket neither waits, and
// up to this many bytes the call is short (a few microseconds on
// loopback, where a write also delivers to the receiver): too short for
// the runtime to want to hand the goroutine's P to another thread
// meanwhile, which is all that telling it of the call (entersyscall,
// exitsyscall) allows. Telling it costs about 250 instructions a call, and
// a P seen in a system call keeps the runtime's monitor thread waking
// often to check on it: on an echo server on one CPU, one message in
// flight, the raw calls took the system calls per message from 6.4-7.1 to
// 4.7 on one connection (its futex, nanosleep and sched_yield calls went)
// and the context switches from 2.9-3.1 to 1.0-1.1. Larger calls tell it,
// so that a long copy never holds the P.
const maxRawCall = 16 << 10

// sockCallRace makes the read or write system call trap on fd with p under
// the race detector (rawCalls), and returns the count and the errno.
func sockCallRace(trap, fd uintptr, p []byte) (uintptr, syscall.Errno) {
	var n int
	var err error
	if trap == syscall.SYS_READ {
		n, err = syscall.Read(int(fd), p)
	} else {
		n, err = syscall.Write(int(fd), p)
	}
	if err != nil {
		e, _ := err.(syscall.Errno)
		return 0, e
	}
	return uintptr(n), 0
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

// setSocketLowat sets the socket's receive low-water mark to n bytes:
// until that many are there (or the stream ends, or fails), the poller does
// not report it readable; reads still return what there is. Linux raises
// the receive buffer to fit n and bounds n by it, so the mark is always
// reached.
func setSocketLowat(fd uintptr, n int) {
	syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, n)
}

// socketWrite writes p to the non-blocking socket fd. ready is false when
// the socket cannot take a byte now (EAGAIN): the caller waits for the
// poller. A short write is not an error; the caller writes the rest.
func socketWrite(fd uintptr, p []byte) (n int, ready bool, err error) {
	for {
		// As in socketRead: one frame less under every write.
		var r uintptr
		var e syscall.Errno
		switch {
		case !rawCalls:
			r, e = sockCallRace(syscall.SYS_WRITE, fd, p)
		case len(p) <= maxRawCall:
			r, _, e = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		default:
			r, _, e = syscall.Syscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		}
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
