package flow_test

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
)

func TestThrottleSpacing(t *testing.T) {
	const n, per, values = 2, 40 * time.Millisecond, 7
	var calls []time.Time // when the source was asked for each value
	i := 0
	src := wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
		if i == values {
			return 0, io.EOF
		}
		calls = append(calls, time.Now())
		i++
		return i, nil
	})
	start := time.Now()
	got, err := drain(t, context.Background(), flow.Throttle(src, n, per))
	if err != io.EOF || len(got) != values {
		t.Fatalf("got %d values, %v; want %d, io.EOF", len(got), err, values)
	}
	// Value k may only be asked for once value k-n passed per ago, and it
	// passed after it was asked for.
	for k := n; k < values; k++ {
		if gap := calls[k].Sub(calls[k-n]); gap < per {
			t.Errorf("values %d and %d were %v apart; at most %d per %v may pass", k-n, k, gap, n, per)
		}
	}
	if el, least := time.Since(start), (values-1)/n*per; el < least {
		t.Errorf("%d values took %v, want at least %v", values, el, least)
	}
}

func TestThrottleCancelDuringWait(t *testing.T) {
	src := &seq{n: 5}
	th := flow.Throttle(src, 1, time.Hour)
	if v, err := th.Next(context.Background()); v != 0 || err != nil {
		t.Fatalf("first Next = %v, %v; want 0, nil at once", v, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := th.Next(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Next during the wait = %v, want context.DeadlineExceeded", err)
	}
	if src.calls != 1 {
		t.Fatalf("src.Next called %d times, want 1: the wait must come before reading", src.calls)
	}
}

func TestThrottleErrorTakesNoSlot(t *testing.T) {
	src := &seq{n: 5}
	th := flow.Throttle(src, 1, time.Hour)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := th.Next(cancelled); err != context.Canceled {
		t.Fatalf("Next(cancelled) = %v, want context.Canceled", err)
	}
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if v, err := th.Next(ctx); v != 0 || err != nil {
		t.Fatalf("Next = %v, %v; want 0, nil without waiting", v, err)
	}
}

func TestThrottlePanics(t *testing.T) {
	for _, tt := range []struct {
		n   int
		per time.Duration
	}{{0, time.Second}, {-1, time.Second}, {1, 0}, {1, -time.Second}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("Throttle(src, %d, %v) did not panic", tt.n, tt.per)
				}
			}()
			flow.Throttle(wesos.FromSlice(1), tt.n, tt.per)
		}()
	}
}
