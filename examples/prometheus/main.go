// Command prometheus is a broadcast server whose numbers Prometheus
// scrapes: every message a client sends goes to every client, and /metrics
// shows the Server's Stats (connections open, accepted and refused,
// messages and bytes in and out, connections dropped, close codes), read
// from the Server at each scrape.
//
//	go run ./examples/prometheus                # ws://localhost:8080/ws
//	curl -s localhost:8080/metrics | grep websocket_
//
// It is a module of its own, so that the wesos module keeps no
// dependencies; the collector (statsCollector) is short enough to copy.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

func main() {
	addr := flag.String("addr", "localhost:8080", "the address to listen on")
	flag.Parse()
	h, srv := newServer()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	slog.Info("serving", "websocket", "ws://"+*addr+"/ws", "metrics", "http://"+*addr+"/metrics")
	if err := ws.ListenAndServe(ctx, *addr, h, srv); err != nil {
		slog.Error("serve", "err", err)
		os.Exit(1)
	}
}

// newServer returns the program's handler (the broadcast at /ws, the
// metrics at /metrics) and its ws.Server, to shut down.
func newServer() (http.Handler, *ws.Server) {
	var srv *ws.Server
	srv = ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, srv, c) // every message of c to every client
	}, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(newStatsCollector(srv.Stats, prometheus.Labels{"server": "broadcast"}))
	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return mux, srv
}

// statsCollector is a prometheus.Collector of the Stats of a ws.Server or
// a ws.Group: it reads them when Prometheus scrapes, so nothing runs in
// between and the message paths count only their atomics.
type statsCollector struct {
	stats func() ws.Stats

	open, accepted, refused, failed    *prometheus.Desc
	timedOut                           *prometheus.Desc
	msgsIn, bytesIn, msgsOut, bytesOut *prometheus.Desc
	broadcasts, broadcastBytes         *prometheus.Desc
	dropped, missed, closed            *prometheus.Desc
}

// newStatsCollector returns a collector of stats, whose metrics carry
// labels (which server or group they are of).
func newStatsCollector(stats func() ws.Stats, labels prometheus.Labels) *statsCollector {
	d := func(name, help string, varLabels ...string) *prometheus.Desc {
		return prometheus.NewDesc("websocket_"+name, help, varLabels, labels)
	}
	return &statsCollector{
		stats:          stats,
		open:           d("connections_open", "Connections open."),
		accepted:       d("connections_accepted_total", "Requests upgraded to connections."),
		refused:        d("requests_refused_total", "Requests answered without an upgrade, by reason (and status, for the Admit function's).", "reason", "status"),
		failed:         d("handshakes_failed_total", "Requests that passed the checks but could not be upgraded."),
		timedOut:       d("handshakes_timed_out_total", "Connections whose request did not arrive in time (Server.Serve)."),
		msgsIn:         d("messages_received_total", "Data messages received."),
		bytesIn:        d("received_bytes_total", "Payload bytes of the data messages received."),
		msgsOut:        d("messages_sent_total", "Data messages written."),
		bytesOut:       d("sent_bytes_total", "Payload bytes of the data messages written."),
		broadcasts:     d("broadcasts_total", "Messages broadcast to at least one connection."),
		broadcastBytes: d("broadcast_bytes_total", "Payload bytes of the messages broadcast."),
		dropped:        d("connections_dropped_total", "Connections closed with 1008: too slow for the broadcast, or stalled while sending one.", "reason"),
		missed:         d("missed_messages_total", "Messages a connection missed for being behind (policy DropMessages)."),
		closed:         d("connections_closed_total", "Connections ended, by the code of their close handshake (1006: none).", "code"),
	}
}

// Describe sends the descriptions of every metric.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.open, c.accepted, c.refused, c.failed, c.timedOut, c.msgsIn, c.bytesIn,
		c.msgsOut, c.bytesOut, c.broadcasts, c.broadcastBytes, c.dropped, c.missed, c.closed} {
		ch <- d
	}
}

// Collect reads the Stats once and sends every metric.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	ch <- prometheus.MustNewConstMetric(c.open, prometheus.GaugeValue, float64(s.Open))
	counter(c.accepted, s.Accepted)
	counter(c.refused, s.Refused.Handshake, "handshake", "")
	counter(c.refused, s.Refused.Origin, "origin", "")
	counter(c.refused, s.Refused.ShuttingDown, "shutting_down", "")
	for status, n := range s.Refused.Admit {
		counter(c.refused, n, "admit", strconv.Itoa(status))
	}
	counter(c.failed, s.HandshakeFailures)
	counter(c.timedOut, s.HandshakeTimeouts)
	counter(c.msgsIn, s.MessagesIn)
	counter(c.bytesIn, s.BytesIn)
	counter(c.msgsOut, s.MessagesOut)
	counter(c.bytesOut, s.BytesOut)
	counter(c.broadcasts, s.Broadcasts)
	counter(c.broadcastBytes, s.BroadcastBytes)
	counter(c.dropped, s.DroppedSlow, "slow")
	counter(c.dropped, s.DroppedStalled, "stalled")
	counter(c.missed, s.MissedMessages)
	for i, n := range s.Closes {
		code := "other"
		if i < len(s.Closes)-1 { // the last counts every code outside 1000–1015
			code = strconv.Itoa(1000 + i)
		}
		counter(c.closed, n, code)
	}
}
