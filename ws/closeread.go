package ws

import (
	"context"
)

// CloseRead is for a connection that is only written to (a broadcast
// receiver, a feed): it starts reading c in the background so that the
// caller need not, and returns a context that ends when the connection
// does.
//
// The background reader answers pings (so Ping and keepalive work), and
// handles the peer's close frame: it answers it and closes the connection.
// A data message is a violation of what the connection is for: the reader
// fails the connection with 1008 (StatusPolicyViolation). The reader is a
// goroutine of the Conn, which ends when the connection does, however it
// ends (the peer's close, Close, CloseNow, a broken TCP connection).
//
// The returned context carries ctx's values and ends when ctx does or when
// the connection has ended; then context.Cause says why the connection
// ended: the CloseError of the peer's close (a normal one matches io.EOF),
// a *ProtocolError with 1008 for a data message, or the read error. ctx
// does not bound the reader: ending it ends the returned context only.
//
// After CloseRead, nothing else may read c; writes go on as before:
//
//	ctx = c.CloseRead(ctx)
//	for ctx.Err() == nil { // until the client leaves
//		c.Write(ctx, ws.Text, nextUpdate(ctx))
//	}
func (c *Conn) CloseRead(ctx context.Context) context.Context {
	ctx, done := context.WithCancelCause(ctx)
	go c.closedRead(context.WithoutCancel(ctx), done)
	return ctx
}

// closedRead is CloseRead's reader: it reads until the connection ends, or
// fails the connection at the first data message, and then ends the context
// with the reason.
func (c *Conn) closedRead(ctx context.Context, done context.CancelCauseFunc) {
	m, err := c.Next(ctx) // pings and the close frame are handled within
	if err == nil {
		pe := &ProtocolError{Code: StatusPolicyViolation, Reason: "unexpected " + m.Type.String() + " message: this connection only sends"}
		c.Close(pe.Code, pe.Reason)
		err = pe
	}
	done(err)
}
