package ws

import (
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
// bytes in its buffer — more messages it is about to hand out — is kept by
// the transport instead of going out at once. What is kept leaves in one write:
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

// send writes the frame b, or, if mayKeep, keeps it to leave with the
// frames that follow (keep). It returns how many bytes of b left or are
// kept: on an error, 0 says that none did (b is then not kept either, and
// frames kept before it that did not leave stay kept, if the error is a
// deadline's, for the connection to go on). The caller holds the frame
// lock.
func (s *sock) send(b []byte, mayKeep bool) (int, error) {
	if s.outLen == 0 && (!mayKeep || !s.rmore.Load()) {
		return s.t.write(s, b) // a lone frame, the common case
	}
	if s.outLen > 0 && int(s.outLen)+len(b) > writeBufSize {
		// b does not fit with what is kept: that goes first.
		if _, err := s.sendOut(0); err != nil {
			return 0, err
		}
	}
	if mayKeep && s.rmore.Load() {
		if kept, now := s.keep(b); kept {
			if !now {
				return len(b), nil
			}
			return s.sendOut(len(b))
		}
	}
	if s.outLen > 0 {
		// What is kept and this frame, in one write.
		s.appendOut(b)
		return s.sendOut(len(b))
	}
	return s.t.write(s, b)
}

// keep keeps the frame b, writing nothing, if the reader has received
// bytes left to hand out and b fits with what is kept. It reports whether
// it kept b, and whether what is kept must go now: the reader ran out of
// input meanwhile and may have missed it, so the caller sends it
// (sendOut, with b as its tail). The caller holds the frame lock.
func (s *sock) keep(b []byte) (kept, now bool) {
	if !s.rmore.Load() || int(s.outLen)+len(b) > writeBufSize {
		return false, false
	}
	first := s.outLen == 0
	s.appendOut(b)
	// outPending before the timer: a timer that fires at once must find
	// the frame pending, or it returns and nothing sends it.
	s.outPending.Store(true)
	if first {
		s.armFlush()
	}
	return true, !s.rmore.Load()
}

// appendOut adds b, which fits, to the frames kept.
func (s *sock) appendOut(b []byte) {
	if s.outp == nil {
		s.outp = getWriteBuf()
	}
	s.outLen += int32(copy((*s.outp)[s.outLen:], b))
}

// flush sends what is kept, if anything. The caller holds the frame lock.
func (s *sock) flush() error {
	if s.outLen == 0 {
		return nil
	}
	_, err := s.sendOut(0)
	return err
}

// sendOut writes the frames kept, whose last tail bytes are a frame not
// sent before (tail is 0 for a flush of kept frames only), and returns how
// many bytes of that frame left. If a deadline stops the write before any
// byte of that frame left, the frames kept that did not leave stay kept
// (the caller decides whether the connection goes on, as for a write that
// was never coalesced). The caller holds the frame lock.
func (s *sock) sendOut(tail int) (int, error) {
	out := (*s.outp)[:s.outLen]
	n, err := s.t.write(s, out)
	kept := len(out) - tail
	if err == nil || n > kept || !errors.Is(err, os.ErrDeadlineExceeded) {
		s.releaseOut()
		return max(n-kept, 0), err
	}
	s.outLen = int32(copy(out, out[n:kept]))
	if s.outLen == 0 {
		s.releaseOut()
	} else {
		s.armFlush()
	}
	return 0, err
}

// releaseOut gives the (sent) output buffer back to the pool, so that an
// idle connection holds none. The caller holds the frame lock.
func (s *sock) releaseOut() {
	s.outPending.Store(false)
	s.outLen = 0
	if s.outp != nil {
		putWriteBuf(s.outp)
		s.outp = nil
	}
}

// armFlush makes sure what is kept leaves within flushDelay. The caller
// holds the frame lock.
func (s *sock) armFlush() {
	if s.flushTimer == nil {
		s.flushTimer = time.AfterFunc(flushDelay, s.flushLater)
		return
	}
	s.flushTimer.Reset(flushDelay)
}

// flushLater is the flush timer's: it has the owner send what is still
// kept. A writer holding the frame lock may be blocked on a peer that does
// not read; the flush then waits for it, or for the connection to close.
func (s *sock) flushLater() {
	if s.outPending.Load() {
		s.owner.flushKept(true)
	}
}

// noteUnread records, as a read call ends, whether received bytes wait in
// the read buffer, which is what lets writes made meanwhile be kept.
func (s *sock) noteUnread() {
	if more := s.rpos < s.rend; more != s.rmore.Load() {
		s.rmore.Store(more)
	}
}

// beforeWait is called by the reader before it blocks for input: nothing
// it has buffered is left to hand out, so what writes kept goes now. If a
// writer holds the frame lock, that writer sees rmore unset and sends it
// (or the flush timer does): the reader never waits for a writer.
func (s *sock) beforeWait() {
	if s.rmore.Load() {
		s.rmore.Store(false)
	}
	if s.outPending.Load() {
		s.owner.flushKept(false)
	}
}
