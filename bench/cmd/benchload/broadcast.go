package main

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
	"github.com/wesos/wesos/bench/internal/wsclient"
)

// syncBit marks the messages that only check that every subscriber is
// registered before the measurement starts.
const syncBit = 1 << 62

// ring is the number of completion slots (more than any window).
const ring = 4096

// runBroadcast connects subs subscribers and one publisher. The publisher
// keeps window messages in flight, a message counting as done when every
// subscriber has it (closed loop, so nobody queues without bound); the
// subscribers record publish→receipt latency from the timestamp inside.
func runBroadcast() *stats.Broadcast {
	r := &stats.Broadcast{Subs: *subs, Size: int(*size), Window: *window}
	if *size < wsclient.FieldsLen {
		r.Error = fmt.Sprintf("broadcast messages must be at least %d bytes", wsclient.FieldsLen)
		return r
	}
	cs, err := dialAll(*subs+1, 16<<10)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	pub, subc := cs[0], cs[1:]
	k := newCodec(*size, 0xb40adca57)
	if k.tt != nil {
		k.cache = wsclient.NewInflateCache()
	}
	r.Extensions = pub.Extensions
	n := int32(len(subc))

	var (
		phase     atomic.Int32
		recv      [ring]atomic.Int32
		completed atomic.Int64
		done      = make(chan struct{}, 1)
		synced    = make([]atomic.Bool, len(subc))
		nsynced   atomic.Int32
		hists     = make([]stats.Hist, len(subc))
		counts    = make([]int64, len(subc))
		wire      = make([]int64, len(subc)) // delivered payload bytes on the wire (text)
		comp      = make([]int64, len(subc)) // deliveries that came compressed
		errMu     sync.Mutex
		firstEr   error
		wg        sync.WaitGroup
	)
	setErr := func(err error) {
		errMu.Lock()
		if firstEr == nil && phase.Load() != phaseStop {
			firstEr = err
		}
		errMu.Unlock()
	}
	// The publisher's own copies are read and dropped.
	wg.Go(func() {
		setErr(k.read(pub, *size, func(wsclient.Msg) error { return nil }))
	})
	for i, c := range subc {
		h := &hists[i]
		wg.Go(func() {
			err := k.read(c, *size, func(m wsclient.Msg) error {
				if m.Seq&syncBit != 0 {
					if !synced[i].Swap(true) {
						nsynced.Add(1)
					}
					return nil
				}
				if phase.Load() == phaseMeasure {
					h.Add(int64(now() - m.TS))
					counts[i]++
					wire[i] += m.Wire
					if m.Compressed {
						comp[i]++
					}
				}
				slot := &recv[m.Seq%ring]
				if slot.Add(1) == n {
					slot.Store(0)
					completed.Add(1)
					select {
					case done <- struct{}{}:
					default:
					}
				}
				return nil
			})
			setErr(err)
		})
	}

	// Every subscriber registered?
	syncDeadline := time.Now().Add(15 * time.Second)
	for seq := uint64(syncBit); nsynced.Load() < n; seq++ {
		if time.Now().After(syncDeadline) {
			setErr(fmt.Errorf("only %d of %d subscribers received the sync messages", nsynced.Load(), n))
			break
		}
		if _, err := pub.NC.Write(k.append(pub, nil, *size, now(), seq)); err != nil {
			setErr(err)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the last sync messages pass

	// Publisher.
	stopPub := make(chan struct{})
	pubDone := make(chan struct{})
	go func() {
		defer close(pubDone)
		var buf []byte
		for seq := uint64(0); ; {
			for seq-uint64(completed.Load()) >= uint64(*window) {
				select {
				case <-done:
				case <-stopPub:
					return
				case <-time.After(5 * time.Second):
					setErr(errors.New("a broadcast message did not reach every subscriber within 5 s"))
					return
				}
			}
			select {
			case <-stopPub:
				return
			default:
			}
			free := uint64(*window) - (seq - uint64(completed.Load()))
			buf = buf[:0]
			ts := now()
			for range free {
				buf = k.append(pub, buf, *size, ts, seq)
				seq++
			}
			if _, err := pub.NC.Write(buf); err != nil {
				setErr(err)
				return
			}
		}
	}()

	if firstEr == nil {
		time.Sleep(*warm)
	}
	cpu0, _ := stats.CPUSeconds(*pid)
	self0, _ := stats.CPUSeconds(os.Getpid())
	busy0, _ := stats.SystemBusy()
	t0 := time.Now()
	phase.Store(phaseMeasure)
	if firstEr == nil {
		time.Sleep(*dur)
	}
	phase.Store(phaseStop)
	el := time.Since(t0).Seconds()
	cpu1, _ := stats.CPUSeconds(*pid)
	self1, _ := stats.CPUSeconds(os.Getpid())
	busy1, _ := stats.SystemBusy()
	r.LoadCPU = self1 - self0
	r.OtherCPU = (busy1 - busy0) - (cpu1 - cpu0) - r.LoadCPU
	close(stopPub)
	<-pubDone
	for _, c := range cs {
		c.Close()
	}
	wg.Wait()

	var all stats.Hist
	for i := range hists {
		all.Merge(&hists[i])
		r.Deliveries += counts[i]
		r.WireBytes += wire[i]
		r.CompressedDeliveries += comp[i]
	}
	r.Seconds = el
	r.DeliveriesPerS = float64(r.Deliveries) / el
	r.P50us = all.Quantile(0.50) / 1e3
	r.P99us = all.Quantile(0.99) / 1e3
	r.ServerCPU = cpu1 - cpu0
	if r.Deliveries > 0 {
		r.CPUusPerDelivery = r.ServerCPU / float64(r.Deliveries) * 1e6
	}
	if firstEr != nil {
		r.Error = firstEr.Error()
	}
	return r
}
