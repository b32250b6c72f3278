package ws

// Graceful shutdown under load: while clients send and the server
// broadcasts, Server.Shutdown sends 1001 to every connection, waits for the
// handlers, and loses no message that Send accepted before Shutdown began.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestShutdownUnderLoad(t *testing.T) {
	const (
		clients    = 16
		perClient  = 400  // most a client sends; Shutdown comes long before
		published  = 4000 // most the server's own publisher sends
		trigger    = 600  // accepted broadcasts before Shutdown is called
		maxTrigger = 5 * time.Second
	)
	ctx := testCtx(t)

	var (
		begun    atomic.Bool // set just before Shutdown is called
		mu       sync.Mutex
		accepted []string // broadcasts whose Send returned nil before Shutdown began
		nAcc     atomic.Int64
	)
	// record notes a Send that returned nil. It reads begun after Send
	// returned: if begun is still false, Send returned before Shutdown
	// was called, and the message must reach every client.
	record := func(msg string, err error) {
		if err == nil && !begun.Load() {
			mu.Lock()
			accepted = append(accepted, msg)
			mu.Unlock()
			nAcc.Add(1)
		}
	}

	var srv *Server
	srv = NewServer(func(ctx context.Context, c *Conn) error {
		// The relay: every message of c is broadcast.
		for {
			_, p, err := c.Read(ctx)
			if err != nil {
				return err
			}
			err = srv.Send(ctx, Message{Type: Text, Body: bytes.NewReader(p)})
			record(string(p), err)
			if err != nil {
				return err
			}
		}
	}, &AcceptOptions{Broadcast: &GroupOptions{SlowTimeout: time.Minute}}) // no client is dropped as slow here
	hs := httptest.NewServer(srv)
	defer hs.Close()
	url := "ws" + strings.TrimPrefix(hs.URL, "http")

	type got struct {
		msgs []string
		err  error
	}
	conns := make([]*Conn, clients)
	results := make([]chan got, clients)
	for i := range conns {
		c, _, err := Dial(ctx, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		conns[i] = c
		results[i] = make(chan got, 1)
		go func() {
			var g got
			for {
				_, p, err := c.Read(ctx)
				if err != nil {
					g.err = err
					break
				}
				g.msgs = append(g.msgs, string(p))
			}
			results[i] <- g
		}()
		// The pong comes from the handler's reads: the server has
		// registered the connection, so it gets every broadcast from now.
		if err := c.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	}

	var load sync.WaitGroup
	for i, c := range conns {
		load.Go(func() {
			for seq := range perClient {
				if c.Write(ctx, Text, fmt.Appendf(nil, "c%d:%d", i, seq)) != nil {
					return
				}
			}
		})
	}
	load.Go(func() { // the server's own broadcasts, concurrent with the relays
		for seq := range published {
			msg := fmt.Sprintf("p:%d", seq)
			err := srv.Send(ctx, Message{Type: Text, Body: strings.NewReader(msg)})
			record(msg, err)
			if err != nil {
				if !errors.Is(err, ErrServerClosed) {
					t.Errorf("publisher: %v", err)
				}
				return
			}
		}
	})

	start := time.Now()
	for nAcc.Load() < trigger && time.Since(start) < maxTrigger {
		time.Sleep(time.Millisecond)
	}
	begun.Store(true)
	shutdownStart := time.Now()
	sctx, cancel := context.WithTimeout(ctx, testTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	shutdownTook := time.Since(shutdownStart)
	if n := srv.Len(); n != 0 {
		t.Errorf("Len after Shutdown = %d", n)
	}
	if err := srv.Send(ctx, Message{Type: Text, Body: strings.NewReader("late")}); !errors.Is(err, ErrServerClosed) {
		t.Errorf("Send after Shutdown: %v, want ErrServerClosed", err)
	}
	if _, resp, err := Dial(ctx, url, nil); err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("Dial after Shutdown: %v, want 503", err)
	}
	load.Wait()

	mu.Lock()
	acc := append([]string(nil), accepted...)
	mu.Unlock()
	if len(acc) < trigger/2 {
		t.Fatalf("only %d broadcasts accepted before Shutdown; the test did not load the server", len(acc))
	}
	total := 0
	for i := range conns {
		var g got
		select {
		case g = <-results[i]:
		case <-time.After(testTimeout):
			t.Fatalf("client %d: reader did not end after Shutdown", i)
		}
		total += len(g.msgs)
		var ce CloseError
		if !errors.As(g.err, &ce) || ce.Code != StatusGoingAway {
			t.Errorf("client %d ended with %v, want a 1001 close", i, g.err)
		}
		// Exactly once, and each sender's messages in order.
		seen := make(map[string]bool, len(g.msgs))
		last := map[string]int{}
		for _, m := range g.msgs {
			if seen[m] {
				t.Errorf("client %d: %q received twice", i, m)
				break
			}
			seen[m] = true
			from, seqText, _ := strings.Cut(m, ":")
			var seq int
			fmt.Sscan(seqText, &seq)
			if prev, ok := last[from]; ok && seq <= prev {
				t.Errorf("client %d: from %s got %d after %d", i, from, seq, prev)
				break
			}
			last[from] = seq
		}
		missing := 0
		for _, m := range acc {
			if !seen[m] {
				if missing < 5 {
					t.Errorf("client %d: accepted broadcast %q lost", i, m)
				}
				missing++
			}
		}
		if missing > 0 {
			t.Errorf("client %d: %d of %d accepted broadcasts lost", i, missing, len(acc))
		}
	}
	t.Logf("%d clients; %d broadcasts accepted before Shutdown, %d deliveries in all; Shutdown took %v",
		clients, len(acc), total, shutdownTook)
}
