package wesos_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
	"github.com/wesos/wesos/ws"
)

// Messages that do not decode, over a real connection: under Recover they
// are skipped and counted, and the session goes on; without it the session
// ends with 1007, never with a clean 1000.
func TestRecoverDecodeErrors(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	skipped := make(chan int64, 1)
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		numbers := ws.JSON[int](c)
		if c.Subprotocol() == "strict" {
			return wesos.Pipe(ctx, numbers, numbers)
		}
		good := flow.Recover(numbers, flow.SkipValue)
		squares := flow.Map(good, func(_ context.Context, n int) (int, error) { return n * n, nil })
		err := wesos.Pipe(ctx, numbers, squares)
		skipped <- good.Skipped()
		return err
	}, &ws.AcceptOptions{Subprotocols: []string{"lenient", "strict"}, ErrorLog: slog.New(slog.DiscardHandler)})
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _, err := ws.Dial(ctx, hs.URL, &ws.DialOptions{Subprotocols: []string{"lenient"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"x", "3", `"three"`, "4"} {
		if err := c.Write(ctx, ws.Text, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"9", "16"} {
		if _, p, err := c.Read(ctx); err != nil || string(p) != want {
			t.Fatalf("read %q, %v; want %q", p, err, want)
		}
	}
	c.Close(ws.StatusNormalClosure, "")
	if n := <-skipped; n != 2 {
		t.Errorf("Skipped() = %d, want 2", n)
	}

	strict, _, err := ws.Dial(ctx, hs.URL, &ws.DialOptions{Subprotocols: []string{"strict"}})
	if err != nil {
		t.Fatal(err)
	}
	defer strict.CloseNow()
	strict.Write(ctx, ws.Text, []byte("x"))
	var ce ws.CloseError
	if _, _, err := strict.Read(ctx); !errors.As(err, &ce) || ce.Code != ws.StatusInvalidFramePayloadData {
		t.Fatalf("without Recover the client read %v, want a CloseError with 1007", err)
	}
}
