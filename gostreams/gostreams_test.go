package gostreams_test

import (
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/reugn/go-streams/flow"
	"go.uber.org/goleak"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/gostreams"
)

// TestMain also catches goroutines left behind by examples and benchmarks.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// chanOutlet is a streams.Outlet and streams.Inlet over one channel, for
// feeding the adapters values go-streams' typed stages would not produce.
type chanOutlet chan any

func (c chanOutlet) Out() <-chan any { return c }
func (c chanOutlet) In() chan<- any  { return c }

// counter is an endless Source 0, 1, 2, … that honours ctx.
func counter() wesos.Source[int] {
	n := 0
	return wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n++
		return n - 1, nil
	})
}

func TestRoundTripMapFilter(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()

	in := gostreams.Source(ctx, wesos.FromSlice(1, 2, 3, 4, 5, 6, 7, 8, 9, 10))
	out := in.
		Via(flow.NewMap(func(x int) int { return x * 10 }, 1)).
		Via(flow.NewFilter(func(x int) bool { return x%20 == 0 }, 1))
	got, err := wesos.Collect(ctx, gostreams.FromOutlet[int](out))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if want := []int{20, 40, 60, 80, 100}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if err := in.Err(); err != nil {
		t.Errorf("Source.Err() = %v, want nil after a clean end", err)
	}
}

func TestSourceErrIsKept(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	boom := errors.New("boom")
	n := 0
	src := wesos.SourceFunc[int](func(context.Context) (int, error) {
		if n == 3 {
			return 0, boom
		}
		n++
		return n, nil
	})

	in := gostreams.Source(ctx, src)
	if err := in.Err(); err != nil {
		t.Errorf("Err() before the end = %v, want nil", err)
	}
	got, err := wesos.Collect(ctx, gostreams.FromOutlet[int](in.Via(flow.NewPassThrough())))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if want := []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if err := in.Err(); !errors.Is(err, boom) {
		t.Errorf("Source.Err() = %v, want %v", err, boom)
	}
}

// gated yields groups of values; before each group after the first it waits
// for a token on release, so that the test decides which window a group
// falls into.
func gated(release <-chan struct{}, groups ...[]int) wesos.Source[int] {
	g, i := 0, 0
	return wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
		for g < len(groups) && i == len(groups[g]) {
			g, i = g+1, 0
			if g == len(groups) {
				break
			}
			select {
			case <-release:
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		if g == len(groups) {
			return 0, io.EOF
		}
		i++
		return groups[g][i-1], nil
	})
}

func TestTumblingWindow(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	groups := [][]int{{1, 2, 3}, {4, 5}, {6, 7, 8, 9}, {10}}
	release := make(chan struct{}, len(groups))
	in := gostreams.Source(ctx, gated(release, groups...))
	windows := gostreams.FromOutlet[[]int](in.Via(flow.NewTumblingWindow[int](50 * time.Millisecond)))

	var got [][]int
	for w, err := range wesos.All(ctx, windows) {
		if err != nil {
			cancel()
			windows.Drain()
			t.Fatalf("Next: %v", err)
		}
		got = append(got, w)
		release <- struct{}{} // next group, in the next window
	}
	if !reflect.DeepEqual(got, groups) {
		t.Errorf("windows %v, want %v", got, groups)
	}
	if err := in.Err(); err != nil {
		t.Errorf("Source.Err() = %v", err)
	}
}

// A SlidingWindow starts emitting only in its Via or To, so it is read
// through a PassThrough. Input that ends at once gives one window.
func TestSlidingWindow(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()

	in := gostreams.Source(ctx, wesos.FromSlice(1, 2, 3, 4, 5))
	windows := in.
		Via(flow.NewSlidingWindow[int](100*time.Millisecond, 50*time.Millisecond)).
		Via(flow.NewPassThrough())
	got, err := wesos.Collect(ctx, gostreams.FromOutlet[[]int](windows))
	if err != nil {
		t.Fatalf("Collect: %v", err)
	}
	if want := [][]int{{1, 2, 3, 4, 5}}; !reflect.DeepEqual(got, want) {
		t.Errorf("windows %v, want %v", got, want)
	}
}

func TestSinkCollects(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()

	var got []int
	sink := gostreams.Sink(ctx, wesos.SinkFunc[int](func(_ context.Context, v int) error {
		got = append(got, v)
		return nil
	}))
	gostreams.Source(ctx, wesos.FromSlice(1, 2, 3, 4)).
		Via(flow.NewMap(func(x int) int { return x * x }, 1)).
		To(sink) // blocks until sink.AwaitCompletion returns

	if err := sink.Err(); err != nil {
		t.Fatalf("Sink.Err() = %v", err)
	}
	if want := []int{1, 4, 9, 16}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSinkErrorDrains(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()
	boom := errors.New("boom")

	var got []int
	sink := gostreams.Sink(ctx, wesos.SinkFunc[int](func(_ context.Context, v int) error {
		got = append(got, v)
		if v == 3 {
			return boom
		}
		return nil
	}))
	vs := make([]int, 100)
	for i := range vs {
		vs[i] = i + 1
	}
	in := gostreams.Source(ctx, wesos.FromSlice(vs...))
	// To returns only if the sink keeps reading after its error.
	in.Via(flow.NewPassThrough()).To(sink)

	if err := sink.Err(); !errors.Is(err, boom) {
		t.Errorf("Sink.Err() = %v, want %v", err, boom)
	}
	if want := []int{1, 2, 3}; !slices.Equal(got, want) {
		t.Errorf("dst got %v, want %v (no Send after the first error)", got, want)
	}
	if err := in.Err(); err != nil {
		t.Errorf("Source.Err() = %v, want nil: the source was drained to its end", err)
	}
}

func TestSinkWrongType(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()

	calls := 0
	sink := gostreams.Sink(ctx, wesos.SinkFunc[int](func(context.Context, int) error {
		calls++
		return nil
	}))
	gostreams.Source(ctx, wesos.FromSlice(1, 2, 3)).
		Via(flow.NewMap(func(x int) string { return "x" }, 1)).
		To(sink)

	err := sink.Err()
	if !errors.Is(err, gostreams.ErrType) {
		t.Fatalf("Sink.Err() = %v, want an error matching ErrType", err)
	}
	t.Log(err)
	if calls != 0 {
		t.Errorf("dst.Send called %d times, want 0", calls)
	}
}

func TestSinkNilForInterfaceType(t *testing.T) {
	defer goleak.VerifyNone(t)
	var got []error
	sink := gostreams.Sink(context.Background(), wesos.SinkFunc[error](func(_ context.Context, v error) error {
		got = append(got, v)
		return nil
	}))
	sink.In() <- nil
	close(sink.In())
	sink.AwaitCompletion()
	if err := sink.Err(); err != nil {
		t.Fatalf("Sink.Err() = %v", err)
	}
	if len(got) != 1 || got[0] != nil {
		t.Errorf("got %v, want [<nil>]", got)
	}
}

// Cancelling the ctx of the SourceAdapter stops an endless stream: the
// adapter closes its channel, the go-streams stages close theirs, To returns.
func TestCancelStopsEverything(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var got []int
	sink := gostreams.Sink(ctx, wesos.SinkFunc[int](func(_ context.Context, v int) error {
		got = append(got, v)
		if len(got) == 10 {
			cancel()
		}
		return nil
	}))
	in := gostreams.Source(ctx, counter())
	in.Via(flow.NewMap(func(x int) int { return x + 1 }, 1)).
		Via(flow.NewFilter(func(int) bool { return true }, 1)).
		To(sink)

	if err := in.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Source.Err() = %v, want context.Canceled", err)
	}
	if err := sink.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Sink.Err() = %v, want context.Canceled", err)
	}
	if want := []int{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// A consumer that stops reading early cancels the head and drains the tail,
// and nothing leaks.
func TestFromOutletCancelAndDrain(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	in := gostreams.Source(ctx, counter())
	out := gostreams.FromOutlet[int](in.Via(flow.NewMap(func(x int) int { return 2 * x }, 1)))
	for want := 0; want < 6; want += 2 {
		v, err := out.Next(ctx)
		if err != nil || v != want {
			t.Fatalf("Next = %v, %v; want %v, nil", v, err, want)
		}
	}
	cancel()
	if _, err := out.Next(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Next after cancel: %v, want context.Canceled", err)
	}
	out.Drain()
	if err := in.Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("Source.Err() = %v, want context.Canceled", err)
	}
}

func TestFromOutletWrongTypeAndNil(t *testing.T) {
	ctx := context.Background()
	c := make(chanOutlet, 4)
	c <- "one"
	c <- 2
	c <- nil
	close(c)

	src := gostreams.FromOutlet[int](c)
	if _, err := src.Next(ctx); !errors.Is(err, gostreams.ErrType) {
		t.Errorf("Next(string) error = %v, want ErrType", err)
	}
	if v, err := src.Next(ctx); err != nil || v != 2 {
		t.Errorf("Next = %v, %v; want 2, nil", v, err)
	}
	if _, err := src.Next(ctx); !errors.Is(err, gostreams.ErrType) {
		t.Errorf("Next(nil) into int: error = %v, want ErrType", err)
	}
	if _, err := src.Next(ctx); err != io.EOF {
		t.Errorf("Next at the end: %v, want io.EOF", err)
	}

	c2 := make(chanOutlet, 1)
	c2 <- nil
	if v, err := gostreams.FromOutlet[any](c2).Next(ctx); err != nil || v != nil {
		t.Errorf("Next(nil) into any = %v, %v; want nil, nil", v, err)
	}
}

func TestFromOutletHonoursCtx(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	src := gostreams.FromOutlet[int](make(chanOutlet))
	if _, err := src.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Next = %v, want context.DeadlineExceeded", err)
	}
}

func TestToInletPipe(t *testing.T) {
	defer goleak.VerifyNone(t)
	ctx := context.Background()

	m := flow.NewMap(func(x int) int { return x + 100 }, 1)
	in := gostreams.ToInlet[int](m)
	var wg sync.WaitGroup
	var pipeErr error
	wg.Go(func() {
		pipeErr = wesos.Pipe(ctx, in, wesos.FromSlice(1, 2, 3))
		in.Close()
	})
	got, err := wesos.Collect(ctx, gostreams.FromOutlet[int](m))
	wg.Wait()
	if err != nil || pipeErr != nil {
		t.Fatalf("Collect: %v; Pipe: %v", err, pipeErr)
	}
	if want := []int{101, 102, 103}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if err := in.Send(ctx, 4); !errors.Is(err, gostreams.ErrClosed) {
		t.Errorf("Send after Close: %v, want ErrClosed", err)
	}
	if err := in.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestToInletHonoursCtx(t *testing.T) {
	c := make(chanOutlet) // nobody reads it
	snk := gostreams.ToInlet[int](c)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := snk.Send(ctx, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send = %v, want context.DeadlineExceeded", err)
	}
	if err := snk.Send(ctx, 2); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Send with an ended ctx = %v, want context.DeadlineExceeded", err)
	}
	snk.Close()
	if _, ok := <-c; ok {
		t.Error("Close did not close the inlet's channel")
	}
}
