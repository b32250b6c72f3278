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

func TestMap(t *testing.T) {
	failOn := func(bad int) func(context.Context, int) (string, error) {
		return func(_ context.Context, v int) (string, error) {
			if v == bad {
				return "", fmt.Errorf("value %d: %w", v, errBoom)
			}
			return strconv.Itoa(v * 10), nil
		}
	}
	tests := []struct {
		name     string
		src      wesos.Source[int]
		bad      int
		want     []string
		wantErrs []error // the errors met on the way, in order, ending with the final one
	}{
		{"values", &seq{n: 3}, -1, []string{"0", "10", "20"}, []error{io.EOF}},
		{"empty", &seq{}, -1, nil, []error{io.EOF}},
		{"f error is returned and the stream goes on", &seq{n: 3}, 1, []string{"0", "20"}, []error{errBoom, io.EOF}},
		{"src error", &seq{n: 2, end: errBoom}, -1, []string{"0", "10"}, []error{errBoom}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := flow.Map(tt.src, failOn(tt.bad))
			var got []string
			var errs []error
			for len(errs) < len(tt.wantErrs) {
				v, err := m.Next(context.Background())
				if err != nil {
					if v != "" {
						t.Errorf("Next returned %q with error %v, want the zero value", v, err)
					}
					errs = append(errs, err)
					continue
				}
				got = append(got, v)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("values %q, want %q", got, tt.want)
			}
			for i := range errs {
				if !errors.Is(errs[i], tt.wantErrs[i]) {
					t.Errorf("errors %v, want %v", errs, tt.wantErrs)
				}
			}
		})
	}
}

func TestMapPassesCtx(t *testing.T) {
	type key struct{}
	ctx := context.WithValue(context.Background(), key{}, 7)
	src := wesos.SourceFunc[int](func(ctx context.Context) (int, error) { return ctx.Value(key{}).(int), nil })
	m := flow.Map(src, func(ctx context.Context, v int) (int, error) { return v + ctx.Value(key{}).(int), nil })
	if v, err := m.Next(ctx); v != 14 || err != nil {
		t.Fatalf("Next = %v, %v; want 14, nil: ctx must reach both src and f", v, err)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	m2 := flow.Map(wesos.Source[int](&seq{n: 3}), func(context.Context, int) (int, error) { called = true; return 0, nil })
	if _, err := m2.Next(cancelled); err != context.Canceled || called {
		t.Fatalf("Next(cancelled) = %v (f called: %v), want context.Canceled without calling f", err, called)
	}
}
