package gostreams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"

	streams "github.com/reugn/go-streams"
	"github.com/reugn/go-streams/flow"

	"github.com/wesos/wesos"
)

// ErrType is matched (under errors.Is) by the error an adapter reports when
// a go-streams channel carries a value that is not of the adapter's type T.
// The error's text names the type received and the type wanted.
var ErrType = errors.New("gostreams: value of the wrong type")

// ErrClosed is returned by InletSink.Send after InletSink.Close.
var ErrClosed = errors.New("gostreams: send on a closed inlet")

// as asserts v to T. An untyped nil is the zero value of an interface type T
// (v.(T) would reject it); any other mismatch is an error matching ErrType.
func as[T any](v any) (T, error) {
	if t, ok := v.(T); ok {
		return t, nil
	}
	var zero T
	want := reflect.TypeFor[T]()
	if v == nil && want.Kind() == reflect.Interface {
		return zero, nil
	}
	return zero, fmt.Errorf("%w: got %T, want %v", ErrType, v, want)
}

// SourceAdapter is a go-streams Source (streams.Source) fed by a wesos
// Source. Make one with Source.
type SourceAdapter[T any] struct {
	out  chan any
	done chan struct{} // closed, after err is set, just before out
	err  error
}

var _ streams.Source = (*SourceAdapter[int])(nil)

// Source returns a go-streams Source that yields the values of src.
//
// Source starts one goroutine, which calls src.Next(ctx) and sends each value
// on the channel returned by Out, one at a time (the channel is unbuffered,
// so src is read at the pace of its consumer, one value ahead at most). The
// goroutine closes that channel and exits when src ends (an error matching
// io.EOF), when src.Next fails, or when ctx ends; ctx is its owner. Until
// then it blocks on a value nobody takes, so cancel ctx if the stream is
// abandoned before its end.
//
// Because go-streams has no error channel, the reason the stream ended is
// kept for SourceAdapter.Err.
func Source[T any](ctx context.Context, src wesos.Source[T]) *SourceAdapter[T] {
	s := &SourceAdapter[T]{
		out:  make(chan any),
		done: make(chan struct{}),
	}
	go s.run(ctx, src)
	return s
}

func (s *SourceAdapter[T]) run(ctx context.Context, src wesos.Source[T]) {
	var err error
	defer func() {
		s.err = err
		close(s.done)
		close(s.out)
	}()
	for {
		var v T
		v, err = src.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return
		}
		select {
		case s.out <- v:
		case <-ctx.Done():
			err = ctx.Err()
			return
		}
	}
}

// Out returns the channel that carries the values of the wesos Source, each
// as a T inside an any. It is closed when the stream ends (see Source).
func (s *SourceAdapter[T]) Out() <-chan any { return s.out }

// Via streams the values to operator and returns operator, like the Via of
// go-streams' own Sources: a go-streams goroutine (flow.DoStream) copies Out
// to operator.In and closes operator.In when Out is closed, so it has the
// same owner as the adapter's own goroutine.
func (s *SourceAdapter[T]) Via(operator streams.Flow) streams.Flow {
	flow.DoStream(s, operator)
	return operator
}

// Err reports why the stream ended: nil after a clean end (src returned an
// error matching io.EOF), the error src.Next returned, or ctx.Err() if ctx
// ended first. Before the channel returned by Out is closed, Err returns nil.
// Err may be called from any goroutine; the error is final once Out's
// channel is seen closed, or once any go-streams stage downstream of it has
// closed its own output.
func (s *SourceAdapter[T]) Err() error {
	select {
	case <-s.done:
		return s.err
	default:
		return nil
	}
}

// SinkAdapter is a go-streams Sink (streams.Sink) that sends what it receives
// to a wesos Sink. Make one with Sink.
type SinkAdapter[T any] struct {
	in   chan any
	done chan struct{}

	mu  sync.Mutex
	err error
}

var _ streams.Sink = (*SinkAdapter[int])(nil)

// Sink returns a go-streams Sink that asserts each value it receives to T
// and sends it to dst with dst.Send(ctx, v).
//
// Sink starts one goroutine, which reads the channel returned by In until
// that channel is closed. Its owner is whoever writes to In: a go-streams
// stage's To or Via closes it at the end of the stream, as go-streams'
// Inlet contract requires; code that writes to In itself must close it.
//
// The first failure (dst.Send returning an error, a value that is not a T,
// or ctx ending) is recorded for SinkAdapter.Err, and from then on values
// are received and discarded without calling dst: the goroutine keeps
// draining In so that the go-streams goroutines upstream never block
// forever on a send. To stop the upstream too, cancel the ctx of the
// stream's SourceAdapter (a dst wrapper can do it on its first error).
func Sink[T any](ctx context.Context, dst wesos.Sink[T]) *SinkAdapter[T] {
	s := &SinkAdapter[T]{
		in:   make(chan any),
		done: make(chan struct{}),
	}
	go s.run(ctx, dst)
	return s
}

func (s *SinkAdapter[T]) run(ctx context.Context, dst wesos.Sink[T]) {
	defer close(s.done)
	failed := false
	fail := func(err error) {
		s.mu.Lock()
		s.err = err
		s.mu.Unlock()
		failed = true
	}
	for e := range s.in {
		if failed {
			continue // drain: upstream must be able to finish
		}
		if err := ctx.Err(); err != nil {
			fail(err)
			continue
		}
		v, err := as[T](e)
		if err != nil {
			fail(err)
			continue
		}
		if err := dst.Send(ctx, v); err != nil {
			fail(err)
		}
	}
	if err := ctx.Err(); err != nil && !failed {
		// The input may have closed because ctx ended upstream: the
		// stream was cut short, not complete.
		fail(err)
	}
}

// In returns the channel the Sink receives from. Close it after the last
// value (go-streams stages do so when their input ends).
func (s *SinkAdapter[T]) In() chan<- any { return s.in }

// AwaitCompletion blocks until the channel returned by In has been closed
// and every value sent on it has been handled (sent to dst or, after a
// failure, discarded), that is until the Sink's goroutine has exited.
func (s *SinkAdapter[T]) AwaitCompletion() { <-s.done }

// Err returns the first failure of the Sink: the error dst.Send returned, an
// error matching ErrType for a value that was not a T, or ctx.Err() if ctx
// ended before the input was closed. It returns nil while there has been no
// failure; after AwaitCompletion returns, the result is final. Err may be
// called from any goroutine.
func (s *SinkAdapter[T]) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// OutletSource is a wesos Source that reads the output channel of a
// go-streams Outlet (a Source or a Flow). Make one with FromOutlet.
type OutletSource[T any] struct {
	out <-chan any
}

var _ wesos.Source[int] = (*OutletSource[int])(nil)

// FromOutlet returns a wesos Source of the values of out.Out(), asserted to
// T. It starts no goroutine and, like any wesos Source, is not safe for
// concurrent use.
//
// The go-streams stage behind out stops only when its output has been read
// to the end, so a consumer that stops early must call OutletSource.Drain.
//
// A few go-streams v0.12.0 stages start emitting only when their Via or To
// is called: a flow.SlidingWindow read directly never produces a window and
// never closes. Read those through one more stage:
// FromOutlet[[]T](w.Via(flow.NewPassThrough())).
func FromOutlet[T any](out streams.Outlet) *OutletSource[T] {
	return &OutletSource[T]{out: out.Out()}
}

// Next receives the next value. It returns io.EOF once the channel is
// closed, ctx.Err() if ctx ends first, and an error matching ErrType if the
// value is not a T; that value is then lost, and the next call goes on with
// the value after it.
func (s *OutletSource[T]) Next(ctx context.Context) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	select {
	case e, ok := <-s.out:
		if !ok {
			return zero, io.EOF
		}
		return as[T](e)
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Drain receives and discards values until the channel is closed, so that
// the go-streams goroutines upstream can send their last values and exit.
// It returns when the channel is closed, which happens only when the
// stream's head ends: cancel the ctx of the SourceAdapter at the head (or
// Close the InletSink) first if the stream would not end by itself.
func (s *OutletSource[T]) Drain() {
	for range s.out {
	}
}

// InletSink is a wesos Sink that writes to the input channel of a go-streams
// Inlet (a Flow or a Sink). Make one with ToInlet.
type InletSink[T any] struct {
	in     chan<- any
	closed bool
}

var _ wesos.Sink[int] = (*InletSink[int])(nil)

// ToInlet returns a wesos Sink that sends each value to in.In(). It starts
// no goroutine. Call InletSink.Close after the last value: go-streams stages
// stop only when their input channel is closed.
//
// Like any wesos Sink it is not safe for concurrent use, and Close is part
// of that: never call Close while a Send is in progress (cancel the Send's
// ctx first), since a send on a closed channel panics.
func ToInlet[T any](in streams.Inlet) *InletSink[T] {
	return &InletSink[T]{in: in.In()}
}

// Send sends v to the inlet, blocking until the go-streams stage takes it
// (this is the backpressure) or ctx ends, when it returns ctx.Err(). After
// Close it returns ErrClosed.
func (s *InletSink[T]) Send(ctx context.Context, v T) error {
	if s.closed {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case s.in <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close closes the inlet's channel, which tells the go-streams stage that
// the stream has ended. Calls after the first do nothing and return nil.
func (s *InletSink[T]) Close() error {
	if !s.closed {
		s.closed = true
		close(s.in)
	}
	return nil
}
