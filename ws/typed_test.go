package ws

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/wesos/wesos"
)

// A message that does not decode is a DecodeError: Recoverable (the next
// message still reads) and carrying 1007, whether Typed reads a Conn or
// any Source of messages.
func TestTypedDecodeError(t *testing.T) {
	ctx := testCtx(t)
	s, raw := serverPair(t, nil)
	raw.write(raw.fs().msg(opText, "x"), raw.fs().msg(opText, "7"))

	msgs := []Message{{Type: Text, Body: strings.NewReader("x")}, {Type: Text, Body: strings.NewReader("7")}}
	for name, src := range map[string]wesos.Source[Message]{"Conn": s, "Source": wesos.FromSlice(msgs...)} {
		numbers := NewTyped[int](src, nil, JSONCodec[int]())
		_, err := numbers.Next(ctx)
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("%s: Next = %v, want a *DecodeError", name, err)
		}
		if de.Code() != StatusInvalidFramePayloadData {
			t.Errorf("%s: DecodeError.Code() = %v, want 1007", name, de.Code())
		}
		var r interface{ Recoverable() bool }
		if !errors.As(err, &r) || !r.Recoverable() {
			t.Errorf("%s: DecodeError is not Recoverable", name)
		}
		if v, err := numbers.Next(ctx); v != 7 || err != nil {
			t.Errorf("%s: Next after the DecodeError = %v, %v; want 7, nil", name, v, err)
		}
	}

	var out bytes.Buffer
	sink := wesos.SinkFunc[Message](func(_ context.Context, m Message) error { _, err := out.ReadFrom(m.Body); return err })
	if err := NewTyped[int](nil, sink, JSONCodec[int]()).Send(ctx, 42); err != nil || out.String() != "42" {
		t.Errorf("Send to a Sink = %v, wrote %q; want nil, 42", err, out.String())
	}
}
