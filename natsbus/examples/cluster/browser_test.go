package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/browsertest"
)

// Two pages in headless Chromium, one on node 1 and one on node 3 of the
// cluster, in the same room, see each other's messages.
func TestBrowserChatAcrossNodes(t *testing.T) {
	browsertest.Need(t, "the cluster chat in headless Chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	nodes := startChatCluster(t)
	b := browsertest.Start(t, ctx)
	one := b.Open(t, ctx, "http://"+nodes[0].addr+"/?room=go")
	three := b.Open(t, ctx, "http://"+nodes[2].addr+"/?room=go")
	pages := []*browsertest.Page{one, three}

	eventually(t, ctx, b, pages, "both pages connected, each to its node", func(s []pageState) bool {
		return s[0].State == "connected" && s[1].State == "connected" &&
			s[0].Node == "on "+nodes[0].addr && s[1].Node == "on "+nodes[2].addr
	})
	waitRooms(t, ctx, nodes, map[*testNode]map[string]int{nodes[0]: {"go": 1}, nodes[2]: {"go": 1}})

	one.Type(t, ctx, "#text", "hello from node 1")
	eventually(t, ctx, b, pages, "node 1's message on both pages", showing("hello from node 1"))
	three.Type(t, ctx, "#text", "and hello from node 3")
	eventually(t, ctx, b, pages, "node 3's message on both pages", showing("and hello from node 3"))
}

// pageState is what the test reads off a page.
type pageState struct {
	State string   `json:"state"` // the status pill: connecting, connected, offline
	Node  string   `json:"node"`  // "on host:port"
	Texts []string `json:"texts"` // the messages, oldest first
	Err   string   `json:"-"`
}

const stateJS = `({
	state: document.querySelector("#status")?.dataset.state ?? "",
	node: document.querySelector("#online")?.textContent ?? "",
	texts: [...document.querySelectorAll("#log .text")].map(e => e.textContent),
})`

func showing(text string) func([]pageState) bool {
	return func(states []pageState) bool {
		for _, s := range states {
			if !slices.Contains(s.Texts, text) {
				return false
			}
		}
		return true
	}
}

// eventually polls the pages until cond holds, for at most 20 s, then fails
// the test with screenshots of the pages.
func eventually(t *testing.T, ctx context.Context, b *browsertest.Browser, pages []*browsertest.Page, what string, cond func([]pageState) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var states []pageState
	for time.Now().Before(deadline) {
		states = states[:0]
		for _, p := range pages {
			var s pageState
			if err := p.Eval(ctx, stateJS, &s); err != nil {
				s.Err = err.Error() // e.g. the page is still loading: poll again
			}
			states = append(states, s)
		}
		if cond(states) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Screenshots(t)
	t.Fatalf("timed out waiting for %s; the pages show %+v\n%s", what, states, strings.Join(b.Log(), "\n"))
}

// A page whose connection is cut while another page sends 20 messages shows
// all 20 once it has reconnected, in order, each once: it asks for what
// followed the last message it saw, and the room's history has it.
func TestBrowserResumeAfterCut(t *testing.T) {
	browsertest.Need(t, "the chat's history in headless Chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n := startNodeWith(t, "127.0.0.1:0", 0, 0, nil, t.TempDir())
	px := startProxy(t, n.addr) // page 1 reaches the node through it
	b := browsertest.Start(t, ctx)
	one := b.Open(t, ctx, "http://"+px.addr()+"/?room=resume")
	two := b.Open(t, ctx, "http://"+n.addr+"/?room=resume")
	pages := []*browsertest.Page{one, two}
	connected := func(s []pageState) bool { return s[0].State == "connected" && s[1].State == "connected" }
	eventually(t, ctx, b, pages, "both pages connected", connected)
	two.Type(t, ctx, "#text", "before the cut")
	eventually(t, ctx, b, pages, "the first message on both pages", showing("before the cut"))

	px.cut(true) // page 1 loses its server, and cannot reconnect yet
	eventually(t, ctx, b, pages[:1], "page 1 offline", func(s []pageState) bool { return s[0].State != "connected" })
	var sent []string
	for i := 1; i <= 20; i++ {
		text := fmt.Sprintf("missed %d", i)
		two.Type(t, ctx, "#text", text)
		sent = append(sent, text)
	}
	eventually(t, ctx, b, pages[1:], "page 2 shows its 20", showing(sent[19]))
	px.cut(false)
	eventually(t, ctx, b, pages, "page 1 back, with the 20", func(s []pageState) bool {
		return connected(s) && slices.Contains(s[0].Texts, sent[19])
	})
	var s pageState
	if err := one.Eval(ctx, stateJS, &s); err != nil {
		t.Fatal(err)
	}
	want := append([]string{"before the cut"}, sent...)
	if !slices.Equal(s.Texts, want) {
		t.Fatalf("page 1 shows %q\nwant %q", s.Texts, want)
	}
}
