package main

import (
	"fmt"
	"log"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
)

// runStorm measures the handshake storm on a fresh echo server per library,
// all started at once on their own ports (an idle one costs core 0 next
// to nothing), its peak RSS then the storm's alone. The rounds are
// interleaved: round k runs every library's k-th round before any library's
// next, each round in an order rotated from the last. Run one library
// after another, a library's rounds fell within seconds of each other, so
// a slow stretch of the machine (ports in TIME_WAIT, memory the previous
// sections left, other work) landed on one library alone: on the same
// code, wesos's handshakes/s against the best peer's measured 1.34× in one
// full run and 0.70× in the next.
func runStorm(res *Results, plan Plan) {
	var servers []*server
	for i, lib := range wsLibs {
		s, err := startServer(lib, "echo", *basePort+400+10*i, 64<<20)
		if err != nil {
			log.Printf("%v", err)
			continue
		}
		defer s.stop()
		servers = append(servers, s)
		res.Storm[lib] = &stats.Storm{Clients: plan.StormClients, Parallel: plan.StormParallel}
	}
	for k := range plan.StormRounds {
		off := k * len(servers) / plan.StormRounds
		for j := range servers {
			s := servers[(off+j)%len(servers)]
			r := res.Storm[s.lib]
			if r.Error != "" {
				continue
			}
			time.Sleep(time.Second) // let loopback's TIME_WAIT ports age before the next storm
			var one stats.Storm
			if err := load(&one, 5*time.Minute, "-scenario", "storm", "-addr", s.addr, "-pid", strconv.Itoa(s.pid()),
				"-clients", strconv.Itoa(plan.StormClients), "-parallel", strconv.Itoa(plan.StormParallel),
				"-rounds", "1"); err != nil {
				one.Error = err.Error()
			}
			if k == 0 {
				r.BaseRSSKB, r.BaseFDs = one.BaseRSSKB, one.BaseFDs
			}
			r.Rounds = append(r.Rounds, one.Rounds...)
			r.PeakRSSKB = one.PeakRSSKB // VmHWM never falls: the latest reading is the process's peak
			if one.Error != "" {
				r.Error = fmt.Sprintf("round %d: %s", k+1, one.Error)
			}
			for _, rr := range one.Rounds {
				log.Printf("storm %-8s round %d: %6d handshakes (%d failed) %8.0f /s  %6.1f µs CPU/handshake  p50 %7.0f µs  p99 %7.0f µs  close %.2f s %6.1f µs CPU/close  RSS %.1f MiB  load %.0f%%  other %.0f%%",
					s.lib, k+1, rr.Handshakes, rr.Failed, rr.HandshakesPerS, rr.CPUusPerHandshake, rr.P50us, rr.P99us,
					rr.CloseSeconds, rr.CPUusPerClose, float64(rr.RSSKB)/1024, 100*rr.LoadCPU/max(rr.Seconds, 1e-9), 100*rr.OtherCPU/max(rr.Seconds, 1e-9))
			}
		}
	}
	for _, s := range servers {
		r := res.Storm[s.lib]
		log.Printf("storm %-8s peak RSS %.1f MiB %s", s.lib, float64(r.PeakRSSKB)/1024, r.Error)
	}
}

// medianRound returns the round whose handshakes/s is the median (the
// lower middle of an even count).
func medianRound(r *stats.Storm) (stats.StormRound, bool) {
	if r == nil || r.Error != "" || len(r.Rounds) == 0 {
		return stats.StormRound{}, false
	}
	rs := append([]stats.StormRound{}, r.Rounds...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].HandshakesPerS < rs[j].HandshakesPerS })
	return rs[(len(rs)-1)/2], true
}

func renderStorm(b *strings.Builder, res *Results) {
	p := res.Plan
	fmt.Fprintf(b, "## Handshake storm: %s clients, %d in flight, %d rounds\n\n", commas(float64(p.StormClients), 0), p.StormParallel, p.StormRounds)
	fmt.Fprintf(b, "A reconnect storm, as after a deploy or a network blip. Each round opens %s connections with %d handshakes in flight (a TCP connect and a WebSocket handshake each, nothing else), holds them until all are open, then closes them all at once (a close frame, then the TCP close); the round ends when the server holds none of them (its descriptors are counted in /proc). A fresh server per library, all started before the first round; the rounds are interleaved (every library's first round, then every library's second, each time in an order rotated from the last) so that what changes on the machine over the section falls on every library alike; a second between rounds. ",
		commas(float64(p.StormClients), 0), p.StormParallel)
	fmt.Fprintf(b, "Figures are from the median round by handshakes/s; *rounds* lists every round. Handshakes/s and CPU per handshake cover the connect phase (first dial to last handshake done); CPU per close covers the close phase. Latency is dial + handshake per connection. Peak RSS is the server's VmHWM after the last round. † and ‡ as in the echo tables, over the connect phase.\n\n")
	cols := append([]string{}, wsLibs...)
	cols = append(cols, "best peer")
	header(b, "", cols)
	type row struct {
		metric
		get func(r *stats.Storm, m stats.StormRound) float64
		tp  bool // marks apply
	}
	mib := func(x float64) string { return fmt.Sprintf("%.1f", x) }
	rows := []row{
		{metric{"handshakes/s (higher is better)", true, sig}, func(_ *stats.Storm, m stats.StormRound) float64 { return m.HandshakesPerS }, true},
		{metric{"server CPU per handshake, µs (lower is better)", false, sig}, func(_ *stats.Storm, m stats.StormRound) float64 { return m.CPUusPerHandshake }, true},
		{metric{"server CPU per close, µs (lower is better)", false, sig}, func(_ *stats.Storm, m stats.StormRound) float64 { return m.CPUusPerClose }, false},
		{metric{"dial + handshake p50, µs", false, sig}, func(_ *stats.Storm, m stats.StormRound) float64 { return m.P50us }, true},
		{metric{"dial + handshake p99, µs", false, sig}, func(_ *stats.Storm, m stats.StormRound) float64 { return m.P99us }, true},
		{metric{fmt.Sprintf("server RSS with %s open, MiB (lower is better)", commas(float64(p.StormClients), 0)), false, mib}, func(_ *stats.Storm, m stats.StormRound) float64 { return float64(m.RSSKB) / 1024 }, false},
		{metric{"server peak RSS (VmHWM), MiB (lower is better)", false, mib}, func(r *stats.Storm, _ stats.StormRound) float64 { return float64(r.PeakRSSKB) / 1024 }, false},
	}
	for _, rw := range rows {
		vals := map[string]float64{}
		meds := map[string]stats.StormRound{}
		for lib, r := range res.Storm {
			if m, ok := medianRound(r); ok {
				vals[lib], meds[lib] = rw.get(r, m), m
			}
		}
		marks := map[string]string{}
		if rw.tp {
			for lib, m := range meds {
				marks[lib] = marksOf(rw.higher, m.LoadCPU, m.OtherCPU, m.Seconds)
			}
		}
		fmt.Fprintf(b, "| %s | %s |\n", rw.name, strings.Join(peerCells(vals, marks, rw.metric), " | "))
	}
	var rounds []string
	for _, lib := range wsLibs {
		r := res.Storm[lib]
		if r == nil {
			rounds = append(rounds, "—")
			continue
		}
		var rs []string
		for _, rr := range r.Rounds {
			rs = append(rs, sig(rr.HandshakesPerS))
		}
		rounds = append(rounds, strings.Join(rs, " / "))
	}
	fmt.Fprintf(b, "| rounds, handshakes/s | %s | |\n\n", strings.Join(rounds, " | "))
	var warn []string
	for _, lib := range wsLibs {
		r := res.Storm[lib]
		if r == nil {
			continue
		}
		if r.Error != "" {
			warn = append(warn, fmt.Sprintf("%s: %s", lib, r.Error))
		}
		for k, rr := range r.Rounds {
			if rr.Failed > 0 {
				warn = append(warn, fmt.Sprintf("%s, round %d: %d of %d handshakes failed", lib, k+1, rr.Failed, r.Clients))
			}
		}
	}
	for _, w := range warn {
		fmt.Fprintf(b, "- %s\n", w)
	}
	if len(warn) > 0 {
		b.WriteString("\n")
	}
}

// summaryStormDeflate adds the handshake storm and the compressed scenarios
// to the summary table, every row, in its columns (scenario, wesos, best
// peer, ratio, CPU ratio, raw, notes).
func summaryStormDeflate(res *Results, row func(cells ...string), marks func(load, other, secs float64, tp bool) string) {
	if w, ok := medianRound(res.Storm["wesos"]); ok {
		hs, cpu, rss := map[string]float64{}, map[string]float64{}, map[string]float64{}
		meds := map[string]stats.StormRound{}
		for lib, r := range res.Storm {
			if m, ok := medianRound(r); ok {
				meds[lib], hs[lib], cpu[lib], rss[lib] = m, m.HandshakesPerS, m.CPUusPerHandshake, float64(r.PeakRSSKB)/1024
			}
		}
		name := fmt.Sprintf("handshake storm, %s clients × %d in flight", commas(float64(res.Plan.StormClients), 0), res.Plan.StormParallel)
		if bl, bv, ok := best(hs, true); ok {
			cr := "—"
			if _, bc, ok := best(cpu, false); ok {
				cr = fmt.Sprintf("%.2f× (%s vs %s µs per handshake)", w.CPUusPerHandshake/bc, sig(w.CPUusPerHandshake), sig(bc))
			}
			m := meds[bl]
			row(name+", handshakes/s (median round)", sig(w.HandshakesPerS)+marks(w.LoadCPU, w.OtherCPU, w.Seconds, true),
				bl+" "+sig(bv)+marks(m.LoadCPU, m.OtherCPU, m.Seconds, true), fmt.Sprintf("%.2f×", w.HandshakesPerS/bv), cr, "", "")
		}
		if bl, bv, ok := best(rss, false); ok {
			row(name+", server peak RSS", fmt.Sprintf("%.1f MiB", rss["wesos"]), fmt.Sprintf("%s %.1f MiB", bl, bv), fmt.Sprintf("%.2f× (lower is better)", rss["wesos"]/bv), "", "", "")
		}
	}
	for _, k := range res.DeflateOrder {
		r := res.DeflateEcho[k.String()]
		x := r["wesos"]
		if x == nil || x.Error != "" {
			continue
		}
		mb, cpu := map[string]float64{}, map[string]float64{}
		var starved []string
		for _, lib := range wsLibs {
			if e := r[lib]; e != nil && e.Error == "" {
				mb[lib], cpu[lib] = e.MBPerS, e.CPUusPerMsg
				if e.Starved > 0 {
					starved = append(starved, fmt.Sprintf("%s %s", lib, commas(float64(e.Starved), 0)))
				}
			}
		}
		note := ""
		if len(starved) > 0 {
			note = fmt.Sprintf("**starved** (connections of %s with no reply while measured): %s", commas(float64(k.Conns), 0), strings.Join(starved, ", "))
		}
		if bl, bv, ok := best(mb, true); ok {
			cr := "—"
			if _, bc, ok := best(cpu, false); ok {
				cr = fmt.Sprintf("%.2f× (%s vs %s µs)", x.CPUusPerMsg/bc, sig(x.CPUusPerMsg), sig(bc))
			}
			p := r[bl]
			row(fmt.Sprintf("compressed echo %s, MB/s of JSON", k), sig(x.MBPerS)+marks(x.LoadCPU, x.OtherCPU, x.Seconds, true),
				bl+" "+sig(bv)+marks(p.LoadCPU, p.OtherCPU, p.Seconds, true), fmt.Sprintf("%.2f×", x.MBPerS/bv), cr, "", note)
		}
	}
	if x := res.DeflateBroadcast["wesos"]; x != nil && x.Error == "" {
		d, c := map[string]float64{}, map[string]float64{}
		for lib, r := range res.DeflateBroadcast {
			if r != nil && r.Error == "" {
				d[lib], c[lib] = r.DeliveriesPerS, r.CPUusPerDelivery
			}
		}
		if bl, bv, ok := best(d, true); ok {
			cr := "—"
			if _, bc, ok := best(c, false); ok {
				cr = fmt.Sprintf("%.2f× (%s vs %s µs per delivery)", x.CPUusPerDelivery/bc, sig(x.CPUusPerDelivery), sig(bc))
			}
			p := res.DeflateBroadcast[bl]
			row(fmt.Sprintf("compressed broadcast of %s JSON to %s subscribers, deliveries/s", sizeName(int64(res.Plan.DeflateSize)), commas(float64(res.Plan.DeflateSubs), 0)),
				sig(x.DeliveriesPerS)+marks(x.LoadCPU, x.OtherCPU, x.Seconds, true),
				bl+" "+sig(bv)+marks(p.LoadCPU, p.OtherCPU, p.Seconds, true), fmt.Sprintf("%.2f×", x.DeliveriesPerS/bv), cr, "", "")
		}
	}
}
