package flow

import (
	"context"
	"errors"
	"io"
	"sync"

	"github.com/wesos/wesos"
)

// Merge returns a Source that yields the values of all srcs as they arrive
// (fan-in). Values of one input keep their order; values of different inputs
// interleave.
//
// Each input is read by its own goroutine, started by the first call to Next.
// Merge never reads ahead: an input hands one value over and does not call
// its Next again until the consumer calls Next again, so a value that is
// valid only until its Source's next Next (a ws.Message body) stays valid
// while the consumer holds it.
//
// ctx governs the input goroutines: the inputs' Next calls get a ctx derived
// from it. The ctx given to the returned Source's Next only bounds that call.
// As in errgroup, the first input error other than io.EOF cancels the other
// inputs and is what Next returns, once every goroutine has ended; after every
// input has ended with io.EOF, Next returns io.EOF. The goroutines end when
// the stream ends that way or when ctx is cancelled: a caller that stops
// reading before the end must cancel ctx.
//
// The returned Source is not safe for concurrent use; the srcs are each used
// by one goroutine only.
func Merge[T any](ctx context.Context, srcs ...wesos.Source[T]) wesos.Source[T] {
	return &mergeSource[T]{parent: ctx, srcs: srcs, last: -1}
}

type mergeItem[T any] struct {
	v T
	i int // index of the input it came from
}

type mergeSource[T any] struct {
	parent context.Context
	srcs   []wesos.Source[T]

	started bool
	ctx     context.Context // derived from parent; cancelled on the first error
	cancel  context.CancelFunc
	out     chan mergeItem[T]
	release []chan struct{} // per input, capacity 1: the consumer wants the next value
	last    int             // input whose value the consumer holds, or -1
	done    chan struct{}   // closed when every input goroutine has ended

	mu     sync.Mutex
	active int   // input goroutines still running
	err    error // the first error, or io.EOF; set before done is closed
}

func (m *mergeSource[T]) Next(ctx context.Context) (T, error) {
	var zero T
	if !m.started {
		m.start()
	}
	if m.last >= 0 {
		m.release[m.last] <- struct{}{} // never blocks: capacity 1, and it is empty
		m.last = -1
	}
	select {
	case it := <-m.out:
		if m.ctx.Err() == nil {
			m.last = it.i
			return it.v, nil
		}
		// An input failed (or parent ended) while this value was on its way:
		// the error comes first.
	case <-m.done:
		return zero, m.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case <-m.done:
		return zero, m.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

func (m *mergeSource[T]) start() {
	m.started = true
	m.ctx, m.cancel = context.WithCancel(m.parent)
	m.out = make(chan mergeItem[T])
	m.done = make(chan struct{})
	m.release = make([]chan struct{}, len(m.srcs))
	m.active = len(m.srcs)
	if len(m.srcs) == 0 {
		m.err = io.EOF
		m.cancel()
		close(m.done)
		return
	}
	for i, src := range m.srcs {
		m.release[i] = make(chan struct{}, 1)
		go m.run(i, src)
	}
}

// run is input i's goroutine: pull one value, hand it over, wait to be
// released, again.
func (m *mergeSource[T]) run(i int, src wesos.Source[T]) {
	for {
		v, err := src.Next(m.ctx)
		if err != nil {
			m.exit(err)
			return
		}
		select {
		case m.out <- mergeItem[T]{v, i}:
		case <-m.ctx.Done():
			m.exit(m.ctx.Err())
			return
		}
		select {
		case <-m.release[i]:
		case <-m.ctx.Done():
			m.exit(m.ctx.Err())
			return
		}
	}
}

// exit records how one input ended; the last one to end closes done.
func (m *mergeSource[T]) exit(err error) {
	m.mu.Lock()
	if m.err == nil && !errors.Is(err, io.EOF) {
		m.err = err
		m.cancel()
	}
	m.active--
	last := m.active == 0
	if last && m.err == nil {
		m.err = io.EOF
	}
	m.mu.Unlock()
	if last {
		m.cancel()
		close(m.done)
	}
}
