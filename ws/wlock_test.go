package ws

import (
	"context"
	"sync"
	"testing"
	"time"
)

// isHeld reports whether the lock which is held (for tests).
func (l *writeLocks) isHeld(which int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[which]
}

// TestWriteLocks checks the write locks: mutual exclusion under
// contention, independence of the two locks, hand-over in arrival order,
// and waits that give up on a context or a closed channel without leaving
// the lock taken or a waiter behind.
func TestWriteLocks(t *testing.T) {
	var l writeLocks

	// Mutual exclusion: 8 goroutines × 1000 increments under lockMsg.
	var wg sync.WaitGroup
	n := 0
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				l.lock(lockMsg, nil, nil)
				n++
				l.unlock(lockMsg)
			}
		})
	}
	wg.Wait()
	if n != 8000 || l.isHeld(lockMsg) || len(l.waiters) != 0 {
		t.Fatalf("n = %d, held %v, %d waiters", n, l.isHeld(lockMsg), len(l.waiters))
	}

	// The two locks are independent.
	if !l.tryLock(lockMsg) || !l.tryLock(lockFrame) || l.tryLock(lockFrame) {
		t.Fatal("tryLock")
	}

	// Hand-over in arrival order, to a waiter of the same lock.
	order := make(chan int, 3)
	for i := range 3 {
		wg.Go(func() {
			l.lock(lockFrame, nil, nil)
			order <- i
			l.unlock(lockFrame)
		})
		waitFor(t, "the waiter to queue", func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return len(l.waiters) == i+1
		})
	}
	l.unlock(lockMsg) // wakes none of them
	if !l.isHeld(lockFrame) {
		t.Fatal("unlocking lockMsg released lockFrame")
	}
	l.unlock(lockFrame)
	wg.Wait()
	for i := range 3 {
		if got := <-order; got != i {
			t.Fatalf("waiter %d got the lock in turn %d", got, i)
		}
	}

	// A wait that gives up leaves nothing behind.
	l.lock(lockFrame, nil, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if l.lock(lockFrame, ctx, nil) {
		t.Fatal("took a held lock")
	}
	closed := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { close(closed) })
	if l.lock(lockFrame, nil, closed) {
		t.Fatal("took a held lock")
	}
	if len(l.waiters) != 0 {
		t.Fatalf("%d waiters left behind", len(l.waiters))
	}
	l.unlock(lockFrame)
	if l.isHeld(lockFrame) || !l.tryLock(lockFrame) {
		t.Fatal("the lock was not free after the waits gave up")
	}
}
