package main

import (
	"context"
	"errors"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/internal/extest"
	"github.com/wesos/wesos/ws"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	readings = []string{
		`{"sensor":"kitchen","celsius":21.5}`,
		`{"sensor":"kitchen","celsius":-273}`, // implausible: filtered out
		`{"celsius":20}`,                      // no sensor: filtered out
		`{"sensor":"freezer","celsius":-18}`,
		`{"sensor":"attic","celsius":35.2}`,
	}
	reports = []string{
		`{"sensor":"kitchen","celsius":21.5,"fahrenheit":70.7,"level":"normal"}`,
		`{"sensor":"freezer","celsius":-18,"fahrenheit":-0.4,"level":"cold"}`,
		`{"sensor":"attic","celsius":35.2,"fahrenheit":95.4,"level":"hot"}`,
	}
)

// The pipeline alone, on values: no network needed.
func TestPipeline(t *testing.T) {
	in := []Reading{{"kitchen", 21.5}, {"kitchen", -273}, {"", 20}, {"freezer", -18}, {"attic", 35.2}}
	got, err := wesos.Collect(context.Background(), pipeline(wesos.FromSlice(in...)))
	want := []Report{{"kitchen", 21.5, 70.7, "normal"}, {"freezer", -18, -0.4, "cold"}, {"attic", 35.2, 95.4, "hot"}}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %v, %v; want %v", got, err, want)
	}
}

func startTransform(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ws.Serve(ctx, ws.HTTPServer(newTransform()), ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "ws://" + ln.Addr().String()
}

func dial(t *testing.T, ctx context.Context, url string) *ws.Conn {
	t.Helper()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// exchange sends the readings and checks the reports that come back.
func exchange(t *testing.T, ctx context.Context, c *ws.Conn) {
	t.Helper()
	for _, r := range readings {
		if err := c.Write(ctx, ws.Text, []byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range reports {
		typ, got, err := c.Read(ctx)
		if err != nil || typ != ws.Text || string(got) != want {
			t.Fatalf("got %v %s, %v; want %s", typ, got, err, want)
		}
	}
}

func TestTransform(t *testing.T) {
	ctx := extest.Context(t)
	c := dial(t, ctx, startTransform(t))
	exchange(t, ctx, c)

	// A message that is not a reading ends the connection with 1007.
	if err := c.Write(ctx, ws.Text, []byte("twenty degrees")); err != nil {
		t.Fatal(err)
	}
	_, _, err := c.Read(ctx)
	var ce ws.CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusInvalidFramePayloadData || !strings.HasPrefix(ce.Reason, "cannot decode message") {
		t.Fatalf("got %v, want a close with 1007", err)
	}
}

// TestBinary runs the real program, talks to it and stops it with Ctrl-C.
func TestBinary(t *testing.T) {
	ctx := extest.Context(t)
	p := extest.Start(t, extest.Build(t), nil, "-addr", "127.0.0.1:0")
	c := dial(t, ctx, p.AwaitStderr(t, regexp.MustCompile(`url=(ws://127\.0\.0\.1:\d+)`))[1])
	exchange(t, ctx, c)

	p.Interrupt(t)
	_, _, err := c.Read(ctx)
	var ce ws.CloseError
	if !errors.As(err, &ce) || ce.Code != ws.StatusGoingAway {
		t.Fatalf("got %v, want a close with 1001", err)
	}
	if code := p.Wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
}
