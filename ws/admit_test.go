package ws

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type admitKey struct{}

// admitted is what the Admit of these tests keeps of a request for the
// handler: a user and a room, not the request.
type admitted struct{ user, room string }

// roomAdmit admits the requests of /rooms/{room}?user=NAME with a session
// cookie, for the rooms it knows: no cookie is 401, the wrong one 403, an
// unknown room 404, a failure of its own a plain error.
func roomAdmit(w http.ResponseWriter, r *http.Request) (context.Context, error) {
	ck, err := r.Cookie("session")
	if err != nil {
		w.Header().Set("WWW-Authenticate", `Cookie realm="chat"`)
		return nil, Refuse(http.StatusUnauthorized, "log in first")
	}
	if ck.Value == "broken" {
		return nil, errors.New("session store unreachable")
	}
	if ck.Value != "ok" {
		return nil, Refuse(http.StatusForbidden, "not your session")
	}
	room, found := strings.CutPrefix(r.URL.Path, "/rooms/")
	if !found || (room != "go" && room != "rust") {
		return nil, Refuse(http.StatusNotFound, "no such room")
	}
	w.Header().Set("Set-Cookie", "seen="+room)
	return context.WithValue(r.Context(), admitKey{}, admitted{r.URL.Query().Get("user"), room}), nil
}

// requestTo returns a raw upgrade request for target (path and query) with
// the extra header lines.
func requestTo(host, target string, extra ...string) string {
	return strings.Replace(upgradeRequest(host, extra...), "GET /ws ", "GET "+target+" ", 1)
}

// TestServerAdmit checks that requests refused before the upgrade get their
// HTTP status and no upgrade, never reach the handler nor Len, and that an
// admitted connection's handler gets what Admit kept in its context, while
// broadcast and Shutdown go on as before.
func TestServerAdmit(t *testing.T) {
	logs := &logRecorder{}
	var handled atomic.Int64
	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error {
		handled.Add(1)
		a, ok := ctx.Value(admitKey{}).(admitted)
		if !ok {
			return errors.New("no admission in the handler's context")
		}
		if ctx.Value(http.ServerContextKey) == nil {
			return errors.New("the request context's values are lost")
		}
		if err := c.Write(ctx, Text, []byte(a.user+" in "+a.room)); err != nil {
			return err
		}
		_, err := readAll(ctx, c)
		return err
	}, &AcceptOptions{Admit: roomAdmit, ErrorLog: slog.New(logs), CloseTimeout: 100 * time.Millisecond}) // the raw clients never answer a close
	hs := httptest.NewServer(srv)
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")

	for _, tc := range []struct {
		name, target, cookie string
		status               int
		body                 string
		header, value        string // a header Admit set, expected in the response
	}{
		{"no session", "/rooms/go?user=ann", "", 401, "log in first", "Www-Authenticate", `Cookie realm="chat"`},
		{"wrong session", "/rooms/go?user=ann", "session=stolen", 403, "not your session", "", ""},
		{"unknown room", "/rooms/cobol?user=ann", "session=ok", 404, "no such room", "", ""},
		{"plain error", "/rooms/go?user=ann", "session=broken", 403, "Forbidden", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var extra []string
			if tc.cookie != "" {
				extra = append(extra, "Cookie: "+tc.cookie)
			}
			resp, _ := rawRequest(t, host, requestTo(host, tc.target, extra...))
			body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || strings.TrimSpace(string(body)) != tc.body {
				t.Fatalf("answer %s %q, want %d %q", resp.Status, body, tc.status, tc.body)
			}
			if resp.Header.Get("Upgrade") != "" || resp.Header.Get("Sec-WebSocket-Accept") != "" {
				t.Fatalf("a refusal with upgrade headers: %v", resp.Header)
			}
			if tc.header != "" && resp.Header.Get(tc.header) != tc.value {
				t.Fatalf("%s: %q, want %q", tc.header, resp.Header.Get(tc.header), tc.value)
			}
			if n := srv.Len(); n != 0 {
				t.Fatalf("Len %d after a refusal", n)
			}
		})
	}
	if n := handled.Load(); n != 0 {
		t.Fatalf("%d handlers ran for refused requests", n)
	}
	var plain bool
	for _, r := range logs.take() {
		plain = plain || strings.Contains(attr(r, "err"), "session store unreachable")
	}
	if !plain {
		t.Fatal("the plain error of Admit was not logged")
	}

	// Admitted: the handler knows the user and the room, and the cookie
	// Admit set goes out with the 101.
	ctx := testCtx(t)
	conns := make([]*rawConn, 2)
	for i, target := range []string{"/rooms/go?user=ann", "/rooms/rust?user=bob"} {
		resp, raw := rawRequest(t, host, requestTo(host, target, "Cookie: session=ok"))
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("%s: %s", target, resp.Status)
		}
		if got, want := resp.Header.Get("Set-Cookie"), "seen="+strings.TrimPrefix(strings.Split(target, "?")[0], "/rooms/"); got != want {
			t.Fatalf("Set-Cookie %q, want %q", got, want)
		}
		conns[i] = raw
	}
	conns[0].expectFrame(true, opText, "ann in go")
	conns[1].expectFrame(true, opText, "bob in rust")
	waitFor(t, "both connections to be listed", func() bool { return srv.Len() == 2 })

	// The broadcast reaches exactly the admitted connections.
	if err := srv.Send(ctx, Message{Type: Text, Body: strings.NewReader("news")}); err != nil {
		t.Fatal(err)
	}
	for _, raw := range conns {
		raw.expectFrame(true, opText, "news")
	}
	// Shutdown: 1001 to both, and it returns (no refused request is
	// waited for as a handler).
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, raw := range conns {
		raw.expectClose(StatusGoingAway)
	}
	if n := handled.Load(); n != 2 {
		t.Fatalf("%d handlers ran, want 2", n)
	}
}

// TestAcceptAdmit checks that a plain Accept honours Admit as a Server does.
func TestAcceptAdmit(t *testing.T) {
	opts := &AcceptOptions{Admit: roomAdmit}
	results := make(chan error, 2)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err == nil {
			c.CloseNow()
		}
		results <- err
	}))
	defer hs.Close()
	host := strings.TrimPrefix(hs.URL, "http://")

	resp, _ := rawRequest(t, host, requestTo(host, "/rooms/go", "Cookie: session=stolen"))
	var herr *HandshakeError
	if err := <-results; resp.StatusCode != http.StatusForbidden || !errors.As(err, &herr) || herr.Status != http.StatusForbidden {
		t.Fatalf("answer %s, Accept returned %v; want 403 and its HandshakeError", resp.Status, err)
	}
	resp, _ = rawRequest(t, host, requestTo(host, "/rooms/go", "Cookie: session=ok"))
	if err := <-results; resp.StatusCode != http.StatusSwitchingProtocols || err != nil {
		t.Fatalf("answer %s, Accept returned %v; want 101", resp.Status, err)
	}
}

// TestRefuseStatus checks that a status that is not a refusal (a 2xx that
// would read as an answer, a 101) is answered 500.
func TestRefuseStatus(t *testing.T) {
	for _, status := range []int{101, 200, 299, 600} {
		srv := NewServer(func(ctx context.Context, c *Conn) error { return nil }, &AcceptOptions{
			Admit: func(http.ResponseWriter, *http.Request) (context.Context, error) {
				return nil, Refuse(status, "odd")
			},
			ErrorLog: slog.New(slog.DiscardHandler),
		})
		hs := httptest.NewServer(srv)
		host := strings.TrimPrefix(hs.URL, "http://")
		resp, _ := rawRequest(t, host, requestTo(host, "/"))
		hs.Close()
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("Refuse(%d): answer %s, want 500", status, resp.Status)
		}
	}
}
