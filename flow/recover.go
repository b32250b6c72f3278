package flow

import (
	"context"
	"errors"
	"io"
	"sync/atomic"

	"github.com/wesos/wesos"
)

// ValueError is the error Map and FlatMap return when their function fails:
// the failure of one value, not of the stream, so the next call to Next goes
// on with the next value. It reads as the function's error (Error returns
// the same text, and errors.Is and errors.As see through it), and it is
// Recoverable, which is what lets Recover handle it.
type ValueError struct {
	Err error
}

// Error returns the text of the function's error.
func (e *ValueError) Error() string { return e.Err.Error() }

// Unwrap returns the function's error.
func (e *ValueError) Unwrap() error { return e.Err }

// Recoverable reports true: one value failed, the stream goes on.
func (e *ValueError) Recoverable() bool { return true }

// valueError marks err, which f returned for one value, as a ValueError,
// unless it is one already or it is an end (io.EOF) or a cancellation, which
// say something about the stream, not the value.
func valueError(ctx context.Context, err error) error {
	if isRecoverable(err) || errors.Is(err, io.EOF) || (ctx.Err() != nil && errors.Is(err, ctx.Err())) {
		return err
	}
	return &ValueError{Err: err}
}

// isRecoverable reports whether err, or an error it wraps, has a method
// Recoverable that reports true.
func isRecoverable(err error) bool {
	var r interface{ Recoverable() bool }
	return errors.As(err, &r) && r.Recoverable()
}

// ErrorPolicy decides what a value that failed (a Recoverable error) does to
// the stream that Recover wraps. Returning nil drops the value and the stream
// goes on; returning an error ends the stream with that error.
//
// SkipValue, ReplyError and EndWith are the usual policies; any function of
// this type is one too, e.g. one that skips the first ten failures and ends
// on the eleventh.
type ErrorPolicy func(ctx context.Context, err error) error

// SkipValue is the ErrorPolicy that drops a value that failed and goes on.
// Recovered.Skipped counts the values dropped.
func SkipValue(context.Context, error) error { return nil }

// ReplyError returns an ErrorPolicy that answers a value that failed with
// reply(err), sent to dst (back to the client, typically), and goes on. If
// dst.Send fails, its error ends the stream.
func ReplyError[R any](dst wesos.Sink[R], reply func(err error) R) ErrorPolicy {
	return func(ctx context.Context, err error) error {
		return dst.Send(ctx, reply(err))
	}
}

// EndWith returns an ErrorPolicy that ends the stream at the first value
// that failed, with the error end(err) returns: the place to choose how the
// pipeline's owner closes, e.g. with a ws.CloseError whose Code the
// connection is closed with. If end returns nil, the stream ends with err
// itself.
func EndWith(end func(err error) error) ErrorPolicy {
	return func(_ context.Context, err error) error {
		if e := end(err); e != nil {
			return e
		}
		return err
	}
}

// Recover returns a Source of the values of src in which a value that failed
// is handled by policy rather than returned from Next. A value failed when
// src returns an error that is Recoverable: an error e, or one that e wraps,
// has a method
//
//	Recoverable() bool
//
// that reports true. Map and FlatMap report their function's errors that way
// (ValueError), and so does ws.Typed for a message it cannot decode. Every
// other error of src (the end of the stream, a broken connection, a
// cancelled ctx) is returned as it is: it says nothing about one value.
//
// When policy returns nil, Next goes on with the next value of src. When it
// returns an error, Next returns it, and so does every later call, without
// reading src again: the stream has ended. (An error that is ctx's own, when
// ctx has ended, ends that call only, as everywhere in flow.)
//
// Without Recover a value that failed is returned from Next as an error, and
// wesos.Pipe stops there: put Recover between the operator that can fail and
// the consumer, and before Merge, whose first error ends it.
func Recover[T any](src wesos.Source[T], policy ErrorPolicy) *Recovered[T] {
	return &Recovered[T]{src: src, policy: policy}
}

// Recovered is the Source that Recover returns. Like every Source, it is not
// safe for concurrent use, except Skipped.
type Recovered[T any] struct {
	src     wesos.Source[T]
	policy  ErrorPolicy
	end     error // the policy's error that ended the stream
	skipped atomic.Int64
}

// Next returns the next value of src that did not fail, or the error that
// ends the stream.
func (r *Recovered[T]) Next(ctx context.Context) (T, error) {
	var zero T
	if r.end != nil {
		return zero, r.end
	}
	for {
		v, err := r.src.Next(ctx)
		if err == nil {
			return v, nil
		}
		if !isRecoverable(err) || errors.Is(err, io.EOF) {
			return zero, err
		}
		if err := r.policy(ctx, err); err != nil {
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				r.end = err
			}
			return zero, err
		}
		r.skipped.Add(1)
		if err := ctx.Err(); err != nil {
			return zero, err
		}
	}
}

// Skipped returns the number of values that failed and that the policy
// handled without ending the stream (skipped, or answered with a reply). It
// is safe to call from any goroutine.
func (r *Recovered[T]) Skipped() int64 { return r.skipped.Load() }
