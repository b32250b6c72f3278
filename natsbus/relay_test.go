package natsbus

import (
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos/ws"
)

// A 64 MiB message crosses a three-node cluster, streamed: published from
// node 1 as it is generated, read on node 3 as it arrives, hashed on the
// way. Neither end holds it, so the process (three servers, the two
// connections) stays far below its size in heap and in resident memory.
func TestRelayLargeMessageBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: streams 64 MiB through a three-node cluster")
	}
	ctx := testContext(t)
	nodes := startCluster(t, 3)
	const size = 64 << 20
	recv := subject(t, nodes[2].Conn(), "t.big", nil)
	pub := subject(t, nodes[0].Conn(), "t.big", &SubjectOptions{SendOnly: true})
	waitInterest(t, nodes, "t.big", 1)

	want := sha256.New()
	io.Copy(want, &patternReader{seed: 9, n: size})

	runtime.GC()
	base := heapBytes()
	resetPeakRSS(t)
	baseRSS := rss(t, "VmRSS")
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // samples the heap while the message streams
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			if h := heapBytes(); h > peak.Load() {
				peak.Store(h)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	start := time.Now()
	sent := make(chan error, 1)
	go func() {
		sent <- pub.Send(ctx, ws.Message{Type: ws.Binary, Body: &patternReader{seed: 9, n: size, step: 32 << 10}})
	}()
	m, err := recv.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, m.Body)
	close(stop)
	wg.Wait()
	if err != nil || n != size {
		t.Fatalf("received %d bytes, %v", n, err)
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprintf("%x", got.Sum(nil)) != fmt.Sprintf("%x", want.Sum(nil)) {
		t.Fatal("the message arrived changed")
	}
	elapsed := time.Since(start)
	heapGrowth := int64(peak.Load()) - int64(base)
	rssGrowth := rss(t, "VmHWM") - baseRSS
	t.Logf("64 MiB across 3 nodes in %v (%.0f MB/s); peak heap growth %.1f MiB, peak RSS growth %.1f MiB (whole process: 3 servers, 2 connections)",
		elapsed.Round(time.Millisecond), float64(size)/elapsed.Seconds()/1e6, float64(heapGrowth)/(1<<20), float64(rssGrowth)/(1<<20))
	if raceEnabled {
		return
	}
	if heapGrowth >= size {
		t.Errorf("peak heap grew by %d MiB while relaying 64 MiB", heapGrowth>>20)
	}
	if rssGrowth >= size {
		t.Errorf("peak RSS grew by %d MiB while relaying 64 MiB", rssGrowth>>20)
	}
	if st := recv.Stats(); st.Lost+st.Dropped+st.CutShort != 0 {
		t.Errorf("receiver stats %+v", st)
	}
}

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// resetPeakRSS resets the kernel's record of the process's peak resident
// memory (VmHWM).
func resetPeakRSS(t *testing.T) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak RSS (%v): the memory figures need Linux", err)
	}
}

// rss returns a field of /proc/self/status, in bytes.
func rss(t *testing.T, field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/self/status", field)
	return 0
}
