package kflate_test

// The compressed echo with each implementation, side by side in one run:
//
//	go test -run '^$' -bench . -benchmem ./kflate/
//
// Client and server run in this process: cpu-µs/op is the CPU time of both
// ends (each inflates and deflates the message once), which other work on
// the machine disturbs less than ns/op, and allocs/op counts both.

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/wesos/wesos/ws"
)

// BenchmarkEcho measures a round trip of a JSON-like text message through an
// echo server over loopback, both ends with the same implementation, with
// and without context takeover. MB/s counts the message once; wire-B/op is
// what came back on the wire for it.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, takeover := range []bool{false, true} {
			for _, impl := range impls {
				mode := "no-takeover"
				if takeover {
					mode = "takeover"
				}
				b.Run(fmt.Sprintf("%dKiB/%s/%s", size>>10, mode, impl.name), func(b *testing.B) {
					c, wire := echoPair(b, impl.f, impl.f, takeover)
					ctx := context.Background()
					msg := jsonText(size, 1)
					buf := make([]byte, 32<<10)
					roundTrip := func() {
						if err := c.Write(ctx, ws.Text, msg); err != nil {
							b.Fatal(err)
						}
						_, r, err := c.Reader(ctx)
						if err != nil {
							b.Fatal(err)
						}
						n := 0
						for {
							m, err := r.Read(buf)
							n += m
							if err == io.EOF {
								break
							}
							if err != nil {
								b.Fatal(err)
							}
						}
						if n != size {
							b.Fatalf("echo of %d bytes, want %d", n, size)
						}
					}
					roundTrip() // the server's handler runs, the pools fill
					b.SetBytes(int64(size))
					b.ReportAllocs()
					wire.Store(0)
					b.ResetTimer()
					cpu := processCPU()
					for range b.N {
						roundTrip()
					}
					cpu = processCPU() - cpu
					b.StopTimer()
					b.ReportMetric(float64(wire.Load())/float64(b.N), "wire-B/op")
					if cpu > 0 {
						b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
					}
					c.Close(ws.StatusNormalClosure, "")
				})
			}
		}
	}
}
