package flow

import (
	"context"
	"io"

	"github.com/wesos/wesos"
)

// Take returns a Source that yields the first n values of src and then
// io.EOF, without asking src for more. If n <= 0 it yields io.EOF at once.
func Take[T any](src wesos.Source[T], n int) wesos.Source[T] {
	return &takeSource[T]{src: src, left: max(n, 0)}
}

type takeSource[T any] struct {
	src  wesos.Source[T]
	left int
}

func (t *takeSource[T]) Next(ctx context.Context) (T, error) {
	if t.left == 0 {
		var zero T
		return zero, io.EOF
	}
	v, err := t.src.Next(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	t.left--
	return v, nil
}
