// Command benchload is the one load generator every server is measured
// with. Each run performs one scenario against one server and prints its
// result as JSON on stdout; benchtable runs it pinned to its own core.
//
//	benchload -scenario check     -addr A [-raw] [-mode echo|broadcast]
//	benchload -scenario echo      -addr A -pid P -conns 64 -size 16 -inflight 16 [-raw]
//	benchload -scenario idle      -addr A -pid P -debug D -counts 10000,19900
//	benchload -scenario broadcast -addr A -pid P -subs 1000 -size 64 -window 16
//	benchload -scenario stream    -addr A -pid P -size 1073741824
//	benchload -scenario storm     -addr A -pid P -clients 10000 -parallel 256 -rounds 3
//	benchload -scenario echo      -deflate -addr A -pid P -conns 64 -size 65536 -inflight 16
//	benchload -scenario broadcast -deflate -addr A -pid P -subs 1000 -size 1024 -window 16
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wesos/wesos/bench/internal/wsclient"
)

var (
	scenario = flag.String("scenario", "echo", "check, echo, idle, broadcast, stream or storm")
	addr     = flag.String("addr", "127.0.0.1:9001", "server address (loopback only)")
	raw      = flag.Bool("raw", false, "raw-TCP framing (the naive raw TCP echo server)")
	mode     = flag.String("mode", "echo", "check: the server's mode")
	pid      = flag.Int("pid", 0, "server process id, for its CPU time and memory")
	debugURL = flag.String("debug", "", "server's debug address (idle)")
	conns    = flag.Int("conns", 64, "echo: connections")
	size     = flag.Int64("size", 16, "message size, bytes")
	inflight = flag.Int("inflight", 1, "echo: messages in flight per connection")
	maxBytes = flag.Int64("maxinflightbytes", 256<<20, "echo: cap on conns×inflight×size (the window shrinks, at least 1)")
	warm     = flag.Duration("warm", 500*time.Millisecond, "warm-up")
	dur      = flag.Duration("dur", 3*time.Second, "measurement")
	counts   = flag.String("counts", "10000,19900", "idle: connection counts")
	settle   = flag.Duration("settle", 2*time.Second, "idle: wait before reading memory")
	idleEcho = flag.Bool("idleecho", true, "idle: echo one message on each connection before it idles")
	subs     = flag.Int("subs", 1000, "broadcast: subscribers")
	window   = flag.Int("window", 16, "broadcast: messages in flight")
	timeout  = flag.Duration("timeout", 120*time.Second, "bound on the whole scenario")
	deflate  = flag.Bool("deflate", false, "echo, broadcast: JSON text messages with permessage-deflate (no context takeover), inflated and checked whole; storm: handshakes that negotiate it, as browsers' do")
	clients  = flag.Int("clients", 10000, "storm: connections per round")
	parallel = flag.Int("parallel", 256, "storm: handshakes in flight")
	rounds   = flag.Int("rounds", 3, "storm: rounds of connecting all, then closing all")
	cpuprof  = flag.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
)

// base is the origin of the timestamps carried by messages (monotonic).
var base = time.Now()

func now() uint64 { return uint64(time.Since(base)) }

func main() {
	flag.Parse()
	debug.SetGCPercent(400) // the load generator allocates little; keep GC off its core
	raiseNoFile()
	host, _, err := net.SplitHostPort(*addr)
	if err != nil || (host != "127.0.0.1" && host != "localhost") {
		fail(fmt.Errorf("-addr must be on 127.0.0.1, got %q", *addr))
	}
	// Whatever happens, the run ends.
	time.AfterFunc(*timeout+10*time.Second, func() {
		fail(fmt.Errorf("scenario exceeded its time bound %v", *timeout))
	})
	if *deflate && *size < 256 && (*scenario == "echo" || *scenario == "broadcast") {
		fail(fmt.Errorf("-deflate messages are at least 256 bytes, got -size %d", *size))
	}
	if *cpuprof != "" {
		f, err := os.Create(*cpuprof)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var res any
	switch *scenario {
	case "check":
		res = runCheck()
	case "echo":
		res = runEcho()
	case "idle":
		res = runIdle()
	case "broadcast":
		res = runBroadcast()
	case "stream":
		res = runStream()
	case "storm":
		res = runStorm()
	default:
		fail(fmt.Errorf("unknown scenario %q", *scenario))
	}
	out(res)
}

var outMu sync.Mutex

func out(v any) {
	outMu.Lock()
	json.NewEncoder(os.Stdout).Encode(v)
	os.Stdout.Sync()
}

func fail(err error) {
	out(map[string]string{"Error": err.Error()})
	os.Exit(1)
}

func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}

// dialAll opens n connections with a few dialers in parallel.
func dialAll(n, bufSize int) ([]*wsclient.Conn, error) {
	cs := make([]*wsclient.Conn, n)
	var (
		mu    sync.Mutex
		first error
		wg    sync.WaitGroup
		next  int
	)
	for w := 0; w < 16; w++ {
		wg.Go(func() {
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if i >= n || stop {
					return
				}
				c, err := dial(bufSize, 10*time.Second)
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("connection %d: %w", i, err)
				}
				cs[i] = c
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		for _, c := range cs {
			if c != nil {
				c.Close()
			}
		}
		return nil, first
	}
	return cs, nil
}

func parseCounts(s string) []int {
	var r []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			r = append(r, n)
		}
	}
	return r
}
