package wesos_test

// The README's go-streams snippet is this file from its import block to
// the end of batchesOfThree (readme_test.go checks it), so the snippet
// shows the import alias it needs and compiles as shown.

import (
	"context"
	"fmt"
	"time"

	streams "github.com/reugn/go-streams/flow" // go-streams' flow, named apart from wesos/flow

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/gostreams"
)

// batchesOfThree groups a wesos Source with a go-streams operator.
func batchesOfThree(ctx context.Context) error {
	in := gostreams.Source(ctx, wesos.FromSlice("a", "b", "c", "d", "e")) // wesos → go-streams
	batches := in.Via(streams.NewBatch[string](3, time.Second))           // any go-streams operator
	out := gostreams.FromOutlet[[]string](batches)                        // go-streams → wesos

	for b, err := range wesos.All(ctx, out) {
		fmt.Println(b, err)
	}
	return in.Err() // why the wesos Source ended (nil: cleanly); go-streams itself reports no errors
}

// go-streams operators run on wesos Sources through the gostreams adapter.
func Example_goStreams() {
	fmt.Println(batchesOfThree(context.Background()))
	// Output:
	// [a b c] <nil>
	// [d e] <nil>
	// <nil>
}
