package main

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wesos/wesos/ws"
)

// TestMain fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: Errors on successful test run: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// scrape reads url's metrics in the text format, as name{labels} → value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	m := make(map[string]float64)
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metric line %q: %v", line, err)
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestMetrics drives the broadcast server over real sockets (two clients,
// a message, a refused origin, a close with 1007) and scrapes /metrics
// until it shows each of those events.
func TestMetrics(t *testing.T) {
	h, srv := newServer()
	hs := httptest.NewServer(h)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	url := "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws"

	a, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.CloseNow()
	b, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for srv.Len() < 2 {
		if ctx.Err() != nil {
			t.Fatal("timed out waiting for both connections")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := a.Write(ctx, ws.Text, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*ws.Conn{a, b} { // the broadcast reaches both
		if _, p, err := c.Read(ctx); err != nil || string(p) != "hello" {
			t.Fatalf("got %q, %v", p, err)
		}
	}
	b.Close(ws.StatusInvalidFramePayloadData, "that was not UTF-8")
	_, _, err = ws.Dial(ctx, url, &ws.DialOptions{HTTPHeader: http.Header{"Origin": {"https://elsewhere.example"}}})
	if err == nil {
		t.Fatal("a foreign origin was accepted")
	}

	const l = `server="broadcast"`
	want := map[string]float64{
		`websocket_connections_open{` + l + `}`:                                 1,
		`websocket_connections_accepted_total{` + l + `}`:                       2,
		`websocket_requests_refused_total{reason="origin",` + l + `,status=""}`: 1,
		`websocket_messages_received_total{` + l + `}`:                          1,
		`websocket_received_bytes_total{` + l + `}`:                             5,
		`websocket_broadcasts_total{` + l + `}`:                                 1,
		`websocket_messages_sent_total{` + l + `}`:                              2,
		`websocket_sent_bytes_total{` + l + `}`:                                 10,
		`websocket_connections_closed_total{code="1007",` + l + `}`:             1,
		`websocket_connections_closed_total{code="1000",` + l + `}`:             0,
		`websocket_connections_dropped_total{reason="slow",` + l + `}`:          0,
	}
	for {
		got := scrape(t, hs.URL+"/metrics")
		var diff []string
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				diff = append(diff, k+" = "+strconv.FormatFloat(g, 'g', -1, 64)+", want "+strconv.FormatFloat(v, 'g', -1, 64))
			}
		}
		if len(diff) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the metrics do not show the events:\n%s", strings.Join(diff, "\n"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
