// Package wesos holds the two tiny interfaces every wesos pipeline is made of,
// Source and Sink, and the helpers that connect them.
//
// A WebSocket connection (package ws) is a Source of incoming messages and a
// Sink of outgoing ones; a ws.Server is a Sink that broadcasts. The Go form of
// node's wsocket.pipe(wserver) is one line:
//
//	wesos.Pipe(ctx, srv, c) // relay every message of c to every open socket
//
// Operators that transform Sources live in package flow.
package wesos

import (
	"context"
	"errors"
	"io"
	"iter"
)

// Source produces values. Next blocks until a value is ready; after the last
// one it returns io.EOF (or an error that matches io.EOF under errors.Is); if
// ctx ends first it returns ctx.Err(). A Source is not safe for concurrent
// use unless its documentation says so.
type Source[T any] interface {
	Next(ctx context.Context) (T, error)
}

// SourceFunc adapts an ordinary function to the Source interface, the way
// http.HandlerFunc adapts one to http.Handler.
type SourceFunc[T any] func(ctx context.Context) (T, error)

// Next calls f(ctx).
func (f SourceFunc[T]) Next(ctx context.Context) (T, error) { return f(ctx) }

// All returns an iterator over the values of src for use in a range loop.
// The iteration stops after the first error, which is yielded with the zero
// value of T; a clean end (an error matching io.EOF) is not yielded.
func All[T any](ctx context.Context, src Source[T]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for {
			v, err := src.Next(ctx)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					yield(v, err)
				}
				return
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}

// FromSlice returns a Source that yields vs in order, then io.EOF.
func FromSlice[T any](vs ...T) Source[T] {
	return &sliceSource[T]{vs: vs}
}

type sliceSource[T any] struct{ vs []T }

func (s *sliceSource[T]) Next(ctx context.Context) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, err
	}
	if len(s.vs) == 0 {
		return zero, io.EOF
	}
	v := s.vs[0]
	s.vs = s.vs[1:] // the caller's slice is left as it was
	return v, nil
}

// FromChan returns a Source that yields the values received from ch until ch
// is closed (then io.EOF) or ctx ends.
func FromChan[T any](ch <-chan T) Source[T] {
	return SourceFunc[T](func(ctx context.Context) (T, error) {
		select {
		case v, ok := <-ch:
			if !ok {
				return v, io.EOF
			}
			return v, nil
		case <-ctx.Done():
			var zero T
			return zero, ctx.Err()
		}
	})
}

// Collect reads src to its end and returns every value. A clean end (an
// error matching io.EOF) returns a nil error; any other error is returned
// together with the values read before it.
func Collect[T any](ctx context.Context, src Source[T]) ([]T, error) {
	var out []T
	for {
		v, err := src.Next(ctx)
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, v)
	}
}
