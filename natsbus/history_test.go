package natsbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wesos/wesos/ws"
)

func startJetStreamNode(t testing.TB, opts *NodeOptions) *Node {
	t.Helper()
	var o NodeOptions
	if opts != nil {
		o = *opts
	}
	o.JetStream = true
	o.StoreDir = t.TempDir()
	return startNode(t, &o)
}

func history(t testing.TB, n *Node, subject string, opts *HistoryOptions) *HistoryTopic {
	t.Helper()
	if opts == nil {
		opts = &HistoryOptions{}
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = testLogger(t)
	}
	h, err := History(testContext(t), n.Conn(), subject, opts)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func replay(t testing.TB, h *HistoryTopic, from From) *Replay {
	t.Helper()
	r, err := h.Replay(testContext(t), from)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func sendText(t testing.TB, ctx context.Context, h *HistoryTopic, text string) uint64 {
	t.Helper()
	seq, err := h.Publish(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader(text)})
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// nextText reads the next message of r and its sequence number.
func nextText(t testing.TB, ctx context.Context, r *Replay) (string, uint64) {
	t.Helper()
	m, err := r.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	if m.Type != ws.Text {
		t.Fatalf("type %v, want text", m.Type)
	}
	b, err := io.ReadAll(m.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b), r.Seq()
}

// A client away while 100 messages are sent comes back with the last
// sequence number it saw and gets exactly those 100, then live ones — sent
// while it catches up — with no duplicate and no gap at the seam.
func TestHistoryResume(t *testing.T) {
	ctx := testContext(t)
	n := startJetStreamNode(t, nil)
	h := history(t, n, "h.resume", nil)

	live := replay(t, h, From{})
	for i := range 5 {
		sendText(t, ctx, h, fmt.Sprint("before ", i))
	}
	var lastSeen uint64
	for i := range 5 {
		text, seq := nextText(t, ctx, live)
		if text != fmt.Sprint("before ", i) {
			t.Fatalf("got %q", text)
		}
		lastSeen = seq
	}
	live.Close() // the client goes away
	if _, err := live.Next(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after Close: %v", err)
	}

	for i := range 100 {
		sendText(t, ctx, h, fmt.Sprint("missed ", i))
	}
	back := replay(t, h, From{After: lastSeen})
	var wg sync.WaitGroup
	wg.Go(func() { // live messages while the client catches up
		for i := range 50 {
			sendText(t, ctx, h, fmt.Sprint("live ", i))
		}
	})
	defer wg.Wait()
	want := lastSeen
	for i := range 150 {
		text, seq := nextText(t, ctx, back)
		wantText := fmt.Sprint("missed ", i)
		if i >= 100 {
			wantText = fmt.Sprint("live ", i-100)
		}
		want++
		if text != wantText || seq != want {
			t.Fatalf("message %d: %q at %d, want %q at %d", i, text, seq, wantText, want)
		}
	}
}

// A sequence number older than the history keeps gets a GapError, which
// says what is gone, then the messages that are kept.
func TestHistoryGap(t *testing.T) {
	ctx := testContext(t)
	n := startJetStreamNode(t, nil)
	h := history(t, n, "h.gap", &HistoryOptions{MaxMsgs: 10})
	for i := 1; i <= 30; i++ {
		sendText(t, ctx, h, fmt.Sprint(i))
	}
	r := replay(t, h, From{After: 5})
	_, err := r.Next(ctx)
	var gap *GapError
	if !errors.As(err, &gap) || !errors.Is(err, ErrGap) || gap.After != 5 || gap.First != 21 {
		t.Fatalf("Next returned %v, want a gap after 5 up to 21", err)
	}
	for i := 21; i <= 30; i++ {
		if text, seq := nextText(t, ctx, r); text != fmt.Sprint(i) || seq != uint64(i) {
			t.Fatalf("got %q at %d, want %d", text, seq, i)
		}
	}
	// A sequence number ahead of the history is a gap too.
	r2 := replay(t, h, From{After: 1000})
	if _, err := r2.Next(ctx); !errors.Is(err, ErrGap) {
		t.Fatalf("Next returned %v, want a gap", err)
	}
	// No gap when nothing was lost.
	r3 := replay(t, h, From{After: 25})
	if text, _ := nextText(t, ctx, r3); text != "26" {
		t.Fatalf("got %q", text)
	}
}

// A late joiner gets the last N messages, then live ones.
func TestHistoryLastN(t *testing.T) {
	ctx := testContext(t)
	n := startJetStreamNode(t, nil)
	h := history(t, n, "h.last", nil)
	empty := replay(t, h, From{Last: 50}) // nothing kept yet: only live ones
	for i := 1; i <= 30; i++ {
		sendText(t, ctx, h, fmt.Sprint(i))
	}
	if text, _ := nextText(t, ctx, empty); text != "1" {
		t.Fatalf("got %q", text)
	}
	r := replay(t, h, From{Last: 5})
	for i := 26; i <= 30; i++ {
		if text, seq := nextText(t, ctx, r); text != fmt.Sprint(i) || seq != uint64(i) {
			t.Fatalf("got %q at %d, want %d", text, seq, i)
		}
	}
	all := replay(t, h, From{Last: 50})
	if text, _ := nextText(t, ctx, all); text != "1" {
		t.Fatalf("got %q, want the first of 30", text)
	}
	sendText(t, ctx, h, "31")
	if text, _ := nextText(t, ctx, r); text != "31" {
		t.Fatalf("got %q, want the live one", text)
	}
}

// The history of a three-node cluster, kept on all three: a message sent on
// node 1 is replayed on node 3, and a client of node 3 resumes there after
// the sequence it saw.
func TestHistoryAcrossCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: a JetStream cluster elects its leaders")
	}
	ctx := testContext(t)
	// A JetStream node is ready once its cluster has a quorum: the three
	// start together, each with the others' routes.
	var routes []string
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		routes = append(routes, "nats://"+ln.Addr().String())
		ln.Close()
	}
	nodes := make([]*Node, 3)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			o := &NodeOptions{ClusterPort: portOf(routes[i]), Routes: routes, JetStream: true, StoreDir: t.TempDir(), ErrorLog: testLogger(t)}
			n, err := StartNode(ctx, o)
			if err != nil {
				t.Error(err)
				return
			}
			t.Cleanup(func() { n.Close() })
			nodes[i] = n
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	var h1 *HistoryTopic
	for { // JetStream answers once the cluster has a meta leader
		var err error
		try, cancel := context.WithTimeout(ctx, 2*time.Second)
		h1, err = History(try, nodes[0].Conn(), "h.cluster", &HistoryOptions{Replicas: 3, ErrorLog: testLogger(t)})
		cancel()
		if err == nil {
			break
		}
		t.Log(err)
		if ctx.Err() != nil {
			t.Fatal(err)
		}
	}
	h3 := history(t, nodes[2], "h.cluster", &HistoryOptions{Replicas: 3})
	for i := 1; i <= 20; i++ {
		sendText(t, ctx, h1, fmt.Sprint(i))
	}
	r := replay(t, h3, From{After: 12})
	for i := 13; i <= 20; i++ {
		if text, seq := nextText(t, ctx, r); text != fmt.Sprint(i) || seq != uint64(i) {
			t.Fatalf("got %q at %d, want %d", text, seq, i)
		}
	}
	sendText(t, ctx, h1, "21")
	if text, _ := nextText(t, ctx, r); text != "21" {
		t.Fatalf("got %q", text)
	}
}

func portOf(u string) int {
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(u, "nats://"))
	n, _ := strconv.Atoi(p)
	return n
}

// Resume latency for 1,000 missed messages and storage per message, as
// figures for the documentation.
func TestHistoryFigures(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: figures of 1,000-message resumes")
	}
	ctx := testContext(t)
	n := startJetStreamNode(t, nil)
	h := history(t, n, "h.figures", nil)
	msg := `{"type":"chat","from":"k3j5h2","name":"guest-123","text":"a chat line of about a hundred bytes, give or take"}`
	for range 1000 {
		sendText(t, ctx, h, msg)
	}
	s, err := h.js.Stream(ctx, h.stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var best time.Duration
	for range 5 {
		start := time.Now()
		r := replay(t, h, From{After: 0, Last: 1000})
		for range 1000 {
			if text, _ := nextText(t, ctx, r); text != msg {
				t.Fatalf("got %q", text)
			}
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
		r.Close()
	}
	t.Logf("resume of 1,000 missed messages (%d bytes each): %v (best of 5, from Replay to the last message read); storage %d bytes per message (file store, headers included)",
		len(msg), best.Round(time.Microsecond), info.State.Bytes/info.State.Msgs)
}
