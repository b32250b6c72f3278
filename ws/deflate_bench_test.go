package ws

// Benchmarks of permessage-deflate: echo round trips over loopback, with and
// without context takeover against the uncompressed baseline, and the heap
// an idle compressed connection holds.
//
//	go test -run '^$' -bench Deflate -benchmem ./ws/

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/wesos/wesos"
)

// dflBenchModes are the compression settings the benchmarks compare: the
// same on both ends.
var dflBenchModes = []struct {
	name string
	opts *CompressionOptions
}{
	{"plain", nil},
	{"deflate", &CompressionOptions{}},
	{"deflate-takeover", &CompressionOptions{ContextTakeover: true}},
}

// dflCountingConn counts the bytes written to a net.Conn.
type dflCountingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c dflCountingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// dflEchoServer starts an echo Server (wesos.Pipe(ctx, c, c)) with
// compression opts on 127.0.0.1 and returns its ws:// URL.
func dflEchoServer(b testing.TB, opts *CompressionOptions) string {
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, &AcceptOptions{Compression: opts})
	return "ws://" + dflHTTPServer(b, srv)
}

// BenchmarkDeflateEcho measures a round trip of a text message (JSON-like
// text, which deflate shrinks about 4 times) through an echo server, client
// and server over loopback TCP. MB/s counts the message once; wire-B/op is
// what the client sent for it.
func BenchmarkDeflateEcho(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10} {
		for _, mode := range dflBenchModes {
			b.Run(fmt.Sprintf("%s/%dKiB", mode.name, size>>10), func(b *testing.B) {
				url := dflEchoServer(b, mode.opts)
				var wire atomic.Int64
				ctx := context.Background()
				c, _, err := Dial(ctx, url, &DialOptions{
					Compression: mode.opts,
					NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
						var d net.Dialer
						nc, err := d.DialContext(ctx, network, addr)
						if err != nil {
							return nil, err
						}
						return dflCountingConn{nc, &wire}, nil
					},
				})
				if err != nil {
					b.Fatal(err)
				}
				defer c.CloseNow()
				msg := dflText(size, 1)
				buf := make([]byte, 32<<10)
				roundTrip := func() {
					if err := c.Write(ctx, Text, msg); err != nil {
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
				roundTrip() // warm up: the server's handler runs, pools fill
				b.SetBytes(int64(size))
				b.ReportAllocs()
				wire.Store(0)
				b.ResetTimer()
				for range b.N {
					roundTrip()
				}
				b.StopTimer()
				b.ReportMetric(float64(wire.Load())/float64(b.N), "wire-B/op")
				c.Close(StatusNormalClosure, "")
			})
		}
	}
}

// BenchmarkDeflateIdleConn measures the heap an idle connection holds after
// one 1 KiB message each way (compressed when compression is on): it opens
// 1000 connections to an echo server in the same process, and B/conn is
// the growth of the live heap divided by 1000, so it counts both ends of a
// connection (client Conn and server Conn with its handler). stack-B/conn
// is the goroutine stacks, likewise.
func BenchmarkDeflateIdleConn(b *testing.B) {
	const conns = 1000
	for _, mode := range dflBenchModes {
		b.Run(mode.name, func(b *testing.B) {
			var heap, stack float64
			for range b.N {
				h, s := dflIdleConnMemory(b, mode.opts, conns)
				heap += h
				stack += s
			}
			b.ReportMetric(heap/float64(b.N), "B/conn")
			b.ReportMetric(stack/float64(b.N), "stack-B/conn")
		})
	}
}

// dflIdleConnMemory opens n connections with compression opts, sends one
// message each way on each, and returns the heap and stack bytes per
// connection they hold once idle.
func dflIdleConnMemory(b *testing.B, opts *CompressionOptions, n int) (heap, stack float64) {
	b.StopTimer()
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, &AcceptOptions{Compression: opts})
	hs := dflNewHTTPServer(srv)
	url := "ws" + hs.URL[len("http"):]
	defer hs.Close()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		srv.Shutdown(ctx)
		cancel()
	}()
	ctx := context.Background()
	msg := dflText(1<<10, 2)
	before := dflLiveMem()
	b.StartTimer()
	clients := make([]*Conn, 0, n)
	defer func() {
		for _, c := range clients {
			c.CloseNow()
		}
	}()
	for range n {
		c, _, err := Dial(ctx, url, &DialOptions{Compression: opts})
		if err != nil {
			b.Fatal(err)
		}
		clients = append(clients, c)
		if opts != nil && c.deflate == nil {
			b.Fatal("compression not negotiated")
		}
		if err := c.Write(ctx, Text, msg); err != nil {
			b.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || len(got) != len(msg) {
			b.Fatalf("echo: %v", err)
		}
	}
	b.StopTimer()
	after := dflLiveMem()
	runtime.KeepAlive(clients)
	return float64(int64(after.HeapInuse)-int64(before.HeapInuse)) / float64(n),
		float64(int64(after.StackInuse)-int64(before.StackInuse)) / float64(n)
}

// dflLiveMem collects garbage (twice, so that pooled objects, kept for one
// cycle, go too) and returns the memory statistics.
func dflLiveMem() runtime.MemStats {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// BenchmarkDeflateReadSmallReads reads 256 KiB compressed text messages
// (compressed beforehand, written by a raw peer) in reads of 16 bytes and of
// 32 KiB, with and without context takeover: the window kept for takeover
// must not make small reads costlier per byte.
func BenchmarkDeflateReadSmallReads(b *testing.B) {
	for _, takeover := range []bool{false, true} {
		for _, size := range []int{16, 32 << 10} {
			b.Run(fmt.Sprintf("%s/%dB", dflTakeoverName(takeover), size), func(b *testing.B) {
				answer := "Sec-WebSocket-Extensions: permessage-deflate"
				if !takeover {
					answer += "; server_no_context_takeover; client_no_context_takeover"
				}
				c, raw, _, err := dflClientPair(b, &DialOptions{Compression: &CompressionOptions{ContextTakeover: takeover}}, answer)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				msg := dflText(256<<10, 1)
				// Each message stands alone, which a decompressor with
				// takeover reads as well.
				wire := dflFrames(opText, true, false, [][]byte{dflCompress(b, msg)})
				b.SetBytes(int64(len(msg)))
				b.ReportAllocs()
				wrote := make(chan error, 1)
				go func() {
					for range b.N {
						if _, err := raw.nc.Write(wire); err != nil {
							wrote <- err
							return
						}
					}
					wrote <- nil
				}()
				buf := make([]byte, size)
				for range b.N {
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
					if n != len(msg) {
						b.Fatalf("read %d bytes, want %d", n, len(msg))
					}
				}
				if err := <-wrote; err != nil {
					b.Fatal(err)
				}
			})
		}
	}
}
