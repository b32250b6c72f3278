package gostreams_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/reugn/go-streams/extension"
	"github.com/reugn/go-streams/flow"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/gostreams"
)

// The chain measured by the benchmarks below, per value: x*3, keep the even
// results, +1. One op is one value pushed in; half of them come out.
func triple(x int) int    { return x * 3 }
func even(x int) bool     { return x%2 == 0 }
func increment(x int) int { return x + 1 }

// wantSum is the sum of what the chain yields for 0, 1, …, n-1.
func wantSum(n int) int {
	s := 0
	for i := range n {
		if v := triple(i); even(v) {
			s += increment(v)
		}
	}
	return s
}

// countSource yields 0, 1, …, n-1, then io.EOF.
type countSource struct{ i, n int }

func (c *countSource) Next(context.Context) (int, error) {
	if c.i == c.n {
		return 0, io.EOF
	}
	c.i++
	return c.i - 1, nil
}

// mapSource and filterSource are minimal pull operators, written here so
// that the benchmark does not depend on package flow.
type mapSource[In, Out any] struct {
	src wesos.Source[In]
	f   func(In) Out
}

func (m mapSource[In, Out]) Next(ctx context.Context) (Out, error) {
	v, err := m.src.Next(ctx)
	if err != nil {
		var zero Out
		return zero, err
	}
	return m.f(v), nil
}

type filterSource[T any] struct {
	src  wesos.Source[T]
	keep func(T) bool
}

func (f filterSource[T]) Next(ctx context.Context) (T, error) {
	for {
		v, err := f.src.Next(ctx)
		if err != nil || f.keep(v) {
			return v, err
		}
	}
}

// BenchmarkGoStreamsMapFilterMap: go-streams alone, ChanSource → Map →
// Filter → Map → ChanSink, every stage a goroutine and every hop a chan any.
func BenchmarkGoStreamsMapFilterMap(b *testing.B) {
	b.ReportAllocs()
	in := make(chan any)
	out := make(chan any)
	done := make(chan struct{})
	go func() {
		defer close(done)
		extension.NewChanSource(in).
			Via(flow.NewMap(triple, 1)).
			Via(flow.NewFilter(even, 1)).
			Via(flow.NewMap(increment, 1)).
			To(extension.NewChanSink(out)) // closes out at the end
	}()
	b.ResetTimer()
	go func() {
		for i := range b.N {
			in <- i
		}
		close(in)
	}()
	sum := 0
	for v := range out {
		sum += v.(int)
	}
	b.StopTimer()
	<-done
	if want := wantSum(b.N); sum != want {
		b.Fatalf("sum %d, want %d", sum, want)
	}
}

// BenchmarkWesosMapFilterMap: the same chain as pull calls on wesos.Source,
// all in the caller's goroutine.
func BenchmarkWesosMapFilterMap(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	var src wesos.Source[int] = &countSource{n: b.N}
	src = mapSource[int, int]{src, triple}
	src = filterSource[int]{src, even}
	src = mapSource[int, int]{src, increment}
	b.ResetTimer()
	sum := 0
	for {
		v, err := src.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			break
		}
		sum += v
	}
	b.StopTimer()
	if want := wantSum(b.N); sum != want {
		b.Fatalf("sum %d, want %d", sum, want)
	}
}

// BenchmarkAdaptedMapFilterMap: the go-streams chain between the adapters of
// this package, wesos Source → Source → Map → Filter → Map → FromOutlet, to
// show what the adapters add to go-streams' own cost.
func BenchmarkAdaptedMapFilterMap(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	in := gostreams.Source(ctx, wesos.Source[int](&countSource{n: b.N}))
	out := gostreams.FromOutlet[int](in.
		Via(flow.NewMap(triple, 1)).
		Via(flow.NewFilter(even, 1)).
		Via(flow.NewMap(increment, 1)))
	b.ResetTimer()
	sum := 0
	for {
		v, err := out.Next(ctx)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				b.Fatal(err)
			}
			break
		}
		sum += v
	}
	b.StopTimer()
	if err := in.Err(); err != nil {
		b.Fatal(err)
	}
	if want := wantSum(b.N); sum != want {
		b.Fatalf("sum %d, want %d", sum, want)
	}
}
