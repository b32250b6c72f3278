package main

// The browser end-to-end test: two pages of the chat in headless Chromium,
// driven through the Chrome DevTools Protocol (CDP) over a WebSocket opened
// with this module's own ws.Dial, so it is also an interop test of our client
// against Chromium's server, and of our server against Chromium's client.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/testpeer"
	"github.com/wesos/wesos/ws"
)

const chromiumPath = "/usr/bin/chromium"

// screenshotEnv names a directory for the pages' screenshots. They are saved
// when the test fails, and also when it passes if the variable is set.
const screenshotEnv = "WESOS_SCREENSHOT_DIR"

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
	b.pages = pages

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
	handshakes := b.handshakes()
	if len(handshakes) == 0 {
		t.Errorf("Chromium reported no WebSocket handshake")
	}
	for _, h := range handshakes {
		t.Logf("seen by Chromium: %s", h)
		if strings.Contains(h, "permessage-deflate") != compress {
			t.Errorf("compression %v, but Chromium saw %s", compress, h)
		}
	}
	if os.Getenv(screenshotEnv) != "" {
		b.screenshots(t)
	}
}

// needChromium skips the test under -short, and when Chromium is missing
// (unless on CI, where that fails it).
func needChromium(t *testing.T) {
	t.Helper()
	testpeer.SkipShort(t, "the chat in headless Chromium")
	if _, err := os.Stat(chromiumPath); err != nil {
		testpeer.Missing(t, "Chromium", "apt-get install chromium", err.Error())
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
		for _, p := range b.pages {
			states = append(states, p.state(ctx))
		}
		if cond(states) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.screenshots(t)
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

// browser is a headless Chromium and the CDP connection to it.
type browser struct {
	cdp      *cdp
	pages    []*page
	captured bool // screenshots were taken

	mu        sync.Mutex
	log       []string      // console messages, exceptions and WebSocket handshakes of the pages
	responses []cdpResponse // the WebSocket handshake responses, as Chromium reports them
	documents []string      // the protocol ("http/1.1", "h2") of each page load
}

// cdpResponse is a WebSocket handshake response that Chromium reported.
type cdpResponse struct {
	Page    int
	Status  int
	Headers map[string]string
}

// page is one tab, attached in flatten mode: its commands carry its sessionId.
type page struct {
	b       *browser
	n       int
	session string
}

// startChromium launches Chromium and connects to its DevTools endpoint.
// Cleanup closes the browser and kills its process group. flags are added
// to Chromium's command line.
func startChromium(t *testing.T, ctx context.Context, flags ...string) *browser {
	t.Helper()
	dir := t.TempDir() // removed after the cleanup below has ended Chromium
	stderr, err := os.Create(filepath.Join(dir, "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	// No preconnects ("Preload pages" off): a preconnected socket that no
	// request uses holds up an HTTP/2 server's graceful shutdown, which
	// waits for its client preface for 10 s.
	prefs := filepath.Join(dir, "profile", "Default", "Preferences")
	if err := os.MkdirAll(filepath.Dir(prefs), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(prefs, []byte(`{"net":{"network_prediction_options":2}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
		"--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(dir, "profile"), "--remote-debugging-port=0"}, flags...)
	cmd := exec.Command(chromiumPath, append(args, "about:blank")...)
	cmd.Stdout = stderr
	cmd.Stderr = stderr // a file: no copying goroutine, and it survives the browser
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	b := &browser{}
	t.Cleanup(func() {
		if t.Failed() && !b.captured && b.cdp != nil {
			b.screenshots(t)
		}
		if b.cdp != nil {
			b.cdp.call(context.Background(), "", "Browser.close", nil, nil, 5*time.Second)
			b.cdp.close()
		}
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // the whole group: renderers too
		<-exited
		if t.Failed() {
			out, _ := os.ReadFile(stderr.Name())
			lines := strings.Split(string(out), "\n")
			lines = slices.DeleteFunc(lines, func(l string) bool { return strings.Contains(l, "dbus") }) // no D-Bus here: noise
			t.Logf("Chromium's output, D-Bus errors left out:\n%s", strings.Join(lines, "\n"))
			b.mu.Lock()
			t.Logf("the pages' console:\n%s", strings.Join(b.log, "\n"))
			b.mu.Unlock()
		}
	})

	// Chromium prints its DevTools URL on stderr.
	devtools := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
	var endpoint string
	for i := 0; endpoint == ""; i++ {
		out, _ := os.ReadFile(stderr.Name())
		if m := devtools.FindSubmatch(out); m != nil {
			endpoint = string(m[1])
			break
		}
		select {
		case <-exited:
			t.Fatalf("Chromium exited:\n%s", out)
		case <-time.After(50 * time.Millisecond):
		}
		if i == 600 {
			t.Fatalf("Chromium printed no DevTools URL in 30 s:\n%s", out)
		}
	}
	c, _, err := ws.Dial(ctx, endpoint, nil)
	if err != nil {
		t.Fatalf("dial DevTools: %v", err)
	}
	b.cdp = newCDP(c, b.event)
	return b
}

// open opens a new window, attaches to it and loads url, so that the page's
// network events are all seen.
func (b *browser) open(t *testing.T, ctx context.Context, url string) *page {
	t.Helper()
	var target struct{ TargetID string }
	if err := b.cdp.call(ctx, "", "Target.createTarget", map[string]any{
		"url": "about:blank", "newWindow": true, "width": 900, "height": 640,
	}, &target, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	var attached struct{ SessionID string }
	if err := b.cdp.call(ctx, "", "Target.attachToTarget", map[string]any{
		"targetId": target.TargetID, "flatten": true,
	}, &attached, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	p := &page{b: b, n: int(b.cdp.pages.Add(1)), session: attached.SessionID}
	b.cdp.setPage(p.session, p.n)
	for _, domain := range []string{"Runtime.enable", "Network.enable"} {
		if err := b.cdp.call(ctx, p.session, domain, nil, nil, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var nav struct{ ErrorText string }
	if err := b.cdp.call(ctx, p.session, "Page.navigate", map[string]any{"url": url}, &nav, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if nav.ErrorText != "" {
		t.Fatalf("page %d: loading %s: %s", p.n, url, nav.ErrorText)
	}
	return p
}

// eval evaluates a JavaScript expression in the page and decodes its value.
func (p *page) eval(ctx context.Context, expr string, v any) error {
	var res struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct{ Text string }
	}
	if err := p.b.cdp.call(ctx, p.session, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true,
	}, &res, 5*time.Second); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("page %d: %s: %s", p.n, expr, res.ExceptionDetails.Text)
	}
	if v == nil || res.Result.Value == nil {
		return nil
	}
	return json.Unmarshal(res.Result.Value, v)
}

func (p *page) state(ctx context.Context) pageState {
	var s pageState
	if err := p.eval(ctx, stateJS, &s); err != nil {
		s.Err = err.Error() // e.g. the page is still loading: poll again
	}
	return s
}

// say types text into the message box as a user would and presses Enter.
func (p *page) say(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	enter := map[string]any{"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"}
	steps := []struct {
		method string
		params map[string]any
	}{
		{"Runtime.evaluate", map[string]any{"expression": `document.querySelector("#text").focus()`}},
		{"Input.insertText", map[string]any{"text": text}},
		{"Input.dispatchKeyEvent", enter},
		{"Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}},
	}
	for _, s := range steps {
		if err := p.b.cdp.call(ctx, p.session, s.method, s.params, nil, 5*time.Second); err != nil {
			t.Fatalf("page %d: %s: %v", p.n, s.method, err)
		}
	}
}

// screenshots saves a PNG of each page and logs where.
func (b *browser) screenshots(t *testing.T) {
	b.captured = true
	dir := os.Getenv(screenshotEnv)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "wesos-browser-"); err != nil { // outlives the test, unlike t.TempDir
			t.Logf("no screenshots: %v", err)
			return
		}
	}
	for _, p := range b.pages {
		var shot struct{ Data string }
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := b.cdp.call(ctx, p.session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot, 10*time.Second)
		cancel()
		png, derr := base64.StdEncoding.DecodeString(shot.Data)
		if err = errors.Join(err, derr); err == nil {
			path := filepath.Join(dir, fmt.Sprintf("%s-page%d.png", strings.ReplaceAll(t.Name(), "/", "-"), p.n))
			if err = os.WriteFile(path, png, 0o644); err == nil {
				t.Logf("screenshot of page %d: %s", p.n, path)
				continue
			}
		}
		t.Logf("no screenshot of page %d: %v", p.n, err)
	}
}

// event records what the pages say about themselves.
func (b *browser) event(page int, method string, params json.RawMessage) {
	var line string
	switch method {
	case "Runtime.consoleAPICalled":
		var e struct {
			Type string
			Args []struct {
				Value       any
				Description string
			}
		}
		json.Unmarshal(params, &e)
		var args []string
		for _, a := range e.Args {
			args = append(args, fmt.Sprint(a.Value, a.Description))
		}
		line = fmt.Sprintf("page %d console.%s: %s", page, e.Type, strings.Join(args, " "))
	case "Runtime.exceptionThrown":
		line = fmt.Sprintf("page %d exception: %s", page, params)
	case "Network.webSocketHandshakeResponseReceived":
		var e struct {
			Response struct {
				Status  int
				Headers map[string]string
			}
		}
		json.Unmarshal(params, &e)
		ext := ""
		for k, v := range e.Response.Headers {
			if strings.EqualFold(k, "Sec-WebSocket-Extensions") { // lower case over HTTP/2
				ext = v
			}
		}
		if ext == "" {
			ext = "none"
		}
		line = fmt.Sprintf("page %d handshake: %d, extensions: %s", page, e.Response.Status, ext)
		b.mu.Lock()
		b.responses = append(b.responses, cdpResponse{page, e.Response.Status, e.Response.Headers})
		b.mu.Unlock()
	case "Network.responseReceived":
		var e struct {
			Type     string
			Response struct{ URL, Protocol string }
		}
		json.Unmarshal(params, &e)
		if e.Type != "Document" {
			return
		}
		line = fmt.Sprintf("page %d loaded %s over %s", page, e.Response.URL, e.Response.Protocol)
		b.mu.Lock()
		b.documents = append(b.documents, e.Response.Protocol)
		b.mu.Unlock()
	case "Network.webSocketFrameError":
		line = fmt.Sprintf("page %d WebSocket error: %s", page, params)
	default:
		return
	}
	b.mu.Lock()
	b.log = append(b.log, line)
	b.mu.Unlock()
}

func (b *browser) handshakes() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var hs []string
	for _, l := range b.log {
		if strings.Contains(l, "handshake") {
			hs = append(hs, l)
		}
	}
	return hs
}

// cdp is a minimal Chrome DevTools Protocol client: JSON commands with ids,
// answered by id, and events, routed by sessionId in flatten mode.
type cdp struct {
	c       *ws.Conn
	onEvent func(page int, method string, params json.RawMessage)
	nextID  atomic.Int64
	pages   atomic.Int64

	mu       sync.Mutex
	waiting  map[int64]chan cdpMessage
	sessions map[string]int // sessionId → page number
	done     chan struct{}  // closed when the reader has ended, with err
	err      error
}

type cdpMessage struct {
	ID        int64           `json:"id,omitempty"`
	SessionID string          `json:"sessionId,omitempty"`
	Method    string          `json:"method,omitempty"`
	Params    any             `json:"params,omitempty"`
	Result    json.RawMessage `json:"result,omitempty"`
	Error     *struct {
		Code    int
		Message string
	} `json:"error,omitempty"`
}

func newCDP(c *ws.Conn, onEvent func(int, string, json.RawMessage)) *cdp {
	x := &cdp{c: c, onEvent: onEvent, waiting: map[int64]chan cdpMessage{}, sessions: map[string]int{}, done: make(chan struct{})}
	go x.read()
	return x
}

func (x *cdp) setPage(session string, n int) {
	x.mu.Lock()
	x.sessions[session] = n
	x.mu.Unlock()
}

// read routes answers to their callers and events to onEvent until the
// connection ends.
func (x *cdp) read() {
	defer close(x.done)
	for {
		_, p, err := x.c.Read(context.Background())
		if err != nil {
			x.err = err
			return
		}
		var m struct {
			cdpMessage
			Params json.RawMessage `json:"params"`
		}
		if err := json.Unmarshal(p, &m); err != nil {
			continue
		}
		x.mu.Lock()
		ch := x.waiting[m.ID]
		delete(x.waiting, m.ID)
		n := x.sessions[m.SessionID]
		x.mu.Unlock()
		switch {
		case ch != nil:
			ch <- m.cdpMessage
		case m.Method != "":
			x.onEvent(n, m.Method, m.Params)
		}
	}
}

// call sends a command (to the browser if session is "", else to that page)
// and decodes its result into result, if not nil.
func (x *cdp) call(ctx context.Context, session, method string, params, result any, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	id := x.nextID.Add(1)
	ch := make(chan cdpMessage, 1)
	x.mu.Lock()
	x.waiting[id] = ch
	x.mu.Unlock()
	defer func() {
		x.mu.Lock()
		delete(x.waiting, id)
		x.mu.Unlock()
	}()
	if params == nil {
		params = struct{}{}
	}
	b, err := json.Marshal(cdpMessage{ID: id, SessionID: session, Method: method, Params: params})
	if err != nil {
		return err
	}
	if err := x.c.Write(ctx, ws.Text, b); err != nil {
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case m := <-ch:
		if m.Error != nil {
			return fmt.Errorf("%s: %s (%d)", method, m.Error.Message, m.Error.Code)
		}
		if result != nil {
			return json.Unmarshal(m.Result, result)
		}
		return nil
	case <-x.done:
		return fmt.Errorf("%s: the DevTools connection ended: %w", method, x.err)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// close ends the DevTools connection and waits for the reader.
func (x *cdp) close() {
	x.c.Close(ws.StatusNormalClosure, "")
	<-x.done
}
