package ws

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// benchPair returns a connected client and server Conn over loopback TCP.
func benchPair(b *testing.B, opts *AcceptOptions, dopts *DialOptions) (client, server *Conn) {
	b.Helper()
	accepted := make(chan *Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			b.Error(err)
			return
		}
		accepted <- c
	}))
	b.Cleanup(hs.Close)
	c, _, err := Dial(context.Background(), "ws"+strings.TrimPrefix(hs.URL, "http"), dopts)
	if err != nil {
		b.Fatal(err)
	}
	s := <-accepted
	b.Cleanup(func() { c.CloseNow(); s.CloseNow() })
	return c, s
}

// BenchmarkWriteRead measures one message written by the client and read
// by the server: the steady-state paths must not allocate.
func BenchmarkWriteRead(b *testing.B) {
	for _, size := range []int{16, 1 << 10, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			c, s := benchPair(b, nil, nil)
			ctx := context.Background()
			p := bytes.Repeat([]byte("a"), size)
			buf := make([]byte, size+1)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if err := c.Write(ctx, Binary, p); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				_, r, err := s.Reader(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, buf[:size]); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
		})
	}
}

// BenchmarkEcho measures a round trip through a server echoing with Send,
// with cancellable contexts as a Server handler has them: the context
// watch must not cost an allocation per call.
func BenchmarkEcho(b *testing.B) {
	for _, size := range []int{16, 1 << 10, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			c, s := benchPair(b, nil, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go streamEcho(ctx, s)
			echoRoundTrips(b, ctx, c, size)
		})
	}
}

// BenchmarkServerEcho is BenchmarkEcho with the echoing connection a
// Server's, which counts every message it reads and writes in the Server's
// Stats.
func BenchmarkServerEcho(b *testing.B) {
	for _, size := range []int{16, 1 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				streamEcho(ctx, c)
				return nil
			}, nil)
			hs := httptest.NewServer(srv)
			defer hs.Close()
			defer srv.Shutdown(context.Background())
			ctx := context.Background()
			c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
			if err != nil {
				b.Fatal(err)
			}
			defer c.CloseNow()
			echoRoundTrips(b, ctx, c, size)
		})
	}
}

// echoRoundTrips times b.N messages of size bytes that client c sends to
// an echo server and reads back.
func echoRoundTrips(b *testing.B, ctx context.Context, c *Conn, size int) {
	p := bytes.Repeat([]byte("a"), size)
	buf := make([]byte, size+1)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := c.Write(ctx, Binary, p); err != nil {
			b.Fatal(err)
		}
		_, r, err := c.Reader(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(r, buf[:size]); err != nil {
			b.Fatal(err)
		}
	}
}

// streamEcho sends back every message s receives, streamed (Next, Send),
// until ctx ends or s fails.
func streamEcho(ctx context.Context, s *Conn) {
	for {
		m, err := s.Next(ctx)
		if err != nil {
			return
		}
		if err := s.Send(ctx, m); err != nil {
			return
		}
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// BenchmarkEchoBurst measures an echo with 16 messages in flight, as a
// server sees a busy client: the answers to what arrived together leave
// together (coalesce.go). It reports the server's writes per message.
func BenchmarkEchoBurst(b *testing.B) {
	const inFlight = 16
	for _, size := range []int{16, 1 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			c, s := benchPair(b, nil, nil)
			w := countWrites(s)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go streamEcho(ctx, s)
			p := bytes.Repeat([]byte("a"), size)
			buf := make([]byte, size+1)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			sent := 0
			for ; sent < min(inFlight, b.N); sent++ {
				if err := c.Write(ctx, Binary, p); err != nil {
					b.Fatal(err)
				}
			}
			for range b.N {
				_, r, err := c.Reader(ctx)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(r, buf[:size]); err != nil {
					b.Fatal(err)
				}
				if sent < b.N {
					if err := c.Write(ctx, Binary, p); err != nil {
						b.Fatal(err)
					}
					sent++
				}
			}
			b.ReportMetric(float64(w.writes.Load())/float64(b.N), "writes/msg")
		})
	}
}

// BenchmarkBroadcast measures a broadcast to 16 and to 1,000 connections,
// through Server.Send (every connection) and through a Group holding them:
// one frame encoded once, and what queues up for a connection written in
// one writev. ns/delivery is the time per message and receiver; the
// allocations are per message (its frame, shared by all), not per receiver.
func BenchmarkBroadcast(b *testing.B) {
	for _, receivers := range []int{16, 1000} {
		for _, via := range []string{"Server", "Group"} {
			b.Run(fmt.Sprintf("%s/%d", via, receivers), func(b *testing.B) {
				benchBroadcast(b, receivers, via == "Group")
			})
		}
	}
}

func benchBroadcast(b *testing.B, receivers int, group bool) {
	room := NewGroup(&GroupOptions{Queue: 64 << 20})
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		room.Add(c)
		readAll(ctx, c)
		return nil
	}, &AcceptOptions{Broadcast: &GroupOptions{Queue: 64 << 20}})
	var sink interface {
		Send(context.Context, Message) error
	} = srv
	if group {
		sink = room
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	ctx := context.Background()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")
	got := make(chan error, receivers)
	const warm = 100 // messages before the timer starts: every buffer and queue has grown
	p := bytes.Repeat([]byte("a"), 64)
	frame := 2 + len(p) // each message arrives as one frame with a 2-byte header
	for range receivers {
		// The receivers read the raw socket, counting bytes, so that
		// what the benchmark measures (time, allocations) is the
		// server's broadcast, not 1,000 clients parsing frames.
		var nc net.Conn
		c, _, err := Dial(ctx, url, &DialOptions{
			NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				var d net.Dialer
				conn, err := d.DialContext(ctx, network, addr)
				nc = conn
				return conn, err
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseNow()
		go func() {
			buf := make([]byte, 32<<10)
			for left := (warm + b.N) * frame; left > 0; {
				n, err := nc.Read(buf[:min(len(buf), left)])
				if err != nil {
					got <- err
					return
				}
				left -= n
			}
			got <- nil
		}()
	}
	for srv.Len() < receivers || room.Len() < receivers {
		runtime.Gosched()
	}
	body := bytes.NewReader(p) // reused: the allocations counted are the broadcast's
	for range warm {
		body.Reset(p)
		if err := sink.Send(ctx, Message{Type: Binary, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		body.Reset(p)
		if err := sink.Send(ctx, Message{Type: Binary, Body: body}); err != nil {
			b.Fatal(err)
		}
	}
	for range receivers {
		if err := <-got; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*receivers), "ns/delivery")
}
