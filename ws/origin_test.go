package ws

// Cross-site WebSocket hijacking, end to end through ws.Server. (The origin
// policy case by case, on Accept, is in TestAcceptRequests.)

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestOriginThroughServer: a server that authenticates connections with a
// cookie is hit by a browser on another site, which sends the user's cookie
// along with its own Origin. The upgrade is refused with 403, the handler
// never runs, and the refusal is logged; the same request from the
// server's own origin, from an allowed pattern, or from a non-browser client
// (no Origin) gets through. A malformed Origin or a malformed pattern
// refuses rather than allows.
func TestOriginThroughServer(t *testing.T) {
	cases := []struct {
		name     string
		origin   string // "SELF" is replaced by the server's own http://host:port
		patterns []string
		skip     bool // InsecureSkipOriginCheck
		ok       bool
	}{
		{name: "cross-site page with the user's cookie", origin: "https://evil.example", ok: false},
		{name: "same origin", origin: "SELF", ok: true},
		{name: "no Origin (not a browser)", ok: true},
		{name: "allowed pattern", origin: "https://app.example.com", patterns: []string{"*.example.com"}, ok: true},
		{name: "pattern does not allow others", origin: "https://evil.example", patterns: []string{"*.example.com"}, ok: false},
		{name: "scheme-qualified pattern", origin: "https://app.example.com", patterns: []string{"https://*.example.com"}, ok: true},
		{name: "scheme-qualified pattern, other scheme", origin: "http://app.example.com", patterns: []string{"https://*.example.com"}, ok: false},
		{name: "malformed Origin", origin: "http://[::1", ok: false},
		{name: "Origin without a host", origin: "file:///home/user/page.html", ok: false},
		{name: "malformed pattern fails closed", origin: "https://evil.example", patterns: []string{"[evil"}, ok: false},
		{name: "InsecureSkipOriginCheck", origin: "https://evil.example", skip: true, ok: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var handled atomic.Int64
			var logged bytes.Buffer
			srv := NewServer(func(ctx context.Context, c *Conn) error {
				handled.Add(1)
				c.Write(ctx, Text, []byte("secret"))
				return nil
			}, &AcceptOptions{
				OriginPatterns:          tc.patterns,
				InsecureSkipOriginCheck: tc.skip,
				ErrorLog:                slog.New(slog.NewTextHandler(&logged, nil)),
			})
			// The application's authentication: a session cookie.
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if ck, err := r.Cookie("session"); err != nil || ck.Value != "user-42" {
					http.Error(w, "log in first", http.StatusUnauthorized)
					return
				}
				srv.ServeHTTP(w, r)
			}))
			defer hs.Close()

			h := http.Header{"Cookie": {"session=user-42"}}
			if o := strings.ReplaceAll(tc.origin, "SELF", hs.URL); o != "" {
				h.Set("Origin", o)
			}
			ctx := testCtx(t)
			c, resp, err := Dial(ctx, "ws"+strings.TrimPrefix(hs.URL, "http"), &DialOptions{HTTPHeader: h})
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				_, p, err := c.Read(ctx)
				if err != nil || string(p) != "secret" {
					t.Fatalf("read %q %v", p, err)
				}
				c.Close(StatusNormalClosure, "")
			} else {
				if err == nil {
					c.CloseNow()
					t.Fatal("the upgrade was accepted")
				}
				if resp == nil || resp.StatusCode != http.StatusForbidden {
					t.Fatalf("refusal: %v, want 403", err)
				}
			}
			// Shutdown waits for the handlers, so the count is final.
			if err := srv.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int64{true: 1, false: 0}[tc.ok]; handled.Load() != want {
				t.Fatalf("handler ran %d times, want %d", handled.Load(), want)
			}
			if !tc.ok && !strings.Contains(logged.String(), "handshake failed") {
				t.Fatalf("refusal not logged; log: %q", logged.String())
			}
		})
	}
}
