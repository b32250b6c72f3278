package wesos_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

var errBoom = errors.New("boom")

// sliceSink collects what it is sent; failAt >= 0 makes the Send of that
// index fail with errBoom.
type sliceSink struct {
	got    []int
	failAt int
}

func (s *sliceSink) Send(ctx context.Context, v int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(s.got) == s.failAt {
		return errBoom
	}
	s.got = append(s.got, v)
	return nil
}

// seqSource yields 0, 1, ... n-1 and then end.
func seqSource(n int, end error) wesos.Source[int] {
	i := 0
	return wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if i == n {
			return 0, end
		}
		i++
		return i - 1, nil
	})
}

func TestPipe(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		src     wesos.Source[int]
		failAt  int
		want    []int
		wantErr error
	}{
		{"EOF is a clean end", context.Background(), seqSource(3, io.EOF), -1, []int{0, 1, 2}, nil},
		{"wrapped EOF is a clean end", context.Background(), seqSource(2, fmt.Errorf("closed: %w", io.EOF)), -1, []int{0, 1}, nil},
		{"empty source", context.Background(), wesos.FromSlice[int](), -1, nil, nil},
		{"source error", context.Background(), seqSource(2, errBoom), -1, []int{0, 1}, errBoom},
		{"sink error", context.Background(), seqSource(5, io.EOF), 2, []int{0, 1}, errBoom},
		{"cancelled ctx", cancelled, seqSource(5, io.EOF), -1, nil, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := &sliceSink{failAt: tt.failAt}
			err := wesos.Pipe(tt.ctx, wesos.Sink[int](dst), tt.src)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Pipe error = %v, want %v", err, tt.wantErr)
			}
			if !slices.Equal(dst.got, tt.want) {
				t.Fatalf("sink got %v, want %v", dst.got, tt.want)
			}
		})
	}
}

func TestPipeCancelMidStream(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []int
	dst := wesos.SinkFunc[int](func(ctx context.Context, v int) error {
		got = append(got, v)
		if v == 1 {
			cancel()
		}
		return nil
	})
	err := wesos.Pipe(ctx, dst, seqSource(10, io.EOF))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Pipe error = %v, want context.Canceled", err)
	}
	if !slices.Equal(got, []int{0, 1}) {
		t.Fatalf("sink got %v, want [0 1]", got)
	}
}

// pipeToSource records whether Pipe handed it the job.
type pipeToSource struct {
	wesos.Source[int]
	used bool
}

func (s *pipeToSource) PipeTo(ctx context.Context, dst wesos.Sink[int]) error {
	s.used = true
	return errBoom
}

func TestPipeUpgrades(t *testing.T) {
	for _, to := range []bool{false, true} {
		t.Run(fmt.Sprintf("PipeTo=%v", to), func(t *testing.T) {
			dst := &sliceSink{failAt: -1}
			toSrc := &pipeToSource{Source: seqSource(2, io.EOF)}
			var src wesos.Source[int] = seqSource(2, io.EOF)
			if to {
				src = toSrc
			}
			err := wesos.Pipe(context.Background(), dst, src)
			if to {
				if err != errBoom || !toSrc.used {
					t.Fatalf("Pipe = %v, PipeTo used %v; want errBoom from PipeTo", err, toSrc.used)
				}
				return
			}
			if err != nil || !slices.Equal(dst.got, []int{0, 1}) {
				t.Fatalf("plain Pipe = %v, delivered %v, want [0 1]", err, dst.got)
			}
		})
	}
}

func TestAll(t *testing.T) {
	tests := []struct {
		name     string
		src      wesos.Source[int]
		stopAt   int // break after this many values; -1 never
		want     []int
		wantErr  error
		wantNext int // calls to Next
	}{
		{"to the end", seqSource(3, io.EOF), -1, []int{0, 1, 2}, nil, 4},
		{"wrapped EOF is not yielded", seqSource(1, fmt.Errorf("x: %w", io.EOF)), -1, []int{0}, nil, 2},
		{"break early", seqSource(10, io.EOF), 2, []int{0, 1}, nil, 2},
		{"error is yielded once", seqSource(2, errBoom), -1, []int{0, 1}, errBoom, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			src := wesos.SourceFunc[int](func(ctx context.Context) (int, error) {
				calls++
				return tt.src.Next(ctx)
			})
			var got []int
			var errs []error
			for v, err := range wesos.All(context.Background(), src) {
				if err != nil {
					errs = append(errs, err)
					continue
				}
				got = append(got, v)
				if len(got) == tt.stopAt {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			if tt.wantErr == nil && len(errs) != 0 || tt.wantErr != nil && (len(errs) != 1 || errs[0] != tt.wantErr) {
				t.Fatalf("errors %v, want %v", errs, tt.wantErr)
			}
			if calls != tt.wantNext {
				t.Fatalf("Next called %d times, want %d", calls, tt.wantNext)
			}
		})
	}
}

func TestFromSlice(t *testing.T) {
	ctx := context.Background()
	vs := []string{"a", "b"}
	src := wesos.FromSlice(vs...)
	for _, want := range vs {
		if got, err := src.Next(ctx); err != nil || got != want {
			t.Fatalf("Next = %q, %v; want %q, nil", got, err, want)
		}
	}
	for range 2 { // EOF is final
		if got, err := src.Next(ctx); err != io.EOF || got != "" {
			t.Fatalf("Next after the end = %q, %v; want \"\", io.EOF", got, err)
		}
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	one := wesos.FromSlice(1)
	if _, err := one.Next(cancelled); err != context.Canceled {
		t.Fatalf("Next(cancelled) error = %v, want context.Canceled", err)
	}
	if v, err := one.Next(ctx); err != nil || v != 1 {
		t.Fatalf("Next after a cancelled call = %v, %v; want 1, nil (the call ends, not the stream)", v, err)
	}
}

func TestFromChan(t *testing.T) {
	ctx := context.Background()
	ch := make(chan int, 2)
	ch <- 1
	ch <- 2
	close(ch)
	got, err := wesos.Collect(ctx, wesos.FromChan(ch))
	if err != nil || !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("Collect = %v, %v; want [1 2], nil", got, err)
	}

	open := make(chan int)
	tctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if _, err := wesos.FromChan(open).Next(tctx); err != context.DeadlineExceeded {
		t.Fatalf("Next on an idle channel = %v, want context.DeadlineExceeded", err)
	}
}

func TestCollect(t *testing.T) {
	tests := []struct {
		name    string
		src     wesos.Source[int]
		want    []int
		wantErr error
	}{
		{"empty", wesos.FromSlice[int](), nil, nil},
		{"values", seqSource(3, io.EOF), []int{0, 1, 2}, nil},
		{"values before an error", seqSource(2, errBoom), []int{0, 1}, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wesos.Collect(context.Background(), tt.src)
			if err != tt.wantErr || !slices.Equal(got, tt.want) {
				t.Fatalf("Collect = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestFuncAdapters(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, "here")
	var src wesos.Source[string] = wesos.SourceFunc[string](func(ctx context.Context) (string, error) {
		return ctx.Value(key{}).(string), errBoom
	})
	if v, err := src.Next(ctx); v != "here" || err != errBoom {
		t.Fatalf("SourceFunc.Next = %q, %v; want the function's results", v, err)
	}
	var sent string
	var dst wesos.Sink[string] = wesos.SinkFunc[string](func(ctx context.Context, v string) error {
		sent = ctx.Value(key{}).(string) + v
		return errBoom
	})
	if err := dst.Send(ctx, "!"); err != errBoom || sent != "here!" {
		t.Fatalf("SinkFunc.Send = %v (sent %q); want the function's result", err, sent)
	}
}
