package flow_test

import (
	"context"
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/wesos/wesos/flow"
)

func TestFlatMap(t *testing.T) {
	var buf []int // reused by repeat, as FlatMap allows
	repeat := func(_ context.Context, v int) ([]int, error) {
		if v == 9 {
			return nil, errBoom
		}
		buf = buf[:0]
		for range v {
			buf = append(buf, v)
		}
		return buf, nil
	}
	tests := []struct {
		name    string
		src     *seq
		want    []int
		wantErr error
	}{
		{"expands and skips empty results", &seq{n: 4}, []int{1, 2, 2, 3, 3, 3}, io.EOF},
		{"only empty results", &seq{n: 1}, nil, io.EOF},
		{"empty", &seq{}, nil, io.EOF},
		{"src error", &seq{n: 3, end: errBoom}, []int{1, 2, 2}, errBoom},
		{"f error", &seq{n: 10}, []int{1, 2, 2, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 8, 8, 8, 8, 8, 8, 8, 8}, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := drain(t, context.Background(), flow.FlatMap(tt.src, repeat))
			if !slices.Equal(got, tt.want) || !errors.Is(err, tt.wantErr) {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
