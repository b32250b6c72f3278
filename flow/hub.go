package flow

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wesos/wesos"
)

// ErrSlowSubscriber is why a Hub removes a subscriber that does not keep up:
// its queue was full under DropSubscriber, or stayed full for BlockTimeout
// under Block.
var ErrSlowSubscriber = errors.New("flow: subscriber too slow")

// ErrHubClosed is returned by Send on a closed Hub, and is the Err of every
// Subscription that the Hub's Close ended.
var ErrHubClosed = errors.New("flow: hub closed")

// ErrorCloser is the optional interface through which a Hub tells a
// subscribed Sink why it removed it (ErrSlowSubscriber, or the error the
// Sink's Send returned). The Hub calls CloseWithError once, from the
// subscriber's goroutine, after the Sink's last Send has returned. It is not
// called after Unsubscribe or the Hub's Close, which the caller asked for.
type ErrorCloser interface {
	CloseWithError(err error) error
}

// Policy says what a Hub does with a value for a subscriber whose queue is
// full.
type Policy int

const (
	// DropSubscriber removes the subscriber (the default).
	DropSubscriber Policy = iota
	// DropValue drops the value for that subscriber only; it stays
	// subscribed, and Subscription.Dropped counts what it missed.
	DropValue
	// Block makes Send wait for room, for at most HubOptions.BlockTimeout
	// per call, then removes the subscriber. One slow subscriber then slows
	// the publisher down, by up to BlockTimeout per value.
	Block
)

// HubOptions configures a Hub. The zero value, like a nil *HubOptions, is a
// queue of 64 values per subscriber and the DropSubscriber policy.
type HubOptions struct {
	// QueueLen is the number of values each subscriber's queue holds;
	// 64 if <= 0.
	QueueLen int
	// Policy applies when a subscriber's queue is full.
	Policy Policy
	// BlockTimeout bounds how long one Send waits under the Block policy;
	// 5s if <= 0.
	BlockTimeout time.Duration
	// OnDrop, if not nil, is called when the Hub removes a subscriber on its
	// own (not after Unsubscribe or Close), with the reason: ErrSlowSubscriber
	// or the error the Sink's Send returned. It runs on the subscriber's
	// goroutine, after the Sink's last Send has returned; calls for different
	// subscribers may run concurrently.
	OnDrop func(sub *Subscription, err error)
}

// Hub is a Sink that delivers each value to every subscribed Sink (fan-out).
// Each subscriber has its own bounded queue served by its own goroutine, so
// a slow subscriber never stalls the publisher or the other subscribers; see
// Policy for what happens when a queue is full. A value sent while a Sink
// subscribes reaches it or not.
//
// All methods are safe for concurrent use. The values one goroutine sends
// arrive at each subscriber in the order sent; values sent concurrently from
// several goroutines have no order between them.
//
// A Hub must be closed to stop its goroutines.
//
// Subscribers get a value after Send has returned, so a value that is valid
// only until its source moves on must be made independent before it reaches
// a Hub: a ws.Message's Body is valid until the next Next of its Conn (read
// later, it returns an error), so a Hub of messages fed from a Conn wants
// each body read into a buffer first, with a Map in front of the Hub.
type Hub[T any] struct {
	queueLen     int
	policy       Policy
	blockTimeout time.Duration
	onDrop       func(*Subscription, error)

	subs   atomic.Pointer[[]*subscriber[T]] // copied on write, under mu
	closed atomic.Bool

	mu     sync.Mutex
	ctx    context.Context // parent of every subscriber's ctx; cancelled by Close
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
}

// NewHub returns an empty Hub. opts may be nil.
func NewHub[T any](opts *HubOptions) *Hub[T] {
	var o HubOptions
	if opts != nil {
		o = *opts
	}
	if o.QueueLen <= 0 {
		o.QueueLen = 64
	}
	if o.BlockTimeout <= 0 {
		o.BlockTimeout = 5 * time.Second
	}
	h := &Hub[T]{
		queueLen:     o.QueueLen,
		policy:       o.Policy,
		blockTimeout: o.BlockTimeout,
		onDrop:       o.OnDrop,
	}
	h.ctx, h.cancel = context.WithCancelCause(context.Background())
	h.subs.Store(new([]*subscriber[T]))
	return h
}

// Subscribe adds dst to the Hub: from now on it receives, from its own
// goroutine, every value sent to the Hub, until its Subscription ends. dst's
// Send gets a ctx that is cancelled when the subscription ends. On a closed
// Hub, Subscribe returns a Subscription that has already ended with
// ErrHubClosed.
func (h *Hub[T]) Subscribe(dst wesos.Sink[T]) *Subscription {
	s := &subscriber[T]{hub: h, dst: dst, q: make(chan T, h.queueLen)}
	s.sub.done = make(chan struct{})
	s.sub.owner = s

	h.mu.Lock()
	if h.closed.Load() {
		h.mu.Unlock()
		s.sub.owner = nil
		s.sub.err = ErrHubClosed
		close(s.sub.done)
		return &s.sub
	}
	s.ctx, s.cancel = context.WithCancel(h.ctx)
	old := *h.subs.Load()
	subs := make([]*subscriber[T], len(old), len(old)+1)
	copy(subs, old)
	subs = append(subs, s)
	h.subs.Store(&subs)
	h.wg.Add(1)
	h.mu.Unlock()

	go s.run()
	return &s.sub
}

// Send queues v for every current subscriber and returns without waiting for
// delivery, except under the Block policy when a queue is full. It returns
// ErrHubClosed after Close, and ctx.Err() if ctx ends (under Block, v may
// then have been queued for some subscribers only). A Hub with no
// subscribers drops v.
func (h *Hub[T]) Send(ctx context.Context, v T) error {
	if h.closed.Load() {
		return ErrHubClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var timer *time.Timer // under Block, one deadline for the whole call
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for _, s := range *h.subs.Load() {
		select {
		case s.q <- v:
			continue
		default:
		}
		switch h.policy {
		case DropValue:
			s.sub.dropped.Add(1)
		case Block:
			if timer == nil {
				timer = time.NewTimer(h.blockTimeout)
			}
			select {
			case s.q <- v:
			case <-s.ctx.Done(): // already gone
			case <-timer.C:
				s.end(ErrSlowSubscriber, true)
				// Time is up for this call: any other full queue is
				// dropped at once.
				timer.Reset(0)
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			s.end(ErrSlowSubscriber, true)
		}
	}
	return nil
}

// Len returns the number of subscribers.
func (h *Hub[T]) Len() int {
	return len(*h.subs.Load())
}

// Close ends every subscription (their Err is ErrHubClosed), discards the
// values still queued, and waits until every goroutine the Hub started has
// ended, so it must not be called from a subscribed Sink. Later Sends return
// ErrHubClosed. Close always returns nil; calling it again does nothing.
func (h *Hub[T]) Close() error {
	h.mu.Lock()
	if !h.closed.Load() {
		h.closed.Store(true)
		h.subs.Store(new([]*subscriber[T]))
		h.cancel(ErrHubClosed)
	}
	h.mu.Unlock()
	h.wg.Wait()
	return nil
}

// remove takes s out of the list of subscribers, if it is still there.
func (h *Hub[T]) remove(s *subscriber[T]) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.subs.Load()
	for i, x := range old {
		if x == s {
			subs := make([]*subscriber[T], 0, len(old)-1)
			subs = append(subs, old[:i]...)
			subs = append(subs, old[i+1:]...)
			h.subs.Store(&subs)
			return
		}
	}
}

// Subscription is one Sink's membership of a Hub.
type Subscription struct {
	owner   interface{ unsubscribe() }
	done    chan struct{}
	err     error // set before done is closed
	dropped atomic.Uint64
}

// Unsubscribe removes the Sink from the Hub and discards the values still
// queued for it. It does not wait for a Send in progress, whose ctx it
// cancels; <-Done() does, so Unsubscribe may be called from the Sink's own
// Send. Calling it again, or after the subscription has ended otherwise,
// does nothing.
func (s *Subscription) Unsubscribe() {
	if s.owner != nil {
		s.owner.unsubscribe()
	}
}

// Done returns a channel that is closed when the subscription has ended and
// its Sink's last Send has returned.
func (s *Subscription) Done() <-chan struct{} {
	return s.done
}

// Err returns why the subscription ended: nil while it is active and after
// Unsubscribe; ErrSlowSubscriber; the error the Sink's Send returned; or
// ErrHubClosed.
func (s *Subscription) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// Dropped returns how many values the Hub dropped for this subscriber under
// the DropValue policy.
func (s *Subscription) Dropped() uint64 {
	return s.dropped.Load()
}

type subscriber[T any] struct {
	sub    Subscription
	hub    *Hub[T]
	dst    wesos.Sink[T]
	q      chan T // never closed: a late Send into it is harmless
	ctx    context.Context
	cancel context.CancelFunc

	once    sync.Once
	reason  error // why it ended, set by end
	dropped bool  // ended by the Hub's own decision
}

func (s *subscriber[T]) unsubscribe() { s.end(nil, false) }

// end records the first reason the subscription ends for, takes it out of
// the Hub and stops its goroutine.
func (s *subscriber[T]) end(reason error, dropped bool) {
	s.once.Do(func() {
		if s.hub.ctx.Err() != nil { // Close came first
			reason, dropped = ErrHubClosed, false
		}
		s.reason, s.dropped = reason, dropped
		s.hub.remove(s)
		s.cancel()
	})
}

func (s *subscriber[T]) run() {
	defer s.hub.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			s.finish()
			return
		case v := <-s.q:
			if s.ctx.Err() == nil { // else it ended while v was queued
				if err := s.dst.Send(s.ctx, v); err != nil && s.ctx.Err() == nil {
					s.end(err, true)
				}
			}
			if s.ctx.Err() != nil {
				s.finish()
				return
			}
		}
	}
}

// finish runs on the subscriber's goroutine once it has stopped delivering.
func (s *subscriber[T]) finish() {
	s.end(ErrHubClosed, false) // only if nothing ended it before: Close did
	s.sub.err = s.reason
	if s.dropped {
		if c, ok := s.dst.(ErrorCloser); ok {
			c.CloseWithError(s.reason)
		}
		if f := s.hub.onDrop; f != nil {
			f(&s.sub, s.reason)
		}
	}
	close(s.sub.done)
}
