package ws

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// SelectSubprotocol chooses among what the client offers: its answer is
// used when the client offered it and it is a token, and it replaces
// Subprotocols.
func TestSelectSubprotocol(t *testing.T) {
	first := func(_ *http.Request, offered []string) string { return offered[0] }
	for _, tc := range []struct {
		name   string
		offer  string // the Sec-WebSocket-Protocol line, "" for none
		choose func(r *http.Request, offered []string) string
		want   string
	}{
		{"the first offered", "Sec-WebSocket-Protocol: wamp, chat", first, "wamp"},
		{"offered over two lines", "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: wamp", func(_ *http.Request, o []string) string { return o[1] }, "wamp"},
		{"by request", "Sec-WebSocket-Protocol: v1, v2", func(r *http.Request, o []string) string {
			if r.URL.Path == "/ws" {
				return "v2"
			}
			return ""
		}, "v2"},
		{"none", "Sec-WebSocket-Protocol: chat", func(*http.Request, []string) string { return "" }, ""},
		{"not offered", "Sec-WebSocket-Protocol: chat", func(*http.Request, []string) string { return "superchat" }, ""},
		{"not a token", `Sec-WebSocket-Protocol: a"b, chat`, first, ""},
		{"nothing offered: not called", "", func(*http.Request, []string) string { panic("called without an offer") }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Subprotocols would choose "chat": SelectSubprotocol replaces it.
			srv, results := startAcceptServer(t, &AcceptOptions{Subprotocols: []string{"chat"}, SelectSubprotocol: tc.choose})
			host := strings.TrimPrefix(srv.URL, "http://")
			var extra []string
			if tc.offer != "" {
				extra = append(extra, tc.offer)
			}
			resp, _ := rawRequest(t, host, upgradeRequest(host, extra...))
			if resp.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("handshake: %s", resp.Status)
			}
			if got := resp.Header.Values("Sec-WebSocket-Protocol"); !slices.Equal(got, nonEmpty(tc.want)) {
				t.Errorf("Sec-WebSocket-Protocol: %q, want %q", got, tc.want)
			}
			res := <-results
			if res.err != nil {
				t.Fatal(res.err)
			}
			if got := res.c.Subprotocol(); got != tc.want {
				t.Errorf("Subprotocol() = %q, want %q", got, tc.want)
			}
		})
	}
}

// nonEmpty is the header values that announce s: none for "".
func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
