// Command benchtable runs every scenario against every server, side by side
// in the same run, and writes the markdown table: each server in its own
// process pinned to core 0, the one load generator (benchload) pinned to
// core 1. run.sh builds the binaries and calls it.
//
//	benchtable [-quick] [-out RESULTS.md] [-bin bin] [-readme ../README.md]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
)

// wsLibs are the WebSocket servers, in column order. Every table takes its
// columns from here, so another entry is one line here plus its file in
// servers/ registering the same name: "wesos-raw" is wesos on its own
// listener (Server.Serve) beside wesos on net/http. Only peers are ever the
// "best peer".
var wsLibs = []string{"wesos", "wesos-raw", "gorilla", "coder", "gobwas", "gws"}

// deflateLibs are the columns of the compressed scenarios: wsLibs, with
// wesos compressing through klauspost/compress (CompressionOptions.Flate,
// the kflate module) beside wesos on compress/flate.
var deflateLibs = slices.Insert(slices.Clone(wsLibs), 1, "wesos+klauspost")

var (
	libs  = append(append([]string{}, wsLibs...), "raw")  // wsLibs and the naive raw-TCP echo (not a peer)
	peers = []string{"gorilla", "coder", "gobwas", "gws"} // the competitors "best peer" is taken from
)

var (
	quick       = flag.Bool("quick", false, "a small subset (about 3 minutes)")
	binDir      = flag.String("bin", "bin", "directory of benchserver and benchload")
	outFile     = flag.String("out", "", "markdown output (default RESULTS.md, or RESULTS-quick.md with -quick)")
	jsonFile    = flag.String("json", "", "raw results as JSON (default results.json / results-quick.json)")
	logDir      = flag.String("logs", "logs", "directory for the servers' logs")
	basePort    = flag.Int("port", 19000, "first port")
	only        = flag.String("only", "", "comma-separated sections to run (echo,idle,broadcast,stream,storm,deflate); empty: all")
	command     = flag.String("command", "./run.sh", "the command line shown in the output")
	renderOnly  = flag.String("render", "", "only re-render the markdown of a results JSON file (to -out) and print it")
	quietWait   = flag.Duration("quietwait", time.Minute, "before each measurement, wait up to this long for other work on the machine to end")
	niceness    = flag.Int("nice", 0, "run the servers and the load generator at this nice level (e.g. -5 to shield them from other work; 0: as is)")
	readme      = flag.String("readme", "", "also write the summary table into this file (the README) between the lines "+readmeStart+" and "+readmeEnd)
	quietBudget = flag.Duration("quietbudget", 10*time.Minute, "stop waiting for quiet once the run has waited this long in all")
)

// Plan is what a mode runs.
type Plan struct {
	Conns      []int
	Sizes      []int64
	Inflight   []int
	Extra      [][3]int64 // extra echo scenarios (conns, size, inflight)
	Warm, Dur  time.Duration
	IdleCounts []int
	Subs       int
	BcastSize  int
	Window     int
	StreamSize int64
	MaxBytes   int64 // cap on conns×inflight×size

	// Handshake storm: clients per round, handshakes in flight, rounds.
	StormClients, StormParallel, StormRounds int
	// Compressed scenarios: echo rows (conns, size, inflight) and the
	// broadcast.
	DeflateEcho              [][3]int64
	DeflateSubs, DeflateSize int
	DeflateWindow            int
}

var fullPlan = Plan{
	Conns:      []int{1, 64, 1024},
	Sizes:      []int64{16, 1 << 10, 64 << 10, 1 << 20},
	Inflight:   []int{1, 16},
	Warm:       500 * time.Millisecond,
	Dur:        3 * time.Second,
	IdleCounts: []int{10000, 19900},
	Subs:       1000,
	BcastSize:  64,
	Window:     16,
	StreamSize: 1 << 30,
	MaxBytes:   256 << 20,

	StormClients: 10000, StormParallel: 256, StormRounds: 3,
	DeflateEcho: [][3]int64{
		{1, 1 << 10, 1}, {1, 1 << 10, 16}, {1, 64 << 10, 1}, {1, 64 << 10, 16},
		{64, 1 << 10, 1}, {64, 1 << 10, 16}, {64, 64 << 10, 1}, {64, 64 << 10, 16},
	},
	DeflateSubs: 1000, DeflateSize: 1 << 10, DeflateWindow: 16,
}

var quickPlan = Plan{
	Conns:      []int{64},
	Sizes:      []int64{16, 64 << 10},
	Inflight:   []int{16},
	Extra:      [][3]int64{{1, 16, 1}},
	Warm:       300 * time.Millisecond,
	Dur:        1500 * time.Millisecond,
	IdleCounts: []int{2000},
	Subs:       200,
	BcastSize:  64,
	Window:     16,
	StreamSize: 256 << 20,
	MaxBytes:   256 << 20,

	StormClients: 2000, StormParallel: 256, StormRounds: 2,
	DeflateEcho: [][3]int64{{1, 1 << 10, 1}, {64, 64 << 10, 16}},
	DeflateSubs: 200, DeflateSize: 1 << 10, DeflateWindow: 16,
}

// EchoKey names an echo scenario.
type EchoKey struct {
	Conns    int
	Size     int64
	Inflight int
}

func (k EchoKey) String() string {
	return fmt.Sprintf("%s × %s × %d", plural(k.Conns, "conn"), sizeName(k.Size), k.Inflight)
}

// Results is everything one run measured.
type Results struct {
	Started, Finished time.Time
	Machine           string
	Quick             bool
	Plan              Plan
	Checks            map[string]map[string]*stats.Check // mode → lib → check
	EchoOrder         []EchoKey
	EchoEff           map[string]int // EchoKey.String() → effective in-flight
	Echo              map[string]map[string]*stats.Echo
	Idle              map[string]*stats.Idle
	Broadcast         map[string]*stats.Broadcast
	Stream            map[string]*stats.Stream
	QuietWaited       time.Duration // time spent waiting for other work on the machine to end

	Storm            map[string]*stats.Storm           // lib → handshake storm
	DeflateOrder     []EchoKey                         // compressed echo rows
	DeflateEcho      map[string]map[string]*stats.Echo // EchoKey.String() → lib → compressed echo
	DeflateBroadcast map[string]*stats.Broadcast       // lib → compressed broadcast
}

func main() {
	flag.Parse()
	log.SetFlags(log.Ltime)
	plan := fullPlan
	if *quick {
		plan = quickPlan
	}
	if *outFile == "" {
		*outFile = map[bool]string{false: "RESULTS.md", true: "RESULTS-quick.md"}[*quick]
	}
	if *jsonFile == "" {
		*jsonFile = map[bool]string{false: "results.json", true: "results-quick.json"}[*quick]
	}
	if *renderOnly != "" {
		b, err := os.ReadFile(*renderOnly)
		if err != nil {
			log.Fatal(err)
		}
		var res Results
		if err := json.Unmarshal(b, &res); err != nil {
			log.Fatal(err)
		}
		md := render(&res)
		if err := os.WriteFile(*outFile, []byte(md), 0o644); err != nil {
			log.Fatal(err)
		}
		writeReadme(&res)
		fmt.Print(md)
		return
	}
	raiseNoFile()
	os.MkdirAll(*logDir, 0o755)
	sections := map[string]bool{"echo": true, "idle": true, "broadcast": true, "stream": true, "storm": true, "deflate": true}
	if *only != "" {
		sections = map[string]bool{}
		for _, s := range strings.Split(*only, ",") {
			sections[strings.TrimSpace(s)] = true
		}
	}

	res := &Results{
		Started:   time.Now(),
		Machine:   machineLine(),
		Quick:     *quick,
		Plan:      plan,
		Checks:    map[string]map[string]*stats.Check{"echo": {}, "broadcast": {}},
		EchoEff:   map[string]int{},
		Echo:      map[string]map[string]*stats.Echo{},
		Idle:      map[string]*stats.Idle{},
		Broadcast: map[string]*stats.Broadcast{},
		Stream:    map[string]*stats.Stream{},

		Storm:            map[string]*stats.Storm{},
		DeflateEcho:      map[string]map[string]*stats.Echo{},
		DeflateBroadcast: map[string]*stats.Broadcast{},
	}
	log.Printf("%s", res.Machine)
	if sections["echo"] {
		runEchoGrid(res, plan)
	}
	if sections["idle"] {
		runIdle(res, plan)
	}
	if sections["broadcast"] {
		runBroadcast(res, plan)
	}
	if sections["stream"] {
		runStream(res, plan)
	}
	if sections["storm"] {
		runStorm(res, plan)
	}
	if sections["deflate"] {
		runDeflate(res, plan)
	}
	res.Finished = time.Now()
	res.QuietWaited = waited

	md := render(res)
	if err := os.WriteFile(*outFile, []byte(md), 0o644); err != nil {
		log.Fatal(err)
	}
	if b, err := json.MarshalIndent(res, "", " "); err == nil {
		os.WriteFile(*jsonFile, b, 0o644)
	}
	writeReadme(res)
	fmt.Print(md)
	log.Printf("wrote %s and %s in %v", *outFile, *jsonFile, res.Finished.Sub(res.Started).Round(time.Second))
}

// The lines of the README between which -readme writes the summary table.
const (
	readmeStart = "<!-- BENCHTABLE: written by bench/cmd/benchtable -readme -->"
	readmeEnd   = "<!-- /BENCHTABLE -->"
)

// writeReadme replaces what lies between the markers of the -readme file
// with the run's summary table, so that the README shows every row of the
// last run and not a selection. A full run only: a quick or partial run
// measures too little to stand for the library.
func writeReadme(res *Results) {
	if *readme == "" {
		return
	}
	if res.Quick || *only != "" {
		log.Printf("-readme: not written from a quick or partial run")
		return
	}
	b, err := os.ReadFile(*readme)
	if err != nil {
		log.Fatal(err)
	}
	s := string(b)
	i, j := strings.Index(s, readmeStart), strings.Index(s, readmeEnd)
	if i < 0 || j < i {
		log.Fatalf("-readme: %s lacks the lines %q and %q", *readme, readmeStart, readmeEnd)
	}
	s = s[:i+len(readmeStart)] + "\n" + readmeBlock(res) + s[j:]
	if err := os.WriteFile(*readme, []byte(s), 0o644); err != nil {
		log.Fatal(err)
	}
}

// ---- processes ----

type server struct {
	lib, mode   string
	addr, debug string
	cmd         *exec.Cmd
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// startServer starts lib's server in mode, with extra benchserver flags
// (-compress).
func startServer(lib, mode string, port int, readLimit int64, extra ...string) (*server, error) {
	s := &server{lib: lib, mode: mode,
		addr:  fmt.Sprintf("127.0.0.1:%d", port),
		debug: fmt.Sprintf("127.0.0.1:%d", port+1)}
	lf, err := os.OpenFile(filepath.Join(*logDir, lib+"-"+mode+strings.Join(extra, "")+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	s.cmd = exec.Command("taskset", niced("-c", "0", filepath.Join(*binDir, "benchserver"),
		"-lib", lib, "-mode", mode, "-addr", s.addr, "-debug", s.debug,
		"-readlimit", strconv.FormatInt(readLimit, 10))...)
	s.cmd.Args = append(s.cmd.Args, extra...)
	s.cmd.Stdout, s.cmd.Stderr = lf, lf
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.DialTimeout("tcp", s.addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("%s/%s did not start listening: %v", lib, mode, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	return s, nil
}

func (s *server) stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
}

// niced prefixes a taskset command line with nice when -nice is set:
// taskset -c N nice -n L prog args.
func niced(args ...string) []string {
	if *niceness == 0 {
		return args
	}
	out := append([]string{}, args[:2]...)
	out = append(out, "nice", "-n", strconv.Itoa(*niceness))
	return append(out, args[2:]...)
}

// waitQuiet waits, up to a bound, until the rest of the machine uses less
// than a quarter of a core: the build machines are shared, and a measurement
// taken while another job runs is worth little.
var waited time.Duration

func waitQuiet() {
	if waited >= *quietBudget {
		return
	}
	start := time.Now()
	defer func() { waited += time.Since(start) }()
	deadline := start.Add(min(*quietWait, *quietBudget-waited))
	logged := false
	for {
		b0, _ := stats.SystemBusy()
		time.Sleep(500 * time.Millisecond)
		b1, _ := stats.SystemBusy()
		busy := (b1 - b0) / 0.5
		if busy < 0.25 {
			if logged {
				log.Printf("quiet again")
			}
			return
		}
		if time.Now().After(deadline) {
			log.Printf("the machine is still busy (%.0f%% of a core outside the benchmark); measuring anyway", busy*100)
			return
		}
		if !logged {
			log.Printf("other work uses %.0f%% of a core; waiting (up to %v) for it to end", busy*100, *quietWait)
			logged = true
		}
	}
}

// load runs benchload pinned to core 1 and decodes its JSON into v.
func load(v any, bound time.Duration, args ...string) error {
	waitQuiet()
	ctx, cancel := context.WithTimeout(context.Background(), bound+30*time.Second)
	defer cancel()
	args = append([]string{"-c", "1", filepath.Join(*binDir, "benchload"), "-timeout", bound.String()}, args...)
	cmd := exec.CommandContext(ctx, "taskset", niced(args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	if err := json.Unmarshal(out.Bytes(), v); err != nil {
		return fmt.Errorf("benchload %v: %v (output %q, stderr %q)", args, runErr, out.String(), errb.String())
	}
	return nil
}

func check(res *Results, s *server) bool {
	var c stats.Check
	args := []string{"-scenario", "check", "-mode", s.mode, "-addr", s.addr}
	if s.lib == "raw" {
		args = append(args, "-raw")
	}
	if err := load(&c, 30*time.Second, args...); err != nil {
		c.Error = err.Error()
	}
	res.Checks[s.mode][s.lib] = &c
	if !c.OK {
		log.Printf("CONFORMANCE %s/%s failed: %s — not timed", s.lib, s.mode, c.Error)
	}
	return c.OK
}

// ---- scenarios ----

func effInflight(k EchoKey, maxBytes int64) int {
	eff := k.Inflight
	if int64(k.Conns)*int64(eff)*k.Size > maxBytes {
		eff = max(1, int(maxBytes/(int64(k.Conns)*k.Size)))
	}
	return eff
}

func runEchoGrid(res *Results, plan Plan) {
	var keys []EchoKey
	for _, e := range plan.Extra {
		keys = append(keys, EchoKey{int(e[0]), e[1], int(e[2])})
	}
	for _, c := range plan.Conns {
		for _, s := range plan.Sizes {
			for _, f := range plan.Inflight {
				keys = append(keys, EchoKey{c, s, f})
			}
		}
	}
	res.EchoOrder = keys

	srv := map[string]*server{}
	defer func() {
		for _, s := range srv {
			s.stop()
		}
	}()
	for i, lib := range libs {
		s, err := startServer(lib, "echo", *basePort+10*i, 64<<20)
		if err != nil {
			log.Printf("%v", err)
			continue
		}
		if !check(res, s) {
			s.stop()
			continue
		}
		srv[lib] = s
	}
	// Scenarios whose window is capped to the same effective one are run
	// once.
	type effKey struct {
		Conns, Eff int
		Size       int64
	}
	ran := map[effKey]string{}
	for si, k := range keys {
		eff := effInflight(k, plan.MaxBytes)
		res.EchoEff[k.String()] = eff
		ek := effKey{k.Conns, eff, k.Size}
		if prev, ok := ran[ek]; ok {
			res.Echo[k.String()] = res.Echo[prev]
			continue
		}
		ran[ek] = k.String()
		res.Echo[k.String()] = map[string]*stats.Echo{}
		warm, dur := plan.Warm, plan.Dur
		if tot := int64(k.Conns) * int64(eff) * k.Size; tot >= 512<<20 {
			// Rounds of a GiB in flight need longer to reach a steady state.
			warm, dur = max(warm, 2*time.Second), max(dur, 5*time.Second)
		}
		for j := range libs {
			lib := libs[(si+j)%len(libs)] // rotate who goes first
			s := srv[lib]
			if s == nil {
				continue
			}
			var e stats.Echo
			args := []string{"-scenario", "echo", "-addr", s.addr, "-pid", strconv.Itoa(s.pid()),
				"-conns", strconv.Itoa(k.Conns), "-size", strconv.FormatInt(k.Size, 10),
				"-inflight", strconv.Itoa(k.Inflight), "-maxinflightbytes", strconv.FormatInt(plan.MaxBytes, 10),
				"-warm", warm.String(), "-dur", dur.String()}
			if lib == "raw" {
				args = append(args, "-raw")
			}
			if err := load(&e, warm+dur+60*time.Second, args...); err != nil {
				e.Error = err.Error()
			}
			res.Echo[k.String()][lib] = &e
			log.Printf("echo %-26s %-8s %10.0f replies/s %9.1f MB/s  p50 %8.0f µs  p99 %8.0f µs  %7.2f µs CPU/msg  load %.0f%%  other %.0f%%  %s",
				k, lib, e.RepliesPerS, e.MBPerS, e.P50us, e.P99us, e.CPUusPerMsg, 100*e.LoadCPU/max(e.Seconds, 1e-9), 100*e.OtherCPU/max(e.Seconds, 1e-9), e.Error)
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func runIdle(res *Results, plan Plan) {
	counts := make([]string, len(plan.IdleCounts))
	for i, c := range plan.IdleCounts {
		counts[i] = strconv.Itoa(c)
	}
	for i, lib := range libs {
		if lib == "raw" {
			continue
		}
		s, err := startServer(lib, "echo", *basePort+100+10*i, 64<<20)
		if err != nil {
			log.Printf("%v", err)
			continue
		}
		if check(res, s) {
			time.Sleep(500 * time.Millisecond)
			var r stats.Idle
			if err := load(&r, 5*time.Minute, "-scenario", "idle", "-addr", s.addr, "-pid", strconv.Itoa(s.pid()),
				"-debug", s.debug, "-counts", strings.Join(counts, ",")); err != nil {
				r.Error = err.Error()
			}
			res.Idle[lib] = &r
			for _, p := range r.Points {
				log.Printf("idle %-8s %6d conns: %7.0f B RSS/conn, %7.0f B heap+stacks/conn, %.2f goroutines/conn",
					lib, p.Conns, p.RSSPerConnB, p.HeapStackPerConnB, p.GoroutinesPerConn)
			}
			if r.Error != "" {
				log.Printf("idle %-8s: %s", lib, r.Error)
			}
		}
		s.stop()
		time.Sleep(time.Second) // let the kernel reclaim the sockets
	}
}

func runBroadcast(res *Results, plan Plan) {
	for i, lib := range libs {
		if lib == "raw" {
			continue
		}
		s, err := startServer(lib, "broadcast", *basePort+200+10*i, 2<<30)
		if err != nil {
			log.Printf("%v", err)
			continue
		}
		if check(res, s) {
			var r stats.Broadcast
			if err := load(&r, plan.Warm+plan.Dur+2*time.Minute, "-scenario", "broadcast", "-addr", s.addr,
				"-pid", strconv.Itoa(s.pid()), "-subs", strconv.Itoa(plan.Subs), "-size", strconv.Itoa(plan.BcastSize),
				"-window", strconv.Itoa(plan.Window), "-warm", plan.Warm.String(), "-dur", plan.Dur.String()); err != nil {
				r.Error = err.Error()
			}
			res.Broadcast[lib] = &r
			log.Printf("broadcast %-8s %10.0f deliveries/s  p50 %8.0f µs  p99 %8.0f µs  %6.2f µs CPU/delivery  load %.0f%%  other %.0f%%  %s",
				lib, r.DeliveriesPerS, r.P50us, r.P99us, r.CPUusPerDelivery, 100*r.LoadCPU/max(r.Seconds, 1e-9), 100*r.OtherCPU/max(r.Seconds, 1e-9), r.Error)
		}
		s.stop()
		time.Sleep(500 * time.Millisecond)
	}
}

func runStream(res *Results, plan Plan) {
	for i, lib := range libs {
		if lib == "raw" {
			continue
		}
		s, err := startServer(lib, "broadcast", *basePort+300+10*i, 2<<30)
		if err != nil {
			log.Printf("%v", err)
			continue
		}
		var r stats.Stream
		if err := load(&r, 2*time.Minute, "-scenario", "stream", "-addr", s.addr, "-pid", strconv.Itoa(s.pid()),
			"-size", strconv.FormatInt(plan.StreamSize, 10)); err != nil {
			r.Error = err.Error()
		}
		res.Stream[lib] = &r
		log.Printf("stream %-8s %s in %.2f s (%.0f MB/s), server peak RSS %.1f MiB %s",
			lib, sizeName(plan.StreamSize), r.Seconds, r.MBPerS, float64(r.PeakRSSKB)/1024, r.Error)
		s.stop()
		time.Sleep(500 * time.Millisecond)
	}
}

// ---- machine ----

func machineLine() string {
	arch, _ := exec.Command("uname", "-m").Output()
	kern, _ := exec.Command("uname", "-r").Output()
	nproc, _ := exec.Command("nproc").Output()
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	memGiB := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		memGiB = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	goVer := runtime.Version()
	if b, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil && len(b) > 0 {
		goVer = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%s · %s, %s cores (%s)%s, Linux %s · %s",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), strings.TrimSpace(string(arch)),
		strings.TrimSpace(string(nproc)), model, memGiB, strings.TrimSpace(string(kern)), goVer)
}

func raiseNoFile() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < rl.Max {
		rl.Cur = rl.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
}
