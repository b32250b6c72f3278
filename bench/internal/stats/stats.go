// Package stats holds what benchload and benchtable share: a latency
// histogram, process readings from /proc, and the result records.
package stats

import (
	"bytes"
	"fmt"
	"math/bits"
	"os"
	"strconv"
	"strings"
)

// Hist is a log-linear latency histogram in nanoseconds: exact below 64 ns,
// then 32 buckets per power of two (about 3% resolution).
type Hist struct {
	B [1280]uint32
	N uint64
}

func bucket(v uint64) int {
	if v < 64 {
		return int(v)
	}
	e := bits.Len64(v) - 6
	i := 64 + (e-1)*32 + int((v>>e)-32)
	if i >= 1280 {
		i = 1279
	}
	return i
}

func bucketValue(i int) float64 {
	if i < 64 {
		return float64(i)
	}
	e := (i-64)/32 + 1
	m := (i-64)%32 + 32
	return float64(uint64(m)<<e) + float64(uint64(1)<<e)/2
}

// Add records one value.
func (h *Hist) Add(ns int64) {
	if ns < 0 {
		ns = 0
	}
	h.B[bucket(uint64(ns))]++
	h.N++
}

// Merge adds o into h.
func (h *Hist) Merge(o *Hist) {
	for i, c := range o.B {
		h.B[i] += c
	}
	h.N += o.N
}

// Quantile returns the q-quantile in nanoseconds (0 if empty).
func (h *Hist) Quantile(q float64) float64 {
	if h.N == 0 {
		return 0
	}
	want := uint64(q * float64(h.N))
	if want >= h.N {
		want = h.N - 1
	}
	var seen uint64
	for i, c := range h.B {
		seen += uint64(c)
		if seen > want {
			return bucketValue(i)
		}
	}
	return bucketValue(len(h.B) - 1)
}

// ClockTicks is USER_HZ, the unit of /proc/PID/stat times (100 on Linux).
const ClockTicks = 100

// CPUSeconds returns the user+system CPU time of process pid (all threads).
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return float64(u+s) / ClockTicks, nil
}

// SystemBusy returns the busy CPU time of the whole machine, all cores
// (user, nice, system, irq, softirq and steal from /proc/stat), in seconds.
// Process times (/proc/PID/stat) include the softirq work done on their
// behalf, which /proc/stat books apart, so it must be counted here too.
func SystemBusy() (float64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, fmt.Errorf("bad /proc/stat")
	}
	var t uint64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseUint(f[i], 10, 64)
		t += v
	}
	return float64(t) / ClockTicks, nil
}

// StatusKB returns a field of /proc/PID/status in KiB (VmRSS, VmHWM…).
func StatusKB(pid int, field string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			v = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB"))
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// Echo is the result of one echo scenario.
type Echo struct {
	Conns, Inflight, EffInflight int
	Size                         int64
	Seconds                      float64
	Replies                      int64
	RepliesPerS                  float64
	MBPerS                       float64 // echoed payload, 10^6 bytes/s, one direction
	P50us, P99us                 float64
	ServerCPU                    float64 // seconds
	CPUusPerMsg                  float64
	LoadCPU                      float64 // seconds of the load generator itself
	OtherCPU                     float64 // seconds of everything else on the machine (noise)
	Starved                      int     // connections that got no reply during the measurement
	Error                        string  `json:",omitempty"`

	// Compressed (text) scenarios only.
	Extensions        string `json:",omitempty"` // the server's Sec-WebSocket-Extensions answer
	WireBytes         int64  `json:",omitempty"` // reply payload bytes on the wire during the measurement
	CompressedReplies int64  `json:",omitempty"` // replies that came compressed
}

// IdlePoint is one count of the idle scenario.
type IdlePoint struct {
	Target, Conns     int
	RSSKB             int64 // server VmRSS
	RSSPerConnB       float64
	HeapStackPerConnB float64 // (HeapInuse+StackInuse) growth after a GC, per connection
	GoroutinesPerConn float64
	HeapInuse, Stack  uint64
	Goroutines        uint64
}

// Idle is the result of the idle scenario.
type Idle struct {
	BaseRSSKB      int64
	BaseHeapStack  uint64
	BaseGoroutines uint64
	Points         []IdlePoint
	Error          string `json:",omitempty"`
}

// Broadcast is the result of the broadcast scenario.
type Broadcast struct {
	Subs, Size, Window int
	Seconds            float64
	Deliveries         int64
	DeliveriesPerS     float64
	P50us, P99us       float64
	ServerCPU          float64
	CPUusPerDelivery   float64
	LoadCPU            float64 // seconds of the load generator itself
	OtherCPU           float64 // seconds of everything else on the machine (noise)
	Error              string  `json:",omitempty"`

	// Compressed (text) scenario only.
	Extensions           string `json:",omitempty"` // the server's Sec-WebSocket-Extensions answer
	WireBytes            int64  `json:",omitempty"` // delivered payload bytes on the wire during the measurement
	CompressedDeliveries int64  `json:",omitempty"` // deliveries that came compressed
}

// Stream is the result of the streaming relay scenario.
type Stream struct {
	Size      int64
	Seconds   float64
	MBPerS    float64
	BaseRSSKB int64
	PeakRSSKB int64  // server VmHWM
	Error     string `json:",omitempty"`
}

// Check is the result of a conformance check.
type Check struct {
	OK    bool
	Notes []string
	Error string `json:",omitempty"`
}

// StormRound is one round of the handshake storm: every client connects,
// then every client closes.
type StormRound struct {
	Handshakes        int     // connections that completed the handshake
	Failed            int     // connections that did not (refused, reset, timed out)
	Seconds           float64 // from the first dial to the last handshake done
	HandshakesPerS    float64
	P50us, P99us      float64 // dial + handshake, per connection
	ServerCPU         float64 // seconds, over the connect phase
	CPUusPerHandshake float64
	LoadCPU           float64 // seconds of the load generator over the connect phase
	OtherCPU          float64 // seconds of everything else on the machine (noise)
	RSSKB             int64   // server VmRSS with every connection open
	CloseSeconds      float64 // from the first close to the server holding none of them
	CloseCPU          float64 // server seconds over the close phase
	CPUusPerClose     float64
	CloseTimedOut     bool `json:",omitempty"` // the server still held connections at the bound
}

// Storm is the result of the handshake-storm scenario.
type Storm struct {
	Clients, Parallel int
	BaseRSSKB         int64 // server VmRSS before the first round
	PeakRSSKB         int64 // server VmHWM after the last round
	BaseFDs           int   // server's open descriptors before the first round
	Rounds            []StormRound
	Error             string `json:",omitempty"`
}
