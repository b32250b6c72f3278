package flow_test

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/wesos/wesos/flow"
)

func TestTake(t *testing.T) {
	tests := []struct {
		name      string
		src       *seq
		n         int
		want      []int
		wantErr   error
		wantCalls int // Take must not ask src for more than it yields
	}{
		{"fewer than src has", &seq{n: 5}, 2, []int{0, 1}, io.EOF, 2},
		{"exactly what src has", &seq{n: 2}, 2, []int{0, 1}, io.EOF, 2},
		{"more than src has", &seq{n: 2}, 5, []int{0, 1}, io.EOF, 3},
		{"zero", &seq{n: 5}, 0, nil, io.EOF, 0},
		{"negative", &seq{n: 5}, -3, nil, io.EOF, 0},
		{"src error", &seq{n: 1, end: errBoom}, 5, []int{0}, errBoom, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk := flow.Take(tt.src, tt.n)
			got, err := drain(t, context.Background(), tk)
			if !slices.Equal(got, tt.want) || err != tt.wantErr {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
			if tt.src.calls != tt.wantCalls {
				t.Fatalf("src.Next called %d times, want %d", tt.src.calls, tt.wantCalls)
			}
		})
	}
}

func TestTakeErrorDoesNotCount(t *testing.T) {
	ctx := context.Background()
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	tk := flow.Take(&seq{n: 5}, 1)
	if _, err := tk.Next(cancelled); err != context.Canceled {
		t.Fatalf("Next(cancelled) = %v, want context.Canceled", err)
	}
	if v, err := tk.Next(ctx); v != 0 || err != nil {
		t.Fatalf("Next = %v, %v; want 0, nil", v, err)
	}
	if _, err := tk.Next(ctx); err != io.EOF {
		t.Fatalf("Next after n values = %v, want io.EOF", err)
	}
}
