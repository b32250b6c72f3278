package main

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
	"github.com/wesos/wesos/bench/internal/wsclient"
)

// runStream relays one message of -size bytes through a broadcast server:
// a publisher writes it as one frame, a subscriber (and the publisher
// itself, since a broadcast reaches every connection) reads it, and the
// server's peak RSS (VmHWM) is read at the end.
func runStream() *stats.Stream {
	r := &stats.Stream{Size: *size}
	r.BaseRSSKB, _ = stats.StatusKB(*pid, "VmRSS")
	cs, err := dialAll(2, 256<<10)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	pub, sub := cs[0], cs[1]
	defer pub.Close()
	defer sub.Close()
	t := wsclient.NewTemplate(*size, 0x57ea3)

	const syncSize = 64
	var (
		mu      sync.Mutex
		synced  = map[*wsclient.Conn]bool{}
		got     = map[*wsclient.Conn]time.Time{}
		errs    []error
		wg      sync.WaitGroup
		allDone = make(chan struct{})
	)
	stride := max(*size/(1<<16), 64)
	for _, c := range cs {
		wg.Go(func() {
			err := c.ReadLoop(wsclient.ReadOpts{T: t, Stride: stride, OnMsg: func(m wsclient.Msg) error {
				mu.Lock()
				defer mu.Unlock()
				if m.Len == syncSize && m.Seq&syncBit != 0 {
					synced[c] = true
					return nil
				}
				if m.Len != *size {
					return fmt.Errorf("message of %d bytes, want %d", m.Len, *size)
				}
				got[c] = time.Now()
				if len(got) == 2 {
					close(allDone)
				}
				return nil
			}})
			mu.Lock()
			if len(got) < 2 {
				errs = append(errs, err)
			}
			mu.Unlock()
		})
	}
	// Both connections registered?
	deadline := time.Now().Add(10 * time.Second)
	for seq := uint64(syncBit); ; seq++ {
		mu.Lock()
		ok := len(synced) == 2
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			r.Error = "the sync messages did not reach both connections"
			return r
		}
		// A small message with the big template's pattern (its first
		// syncSize bytes).
		if _, err := pub.NC.Write(pub.AppendMessage(nil, t, syncSize, now(), seq)); err != nil {
			r.Error = err.Error()
			return r
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)

	t0 := time.Now()
	werr := make(chan error, 1)
	go func() { werr <- pub.WriteLarge(t, *size, now(), 7) }()
	select {
	case <-allDone:
	case <-time.After(*timeout):
		r.Error = fmt.Sprintf("the message was not relayed within %v", *timeout)
	case err := <-werr:
		if err != nil {
			r.Error = "writing: " + err.Error()
		} else {
			select {
			case <-allDone:
			case <-time.After(*timeout):
				r.Error = fmt.Sprintf("the message was not relayed within %v", *timeout)
			}
		}
	}
	mu.Lock()
	end, ok := got[sub]
	if len(errs) > 0 && r.Error == "" {
		r.Error = errors.Join(errs...).Error()
	}
	mu.Unlock()
	if ok {
		r.Seconds = end.Sub(t0).Seconds()
		r.MBPerS = float64(*size) / 1e6 / r.Seconds
	}
	r.PeakRSSKB, _ = stats.StatusKB(*pid, "VmHWM")
	return r
}
