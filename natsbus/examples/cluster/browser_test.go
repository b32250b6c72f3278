package main

import (
	"context"
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
