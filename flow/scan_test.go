package flow_test

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/wesos/wesos/flow"
)

func sum(a, v int) int { return a + v }

func TestScan(t *testing.T) {
	tests := []struct {
		name    string
		src     *seq
		want    []int
		wantErr error
	}{
		{"running sums", &seq{n: 5}, []int{100, 101, 103, 106, 110}, io.EOF},
		{"empty", &seq{}, nil, io.EOF},
		{"src error", &seq{n: 2, end: errBoom}, []int{100, 101}, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := drain(t, context.Background(), flow.Scan(tt.src, 100, sum))
			if !slices.Equal(got, tt.want) || err != tt.wantErr {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestReduce(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		ctx     context.Context
		src     *seq
		want    int
		wantErr error
	}{
		{"sum", context.Background(), &seq{n: 5}, 110, nil},
		{"empty gives init", context.Background(), &seq{}, 100, nil},
		{"error keeps the partial result", context.Background(), &seq{n: 3, end: errBoom}, 103, errBoom},
		{"cancelled", cancelled, &seq{n: 3}, 100, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := flow.Reduce(tt.ctx, tt.src, 100, sum)
			if got != tt.want || err != tt.wantErr {
				t.Fatalf("Reduce = %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
