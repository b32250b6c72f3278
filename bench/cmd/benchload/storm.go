package main

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
	"github.com/wesos/wesos/bench/internal/wsclient"
)

// runStorm is the reconnect storm: in each round -clients connections are
// opened with -parallel handshakes in flight (each a TCP connect and a
// WebSocket handshake, nothing else), held until all are open, then all
// closed at once (a close frame, then the TCP close, without waiting for
// the server's answer), and the round ends when the server holds none of
// them any more. Between rounds it waits a second, so that loopback can
// reuse the ports left in TIME_WAIT.
func runStorm() *stats.Storm {
	r := &stats.Storm{Clients: *clients, Parallel: *parallel}
	r.BaseRSSKB, _ = stats.StatusKB(*pid, "VmRSS")
	base, err := countFDs(*pid)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.BaseFDs = base
	deadline := time.Now().Add(*timeout)
	for round := range *rounds {
		if round > 0 {
			time.Sleep(time.Second)
		}
		rr, err := stormRound(deadline)
		r.Rounds = append(r.Rounds, rr)
		if err != nil {
			r.Error = fmt.Sprintf("round %d: %v", round+1, err)
			break
		}
	}
	r.PeakRSSKB, _ = stats.StatusKB(*pid, "VmHWM")
	return r
}

func stormRound(deadline time.Time) (stats.StormRound, error) {
	var rr stats.StormRound
	n, p := *clients, max(1, *parallel)
	fds0, err := countFDs(*pid)
	if err != nil {
		return rr, err
	}
	cs := make([]*wsclient.Conn, n)
	hists := make([]stats.Hist, p)
	var (
		next, failed atomic.Int64
		errMu        sync.Mutex
		firstErr     error
		wg           sync.WaitGroup
	)
	cpu0, _ := stats.CPUSeconds(*pid)
	self0, _ := stats.CPUSeconds(os.Getpid())
	busy0, _ := stats.SystemBusy()
	t0 := time.Now()
	for w := range p {
		h := &hists[w]
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) || time.Now().After(deadline) {
					return
				}
				s := time.Now()
				c, err := dial(1024, 10*time.Second) // -deflate: the handshake negotiates compression too
				h.Add(int64(time.Since(s)))
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					continue
				}
				cs[i] = c
			}
		})
	}
	wg.Wait()
	el := time.Since(t0).Seconds()
	cpu1, _ := stats.CPUSeconds(*pid)
	self1, _ := stats.CPUSeconds(os.Getpid())
	busy1, _ := stats.SystemBusy()
	rr.RSSKB, _ = stats.StatusKB(*pid, "VmRSS")

	var all stats.Hist
	for i := range hists {
		all.Merge(&hists[i])
	}
	rr.Failed = int(failed.Load())
	rr.Handshakes = int(min(next.Load(), int64(n))) - rr.Failed
	rr.Seconds = el
	rr.HandshakesPerS = float64(rr.Handshakes) / el
	rr.P50us, rr.P99us = all.Quantile(0.50)/1e3, all.Quantile(0.99)/1e3
	rr.ServerCPU = cpu1 - cpu0
	if rr.Handshakes > 0 {
		rr.CPUusPerHandshake = rr.ServerCPU / float64(rr.Handshakes) * 1e6
	}
	rr.LoadCPU = self1 - self0
	rr.OtherCPU = (busy1 - busy0) - rr.ServerCPU - rr.LoadCPU

	// Everyone leaves at once.
	closeFrame := []byte{0x03, 0xe8} // 1000
	t1 := time.Now()
	next.Store(0)
	for range 16 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				if c := cs[i]; c != nil {
					c.NC.SetWriteDeadline(time.Now().Add(time.Second))
					c.WriteControl(0x8, closeFrame)
					c.Close()
				}
			}
		})
	}
	wg.Wait()
	// The server has let go of them when its descriptors are back to
	// where they were.
	bound := time.Now().Add(30 * time.Second)
	if bound.After(deadline) {
		bound = deadline
	}
	for {
		k, err := countFDs(*pid)
		if err != nil {
			return rr, err
		}
		if k <= fds0 {
			break
		}
		if time.Now().After(bound) {
			rr.CloseTimedOut = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rr.CloseSeconds = time.Since(t1).Seconds()
	cpu2, _ := stats.CPUSeconds(*pid)
	rr.CloseCPU = cpu2 - cpu1
	if rr.Handshakes > 0 {
		rr.CPUusPerClose = rr.CloseCPU / float64(rr.Handshakes) * 1e6
	}
	if firstErr != nil && rr.Failed*100 > n {
		return rr, fmt.Errorf("%d of %d handshakes failed, the first: %v", rr.Failed, n, firstErr)
	}
	if rr.CloseTimedOut {
		return rr, fmt.Errorf("the server still held some of its %d connections 30 s after they closed", rr.Handshakes)
	}
	return rr, nil
}

// countFDs counts the open descriptors of process pid.
func countFDs(pid int) (int, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	return len(names), err
}
