package flow

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/wesos/wesos"
)

// Batch returns a Source of batches of the values of src, in order. A batch
// is emitted when it holds n values, when maxWait has passed since its first
// value was read, or when src ends: a final partial batch comes before
// io.EOF. n <= 0 means no size limit and maxWait <= 0 no time limit (with
// both, the whole stream is one batch). A batch is never empty, and it is a
// new slice that the caller owns.
//
// To honour maxWait while src.Next blocks, Batch calls src.Next with a ctx
// derived from the caller's with the batch's deadline (context.WithDeadline).
// When that deadline, not the caller's ctx, ends the call, Batch emits the
// partial batch and goes on reading src for the next one. So src must treat
// an expired ctx as ending the call, not the stream, as the wesos contract
// says; every Source in this module does.
//
// If the caller's ctx ends, Next returns ctx.Err() and keeps the values read
// so far for the next call. If src fails, the pending partial batch is
// emitted first and the error is returned by the following call.
//
// Batch reads ahead by nature: do not batch values that are valid only until
// their Source's next Next (a ws.Message body); map them to values of their
// own first.
func Batch[T any](src wesos.Source[T], n int, maxWait time.Duration) wesos.Source[[]T] {
	return &batchSource[T]{src: src, n: max(n, 0), wait: max(maxWait, 0)}
}

// TumblingWindow returns a Source that groups the values of src by fixed,
// back-to-back windows of length d, the first starting at the first call to
// Next: each batch holds the values read during one window and is emitted
// when the window ends. Windows in which no value arrived are skipped, so a
// batch is never empty; a final partial window is emitted before io.EOF.
// TumblingWindow panics if d <= 0.
//
// It waits the way Batch does, and the requirements, cancellation and error
// behaviour documented there apply.
func TumblingWindow[T any](src wesos.Source[T], d time.Duration) wesos.Source[[]T] {
	if d <= 0 {
		panic("flow: TumblingWindow with a non-positive duration")
	}
	return &batchSource[T]{src: src, window: d}
}

// maxPrealloc caps the capacity reserved up front for a batch of n values.
const maxPrealloc = 1024

type batchSource[T any] struct {
	src    wesos.Source[T]
	n      int           // size limit, 0 for none
	wait   time.Duration // Batch: time limit from a batch's first value, 0 for none
	window time.Duration // TumblingWindow: window length, 0 for Batch
	origin time.Time     // TumblingWindow: start of the first window

	buf      []T
	deadline time.Time // when buf must go; zero for never
	err      error     // from src, returned once buf has been emitted
}

func (b *batchSource[T]) Next(ctx context.Context) ([]T, error) {
	if b.err == nil {
		if err := b.fill(ctx); err != nil {
			return nil, err
		}
	}
	if len(b.buf) > 0 {
		out := b.buf
		b.buf, b.deadline = nil, time.Time{}
		return out, nil
	}
	err := b.err
	if !errors.Is(err, io.EOF) {
		b.err = nil // an error ends one call; io.EOF is final
	}
	return nil, err
}

// fill reads src until the batch is full, its deadline passes or src fails
// (then b.err is set). It returns an error only when ctx ended the call.
func (b *batchSource[T]) fill(ctx context.Context) error {
	if b.window > 0 && b.origin.IsZero() {
		b.origin = time.Now()
	}
	var dctx context.Context // ctx with the batch's deadline, made once per call
	for b.n == 0 || len(b.buf) < b.n {
		callCtx := ctx
		if !b.deadline.IsZero() {
			if dctx == nil {
				var cancel context.CancelFunc
				dctx, cancel = context.WithDeadline(ctx, b.deadline)
				defer cancel()
			}
			if dctx.Err() != nil && ctx.Err() == nil {
				return nil // time is up, even if src never blocks
			}
			callCtx = dctx
		}
		v, err := b.src.Next(callCtx)
		if err != nil {
			switch {
			case ctx.Err() != nil && isContextErr(err):
				return err // the call ended, the batch goes on
			case dctx != nil && dctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
				return nil // the batch's time is up
			}
			b.err = err
			return nil
		}
		if len(b.buf) == 0 {
			b.start()
		}
		b.buf = append(b.buf, v)
	}
	return nil
}

// start prepares a new batch whose first value arrives now.
func (b *batchSource[T]) start() {
	if b.buf == nil && b.n > 0 {
		b.buf = make([]T, 0, min(b.n, maxPrealloc))
	}
	switch {
	case b.wait > 0:
		b.deadline = time.Now().Add(b.wait)
	case b.window > 0:
		k := time.Since(b.origin) / b.window
		b.deadline = b.origin.Add((k + 1) * b.window)
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
