package flow_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
	"go.uber.org/goleak"
)

// block is a Source that yields nothing until ctx ends; ended is closed then.
type block struct{ ended chan struct{} }

func newBlock() *block { return &block{ended: make(chan struct{})} }

func (b *block) Next(ctx context.Context) (int, error) {
	<-ctx.Done()
	close(b.ended)
	return 0, ctx.Err()
}

func TestMergeAllValues(t *testing.T) {
	defer goleak.VerifyNone(t)
	tests := []struct {
		name string
		srcs [][]int
	}{
		{"no inputs", nil},
		{"one input", [][]int{{1, 2, 3}}},
		{"several inputs", [][]int{{1, 2, 3}, {10, 20}, {}, {100, 200, 300, 400}}},
		{"empty inputs", [][]int{{}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srcs []wesos.Source[int]
			var want []int
			for _, vs := range tt.srcs {
				srcs = append(srcs, wesos.FromSlice(slices.Clone(vs)...)) // FromSlice zeroes what it has yielded
				want = append(want, vs...)
			}
			m := flow.Merge(context.Background(), srcs...)
			got, err := drain(t, context.Background(), m)
			if err != io.EOF {
				t.Fatalf("Merge ended with %v, want io.EOF", err)
			}
			// Each input's values keep their order.
			for _, vs := range tt.srcs {
				var sub []int
				for _, v := range got {
					if slices.Contains(vs, v) {
						sub = append(sub, v)
					}
				}
				if !slices.Equal(sub, vs) {
					t.Fatalf("input %v came out as %v (all: %v)", vs, sub, got)
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if _, err := m.Next(context.Background()); err != io.EOF {
				t.Fatalf("Next after the end = %v, want io.EOF", err)
			}
		})
	}
}

func TestMergeNoReadAhead(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	asked := make(chan int, 10) // the value each call of the input's Next is about to return
	i := 0
	eager := wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
		i++
		asked <- i
		return i, nil
	})
	m := flow.Merge(ctx, wesos.Source[int](eager), newBlock())

	for want := 1; want <= 3; want++ {
		v, err := m.Next(ctx)
		if err != nil || v != want {
			t.Fatalf("Next = %v, %v; want %v, nil", v, err, want)
		}
		if got := <-asked; got != want {
			t.Fatalf("input asked for %d, want %d", got, want)
		}
		// The consumer holds v: the input must not be asked again yet.
		select {
		case got := <-asked:
			t.Fatalf("input asked for value %d while the consumer still held %d", got, v)
		case <-time.After(30 * time.Millisecond):
		}
	}
}

func TestMergeFirstErrorCancelsOthers(t *testing.T) {
	defer goleak.VerifyNone(t)
	b1, b2 := newBlock(), newBlock()
	failing := &seq{n: 2, end: errBoom}
	m := flow.Merge(context.Background(), wesos.Source[int](b1), failing, b2)

	got, err := drain(t, context.Background(), m)
	if err != errBoom {
		t.Fatalf("Merge ended with %v, want errBoom (not the others' context.Canceled)", err)
	}
	if !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("got %v before the error, want [0 1]", got)
	}
	for _, b := range []*block{b1, b2} {
		select {
		case <-b.ended:
		default:
			t.Fatal("an input's ctx was not cancelled before Next returned the error")
		}
	}
	if _, err := m.Next(context.Background()); err != errBoom {
		t.Fatalf("Next after the error = %v, want errBoom again", err)
	}
}

func TestMergeParentCancel(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan struct{})
	src := wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
		select {
		case held <- struct{}{}:
			return 1, nil
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	})
	m := flow.Merge(ctx, src, newBlock())
	go func() { <-held; cancel() }()
	v, err := m.Next(context.Background())
	if err == nil {
		// The value won the race with the cancel; the next call sees it.
		if v != 1 {
			t.Fatalf("Next = %v, want 1", v)
		}
		_, err = m.Next(context.Background())
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Next after the cancel = %v, want context.Canceled", err)
	}
}

func TestMergeCallCtxEndsOnlyTheCall(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := make(chan int)
	m := flow.Merge(ctx, wesos.FromChan(ch))

	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, err := m.Next(short); err != context.DeadlineExceeded {
		t.Fatalf("Next(short ctx) = %v, want context.DeadlineExceeded", err)
	}
	go func() { ch <- 7; close(ch) }()
	got, err := drain(t, ctx, m)
	if err != io.EOF || !slices.Equal(got, []int{7}) {
		t.Fatalf("then %v, %v; want [7], io.EOF", got, err)
	}
}

func TestMergeAbandonedAndCancelled(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	endless := wesos.SourceFunc[int](func(ctx context.Context) (int, error) { return 1, ctx.Err() })
	m := flow.Merge(ctx, endless, endless, newBlock())
	for range 5 {
		if _, err := m.Next(ctx); err != nil {
			t.Fatal(err)
		}
	}
	cancel() // the caller stops reading: cancelling ctx ends every goroutine
}
