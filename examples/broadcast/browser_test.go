package main

// The browser end-to-end test: two pages of the chat in headless Chromium,
// driven through the Chrome DevTools Protocol (CDP, internal/browsertest)
// over a WebSocket opened with this module's own ws.Dial, so it is also an
// interop test of our client against Chromium's server, and of our server
// against Chromium's client.

import (
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/browsertest"
	"github.com/wesos/wesos/ws"
)

func TestBrowserChat(t *testing.T) {
	needChromium(t)
	// Chromium always offers permessage-deflate: the chat must work whether
	// the server declines it (the default) or accepts it (-compress).
	t.Run("plain", func(t *testing.T) { chatInBrowser(t, false) })
	t.Run("deflate", func(t *testing.T) { chatInBrowser(t, true) })
}

func chatInBrowser(t *testing.T, compress bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The chat, in-process, on a port that the restart below reuses.
	ln := listen(t, "127.0.0.1:0")
	addr := ln.Addr().String()
	srv, stop := startChat(t, ln, compress)
	url := "http://" + addr + "/"

	// ann is in two rooms, bob in one of them.
	b := startChromium(t, ctx)
	ann, bob := b.open(t, ctx, url+"#name=ann&rooms=go,rust"), b.open(t, ctx, url+"#name=bob&rooms=rust")
	inRooms := func(srv *ws.Server) func(states []pageState) bool {
		return func(states []pageState) bool {
			return states[0].in("go", "ann") && states[0].in("rust", "ann, bob") &&
				states[1].in("rust", "ann, bob") && states[1].Rooms["go"].State == "idle" &&
				srv.Len() == 3
		}
	}
	b.eventually(t, ctx, "ann in go and rust, bob in rust, each seeing who is there", inRooms(srv))

	// A message stays in its room: ann's in go reaches no one else (bob is
	// not there); hers in rust reaches bob, and his reaches her. bob's page
	// shows hers in rust, sent after the one in go, and not the one in go.
	ann.say(t, ctx, "go", "hello go, from ann")
	ann.say(t, ctx, "rust", "hello rust, from ann")
	b.eventually(t, ctx, "ann's message in rust on both pages", showing("rust", "hello rust, from ann"))
	bob.say(t, ctx, "rust", "hi ann, from bob")
	b.eventually(t, ctx, "bob's message in rust on both pages", showing("rust", "hi ann, from bob"))
	states := b.states(ctx)
	if !states[0].shows("go", "hello go, from ann") || states[1].shows("go", "hello go, from ann") {
		t.Fatalf("ann's message in go, on ann's page %v and bob's %v; want only on ann's", states[0].Messages, states[1].Messages)
	}
	// A long one (over the compression threshold, when there is compression).
	long := strings.Repeat("a longer line, to be compressed; ", 40)
	bob.say(t, ctx, "rust", long)
	b.eventually(t, ctx, "the long message on both pages", showing("rust", strings.TrimSpace(long)))

	// bob joins general from the list, where ann, who is not in it, sees
	// him (the page refreshes the list when someone comes or goes in a
	// room it is in, and every 5 s).
	bob.click(t, ctx, `#rooms li[data-room="general"] button`)
	b.eventually(t, ctx, "bob in general, and ann's list showing him there", func(states []pageState) bool {
		return states[1].in("general", "bob") && states[0].Rooms["general"].Who == "bob" && states[0].Rooms["general"].State == "idle"
	})

	// The server restarts on the same port; the pages rejoin their rooms
	// by themselves.
	stop()
	srv, _ = startChat(t, listen(t, addr), compress)
	b.eventually(t, ctx, "every room rejoined on the new server", func(states []pageState) bool {
		return states[0].in("go", "ann") && states[0].in("rust", "ann, bob") &&
			states[1].in("rust", "ann, bob") && states[1].in("general", "bob") && srv.Len() == 4
	})
	bob.say(t, ctx, "rust", "hello again from bob")
	b.eventually(t, ctx, "the new message on both pages", showing("rust", "hello again from bob"))

	// What was negotiated is what the server asked for.
	handshakes := b.Handshakes()
	if len(handshakes) == 0 {
		t.Errorf("Chromium reported no WebSocket handshake")
	}
	for _, h := range handshakes {
		t.Logf("seen by Chromium: %s", h)
		if strings.Contains(h, "permessage-deflate") != compress {
			t.Errorf("compression %v, but Chromium saw %s", compress, h)
		}
	}
	if os.Getenv(browsertest.ScreenshotEnv) != "" {
		b.Screenshots(t)
	}
}

// showing is true when every page shows text among its messages of room.
func showing(room, text string) func([]pageState) bool {
	return func(states []pageState) bool {
		for _, s := range states {
			if !s.shows(room, text) {
				return false
			}
		}
		return true
	}
}

// states reads the pages' state.
func (b *browser) states(ctx context.Context) []pageState {
	var states []pageState
	for _, p := range b.Pages {
		states = append(states, (&page{p}).state(ctx))
	}
	return states
}

// eventually polls the pages' state until cond holds, for at most 20 s. If
// it does not, the test fails with screenshots of the pages as they are.
func (b *browser) eventually(t *testing.T, ctx context.Context, what string, cond func([]pageState) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var states []pageState
	for time.Now().Before(deadline) {
		if states = b.states(ctx); cond(states) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Screenshots(t)
	t.Fatalf("timed out waiting for %s; the pages show %+v", what, states)
}

// pageState is what the test reads off a page.
type pageState struct {
	State    string               `json:"state"`    // the status pill: idle, connecting, connected, offline
	Rooms    map[string]roomState `json:"rooms"`    // the rooms listed
	Messages []shown              `json:"messages"` // oldest first
	Err      string               `json:"-"`        // why the state could not be read
}

// roomState is a room as the page lists it.
type roomState struct {
	State string `json:"state"` // idle (not joined), connecting, connected, offline
	Who   string `json:"who"`   // the names of who is in it, e.g. "ann, bob"
}

// shown is a message on the page.
type shown struct {
	Room string `json:"room"`
	Text string `json:"text"`
}

// in reports whether the page is connected to room and shows who is in it.
func (s pageState) in(room, who string) bool {
	r := s.Rooms[room]
	return s.State == "connected" && r.State == "connected" && r.Who == who
}

// shows reports whether the page shows text among its messages of room.
func (s pageState) shows(room, text string) bool {
	return slices.Contains(s.Messages, shown{room, text})
}

const stateJS = `({
	state: document.querySelector("#status")?.dataset.state ?? "",
	rooms: Object.fromEntries([...document.querySelectorAll("#rooms li")].map(li =>
		[li.dataset.room, {state: li.dataset.state, who: li.querySelector(".who").textContent}])),
	messages: [...document.querySelectorAll("#log li")].map(e =>
		({room: e.dataset.room, text: e.querySelector(".text").textContent})),
})`

// needChromium skips the test under -short, and when Chromium is missing
// (unless on CI, where that fails it).
func needChromium(t *testing.T) {
	t.Helper()
	browsertest.Need(t, "the chat in headless Chromium")
}

// browser is the chat's view of a headless Chromium.
type browser struct{ *browsertest.Browser }

// page is one chat page.
type page struct{ *browsertest.Page }

// startChromium launches Chromium; see browsertest.Start.
func startChromium(t *testing.T, ctx context.Context, flags ...string) *browser {
	t.Helper()
	return &browser{browsertest.Start(t, ctx, flags...)}
}

// open loads url in a new window.
func (b *browser) open(t *testing.T, ctx context.Context, url string) *page {
	t.Helper()
	return &page{b.Open(t, ctx, url)}
}

func (p *page) state(ctx context.Context) pageState {
	var s pageState
	if err := p.Eval(ctx, stateJS, &s); err != nil {
		s.Err = err.Error() // e.g. the page is still loading: poll again
	}
	return s
}

// say chooses room in the composer and types text into the message box as
// a user would, then presses Enter.
func (p *page) say(t *testing.T, ctx context.Context, room, text string) {
	t.Helper()
	var chosen string
	if err := p.Eval(ctx, `(() => { const s = document.querySelector("#room"); s.value = `+strconv.Quote(room)+`; return s.value; })()`, &chosen); err != nil || chosen != room {
		t.Fatalf("choosing room %s: got %q, %v", room, chosen, err)
	}
	p.Type(t, ctx, "#text", text)
}

// click clicks the element that selector finds.
func (p *page) click(t *testing.T, ctx context.Context, selector string) {
	t.Helper()
	var found bool
	if err := p.Eval(ctx, `(() => { const e = document.querySelector(`+strconv.Quote(selector)+`); e?.click(); return !!e; })()`, &found); err != nil || !found {
		t.Fatalf("clicking %s: found %v, %v", selector, found, err)
	}
}
