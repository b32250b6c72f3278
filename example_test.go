package wesos_test

// The examples of the README: each Go snippet there is a part of one of
// these functions (README_test.go checks it), so every snippet compiles.

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
	"github.com/wesos/wesos/ws"
)

// The one-liner: a server that relays every message of every socket, as it
// streams, to every open socket.
func Example_broadcast() {
	var srv *ws.Server
	srv = ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, srv, c)
	}, nil)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := ws.ListenAndServe(ctx, "localhost:8080", srv) // until Ctrl-C: 1001 to every socket
	fmt.Println(err)
}

// An echo server, and a client that talks to it.
func ExamplePipe() {
	ctx := context.Background()
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, c, c) // every message of c back to c, as it streams
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _, err := ws.Dial(ctx, hs.URL, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ws.StatusNormalClosure, "")
	c.Write(ctx, ws.Text, []byte("hello"))
	typ, p, err := c.Read(ctx)
	fmt.Println(typ, string(p), err)
	// Output: text hello <nil>
}

// Flows wrap Sources: each operator is a function from Source to Source.
func Example_flows() {
	ctx := context.Background()
	msgs := wesos.FromSlice("hi", "", "how are you?", "", "bye")

	nonEmpty := flow.Filter(msgs, func(s string) bool { return s != "" })
	loud := flow.Map(nonEmpty, func(_ context.Context, s string) (string, error) {
		return strings.ToUpper(s), nil
	})
	paced := flow.Throttle(loud, 100, time.Second) // at most 100 a second
	batches := flow.Batch(paced, 2, time.Second)   // 2 at a time, or what a second brought

	for b, err := range wesos.All(ctx, batches) {
		fmt.Println(b, err)
	}
	// Output:
	// [HI HOW ARE YOU?] <nil>
	// [BYE] <nil>
}

// Merge is fan-in: the values of several Sources as they arrive.
func Example_merge() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // stops Merge's goroutines if we stop reading early

	all := flow.Merge(ctx, wesos.FromSlice("a1", "a2"), wesos.FromSlice("b1"))
	got, err := wesos.Collect(ctx, all)
	slices.Sort(got) // the inputs interleave in arrival order
	fmt.Println(got, err)
	// Output: [a1 a2 b1] <nil>
}

// Flows on a WebSocket: ws.JSON turns a connection into a Source and a Sink
// of values.
func Example_typed() {
	ctx := context.Background()
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		numbers := ws.JSON[int](c) // one JSON value per message, both ways
		even := flow.Filter(numbers, func(n int) bool { return n%2 == 0 })
		squares := flow.Map(even, func(_ context.Context, n int) (int, error) { return n * n, nil })
		return wesos.Pipe(ctx, numbers, squares) // a message that is not a number: closed with 1007
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _, err := ws.Dial(ctx, hs.URL, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ws.StatusNormalClosure, "")
	numbers := ws.JSON[int](c)
	wesos.Pipe(ctx, numbers, wesos.FromSlice(1, 2, 3, 4))
	for range 2 {
		fmt.Println(numbers.Next(ctx))
	}
	// Output:
	// 4 <nil>
	// 16 <nil>
}

// A value that fails need not end the flow: a server of running averages
// that answers what is not a number with an error reply, and goes on.
func Example_recover() {
	ctx := context.Background()
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		lines := ws.Strings(c) // one string per message, both ways
		numbers := flow.Map(lines, func(_ context.Context, s string) (float64, error) {
			return strconv.ParseFloat(s, 64)
		})
		good := flow.Recover(numbers, flow.ReplyError(lines, func(err error) string {
			return "error: " + err.Error() // the reply, and the stream goes on
		}))
		var sum, n float64
		averages := flow.Map(good, func(_ context.Context, v float64) (string, error) {
			sum, n = sum+v, n+1
			return strconv.FormatFloat(sum/n, 'f', -1, 64), nil
		})
		return wesos.Pipe(ctx, lines, averages)
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _, err := ws.Dial(ctx, hs.URL, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ws.StatusNormalClosure, "")
	lines := ws.Strings(c)
	for _, s := range []string{"1", "x", "5"} {
		lines.Send(ctx, s)
		fmt.Println(lines.Next(ctx))
	}
	// Output:
	// 1 <nil>
	// error: strconv.ParseFloat: parsing "x": invalid syntax <nil>
	// 3 <nil>
}

// Or a value that fails ends the flow, with the close code that says why:
// not the 1011 of a server's own failure, but 1007, the client's data.
func Example_recoverEnd() {
	ctx := context.Background()
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		lines := ws.Strings(c)
		numbers := flow.Map(lines, func(_ context.Context, s string) (float64, error) {
			return strconv.ParseFloat(s, 64)
		})
		good := flow.Recover(numbers, flow.EndWith(func(err error) error {
			return ws.CloseError{Code: ws.StatusInvalidFramePayloadData, Reason: "numbers only"}
		}))
		doubled := flow.Map(good, func(_ context.Context, v float64) (string, error) {
			return strconv.FormatFloat(2*v, 'f', -1, 64), nil
		})
		return wesos.Pipe(ctx, lines, doubled) // its error is the connection's close code
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _, err := ws.Dial(ctx, hs.URL, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	lines := ws.Strings(c)
	for _, s := range []string{"21", "x"} {
		lines.Send(ctx, s)
		v, err := lines.Next(ctx)
		fmt.Printf("%q %v\n", v, err)
	}
	// Output:
	// "42" <nil>
	// "" ws: closed with status 1007 (invalid payload data): "numbers only"
}

// A Hub copies each value to every subscriber; each has its own queue, and
// the policy says what happens when one is full.
func Example_hub() {
	ctx := context.Background()
	hub := flow.NewHub[string](&flow.HubOptions{QueueLen: 16, Policy: flow.DropValue})
	defer hub.Close()

	var wg sync.WaitGroup
	for _, name := range []string{"ann", "bob"} {
		wg.Add(1)
		var got []string
		hub.Subscribe(wesos.SinkFunc[string](func(_ context.Context, v string) error {
			if got = append(got, v); len(got) == 3 {
				fmt.Println(name, got)
				wg.Done()
			}
			return nil
		}))
	}
	wesos.Pipe(ctx, wesos.Sink[string](hub), wesos.FromSlice("x", "y", "z"))
	wg.Wait()
	// Unordered output:
	// ann [x y z]
	// bob [x y z]
}
