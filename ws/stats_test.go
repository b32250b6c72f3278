package ws

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wesos/wesos"
)

// settle waits until get returns want, the fields named in vary aside
// (whatever their value), and returns what it got last.
func settle(t *testing.T, what string, get func() Stats, want Stats, vary ...string) Stats {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		got := get()
		cmp := got
		for _, f := range vary {
			reflect.ValueOf(&cmp).Elem().FieldByName(f).Set(reflect.ValueOf(&want).Elem().FieldByName(f))
		}
		if reflect.DeepEqual(cmp, want) {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s:\n got %+v\nwant %+v", what, got, want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// closes returns Stats.Closes with one connection ended with each of codes.
func closes(codes ...StatusCode) (c [closeOther + 1]uint64) {
	for _, code := range codes {
		c[closeSlot(code)]++
	}
	return c
}

// roomServer serves a Server whose connections join room and read until
// they end; it returns the Server and its host.
func roomServer(t *testing.T, room *Group) (*Server, string) {
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		room.Add(c)
		_, err := readAll(ctx, c)
		return err
	}, &AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler), CloseTimeout: 100 * time.Millisecond})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		hs.Close()
	})
	return srv, strings.TrimPrefix(hs.URL, "http://")
}

// TestServerStats provokes every event a Server counts, over real
// sockets, one per case, and checks that it moved the counters it should
// and no other.
func TestServerStats(t *testing.T) {
	big := bytes.Repeat([]byte("x"), 256<<10)
	for _, tc := range []struct {
		name    string
		opts    AcceptOptions
		handler func(ctx context.Context, c *Conn) error
		wrap    func(http.Handler) http.Handler // the Server as mounted
		// provoke makes the event happen and returns the Stats expected
		// once every connection has settled.
		provoke func(t *testing.T, srv *Server, host string) Stats
		vary    []string // fields whose value the case cannot know
		netHTTP bool     // only through net/http (ServeHTTP), not Serve
		serve   bool     // only through Serve
		setup   func(srv *Server)
	}{{
		name: "messages in and out, closed with 1000",
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			a := rawUpgrade(t, host)
			fs := a.fs()
			a.write(fs.msg(opText, "hello"), fs.frame(false, opBinary, []byte("ab")).bytes(), fs.frame(true, opContinuation, []byte("c")).bytes())
			a.expectFrame(true, opText, "hello")
			if op, msg := a.readMessage(); op != opBinary || msg != "abc" {
				t.Fatalf("echo %#x %q", byte(op), msg)
			}
			a.write(fs.close(StatusNormalClosure, ""))
			a.expectClose(StatusNormalClosure)
			return Stats{Accepted: 1, MessagesIn: 2, BytesIn: 8, MessagesOut: 2, BytesOut: 8, Closes: closes(1000)}
		},
	}, {
		name: "bad handshakes",
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			for _, req := range []string{
				"GET /ws HTTP/1.1\r\nHost: " + host + "\r\n\r\n",                      // no Upgrade: 400
				strings.Replace(upgradeRequest(host), "Version: 13", "Version: 8", 1), // 426
				strings.Replace(upgradeRequest(host), "GET", "POST", 1),               // 405
				strings.Replace(upgradeRequest(host), clientKey, base64Key(8), 1),     // 400
			} {
				resp, _ := rawRequest(t, host, req)
				if resp.StatusCode < 400 {
					t.Fatalf("%q answered %s", req, resp.Status)
				}
			}
			return Stats{Refused: Refusals{Handshake: 4}}
		},
	}, {
		name: "origin refused",
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			resp, _ := rawRequest(t, host, upgradeRequest(host, "Origin: https://elsewhere.example"))
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("answered %s", resp.Status)
			}
			return Stats{Refused: Refusals{Origin: 1}}
		},
	}, {
		name: "Admit refusals by status",
		opts: AcceptOptions{Admit: func(w http.ResponseWriter, r *http.Request) (context.Context, error) {
			switch r.Header.Get("X-Token") {
			case "":
				return nil, Refuse(http.StatusUnauthorized, "who are you")
			case "slow down":
				return nil, Refuse(http.StatusTooManyRequests, "later")
			case "ok":
				return nil, nil
			}
			return nil, errors.New("bad token") // 403
		}},
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			for _, tok := range []string{"", "", "slow down", "forged"} {
				var extra []string
				if tok != "" {
					extra = append(extra, "X-Token: "+tok)
				}
				if resp, _ := rawRequest(t, host, upgradeRequest(host, extra...)); resp.StatusCode < 400 {
					t.Fatalf("token %q answered %s", tok, resp.Status)
				}
			}
			c, _ := rawRequest(t, host, upgradeRequest(host, "X-Token: ok"))
			if c.StatusCode != http.StatusSwitchingProtocols {
				t.Fatalf("a good token answered %s", c.Status)
			}
			return Stats{Open: 1, Accepted: 1, Refused: Refusals{Admit: map[int]uint64{401: 2, 403: 1, 429: 1}}}
		},
	}, {
		name:    "refused while shutting down",
		netHTTP: true, // Serve's listener is closed: no request arrives
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			if err := srv.Shutdown(testCtx(t)); err != nil {
				t.Fatal(err)
			}
			if resp, _ := rawRequest(t, host, upgradeRequest(host)); resp.StatusCode != http.StatusServiceUnavailable {
				t.Fatalf("answered %s", resp.Status)
			}
			return Stats{Refused: Refusals{ShuttingDown: 1}}
		},
	}, {
		name:    "handshake failed: middleware hides the hijacker",
		netHTTP: true,
		wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				h.ServeHTTP(struct{ http.ResponseWriter }{w}, r)
			})
		},
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			if resp, _ := rawRequest(t, host, upgradeRequest(host)); resp.StatusCode != http.StatusInternalServerError {
				t.Fatalf("answered %s", resp.Status)
			}
			return Stats{HandshakeFailures: 1}
		},
	}, {
		name: "invalid UTF-8 closes with 1007",
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			a := rawUpgrade(t, host)
			a.write(a.fs().msg(opText, "ok\xff"))
			a.expectClose(StatusInvalidFramePayloadData)
			return Stats{Accepted: 1, Closes: closes(1007)}
		},
	}, {
		name: "the peer closes with 1007 and with an application code",
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			for _, code := range []StatusCode{StatusInvalidFramePayloadData, 4001} {
				a := rawUpgrade(t, host)
				a.write(a.fs().close(code, "bye"))
				a.expectClose(code)
			}
			return Stats{Accepted: 2, Closes: closes(1007, 4001)}
		},
	}, {
		name:    "the handler's error chooses the code",
		handler: func(ctx context.Context, c *Conn) error { return CloseError{Code: StatusTryAgainLater} },
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			rawUpgrade(t, host).expectClose(StatusTryAgainLater)
			return Stats{Accepted: 1, Closes: closes(1013)}
		},
	}, {
		name: "the peer vanishes: 1006",
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			a := rawUpgrade(t, host)
			waitFor(t, "the connection to be listed", func() bool { return srv.Len() == 1 })
			a.nc.Close()
			return Stats{Accepted: 1, Closes: closes(1006)}
		},
	}, {
		name: "a member that does not read is dropped as too slow",
		opts: AcceptOptions{Broadcast: &GroupOptions{Queue: 1, SlowTimeout: 20 * time.Millisecond}},
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			rawUpgrade(t, host) // never reads
			waitFor(t, "the connection to be listed", func() bool { return srv.Len() == 1 })
			ctx := testCtx(t)
			n := 0
			for ; n < 1000 && srv.Stats().DroppedSlow == 0; n++ {
				if err := srv.Send(ctx, Message{Type: Binary, Body: bytes.NewReader(big)}); err != nil {
					t.Fatal(err)
				}
			}
			return Stats{Accepted: 1, Broadcasts: uint64(n), BroadcastBytes: uint64(n * len(big)), DroppedSlow: 1, Closes: closes(StatusPolicyViolation)}
		},
		vary: []string{"MessagesOut", "BytesOut"}, // what the socket's buffers took
	}, {
		name:  "a request that does not arrive in time",
		serve: true, // net/http's ReadHeaderTimeout drops it unseen
		setup: func(srv *Server) { srv.handshakeTimeout = 20 * time.Millisecond },
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			nc, err := net.DialTimeout("tcp", host, testTimeout)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: "+host+"\r\n")
			nc.SetReadDeadline(time.Now().Add(testTimeout))
			if n, err := nc.Read(make([]byte, 1)); n != 0 || err == nil {
				t.Fatalf("the server answered (%d bytes, %v), want the connection closed", n, err)
			}
			return Stats{HandshakeTimeouts: 1}
		},
	}, {
		name:  "a request over the header limit: 431",
		serve: true, // net/http answers it before the Server sees it
		provoke: func(t *testing.T, srv *Server, host string) Stats {
			req := upgradeRequest(host, "X-Big: "+strings.Repeat("x", DefaultMaxHeaderBytes))
			if resp, _ := rawRequest(t, host, req); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
				t.Fatalf("answered %s", resp.Status)
			}
			return Stats{Refused: Refusals{Handshake: 1}}
		},
	}} {
		for _, path := range handshakeServers {
			if tc.netHTTP && path.name == "Serve" || tc.serve && path.name != "Serve" {
				continue
			}
			t.Run(path.name+"/"+tc.name, func(t *testing.T) {
				opts := tc.opts
				opts.ErrorLog = slog.New(slog.DiscardHandler)
				opts.CloseTimeout = 100 * time.Millisecond // some raw clients never answer a close
				handler := tc.handler
				if handler == nil {
					handler = func(ctx context.Context, c *Conn) error { return wesos.Pipe(ctx, c, c) }
				}
				srv := NewServer(handler, &opts)
				if tc.setup != nil {
					tc.setup(srv)
				}
				var host string
				if tc.wrap != nil {
					hs := httptest.NewServer(tc.wrap(srv))
					defer hs.Close()
					defer srv.Shutdown(context.Background())
					host = strings.TrimPrefix(hs.URL, "http://")
				} else {
					host, _ = path.start(t, srv)
				}
				want := tc.provoke(t, srv, host)
				settle(t, "Server.Stats", srv.Stats, want, tc.vary...)
			})
		}
	}
}

// TestGroupStats counts a Group's broadcasts and deliveries, in the Group
// and in the Server whose connections are its members, each once.
func TestGroupStats(t *testing.T) {
	room := NewGroup(nil)
	srv, host := roomServer(t, room)
	a, b := rawUpgrade(t, host), rawUpgrade(t, host)
	waitFor(t, "both members", func() bool { return room.Len() == 2 })
	ctx := testCtx(t)
	for _, s := range []string{"one", "two"} {
		if err := room.Send(ctx, Message{Type: Text, Body: strings.NewReader(s)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range []string{"one", "two"} {
		a.expectFrame(true, opText, s)
		b.expectFrame(true, opText, s)
	}
	if err := srv.Send(ctx, Message{Type: Text, Body: strings.NewReader("all")}); err != nil {
		t.Fatal(err)
	}
	a.expectFrame(true, opText, "all")
	b.expectFrame(true, opText, "all")
	var bc Conn // a Conn that is no member: Except(bc) is every member
	settle(t, "Group.Stats", room.Stats, Stats{Open: 2, Accepted: 2, Broadcasts: 2, BroadcastBytes: 6, MessagesOut: 4, BytesOut: 12})
	if err := room.Except(&bc).Send(ctx, Message{Type: Binary, Body: strings.NewReader("four")}); err != nil {
		t.Fatal(err)
	}
	a.expectFrame(true, opBinary, "four")
	b.expectFrame(true, opBinary, "four")
	settle(t, "Group.Stats", room.Stats, Stats{Open: 2, Accepted: 2, Broadcasts: 3, BroadcastBytes: 10, MessagesOut: 6, BytesOut: 20})
	// The Server counts what its connections were sent, from the Group
	// and from its own broadcast, once.
	settle(t, "Server.Stats", srv.Stats, Stats{Open: 2, Accepted: 2, Broadcasts: 1, BroadcastBytes: 3, MessagesOut: 8, BytesOut: 26})
}

// TestGroupStatsStalledSender fails a sender that stops mid-message: the
// Group and the sender's Server count it.
func TestGroupStatsStalledSender(t *testing.T) {
	room := NewGroup(&GroupOptions{StallTimeout: 20 * time.Millisecond, ErrorLog: slog.New(slog.DiscardHandler)})
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		room.Add(c)
		return wesos.Pipe(ctx, room.Except(c), c)
	}, &AcceptOptions{ErrorLog: slog.New(slog.DiscardHandler), CloseTimeout: 100 * time.Millisecond})
	hs := httptest.NewServer(srv)
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	host := strings.TrimPrefix(hs.URL, "http://")
	receiver, staller := rawUpgrade(t, host), rawUpgrade(t, host)
	waitFor(t, "both members", func() bool { return room.Len() == 2 })
	staller.write(staller.fs().frame(false, opText, []byte("part")).bytes())
	if op, msg := receiver.readMessage(); op != opText || msg != "part" {
		t.Fatalf("the stalled message arrived as %#x %q", byte(op), msg)
	}
	staller.expectClose(StatusPolicyViolation)
	settle(t, "Group.Stats", room.Stats, Stats{Open: 1, Accepted: 2, Broadcasts: 1, BroadcastBytes: 4, MessagesOut: 1, BytesOut: 4, DroppedStalled: 1})
	settle(t, "Server.Stats", srv.Stats, Stats{Open: 1, Accepted: 2, MessagesOut: 1, BytesOut: 4, DroppedStalled: 1, Closes: closes(StatusPolicyViolation)})
}

// TestGroupStatsMissedMessages counts the messages a member misses under
// DropMessages for being behind.
func TestGroupStatsMissedMessages(t *testing.T) {
	room := NewGroup(&GroupOptions{Policy: DropMessages, Queue: 1})
	_, host := roomServer(t, room)
	rawUpgrade(t, host) // never reads
	waitFor(t, "the member", func() bool { return room.Len() == 1 })
	ctx := testCtx(t)
	msg := bytes.Repeat([]byte("x"), 60<<10) // one part: never waited for
	n := 0
	for ; n < 10000 && room.Stats().MissedMessages == 0; n++ {
		if err := room.Send(ctx, Message{Type: Binary, Body: bytes.NewReader(msg)}); err != nil {
			t.Fatal(err)
		}
	}
	got := room.Stats()
	if got.MissedMessages != 1 || got.Broadcasts != uint64(n-1) || got.BroadcastBytes != got.Broadcasts*uint64(len(msg)) || got.DroppedSlow != 0 || got.Open != 1 {
		t.Fatalf("after %d messages: %+v", n, got)
	}
}

// TestGroupStatsSlowMember drops a member that does not read: the Group
// counts it, and so does the Server the member is a connection of.
func TestGroupStatsSlowMember(t *testing.T) {
	room := NewGroup(&GroupOptions{Queue: 1, SlowTimeout: 20 * time.Millisecond})
	srv, host := roomServer(t, room)
	rawUpgrade(t, host) // never reads
	waitFor(t, "the member", func() bool { return room.Len() == 1 })
	ctx := testCtx(t)
	big := bytes.Repeat([]byte("x"), 256<<10)
	n := 0
	for ; n < 1000 && room.Stats().DroppedSlow == 0; n++ {
		if err := room.Send(ctx, Message{Type: Binary, Body: bytes.NewReader(big)}); err != nil {
			t.Fatal(err)
		}
	}
	vary := []string{"MessagesOut", "BytesOut"} // what the socket's buffers took
	settle(t, "Group.Stats", room.Stats, Stats{Accepted: 1, Broadcasts: uint64(n), BroadcastBytes: uint64(n * len(big)), DroppedSlow: 1}, vary...)
	settle(t, "Server.Stats", srv.Stats, Stats{Accepted: 1, DroppedSlow: 1, Closes: closes(StatusPolicyViolation)}, vary...)
}

// TestStatsSnapshotAllocs: a snapshot allocates nothing but the map of
// Admit's refusals, once there are some.
func TestStatsSnapshotAllocs(t *testing.T) {
	srv, g := NewServer(func(context.Context, *Conn) error { return nil }, nil), NewGroup(nil)
	defer srv.Shutdown(context.Background())
	for name, stats := range map[string]func() Stats{"Server": srv.Stats, "Group": g.Stats} {
		if n := testing.AllocsPerRun(100, func() { _ = stats() }); n != 0 {
			t.Errorf("%s.Stats: %v allocations, want 0", name, n)
		}
	}
	srv.stats.admitRefused(http.StatusTooManyRequests)
	if n := testing.AllocsPerRun(100, func() { _ = srv.Stats() }); n == 0 || n > 2 {
		t.Errorf("Server.Stats after a refusal by Admit: %v allocations, want the map's (1 or 2)", n)
	}
	if got := srv.Stats().Refused.Admit; got[http.StatusTooManyRequests] != 1 || len(got) != 1 {
		t.Errorf("Refused.Admit = %v", got)
	}
}
