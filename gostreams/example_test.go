package gostreams_test

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/reugn/go-streams/flow"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/gostreams"
)

// bursts yields the values of each burst at once, then pauses before the
// next burst; it stands in for the messages of a WebSocket connection.
func bursts(pause time.Duration, bs ...[]string) wesos.Source[string] {
	var queue []string
	started := false
	return wesos.SourceFunc[string](func(ctx context.Context) (string, error) {
		for len(queue) == 0 {
			if len(bs) == 0 {
				return "", io.EOF
			}
			if started {
				select {
				case <-time.After(pause):
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
			queue, bs, started = bs[0], bs[1:], true
		}
		v := queue[0]
		queue = queue[1:]
		return v, nil
	})
}

// A go-streams tumbling window over a wesos Source: the messages that arrive
// within each 100ms come out as one []string.
func Example() {
	ctx := context.Background()
	msgs := bursts(250*time.Millisecond, []string{"a", "b", "c"}, []string{"d", "e"})

	in := gostreams.Source(ctx, msgs)
	windows := in.Via(flow.NewTumblingWindow[string](100 * time.Millisecond))
	for w, err := range wesos.All(ctx, gostreams.FromOutlet[[]string](windows)) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(w)
	}
	if err := in.Err(); err != nil {
		fmt.Println("source error:", err)
	}
	// Output:
	// [a b c]
	// [d e]
}
