package ws

import (
	"context"
	"errors"
	"os"
	"time"
)

// Output coalescing.
//
// A connection that answers messages (an echo, a request/response loop, a
// relay) and receives them in bursts would otherwise make one write(2) per
// answer, and on small messages that system call is most of the server's
// CPU time. So a small frame written while the reader still has received
// bytes in its buffer — more messages it is about to hand out — is kept in
// c.out instead of going out at once. What is kept leaves in one write:
//
//   - when the reader runs out of buffered input and is about to wait for
//     more (beforeWait), which in a request/response loop is right after
//     the last answer of the burst;
//   - with the next frame written once the reader has no more input
//     buffered, or that does not fit, or that may not wait (close, ping, a
//     frame too large to copy);
//   - at the latest flushDelay after the first frame was kept, for a
//     handler that reads a message and then does something else for a while
//     before it reads again.
//
// A frame is never kept when the reader has nothing buffered, so a lone
// write (a notification, a reply to a lone request, a client's request)
// leaves at once, as before. Frames kept are sent in the order written and
// before any later frame; nothing is reordered, only joined.

// flushDelay bounds how long a kept frame waits for its burst to end.
const flushDelay = 250 * time.Microsecond

// emit sends the frame b, or keeps it in c.out to leave with the frames that
// follow. The caller holds the frame lock.
func (c *Conn) emit(ctx context.Context, op opcode, b []byte) error {
	keep := op != opClose && op != opPing && len(b) <= writeBufSize && c.rmore.Load()
	if len(c.out) > 0 && len(c.out)+len(b) > cap(c.out) {
		// b does not fit with what is kept: that goes first.
		if err := c.flushLocked(ctx); err != nil {
			return err
		}
	}
	if keep {
		if c.outp == nil {
			c.outp = getWriteBuf()
			c.out = (*c.outp)[:0]
		}
		first := len(c.out) == 0
		c.out = append(c.out, b...)
		// outPending before the timer: a timer that fires at once must
		// find the frame pending, or it returns and nothing sends it.
		c.outPending.Store(true)
		if first {
			c.armFlush()
		}
		if c.rmore.Load() {
			return nil
		}
		// The reader ran out of input meanwhile and may have missed
		// what is kept: send it now.
		return c.sendOut(ctx, len(b), op)
	}
	if len(c.out) > 0 {
		// What is kept and this frame, in one write.
		c.out = append(c.out, b...)
		return c.sendOut(ctx, len(b), op)
	}
	c.wdl.arm(ctx)
	n, err := c.sockWrite(b)
	return c.writeError(ctx, int64(n), err, op)
}

// flushLocked sends what is kept, if anything. The caller holds the frame lock.
func (c *Conn) flushLocked(ctx context.Context) error {
	if len(c.out) == 0 {
		return nil
	}
	return c.sendOut(ctx, 0, opBinary)
}

// sendOut writes c.out, whose last tail bytes are a frame of opcode op not
// sent before (tail is 0 for a flush of kept frames only). If ctx stops the
// write before any byte of that frame left, the frame is taken back and its
// caller gets ctx.Err() with the connection usable, as for a write that was
// never coalesced; the kept frames that did not leave stay kept. Any other
// failure breaks the stream, so it closes the connection. The caller holds
// the frame lock.
func (c *Conn) sendOut(ctx context.Context, tail int, op opcode) error {
	c.wdl.arm(ctx)
	n, err := c.sockWrite(c.out)
	if err == nil {
		c.releaseOut()
		return c.noteWritten(op)
	}
	kept := len(c.out) - tail
	if ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) && n <= kept && !c.isClosed() {
		c.out = c.out[:copy(c.out, c.out[n:kept])]
		if len(c.out) == 0 {
			c.releaseOut()
		} else {
			c.armFlush()
		}
		return ctx.Err()
	}
	c.releaseOut()
	if c.isClosed() {
		return errClosed
	}
	return c.breakWrite(ctx, err)
}

// releaseOut gives the (sent) output buffer back to the pool, so that an
// idle connection holds none. The caller holds the frame lock.
func (c *Conn) releaseOut() {
	c.outPending.Store(false)
	if c.outp != nil {
		putWriteBuf(c.outp)
		c.outp, c.out = nil, nil
	}
}

// armFlush makes sure what is kept leaves within flushDelay. The caller
// holds the frame lock.
func (c *Conn) armFlush() {
	if c.flushTimer == nil {
		c.flushTimer = time.AfterFunc(flushDelay, c.flushLater)
		return
	}
	c.flushTimer.Reset(flushDelay)
}

// flushLater is the flush timer's: it sends what is still kept. A writer
// holding the frame lock may be blocked on a peer that does not read; the flush
// then waits for it, or for the connection to close.
func (c *Conn) flushLater() {
	if !c.outPending.Load() {
		return
	}
	if !c.lockUnlessClosed(lockFrame) {
		return
	}
	defer c.unlock(lockFrame)
	if !c.wclosed {
		c.logDropped("flushing coalesced frames", c.flushLocked(context.Background()))
	}
}

// unlockRead ends a read call: it records whether received bytes wait in
// the read buffer, which is what lets writes made meanwhile be kept, and
// releases readMu.
func (c *Conn) unlockRead() {
	if more := c.rpos < c.rend; more != c.rmore.Load() {
		c.rmore.Store(more)
	}
	c.readMu.Unlock()
}

// beforeWait is called by the reader before it blocks for input: nothing
// it has buffered is left to hand out, so what writes kept goes now. If a
// writer holds the frame lock, that writer sees rmore unset and sends it (or the
// flush timer does): the reader never waits for a writer.
func (c *Conn) beforeWait() {
	if c.rmore.Load() {
		c.rmore.Store(false)
	}
	if !c.outPending.Load() {
		return
	}
	if !c.wl.tryLock(lockFrame) {
		return
	}
	if !c.wclosed {
		if err := c.flushLocked(c.readContext()); err != nil && c.readContext().Err() == nil {
			// (A flush stopped by the read's context keeps the frames
			// for later: nothing is lost.)
			c.logDropped("flushing coalesced frames", err)
		}
	}
	c.unlock(lockFrame)
}
