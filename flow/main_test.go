package flow_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/wesos/wesos"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var errBoom = errors.New("boom")

// seq is a Source of 0, 1, ... n-1, then end (io.EOF if nil). It honours
// ctx and counts the calls to Next.
type seq struct {
	n, i  int
	end   error
	calls int
}

func (s *seq) Next(ctx context.Context) (int, error) {
	s.calls++
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if s.i == s.n {
		if s.end == nil {
			return 0, io.EOF
		}
		return 0, s.end
	}
	s.i++
	return s.i - 1, nil
}

// drain calls Next until an error and returns the values and that error.
func drain[T any](t *testing.T, ctx context.Context, src wesos.Source[T]) ([]T, error) {
	t.Helper()
	var out []T
	for range 100000 {
		v, err := src.Next(ctx)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	t.Fatal("source did not end")
	return nil, nil
}
