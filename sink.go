package wesos

import (
	"context"
	"errors"
	"io"
)

// Sink consumes values. Send blocks until v is accepted (this is the
// backpressure) or ctx ends. A Sink is not safe for concurrent use unless its
// documentation says so.
type Sink[T any] interface {
	Send(ctx context.Context, v T) error
}

// SinkFunc adapts an ordinary function to the Sink interface.
type SinkFunc[T any] func(ctx context.Context, v T) error

// Send calls f(ctx, v).
func (f SinkFunc[T]) Send(ctx context.Context, v T) error { return f(ctx, v) }

// PipeTo is the optional interface Pipe looks for on a source, the way
// io.Copy looks for io.WriterTo: a Source that knows better how it is
// drained (one that goes on past a message it had to cut short, say)
// implements it.
type PipeTo[T any] interface {
	PipeTo(ctx context.Context, dst Sink[T]) error
}

// Pipe sends every value of src to dst, in order, until src ends (an error
// matching io.EOF, and then Pipe returns nil), ctx ends, or either side fails.
// Like io.Copy it takes the destination first and closes nothing.
//
// If src implements PipeTo, Pipe hands the whole job to it.
func Pipe[T any](ctx context.Context, dst Sink[T], src Source[T]) error {
	if pt, ok := src.(PipeTo[T]); ok {
		return pt.PipeTo(ctx, dst)
	}
	for {
		v, err := src.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := dst.Send(ctx, v); err != nil {
			return err
		}
	}
}
