package flow_test

import (
	"context"
	"io"
	"slices"
	"testing"

	"github.com/wesos/wesos/flow"
)

func TestFilter(t *testing.T) {
	even := func(v int) bool { return v%2 == 0 }
	none := func(int) bool { return false }
	tests := []struct {
		name    string
		src     *seq
		keep    func(int) bool
		want    []int
		wantErr error
	}{
		{"keeps some", &seq{n: 7}, even, []int{0, 2, 4, 6}, io.EOF},
		{"keeps none", &seq{n: 7}, none, nil, io.EOF},
		{"empty", &seq{}, even, nil, io.EOF},
		{"error after dropped values", &seq{n: 4, end: errBoom}, none, nil, errBoom},
		{"error after kept values", &seq{n: 3, end: errBoom}, even, []int{0, 2}, errBoom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := drain(t, context.Background(), flow.Filter(tt.src, tt.keep))
			if !slices.Equal(got, tt.want) || err != tt.wantErr {
				t.Fatalf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
