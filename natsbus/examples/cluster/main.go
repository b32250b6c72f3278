// Command cluster is the chat with rooms on several server processes: the
// rooms span the processes through NATS, whose server each process runs
// in-process and routes to its peers. A page on one node and a page on
// another, in the same room, see each other.
//
// Three nodes on one machine, each in its own terminal:
//
//	go run ./natsbus/examples/cluster -addr localhost:8081 -cluster-port 6222 -peers nats://localhost:6223,nats://localhost:6224
//	go run ./natsbus/examples/cluster -addr localhost:8082 -cluster-port 6223 -peers nats://localhost:6222,nats://localhost:6224
//	go run ./natsbus/examples/cluster -addr localhost:8083 -cluster-port 6224 -peers nats://localhost:6222,nats://localhost:6223
//
// then open http://localhost:8081/?room=go and http://localhost:8083/?room=go.
// A node started alone (no -peers) is a single-process chat; -nats URL uses
// an external NATS server or cluster instead of the embedded one. With
// -history DIR (a directory per node), each room keeps its history in
// JetStream on up to three nodes: a page that joins sees the last 50
// messages, one that reconnects gets what it missed (see history.go).
//
// The page is the broadcast example's: it sends
// {"type":"chat","name":…,"text":…}, which the node publishes on the NATS
// subject chat.room.<room> without reading it; every node relays what that
// subject carries to its members of the room.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wesos/wesos"
	"github.com/wesos/wesos/natsbus"
	"github.com/wesos/wesos/ws"
)

// maxRooms bounds the rooms one node keeps: each is a NATS subscription.
const maxRooms = 1000

var roomName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// chat is one node's rooms: one ws.Server for every member, and for each
// room a ws.Group of its members here and the NATS subject that joins it to
// the same room on the other nodes.
type chat struct {
	nc      *nats.Conn
	node    string // shown on the page
	log     *slog.Logger
	history *natsbus.HistoryOptions // nil: rooms without history
	members *ws.Server

	ctx    context.Context // ends the relays from the bus
	cancel context.CancelFunc
	relays sync.WaitGroup

	mu     sync.Mutex
	closed bool
	rooms  map[string]*room
}

// room is a room's members on this node and its subject.
type room struct {
	members *ws.Group             // without history: what the subject carries goes to them
	topic   *natsbus.Topic        // without history
	history *natsbus.HistoryTopic // with history: each member has its own Replay
}

// joining is what Admit learnt of a request: the room, and where the
// member's replay of a room with history starts.
type joining struct {
	room *room
	from natsbus.From
}

type joiningKey struct{}

// historyOptions, if not nil, give every room a history on JetStream.
func newChat(nc *nats.Conn, node string, history *natsbus.HistoryOptions, log *slog.Logger) *chat {
	ctx, cancel := context.WithCancel(context.Background())
	c := &chat{
		nc: nc, node: node, log: log, history: history,
		ctx:    ctx,
		cancel: cancel,
		rooms:  make(map[string]*room),
	}
	c.members = ws.NewServer(c.member, &ws.AcceptOptions{ReadLimit: 64 << 10, ErrorLog: log, Admit: c.admit})
	return c
}

// admit reads the room (and after=) before the upgrade, and opens the room.
func (c *chat) admit(w http.ResponseWriter, req *http.Request) (context.Context, error) {
	name := req.URL.Query().Get("room")
	if !roomName.MatchString(name) {
		return nil, ws.Refuse(http.StatusBadRequest, "room: 1 to 32 letters, digits, - or _")
	}
	j := &joining{from: natsbus.From{Last: joinHistory}}
	if after := req.URL.Query().Get("after"); after != "" {
		n, err := strconv.ParseUint(after, 10, 64)
		if err != nil {
			return nil, ws.Refuse(http.StatusBadRequest, "after: not a sequence number")
		}
		j.from = natsbus.From{After: n}
	}
	r, err := c.room(name)
	if err != nil {
		c.log.Warn("cannot open the room", "room", name, "err", err)
		return nil, ws.Refuse(http.StatusServiceUnavailable, "cannot open the room")
	}
	j.room = r
	return context.WithValue(req.Context(), joiningKey{}, j), nil
}

// member is the handler of every connection.
func (c *chat) member(ctx context.Context, conn *ws.Conn) error {
	j := ctx.Value(joiningKey{}).(*joining)
	if h := j.room.history; h != nil {
		return historyMember(ctx, conn, h, j.from) // the room's history and live messages ⇄ this member
	}
	j.room.members.Add(conn)
	return wesos.Pipe(ctx, j.room.topic, conn) // this member's messages → the bus
}

// room returns the room, made on first use.
func (c *chat) room(name string) (*room, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ws.ErrServerClosed
	}
	if r := c.rooms[name]; r != nil {
		return r, nil
	}
	if len(c.rooms) >= maxRooms {
		return nil, errors.New("too many rooms")
	}
	if c.history != nil {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		defer cancel()
		h, err := natsbus.History(ctx, c.nc, "chat.room."+name, c.history)
		if err != nil {
			return nil, err
		}
		c.rooms[name] = &room{history: h}
		c.log.Info("room opened, with history", "room", name)
		return c.rooms[name], nil
	}
	topic, err := natsbus.Subject(c.nc, "chat.room."+name, &natsbus.SubjectOptions{ErrorLog: c.log})
	if err != nil {
		return nil, err
	}
	r := &room{topic: topic, members: ws.NewGroup(&ws.GroupOptions{ErrorLog: c.log})}
	c.relays.Go(func() {
		err := wesos.Pipe(c.ctx, r.members, topic) // the bus → this node's members
		if err != nil && !errors.Is(err, context.Canceled) {
			c.log.Error("relay from the bus ended", "room", name, "err", err)
		}
	})
	c.rooms[name] = r
	c.log.Info("room opened", "room", name)
	return r, nil
}

// handler serves the page at /, the WebSocket of a room at /ws?room=…, and
// the node's name at /node.
func (c *chat) handler() http.Handler {
	page, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /ws", c.members)
	mux.HandleFunc("GET /node", func(w http.ResponseWriter, req *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprint(w, c.node)
	})
	mux.Handle("GET /", http.FileServerFS(page))
	return mux
}

//go:embed static
var static embed.FS

// shutdown closes every member's connection with 1001 and the rooms'
// subjects, and stops the relays.
func (c *chat) shutdown(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	rooms := c.rooms
	c.mu.Unlock()
	err := c.members.Shutdown(ctx)
	c.cancel()
	for _, r := range rooms {
		if r.topic != nil {
			r.topic.Close()
		}
	}
	c.relays.Wait()
	return err
}

// nodeFlags are the flags of the embedded NATS server.
type nodeFlags struct {
	natsURL     string
	natsPort    int
	clusterPort int
	peers       string
	store       string // JetStream's directory: rooms with history
	name        string
}

// connect starts the embedded NATS node (or connects to -nats) and returns
// the connection and what stops it.
func connect(ctx context.Context, f nodeFlags, log *slog.Logger) (*nats.Conn, func(), error) {
	if f.natsURL != "" {
		nc, err := natsbus.Connect(f.natsURL, log)
		if err != nil {
			return nil, nil, err
		}
		return nc, nc.Close, nil
	}
	n, err := natsbus.StartNode(ctx, &natsbus.NodeOptions{
		Name:        f.name,
		Port:        f.natsPort,
		ClusterPort: f.clusterPort,
		Routes:      splitList(f.peers),
		JetStream:   f.store != "",
		StoreDir:    f.store,
		// With JetStream, a node of a cluster is ready once a majority of
		// the nodes is up: time to start the others.
		ReadyTimeout: 5 * time.Minute,
		ErrorLog:     log,
	})
	if err != nil {
		return nil, nil, err
	}
	log.Info("NATS node up", "client_url", n.ClientURL(), "route_url", n.RouteURL())
	return n.Conn(), func() { n.Close() }, nil
}

// serve runs the chat on ln until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, ln net.Listener, c *chat) error {
	hs := &http.Server{Handler: c.handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: time.Minute, MaxHeaderBytes: 64 << 10}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	select {
	case err := <-served:
		c.shutdown(context.Background())
		return err
	case <-ctx.Done():
	}
	stop, cancel := context.WithTimeout(context.Background(), 2*ws.DefaultCloseTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var httpErr, wsErr error
	wg.Go(func() { httpErr = hs.Shutdown(stop) })
	wg.Go(func() { wsErr = c.shutdown(stop) })
	wg.Wait()
	<-served
	return errors.Join(httpErr, wsErr)
}

func main() {
	addr := flag.String("addr", "localhost:8081", "HTTP address to listen on")
	var f nodeFlags
	flag.StringVar(&f.natsURL, "nats", "", "URL of an external NATS server or cluster; empty: run one in this process")
	flag.IntVar(&f.natsPort, "nats-port", 0, "client port of the embedded NATS server (0: any free port)")
	flag.IntVar(&f.clusterPort, "cluster-port", 0, "route port of the embedded NATS server, which -peers of the other nodes name (0: none without -peers)")
	flag.StringVar(&f.peers, "peers", "", "comma-separated route URLs of the other nodes, e.g. nats://localhost:6223,nats://localhost:6224")
	flag.StringVar(&f.store, "history", "", "keep each room's history (the last 10,000 messages, a day) in JetStream files under this directory: a page that joins sees the last 50, one that reconnects gets what it missed")
	flag.StringVar(&f.name, "name", "", "this node's name in the NATS cluster, stable across restarts (default: -addr)")
	flag.Parse()

	log := slog.Default()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("cannot listen", "err", err)
		os.Exit(1)
	}
	if f.name == "" {
		f.name = strings.NewReplacer(":", "-", ".", "-").Replace(*addr)
	}
	nc, closeNATS, err := connect(context.Background(), f, log)
	if err != nil {
		log.Error("NATS", "err", err)
		os.Exit(1)
	}
	url := pageURL(*addr, ln)
	log.Info("chat node is up: open a room", "url", url+"?room=go")
	var history *natsbus.HistoryOptions
	if f.store != "" {
		// Kept on up to three nodes, so it outlives one of them.
		history = &natsbus.HistoryOptions{Replicas: min(3, 1+len(splitList(f.peers))), ErrorLog: log}
	}
	c := newChat(nc, strings.TrimSuffix(strings.TrimPrefix(url, "http://"), "/"), history, log)
	err = serve(ctx, ln, c)
	closeNATS()
	if err != nil {
		log.Error("shutdown", "err", err)
		os.Exit(1)
	}
	log.Info("chat node is down")
}

// pageURL is the URL to open: the host as given (localhost if none) and the
// port actually bound.
func pageURL(addr string, ln net.Listener) string {
	host, _, _ := net.SplitHostPort(addr)
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)) + "/"
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
