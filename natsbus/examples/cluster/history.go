package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"

	"github.com/wesos/wesos/natsbus"
	"github.com/wesos/wesos/ws"
)

// joinHistory is how many past messages a page that joins a room sees.
const joinHistory = 50

// The pages' view of history: each message the node relays is wrapped as
//
//	{"seq":N,"msg":<the message as sent>}
//
// and a page that reconnects asks for /ws?room=…&after=N, the last seq it
// saw. When the messages after it are no longer kept, it gets
//
//	{"type":"gap","after":N,"first":M}
//
// before the kept ones. A page that joins without after= gets the room's last
// joinHistory messages.

// historyMember is the handler of a member of a room with history: its own
// Replay of the room, from where its page asks, relayed to it, and its
// messages stored in the history.
func historyMember(ctx context.Context, conn *ws.Conn, h *natsbus.HistoryTopic, from natsbus.From) error {
	replay, err := h.Replay(ctx, from)
	if err != nil {
		return err
	}
	defer replay.Close()
	ctx, cancel := context.WithCancel(ctx)
	relayed := make(chan error, 1)
	go func() {
		defer cancel() // the page cannot follow the room: end the connection
		relayed <- relayHistory(ctx, conn, replay)
	}()
	err = receive(ctx, conn, h)
	cancel()
	if rerr := <-relayed; rerr != nil {
		return rerr
	}
	return err
}

// receive stores the member's messages in the room's history.
func receive(ctx context.Context, conn *ws.Conn, h *natsbus.HistoryTopic) error {
	for {
		m, err := conn.Next(ctx)
		if err != nil {
			return err
		}
		if err := h.Send(ctx, m); err != nil {
			return err
		}
	}
}

// relayHistory sends the replay's messages to conn, each with its seq.
func relayHistory(ctx context.Context, conn *ws.Conn, replay *natsbus.Replay) error {
	buf := make([]byte, 0, 1024)
	for {
		m, err := replay.Next(ctx)
		var gap *natsbus.GapError
		if errors.As(err, &gap) {
			buf = append(buf[:0], `{"type":"gap","after":`...)
			buf = strconv.AppendUint(buf, gap.After, 10)
			buf = append(buf, `,"first":`...)
			buf = strconv.AppendUint(buf, gap.First, 10)
			buf = append(buf, '}')
			if err := conn.Write(ctx, ws.Text, buf); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, context.Canceled) {
				return nil
			}
			return err
		}
		body, err := io.ReadAll(m.Body)
		if err != nil {
			return err
		}
		buf = append(buf[:0], `{"seq":`...)
		buf = strconv.AppendUint(buf, replay.Seq(), 10)
		buf = append(buf, `,"msg":`...)
		if m.Type == ws.Text && json.Valid(body) {
			buf = append(buf, body...)
		} else {
			q, _ := json.Marshal(string(body)) // not JSON: relayed as a string
			buf = append(buf, q...)
		}
		buf = append(buf, '}')
		if err := conn.Write(ctx, ws.Text, buf); err != nil {
			return err
		}
	}
}
