package ws

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHandlerContext checks the context a Server gives its handlers: it
// carries the request's values, contexts derived from it end with it, a read
// blocked with it returns context.Canceled when Shutdown ends it, and it
// ends when the handler returns.
func TestHandlerContext(t *testing.T) {
	type handlerRun struct {
		ctx     context.Context
		child   context.Context // context.WithCancel of ctx
		cancel  context.CancelFunc
		afterCh chan struct{} // closed by a context.AfterFunc on ctx
		stopped bool          // what the stop of a second AfterFunc returned
		readErr error
	}
	runs := make(chan *handlerRun, 2)
	// started says a handler has made its checks: until then a Shutdown
	// could end its context before it looked, and the test would blame it.
	started := make(chan struct{}, 2)
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		r := &handlerRun{ctx: ctx, afterCh: make(chan struct{})}
		r.child, r.cancel = context.WithCancel(ctx) // ends with ctx; r.cancel at the end
		context.AfterFunc(ctx, func() { close(r.afterCh) })
		stop := context.AfterFunc(ctx, func() { t.Error("stopped AfterFunc ran") })
		r.stopped = stop()
		if ctx.Value(http.ServerContextKey) == nil {
			t.Error("handler ctx lost the request's values")
		}
		if ctx.Err() != nil {
			t.Errorf("handler ctx ended early: %v", ctx.Err())
		}
		started <- struct{}{}
		_, _, r.readErr = c.Read(ctx) // blocks until Shutdown or the peer closes
		runs <- r
		return nil
	}, &AcceptOptions{CloseTimeout: time.Second})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")

	// A handler that returns ends its context.
	a := rawUpgrade(t, host)
	waitChan(t, started)
	a.write(a.fs().close(StatusNormalClosure, ""))
	r := <-runs
	wantCloseError(t, r.readErr, StatusNormalClosure, "")
	waitCtxDone(t, r.ctx)
	waitCtxDone(t, r.child)
	r.cancel()
	waitChan(t, r.afterCh)
	if !r.stopped {
		t.Error("stop of an AfterFunc on a live handler ctx returned false")
	}

	// Shutdown ends a handler's context, and its blocked read returns.
	b := rawUpgrade(t, host)
	waitChan(t, started)
	shut := goAsync(t, func() error { return srv.Shutdown(testCtx(t)) })
	if f := b.read(); f.op != opClose || f.closeCode() != StatusGoingAway {
		t.Fatalf("got %v, want close 1001", f)
	}
	r = <-runs
	if !errors.Is(r.readErr, context.Canceled) {
		// The peer has not answered the 1001, so only the context can
		// have ended the read.
		t.Fatalf("blocked read at Shutdown: %v, want context.Canceled", r.readErr)
	}
	b.write(b.fs().close(StatusGoingAway, ""))
	if err := shut(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	waitCtxDone(t, r.child)
	r.cancel()
	waitChan(t, r.afterCh)
	if err := context.Cause(r.ctx); err != context.Canceled {
		t.Errorf("Cause of an ended handler ctx: %v", err)
	}
}

func waitCtxDone(t *testing.T, ctx context.Context) {
	t.Helper()
	waitChan(t, ctx.Done())
	if ctx.Err() != context.Canceled {
		t.Errorf("Err() = %v after Done", ctx.Err())
	}
}

func waitChan(t *testing.T, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatal("timed out waiting for a channel to close or receive")
	}
}

// TestHandlerContextKeepsMiddlewareValues checks that the handler's context
// through ServeHTTP carries every value of the request's context, not only
// net/http's own: one that http.Server.ConnContext put on the connection and
// one that a middleware put on the request with WithContext. (Keeping them
// is what keeps net/http's context chain alive for an idle connection.)
func TestHandlerContextKeepsMiddlewareValues(t *testing.T) {
	type connKey struct{}
	type reqKey struct{}
	got := make(chan [3]any, 1)
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		got <- [3]any{ctx.Value(connKey{}), ctx.Value(reqKey{}), ctx.Value(http.ServerContextKey)}
		_, _, err := c.Read(ctx)
		return err
	}, nil)
	middleware := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), reqKey{}, "request")))
	})
	hs := httptest.NewUnstartedServer(middleware)
	hs.Config.ConnContext = func(ctx context.Context, _ net.Conn) context.Context {
		return context.WithValue(ctx, connKey{}, "connection")
	}
	hs.Start()
	defer hs.Close()

	a := rawUpgrade(t, strings.TrimPrefix(hs.URL, "http://"))
	var v [3]any
	select {
	case v = <-got:
	case <-time.After(testTimeout):
		t.Fatal("the handler did not run")
	}
	if v[0] != "connection" || v[1] != "request" || v[2] == nil {
		t.Errorf("handler ctx values: ConnContext's %v, the middleware's %v, net/http's server %v", v[0], v[1], v[2])
	}
	a.write(a.fs().close(StatusNormalClosure, ""))
	waitFor(t, "the handler to end", func() bool { return srv.Len() == 0 })
}
