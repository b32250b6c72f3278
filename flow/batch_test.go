package flow_test

import (
	"context"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
)

func TestBatchBySize(t *testing.T) {
	tests := []struct {
		name    string
		src     *seq
		n       int
		want    [][]int
		wantErr error
	}{
		{"full batches and a partial one", &seq{n: 7}, 3, [][]int{{0, 1, 2}, {3, 4, 5}, {6}}, io.EOF},
		{"full batches only", &seq{n: 4}, 2, [][]int{{0, 1}, {2, 3}}, io.EOF},
		{"n = 1", &seq{n: 2}, 1, [][]int{{0}, {1}}, io.EOF},
		{"n = 0 is no size limit", &seq{n: 4}, 0, [][]int{{0, 1, 2, 3}}, io.EOF},
		{"n < 0 is no size limit", &seq{n: 4}, -1, [][]int{{0, 1, 2, 3}}, io.EOF},
		{"empty", &seq{}, 3, nil, io.EOF},
		{"error comes after the partial batch", &seq{n: 4, end: errBoom}, 3, [][]int{{0, 1, 2}, {3}}, errBoom},
		{"error with nothing pending", &seq{n: 3, end: errBoom}, 3, [][]int{{0, 1, 2}}, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := flow.Batch(tt.src, tt.n, 0)
			got, err := drain(t, context.Background(), b)
			if !reflect.DeepEqual(got, tt.want) || err != tt.wantErr {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
			if err == io.EOF {
				calls := tt.src.calls
				if v, err := b.Next(context.Background()); v != nil || err != io.EOF || tt.src.calls != calls {
					t.Fatalf("Next after io.EOF = %v, %v (src called again: %v); want nil, io.EOF", v, err, tt.src.calls != calls)
				}
			}
		})
	}
}

func TestBatchErrorEndsOneCall(t *testing.T) {
	ctx := context.Background()
	calls := 0
	src := wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
		calls++
		if calls == 2 {
			return 0, errBoom
		}
		if calls > 4 {
			return 0, io.EOF
		}
		return calls, nil
	})
	got, err := drain(t, ctx, flow.Batch(src, 10, 0))
	if !reflect.DeepEqual(got, [][]int{{1}}) || err != errBoom {
		t.Fatalf("first drain: %v, %v; want [[1]], boom", got, err)
	}
	b := flow.Batch(src, 10, 0)
	got, err = drain(t, ctx, b)
	if !reflect.DeepEqual(got, [][]int{{3, 4}}) || err != io.EOF {
		t.Fatalf("after the error: %v, %v; want [[3 4]], io.EOF", got, err)
	}
}

func TestBatchPartialByTime(t *testing.T) {
	ctx := context.Background()
	ch := make(chan int, 10)
	const maxWait = 30 * time.Millisecond
	b := flow.Batch(wesos.FromChan(ch), 10, maxWait)

	ch <- 1
	ch <- 2
	start := time.Now()
	got, err := b.Next(ctx)
	if err != nil || !reflect.DeepEqual(got, []int{1, 2}) {
		t.Fatalf("Next = %v, %v; want [1 2], nil", got, err)
	}
	if el := time.Since(start); el < maxWait {
		t.Fatalf("partial batch after %v, before maxWait %v", el, maxWait)
	}

	// The expired deadline ended one call of the source, not the stream.
	ch <- 3
	ch <- 4
	ch <- 5
	close(ch)
	rest, err := drain(t, ctx, b)
	if err != io.EOF || !reflect.DeepEqual(rest, [][]int{{3, 4, 5}}) {
		t.Fatalf("then %v, %v; want [[3 4 5]], io.EOF", rest, err)
	}
}

func TestBatchTimeWithBusySource(t *testing.T) {
	// A source that never blocks and ignores ctx still cannot keep a batch
	// open past maxWait.
	i := 0
	src := wesos.SourceFunc[int](func(context.Context) (int, error) {
		time.Sleep(time.Millisecond)
		i++
		return i, nil
	})
	b := flow.Batch(src, 0, 20*time.Millisecond)
	for range 2 {
		got, err := b.Next(context.Background())
		if err != nil || len(got) == 0 || len(got) > 1000 {
			t.Fatalf("Next = %d values, %v; want a non-empty batch ended by time", len(got), err)
		}
	}
}

func TestBatchCallerCancelKeepsValues(t *testing.T) {
	ch := make(chan int, 10)
	b := flow.Batch(wesos.FromChan(ch), 3, 0)
	ch <- 1
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if got, err := b.Next(ctx); got != nil || err != context.DeadlineExceeded {
		t.Fatalf("Next(expiring ctx) = %v, %v; want nil, context.DeadlineExceeded", got, err)
	}
	ch <- 2
	ch <- 3
	if got, err := b.Next(context.Background()); err != nil || !reflect.DeepEqual(got, []int{1, 2, 3}) {
		t.Fatalf("Next = %v, %v; want [1 2 3], nil: the values read before the cancel stay", got, err)
	}
}

func TestBatchDeadlinePassedDuringCancelledCall(t *testing.T) {
	ch := make(chan int, 10)
	calls := 0
	src := wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
		calls++
		if calls == 1 {
			return 1, nil // ready even though ctx is cancelled
		}
		return wesos.FromChan(ch).Next(ctx)
	})
	b := flow.Batch(src, 3, 10*time.Millisecond)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if got, err := b.Next(cancelled); got != nil || err != context.Canceled {
		t.Fatalf("Next(cancelled) = %v, %v; want nil, context.Canceled", got, err)
	}
	time.Sleep(20 * time.Millisecond)
	got, err := b.Next(context.Background())
	if err != nil || !reflect.DeepEqual(got, []int{1}) {
		t.Fatalf("Next = %v, %v; want [1], nil", got, err)
	}
	if calls != 2 {
		t.Fatalf("src.Next called %d times, want 2: a batch whose time is up goes without asking src", calls)
	}
}

func TestTumblingWindow(t *testing.T) {
	ctx := context.Background()
	ch := make(chan int, 10)
	const d = 40 * time.Millisecond
	w := flow.TumblingWindow(wesos.FromChan(ch), d)

	ch <- 1
	ch <- 2
	start := time.Now()
	got, err := w.Next(ctx)
	if err != nil || !reflect.DeepEqual(got, []int{1, 2}) {
		t.Fatalf("first window = %v, %v; want [1 2], nil", got, err)
	}
	if el := time.Since(start); el < d {
		t.Fatalf("first window emitted after %v, before it ended (%v)", el, d)
	}
	// Skip a window or two with no values, then one value and the end.
	time.Sleep(d + d/2)
	ch <- 3
	close(ch)
	rest, err := drain(t, ctx, w)
	if err != io.EOF || !reflect.DeepEqual(rest, [][]int{{3}}) {
		t.Fatalf("then %v, %v; want [[3]], io.EOF (no empty windows)", rest, err)
	}
}

func TestTumblingWindowPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("TumblingWindow(src, 0) did not panic")
		}
	}()
	flow.TumblingWindow(wesos.FromSlice(1), 0)
}
