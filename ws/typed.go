package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/wesos/wesos"
)

// Codec turns values into message payloads and back.
type Codec[T any] struct {
	Type      MessageType               // the type of the messages Marshal makes
	Marshal   func(v T) ([]byte, error) // a value into a payload
	Unmarshal func(p []byte) (T, error) // a payload into a value; p is not kept
}

// JSONCodec is the Codec of JSON text messages, one value per message.
func JSONCodec[T any]() Codec[T] {
	return Codec[T]{
		Type: Text,
		Marshal: func(v T) ([]byte, error) {
			return json.Marshal(v)
		},
		Unmarshal: func(p []byte) (T, error) {
			var v T
			err := json.Unmarshal(p, &v)
			return v, err
		},
	}
}

// BytesCodec is the Codec of raw payloads: binary out, either type in.
func BytesCodec() Codec[[]byte] {
	return Codec[[]byte]{
		Type:      Binary,
		Marshal:   func(v []byte) ([]byte, error) { return v, nil },
		Unmarshal: func(p []byte) ([]byte, error) { return bytes.Clone(p), nil },
	}
}

// StringCodec is the Codec of strings: text out, either type in.
func StringCodec() Codec[string] {
	return Codec[string]{
		Type:      Text,
		Marshal:   func(v string) ([]byte, error) { return []byte(v), nil },
		Unmarshal: func(p []byte) (string, error) { return string(p), nil },
	}
}

// Typed is a Source and a Sink of values carried one per message by a
// Source and Sink of messages (a Conn, or a Server as a broadcast Sink), so
// that flow operators work on values rather than readers. Each message is
// read whole, within the connection's read limit, and decoded; each value is
// encoded and sent as one message.
type Typed[T any] struct {
	src   wesos.Source[Message]
	dst   wesos.Sink[Message]
	codec Codec[T]
}

// NewTyped returns a Typed reading from src and writing to dst with codec;
// either may be nil if that direction is not used.
func NewTyped[T any](src wesos.Source[Message], dst wesos.Sink[Message], codec Codec[T]) *Typed[T] {
	return &Typed[T]{src: src, dst: dst, codec: codec}
}

// JSON returns c as a Source and Sink of JSON values of type T.
func JSON[T any](c *Conn) *Typed[T] { return NewTyped(c, c, JSONCodec[T]()) }

// Bytes returns c as a Source and Sink of message payloads.
func Bytes(c *Conn) *Typed[[]byte] { return NewTyped(c, c, BytesCodec()) }

// Strings returns c as a Source and Sink of strings.
func Strings(c *Conn) *Typed[string] { return NewTyped(c, c, StringCodec()) }

// DecodeError is the error Typed.Next returns for a message its codec cannot
// decode. The connection is still usable: the next Next reads the next
// message. It is Recoverable, so flow.Recover can skip the message or answer
// it; a connection that ends because of it ends with its Code, 1007
// (StatusInvalidFramePayloadData: the message's data was not what the
// endpoint accepts): a Server handler that returns it (or an error wrapping
// it) has its connection closed with 1007. Wrap a decoding failure of your
// own in a DecodeError for the same close.
type DecodeError struct {
	Err error
}

// Error describes the message that could not be decoded.
func (e *DecodeError) Error() string { return "ws: cannot decode message: " + e.Err.Error() }

// Unwrap returns the codec's error.
func (e *DecodeError) Unwrap() error { return e.Err }

// Code returns StatusInvalidFramePayloadData (1007), the close code of a
// connection that ends because a message could not be decoded.
func (e *DecodeError) Code() StatusCode { return StatusInvalidFramePayloadData }

// Recoverable reports true: one message failed, and the connection can go
// on (see flow.Recover).
func (e *DecodeError) Recoverable() bool { return true }

// Next reads the next message and decodes it.
func (t *Typed[T]) Next(ctx context.Context) (T, error) {
	var zero T
	if t.src == nil {
		return zero, fmt.Errorf("ws: Typed has no source")
	}
	var p []byte
	var err error
	if c, ok := t.src.(*Conn); ok {
		_, p, err = c.Read(ctx)
	} else {
		var m Message
		if m, err = t.src.Next(ctx); err == nil {
			p, err = io.ReadAll(m.Body)
		}
	}
	if err != nil {
		return zero, err
	}
	v, err := t.codec.Unmarshal(p)
	if err != nil {
		return zero, &DecodeError{err}
	}
	return v, nil
}

// Send encodes v and sends it as one message.
func (t *Typed[T]) Send(ctx context.Context, v T) error {
	if t.dst == nil {
		return fmt.Errorf("ws: Typed has no sink")
	}
	p, err := t.codec.Marshal(v)
	if err != nil {
		return err
	}
	if c, ok := t.dst.(*Conn); ok {
		return c.Write(ctx, t.codec.Type, p)
	}
	return t.dst.Send(ctx, Message{Type: t.codec.Type, Body: bytes.NewReader(p)})
}
