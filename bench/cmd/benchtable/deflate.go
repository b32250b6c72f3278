package main

import (
	"fmt"
	"log"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
	"github.com/wesos/wesos/bench/internal/wsclient"
)

// runDeflate measures the compressed scenarios: the echo rows on one
// compressing echo server per library (the order rotating from row to row,
// as in the echo grid), then the compressed broadcast on a fresh broadcast
// server each.
func runDeflate(res *Results, plan Plan) {
	warm := deflateWarm(plan)
	var keys []EchoKey
	for _, e := range plan.DeflateEcho {
		keys = append(keys, EchoKey{int(e[0]), e[1], int(e[2])})
	}
	res.DeflateOrder = keys
	srv := map[string]*server{}
	defer func() {
		for _, s := range srv {
			s.stop()
		}
	}()
	for i, lib := range deflateLibs {
		s, err := startServer(lib, "echo", *basePort+500+10*i, 64<<20, "-compress")
		if err != nil {
			log.Printf("%v", err)
			continue
		}
		srv[lib] = s
	}
	for si, k := range keys {
		res.DeflateEcho[k.String()] = map[string]*stats.Echo{}
		for j := range deflateLibs {
			lib := deflateLibs[(si+j)%len(deflateLibs)]
			s := srv[lib]
			if s == nil {
				continue
			}
			var e stats.Echo
			if err := load(&e, warm+plan.Dur+60*time.Second, "-scenario", "echo", "-deflate", "-addr", s.addr,
				"-pid", strconv.Itoa(s.pid()), "-conns", strconv.Itoa(k.Conns), "-size", strconv.FormatInt(k.Size, 10),
				"-inflight", strconv.Itoa(k.Inflight), "-maxinflightbytes", strconv.FormatInt(plan.MaxBytes, 10),
				"-warm", warm.String(), "-dur", plan.Dur.String()); err != nil {
				e.Error = err.Error()
			}
			res.DeflateEcho[k.String()][lib] = &e
			log.Printf("deflate echo %-26s %-8s %9.0f msgs/s %8.1f MB/s  %8.2f µs CPU/msg  %6.0f B/reply on the wire  load %.0f%%  other %.0f%%  %s",
				k, lib, e.RepliesPerS, e.MBPerS, e.CPUusPerMsg, float64(e.WireBytes)/float64(max(e.Replies, 1)),
				100*e.LoadCPU/max(e.Seconds, 1e-9), 100*e.OtherCPU/max(e.Seconds, 1e-9), e.Error)
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, s := range srv {
		s.stop()
	}
	srv = nil
	for i, lib := range deflateLibs {
		s, err := startServer(lib, "broadcast", *basePort+600+10*i, 64<<20, "-compress")
		if err != nil {
			log.Printf("%v", err)
			continue
		}
		var r stats.Broadcast
		if err := load(&r, warm+plan.Dur+2*time.Minute, "-scenario", "broadcast", "-deflate", "-addr", s.addr,
			"-pid", strconv.Itoa(s.pid()), "-subs", strconv.Itoa(plan.DeflateSubs), "-size", strconv.Itoa(plan.DeflateSize),
			"-window", strconv.Itoa(plan.DeflateWindow), "-warm", warm.String(), "-dur", plan.Dur.String()); err != nil {
			r.Error = err.Error()
		}
		res.DeflateBroadcast[lib] = &r
		log.Printf("deflate broadcast %-8s %10.0f deliveries/s  %6.2f µs CPU/delivery  %5.0f B/delivery on the wire  load %.0f%%  other %.0f%%  %s",
			lib, r.DeliveriesPerS, r.CPUusPerDelivery, float64(r.WireBytes)/float64(max(r.Deliveries, 1)),
			100*r.LoadCPU/max(r.Seconds, 1e-9), 100*r.OtherCPU/max(r.Seconds, 1e-9), r.Error)
		s.stop()
		time.Sleep(500 * time.Millisecond)
	}
}

// deflateWarm is the compressed scenarios' warm-up: at least a second,
// since the first message of each connection allocates its (de)compressors
// in some libraries (a compressor is about 1 MB), which is no steady state.
func deflateWarm(plan Plan) time.Duration { return max(plan.Warm, time.Second) }

// deflateHow says how each server is configured for compression.
var deflateHow = map[string]string{
	"wesos":           "`AcceptOptions.Compression: &CompressionOptions{}`: no context takeover, flate.BestSpeed (compress/flate), messages under 256 B sent plain; text is checked as UTF-8 as it streams; a relayed message of one frame keeps the compressed bytes it came with (inflated to check it, not deflated again)",
	"wesos+klauspost": "as wesos, with `Flate: kflate.Flate{}`: klauspost/compress at BestSpeed (the kflate module)",
	"gorilla":         "`Upgrader.EnableCompression`: no context takeover (its only mode), level 1 (compress/flate), every message compressed; broadcast through `PreparedMessage`",
	"coder":           "`CompressionNoContextTakeover`: flate.BestSpeed (compress/flate), messages under 512 B sent plain; broadcast compresses per subscriber",
	"gobwas":          "`wsflate.Extension{Parameters: wsflate.DefaultParameters}` (no context takeover), compress/flate at BestSpeed (its README's helper uses level 9), every message compressed; broadcast compresses once",
	"gws":             "`PermessageDeflate{Enabled: true}`: no context takeover, BestSpeed with klauspost/compress, messages under 512 B sent plain; broadcast through `Broadcaster` (compresses once)",
}

func renderDeflate(b *strings.Builder, res *Results) {
	p := res.Plan
	fmt.Fprintf(b, "## Compressed traffic (permessage-deflate)\n\n")
	fmt.Fprintf(b, "Text messages of generated JSON (event records: names, rooms, timestamps, words; the same records in every message, from a fixed seed), sent compressed as a browser sends them. The client offers `%s`: no context takeover in either direction, which every server supports (gorilla supports nothing else), so each message is compressed on its own and the comparison uses the same mode everywhere. ", wsclient.DeflateOffer)
	fmt.Fprintf(b, "The client writes each message as a stored deflate block for its head (timestamp, check tag, sequence) and a body compressed once at flate.BestSpeed; it inflates every reply and compares every byte. Every server compresses at flate.BestSpeed (how each is configured, and the sizes it sent, are in the last table). Only wesos checks text as UTF-8. ")
	fmt.Fprintf(b, "MB/s counts uncompressed JSON, one direction. Warm-up %v (the first message of a connection allocates its compressor in some libraries), %v measured; † and ‡ as in the echo tables.\n\n", deflateWarm(p), p.Dur)

	if len(res.DeflateEcho) > 0 {
		metrics := []struct {
			metric
			get func(*stats.Echo) float64
			tp  bool
		}{
			{metric{"MB/s of JSON echoed, one direction (10⁶ B/s; higher is better)", true, sig}, func(e *stats.Echo) float64 { return e.MBPerS }, true},
			{metric{"Messages per second (higher is better)", true, sig}, func(e *stats.Echo) float64 { return e.RepliesPerS }, true},
			{metric{"Server CPU time per message, µs (inflate, deflate if the server compresses again, echo; lower is better)", false, sig}, func(e *stats.Echo) float64 { return e.CPUusPerMsg }, false},
			{metric{"Round trip p50, µs (lower is better)", false, sig}, func(e *stats.Echo) float64 { return e.P50us }, false},
			{metric{"Round trip p99, µs (lower is better)", false, sig}, func(e *stats.Echo) float64 { return e.P99us }, false},
		}
		cols := append(slices.Clone(deflateLibs), "best peer")
		for _, m := range metrics {
			fmt.Fprintf(b, "### Compressed echo: %s\n\n", m.name)
			header(b, "connections × size × in flight", cols)
			for _, k := range res.DeflateOrder {
				row := res.DeflateEcho[k.String()]
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
				fmt.Fprintf(b, "| %s | %s |\n", k, strings.Join(peerCellsOf(deflateLibs, vals, marks, m.metric), " | "))
			}
			b.WriteString("\n")
		}
	}

	if len(res.DeflateBroadcast) > 0 {
		fmt.Fprintf(b, "### Compressed broadcast to %s subscribers\n\n", commas(float64(p.DeflateSubs), 0))
		fmt.Fprintf(b, "As the broadcast above, with %s JSON messages sent compressed and every server relaying it compressed (wesos with the bytes it received; the others compress it again); %d in flight. Receivers verify each delivery whole (a payload byte-identical to one already inflated and checked is not inflated again). Server CPU is divided by subscriber deliveries.\n\n",
			sizeName(int64(p.DeflateSize)), p.DeflateWindow)
		broadcastTable(b, res.DeflateBroadcast, deflateLibs)
	}

	// What each server negotiated and sent.
	fmt.Fprintf(b, "### What each server negotiated and sent\n\n")
	sizes := map[int64]bool{}
	for _, k := range res.DeflateOrder {
		sizes[k.Size] = true
	}
	cols := []string{"configuration", "answer (Sec-WebSocket-Extensions)"}
	var sizeList []int64
	for _, k := range res.DeflateOrder {
		if sizes[k.Size] {
			sizeList = append(sizeList, k.Size)
			sizes[k.Size] = false
			cols = append(cols, fmt.Sprintf("echo reply of %s, bytes on the wire", sizeName(k.Size)))
		}
	}
	if len(res.DeflateBroadcast) > 0 {
		cols = append(cols, fmt.Sprintf("broadcast delivery of %s, bytes on the wire", sizeName(int64(p.DeflateSize))))
	}
	header(b, "server", cols)
	var warn []string
	for _, lib := range deflateLibs {
		ext := ""
		cells := []string{deflateHow[lib]}
		var sizeCells []string
		for _, size := range sizeList {
			var wire, n, comp int64
			for _, k := range res.DeflateOrder {
				if e := res.DeflateEcho[k.String()][lib]; k.Size == size && e != nil && e.Error == "" {
					wire, n, comp = wire+e.WireBytes, n+e.Replies, comp+e.CompressedReplies
					if ext == "" {
						ext = e.Extensions
					}
				}
			}
			if n == 0 {
				sizeCells = append(sizeCells, "—")
				continue
			}
			sizeCells = append(sizeCells, fmt.Sprintf("%s (%.1f×)", commas(float64(wire)/float64(n), 0), float64(size)*float64(n)/float64(max(wire, 1))))
			if comp < n {
				warn = append(warn, fmt.Sprintf("compressed echo of %s, %s: %d of %d replies came uncompressed", sizeName(size), lib, n-comp, n))
			}
		}
		if x := res.DeflateBroadcast[lib]; len(res.DeflateBroadcast) > 0 {
			if x != nil && x.Error == "" && x.Deliveries > 0 {
				sizeCells = append(sizeCells, fmt.Sprintf("%s (%.1f×)", commas(float64(x.WireBytes)/float64(x.Deliveries), 0), float64(p.DeflateSize)*float64(x.Deliveries)/float64(max(x.WireBytes, 1))))
				if x.CompressedDeliveries < x.Deliveries {
					warn = append(warn, fmt.Sprintf("compressed broadcast, %s: %d of %d deliveries came uncompressed", lib, x.Deliveries-x.CompressedDeliveries, x.Deliveries))
				}
				if ext == "" {
					ext = x.Extensions
				}
			} else {
				sizeCells = append(sizeCells, "—")
			}
		}
		if ext == "" {
			ext = "—"
		} else {
			ext = "`" + ext + "`"
		}
		cells = append(cells, ext)
		cells = append(cells, sizeCells...)
		fmt.Fprintf(b, "| %s | %s |\n", lib, strings.Join(cells, " | "))
	}
	b.WriteString("\n")
	for _, k := range res.DeflateOrder {
		for _, lib := range deflateLibs {
			e := res.DeflateEcho[k.String()][lib]
			switch {
			case e == nil:
			case e.Error != "":
				warn = append(warn, fmt.Sprintf("compressed echo %s, %s: %s", k, lib, e.Error))
			case e.Starved > 0:
				warn = append(warn, fmt.Sprintf("compressed echo %s, %s: %d of %d connections got no reply during the measurement", k, lib, e.Starved, k.Conns))
			}
		}
	}
	for _, lib := range deflateLibs {
		if x := res.DeflateBroadcast[lib]; x != nil && x.Error != "" {
			warn = append(warn, fmt.Sprintf("compressed broadcast, %s: %s", lib, x.Error))
		}
	}
	for _, w := range warn {
		fmt.Fprintf(b, "- %s\n", w)
	}
	if len(warn) > 0 {
		b.WriteString("\n")
	}
}

// targetsStormDeflate adds the targets of the handshake storm and the
// compressed scenarios to the targets table (wesos ÷ best peer).
func targetsStormDeflate(b *strings.Builder, res *Results, yes func(bool) string) {
	hs, cpu, rss := map[string]float64{}, map[string]float64{}, map[string]float64{}
	for lib, r := range res.Storm {
		if m, ok := medianRound(r); ok {
			hs[lib], cpu[lib], rss[lib] = m.HandshakesPerS, m.CPUusPerHandshake, float64(r.PeakRSSKB)
		}
	}
	for _, who := range []string{"wesos", "wesos-raw"} {
		w, ok := medianRound(res.Storm[who])
		if !ok {
			continue
		}
		suffix := ""
		if who != "wesos" {
			suffix = " (" + who + ")"
		}
		if _, bv, ok := best(hs, true); ok {
			fmt.Fprintf(b, "| storm: handshakes/s ≥ 1.25×%s | %.2f | %s |\n", suffix, w.HandshakesPerS/bv, yes(w.HandshakesPerS/bv >= 1.25))
		}
		if _, bv, ok := best(cpu, false); ok {
			fmt.Fprintf(b, "| storm: server CPU per handshake ≤ 0.75×%s | %.2f | %s |\n", suffix, w.CPUusPerHandshake/bv, yes(w.CPUusPerHandshake/bv <= 0.75))
		}
		if _, bv, ok := best(rss, false); ok {
			fmt.Fprintf(b, "| storm: server peak RSS ≤ 1.0×%s | %.2f | %s |\n", suffix, rss[who]/bv, yes(rss[who]/bv <= 1.0))
		}
	}
	for _, who := range []string{"wesos", "wesos+klauspost"} {
		targetsDeflate(b, res, who, yes)
	}
}

// targetsDeflate adds the targets of the compressed scenarios for the
// server who (a wesos column) to the targets table.
func targetsDeflate(b *strings.Builder, res *Results, who string, yes func(bool) string) {
	suffix := ""
	if who != "wesos" {
		suffix = " (" + who + ")"
	}
	for _, t := range []struct {
		name string
		get  func(*stats.Echo) float64
		hi   bool
		pass func(float64) bool
	}{
		{"compressed echo: MB/s ≥ 1.5×", func(e *stats.Echo) float64 { return e.MBPerS }, true, func(r float64) bool { return r >= 1.5 }},
		{"compressed echo: server CPU per message ≤ 0.67×", func(e *stats.Echo) float64 { return e.CPUusPerMsg }, false, func(r float64) bool { return r <= 0.67 }},
	} {
		var rs []string
		met, n := 0, 0
		for _, k := range res.DeflateOrder {
			row := res.DeflateEcho[k.String()]
			if row[who] == nil || row[who].Error != "" {
				continue
			}
			vals := map[string]float64{}
			for lib, e := range row {
				if e != nil && e.Error == "" {
					vals[lib] = t.get(e)
				}
			}
			_, bv, ok := best(vals, t.hi)
			if !ok {
				continue
			}
			r := vals[who] / bv
			n++
			if t.pass(r) {
				met++
			}
			rs = append(rs, fmt.Sprintf("%s: %.2f", k, r))
		}
		if n > 0 {
			fmt.Fprintf(b, "| %s%s | %s | %s %d of %d rows |\n", t.name, suffix, strings.Join(rs, "; "), yes(met == n), met, n)
		}
	}
	if w := res.DeflateBroadcast[who]; w != nil && w.Error == "" {
		d := map[string]float64{}
		for lib, x := range res.DeflateBroadcast {
			if x != nil && x.Error == "" {
				d[lib] = x.DeliveriesPerS
			}
		}
		if _, bv, ok := best(d, true); ok {
			fmt.Fprintf(b, "| compressed broadcast: deliveries/s ≥ 2×%s | %.2f | %s |\n", suffix, w.DeliveriesPerS/bv, yes(w.DeliveriesPerS/bv >= 2))
		}
	}
}
