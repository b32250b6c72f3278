package main

// The browser end-to-end test: two pages of the chat in headless Chromium,
// driven through the Chrome DevTools Protocol (CDP, internal/browsertest)
// over a WebSocket opened with this module's own ws.Dial, so it is also an
// interop test of our client against Chromium's server, and of our server
// against Chromium's client.

import (
	"context"
	"fmt"
	"os"
	"slices"
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

	b := startChromium(t, ctx)
	pages := []*page{b.open(t, ctx, url), b.open(t, ctx, url)}

	// Both pages connect and count two people online.
	connected := func(want int, srv *ws.Server) func(states []pageState) bool {
		return func(states []pageState) bool {
			for _, s := range states {
				if s.State != "connected" || s.Online != fmt.Sprintf("%d online", want) {
					return false
				}
			}
			return srv.Len() == want
		}
	}
	b.eventually(t, ctx, "both pages connected, 2 online", connected(2, srv))

	// A message typed into page 1 shows up on both pages, and so does a long
	// one (over the compression threshold, when there is compression).
	pages[0].say(t, ctx, "hello from page 1")
	b.eventually(t, ctx, "the message on both pages", showing("hello from page 1"))
	long := strings.Repeat("a longer line, to be compressed; ", 40)
	pages[0].say(t, ctx, long)
	b.eventually(t, ctx, "the long message on both pages", showing(strings.TrimSpace(long)))

	// The server restarts on the same port; both pages reconnect by themselves.
	stop()
	srv, _ = startChat(t, listen(t, addr), compress)
	b.eventually(t, ctx, "both pages reconnected to the new server", connected(2, srv))
	pages[1].say(t, ctx, "hello again from page 2")
	b.eventually(t, ctx, "the new message on both pages", showing("hello again from page 2"))

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

// showing is true when every page shows text among its messages.
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

// eventually polls the pages' state until cond holds, for at most 20 s. If
// it does not, the test fails with screenshots of the pages as they are.
func (b *browser) eventually(t *testing.T, ctx context.Context, what string, cond func([]pageState) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var states []pageState
	for time.Now().Before(deadline) {
		states = states[:0]
		for _, p := range b.Pages {
			states = append(states, (&page{p}).state(ctx))
		}
		if cond(states) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.Screenshots(t)
	t.Fatalf("timed out waiting for %s; the pages show %+v", what, states)
}

// pageState is what the test reads off a page.
type pageState struct {
	State  string   `json:"state"`  // the status pill: connecting, connected, offline
	Online string   `json:"online"` // e.g. "2 online"
	Texts  []string `json:"texts"`  // the messages, oldest first
	Err    string   `json:"-"`      // why the state could not be read
}

const stateJS = `({
	state: document.querySelector("#status")?.dataset.state ?? "",
	online: document.querySelector("#online")?.textContent ?? "",
	texts: [...document.querySelectorAll("#log .text")].map(e => e.textContent),
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

// say types text into the message box as a user would and presses Enter.
func (p *page) say(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	p.Type(t, ctx, "#text", text)
}
