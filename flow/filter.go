package flow

import (
	"context"

	"github.com/wesos/wesos"
)

// Filter returns a Source that yields the values of src for which keep
// returns true, in order.
func Filter[T any](src wesos.Source[T], keep func(T) bool) wesos.Source[T] {
	return &filterSource[T]{src: src, keep: keep}
}

type filterSource[T any] struct {
	src  wesos.Source[T]
	keep func(T) bool
}

func (f *filterSource[T]) Next(ctx context.Context) (T, error) {
	for {
		v, err := f.src.Next(ctx)
		if err != nil {
			var zero T
			return zero, err
		}
		if f.keep(v) {
			return v, nil
		}
	}
}
