package ws

import (
	"compress/flate"
	"context"
	"io"
	"net"
	"sync"
)

// The fan-out layer (group.go, and Server on top of it) touches a Conn only
// through the methods in this file: it hands the same encoded frames to many
// connections and never reads a Conn's private state itself. A change to
// how a Conn writes or closes maps onto these methods, not onto the
// fan-out code.

// fanLock takes c's data-message lock, so that no other data message
// interleaves with the frames written next, unless c closes first; it
// reports whether it took the lock. Pongs and close frames still pass
// between the frames.
func (c *Conn) fanLock() bool { return c.lockUnlessClosed(lockMsg) }

// fanUnlock releases the data-message lock taken by fanLock.
func (c *Conn) fanUnlock() { c.unlock(lockMsg) }

// fanMasks reports whether c masks its frames (a client): the shared,
// unmasked frames are then written through fanWriteFrame instead.
func (c *Conn) fanMasks() bool { return c.client }

// fanWrite sends b, bytes that already form whole unmasked frames. The
// caller holds the message lock.
func (c *Conn) fanWrite(ctx context.Context, b []byte) error { return c.writeRaw(ctx, b) }

// fanWriteBatch sends several buffers of whole unmasked frames in one write;
// it consumes *bufs. The caller holds the message lock.
func (c *Conn) fanWriteBatch(ctx context.Context, bufs *net.Buffers) error {
	return c.writeBuffers(ctx, bufs)
}

// fanWriteFrame sends one uncompressed frame with payload p, which it does
// not modify, framed (and masked) by c. The caller holds the message lock.
func (c *Conn) fanWriteFrame(ctx context.Context, op opcode, fin bool, p []byte) error {
	return c.writeFrame(ctx, op, fin, p)
}

// fanStats returns the counters of c's Server, or nil.
func (c *Conn) fanStats() *counters { return c.cfg.stats }

// fanDone returns a channel closed once c's TCP connection is closed.
func (c *Conn) fanDone() <-chan struct{} { return c.doneChan() }

// fanClosed reports whether c's TCP connection is closed, without making
// the channel fanDone returns.
func (c *Conn) fanClosed() bool { return c.isClosed() }

// fanDeflate reports whether c takes a broadcast's compressed frames, and
// at which compression level and threshold, with which implementation's
// pools (any DEFLATE output suits every member of a level): it negotiated permessage-deflate
// as a server without context takeover on its side, so a message
// compressed on its own is what it would send itself. A peer that asked
// for a window under 32 KiB (Huffman-only output) takes them plain rather
// than have every member's compressed with its level.
func (c *Conn) fanDeflate() (level, threshold int, pools *flatePools, ok bool) {
	d := c.deflate
	if c.client || d == nil || d.takeoverOut || d.level == flate.HuffmanOnly {
		return 0, 0, nil, false
	}
	return d.level, d.threshold, d.pools, true
}

// fanFail fails c with 1008 and reason: a sender whose message stalled.
func (c *Conn) fanFail(reason string) {
	c.fail(&ProtocolError{StatusPolicyViolation, reason})
}

// fanStream reports whether c speaks over an HTTP/2 stream (RFC 8441), which
// lives only as long as its request's handler.
func (c *Conn) fanStream() bool {
	_, ok := c.nc.(*streamConn)
	return ok
}

// bodyConn returns the Conn a message body is read from, if it is the Body
// of a message received by Next (or Reader), else nil.
func bodyConn(r io.Reader) *Conn {
	if mr, ok := r.(*messageReader); ok {
		return mr.c
	}
	return nil
}

// Group membership of a Conn. A Conn in a Group leaves it when it closes:
// CloseNow calls leaveGroups. The record lives in a package-level map, not
// in Conn, so a connection that joins no Group (or only its Server's, which
// the Server ends itself) carries nothing for it.
var memberships sync.Map // *Conn → *connGroups

// connGroups lists the Groups a Conn is in.
type connGroups struct {
	mu     sync.Mutex
	groups []*Group
	closed bool // the Conn closed: it joins nothing more
	stale  bool // removed from memberships when it emptied: load again
}

// joinedGroup records that c is in g; it returns false if c has closed (the
// caller undoes the membership). The caller holds g.mu.
func (c *Conn) joinedGroup(g *Group) bool {
	for {
		v, ok := memberships.Load(c)
		if !ok {
			v, _ = memberships.LoadOrStore(c, &connGroups{})
		}
		e := v.(*connGroups)
		e.mu.Lock()
		if e.stale {
			e.mu.Unlock()
			continue
		}
		if e.closed {
			e.mu.Unlock()
			return false
		}
		e.groups = append(e.groups, g)
		e.mu.Unlock()
		return true
	}
}

// leftGroup removes g from c's record. The caller holds g.mu.
func (c *Conn) leftGroup(g *Group) {
	v, ok := memberships.Load(c)
	if !ok {
		return
	}
	e := v.(*connGroups)
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, h := range e.groups {
		if h == g {
			last := len(e.groups) - 1
			e.groups[i] = e.groups[last]
			e.groups[last] = nil
			e.groups = e.groups[:last]
			break
		}
	}
	if len(e.groups) == 0 && !e.closed {
		e.stale = true
		memberships.CompareAndDelete(c, e)
	}
}

// leaveGroups takes a closed c out of every Group it is in. CloseNow calls
// it once the connection is closed; Group.Add calls it when c closed while
// it joined.
func (c *Conn) leaveGroups() {
	v, ok := memberships.LoadAndDelete(c)
	if !ok {
		return
	}
	e := v.(*connGroups)
	e.mu.Lock()
	e.closed = true
	groups := e.groups
	e.groups = nil
	e.mu.Unlock()
	for _, g := range groups {
		g.Remove(c)
	}
}
