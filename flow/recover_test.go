package flow_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"testing"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
)

// steps is a Source that returns its steps in order, then io.EOF, counting
// the calls to Next. A step is a value (an int) or an error.
type steps struct {
	s     []any
	calls int
}

func (s *steps) Next(ctx context.Context) (int, error) {
	s.calls++
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(s.s) == 0 {
		return 0, io.EOF
	}
	st := s.s[0]
	s.s = s.s[1:]
	if err, ok := st.(error); ok {
		return 0, err
	}
	return st.(int), nil
}

// recoverable is a foreign error type that marks itself the way
// ws.DecodeError does.
type recoverable struct{ ok bool }

func (e recoverable) Error() string     { return fmt.Sprintf("recoverable %v", e.ok) }
func (e recoverable) Recoverable() bool { return e.ok }

var (
	errBad   = &flow.ValueError{Err: errors.New("bad value")}
	errEnd   = errors.New("closed with 1007")
	errReply = errors.New("reply sink broken")
)

func TestRecover(t *testing.T) {
	var replies []string
	replySink := wesos.SinkFunc[string](func(_ context.Context, s string) error {
		replies = append(replies, s)
		return nil
	})
	brokenSink := wesos.SinkFunc[string](func(context.Context, string) error { return errReply })
	reply := func(err error) string { return "error: " + err.Error() }

	tests := []struct {
		name        string
		steps       []any
		policy      flow.ErrorPolicy
		want        []int
		wantErrs    []error // the errors Next returns, in order; the last one is checked twice
		wantSkipped int64
		wantReplies []string
		wantCalls   int // calls to the source's Next; 0: not checked
	}{
		{"no failures", []any{1, 2, 3}, flow.SkipValue, []int{1, 2, 3}, []error{io.EOF}, 0, nil, 0},
		{"skip", []any{1, errBad, 2, errBad, errBad, 3}, flow.SkipValue, []int{1, 2, 3}, []error{io.EOF}, 3, nil, 0},
		{"skip a failure at the end", []any{1, errBad}, flow.SkipValue, []int{1}, []error{io.EOF}, 1, nil, 0},
		{"skip a foreign recoverable error", []any{recoverable{true}, 1}, flow.SkipValue, []int{1}, []error{io.EOF}, 1, nil, 0},
		{"an error that says it is not recoverable passes", []any{recoverable{false}, 1}, flow.SkipValue,
			[]int{1}, []error{recoverable{false}, io.EOF}, 0, nil, 0},
		{"a stream error passes, and the stream goes on", []any{1, errBoom, 2}, flow.SkipValue,
			[]int{1, 2}, []error{errBoom, io.EOF}, 0, nil, 0},
		{"a recoverable io.EOF is still the end", []any{1, &flow.ValueError{Err: io.EOF}}, flow.SkipValue,
			[]int{1}, []error{io.EOF}, 0, nil, 0},
		{"reply", []any{errBad, 1, errBad}, flow.ReplyError(replySink, reply),
			[]int{1}, []error{io.EOF}, 2, []string{"error: bad value", "error: bad value"}, 0},
		{"a reply that fails ends the stream", []any{1, errBad, 2}, flow.ReplyError(brokenSink, reply),
			[]int{1}, []error{errReply}, 0, nil, 2},
		{"end", []any{1, errBad, 2}, flow.EndWith(func(error) error { return errEnd }),
			[]int{1}, []error{errEnd}, 0, nil, 2},
		{"end with the error itself", []any{1, errBad, 2}, flow.EndWith(func(error) error { return nil }),
			[]int{1}, []error{errBad}, 0, nil, 2},
		{"end sees the error", []any{errBad}, flow.EndWith(func(err error) error { return fmt.Errorf("ended: %w", err) }),
			nil, []error{errBad}, 0, nil, 1},
		{"a policy of one's own", []any{errBad, errBad, 1, errBad}, limit(2),
			[]int{1}, []error{errEnd}, 2, nil, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replies = nil
			src := &steps{s: tt.steps}
			r := flow.Recover[int](src, tt.policy)
			ctx := context.Background()
			var got []int
			var errs []error
			for range 100 {
				v, err := r.Next(ctx)
				if err == nil {
					got = append(got, v)
					continue
				}
				if v != 0 {
					t.Errorf("Next returned %v with error %v, want the zero value", v, err)
				}
				errs = append(errs, err)
				if len(errs) == len(tt.wantErrs) {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("values %v, want %v", got, tt.want)
			}
			if len(errs) != len(tt.wantErrs) {
				t.Fatalf("errors %v, want %v", errs, tt.wantErrs)
			}
			for i := range errs {
				if !errors.Is(errs[i], tt.wantErrs[i]) {
					t.Errorf("errors %v, want %v", errs, tt.wantErrs)
				}
			}
			// The last error again: io.EOF and an ending policy's error
			// are final, and an ended stream is not read again.
			if _, err := r.Next(ctx); !errors.Is(err, tt.wantErrs[len(tt.wantErrs)-1]) {
				t.Errorf("Next after the end = %v, want %v again", err, tt.wantErrs[len(tt.wantErrs)-1])
			}
			if tt.wantCalls != 0 && src.calls != tt.wantCalls {
				t.Errorf("the source was read %d times, want %d", src.calls, tt.wantCalls)
			}
			if got := r.Skipped(); got != tt.wantSkipped {
				t.Errorf("Skipped() = %d, want %d", got, tt.wantSkipped)
			}
			if !slices.Equal(replies, tt.wantReplies) {
				t.Errorf("replies %q, want %q", replies, tt.wantReplies)
			}
		})
	}
}

// limit is a Policy that skips n failures and ends the stream at the next.
func limit(n int) flow.ErrorPolicy {
	return func(context.Context, error) error {
		if n == 0 {
			return errEnd
		}
		n--
		return nil
	}
}

// Map and FlatMap mark their function's errors as ValueErrors, which read
// as the function's error; an end or a cancellation they leave alone.
func TestMapMarksValueErrors(t *testing.T) {
	ctx := context.Background()
	parse := func(_ context.Context, s string) (int, error) { return strconv.Atoi(s) }
	_, err := flow.Map(wesos.FromSlice("x"), parse).Next(ctx)
	var ve *flow.ValueError
	var ne *strconv.NumError
	if !errors.As(err, &ve) || !errors.As(err, &ne) || err.Error() != ne.Error() {
		t.Errorf("Map's error %#v: want a *flow.ValueError that reads as the *strconv.NumError it wraps", err)
	}

	split := func(_ context.Context, s string) ([]int, error) {
		n, err := strconv.Atoi(s)
		return []int{n}, err
	}
	if _, err := flow.FlatMap(wesos.FromSlice("x"), split).Next(ctx); !errors.As(err, &ve) {
		t.Errorf("FlatMap's error %#v: want a *flow.ValueError", err)
	}

	eof := func(context.Context, string) (int, error) { return 0, io.EOF }
	if _, err := flow.Map(wesos.FromSlice("a"), eof).Next(ctx); err != io.EOF {
		t.Errorf("Map whose function returns io.EOF: %#v, want io.EOF itself", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancelling := func(ctx context.Context, _ string) (int, error) { cancel(); return 0, ctx.Err() }
	if _, err := flow.Map(wesos.FromSlice("a"), cancelling).Next(cctx); err != context.Canceled {
		t.Errorf("Map whose function saw its ctx end: %#v, want context.Canceled itself", err)
	}
}

// A value that fails to transform is answered, and the pipeline goes on: the
// running average of the numbers, with "x" answered by an error reply.
func TestRecoverRunningAverage(t *testing.T) {
	ctx := context.Background()
	in := wesos.FromSlice("1", "x", "3", "", "5")
	var out []string
	replies := wesos.SinkFunc[string](func(_ context.Context, s string) error { out = append(out, s); return nil })

	nums := flow.Map(in, func(_ context.Context, s string) (float64, error) { return strconv.ParseFloat(s, 64) })
	good := flow.Recover(nums, flow.ReplyError(replies, func(err error) string { return "error: " + err.Error() }))
	type avg struct{ sum, n float64 }
	avgs := flow.Scan(good, avg{}, func(a avg, v float64) avg { return avg{a.sum + v, a.n + 1} })
	text := flow.Map(avgs, func(_ context.Context, a avg) (string, error) {
		return strconv.FormatFloat(a.sum/a.n, 'g', -1, 64), nil
	})
	if err := wesos.Pipe(ctx, replies, text); err != nil {
		t.Fatal(err)
	}
	want := []string{"1", `error: strconv.ParseFloat: parsing "x": invalid syntax`, "2",
		`error: strconv.ParseFloat: parsing "": invalid syntax`, "3"}
	if !slices.Equal(out, want) {
		t.Errorf("got %q, want %q", out, want)
	}
	if good.Skipped() != 2 {
		t.Errorf("Skipped() = %d, want 2", good.Skipped())
	}
}

// A cancelled ctx ends the call, not the stream, even when the policy
// returns the cancellation.
func TestRecoverCancelEndsTheCallOnly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	waits := wesos.SinkFunc[string](func(ctx context.Context, _ string) error { cancel(); return ctx.Err() })
	r := flow.Recover[int](&steps{s: []any{errBad, 1}}, flow.ReplyError(waits, func(error) string { return "" }))
	if _, err := r.Next(ctx); err != context.Canceled {
		t.Fatalf("Next = %v, want context.Canceled", err)
	}
	if v, err := r.Next(context.Background()); v != 1 || err != nil {
		t.Fatalf("Next after the cancelled call = %v, %v; want 1, nil", v, err)
	}
}
