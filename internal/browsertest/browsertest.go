// Package browsertest drives a headless Chromium through the Chrome
// DevTools Protocol (CDP), over a WebSocket opened with this module's own
// ws.Dial, for the tests that load a page from a server under test: the
// broadcast example's chat and the wesos command's -static pages.
package browsertest

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/testpeer"
	"github.com/wesos/wesos/ws"
)

// ChromiumPath is where the tests look for Chromium (Debian's package).
const ChromiumPath = "/usr/bin/chromium"

// ScreenshotEnv names a directory for the pages' screenshots. They are saved
// when a test fails, and also when it passes if the variable is set.
const ScreenshotEnv = "WESOS_SCREENSHOT_DIR"

// Need skips the test under -short, saying it leaves out what, and when
// Chromium is missing (unless on CI, where that fails it).
func Need(t *testing.T, what string) {
	t.Helper()
	testpeer.SkipShort(t, what)
	if _, err := os.Stat(ChromiumPath); err != nil {
		testpeer.Missing(t, "Chromium", "apt-get install chromium", err.Error())
	}
}

// Call sends a CDP command (to the browser if session is "", else to that
// page's session) and decodes its result into result, if not nil.
func (b *Browser) Call(ctx context.Context, session, method string, params, result any, timeout time.Duration) error {
	return b.cdp.call(ctx, session, method, params, result, timeout)
}

// Responses returns the WebSocket handshake responses Chromium reported, in
// order.
func (b *Browser) Responses() []Response {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.responses)
}

// Documents returns the protocol ("http/1.1", "h2") of each page load, in
// order.
func (b *Browser) Documents() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.documents)
}

// Log returns the pages' console messages, exceptions and WebSocket events
// seen so far.
func (b *Browser) Log() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log)
}

// Browser is a headless Chromium and the CDP connection to it.
type Browser struct {
	// Pages are the pages opened, in order; Screenshots takes theirs.
	Pages []*Page

	cdp      *cdp
	captured bool // screenshots were taken

	mu        sync.Mutex
	log       []string   // console messages, exceptions and WebSocket handshakes of the pages
	responses []Response // the WebSocket handshake responses, as Chromium reports them
	documents []string   // the protocol ("http/1.1", "h2") of each page load
}

// Response is a WebSocket handshake response that Chromium reported.
type Response struct {
	Page    int
	Status  int
	Headers map[string]string
}

// Page is one tab, attached in flatten mode: its commands carry its
// session id.
type Page struct {
	N       int    // 1 for the first page opened
	Session string // the CDP session id
	b       *Browser
}

// Start launches Chromium and connects to its DevTools endpoint. Cleanup
// closes the browser and kills its process group; if the test failed, it
// takes screenshots first and logs Chromium's output and the pages'
// console. flags are added to Chromium's command line.
func Start(t *testing.T, ctx context.Context, flags ...string) *Browser {
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
	cmd := exec.Command(ChromiumPath, append(args, "about:blank")...)
	cmd.Stdout = stderr
	cmd.Stderr = stderr // a file: no copying goroutine, and it survives the browser
	ownGroup(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	b := &Browser{}
	t.Cleanup(func() {
		if t.Failed() && !b.captured && b.cdp != nil {
			b.Screenshots(t)
		}
		if b.cdp != nil {
			b.cdp.call(context.Background(), "", "Browser.close", nil, nil, 5*time.Second)
			b.cdp.close()
		}
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
		}
		killGroup(cmd) // the whole group: renderers too
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

// Open opens a new window, attaches to it and loads url, so that the page's
// network events are all seen, and appends it to Pages.
func (b *Browser) Open(t *testing.T, ctx context.Context, url string) *Page {
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
	p := &Page{b: b, N: int(b.cdp.pages.Add(1)), Session: attached.SessionID}
	b.cdp.setPage(p.Session, p.N)
	b.Pages = append(b.Pages, p)
	for _, domain := range []string{"Runtime.enable", "Network.enable"} {
		if err := b.cdp.call(ctx, p.Session, domain, nil, nil, 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	var nav struct{ ErrorText string }
	if err := b.cdp.call(ctx, p.Session, "Page.navigate", map[string]any{"url": url}, &nav, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if nav.ErrorText != "" {
		t.Fatalf("page %d: loading %s: %s", p.N, url, nav.ErrorText)
	}
	return p
}

// Eval evaluates a JavaScript expression in the page (awaiting a promise)
// and decodes its value into v, if v is not nil.
func (p *Page) Eval(ctx context.Context, expr string, v any) error {
	var res struct {
		Result           struct{ Value json.RawMessage }
		ExceptionDetails *struct{ Text string }
	}
	if err := p.b.cdp.call(ctx, p.Session, "Runtime.evaluate", map[string]any{
		"expression": expr, "returnByValue": true, "awaitPromise": true,
	}, &res, 5*time.Second); err != nil {
		return err
	}
	if res.ExceptionDetails != nil {
		return fmt.Errorf("page %d: %s: %s", p.N, expr, res.ExceptionDetails.Text)
	}
	if v == nil || res.Result.Value == nil {
		return nil
	}
	return json.Unmarshal(res.Result.Value, v)
}

// Type types text into the element that selector finds, as a user would,
// and presses Enter.
func (p *Page) Type(t *testing.T, ctx context.Context, selector, text string) {
	t.Helper()
	enter := map[string]any{"type": "keyDown", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"}
	steps := []struct {
		method string
		params map[string]any
	}{
		{"Runtime.evaluate", map[string]any{"expression": "document.querySelector(" + strconv.Quote(selector) + ").focus()"}},
		{"Input.insertText", map[string]any{"text": text}},
		{"Input.dispatchKeyEvent", enter},
		{"Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13}},
	}
	for _, s := range steps {
		if err := p.b.cdp.call(ctx, p.Session, s.method, s.params, nil, 5*time.Second); err != nil {
			t.Fatalf("page %d: %s: %v", p.N, s.method, err)
		}
	}
}

// Screenshots saves a PNG of each page and logs where: in the directory
// that ScreenshotEnv names, or in a new temporary one.
func (b *Browser) Screenshots(t *testing.T) {
	b.captured = true
	dir := os.Getenv(ScreenshotEnv)
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "wesos-browser-"); err != nil { // outlives the test, unlike t.TempDir
			t.Logf("no screenshots: %v", err)
			return
		}
	}
	for _, p := range b.Pages {
		var shot struct{ Data string }
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := b.cdp.call(ctx, p.Session, "Page.captureScreenshot", map[string]any{"format": "png"}, &shot, 10*time.Second)
		cancel()
		png, derr := base64.StdEncoding.DecodeString(shot.Data)
		if err = errors.Join(err, derr); err == nil {
			path := filepath.Join(dir, fmt.Sprintf("%s-page%d.png", strings.ReplaceAll(t.Name(), "/", "-"), p.N))
			if err = os.WriteFile(path, png, 0o644); err == nil {
				t.Logf("screenshot of page %d: %s", p.N, path)
				continue
			}
		}
		t.Logf("no screenshot of page %d: %v", p.N, err)
	}
}

// event records what the pages say about themselves.
func (b *Browser) event(page int, method string, params json.RawMessage) {
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
		b.responses = append(b.responses, Response{page, e.Response.Status, e.Response.Headers})
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

// Handshakes returns the WebSocket handshakes that Chromium reported, as
// lines "page N handshake: STATUS, extensions: ...".
func (b *Browser) Handshakes() []string {
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
