package flow

import (
	"context"
	"errors"
	"io"

	"github.com/wesos/wesos"
)

// Scan returns a Source of running accumulations: for each value v of src it
// sets acc = f(acc, v), starting from init, and yields acc.
func Scan[T, A any](src wesos.Source[T], init A, f func(A, T) A) wesos.Source[A] {
	return &scanSource[T, A]{src: src, acc: init, f: f}
}

type scanSource[T, A any] struct {
	src wesos.Source[T]
	acc A
	f   func(A, T) A
}

func (s *scanSource[T, A]) Next(ctx context.Context) (A, error) {
	v, err := s.src.Next(ctx)
	if err != nil {
		var zero A
		return zero, err
	}
	s.acc = s.f(s.acc, v)
	return s.acc, nil
}

// Reduce reads src to its end, folding every value into acc = f(acc, v)
// starting from init, and returns the result. A clean end (an error matching
// io.EOF) returns a nil error; any other error is returned together with the
// accumulation of the values read before it.
func Reduce[T, A any](ctx context.Context, src wesos.Source[T], init A, f func(A, T) A) (A, error) {
	acc := init
	for {
		v, err := src.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return acc, nil
			}
			return acc, err
		}
		acc = f(acc, v)
	}
}
