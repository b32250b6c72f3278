package main

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/wesos/wesos/ws"
)

// histClient is a page's side of a room with history, in Go.
type histClient struct {
	conn    *ws.Conn
	lastSeq uint64
}

func joinHistoryRoom(t *testing.T, ctx context.Context, n *testNode, after string) *histClient {
	t.Helper()
	url := "ws://" + n.addr + "/ws?room=h"
	if after != "" {
		url += "&after=" + after
	}
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &histClient{conn: c}
}

// read reads the next relayed message: its seq and its text.
func (c *histClient) read(t *testing.T, ctx context.Context) (uint64, string) {
	t.Helper()
	_, p, err := c.conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Seq  uint64 `json:"seq"`
		Type string `json:"type"`
		Msg  struct {
			Text string `json:"text"`
		} `json:"msg"`
	}
	if err := json.Unmarshal(p, &m); err != nil || m.Seq == 0 {
		t.Fatalf("not a relayed message: %q (%v)", p, err)
	}
	c.lastSeq = m.Seq
	return m.Seq, m.Msg.Text
}

func (c *histClient) say(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if err := c.conn.Write(ctx, ws.Text, fmt.Appendf(nil, `{"type":"chat","text":%q}`, text)); err != nil {
		t.Fatal(err)
	}
}

// With history, a page that joins sees the room's last 50 messages; one that
// was away comes back with the last seq it saw and gets exactly what it
// missed, in order, then live messages, with none twice.
func TestChatHistory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	n := startNodeWith(t, "127.0.0.1:0", 0, 0, nil, t.TempDir())
	sender := joinHistoryRoom(t, ctx, n, "")
	defer sender.conn.CloseNow()
	for i := 1; i <= 60; i++ {
		sender.say(t, ctx, fmt.Sprint("m", i))
	}
	for i := 1; i <= 60; i++ { // the sender sees its own messages come back
		if _, text := sender.read(t, ctx); text != fmt.Sprint("m", i) {
			t.Fatalf("got %q", text)
		}
	}

	joiner := joinHistoryRoom(t, ctx, n, "")
	for i := 11; i <= 60; i++ {
		if seq, text := joiner.read(t, ctx); text != fmt.Sprint("m", i) || seq != uint64(i) {
			t.Fatalf("joiner: %q at %d, want m%d", text, seq, i)
		}
	}
	joiner.conn.CloseNow() // away
	for i := 61; i <= 160; i++ {
		sender.say(t, ctx, fmt.Sprint("m", i))
	}
	back := joinHistoryRoom(t, ctx, n, fmt.Sprint(joiner.lastSeq))
	defer back.conn.CloseNow()
	go func() { // live ones while it catches up
		for i := 161; i <= 170; i++ {
			sender.say(t, ctx, fmt.Sprint("m", i))
		}
	}()
	for i := 61; i <= 170; i++ {
		if seq, text := back.read(t, ctx); text != fmt.Sprint("m", i) || seq != uint64(i) {
			t.Fatalf("back: %q at %d, want m%d", text, seq, i)
		}
	}
	// The sender's own copies, so that nothing is left in flight.
	for i := 61; i <= 170; i++ {
		sender.read(t, ctx)
	}
}
