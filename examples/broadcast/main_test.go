package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/wesos/wesos/internal/extest"
	"github.com/wesos/wesos/internal/testpeer"
	"github.com/wesos/wesos/ws"
)

// TestMain fails the package if a test leaves a goroutine behind: servers,
// connections and browser processes all end with their test. At the end it
// says whether Chromium was missing (the browser tests were skipped).
func TestMain(m *testing.M) {
	code := m.Run()
	testpeer.Report("examples/broadcast")
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goleak: Errors on successful test run: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

// testRooms are the rooms of the chats the tests start.
var testRooms = []string{"general", "go", "rust"}

// startChat serves the chat on ln, in-process, until stop is called or the
// test ends. stop shuts the server down gracefully, as Ctrl-C does.
func startChat(t *testing.T, ln net.Listener, compress bool, origins ...string) (srv *ws.Server, stop func()) {
	t.Helper()
	h, srv := newChat(testRooms, origins, compress, extest.Logger(t))
	return srv, serveChat(t, ln, h, srv)
}

// serveChat serves h (the chat's handler, perhaps wrapped) on ln, as
// startChat does.
func serveChat(t *testing.T, ln net.Listener, h http.Handler, srv *ws.Server) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ws.Serve(ctx, ws.HTTPServer(h), ln, srv) }()
	stopped := false
	stop = func() {
		t.Helper()
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}
	t.Cleanup(stop)
	return stop
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func dial(t *testing.T, ctx context.Context, url string, opts *ws.DialOptions) *ws.Conn {
	t.Helper()
	c, _, err := ws.Dial(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// expect reads the next message of c and checks it is the text want.
func expect(t *testing.T, ctx context.Context, c *ws.Conn, want string) {
	t.Helper()
	typ, p, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v (want %s)", err, want)
	}
	if typ != ws.Text || string(p) != want {
		t.Fatalf("got %v %q, want text %q", typ, p, want)
	}
}

// expectGoingAway reads until c's close and checks it is 1001 (the server's
// graceful shutdown). Presence messages may come first: the members that
// leave as the server goes down may be told of one another.
func expectGoingAway(t *testing.T, ctx context.Context, c *ws.Conn) {
	t.Helper()
	for {
		_, p, err := c.Read(ctx)
		if err == nil && strings.HasPrefix(string(p), `{"type":"presence"`) {
			continue
		}
		var ce ws.CloseError
		if !errors.As(err, &ce) || ce.Code != ws.StatusGoingAway {
			t.Fatalf("got %q, %v; want a close with 1001 (going away)", p, err)
		}
		return
	}
}

func get(t *testing.T, url string) (string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return resp.Header.Get("Content-Type"), string(body)
}

func TestChat(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testChat(t, false) })
	t.Run("deflate", func(t *testing.T) { testChat(t, true) })
}

// presenceOf is the presence message of room with names.
func presenceOf(room string, names ...string) string {
	return `{"type":"presence","room":"` + room + `","names":["` + strings.Join(names, `","`) + `"]}`
}

func testChat(t *testing.T, compress bool) {
	ctx := extest.Context(t)
	ln := listen(t, "127.0.0.1:0")
	srv, stop := startChat(t, ln, compress)
	base := "http://" + ln.Addr().String()
	wsBase := "ws://" + ln.Addr().String()
	var opts *ws.DialOptions
	if compress {
		opts = &ws.DialOptions{Compression: &ws.CompressionOptions{Threshold: -1}} // compress everything
	}

	// The page and its assets are served from the binary.
	for path, want := range map[string]string{"/": "<title>wesos chat</title>", "/chat.js": "new WebSocket(", "/style.css": "#status"} {
		if _, body := get(t, base+path); !strings.Contains(body, want) {
			t.Errorf("GET %s lacks %q", path, want)
		}
	}

	// A room that does not exist is refused before the upgrade.
	if _, resp, err := ws.Dial(ctx, wsBase+"/ws/cobol?name=ann", opts); err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
		t.Fatalf("an unknown room: %v, want 404", err)
	}
	if n := srv.Len(); n != 0 {
		t.Fatalf("Len %d after a refusal", n)
	}

	// Everyone in a room learns who is there when someone joins or leaves.
	annGo := dial(t, ctx, wsBase+"/ws/go?name=ann", opts)
	expect(t, ctx, annGo, presenceOf("go", "ann"))
	bobGo := dial(t, ctx, wsBase+"/ws/go?name=bob", opts)
	expect(t, ctx, bobGo, presenceOf("go", "ann", "bob"))
	expect(t, ctx, annGo, presenceOf("go", "ann", "bob"))
	cyRust := dial(t, ctx, wsBase+"/ws/rust?name=cy", opts)
	expect(t, ctx, cyRust, presenceOf("rust", "cy"))
	annRust := dial(t, ctx, wsBase+"/ws/rust?name=ann", opts) // ann is in two rooms
	expect(t, ctx, annRust, presenceOf("rust", "ann", "cy"))
	expect(t, ctx, cyRust, presenceOf("rust", "ann", "cy"))
	_, rooms := get(t, base+"/rooms")
	if want := `[{"name":"general","names":[]},{"name":"go","names":["ann","bob"]},{"name":"rust","names":["ann","cy"]}]`; strings.TrimSpace(rooms) != want {
		t.Fatalf("GET /rooms: %s, want %s", rooms, want)
	}

	// A message reaches the others in its room, unchanged, and no one
	// else: not the sender, not the other room. (Had it gone further, it
	// would have been queued for them before the messages below.)
	msg := `{"type":"chat","name":"ann","text":"hello, go"}`
	if err := annGo.Write(ctx, ws.Text, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, bobGo, msg)
	rustMsg := `{"type":"chat","name":"ann","text":"hello, rust"}`
	if err := annRust.Write(ctx, ws.Text, []byte(rustMsg)); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, cyRust, rustMsg)
	reply := `{"type":"chat","name":"bob","text":"hi ann"}`
	if err := bobGo.Write(ctx, ws.Text, []byte(reply)); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, annGo, reply)

	// It streams: a message written in fragments arrives whole.
	w, err := annGo.Writer(ctx, ws.Text)
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []string{`{"type":"chat",`, `"text":"in`, ` parts"}`} {
		if _, err := io.WriteString(w, part); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, bobGo, `{"type":"chat","text":"in parts"}`)

	// A long one (over the server's compression threshold) too.
	long := `{"type":"chat","text":"` + strings.Repeat("la ", 20000) + `"}`
	if err := bobGo.Write(ctx, ws.Text, []byte(long)); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, annGo, long)

	// /ws alone is the first room; a name is optional.
	anon := dial(t, ctx, wsBase+"/ws", opts)
	expect(t, ctx, anon, presenceOf("general", "anonymous"))

	// bob leaves; ann hears of it in go, and only there.
	if err := bobGo.Close(ws.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, annGo, presenceOf("go", "ann"))

	// Shutdown closes the remaining sockets with 1001.
	done := make(chan struct{})
	go func() {
		defer close(done)
		stop()
	}()
	for _, c := range []*ws.Conn{annGo, annRust, cyRust, anon} {
		expectGoingAway(t, ctx, c)
	}
	<-done
}

func TestOrigins(t *testing.T) {
	ctx := extest.Context(t)
	ln := listen(t, "127.0.0.1:0")
	startChat(t, ln, false, "*.example.com")
	url := "ws://" + ln.Addr().String() + "/ws"

	for origin, ok := range map[string]bool{
		"http://" + ln.Addr().String(): true,  // the page's own origin
		"https://chat.example.com":     true,  // allowed by -origins
		"https://evil.example.net":     false, // cross-site: refused
	} {
		c, resp, err := ws.Dial(ctx, url, &ws.DialOptions{HTTPHeader: http.Header{"Origin": {origin}}})
		switch {
		case ok && err != nil:
			t.Errorf("origin %s: %v", origin, err)
		case !ok && (err == nil || resp == nil || resp.StatusCode != http.StatusForbidden):
			t.Errorf("origin %s: got %v, want 403", origin, err)
		}
		if c != nil {
			c.Close(ws.StatusNormalClosure, "")
		}
	}
}

func TestSplitList(t *testing.T) {
	got := splitList(" a.com, ,*.b.org,")
	if strings.Join(got, "|") != "a.com|*.b.org" {
		t.Errorf("splitList = %q", got)
	}
	if splitList("") != nil {
		t.Errorf("splitList(\"\") is not empty")
	}
}

// TestBinary runs the real program as a user would, and stops it with Ctrl-C.
func TestBinary(t *testing.T) {
	ctx := extest.Context(t)
	p := extest.Start(t, extest.Build(t), nil, "-addr", "127.0.0.1:0")
	base := p.AwaitStderr(t, regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+)/`))[1]

	if ctype, _ := get(t, base+"/"); !strings.HasPrefix(ctype, "text/html") {
		t.Errorf("the page's Content-Type is %q", ctype)
	}
	url := "ws" + strings.TrimPrefix(base, "http") + "/ws/go?name="
	c := dial(t, ctx, url+"bin", nil)
	expect(t, ctx, c, presenceOf("go", "bin"))
	other := dial(t, ctx, url+"other", nil)
	expect(t, ctx, other, presenceOf("go", "bin", "other"))
	expect(t, ctx, c, presenceOf("go", "bin", "other"))
	msg := `{"type":"chat","name":"bin","text":"hi"}`
	if err := c.Write(ctx, ws.Text, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, other, msg)

	p.Interrupt(t)
	expectGoingAway(t, ctx, c)
	expectGoingAway(t, ctx, other)
	if code := p.Wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0\n%s", code, p.Stderr())
	}
	for _, want := range []string{"joined", "left", "chat is down"} {
		if !strings.Contains(p.Stderr(), want) {
			t.Errorf("the log lacks %q:\n%s", want, p.Stderr())
		}
	}
}
