// Package natsbus carries WebSocket messages between server processes on
// NATS, so that a room or a broadcast spans several machines. A NATS subject
// is a wesos.Sink[ws.Message] (publish) and a wesos.Source[ws.Message]
// (subscribe), so a cluster-wide room is two Pipes:
//
//	sub, err := natsbus.Subject(nc, "chat.room.go", nil) // Sink and Source of ws.Message
//	go wesos.Pipe(ctx, room, sub)                         // the bus → this node's members
//	// in each connection's handler:
//	room.Add(c)                                           // room: this node's ws.Group
//	return wesos.Pipe(ctx, sub, c)                        // this member's messages → the bus
//
// A message's type travels with it, and a message of any size streams: one
// larger than the connection's max payload is published in chunks as its
// Body is read, and reaches the receivers as a Body that streams the chunks
// as they arrive, in bounded memory. Chunks of different publishers never
// mix, every receiver gets each publisher's messages in the order they were
// published, and a publisher that stops midway ends only that message, cut
// short (ErrCutShort; a text message at a rune boundary).
//
// NATS itself is at most once: it does not hold messages for a subscriber
// that is away or too slow. What this package adds is that a loss is never
// silent: it is logged, counted (Topic.Stats) and returned (a *LossError from
// Next).
//
// History and resume come from JetStream: History keeps a subject's
// messages within bounds (count, age, bytes), and a Replay starts after the
// sequence number a client last saw, or at the last N messages, then goes on
// live, with no duplicate and no gap at the seam; messages no longer kept are
// a *GapError, never a silent jump.
//
// The bus need not be a separate service: StartNode runs the real
// nats-server in this process, standalone or routed into a cluster with its
// peers, and returns a connection to it. Connect reaches an external NATS
// server or cluster instead.
package natsbus
