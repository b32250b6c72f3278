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
	waiters []lockWaiter // in arrival order
}

// The locks of writeLocks.
const (
	lockMsg   = 0
	lockFrame = 1
)

// lockWaiter is a goroutine waiting for a lock.
type lockWaiter struct {
	which int
	ready chan struct{} // closed when the lock is handed over
}

// tryLock takes the lock which if it is free.
func (l *writeLocks) tryLock(which int) bool {
	l.mu.Lock()
	ok := !l.held[which]
	l.held[which] = true
	l.mu.Unlock()
	return ok
}

// lock takes the lock which, waiting until it is free, ctx ends (ctx may
// be nil) or closed is closed (closed may be nil); it reports whether it
// took the lock. A lock handed over as the wait gives up is taken.
func (l *writeLocks) lock(which int, ctx context.Context, closed <-chan struct{}) bool {
	if l.tryLock(which) {
		return true
	}
	var done <-chan struct{}
	if ctx != nil {
		done = ctx.Done()
	}
	w := lockWaiter{which: which, ready: make(chan struct{})}
	l.mu.Lock()
	if !l.held[which] { // freed meanwhile
		l.held[which] = true
		l.mu.Unlock()
		return true
	}
	l.waiters = append(l.waiters, w)
	l.mu.Unlock()
	select {
	case <-w.ready:
		return true
	case <-done:
	case <-closed:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, q := range l.waiters {
		if q.ready == w.ready {
			l.removeWaiter(i)
			return false
		}
	}
	return true // handed over meanwhile
}

// unlock releases the lock which, handing it to its first waiter if any.
func (l *writeLocks) unlock(which int) {
	l.mu.Lock()
	for i, q := range l.waiters {
		if q.which == which {
			l.removeWaiter(i)
			close(q.ready) // held stays set: the waiter has it
			l.mu.Unlock()
			return
		}
	}
	l.held[which] = false
	l.mu.Unlock()
}

// removeWaiter removes the i-th waiter, in place. The caller holds mu.
func (l *writeLocks) removeWaiter(i int) {
	n := copy(l.waiters[i:], l.waiters[i+1:])
	l.waiters[i+n] = lockWaiter{}
	l.waiters = l.waiters[:i+n]
}

// lock takes the Conn's write lock which, honouring ctx: an ended ctx takes
// nothing, so a write with it never starts (and cannot be cut mid-frame).
func (c *Conn) lock(ctx context.Context, which int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.wl.lock(which, ctx, nil) {
		return nil
	}
	return ctx.Err()
}

// lockUnlessClosed takes the Conn's write lock which, waiting until it is
// free or the connection closes; it reports whether it took the lock. (The
// connection's closed channel is made only if it has to wait.)
func (c *Conn) lockUnlessClosed(which int) bool {
	return c.wl.tryLock(which) || c.wl.lock(which, nil, c.doneChan())
}

// unlock releases the Conn's write lock which.
func (c *Conn) unlock(which int) { c.wl.unlock(which) }
