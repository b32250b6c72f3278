package ws

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// A write-only broadcast: each handler only CloseReads and waits, while the
// Server broadcasts. The clients get every broadcast, their pings are
// answered by the background readers, and a client's close ends its
// handler's context, with the client's CloseError as the cause.
func TestCloseReadBroadcast(t *testing.T) {
	ctx := testCtx(t)
	type ended struct{ cause error }
	started := make(chan struct{})
	ends := make(chan ended, 2)
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		ctx = c.CloseRead(ctx)
		started <- struct{}{}
		<-ctx.Done()
		ends <- ended{context.Cause(ctx)}
		return context.Cause(ctx) // a normal close matches io.EOF: closed with 1000
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	var clients []*Conn
	for range 2 {
		c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		clients = append(clients, c)
		<-started
	}
	for _, news := range []string{"first", "second"} {
		if err := srv.Send(ctx, Message{Type: Text, Body: strings.NewReader(news)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range clients {
		for _, want := range []string{"first", "second"} {
			if _, p, err := c.Read(ctx); err != nil || string(p) != want {
				t.Fatalf("client %d read %q, %v; want %q", i, p, err, want)
			}
		}
	}

	// Ping needs a reader at each end: the client's own reads its pong,
	// and CloseRead's reader answers at the server.
	readCtx, stopRead := context.WithCancel(ctx)
	readDone := make(chan error, 1)
	go func() { _, _, err := clients[0].Read(readCtx); readDone <- err }()
	if err := clients[0].Ping(ctx); err != nil {
		t.Fatalf("Ping of a server that only CloseReads: %v", err)
	}
	stopRead()
	if err := <-readDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client's read = %v, want context.Canceled", err)
	}

	// A client leaves with 1000: its handler's context ends with that.
	if err := clients[1].Close(StatusNormalClosure, "bye"); err != nil {
		t.Fatal(err)
	}
	e := <-ends
	var ce CloseError
	if !errors.As(e.cause, &ce) || ce.Code != StatusNormalClosure || ce.Reason != "bye" || !errors.Is(e.cause, io.EOF) {
		t.Fatalf("the handler's context ended with %v, want the client's CloseError 1000 \"bye\"", e.cause)
	}
	if err := clients[0].Close(StatusGoingAway, ""); err != nil {
		t.Fatal(err)
	}
	if e := <-ends; !errors.Is(e.cause, io.EOF) {
		t.Fatalf("the other handler's context ended with %v, want the client's 1001", e.cause)
	}
}

// A data message to a connection that CloseReads fails it with 1008, and
// the context says so; the returned context keeps ctx's values.
func TestCloseReadDataMessage(t *testing.T) {
	ctx := testCtx(t)
	client, server := wsConnPair(t, nil)
	type key struct{}
	rctx := server.CloseRead(context.WithValue(ctx, key{}, "v"))
	if rctx.Value(key{}) != "v" {
		t.Error("the context of CloseRead lost ctx's value")
	}
	if err := client.Write(ctx, Binary, []byte("not welcome")); err != nil {
		t.Fatal(err)
	}
	var ce CloseError
	if _, _, err := client.Read(ctx); !errors.As(err, &ce) || ce.Code != StatusPolicyViolation {
		t.Fatalf("the client read %v, want a CloseError with 1008", err)
	}
	<-rctx.Done()
	var pe *ProtocolError
	if err := context.Cause(rctx); !errors.As(err, &pe) || pe.Code != StatusPolicyViolation {
		t.Fatalf("the context ended with %v, want a *ProtocolError with 1008", err)
	}
	if err := server.Write(ctx, Text, []byte("late")); err == nil {
		t.Error("Write on the failed connection succeeded")
	}
}

// The context ends when the connection ends at this side too (CloseNow).
// It ends with ctx as well, but the reader goes on answering pings until
// the connection ends.
func TestCloseReadEnds(t *testing.T) {
	ctx := testCtx(t)
	t.Run("CloseNow", func(t *testing.T) {
		_, server := wsConnPair(t, nil)
		rctx := server.CloseRead(ctx)
		server.CloseNow()
		<-rctx.Done()
		if context.Cause(rctx) == nil || rctx.Err() != context.Canceled {
			t.Fatalf("Err %v, Cause %v", rctx.Err(), context.Cause(rctx))
		}
	})
	t.Run("ctx ends first", func(t *testing.T) {
		client, server := wsConnPair(t, nil)
		parent, cancel := context.WithCancel(ctx)
		rctx := server.CloseRead(parent)
		cancel()
		<-rctx.Done()
		// The reader still answers pings: the connection lives on.
		readCtx, stopRead := context.WithCancel(ctx)
		readDone := make(chan error, 1)
		go func() { _, _, err := client.Read(readCtx); readDone <- err }()
		if err := client.Ping(ctx); err != nil {
			t.Fatalf("Ping after ctx ended: %v", err)
		}
		stopRead()
		<-readDone
	})
}

// A client that only writes (a sensor feeding a server) CloseReads: the
// server's pings are answered, what it writes arrives, and the server's
// Shutdown ends the client's context with 1001.
func TestCloseReadWriteOnlyClient(t *testing.T) {
	ctx := testCtx(t)
	conns := make(chan *Conn, 1)
	got := make(chan string, 2)
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		conns <- c
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				return err
			}
			got <- string(p)
		}
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	rctx := c.CloseRead(ctx)
	for _, m := range []string{"21.5", "21.7"} {
		if err := c.Write(ctx, Text, []byte(m)); err != nil {
			t.Fatal(err)
		}
		if g := <-got; g != m {
			t.Fatalf("the server got %q, want %q", g, m)
		}
	}
	if err := (<-conns).Ping(ctx); err != nil {
		t.Fatalf("the server's Ping of a client that only CloseReads: %v", err)
	}
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	<-rctx.Done()
	var ce CloseError
	if err := context.Cause(rctx); !errors.As(err, &ce) || ce.Code != StatusGoingAway {
		t.Fatalf("the client's context ended with %v, want the server's CloseError 1001", err)
	}
}
