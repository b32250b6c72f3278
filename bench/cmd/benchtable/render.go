package main

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/wesos/wesos/bench/internal/stats"
)

func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return commas(float64(n), 0) + " " + unit + "s"
}

// commas formats x with d decimals and thousands separators.
func commas(x float64, d int) string {
	s := fmt.Sprintf("%.*f", d, x)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	r := b.String()
	if frac != "" {
		r += "." + frac
	}
	if neg {
		r = "-" + r
	}
	return r
}

// sig formats with about three significant digits.
func sig(x float64) string {
	switch a := math.Abs(x); {
	case a == 0:
		return "0"
	case a >= 1e6:
		return strings.Replace(fmt.Sprintf("%.2fM", x/1e6), ".00M", "M", 1)
	case a >= 1e4:
		return fmt.Sprintf("%.1fk", x/1e3)
	case a >= 1000:
		return commas(x, 0)
	case a >= 100:
		return fmt.Sprintf("%.0f", x)
	case a >= 10:
		return fmt.Sprintf("%.1f", x)
	}
	return fmt.Sprintf("%.2f", x)
}

// metric describes one figure of a table.
type metric struct {
	name   string
	higher bool // higher is better
	format func(float64) string
}

// best returns the best value among the peers (ok false if none).
func best(vals map[string]float64, higher bool) (string, float64, bool) {
	var bl string
	var bv float64
	ok := false
	for _, p := range peers {
		v, has := vals[p]
		if !has || v <= 0 {
			continue
		}
		if !ok || (higher && v > bv) || (!higher && v < bv) {
			bl, bv, ok = p, v, true
		}
	}
	return bl, bv, ok
}

func cell(v float64, has bool, bv float64, bok bool, f func(float64) string, mark string) string {
	if !has {
		return "—"
	}
	s := f(v) + mark
	if bok && bv > 0 {
		s += fmt.Sprintf(" (%.2f×)", v/bv)
	}
	return s
}

// peerCells returns a row's cells: each server's value (with its mark, if
// any) and its ratio to the best peer, then the best peer's name ("—" if no
// peer has a value).
func peerCells(vals map[string]float64, marks map[string]string, m metric) []string {
	return peerCellsOf(wsLibs, vals, marks, m)
}

// peerCellsOf is peerCells for the servers cols.
func peerCellsOf(cols []string, vals map[string]float64, marks map[string]string, m metric) []string {
	bl, bv, bok := best(vals, m.higher)
	cells := make([]string, 0, len(cols)+1)
	for _, lib := range cols {
		v, has := vals[lib]
		cells = append(cells, cell(v, has, bv, bok, m.format, marks[lib]))
	}
	if !bok {
		bl = "—"
	}
	return append(cells, bl)
}

// marksOf returns the marks of a throughput (load-bound, then noise) or of
// another figure (noise only) taken over secs seconds.
func marksOf(throughput bool, load, other, secs float64) string {
	mark := ""
	if throughput {
		mark = loadMark(load, secs)
	}
	return mark + noiseMark(other, secs)
}

func render(res *Results) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	mode := "full"
	if res.Quick {
		mode = "quick"
	}
	w("# wesos benchmark results (%s run)\n\n", mode)
	cmd := *command
	if res.Quick {
		cmd += " -quick"
	}
	w("Command: `%s` (in `bench/`) · %s · took %s", cmd, res.Machine, res.Finished.Sub(res.Started).Round(1e9))
	if res.QuietWaited > 0 {
		w(" (of which %s waiting for other work on the shared machine to end)", res.QuietWaited.Round(1e9))
	}
	w("\n\n")
	w("Each server runs in its own process pinned to core 0 (`taskset -c 0`, so GOMAXPROCS=1); the one load generator, `benchload`, is pinned to core 1. ")
	w("Every figure is followed by its ratio to the **best peer** — the best of gorilla, coder, gobwas and gws on that row (wesos is not a peer of itself). ")
	w("Raw TCP is a naive length-prefixed TCP echo with no WebSocket (a goroutine per connection writes back each read as it arrives): a reference point, not a limit — a server that batches its writes can beat it. It is shown apart and never a peer. ")
	w("Messages are binary; payloads are checked (a header tag and a sample of bytes of every message). See README.md for what each scenario does.\n\n")

	renderSummary(&b, res)
	renderChecks(&b, res)
	if len(res.Echo) > 0 {
		renderEcho(&b, res)
	}
	if len(res.Idle) > 0 {
		renderIdle(&b, res)
	}
	if len(res.Broadcast) > 0 {
		renderBroadcast(&b, res)
	}
	if len(res.Stream) > 0 {
		renderStream(&b, res)
	}
	if len(res.Storm) > 0 {
		renderStorm(&b, res)
	}
	if len(res.DeflateEcho) > 0 || len(res.DeflateBroadcast) > 0 {
		renderDeflate(&b, res)
	}
	renderTargets(&b, res)
	renderErrors(&b, res)
	return b.String()
}

func header(b *strings.Builder, first string, cols []string) {
	fmt.Fprintf(b, "| %s | %s |\n|", first, strings.Join(cols, " | "))
	for range len(cols) + 1 {
		b.WriteString("---|")
	}
	b.WriteString("\n")
}

func renderChecks(b *strings.Builder, res *Results) {
	fmt.Fprintf(b, "## Conformance, checked before timing\n\n")
	fmt.Fprintf(b, "Ping with a 20-byte payload → the pong must echo it; 64 B and 1 MiB binary messages and a 3-fragment message must come back byte for byte (broadcast: to the sender and to another connection).\n\n")
	header(b, "server", []string{"echo", "broadcast"})
	for _, lib := range libs {
		row := []string{}
		for _, m := range []string{"echo", "broadcast"} {
			c := res.Checks[m][lib]
			switch {
			case lib == "raw" && m == "broadcast":
				row = append(row, "n/a")
			case c == nil:
				row = append(row, "not run")
			case c.OK:
				row = append(row, "✓ "+strings.Join(c.Notes, "; "))
			default:
				row = append(row, "✗ "+c.Error)
			}
		}
		fmt.Fprintf(b, "| %s | %s |\n", lib, strings.Join(row, " | "))
	}
	b.WriteString("\n")
}

func loadMark(load, secs float64) string {
	if secs > 0 && load/secs >= 0.9 {
		return "†"
	}
	return ""
}

// noiseMark flags a figure taken while other work on the machine used more
// than a quarter of a core.
func noiseMark(other, secs float64) string {
	if secs > 0 && other/secs > 0.25 {
		return "‡"
	}
	return ""
}

func renderEcho(b *strings.Builder, res *Results) {
	fmt.Fprintf(b, "## Echo\n\n")
	fmt.Fprintf(b, "Closed loop: each connection keeps *N* messages in flight (every reply releases the next). Warm-up %v, then %v measured (5 s after 2 s of warm-up where a GiB is in flight). ",
		res.Plan.Warm, res.Plan.Dur)
	fmt.Fprintf(b, "The window shrinks so that connections × window × size stays ≤ %s (the *eff.* column); a row whose effective window equals another's repeats that measurement. ", sizeName(res.Plan.MaxBytes))
	fmt.Fprintf(b, "† marks a figure taken while the load generator's core was ≥ 90%% busy: there the load generator, not the server, bounded throughput, and **server CPU per message** is the figure that separates servers. ‡ marks a figure taken while other work on the (shared) machine used more than a quarter of a core: treat it with caution. Before each measurement the run waits (up to %v) for the machine to be quiet.\n\n", *quietWait)
	metrics := []struct {
		metric
		get func(*stats.Echo) float64
		tp  bool // a throughput (load-bound mark applies)
	}{
		{metric{"Replies per second (higher is better)", true, sig}, func(e *stats.Echo) float64 { return e.RepliesPerS }, true},
		{metric{"MB/s of echoed payload, one direction (10⁶ B/s; higher is better)", true, sig}, func(e *stats.Echo) float64 { return e.MBPerS }, true},
		{metric{"Server CPU time per message, µs (user+system of the server process ÷ replies; lower is better)", false, sig}, func(e *stats.Echo) float64 { return e.CPUusPerMsg }, false},
		{metric{"Round trip p50, µs (lower is better)", false, sig}, func(e *stats.Echo) float64 { return e.P50us }, false},
		{metric{"Round trip p99, µs (lower is better)", false, sig}, func(e *stats.Echo) float64 { return e.P99us }, false},
	}
	cols := append([]string{"eff."}, wsLibs...)
	cols = append(cols, "best peer", "raw TCP echo (naive)", "wesos ÷ raw")
	for _, m := range metrics {
		fmt.Fprintf(b, "### %s\n\n", m.name)
		header(b, "connections × size × in flight", cols)
		for _, k := range res.EchoOrder {
			row := res.Echo[k.String()]
			if row == nil {
				continue
			}
			vals, marks := map[string]float64{}, map[string]string{}
			for lib, e := range row {
				if e != nil && e.Error == "" {
					vals[lib] = m.get(e)
					marks[lib] = marksOf(m.tp, e.LoadCPU, e.OtherCPU, e.Seconds)
				}
			}
			cells := append([]string{fmt.Sprint(res.EchoEff[k.String()])}, peerCells(vals, marks, m.metric)...)
			rv, rhas := vals["raw"]
			cells = append(cells, cell(rv, rhas, 0, false, m.format, marks["raw"]))
			if wv, ok := vals["wesos"]; ok && rhas && rv > 0 {
				cells = append(cells, fmt.Sprintf("%.2f", wv/rv))
			} else {
				cells = append(cells, "—")
			}
			fmt.Fprintf(b, "| %s | %s |\n", k, strings.Join(cells, " | "))
		}
		b.WriteString("\n")
	}
}

func renderIdle(b *strings.Builder, res *Results) {
	fmt.Fprintf(b, "## Idle connections\n\n")
	fmt.Fprintf(b, "Each connection is opened, echoes one 16 B message, then stays idle; after %s the server's VmRSS growth over its baseline is divided by the connections, then /debug runs a GC and reports HeapInuse+StackInuse and goroutines. Both processes raise their soft open-file limit to the hard one (20,000 here); the largest count leaves room for the processes' other descriptors. Lower is better.\n\n", "2 s")
	cols := append([]string{}, wsLibs...)
	cols = append(cols, "best peer")
	header(b, "per connection", cols)
	for pi, target := range res.Plan.IdleCounts {
		type row struct {
			name   string
			get    func(p stats.IdlePoint) float64
			format func(float64) string
		}
		reached := map[string]int{}
		rows := []row{
			{"RSS growth", func(p stats.IdlePoint) float64 { return p.RSSPerConnB / 1024 }, func(x float64) string { return fmt.Sprintf("%.1f KiB", x) }},
			{"heap+stacks after GC", func(p stats.IdlePoint) float64 { return p.HeapStackPerConnB / 1024 }, func(x float64) string { return fmt.Sprintf("%.1f KiB", x) }},
			{"goroutines", func(p stats.IdlePoint) float64 { return p.GoroutinesPerConn }, func(x float64) string { return fmt.Sprintf("%.2f", x) }},
		}
		for _, r := range rows {
			vals := map[string]float64{}
			for lib, id := range res.Idle {
				if id != nil && pi < len(id.Points) {
					vals[lib] = r.get(id.Points[pi])
					reached[lib] = id.Points[pi].Conns
				}
			}
			cells := peerCells(vals, nil, metric{r.name, false, r.format})
			fmt.Fprintf(b, "| %s at %s | %s |\n", r.name, plural(target, "conn"), strings.Join(cells, " | "))
		}
		var short []string
		for _, lib := range wsLibs {
			if n, ok := reached[lib]; ok && n < target {
				short = append(short, fmt.Sprintf("%s reached %s", lib, commas(float64(n), 0)))
			}
		}
		if len(short) > 0 {
			fmt.Fprintf(b, "| (at %s: %s) |%s\n", commas(float64(target), 0), strings.Join(short, ", "), strings.Repeat(" |", len(cols)))
		}
	}
	b.WriteString("\n")
}

func renderBroadcast(b *strings.Builder, res *Results) {
	p := res.Plan
	fmt.Fprintf(b, "## Broadcast to %s subscribers\n\n", commas(float64(p.Subs), 0))
	fmt.Fprintf(b, "One publisher connection sends %d B messages to the broadcast server, which relays each to every connection (the %s subscribers and the publisher). The publisher keeps %d messages in flight, a message counting as done when every subscriber has it; latency is publish → receipt at each subscriber (timestamp inside the message). Warm-up %v, %v measured; server CPU is divided by subscriber deliveries.\n\n",
		p.BcastSize, commas(float64(p.Subs), 0), p.Window, p.Warm, p.Dur)
	broadcastTable(b, res.Broadcast, wsLibs)
}

// broadcastTable writes the table of a broadcast scenario: a row per
// metric, a column per server of libs and the best peer.
func broadcastTable(b *strings.Builder, results map[string]*stats.Broadcast, libs []string) {
	header(b, "", append(slices.Clone(libs), "best peer"))
	rows := []struct {
		metric
		get func(*stats.Broadcast) float64
		tp  bool
	}{
		{metric{"deliveries/s (higher is better)", true, sig}, func(r *stats.Broadcast) float64 { return r.DeliveriesPerS }, true},
		{metric{"server CPU per delivery, µs (lower is better)", false, sig}, func(r *stats.Broadcast) float64 { return r.CPUusPerDelivery }, false},
		{metric{"publish → receipt p50, µs", false, sig}, func(r *stats.Broadcast) float64 { return r.P50us }, false},
		{metric{"publish → receipt p99, µs", false, sig}, func(r *stats.Broadcast) float64 { return r.P99us }, false},
	}
	for _, r := range rows {
		vals, marks := map[string]float64{}, map[string]string{}
		for lib, x := range results {
			if x != nil && x.Error == "" {
				vals[lib] = r.get(x)
				marks[lib] = marksOf(r.tp, x.LoadCPU, x.OtherCPU, x.Seconds)
			}
		}
		fmt.Fprintf(b, "| %s | %s |\n", r.name, strings.Join(peerCellsOf(libs, vals, marks, r.metric), " | "))
	}
	b.WriteString("\n")
}

var streamHow = map[string]string{
	"wesos":   "streams: `Server.Send` relays each frame as it arrives",
	"gorilla": "buffers: `ReadMessage` reads the whole message, then `PreparedMessage`",
	"coder":   "buffers: `Read` reads the whole message, then `Write` per subscriber",
	"gobwas":  "buffers: `wsutil.ReadClientData`, then `ws.CompileFrame` once",
	"gws":     "buffers: `OnMessage` gets the whole message, then `Broadcaster`",
}

func renderStream(b *strings.Builder, res *Results) {
	fmt.Fprintf(b, "## Streaming relay of one %s message\n\n", sizeName(res.Plan.StreamSize))
	fmt.Fprintf(b, "A publisher sends one %s message (a single frame) to the broadcast server; a subscriber and the publisher receive it (every byte range sampled). The peers' broadcast servers, written the way their own examples write them, read each message whole before relaying it, so they are measured that way (their read limit raised to 2 GiB). gorilla's NextReader/NextWriter and coder's Reader/Writer can stream one message to one receiver; what the table compares is a streamed message fanned out (wesos's Server.Send) with broadcast servers that buffer whole messages. Peak RSS is the server's VmHWM (a fresh process per server).\n\n", sizeName(res.Plan.StreamSize))
	cols := append([]string{}, wsLibs...)
	cols = append(cols, "best peer")
	header(b, "", cols)
	rows := []struct {
		metric
		get func(*stats.Stream) float64
	}{
		{metric{"server peak RSS, MiB (lower is better)", false, func(x float64) string { return fmt.Sprintf("%.0f", x) }}, func(r *stats.Stream) float64 { return float64(r.PeakRSSKB) / 1024 }},
		{metric{"relay time, s (lower is better)", false, func(x float64) string { return fmt.Sprintf("%.2f", x) }}, func(r *stats.Stream) float64 { return r.Seconds }},
	}
	for _, r := range rows {
		vals := map[string]float64{}
		for lib, x := range res.Stream {
			if x != nil && x.Error == "" {
				vals[lib] = r.get(x)
			}
		}
		fmt.Fprintf(b, "| %s | %s |\n", r.name, strings.Join(peerCells(vals, nil, r.metric), " | "))
	}
	var how []string
	for _, lib := range wsLibs {
		how = append(how, streamHow[lib])
	}
	fmt.Fprintf(b, "| how | %s | |\n\n", strings.Join(how, " | "))
}

// ratioRow computes wesos ÷ best peer for an echo metric.
func echoRatio(res *Results, k EchoKey, get func(*stats.Echo) float64, higher bool) (float64, bool) {
	row := res.Echo[k.String()]
	if row == nil || row["wesos"] == nil || row["wesos"].Error != "" {
		return 0, false
	}
	vals := map[string]float64{}
	for lib, e := range row {
		if e != nil && e.Error == "" {
			vals[lib] = get(e)
		}
	}
	_, bv, ok := best(vals, higher)
	if !ok {
		return 0, false
	}
	return vals["wesos"] / bv, true
}

func renderTargets(b *strings.Builder, res *Results) {
	fmt.Fprintf(b, "## wesos against its performance targets\n\n")
	header(b, "target", []string{"measured (wesos ÷ best peer unless said)", "met"})
	yes := func(ok bool) string {
		if ok {
			return "✓"
		}
		return "✗"
	}
	type agg struct {
		name  string
		sizes func(int64) bool
		get   func(*stats.Echo) float64
		hi    bool
		pass  func(float64) bool
	}
	small := func(s int64) bool { return s <= 1<<10 }
	large := func(s int64) bool { return s >= 64<<10 }
	aggs := []agg{
		{"small messages (16 B, 1 KiB): server CPU/message ≤ 0.5×", small, func(e *stats.Echo) float64 { return e.CPUusPerMsg }, false, func(r float64) bool { return r <= 0.5 }},
		{"small messages: replies/s ≥ 1.0×", small, func(e *stats.Echo) float64 { return e.RepliesPerS }, true, func(r float64) bool { return r >= 1.0 }},
		{"large messages (64 KiB, 1 MiB): MB/s ≥ 1.25×", large, func(e *stats.Echo) float64 { return e.MBPerS }, true, func(r float64) bool { return r >= 1.25 }},
	}
	for _, a := range aggs {
		var rs []string
		met, n := 0, 0
		for _, k := range res.EchoOrder {
			if !a.sizes(k.Size) {
				continue
			}
			r, ok := echoRatio(res, k, a.get, a.hi)
			if !ok {
				continue
			}
			n++
			if a.pass(r) {
				met++
			}
			rs = append(rs, fmt.Sprintf("%s: %.2f", k, r))
		}
		if n > 0 {
			fmt.Fprintf(b, "| %s | %s | %s %d of %d rows |\n", a.name, strings.Join(rs, "; "), yes(met == n), met, n)
		}
	}
	// Large within 70% of raw.
	{
		var rs []string
		met, n := 0, 0
		for _, k := range res.EchoOrder {
			row := res.Echo[k.String()]
			if !large(k.Size) || row == nil || row["wesos"] == nil || row["raw"] == nil || row["raw"].MBPerS == 0 || row["wesos"].Error != "" {
				continue
			}
			r := row["wesos"].MBPerS / row["raw"].MBPerS
			n++
			if r >= 0.7 {
				met++
			}
			rs = append(rs, fmt.Sprintf("%s: %.2f", k, r))
		}
		if n > 0 {
			fmt.Fprintf(b, "| large messages: MB/s ≥ 0.7× the naive raw TCP echo (wesos ÷ raw) | %s | %s %d of %d rows |\n", strings.Join(rs, "; "), yes(met == n), met, n)
		}
	}
	if len(res.Idle) > 0 && len(res.Plan.IdleCounts) > 0 {
		vals := map[string]float64{}
		for lib, id := range res.Idle {
			if id != nil && len(id.Points) > 0 {
				vals[lib] = id.Points[0].RSSPerConnB
			}
		}
		// On its own listener wesos must hold 0.75× the best peer's
		// memory per idle connection, through net/http no more than it.
		for _, t := range []struct {
			who, suffix string
			max         float64
		}{{"wesos-raw", " (wesos-raw, Server.Serve)", 0.75}, {"wesos", " (wesos through net/http)", 1.0}} {
			if _, bv, ok := best(vals, false); ok && vals[t.who] > 0 {
				r := vals[t.who] / bv
				fmt.Fprintf(b, "| idle: RSS per connection at %s ≤ %.2g×%s | %.2f (%.1f KiB vs %.1f KiB) | %s |\n",
					plural(res.Plan.IdleCounts[0], "conn"), t.max, t.suffix, r, vals[t.who]/1024, bv/1024, yes(r <= t.max))
			}
		}
	}
	if w := res.Broadcast["wesos"]; w != nil && w.Error == "" {
		d, c := map[string]float64{}, map[string]float64{}
		for lib, x := range res.Broadcast {
			if x != nil && x.Error == "" {
				d[lib], c[lib] = x.DeliveriesPerS, x.CPUusPerDelivery
			}
		}
		if _, bv, ok := best(d, true); ok {
			fmt.Fprintf(b, "| broadcast: deliveries/s ≥ 1.5× | %.2f | %s |\n", w.DeliveriesPerS/bv, yes(w.DeliveriesPerS/bv >= 1.5))
		}
		if _, bv, ok := best(c, false); ok {
			fmt.Fprintf(b, "| broadcast: server CPU per delivery ≤ 0.5× | %.2f | %s |\n", w.CPUusPerDelivery/bv, yes(w.CPUusPerDelivery/bv <= 0.5))
		}
	}
	if s := res.Stream["wesos"]; s != nil && s.Error == "" {
		mib := float64(s.PeakRSSKB) / 1024
		fmt.Fprintf(b, "| streaming relay of %s: server peak RSS ≤ 64 MiB (absolute) | %.0f MiB | %s |\n", sizeName(res.Plan.StreamSize), mib, yes(mib <= 64))
	}
	targetsStormDeflate(b, res, yes)
	b.WriteString("\n")
}

func renderErrors(b *strings.Builder, res *Results) {
	var errs []string
	for _, k := range res.EchoOrder {
		for lib, e := range res.Echo[k.String()] {
			if e != nil && e.Error != "" {
				errs = append(errs, fmt.Sprintf("echo %s, %s: %s", k, lib, e.Error))
			}
			if e != nil && e.Error == "" && e.Starved > 0 {
				errs = append(errs, fmt.Sprintf("echo %s, %s: %d of %d connections got no reply during the measurement (starved or stalled; the figures stand)", k, lib, e.Starved, k.Conns))
			}
		}
	}
	for lib, x := range res.Idle {
		if x != nil && x.Error != "" {
			errs = append(errs, fmt.Sprintf("idle, %s: %s", lib, x.Error))
		}
	}
	for lib, x := range res.Broadcast {
		if x != nil && x.Error != "" {
			errs = append(errs, fmt.Sprintf("broadcast, %s: %s", lib, x.Error))
		}
	}
	for lib, x := range res.Stream {
		if x != nil && x.Error != "" {
			errs = append(errs, fmt.Sprintf("stream, %s: %s", lib, x.Error))
		}
	}
	if len(errs) == 0 {
		return
	}
	sort.Strings(errs)
	errs = dedupe(errs)
	fmt.Fprintf(b, "## Errors and warnings (cells with errors are left out)\n\n")
	for _, e := range errs {
		fmt.Fprintf(b, "- %s\n", e)
	}
	b.WriteString("\n")
}

func dedupe(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// renderSummary writes the table the README shows: every echo row (replies/s
// for small messages, MB/s for large ones), then idle memory, broadcast and
// the streaming relay, each with the best peer, wesos's ratios and what
// limits the row. Nothing is left out: a row wesos loses is shown as one
// that it wins.
func renderSummary(b *strings.Builder, res *Results) {
	fmt.Fprintf(b, "## Summary: every row\n\n")
	b.WriteString(summaryTable(res))
	b.WriteString("\n")
}

// readmeBlock is what -readme puts between the README's markers: the run's
// command and machine, then the summary table.
func readmeBlock(res *Results) string {
	return fmt.Sprintf("`cd bench && ./run.sh` · %s · took %s\n\n%s", res.Machine, res.Finished.Sub(res.Started).Round(1e9), summaryTable(res))
}

// summaryTable returns the summary table with its legend.
func summaryTable(res *Results) string {
	var b strings.Builder
	header(&b, "scenario", []string{"wesos", "best peer", "wesos ÷ best peer", "server CPU per message, wesos ÷ best peer", "naive raw TCP echo", "notes"})
	row := func(cells ...string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	marks := func(load, other, secs float64, tp bool) string {
		m := ""
		if tp {
			m = loadMark(load, secs)
		}
		return m + noiseMark(other, secs)
	}
	for i, k := range res.EchoOrder {
		r := res.Echo[k.String()]
		if r == nil {
			continue
		}
		get, name := func(e *stats.Echo) float64 { return e.RepliesPerS }, "replies/s"
		if k.Size > 1<<10 {
			get, name = func(e *stats.Echo) float64 { return e.MBPerS }, "MB/s"
		}
		ok := func(lib string) bool { return r[lib] != nil && r[lib].Error == "" }
		vals, cpu := map[string]float64{}, map[string]float64{}
		for lib := range r {
			if ok(lib) {
				vals[lib], cpu[lib] = get(r[lib]), r[lib].CPUusPerMsg
			}
		}
		scenario := fmt.Sprintf("echo %s, %s", k, name)
		w, bl, bv := "—", "—", ""
		ratio, cpuRatio, raw := "—", "—", "—"
		bestLib, bestV, bok := best(vals, true)
		_, bestCPU, cok := best(cpu, false)
		if ok("wesos") {
			e := r["wesos"]
			w = sig(vals["wesos"]) + marks(e.LoadCPU, e.OtherCPU, e.Seconds, true)
			if bok {
				ratio = fmt.Sprintf("%.2f×", vals["wesos"]/bestV)
			}
			if cok {
				cpuRatio = fmt.Sprintf("%.2f× (%s vs %s µs)", cpu["wesos"]/bestCPU, sig(cpu["wesos"]), sig(bestCPU))
			}
		}
		if bok {
			e := r[bestLib]
			bl = bestLib
			bv = " " + sig(bestV) + marks(e.LoadCPU, e.OtherCPU, e.Seconds, true)
		}
		if ok("raw") {
			e := r["raw"]
			raw = sig(vals["raw"]) + marks(e.LoadCPU, e.OtherCPU, e.Seconds, true)
		}
		var notes []string
		if eff := res.EchoEff[k.String()]; eff != k.Inflight {
			notes = append(notes, fmt.Sprintf("%d in flight (the %s cap)", eff, sizeName(res.Plan.MaxBytes)))
		}
		for _, p := range res.EchoOrder[:i] {
			if p.Conns == k.Conns && p.Size == k.Size && res.EchoEff[p.String()] == res.EchoEff[k.String()] {
				notes = append(notes, "the same measurement as "+p.String())
				break
			}
		}
		var starved []string
		for _, lib := range libs {
			if ok(lib) && r[lib].Starved > 0 {
				starved = append(starved, fmt.Sprintf("%s %s", lib, commas(float64(r[lib].Starved), 0)))
			}
		}
		if len(starved) > 0 {
			notes = append(notes, fmt.Sprintf("**starved** (connections of %s with no reply while measured): %s", commas(float64(k.Conns), 0), strings.Join(starved, ", ")))
		}
		row(scenario, w, bl+bv, ratio, cpuRatio, raw, strings.Join(notes, "; "))
	}
	for pi, target := range res.Plan.IdleCounts {
		for _, m := range []struct {
			name string
			get  func(stats.IdlePoint) float64
		}{
			{"RSS growth", func(p stats.IdlePoint) float64 { return p.RSSPerConnB }},
			{"heap+stacks after GC", func(p stats.IdlePoint) float64 { return p.HeapStackPerConnB }},
		} {
			vals := map[string]float64{}
			short := ""
			for lib, id := range res.Idle {
				if id != nil && id.Error == "" && pi < len(id.Points) {
					vals[lib] = m.get(id.Points[pi])
					if n := id.Points[pi].Conns; n < target {
						short += fmt.Sprintf("%s reached %s connections; ", lib, commas(float64(n), 0))
					}
				}
			}
			bl, bv, bok := best(vals, false)
			w, ratio, bcell := "—", "—", "—"
			if v, has := vals["wesos"]; has {
				w = fmt.Sprintf("%.1f KiB", v/1024)
				if bok {
					ratio = fmt.Sprintf("%.2f× (lower is better)", v/bv)
				}
			}
			if bok {
				bcell = fmt.Sprintf("%s %.1f KiB", bl, bv/1024)
			}
			row(fmt.Sprintf("idle connection, %s at %s", m.name, commas(float64(target), 0)), w, bcell, ratio, "", "", strings.TrimSuffix(short, "; "))
		}
	}
	if x := res.Broadcast["wesos"]; x != nil && x.Error == "" {
		d, c := map[string]float64{}, map[string]float64{}
		for lib, r := range res.Broadcast {
			if r != nil && r.Error == "" {
				d[lib], c[lib] = r.DeliveriesPerS, r.CPUusPerDelivery
			}
		}
		subs := commas(float64(res.Plan.Subs), 0)
		if bl, bv, ok := best(d, true); ok {
			p := res.Broadcast[bl]
			cr := "—"
			if _, bc, ok := best(c, false); ok {
				cr = fmt.Sprintf("%.2f× (%s vs %s µs per delivery)", x.CPUusPerDelivery/bc, sig(x.CPUusPerDelivery), sig(bc))
			}
			row("broadcast to "+subs+" subscribers, deliveries/s",
				sig(x.DeliveriesPerS)+marks(x.LoadCPU, x.OtherCPU, x.Seconds, true),
				bl+" "+sig(bv)+marks(p.LoadCPU, p.OtherCPU, p.Seconds, true),
				fmt.Sprintf("%.2f×", x.DeliveriesPerS/bv), cr, "", "")
		}
	}
	if x := res.Stream["wesos"]; x != nil && x.Error == "" {
		rss, secs := map[string]float64{}, map[string]float64{}
		for lib, r := range res.Stream {
			if r != nil && r.Error == "" {
				rss[lib], secs[lib] = float64(r.PeakRSSKB)/1024, r.Seconds
			}
		}
		size := sizeName(res.Plan.StreamSize)
		note := "wesos streams each frame to the receivers as it arrives; the peers' broadcast servers buffer whole messages (see the relay section)"
		if bl, bv, ok := best(rss, false); ok {
			row("relay of one "+size+" message to 2 receivers, server peak RSS", fmt.Sprintf("%.0f MiB", rss["wesos"]), fmt.Sprintf("%s %.0f MiB", bl, bv), fmt.Sprintf("%.2f×", rss["wesos"]/bv), "", "", note)
		}
		if bl, bv, ok := best(secs, false); ok {
			row("relay of one "+size+" message, seconds", fmt.Sprintf("%.2f s", secs["wesos"]), fmt.Sprintf("%s %.2f s", bl, bv), fmt.Sprintf("%.2f×", secs["wesos"]/bv), "", "", "")
		}
	}
	summaryStormDeflate(res, row, marks)
	b.WriteString("\n† the load generator's core was ≥ 90% busy: the load generator, not the server, bounded that figure, and server CPU per message is what separates the servers. ‡ other work on the shared machine used more than a quarter of a core during that figure. **starved**: some connections got no reply during the measurement, so the figure is the throughput of the connections that were served. The naive raw TCP echo is a reference point, not a limit.\n")
	return b.String()
}
