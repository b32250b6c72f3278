package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wesos/wesos/natsbus"
	"github.com/wesos/wesos/ws"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const timeout = 90 * time.Second

// testNode is one node of the chat in this process: the embedded NATS
// server, the chat's rooms and its HTTP server.
type testNode struct {
	t           testing.TB
	addr        string // HTTP, host:port
	natsPort    int
	clusterPort int
	routes      []string
	store       string // JetStream's directory, if the rooms keep history

	node *natsbus.Node
	chat *chat
	hs   *http.Server
	done chan struct{} // closed when Serve has returned
}

func startTestNode(t testing.TB, addr string, natsPort, clusterPort int, routes []string) *testNode {
	return startNodeWith(t, addr, natsPort, clusterPort, routes, "")
}

// startNodeWith starts a node; with store set, its rooms keep their history
// in JetStream there.
func startNodeWith(t testing.TB, addr string, natsPort, clusterPort int, routes []string, store string) *testNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The node lives until kill (or the test's end), not until this
	// function returns.
	opts := &natsbus.NodeOptions{Port: natsPort, ClusterPort: clusterPort, Routes: routes, ErrorLog: log}
	var history *natsbus.HistoryOptions
	if store != "" {
		opts.Name, opts.JetStream, opts.StoreDir = "node-"+strings.ReplaceAll(store, "/", "-"), true, store
		history = &natsbus.HistoryOptions{ErrorLog: log}
	}
	n, err := natsbus.StartNode(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		n.Close()
		t.Fatal(err)
	}
	tn := &testNode{
		t: t, addr: ln.Addr().String(), routes: routes,
		natsPort: n.Server().Addr().(*net.TCPAddr).Port,
		node:     n, chat: newChat(n.Conn(), ln.Addr().String(), history, log), store: store,
		done: make(chan struct{}),
	}
	if a := n.Server().ClusterAddr(); a != nil {
		tn.clusterPort = a.Port
	}
	tn.hs = &http.Server{Handler: tn.chat.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(tn.done)
		tn.hs.Serve(ln)
	}()
	t.Cleanup(tn.kill)
	return tn
}

// kill stops the node at once: its WebSockets are closed without a close
// handshake, its NATS server goes away. Killing a killed node does nothing.
func (tn *testNode) kill() {
	select {
	case <-tn.done:
		return
	default:
	}
	tn.hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace: connections are closed at once
	tn.chat.shutdown(ctx)
	tn.node.Close()
	<-tn.done
}

// restart starts the node again on the same ports.
func (tn *testNode) restart() *testNode {
	return startNodeWith(tn.t, tn.addr, tn.natsPort, tn.clusterPort, tn.routes, tn.store)
}

// startChatCluster starts three chat nodes routed into one NATS cluster.
func startChatCluster(t testing.TB) []*testNode {
	first := startTestNode(t, "127.0.0.1:0", 0, -1, nil)
	peers := []string{fmt.Sprintf("nats://127.0.0.1:%d", first.clusterPort)}
	return []*testNode{first, startTestNode(t, "127.0.0.1:0", 0, 0, peers), startTestNode(t, "127.0.0.1:0", 0, 0, peers)}
}

// members is how many members the room has on the node.
func (tn *testNode) members(room string) int {
	tn.chat.mu.Lock()
	r := tn.chat.rooms[room]
	tn.chat.mu.Unlock()
	if r == nil {
		return 0
	}
	return r.members.Len()
}

// waitRooms waits until every node has members of each room as many as
// want says, and every NATS server knows of the room's subscribers on every
// node that has members of it.
func waitRooms(t testing.TB, ctx context.Context, nodes []*testNode, want map[*testNode]map[string]int) {
	t.Helper()
	subscribed := map[string]int{} // room → how many nodes have members of it
	for _, rooms := range want {
		for room, k := range rooms {
			if k > 0 {
				subscribed[room]++
			}
		}
	}
	for {
		ok := true
		for _, n := range nodes {
			for room, k := range want[n] {
				ok = ok && n.members(room) == k
			}
			for room, k := range subscribed {
				ok = ok && n.node.Server().GlobalAccount().Interest("chat.room."+room) >= k
			}
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("rooms not ready: %v", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// client is a WebSocket client of one node, in one room, that records what
// it receives.
type client struct {
	id   int
	room string
	node *testNode
	conn *ws.Conn
	wg   sync.WaitGroup

	mu   sync.Mutex
	got  map[string][]int // per phase and publisher ("2:c7"), the numbers in order
	errs []string
	n    int
	more chan struct{} // signalled on every message
}

func dialClient(t *testing.T, ctx context.Context, id int, room string, node *testNode) *client {
	t.Helper()
	c := &client{id: id, room: room, node: node, got: map[string][]int{}, more: make(chan struct{}, 1)}
	c.dial(t, ctx)
	return c
}

func (c *client) dial(t *testing.T, ctx context.Context) {
	t.Helper()
	var err error
	// A restarted node may refuse at first (its bus connection coming
	// up): try again until it answers or the test's ctx ends.
	for {
		c.conn, _, err = ws.Dial(ctx, "ws://"+c.node.addr+"/ws?room="+c.room, nil)
		if err == nil || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("client %d: %v", c.id, err)
	}
	conn := c.conn
	c.wg.Go(func() {
		for {
			_, p, err := conn.Read(ctx)
			if err != nil {
				return
			}
			var phase, pub, seq int
			if _, err := fmt.Sscanf(string(p), "%d c%d %d", &phase, &pub, &seq); err != nil {
				c.record(fmt.Sprintf("unexpected message %q", p))
				continue
			}
			c.mu.Lock()
			k := fmt.Sprintf("%d:c%d", phase, pub)
			c.got[k] = append(c.got[k], seq)
			c.n++
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}
	})
}

func (c *client) record(e string) {
	c.mu.Lock()
	c.errs = append(c.errs, e)
	c.mu.Unlock()
}

func (c *client) close() {
	c.conn.CloseNow()
	c.wg.Wait()
}

func (c *client) send(ctx context.Context, phase, seq int) error {
	return c.conn.Write(ctx, ws.Text, fmt.Appendf(nil, "%d c%d %d", phase, c.id, seq))
}

// check waits until c has received, in phase, n messages of each of pubs,
// then checks that they came in order, once each, and nothing else.
func (c *client) check(t *testing.T, ctx context.Context, phase int, pubs []*client, n int) {
	t.Helper()
	count := func() int {
		c.mu.Lock()
		defer c.mu.Unlock()
		total := 0
		for _, p := range pubs {
			total += len(c.got[fmt.Sprintf("%d:c%d", phase, p.id)])
		}
		return total
	}
	for count() < len(pubs)*n {
		select {
		case <-c.more:
		case <-ctx.Done():
			t.Fatalf("client %d (room %s, node %s), phase %d: %d of %d messages", c.id, c.room, c.node.addr, phase, count(), len(pubs)*n)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[string]bool{}
	for _, p := range pubs {
		k := fmt.Sprintf("%d:c%d", phase, p.id)
		want[k] = true
		seqs := c.got[k]
		for i, s := range seqs {
			if s != i {
				t.Fatalf("client %d: from client %d in phase %d, message %d is number %d: out of order or repeated", c.id, p.id, phase, i, s)
			}
		}
		if len(seqs) != n {
			t.Fatalf("client %d: %d messages from client %d in phase %d, want %d", c.id, len(seqs), p.id, phase, n)
		}
	}
	for k := range c.got {
		if strings.HasPrefix(k, fmt.Sprintf("%d:", phase)) && !want[k] {
			t.Fatalf("client %d (room %s) got messages %s from outside its room", c.id, c.room, k)
		}
	}
	if len(c.errs) > 0 {
		t.Fatalf("client %d: %v", c.id, c.errs)
	}
}

// Three nodes, 30 clients spread over them in 3 rooms, 200 messages each:
// every member gets exactly its room's messages, each publisher's in order.
// Then a node is killed while the others' clients send: they lose nothing.
// Then it restarts: its clients come back and get what is sent from then on.
func TestClusterChat(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: 3 nodes, 30 clients, 8,000 messages, a node killed and restarted")
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	nodes := startChatCluster(t)
	rooms := []string{"r0", "r1", "r2"}
	var clients []*client
	want := map[*testNode]map[string]int{}
	for id := range 30 {
		node, room := nodes[id%3], rooms[(id/3)%3]
		clients = append(clients, dialClient(t, ctx, id, room, node))
		if want[node] == nil {
			want[node] = map[string]int{}
		}
		want[node][room]++
	}
	defer func() {
		for _, c := range clients {
			c.close()
		}
	}()
	waitRooms(t, ctx, nodes, want)
	inRoom := func(room string, keep func(*client) bool) []*client {
		var out []*client
		for _, c := range clients {
			if c.room == room && keep(c) {
				out = append(out, c)
			}
		}
		return out
	}
	all := func(*client) bool { return true }

	// Phase 1: everyone sends 200 messages at once.
	sendAll := func(phase, n int, senders []*client, during func(i int)) {
		var wg sync.WaitGroup
		for _, c := range senders {
			wg.Go(func() {
				for i := range n {
					if during != nil && c == senders[0] {
						during(i)
					}
					if err := c.send(ctx, phase, i); err != nil {
						t.Errorf("client %d: send %d: %v", c.id, i, err)
						return
					}
				}
			})
		}
		wg.Wait()
	}
	sendAll(1, 200, clients, nil)
	for _, c := range clients {
		c.check(t, ctx, 1, inRoom(c.room, all), 200)
	}
	t.Logf("phase 1: 30 clients on 3 nodes, 200 messages each, all delivered in order")

	// Phase 2: node 2 is killed while the clients of nodes 1 and 3 send.
	killed := nodes[1]
	alive := func(c *client) bool { return c.node != killed }
	var survivors []*client
	for _, c := range clients {
		if alive(c) {
			survivors = append(survivors, c)
		}
	}
	sendAll(2, 200, survivors, func(i int) {
		if i == 50 {
			killed.kill()
		}
	})
	for _, c := range survivors {
		c.check(t, ctx, 2, inRoom(c.room, alive), 200)
	}
	t.Logf("phase 2: node 2 killed midway; the 20 clients of nodes 1 and 3 lost nothing")

	// Phase 3: node 2 restarts on its ports; its clients reconnect and get
	// the new messages, as does everyone.
	nodes[1] = killed.restart()
	for _, c := range clients {
		if c.node == killed {
			c.close()
			c.node = nodes[1]
			c.dial(t, ctx)
		}
	}
	want[nodes[1]] = want[killed]
	delete(want, killed)
	waitRooms(t, ctx, nodes, want)
	sendAll(3, 20, clients, nil)
	for _, c := range clients {
		c.check(t, ctx, 3, inRoom(c.room, all), 20)
	}
	t.Logf("phase 3: node 2 restarted; its clients reconnected and get every new message")
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}
