package ws

// The transport layer: sock owns the socket under a Conn. It holds the
// net.Conn, the read buffer (taken from a pool only while there are bytes to
// parse) and the output kept for coalescing (coalesce.go). The protocol
// above it (Conn) sees buffered bytes (peek, discard, take, buffered), asks
// for more (fill, readLarge) and hands it whole frames to write (send,
// writeVec, writeConn); the transport calls back into the protocol through
// sockOwner.
//
// How bytes move is the transport's seam: two implementations sit behind
// it, chosen once, when the sock is made.
//
//   - portable (this file) goes through any net.Conn (TLS, HTTP/2 streams,
//     wrapping listeners, in-memory pipes, other systems) and only ever
//     calls its Read, Write and deadlines;
//   - direct (sock_linux.go), on Linux where the net.Conn is a plain
//     socket, reads and writes its descriptor itself: the idle wait holds
//     no read buffer, a large payload read takes what follows it in the
//     same readv (and, waiting for many bytes, sleeps until they are
//     there), and writes make the system call directly.
//
// The stack-depth tuning lives here: an idle handler's goroutine keeps its
// first 2 KiB stack only while the deepest call it ever made fits, so the
// paths under the idle wait and under an echo's write take no defer and as
// few frames as they can (stack_norace_test.go guards them).

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// transport is how a sock moves bytes: the seam between the portable and
// the direct implementation. Each method works on the sock s, which holds
// the state both share (the net.Conn, the read buffer); the direct one
// keeps its own in s.directState.
type transport interface {
	// awaitInput readies s to read when nothing is buffered: the
	// portable transport takes a read buffer and leaves the wait to
	// nc.Read; the direct one waits holding no buffer and reads what
	// came (noting it to the owner).
	awaitInput(s *sock) error
	// readLarge reads payload into p, at least readBufSize long, with
	// nothing buffered, bypassing the read buffer. The caller will wait
	// for want bytes of p anyway (the peer has announced them): the
	// direct transport then sleeps until that many have come, rather
	// than waking at each arrival.
	readLarge(s *sock, p []byte, want int) (int, error)
	// write writes b, waiting for room within the write deadline.
	write(s *sock, b []byte) (int, error)
	// close closes the socket.
	close(s *sock) error
}

// sockOwner is what the transport asks of the protocol above it (a Conn).
type sockOwner interface {
	// received notes that bytes arrived (the keepalive's clock).
	received()
	// flushKept sends the frames the transport kept, under the
	// protocol's frame lock. The reader calls it before it waits (wait
	// false: if a writer holds the lock, that writer sends them), the
	// flush timer with wait true.
	flushKept(wait bool)
}

// sock is the transport of a Conn, embedded in it. The read side is owned
// by the reader (Conn.readMu); the output kept (outp, outLen, flushTimer)
// is guarded by the owner's frame lock.
type sock struct {
	nc    net.Conn
	t     transport // portable or direct, chosen by initSock
	owner sockOwner
	directState

	// The read buffer, a pool entry (or, after a handshake that read
	// ahead, a buffer of its own); &noReadBuf while the connection holds
	// none (in the direct transport, while it waits for data). Bytes
	// (*rbuf)[rpos:rend] are received and not yet parsed.
	rbuf *[]byte
	rpos int32
	rend int32

	// Output coalescing (coalesce.go).
	outp       *[]byte     // frames kept, to leave together: (*outp)[:outLen]
	outLen     int32       //
	outPending atomic.Bool // outLen > 0, for the flush timer and the reader
	rmore      atomic.Bool // the reader has received bytes left to hand out
	flushTimer *time.Timer // sends out at the latest flushDelay after it began
}

// initSock readies s over nc for owner, with buffered the bytes already
// read from it (after a handshake). own: nothing but the Conn will close nc
// (it came from a hijack or from Dial's own dialer), so writes may go to its
// descriptor directly.
func (s *sock) initSock(nc net.Conn, own bool, buffered []byte, owner sockOwner) {
	s.nc, s.owner = nc, owner
	s.t = s.newTransport(nc, own)
	s.rbuf = &noReadBuf
	if len(buffered) > 0 {
		size := max(readBufSize, len(buffered))
		b := make([]byte, size)
		s.rbuf = &b
		s.rend = int32(copy(b, buffered))
	}
}

// buffered returns how many received bytes wait to be parsed.
func (s *sock) buffered() int { return int(s.rend - s.rpos) }

// peek returns the received bytes not yet parsed; valid until the next
// fill.
func (s *sock) peek() []byte { return (*s.rbuf)[s.rpos:s.rend] }

// discard consumes n bytes of peek.
func (s *sock) discard(n int) { s.rpos += int32(n) }

// take copies received bytes into p and consumes them.
func (s *sock) take(p []byte) int {
	n := copy(p, (*s.rbuf)[s.rpos:s.rend])
	s.rpos += int32(n)
	return n
}

// writeVec writes bufs, whole frames, through nc (one writev on a socket);
// it consumes *bufs.
func (s *sock) writeVec(bufs *net.Buffers) (int64, error) { return bufs.WriteTo(s.nc) }

// writeConn writes b through nc, waiting for room within the write
// deadline.
func (s *sock) writeConn(b []byte) (int, error) { return s.nc.Write(b) }

// setReadDeadline and setWriteDeadline set nc's deadlines.
func (s *sock) setReadDeadline(t time.Time)  { s.nc.SetReadDeadline(t) }
func (s *sock) setWriteDeadline(t time.Time) { s.nc.SetWriteDeadline(t) }

// closeSock closes the socket.
func (s *sock) closeSock() error { return s.t.close(s) }

// readLarge reads into p, at least readBufSize long and with nothing
// buffered, bypassing the read buffer; the caller will wait for want bytes
// of p anyway (0: it takes what has come). Before it waits, what writes
// kept for later goes out (beforeWait).
func (s *sock) readLarge(p []byte, want int) (int, error) {
	s.beforeWait()
	n, err := s.t.readLarge(s, p, want)
	if n > 0 {
		s.owner.received()
	}
	return n, err
}

// fill reads until at least need bytes are buffered. Before it waits, what
// writes kept for later goes out (beforeWait).
func (s *sock) fill(need int) error {
	if int(s.rend-s.rpos) >= need {
		return nil
	}
	s.beforeWait()
	if s.rpos == s.rend {
		s.rpos, s.rend = 0, 0
		if err := s.t.awaitInput(s); err != nil {
			return err
		}
	} else if b := *s.rbuf; len(b)-int(s.rpos) < need {
		s.rend = int32(copy(b, b[s.rpos:s.rend]))
		s.rpos = 0
	}
	for int(s.rend-s.rpos) < need {
		s.wakeAtFirstByte() // nc.Read may wait: for any byte
		n, err := s.nc.Read((*s.rbuf)[s.rend:])
		s.rend += int32(n)
		if n > 0 {
			s.owner.received()
		}
		if err != nil {
			if int(s.rend-s.rpos) >= need {
				return nil
			}
			if err == io.EOF {
				// TCP ended: never an io.EOF to the reader, which
				// would take it for the end of a message.
				err = io.ErrUnexpectedEOF
			}
			return err
		}
	}
	return nil
}

// portable is the transport over any net.Conn: Read, Write, the deadlines
// and Close, nothing else. A connection keeps its read buffer while it
// waits.
type portable struct{}

func (*portable) awaitInput(s *sock) error {
	s.takeReadBuf()
	return nil
}

func (*portable) readLarge(s *sock, p []byte, _ int) (int, error) {
	n, err := s.nc.Read(p)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF // TCP ended inside the frame
	}
	return n, err
}

func (*portable) write(s *sock, b []byte) (int, error) { return s.nc.Write(b) }

func (*portable) close(s *sock) error { return s.nc.Close() }

// readBufSize is the size of a connection's read buffer. Payload reads into
// a caller's buffer at least this large bypass it.
const readBufSize = 4096

// readBufPool holds the read buffers of connections that wait for data. It
// has no New: a miss in the direct transport's idle wait, at the bottom of
// the poller's callback, is allocated by its caller, higher up the stack (an
// allocation can go deep into the runtime, and a handler goroutine whose
// stack grows past its first 2 KiB keeps the larger stack while its
// connection idles).
var readBufPool sync.Pool

// noReadBuf is the read buffer of a connection that holds none: empty, so
// that peek needs no check.
var noReadBuf []byte

// takeReadBuf gives the connection a read buffer, if it holds none.
func (s *sock) takeReadBuf() {
	if s.rbuf == &noReadBuf && !s.pooledReadBuf() {
		b := make([]byte, readBufSize)
		s.rbuf = &b
	}
}

// pooledReadBuf gives the connection a read buffer from the pool and reports
// whether the pool had one. The connection holds none.
func (s *sock) pooledReadBuf() bool {
	p, _ := readBufPool.Get().(*[]byte)
	if p == nil {
		return false
	}
	s.rbuf = p
	return true
}

// releaseReadBuf gives the (empty) read buffer back to the pool, if it
// came from there.
func (s *sock) releaseReadBuf() {
	if len(*s.rbuf) == readBufSize {
		readBufPool.Put(s.rbuf)
	}
	s.rbuf = &noReadBuf
}

// dropReadBuf discards what is buffered and gives the read buffer back to
// the pool, for a connection that will read no more: its last read (a close
// frame, say) took a buffer, which would otherwise go with the connection,
// and a crowd of connections closing at once would each take a new one.
func (s *sock) dropReadBuf() {
	s.rpos, s.rend = 0, 0
	s.releaseReadBuf()
}

// writeBufSize is the size of the pooled buffers that frames are assembled
// in: a header and a payload that fit leave in one write.
const writeBufSize = 16 << 10

var writeBufPool = sync.Pool{New: func() any {
	b := make([]byte, writeBufSize)
	return &b
}}

func getWriteBuf() *[]byte  { return writeBufPool.Get().(*[]byte) }
func putWriteBuf(b *[]byte) { writeBufPool.Put(b) }

// relayBufSize is the size of the pooled buffers that streamed bodies are
// sent through (Send of a reader, Server.Send): a received frame of up to
// 64 KiB is relayed whole, in one read and one write.
const relayBufSize = 64<<10 + maxHeaderSize

var relayBufPool = sync.Pool{New: func() any {
	b := make([]byte, relayBufSize)
	return &b
}}

func getRelayBuf() *[]byte  { return relayBufPool.Get().(*[]byte) }
func putRelayBuf(b *[]byte) { relayBufPool.Put(b) }

// A received frame longer than a relay buffer (a 1 MiB message, say) is
// relayed in chunks of up to 1 MiB instead (of at least relayChunk, as
// they come): up to a sixteenth of the reads, writes and frames, and the
// peer is woken once per chunk rather than once per 64 KiB. At most
// maxLargeRelays such buffers are out at a time in the process, so that
// their memory stays bounded whatever the number of connections (and a
// peer that trickles a large frame holds at most one); past that, relays
// use the 64 KiB buffers.
const (
	largeRelayBufSize = 1<<20 + maxHeaderSize
	maxLargeRelays    = 64
)

var (
	largeRelayBufPool = sync.Pool{New: func() any {
		b := make([]byte, largeRelayBufSize)
		return &b
	}}
	largeRelays atomic.Int32 // large relay buffers out
)

// relayChunk is how much of a large frame a relay gathers before it sends
// it on, if the socket has no more for now: a large message flows through
// the relay in pieces of at least this size (it reaches the receiver while
// its end is still on the way in), rather than arriving whole before any
// of it leaves; and the direct transport wakes the relay once per piece,
// not at each arrival (readLarge's want).
const relayChunk = 256 << 10

// getLargeRelayBuf returns a large relay buffer, or nil if maxLargeRelays
// are out.
func getLargeRelayBuf() *[]byte {
	if largeRelays.Add(1) > maxLargeRelays {
		largeRelays.Add(-1)
		return nil
	}
	return largeRelayBufPool.Get().(*[]byte)
}

func putLargeRelayBuf(b *[]byte) {
	largeRelayBufPool.Put(b)
	largeRelays.Add(-1)
}

// putAnyRelayBuf returns a buffer of getRelayBuf or getLargeRelayBuf.
func putAnyRelayBuf(b *[]byte) {
	if len(*b) == largeRelayBufSize {
		putLargeRelayBuf(b)
	} else {
		putRelayBuf(b)
	}
}

// stackMark returns the address of *v, a variable on the caller's stack,
// as a number, which changes when the goroutine's stack grows (it is then
// copied): Serve's handshake notes it to learn whether its stack is still
// a first one (serveConn). (Here, where the package's unsafe code lives.)
func stackMark(v **upgradeRead) uintptr { return uintptr(unsafe.Pointer(v)) }
