package flow

import (
	"context"

	"github.com/wesos/wesos"
)

// FlatMap returns a Source that yields, in order, every element of f(ctx, v)
// for every value v of src; a value for which f returns no elements yields
// nothing. An error from f is returned by Next, as a ValueError that Recover
// can handle. FlatMap only reads the slice f
// returns, and calls f again only after the last element has been yielded,
// so f may reuse one buffer.
func FlatMap[In, Out any](src wesos.Source[In], f func(context.Context, In) ([]Out, error)) wesos.Source[Out] {
	return &flatMapSource[In, Out]{src: src, f: f}
}

type flatMapSource[In, Out any] struct {
	src     wesos.Source[In]
	f       func(context.Context, In) ([]Out, error)
	pending []Out
}

func (m *flatMapSource[In, Out]) Next(ctx context.Context) (Out, error) {
	var zero Out
	for len(m.pending) == 0 {
		m.pending = nil // let go of f's slice
		v, err := m.src.Next(ctx)
		if err != nil {
			return zero, err
		}
		if m.pending, err = m.f(ctx, v); err != nil {
			m.pending = nil
			return zero, valueError(ctx, err)
		}
	}
	v := m.pending[0]
	m.pending = m.pending[1:]
	return v, nil
}
