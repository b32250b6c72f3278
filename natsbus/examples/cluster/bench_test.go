package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos/ws"
)

// BenchmarkRoomBroadcast measures a room of 1,000 WebSocket members spread
// over the nodes, one of them sending: deliveries per second (a message
// reaching one member) and the latency of a delivery, from the send to its
// member's read. Each iteration sends a burst of messages (1 or 10) and
// waits until every member has them all, so the queues stay short: with a
// burst of 1 the latency is that of one message to the whole room, with 10
// it includes the wait behind the burst's other messages.
//
//	go test -run '^$' -bench RoomBroadcast -benchtime 100x ./natsbus/examples/cluster
func BenchmarkRoomBroadcast(b *testing.B) {
	for _, burst := range []int{1, 10} {
		for _, nodes := range []int{1, 3} {
			b.Run(fmt.Sprintf("burst=%d/nodes=%d", burst, nodes), func(b *testing.B) { benchRoom(b, nodes, 1000, burst) })
		}
	}
}

func benchRoom(b *testing.B, nodeCount, members, burst int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var nodes []*testNode
	if nodeCount == 1 {
		nodes = []*testNode{startTestNode(b, "127.0.0.1:0", 0, 0, nil)}
	} else {
		nodes = startChatCluster(b)[:nodeCount]
	}
	want := map[*testNode]map[string]int{}
	var conns []*ws.Conn
	var wg sync.WaitGroup
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
		wg.Wait()
	}()
	var delivered atomic.Int64
	progress := make(chan struct{}, 1)
	lat := make([][]time.Duration, members) // per member, what it measured
	for i := range members {
		n := nodes[i%len(nodes)]
		c, _, err := ws.Dial(ctx, "ws://"+n.addr+"/ws?room=bench", nil)
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if want[n] == nil {
			want[n] = map[string]int{}
		}
		want[n]["bench"]++
		wg.Go(func() {
			buf := make([]byte, 64)
			for {
				_, r, err := c.Reader(ctx)
				if err != nil {
					return
				}
				k, _ := r.Read(buf)
				if k >= 8 {
					sent := int64(binary.LittleEndian.Uint64(buf))
					lat[i] = append(lat[i], time.Duration(time.Now().UnixNano()-sent))
				}
				if delivered.Add(1)%int64(members) == 0 {
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			}
		})
	}
	waitRooms(b, ctx, nodes, want)
	sender := conns[0] // a member on node 1
	msg := make([]byte, 64)
	var sent int64
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		for range burst {
			binary.LittleEndian.PutUint64(msg, uint64(time.Now().UnixNano()))
			if err := sender.Write(ctx, ws.Binary, msg); err != nil {
				b.Fatal(err)
			}
			sent++
		}
		for delivered.Load() < sent*int64(members) {
			select {
			case <-progress:
			case <-ctx.Done():
				b.Fatalf("%d of %d deliveries", delivered.Load(), sent*int64(members))
			}
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(len(all))/elapsed.Seconds(), "deliveries/s")
		b.ReportMetric(float64(all[len(all)*50/100].Microseconds()), "p50-µs")
		b.ReportMetric(float64(all[len(all)*99/100].Microseconds()), "p99-µs")
	}
	b.ReportMetric(0, "ns/op")
}
