package flow_test

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
)

// The snippet of the package documentation.
func Example() {
	ctx := context.Background()
	double := func(_ context.Context, v int) (int, error) { return 2 * v, nil }

	src := wesos.FromSlice(1, 2, 3, 4)
	even := flow.Filter(src, func(v int) bool { return v%2 == 0 })
	out, err := wesos.Collect(ctx, flow.Map(even, double))
	fmt.Println(out, err)
	// Output: [4 8] <nil>
}

// A flow is a function from Source to Source, like http middleware; operators
// chain by wrapping.
func ExampleMap() {
	ctx := context.Background()
	words := wesos.FromSlice("go", "", "wesos", "flow")
	nonEmpty := flow.Filter(words, func(s string) bool { return s != "" })
	lengths := flow.Map(nonEmpty, func(_ context.Context, s string) (string, error) {
		return fmt.Sprintf("%s=%d", s, len(s)), nil
	})
	for s, err := range wesos.All(ctx, flow.Take(lengths, 2)) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(s)
	}
	// Output:
	// go=2
	// wesos=5
}

func ExampleBatch() {
	ctx := context.Background()
	// Batches of up to 3 values; with a maxWait, a batch also goes when its
	// first value has waited that long.
	batches := flow.Batch(wesos.FromSlice(1, 2, 3, 4, 5, 6, 7), 3, 0)
	for b, err := range wesos.All(ctx, batches) {
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		fmt.Println(b)
	}
	// Output:
	// [1 2 3]
	// [4 5 6]
	// [7]
}

func ExampleReduce() {
	ctx := context.Background()
	total, err := flow.Reduce(ctx, wesos.FromSlice(1, 2, 3, 4), 0, func(acc, v int) int { return acc + v })
	fmt.Println(total, err)
	// Output: 10 <nil>
}

func ExampleMerge() {
	// Merge's goroutines end with the stream; cancelling ctx ends them early.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	merged := flow.Merge(ctx, wesos.FromSlice("a1", "a2"), wesos.FromSlice("b1"))
	all, err := wesos.Collect(ctx, merged)
	slices.Sort(all) // inputs interleave in arrival order
	fmt.Println(all, err)
	// Output: [a1 a2 b1] <nil>
}

func ExampleHub() {
	ctx := context.Background()
	hub := flow.NewHub[string](nil) // queue of 64 per subscriber, slow ones are dropped
	defer hub.Close()

	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[string][]string{}
	for _, name := range []string{"alice", "bob"} {
		wg.Add(3)
		hub.Subscribe(wesos.SinkFunc[string](func(_ context.Context, v string) error {
			mu.Lock()
			got[name] = append(got[name], v)
			mu.Unlock()
			wg.Done()
			return nil
		}))
	}
	// A Hub is a Sink: pipe a stream into it to broadcast it.
	if err := wesos.Pipe(ctx, wesos.Sink[string](hub), wesos.FromSlice("x", "y", "z")); err != nil {
		fmt.Println(err)
	}
	wg.Wait()
	fmt.Println(got["alice"], got["bob"])
	// Output: [x y z] [x y z]
}
