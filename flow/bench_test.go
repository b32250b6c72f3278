package flow_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
)

var sinkInt int // keeps results alive

// counter is an endless Source: 0, 1, 2, ...
func counter() wesos.Source[int] {
	i := 0
	return wesos.SourceFunc[int](func(context.Context) (int, error) {
		i++
		return i, nil
	})
}

func addOne(_ context.Context, v int) (int, error) { return v + 1, nil }
func double(_ context.Context, v int) (int, error) { return 2 * v, nil }
func positive(v int) bool                          { return v > 0 }

// BenchmarkChain is one value through Map → Filter → Map, pulled in the
// caller's goroutine.
func BenchmarkChain(b *testing.B) {
	ctx := context.Background()
	src := flow.Map(flow.Filter(flow.Map(counter(), addOne), positive), double)
	b.ReportAllocs()
	for b.Loop() {
		v, err := src.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sinkInt = v
	}
}

// BenchmarkChanHop is the baseline: one value through one unbuffered channel
// between two goroutines.
func BenchmarkChanHop(b *testing.B) {
	ch := make(chan int)
	stop := make(chan struct{})
	go func() {
		defer close(ch)
		for i := 0; ; i++ {
			select {
			case ch <- i:
			case <-stop:
				return
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		sinkInt = <-ch
	}
	close(stop)
	for range ch {
	}
}

// BenchmarkChanChain is the same Map → Filter → Map as BenchmarkChain, with a
// goroutine and a channel per stage, the way channel pipelines are built.
func BenchmarkChanChain(b *testing.B) {
	stop := make(chan struct{})
	stage := func(in <-chan int, f func(int) (int, bool)) <-chan int {
		out := make(chan int)
		go func() {
			defer close(out)
			for v := range in {
				if v, ok := f(v); ok {
					select {
					case out <- v:
					case <-stop:
						for range in {
						}
						return
					}
				}
			}
		}()
		return out
	}
	src := make(chan int)
	go func() {
		defer close(src)
		for i := 0; ; i++ {
			select {
			case src <- i:
			case <-stop:
				return
			}
		}
	}()
	out := stage(stage(stage(src,
		func(v int) (int, bool) { return v + 1, true }),
		func(v int) (int, bool) { return v, v > 0 }),
		func(v int) (int, bool) { return 2 * v, true })
	b.ReportAllocs()
	for b.Loop() {
		sinkInt = <-out
	}
	close(stop)
	for range out {
	}
}

func BenchmarkBatch(b *testing.B) {
	ctx := context.Background()
	src := flow.Batch(counter(), 64, time.Second)
	b.ReportAllocs()
	for b.Loop() {
		v, err := src.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sinkInt = len(v)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*64), "ns/value")
}

// BenchmarkMerge is one value through a Merge of two endless inputs.
func BenchmarkMerge(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src := flow.Merge(ctx, counter(), counter())
	b.ReportAllocs()
	for b.Loop() {
		v, err := src.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sinkInt = v
	}
}

// BenchmarkHubSend is one Send to a Hub whose subscribers are cheap
// SinkFuncs. The Block policy makes every value reach every subscriber, so
// the figure includes delivery, not only queueing.
func BenchmarkHubSend(b *testing.B) {
	for _, subs := range []int{1, 100, 10000} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			ctx := context.Background()
			hub := flow.NewHub[int](&flow.HubOptions{Policy: flow.Block, BlockTimeout: time.Minute})
			var delivered atomic.Int64
			for range subs {
				n := new(int64)
				hub.Subscribe(wesos.SinkFunc[int](func(context.Context, int) error {
					*n++
					if *n%1024 == 0 {
						delivered.Add(1024)
					}
					return nil
				}))
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := hub.Send(ctx, 1); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
			if err := hub.Close(); err != nil {
				b.Fatal(err)
			}
			if n := hub.Len(); n != 0 {
				b.Fatalf("Len = %d after Close", n)
			}
		})
	}
}

// BenchmarkRecover is one value through Map → Recover(SkipValue), where
// Map fails on every tenth value: the values that pass cost no allocation,
// a failed one its ValueError.
func BenchmarkRecover(b *testing.B) {
	ctx := context.Background()
	failTenth := func(_ context.Context, v int) (int, error) {
		if v%10 == 0 {
			return 0, errBoom
		}
		return v, nil
	}
	src := flow.Recover(flow.Map(counter(), failTenth), flow.SkipValue)
	b.ReportAllocs()
	for b.Loop() {
		v, err := src.Next(ctx)
		if err != nil {
			b.Fatal(err)
		}
		sinkInt = v
	}
}
