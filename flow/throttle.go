package flow

import (
	"context"
	"time"

	"github.com/wesos/wesos"
)

// Throttle returns a Source that yields the values of src, in order, but no
// more than n of them in any interval of length per: when n values have
// passed during the last per, Next waits before asking src for the next one,
// so the wait holds src back instead of a value. Bursts of up to n values
// pass at once. If ctx ends during the wait, Next returns ctx.Err() and no
// value is lost. Throttle panics if n <= 0 or per <= 0.
//
// Throttle remembers when each of the last n values passed (8 bytes each), so
// express a high rate over a short period: Throttle(src, 100, 10*time.Millisecond)
// rather than Throttle(src, 10000, time.Second).
func Throttle[T any](src wesos.Source[T], n int, per time.Duration) wesos.Source[T] {
	if n <= 0 || per <= 0 {
		panic("flow: Throttle with a non-positive rate")
	}
	return &throttleSource[T]{src: src, n: n, per: per}
}

type throttleSource[T any] struct {
	src  wesos.Source[T]
	n    int
	per  time.Duration
	base time.Time       // time zero of passed
	past []time.Duration // when the last n values passed, since base; a ring once full
	head int             // oldest entry of past once it is full
	t    *time.Timer     // reused for every wait, stopped between waits
}

func (s *throttleSource[T]) Next(ctx context.Context) (T, error) {
	var zero T
	if s.base.IsZero() {
		s.base = time.Now()
	}
	if len(s.past) == s.n {
		if d := s.past[s.head] + s.per - time.Since(s.base); d > 0 {
			if err := s.sleep(ctx, d); err != nil {
				return zero, err
			}
		}
	}
	v, err := s.src.Next(ctx)
	if err != nil {
		return zero, err
	}
	now := time.Since(s.base)
	if len(s.past) < s.n {
		s.past = append(s.past, now)
	} else {
		s.past[s.head] = now
		s.head = (s.head + 1) % s.n
	}
	return v, nil
}

func (s *throttleSource[T]) sleep(ctx context.Context, d time.Duration) error {
	if s.t == nil {
		s.t = time.NewTimer(d)
	} else {
		s.t.Reset(d)
	}
	select {
	case <-s.t.C:
		return nil
	case <-ctx.Done():
		s.t.Stop()
		return ctx.Err()
	}
}
