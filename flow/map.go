package flow

import (
	"context"

	"github.com/wesos/wesos"
)

// Map returns a Source that yields f(ctx, v) for every value v of src. An
// error from f is returned by Next in place of a value, as a ValueError that
// Recover can handle; the next call goes on with the next value of src.
func Map[In, Out any](src wesos.Source[In], f func(context.Context, In) (Out, error)) wesos.Source[Out] {
	return &mapSource[In, Out]{src: src, f: f}
}

type mapSource[In, Out any] struct {
	src wesos.Source[In]
	f   func(context.Context, In) (Out, error)
}

func (m *mapSource[In, Out]) Next(ctx context.Context) (Out, error) {
	v, err := m.src.Next(ctx)
	if err != nil {
		var zero Out
		return zero, err
	}
	out, err := m.f(ctx, v)
	if err != nil {
		var zero Out
		return zero, valueError(ctx, err)
	}
	return out, nil
}
