package natsbus_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"strings"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/natsbus"
	"github.com/wesos/wesos/ws"
)

// A subject is a Sink and a Source of ws.Message: what is sent comes back to
// every subscriber, this one included, with its type.
func ExampleSubject() {
	ctx := context.Background()
	node, err := natsbus.StartNode(ctx, nil) // a NATS server in this process, and a connection to it
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()

	sub, err := natsbus.Subject(node.Conn(), "greetings", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer sub.Close()
	sub.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader("hello, bus")})
	m, err := sub.Next(ctx)
	if err != nil {
		log.Fatal(err)
	}
	b, _ := io.ReadAll(m.Body)
	fmt.Println(m.Type == ws.Text, string(b))
	// Output: true hello, bus
}

// A room that spans every node of a cluster: each node relays the room's
// subject to its own members, and each member's messages to the subject.
func ExampleSubject_room() {
	ctx := context.Background()
	// Routes: the peers' route URLs, which they listen on with ClusterPort.
	node, err := natsbus.StartNode(ctx, &natsbus.NodeOptions{
		ClusterPort: 6222,
		Routes:      []string{"nats://node2:6222", "nats://node3:6222"},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	nc := node.Conn()

	room := ws.NewGroup(nil)                             // this node's members of the room
	sub, err := natsbus.Subject(nc, "chat.room.go", nil) // Sink and Source of ws.Message
	if err != nil {
		log.Fatal(err)
	}
	go wesos.Pipe(ctx, room, sub) // the bus → this node's members
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		room.Add(c)
		return wesos.Pipe(ctx, sub, c) // this member's messages → the bus
	}, nil)
	log.Fatal(http.ListenAndServe(":8080", srv))
}

// A room's history: a client that comes back with the last sequence number
// it saw gets what it missed, then live messages.
func ExampleHistory() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "history")
	defer os.RemoveAll(dir)
	node, err := natsbus.StartNode(ctx, &natsbus.NodeOptions{JetStream: true, StoreDir: dir})
	if err != nil {
		log.Fatal(err)
	}
	defer node.Close()
	h, err := natsbus.History(ctx, node.Conn(), "chat.room.go", &natsbus.HistoryOptions{MaxMsgs: 1000})
	if err != nil {
		log.Fatal(err)
	}
	for _, text := range []string{"one", "two", "three"} {
		h.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader(text)})
	}

	lastSeen := uint64(1)                                       // the client saw "one"
	replay, err := h.Replay(ctx, natsbus.From{After: lastSeen}) // or natsbus.From{Last: 50} for a joiner
	if err != nil {
		log.Fatal(err)
	}
	defer replay.Close()
	for range 2 {
		m, err := replay.Next(ctx) // a *natsbus.GapError if the history no longer has it all
		if err != nil {
			log.Fatal(err)
		}
		b, _ := io.ReadAll(m.Body)
		fmt.Println(replay.Seq(), string(b))
	}
	// Output:
	// 2 two
	// 3 three
}
