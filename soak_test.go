//go:build unix

package wesos_test

// The load and soak test: many concurrent connections on loopback send
// sequence-numbered messages through the broadcast server
// (wesos.Pipe(ctx, srv, c)) and through an echo server (wesos.Pipe(ctx, c, c));
// every message must arrive exactly once and in per-sender order, and the
// server process's goroutines and heap must return to their baseline once
// every connection is closed.
//
// By default (go test ./..., with or without -race) a short form runs: 500
// connections. In full, 10,000 connections:
//
//	go test -run TestSoak -v -soak.full .
//	WESOS_SOAK=full go test -run TestSoak -v .
//
// The full form is bounded to two minutes and does not run under the race
// detector, which cannot track the 20,000+ goroutines it needs.
//
// One process holding both ends of 10,000 connections would need 20,000+
// file descriptors, the hard limit here. So the clients run in a child
// process (this test binary again, running TestSoakClientHelper), and each
// process raises its own RLIMIT_NOFILE for its ~10,000 sockets. The parent
// and the child talk over the child's stdin and stdout: the child says when
// every connection is up, the parent measures its memory then and says go,
// and the child reports what it sent and received.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/internal/fdlimit"
	"github.com/wesos/wesos/ws"
)

var soakFull = flag.Bool("soak.full", false, "run TestSoak in full: 10,000 connections (also WESOS_SOAK=full)")

// soakChildEnv carries the child's soakPlan, as JSON.
const soakChildEnv = "WESOS_SOAK_CHILD"

// soakPlan is one phase of the soak, as the child runs it.
type soakPlan struct {
	Mode     string // "broadcast" or "echo"
	URL      string
	Conns    int
	Senders  int // broadcast: how many of the connections send
	Messages int // per sending connection
	Budget   time.Duration
}

// expected is the number of messages the clients must receive in all.
func (p soakPlan) expected() int {
	if p.Mode == "broadcast" {
		return p.Senders * p.Messages * p.Conns // every message to every connection
	}
	return p.Conns * p.Messages // every message back to its sender
}

// soakReport is what the child reports.
type soakReport struct {
	Sent, Received     int
	Dial, Traffic      time.Duration
	Close              time.Duration
	HeapPerConn        float64 // client side, bytes
	RSSPerConn         float64 // client side, bytes
	GoroutinesPerConn  float64
	Errors             []string
	GoroutinesAtTheEnd int
}

func soakSizes() (full bool, conns, senders, bmsgs, emsgs int, budget time.Duration) {
	full = *soakFull || os.Getenv("WESOS_SOAK") == "full"
	if full {
		// 10 × 20 broadcasts to 10,000 connections: 2,000,000 deliveries;
		// 10,000 × 50 echoes: 500,000 round trips.
		return true, 10_000, 10, 20, 50, 55 * time.Second
	}
	return false, 500, 5, 20, 20, 25 * time.Second
}

// memSnapshot is the process's memory after a GC.
type memSnapshot struct {
	heap, stack, rss uint64
	goroutines       int
}

func snapshot() memSnapshot {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSnapshot{heap: ms.HeapAlloc, stack: ms.StackInuse, rss: rssBytes(), goroutines: runtime.NumGoroutine()}
}

// rssBytes is the resident set size, from /proc (0 where there is none).
func rssBytes() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func perConn(after, before uint64, n int) float64 {
	return (float64(after) - float64(before)) / float64(n)
}

func TestSoak(t *testing.T) {
	if os.Getenv(soakChildEnv) != "" {
		t.Skip("in the soak's client process")
	}
	if testing.Short() {
		t.Skip("skipped under -short: the soak (hundreds of connections in a second process)")
	}
	full, conns, senders, bmsgs, emsgs, budget := soakSizes()
	if full && raceEnabled {
		t.Skip("skipped: the full soak needs more goroutines than the race detector can track (8128); run it without -race")
	}
	fdlimit.Raise(t, uint64(conns)+200)
	start := time.Now()
	// The runtime keeps the descriptor of every goroutine that ever ran
	// (about 0.5 KiB of heap each) for reuse. Run as many goroutines as
	// the soak will hold at its peak (a handler and a broadcast writer
	// per connection) before taking the baseline, so that the baseline
	// includes them and the comparison at the end sees only what wesos
	// keeps.
	var warm sync.WaitGroup
	release := make(chan struct{})
	for range 2*conns + 200 {
		warm.Go(func() { <-release })
	}
	close(release)
	warm.Wait()
	base := snapshot()
	t.Logf("server process baseline: %d goroutines, heap %.1f MiB, RSS %.1f MiB", base.goroutines, mib(base.heap), mib(base.rss))

	for _, plan := range []soakPlan{
		{Mode: "broadcast", Conns: conns, Senders: senders, Messages: bmsgs, Budget: budget},
		{Mode: "echo", Conns: conns, Messages: emsgs, Budget: budget},
	} {
		t.Run(plan.Mode, func(t *testing.T) { soakPhase(t, plan) })
		if t.Failed() {
			return
		}
	}

	// Everything closed: the goroutines and the heap return to the
	// baseline (within 2 MiB: the runtime and the listeners keep a little).
	deadline := time.Now().Add(10 * time.Second)
	var end memSnapshot
	for {
		end = snapshot()
		if end.goroutines <= base.goroutines+2 && end.heap <= base.heap+2<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after every connection closed: %d goroutines (baseline %d), heap %.1f MiB (baseline %.1f MiB)",
				end.goroutines, base.goroutines, mib(end.heap), mib(base.heap))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("server process after all closed: %d goroutines (baseline %d), heap %.1f MiB (baseline %.1f MiB), RSS %.1f MiB; soak took %v",
		end.goroutines, base.goroutines, mib(end.heap), mib(base.heap), mib(end.rss), time.Since(start).Round(time.Millisecond))
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// soakPhase serves one phase's server, runs the child against it and checks
// the report.
func soakPhase(t *testing.T, plan soakPlan) {
	ctx, cancel := context.WithTimeout(context.Background(), plan.Budget+15*time.Second)
	defer cancel()

	var srv *ws.Server
	handler := func(ctx context.Context, c *ws.Conn) error { return wesos.Pipe(ctx, srv, c) }
	if plan.Mode == "echo" {
		handler = func(ctx context.Context, c *ws.Conn) error { return wesos.Pipe(ctx, c, c) }
	}
	srv = ws.NewServer(handler, &ws.AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("ws shutdown: %v", err)
		}
		hs.Shutdown(sctx)
		<-served
	}()
	plan.URL = "ws://" + ln.Addr().String() + "/"
	before := snapshot()

	planJSON, _ := json.Marshal(plan)
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestSoakClientHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), soakChildEnv+"="+string(planJSON))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var output strings.Builder // the child's stdout, for failures
	var report *soakReport
	var connected memSnapshot
	var connectedLen int
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		output.WriteString(line + "\n")
		switch {
		case line == "SOAK:connected":
			// Every connection is up and registered (the child pinged
			// each): measure the server side now, with no traffic.
			connectedLen = srv.Len()
			connected = snapshot()
			io.WriteString(stdin, "go\n")
		case strings.HasPrefix(line, "SOAK:report "):
			report = new(soakReport)
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "SOAK:report ")), report); err != nil {
				t.Errorf("child report %q: %v", line, err)
			}
		}
	}
	stdin.Close()
	werr := cmd.Wait()
	tail := func(s string) string {
		if len(s) > 8<<10 {
			return "…" + s[len(s)-8<<10:]
		}
		return s
	}
	if werr != nil || report == nil {
		t.Fatalf("client process: %v\nstdout:\n%s\nstderr:\n%s", werr, tail(output.String()), tail(stderr.String()))
	}
	for _, e := range report.Errors {
		t.Error(e)
	}
	if connectedLen != plan.Conns {
		t.Errorf("server had %d connections when the child had %d up", connectedLen, plan.Conns)
	}
	if want := plan.expected(); report.Received != want {
		t.Errorf("%s: received %d messages, want %d", plan.Mode, report.Received, want)
	}
	// The child closed every connection: the server's handlers end.
	deadline := time.Now().Add(10 * time.Second)
	for srv.Len() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("server still has %d connections after the client process closed them all", srv.Len())
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("%s: %d connections (%d sending), %d messages sent, %d delivered exactly once in per-sender order; dial %v, traffic %v (%.0f deliveries/s), close %v",
		plan.Mode, plan.Conns, map[bool]int{true: plan.Senders, false: plan.Conns}[plan.Mode == "broadcast"], report.Sent, report.Received,
		report.Dial.Round(time.Millisecond), report.Traffic.Round(time.Millisecond), float64(report.Received)/report.Traffic.Seconds(),
		report.Close.Round(time.Millisecond))
	// RSS growth means something only in the first phase: the pages the
	// first phase touched stay resident for the second.
	rss := "n/a (pages of the previous phase reused)"
	if connected.rss > before.rss {
		rss = fmt.Sprintf("%.1f KiB", perConn(connected.rss, before.rss, plan.Conns)/1024)
	}
	t.Logf("%s: per connection, server side: heap %.1f KiB, goroutine stacks %.1f KiB, RSS %s, %.2f goroutines (%d → %d); client side: heap %.1f KiB, RSS %.1f KiB, %.2f goroutines",
		plan.Mode,
		perConn(connected.heap, before.heap, plan.Conns)/1024, perConn(connected.stack, before.stack, plan.Conns)/1024,
		rss,
		float64(connected.goroutines-before.goroutines)/float64(plan.Conns), before.goroutines, connected.goroutines,
		report.HeapPerConn/1024, report.RSSPerConn/1024, report.GoroutinesPerConn)
}

// TestSoakClientHelper is the client side of TestSoak, in a child process.
func TestSoakClientHelper(t *testing.T) {
	planJSON := os.Getenv(soakChildEnv)
	if planJSON == "" {
		t.Skip("the client process of TestSoak; runs only when TestSoak starts it")
	}
	var plan soakPlan
	if err := json.Unmarshal([]byte(planJSON), &plan); err != nil {
		t.Fatal(err)
	}
	fdlimit.Raise(t, uint64(plan.Conns)+200)
	ctx, cancel := context.WithTimeout(context.Background(), plan.Budget)
	defer cancel()

	var rep soakReport
	var errMu sync.Mutex
	fail := func(format string, args ...any) {
		errMu.Lock()
		defer errMu.Unlock()
		if len(rep.Errors) < 20 {
			rep.Errors = append(rep.Errors, fmt.Sprintf(format, args...))
		}
		cancel() // one failure ends the phase
	}
	defer func() {
		b, _ := json.Marshal(rep)
		fmt.Printf("SOAK:report %s\n", b)
	}()

	before := snapshot()
	conns := make([]*ws.Conn, plan.Conns)
	var received atomic.Int64
	var readers sync.WaitGroup
	expectPerConn := plan.Messages // echo: its own messages back
	if plan.Mode == "broadcast" {
		expectPerConn = plan.Senders * plan.Messages
	}

	// Dial every connection, start its reader, and ping it: the pong comes
	// from the server's handler, so the server has registered it and it
	// will get every broadcast from now on.
	dialStart := time.Now()
	var next atomic.Int64
	var dialers sync.WaitGroup
	for range 64 {
		dialers.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= plan.Conns || ctx.Err() != nil {
					return
				}
				c, _, err := ws.Dial(ctx, plan.URL, nil)
				if err != nil {
					fail("dial %d: %v", i, err)
					return
				}
				conns[i] = c
				readers.Go(func() { soakRead(ctx, c, i, plan, expectPerConn, &received, fail) })
				if err := c.Ping(ctx); err != nil {
					fail("ping %d: %v", i, err)
					return
				}
			}
		})
	}
	dialers.Wait()
	rep.Dial = time.Since(dialStart)
	closeAll := func() {
		closeStart := time.Now()
		var closers sync.WaitGroup
		var nextClose atomic.Int64
		for range 64 {
			closers.Go(func() {
				for {
					i := int(nextClose.Add(1)) - 1
					if i >= len(conns) {
						return
					}
					if c := conns[i]; c != nil {
						if ctx.Err() != nil {
							c.CloseNow()
						} else if err := c.Close(ws.StatusNormalClosure, ""); err != nil {
							fail("close %d: %v", i, err)
						}
					}
				}
			})
		}
		closers.Wait()
		readers.Wait()
		rep.Close = time.Since(closeStart)
	}
	if ctx.Err() != nil {
		closeAll()
		return
	}
	connected := snapshot()
	rep.HeapPerConn = perConn(connected.heap, before.heap, plan.Conns)
	rep.RSSPerConn = perConn(connected.rss, before.rss, plan.Conns)
	rep.GoroutinesPerConn = float64(connected.goroutines-before.goroutines) / float64(plan.Conns)

	// Wait for the parent's go (it measures the server meanwhile).
	fmt.Println("SOAK:connected")
	if line, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil || line != "go\n" {
		fail("waiting for go: %q %v", line, err)
		closeAll()
		return
	}

	trafficStart := time.Now()
	var writers sync.WaitGroup
	var sent atomic.Int64
	nSenders := plan.Conns
	if plan.Mode == "broadcast" {
		nSenders = plan.Senders
	}
	for i := range nSenders {
		writers.Go(func() {
			var msg [16]byte
			for seq := range plan.Messages {
				binary.BigEndian.PutUint32(msg[0:], uint32(i))
				binary.BigEndian.PutUint32(msg[4:], uint32(seq))
				binary.BigEndian.PutUint64(msg[8:], uint64(i)<<32^uint64(seq)^0x5a5a5a5a5a5a5a5a)
				if err := conns[i].Write(ctx, ws.Binary, msg[:]); err != nil {
					fail("conn %d: write %d: %v", i, seq, err)
					return
				}
				sent.Add(1)
			}
		})
	}
	writers.Wait()
	// The readers return once they have every message they expect.
	done := make(chan struct{})
	go func() { readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	rep.Traffic = time.Since(trafficStart)
	rep.Sent = int(sent.Load())
	if ctx.Err() != nil {
		fail("traffic did not finish within %v: %d of %d messages received", plan.Budget, received.Load(), plan.expected())
	}
	closeAll()
	rep.Received = int(received.Load())
	rep.GoroutinesAtTheEnd = runtime.NumGoroutine()
}

// soakRead reads a connection's expected messages and checks each: intact,
// not seen before, and next in its sender's sequence.
func soakRead(ctx context.Context, c *ws.Conn, i int, plan soakPlan, expect int, received *atomic.Int64, fail func(string, ...any)) {
	nextSeq := make([]uint32, max(plan.Senders, 1))
	for n := range expect {
		typ, p, err := c.Read(ctx)
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				fail("conn %d: read after %d of %d messages: %v", i, n, expect, err)
			}
			return
		}
		if typ != ws.Binary || len(p) != 16 {
			fail("conn %d: message %d: %v of %d bytes", i, n, typ, len(p))
			return
		}
		from, seq := binary.BigEndian.Uint32(p[0:]), binary.BigEndian.Uint32(p[4:])
		if binary.BigEndian.Uint64(p[8:]) != uint64(from)<<32^uint64(seq)^0x5a5a5a5a5a5a5a5a {
			fail("conn %d: corrupt message % x", i, p)
			return
		}
		slot := 0
		switch plan.Mode {
		case "broadcast":
			if int(from) >= plan.Senders {
				fail("conn %d: message from unknown sender %d", i, from)
				return
			}
			slot = int(from)
		case "echo":
			if int(from) != i {
				fail("conn %d: got the echo of conn %d's message", i, from)
				return
			}
		}
		if seq != nextSeq[slot] {
			fail("conn %d: from %d got seq %d, want %d (lost, duplicated or reordered)", i, from, seq, nextSeq[slot])
			return
		}
		nextSeq[slot]++
		received.Add(1)
	}
}
