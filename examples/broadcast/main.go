// Command broadcast is a chat with rooms in the browser, built on the
// README's one-liner: every message of one WebSocket is relayed, as it
// streams, to the others in its room (a ws.Group per room).
//
//	go run ./examples/broadcast        # then open http://localhost:8080 in two tabs
//
// Flags: -addr (localhost:8080), -rooms (general,go,random), -origins (other
// sites whose pages may connect) and -compress (permessage-deflate for
// browsers, which all offer it).
//
// The page (static/, embedded in the binary) lists the rooms and who is in
// each (GET /rooms), and joins one or several: a WebSocket per room, at
// /ws/{room}?name=NAME (/ws alone is the first room). A request for a room
// that does not exist is refused with 404 before the upgrade. The page
// speaks JSON: it sends {"type":"chat","name":…,"text":…}, which the server
// relays to the room's other members without reading it (the page shows its
// own message itself); the server sends {"type":"presence","room":…,
// "names":[…]} to the room whenever someone joins or leaves.
package main

import (
	"context"
	"embed"
	"encoding/json"
	"flag"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// chat is the rooms, their members, and the ws.Server they connect through.
type chat struct {
	srv   *ws.Server
	rooms []*room // in the order of -rooms; the first is /ws's
	log   *slog.Logger
}

// room is one chat room: a ws.Group of its connections, and their names.
type room struct {
	name     string
	group    *ws.Group
	presence wesos.Sink[presence] // JSON to every member (a typed ws.Group)

	mu      sync.Mutex // orders the presence messages as they are sent
	members map[*ws.Conn]string
}

// presence tells a room's members who is in it.
type presence struct {
	Type  string   `json:"type"` // "presence"
	Room  string   `json:"room"`
	Names []string `json:"names"` // sorted; a name may be there twice
}

// member is what Admit keeps of a request for its handler: the room and
// the name, not the request.
type member struct {
	room *room
	name string
}

type memberKey struct{}

// newChat returns the chat's HTTP handler (the page at /, the room list at
// /rooms, the WebSockets at /ws/{room}) and its ws.Server, to shut down.
func newChat(rooms, origins []string, compress bool, log *slog.Logger) (http.Handler, *ws.Server) {
	ch := &chat{log: log}
	for _, name := range rooms {
		r := &room{name: name, group: ws.NewGroup(&ws.GroupOptions{ErrorLog: log}), members: make(map[*ws.Conn]string)}
		r.presence = ws.NewTyped(nil, r.group, ws.JSONCodec[presence]())
		ch.rooms = append(ch.rooms, r)
	}
	opts := &ws.AcceptOptions{
		OriginPatterns: origins, // pages from other sites may connect only if listed
		ReadLimit:      64 << 10,
		ErrorLog:       log,
		Admit:          ch.admit,
		// Keepalive pings find the browsers that vanished without closing
		// (a laptop lid shut, a network gone): after 30 s of silence a ping,
		// and no answer within 10 s closes the connection.
		KeepAlive:        30 * time.Second,
		KeepAliveTimeout: 10 * time.Second,
	}
	if compress {
		opts.Compression = &ws.CompressionOptions{} // permessage-deflate, if the browser offers it
	}
	ch.srv = ws.NewServer(ch.handle, opts)

	page, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	for _, pattern := range []string{"/ws", "/ws/{room}"} {
		mux.Handle("GET "+pattern, ch.srv)
		mux.Handle("CONNECT "+pattern, ch.srv) // the same over HTTP/2 (RFC 8441: extended CONNECT), see package ws
	}
	mux.HandleFunc("GET /rooms", ch.list)
	mux.Handle("GET /", http.FileServerFS(page))
	return mux, ch.srv
}

//go:embed static
var static embed.FS

// admit runs before the upgrade: a room that does not exist is refused
// with 404; the handler gets the room and the member's name.
func (ch *chat) admit(w http.ResponseWriter, r *http.Request) (context.Context, error) {
	rm := ch.rooms[0]
	if name := r.PathValue("room"); name != "" {
		if rm = ch.room(name); rm == nil {
			return nil, ws.Refuse(http.StatusNotFound, "no room "+strconv.Quote(name))
		}
	}
	name := strings.TrimSpace(r.URL.Query().Get("name"))
	if name == "" {
		name = "anonymous"
	}
	if utf8.RuneCountInString(name) > 24 {
		return nil, ws.Refuse(http.StatusBadRequest, "a name has at most 24 characters")
	}
	return context.WithValue(r.Context(), memberKey{}, member{rm, name}), nil
}

// handle is a member's connection: what it says goes, as it streams, to
// the others in its room.
func (ch *chat) handle(ctx context.Context, c *ws.Conn) error {
	m := ctx.Value(memberKey{}).(member)
	m.room.join(c, m.name)
	ch.log.Info("joined", "room", m.room.name, "name", m.name, "remote", c.RemoteAddr())
	err := wesos.Pipe(ctx, m.room.group.Except(c), c)
	m.room.leave(c, ctx.Err() == nil) // ctx ended: Shutdown is closing every connection, no need to tell
	ch.log.Info("left", "room", m.room.name, "name", m.name, "remote", c.RemoteAddr())
	return err // the Server closes c with the code it says, and logs it if it is not a clean end
}

func (ch *chat) room(name string) *room {
	for _, r := range ch.rooms {
		if r.name == name {
			return r
		}
	}
	return nil
}

// roomInfo is a room as GET /rooms lists it.
type roomInfo struct {
	Name  string   `json:"name"`
	Names []string `json:"names"` // who is in it
}

// list answers GET /rooms: every room and who is in it.
func (ch *chat) list(w http.ResponseWriter, r *http.Request) {
	infos := make([]roomInfo, 0, len(ch.rooms))
	for _, rm := range ch.rooms {
		rm.mu.Lock()
		infos = append(infos, roomInfo{rm.name, rm.names()})
		rm.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(infos)
}

func (r *room) join(c *ws.Conn, name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members[c] = name
	r.group.Add(c)
	r.announce()
}

func (r *room) leave(c *ws.Conn, tell bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, c)
	r.group.Remove(c)
	if tell {
		r.announce()
	}
}

// names returns the members' names, sorted. r.mu is held.
func (r *room) names() []string {
	names := make([]string, 0, len(r.members))
	for _, name := range r.members {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// announce tells the members who is in the room. r.mu is held, so that
// the announcements go out in the order of the changes.
func (r *room) announce() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A member too slow to take it is dropped by the Group, not an error here.
	r.presence.Send(ctx, presence{Type: "presence", Room: r.name, Names: r.names()})
}

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	rooms := flag.String("rooms", "general,go,random", "comma-separated room names; /ws is the first")
	origins := flag.String("origins", "", "comma-separated origin patterns allowed besides the page's own, e.g. example.com,*.example.com")
	compress := flag.Bool("compress", false, "compress messages (permessage-deflate) for clients that offer it")
	flag.Parse()

	roomList := splitList(*rooms)
	if len(roomList) == 0 {
		slog.Error("-rooms names no room")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("cannot listen", "err", err)
		os.Exit(1)
	}
	slog.Info("chat is up: open it in two browser tabs", "url", pageURL(*addr, ln), "rooms", strings.Join(roomList, ","))

	h, srv := newChat(roomList, splitList(*origins), *compress, slog.Default())
	if err := ws.Serve(ctx, ws.HTTPServer(h), ln, srv); err != nil {
		slog.Error("shutdown", "err", err)
		os.Exit(1)
	}
	slog.Info("chat is down")
}

// pageURL is the URL to open: the host as given (localhost if none) and the
// port actually bound (which -addr :0 leaves to the system).
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
		if v = strings.TrimSpace(v); v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
