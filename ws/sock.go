package ws

// The transport layer: sock owns the socket under a Conn. It holds the
// net.Conn, the read buffer (taken from a pool only while there are bytes to
// parse), the output kept for coalescing (coalesce.go) and, on Linux, the
// descriptor (sock_linux.go: reads and writes made directly, the idle wait
// without a buffer). The protocol above it (Conn) sees buffered bytes
// (peek, discard, buffered), asks for more (fill, readLarge) and hands it
// whole frames to write (emit, coalesce.go). Two paths sit behind those
// methods: the direct one, chosen at construction where the net.Conn is a
// plain socket on Linux, and the portable one over any net.Conn (TLS,
// HTTP/2 streams, wrapping listeners, in-memory pipes, other systems),
// which only ever calls Read, Write and the deadlines.
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
)

// sock is the transport of a Conn, embedded in it. The read side is owned
// by the reader (Conn.readMu); out, outp and flushTimer are guarded by the
// frame lock.
type sock struct {
	nc net.Conn
	sockDirect

	// The read buffer: nil while the connection waits for data (on the
	// direct path), rbufp its pool entry. Bytes rbuf[rpos:rend] are
	// received and not yet parsed.
	rbuf  []byte
	rbufp *[]byte
	rpos  int
	rend  int

	// Output coalescing (coalesce.go).
	out        []byte      // frames kept, to leave together
	outp       *[]byte     // out's pool entry
	flushTimer *time.Timer // sends out at the latest flushDelay after it began
	outPending atomic.Bool // out holds frames
	rmore      atomic.Bool // the reader has received bytes left to hand out
}

// initSock readies s over nc, with buffered the bytes already read from it
// (after a handshake). own: nothing but the Conn will close nc (it came from
// a hijack or from Dial's own dialer), so writes may go to its descriptor
// directly.
func (s *sock) initSock(nc net.Conn, own bool, buffered []byte) {
	s.nc = nc
	// Reads go to the socket itself only where that is what nc's Read
	// does: a wrapper that has a SyscallConn may still add to its Read.
	s.initDirect(nc, own)
	if len(buffered) > 0 {
		size := max(readBufSize, len(buffered))
		s.rbuf = make([]byte, size)
		s.rend = copy(s.rbuf, buffered)
	}
}

// buffered returns how many received bytes wait to be parsed.
func (s *sock) buffered() int { return s.rend - s.rpos }

// peek returns the received bytes not yet parsed; valid until the next
// fill.
func (s *sock) peek() []byte { return s.rbuf[s.rpos:s.rend] }

// discard consumes n bytes of peek.
func (s *sock) discard(n int) { s.rpos += n }

// take copies received bytes into p and consumes them.
func (s *sock) take(p []byte) int {
	n := copy(p, s.rbuf[s.rpos:s.rend])
	s.rpos += n
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

// closeSock closes the socket, once the direct writes in progress are done.
func (s *sock) closeSock() error {
	s.releaseFd()
	return s.nc.Close()
}

// readLarge reads into p, at least readBufSize long and with nothing
// buffered, bypassing the read buffer: directly (with the bytes that follow
// p, readAhead) where it can, else through nc.
func (c *Conn) readLarge(p []byte) (int, error) {
	c.beforeWait()
	var n int
	var err error
	if c.direct() {
		n, err = c.readAhead(p)
	} else if n, err = c.nc.Read(p); err == io.EOF {
		err = io.ErrUnexpectedEOF // TCP ended inside the frame
	}
	if n > 0 && c.ka != nil {
		c.ka.alive()
	}
	return n, err
}

// readBufSize is the size of a connection's read buffer. Payload reads into
// a caller's buffer at least this large bypass it.
const readBufSize = 4096

// readBufPool holds the read buffers of connections that wait for data. It
// has no New: a miss in readIdle, at the bottom of the poller's callback,
// is allocated by its caller, higher up the stack (an allocation can go
// deep into the runtime, and a handler goroutine whose stack grows past
// its first 2 KiB keeps the larger stack while its connection idles).
var readBufPool sync.Pool

// takeReadBuf gives the connection a read buffer, if it holds none.
func (s *sock) takeReadBuf() {
	if s.rbuf == nil && !s.pooledReadBuf() {
		b := make([]byte, readBufSize)
		s.rbufp, s.rbuf = &b, b
	}
}

// pooledReadBuf gives the connection a read buffer from the pool and reports
// whether the pool had one. The connection holds none.
func (s *sock) pooledReadBuf() bool {
	p, _ := readBufPool.Get().(*[]byte)
	if p == nil {
		return false
	}
	s.rbufp, s.rbuf = p, *p
	return true
}

// releaseReadBuf gives the (empty) read buffer back to the pool.
func (s *sock) releaseReadBuf() {
	if s.rbufp != nil {
		readBufPool.Put(s.rbufp)
		s.rbufp = nil
	}
	s.rbuf = nil
}

// fill reads until at least need bytes are buffered. Before it waits, what
// writes kept for later goes out (beforeWait, coalesce.go). (A method of
// Conn for that hand-off and the keepalive's note that bytes came; a frame
// less under the idle wait than a sock method called from one.)
func (c *Conn) fill(need int) error {
	if c.rend-c.rpos >= need {
		return nil
	}
	c.beforeWait()
	if c.rpos == c.rend {
		c.rpos, c.rend = 0, 0
		if c.direct() {
			// Nothing is buffered: wait for bytes while holding no
			// buffer, so that an idle connection costs none.
			c.releaseReadBuf()
			if err := c.waitReadable(); err != nil {
				return err
			}
			if c.ka != nil {
				c.ka.alive()
			}
		}
	} else if len(c.rbuf)-c.rpos < need {
		c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
		c.rpos = 0
	}
	c.takeReadBuf()
	for c.rend-c.rpos < need {
		n, err := c.nc.Read(c.rbuf[c.rend:])
		c.rend += n
		if n > 0 && c.ka != nil {
			c.ka.alive()
		}
		if err != nil {
			if c.rend-c.rpos >= need {
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
// relayed in chunks of up to 1 MiB instead: a sixteenth of the reads,
// writes and frames, and the peer is woken once per MiB rather than once
// per 64 KiB. At most maxLargeRelays such buffers are out at a time in the
// process, so that their memory stays bounded whatever the number of
// connections (and a peer that trickles a large frame holds at most one);
// past that, relays use the 64 KiB buffers.
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
