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
// waits that give up on a context or a closed channel without leaving
// the lock taken or a waiter behind, and an abort that ends only its own
// lock's waits.
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
	if n != 8000 || l.isHeld(lockMsg) || l.waiting() != 0 {
		t.Fatalf("n = %d, held %v, %d waiters", n, l.isHeld(lockMsg), l.waiting())
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
			return l.waiting() == i+1
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
	if l.waiting() != 0 {
		t.Fatalf("%d waiters left behind", l.waiting())
	}
	l.unlock(lockFrame)
	if l.isHeld(lockFrame) || !l.tryLock(lockFrame) {
		t.Fatal("the lock was not free after the waits gave up")
	}

	// Aborting one lock, whose waiters are queued between the other's,
	// ends only its waits; the others keep their order. (lockFrame is
	// held since the tryLock above.)
	if !l.tryLock(lockMsg) {
		t.Fatal("tryLock(lockMsg)")
	}
	got := make(chan string, 4)
	for i, q := range []struct {
		name  string
		which int
	}{{"frame 1", lockFrame}, {"msg 1", lockMsg}, {"frame 2", lockFrame}, {"msg 2", lockMsg}} {
		wg.Go(func() {
			if l.lock(q.which, nil, nil) {
				got <- q.name
				l.unlock(q.which)
			} else {
				got <- q.name + " aborted"
			}
		})
		waitFor(t, "the waiter to queue", func() bool {
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.waiting() == i+1
		})
	}
	l.abort(lockMsg)
	for range 2 {
		if g := <-got; g != "msg 1 aborted" && g != "msg 2 aborted" {
			t.Fatalf("%s before the aborted waits ended", g)
		}
	}
	l.unlock(lockFrame)
	wg.Wait()
	if a, b := <-got, <-got; a != "frame 1" || b != "frame 2" {
		t.Fatalf("after the abort: %s, then %s", a, b)
	}
	if l.waiting() != 0 || l.isHeld(lockFrame) || l.tryLock(lockMsg) {
		t.Fatal("waiters left, lockFrame held, or lockMsg takable after abort")
	}
}

// waiting counts the goroutines waiting for either lock. The caller holds
// mu, or no goroutine waits or stops waiting meanwhile.
func (l *writeLocks) waiting() int {
	n := 0
	for q := l.first; q != nil; q = q.next {
		n++
	}
	return n
}
