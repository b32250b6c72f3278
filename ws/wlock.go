package ws

import (
	"context"
	"slices"
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
	aborted [2]bool       // abort: the lock is never taken again
	waiters []*lockWaiter // in arrival order
}

// The locks of writeLocks.
const (
	lockMsg   = 0
	lockFrame = 1
)

// lockWaiter is a goroutine waiting for a lock.
type lockWaiter struct {
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
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()
	select {
	case <-w.ready:
	case <-done:
	case <-closed:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if i := slices.Index(l.waiters, w); i >= 0 {
		l.removeWaiter(i)
	}
	return w.got
}

// unlock releases the lock which, handing it to its first waiter if any.
func (l *writeLocks) unlock(which int) {
	l.mu.Lock()
	for i, q := range l.waiters {
		if q.which == which {
			l.removeWaiter(i)
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
	for i := 0; i < len(l.waiters); {
		if q := l.waiters[i]; q.which == which {
			l.removeWaiter(i)
			close(q.ready)
			continue
		}
		i++
	}
	l.mu.Unlock()
}

// removeWaiter removes the i-th waiter, in place. The caller holds mu.
func (l *writeLocks) removeWaiter(i int) {
	n := copy(l.waiters[i:], l.waiters[i+1:])
	l.waiters[i+n] = nil
	l.waiters = l.waiters[:i+n]
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
