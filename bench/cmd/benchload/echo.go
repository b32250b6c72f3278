package main

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
	"github.com/wesos/wesos/bench/internal/wsclient"
)

// Phases of a timed scenario.
const (
	phaseWarm = iota
	phaseMeasure
	phaseStop
)

// batchMax is the largest message the writer batches into one write; larger
// ones go out one writev each, straight from the template.
const batchMax = 16 << 10

// runEcho keeps inflight messages in flight on each of conns connections
// (closed loop: every reply releases the next message), warms up, then
// counts replies and the server's CPU time over the measurement.
func runEcho() *stats.Echo {
	r := &stats.Echo{Conns: *conns, Size: *size, Inflight: *inflight}
	eff := *inflight
	if tot := int64(*conns) * int64(eff) * *size; tot > *maxBytes {
		eff = int(*maxBytes / (int64(*conns) * *size))
		if eff < 1 {
			eff = 1
		}
	}
	r.EffInflight = eff
	bufSize := 64 << 10
	if *size <= 1024 {
		bufSize = 16 << 10
	}
	cs, err := dialAll(*conns, bufSize)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	k := newCodec(*size, 0x9e3779b97f4a7c15)
	r.Extensions = cs[0].Extensions

	var phase atomic.Int32
	stop := make(chan struct{})
	var (
		wg      sync.WaitGroup
		errMu   sync.Mutex
		firstEr error
	)
	setErr := func(err error) {
		errMu.Lock()
		if firstEr == nil && phase.Load() != phaseStop {
			firstEr = err
		}
		errMu.Unlock()
	}
	hists := make([]stats.Hist, len(cs))
	counts := make([]int64, len(cs))
	wire := make([]int64, len(cs))       // reply payload bytes on the wire (text)
	compressed := make([]int64, len(cs)) // replies that came compressed
	for i, c := range cs {
		tokens := make(chan struct{}, eff)
		for range eff {
			tokens <- struct{}{}
		}
		// Writer.
		wg.Go(func() {
			var buf []byte
			var seq uint64
			for {
				select {
				case <-tokens:
				case <-stop:
					return
				}
				n := 1
			drain:
				for n < eff {
					select {
					case <-tokens:
						n++
					default:
						break drain
					}
				}
				if k.batchable() {
					buf = buf[:0]
					ts := now()
					for range n {
						buf = k.append(c, buf, *size, ts, seq)
						seq++
					}
					if _, err := c.NC.Write(buf); err != nil {
						setErr(err)
						return
					}
				} else {
					for range n {
						if err := c.WriteLarge(k.t, *size, now(), seq); err != nil {
							setErr(err)
							return
						}
						seq++
					}
				}
			}
		})
		// Reader.
		h := &hists[i]
		wg.Go(func() {
			err := k.read(c, *size, func(m wsclient.Msg) error {
				if phase.Load() == phaseMeasure {
					h.Add(int64(now() - m.TS))
					counts[i]++
					wire[i] += m.Wire
					if m.Compressed {
						compressed[i]++
					}
				}
				select {
				case tokens <- struct{}{}:
				default:
					return errors.New("more replies than messages sent")
				}
				return nil
			})
			setErr(err)
		})
	}

	time.Sleep(*warm)
	cpu0, _ := stats.CPUSeconds(*pid)
	self0, _ := stats.CPUSeconds(os.Getpid())
	busy0, _ := stats.SystemBusy()
	t0 := time.Now()
	phase.Store(phaseMeasure)
	time.Sleep(*dur)
	phase.Store(phaseStop)
	el := time.Since(t0).Seconds()
	cpu1, _ := stats.CPUSeconds(*pid)
	self1, _ := stats.CPUSeconds(os.Getpid())
	busy1, _ := stats.SystemBusy()
	r.LoadCPU = self1 - self0
	r.OtherCPU = (busy1 - busy0) - (cpu1 - cpu0) - r.LoadCPU
	close(stop)
	for _, c := range cs {
		c.Close()
	}
	wg.Wait()

	var all stats.Hist
	for i := range hists {
		all.Merge(&hists[i])
		r.Replies += counts[i]
		r.WireBytes += wire[i]
		r.CompressedReplies += compressed[i]
		if counts[i] == 0 {
			r.Starved++
		}
	}
	r.Seconds = el
	r.RepliesPerS = float64(r.Replies) / el
	r.MBPerS = r.RepliesPerS * float64(*size) / 1e6
	r.P50us = all.Quantile(0.50) / 1e3
	r.P99us = all.Quantile(0.99) / 1e3
	r.ServerCPU = cpu1 - cpu0
	if r.Replies > 0 {
		r.CPUusPerMsg = r.ServerCPU / float64(r.Replies) * 1e6
	}
	if firstEr != nil {
		r.Error = firstEr.Error()
	} else if r.Replies == 0 {
		r.Error = "no reply during the measurement"
	}
	return r
}
