package ws

import (
	"context"
	"errors"
	"net"
	"time"
)

// CloseWrite starts the closing handshake and returns without waiting for
// it: it sends a close frame with code and reason, after which nothing more
// may be written, while reads go on returning the messages the peer sent
// before its own close frame, and then the CloseError it sent. The TCP
// connection closes when the peer's close frame is read, or after the close
// timeout if it does not come. It is the half-close of a client that has
// said everything but still wants the answers: Close, by contrast, reads and
// discards them itself when no read call is in progress.
//
// A connection closed with CloseWrite must go on being read (Next, Reader
// or Read) for its close frame to be seen before the close timeout. A code
// that may not appear on the wire is an error, and nothing is sent; a
// second close (CloseWrite or Close) sends nothing more.
func (c *Conn) CloseWrite(code StatusCode, reason string) error {
	var payload [maxControlPayload]byte
	p, err := appendClosePayload(payload[:0], code, reason)
	if err != nil {
		return err
	}
	if !c.startClose(code) {
		return nil
	}
	timeout := c.cfg.closeTimeout
	// No goroutine waits: the timer closes the connection if the peer has
	// not (closing twice does nothing).
	time.AfterFunc(timeout, func() { c.CloseNow() })
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := c.writeFrame(ctx, opClose, true, p); err != nil {
		c.CloseNow()
		if errors.Is(err, net.ErrClosed) {
			return nil // closed meanwhile by the peer or CloseNow
		}
		return err
	}
	return nil
}
