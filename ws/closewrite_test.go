package ws

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// TestCloseWriteReadsOn: after CloseWrite the answers still come, even when
// the client starts reading only after it closed (Close would read and
// discard them itself), then the peer's CloseError, and the connection ends.
func TestCloseWriteReadsOn(t *testing.T) {
	hs := httptest.NewServer(NewServer(func(ctx context.Context, c *Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, nil))
	defer hs.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	msgs := []string{"one", strings.Repeat("two", 50<<10), "three"}
	for _, m := range msgs {
		if err := c.Write(ctx, Text, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CloseWrite(StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, Text, []byte("too late")); err == nil {
		t.Error("a Write after CloseWrite succeeded")
	}
	for _, want := range msgs {
		_, p, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("Read after CloseWrite: %v", err)
		}
		if string(p) != want {
			t.Fatalf("Read %.20q, want %.20q", p, want)
		}
	}
	_, _, err = c.Read(ctx)
	var ce CloseError
	if !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
		t.Fatalf("Read after the answers: %v, want the peer's 1000", err)
	}
	select {
	case <-c.doneChan():
	case <-ctx.Done():
		t.Fatal("the connection did not close after the peer's close frame")
	}
	if err := c.CloseWrite(StatusNormalClosure, ""); err != nil {
		t.Errorf("a second CloseWrite: %v", err)
	}
}

// TestCloseWriteTimeout: a peer that never answers the close frame has the
// connection closed after the close timeout.
func TestCloseWriteTimeout(t *testing.T) {
	release := make(chan struct{})
	hs := httptest.NewServer(NewServer(func(ctx context.Context, c *Conn) error {
		<-release // reads nothing: the close frame stays unanswered
		return nil
	}, nil))
	defer hs.Close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &DialOptions{CloseTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.CloseWrite(StatusGoingAway, ""); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(StatusAbnormalClosure, ""); err == nil {
		t.Error("CloseWrite with 1006, which may not go on the wire: no error")
	}
	select {
	case <-c.doneChan():
	case <-ctx.Done():
		t.Fatal("the connection did not close after the close timeout")
	}
	if _, _, err := c.Read(ctx); err == nil {
		t.Error("Read on the closed connection succeeded")
	}
}
