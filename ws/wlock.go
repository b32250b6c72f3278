package ws

import (
	"context"
	"sync"
)

// writeLocks are a Conn's two write locks: lockMsg is held by a data message
// from its first frame to its last, lockFrame for each frame on the wire.
// Waiting for one can give up, when a context ends or the connection
// closes, which sync.Mutex cannot; a buffered channel per lock could, but
// costs every connection two channels for its whole life. Here both locks
// are flags under one mutex, and only a goroutine that has to wait makes a
// channel, closed when the lock is handed to it.
type writeLocks struct {
	mu      sync.Mutex
	held    [2]bool
	aborted [2]bool // abort: the lock is never taken again
	// The waiters in arrival order, a list through lockWaiter.next: two
	// pointers rather than a slice's three words keep the Conn in the
	// 512-byte size class (TestConnSize), and nothing stays allocated
	// once the waits are over.
	first, last *lockWaiter
}

// The locks of writeLocks.
const (
	lockMsg   = 0
	lockFrame = 1
)

// lockWaiter is a goroutine waiting for a lock.
type lockWaiter struct {
	next  *lockWaiter // the one that came after it
	which int
	ready chan struct{} // closed when the lock is handed over, or aborted
	got   bool          // set before ready is closed: the lock was handed over
}

// tryLock takes the lock which if it is free.
func (l *writeLocks) tryLock(which int) bool {
	l.mu.Lock()
	ok := !l.held[which] && !l.aborted[which]
	if ok {
		l.held[which] = true
	}
	l.mu.Unlock()
	return ok
}

// lock takes the lock which, waiting until it is free, ctx ends (ctx may
// be nil), closed is closed (closed may be nil) or the lock is aborted; it
// reports whether it took the lock. A lock handed over as the wait gives up
// is taken.
func (l *writeLocks) lock(which int, ctx context.Context, closed <-chan struct{}) bool {
	if l.tryLock(which) {
		return true
	}
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	l.mu.Lock()
	if l.aborted[which] {
		l.mu.Unlock()
		return false
	}
	if !l.held[which] { // freed meanwhile
		l.held[which] = true
		l.mu.Unlock()
		return true
	}
	w := &lockWaiter{which: which, ready: make(chan struct{})}
	if l.last == nil {
		l.first = w
	} else {
		l.last.next = w
	}
	l.last = w
	l.mu.Unlock()
	select {
	case <-w.ready:
	case <-done:
	case <-closed:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for prev, q := (*lockWaiter)(nil), l.first; q != nil; prev, q = q, q.next {
		if q == w { // still queued: it gave up
			l.removeWaiter(prev, q)
			break
		}
	}
	return w.got
}

// unlock releases the lock which, handing it to its first waiter if any.
func (l *writeLocks) unlock(which int) {
	l.mu.Lock()
	for prev, q := (*lockWaiter)(nil), l.first; q != nil; prev, q = q, q.next {
		if q.which == which {
			l.removeWaiter(prev, q)
			q.got = true // held stays set: the waiter has it
			close(q.ready)
			l.mu.Unlock()
			return
		}
	}
	l.held[which] = false
	l.mu.Unlock()
}

// abort makes the lock which untakable from now on: its waiters give up at
// once and later attempts fail. The goroutine that holds it, if any, keeps
// it until it unlocks. A connection that closes, or has sent its close
// frame, aborts the lock of data messages, so that writers queued behind a
// message do not wait for a lock that can serve no purpose.
func (l *writeLocks) abort(which int) {
	l.mu.Lock()
	l.aborted[which] = true
	for prev, q := (*lockWaiter)(nil), l.first; q != nil; {
		next := q.next
		if q.which == which {
			l.removeWaiter(prev, q)
			close(q.ready)
		} else {
			prev = q
		}
		q = next
	}
	l.mu.Unlock()
}

// removeWaiter takes q, which follows prev (nil: q is the first), out of
// the list. The caller holds mu.
func (l *writeLocks) removeWaiter(prev, q *lockWaiter) {
	if prev == nil {
		l.first = q.next
	} else {
		prev.next = q.next
	}
	if l.last == q {
		l.last = prev
	}
	q.next = nil
}

// lock takes the Conn's write lock which, honouring ctx: an ended ctx takes
// nothing, so a write with it never starts (and cannot be cut mid-frame). A
// connection that closes (or, for the message lock, sent its close frame)
// ends the wait with errClosed.
func (c *Conn) lock(ctx context.Context, which int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.wl.lock(which, ctx, nil) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errClosed
}

// lockUnlessClosed takes the Conn's write lock which, waiting until it is
// free or the connection closes; it reports whether it took the lock.
func (c *Conn) lockUnlessClosed(which int) bool {
	return c.wl.lock(which, nil, nil)
}

// unlock releases the Conn's write lock which.
func (c *Conn) unlock(which int) { c.wl.unlock(which) }
