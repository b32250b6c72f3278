package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
	"github.com/wesos/wesos/bench/internal/wsclient"
)

type debugStats struct {
	HeapInuse  uint64 `json:"heap_inuse"`
	StackInuse uint64 `json:"stack_inuse"`
	Goroutines uint64 `json:"goroutines"`
}

func readDebug(gc bool) (debugStats, error) {
	var d debugStats
	if *debugURL == "" {
		return d, errors.New("no -debug address")
	}
	u := "http://" + *debugURL + "/debug"
	if gc {
		u += "?gc=1"
	}
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get(u)
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&d)
	cl.CloseIdleConnections()
	return d, err
}

var errOne = errors.New("one message read")

// runIdle opens connections up to each count, each of which echoes one 16 B
// message and then stays idle, and reads the server's memory after a pause:
// VmRSS first (as the process is), then heap and stacks after a GC.
func runIdle() *stats.Idle {
	r := &stats.Idle{}
	rss0, err := stats.StatusKB(*pid, "VmRSS")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	d0, err := readDebug(true)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.BaseRSSKB = rss0
	r.BaseHeapStack = d0.HeapInuse + d0.StackInuse
	r.BaseGoroutines = d0.Goroutines
	t := wsclient.NewTemplate(16, 0x1d1e)

	var (
		mu    sync.Mutex
		cs    []*wsclient.Conn
		first error
	)
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	deadline := time.Now().Add(*timeout)
	for _, target := range parseCounts(*counts) {
		next := len(cs)
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Go(func() {
				for {
					mu.Lock()
					if first != nil || next >= target || time.Now().After(deadline) {
						mu.Unlock()
						return
					}
					next++
					mu.Unlock()
					c, err := wsclient.Dial(*addr, *raw, 1024, 5*time.Second)
					if err == nil && *idleEcho {
						c.NC.SetDeadline(time.Now().Add(5 * time.Second))
						if _, err = c.NC.Write(c.AppendMessage(nil, t, 16, now(), 1)); err == nil {
							err = c.ReadLoop(wsclient.ReadOpts{T: t, Size: 16, OnMsg: func(wsclient.Msg) error { return errOne }})
							if err == errOne {
								err = nil
							}
						}
						c.NC.SetDeadline(time.Time{})
						if err != nil {
							c.Close()
						}
					}
					mu.Lock()
					if err != nil {
						if first == nil {
							first = err
						}
					} else {
						cs = append(cs, c)
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(cs) == 0 {
			break
		}
		time.Sleep(*settle)
		p := stats.IdlePoint{Target: target, Conns: len(cs)}
		p.RSSKB, _ = stats.StatusKB(*pid, "VmRSS")
		d, err := readDebug(true)
		if err != nil && first == nil {
			first = err
		}
		p.HeapInuse, p.Stack, p.Goroutines = d.HeapInuse, d.StackInuse, d.Goroutines
		n := float64(len(cs))
		p.RSSPerConnB = float64(p.RSSKB-rss0) * 1024 / n
		p.HeapStackPerConnB = (float64(d.HeapInuse+d.StackInuse) - float64(r.BaseHeapStack)) / n
		p.GoroutinesPerConn = (float64(d.Goroutines) - float64(d0.Goroutines)) / n
		r.Points = append(r.Points, p)
		if first != nil {
			break
		}
	}
	if first != nil {
		r.Error = fmt.Sprintf("stopped at %d connections: %v", len(cs), first)
	}
	return r
}
