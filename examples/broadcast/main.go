// Command broadcast is a chat room in the browser built on the README's
// one-liner: every message of one WebSocket is relayed, as it streams, to
// every open WebSocket.
//
//	go run ./examples/broadcast        # then open http://localhost:8080 in two tabs
//
// Flags: -addr (localhost:8080), -origins (other sites whose pages may
// connect) and -compress (permessage-deflate for browsers, which all offer it).
//
// The page (static/, embedded in the binary) speaks JSON. It sends
// {"type":"chat","name":…,"text":…}, which the server relays without reading
// it; the server itself sends {"type":"presence","online":N} whenever someone
// joins or leaves.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// newChat returns the chat's HTTP handler (the page at /, the WebSocket at
// /ws) and its ws.Server, to shut down.
func newChat(origins []string, compress bool, log *slog.Logger) (http.Handler, *ws.Server) {
	opts := &ws.AcceptOptions{
		OriginPatterns: origins, // pages from other sites may connect only if listed
		ReadLimit:      64 << 10,
		ErrorLog:       log,
		// Keepalive pings find the browsers that vanished without closing
		// (a laptop lid shut, a network gone): after 30 s of silence a ping,
		// and no answer within 10 s closes the connection.
		KeepAlive:        30 * time.Second,
		KeepAliveTimeout: 10 * time.Second,
	}
	if compress {
		opts.Compression = &ws.CompressionOptions{} // permessage-deflate, if the browser offers it
	}
	var srv *ws.Server
	var room *roster
	srv = ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		room.join(c)
		err := wesos.Pipe(ctx, srv, c) // the chat: every message of c, as it streams, to every open socket
		room.leave(c, err)
		return err
	}, opts)
	room = &roster{presence: ws.NewTyped(nil, srv, ws.JSONCodec[presence]()), log: log}

	page, _ := fs.Sub(static, "static")
	mux := http.NewServeMux()
	mux.Handle("GET /ws", srv)
	mux.Handle("CONNECT /ws", srv) // the same over HTTP/2 (RFC 8441: extended CONNECT), see package ws
	mux.Handle("GET /", http.FileServerFS(page))
	return mux, srv
}

//go:embed static
var static embed.FS

// presence is the message that tells every page how many people are online.
type presence struct {
	Type   string `json:"type"` // "presence"
	Online int    `json:"online"`
}

// roster counts the people online and broadcasts the count when it changes.
type roster struct {
	presence wesos.Sink[presence] // JSON to every open socket (a typed ws.Server)
	log      *slog.Logger

	mu     sync.Mutex // orders the counts as they are broadcast
	online int
}

func (r *roster) join(c *ws.Conn) {
	n := r.add(+1)
	r.log.Info("joined", "remote", c.RemoteAddr(), "online", n)
}

func (r *roster) leave(c *ws.Conn, err error) {
	attrs := []any{"remote", c.RemoteAddr(), "online", r.add(-1)}
	if err != nil && !errors.Is(err, context.Canceled) { // canceled: the server shut down
		attrs = append(attrs, "err", err)
	}
	r.log.Info("left", attrs...)
}

func (r *roster) add(delta int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.online += delta
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.presence.Send(ctx, presence{Type: "presence", Online: r.online})
	if err != nil && !errors.Is(err, ws.ErrServerClosed) {
		r.log.Warn("presence broadcast failed", "err", err)
	}
	return r.online
}

func main() {
	addr := flag.String("addr", "localhost:8080", "address to listen on")
	origins := flag.String("origins", "", "comma-separated origin patterns allowed besides the page's own, e.g. example.com,*.example.com")
	compress := flag.Bool("compress", false, "compress messages (permessage-deflate) for clients that offer it")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		slog.Error("cannot listen", "err", err)
		os.Exit(1)
	}
	slog.Info("chat is up: open it in two browser tabs", "url", pageURL(*addr, ln))

	h, srv := newChat(splitList(*origins), *compress, slog.Default())
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
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
