package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

const serveUsage = `Usage: wesos serve [flags] (-echo | -broadcast | -exec 'CMD ARGS')

A WebSocket server on every path of -addr. What it does with a connection:
  -echo             sends every message back to its sender
  -broadcast        relays every message to every client connected to the
                    same URL path (a room: /a and /b are two chats), the
                    sender included
  -exec 'CMD ARGS'  runs CMD per connection, as websocketd does: each record
                    (line) of its stdout is a message to the client, each
                    message of the client a record on its stdin, its stderr
                    goes to the log. The connection is closed with 1000 when
                    CMD exits with status 0 and with 1011 otherwise; when the
                    client leaves first, CMD's stdin is closed, then it gets
                    SIGTERM and SIGKILL (with its process group), each after
                    -grace. CMD is split into words as a shell would, without
                    expansions; for pipes, use 'sh -c "..."'.

Requests that are not WebSocket handshakes get the files of -static DIR.
SIGINT or SIGTERM shuts the server down gracefully: every connection is
closed with 1001 (going away) and every process stopped.

The environment of an -exec process describes the request, as for a CGI
program: REMOTE_ADDR, REMOTE_HOST, REMOTE_PORT, SERVER_NAME, SERVER_PORT,
SERVER_PROTOCOL, SERVER_SOFTWARE, GATEWAY_INTERFACE, REQUEST_METHOD,
REQUEST_URI, SCRIPT_NAME (empty), PATH_INFO (the path), QUERY_STRING,
UNIQUE_ID, HTTPS (on over TLS), and an HTTP_NAME variable per request header
(User-Agent becomes HTTP_USER_AGENT); plus the variables named by -passenv.

Examples:
  wesos serve -echo -addr localhost:8080
  wesos serve -broadcast -static ./chat -addr :8080
  wesos serve -exec 'sed -u "s/^/you said: /"'
  wesos serve -exec './count.sh' -origin 'app.example.com' -tls-cert cert.pem -tls-key key.pem
  wesos serve -exec 'sh -c "tail -f /var/log/syslog | grep --line-buffered sshd"' -max-conns 10

Exit status: 0 after a graceful shutdown, 1 when the server cannot start or
does not stop within 10 s, 2 for bad flags.
`

// defaultPassEnv lists the variables an -exec process inherits by default.
const defaultPassEnv = "PATH,HOME,LANG,LC_ALL,LC_CTYPE,TZ,TMPDIR,LD_LIBRARY_PATH"

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "localhost:8080", "the address to listen on (host:port; port 0 picks one)")
	echo := fs.Bool("echo", false, "echo every message back to its sender")
	broadcast := fs.Bool("broadcast", false, "relay every message to every client in the same room (URL path)")
	execLine := fs.String("exec", "", "run this command per connection, with its stdin and stdout as the messages")
	static := fs.String("static", "", "serve the files of this directory to requests that are not WebSocket handshakes")
	certFile := fs.String("tls-cert", "", "the TLS certificate (PEM) to serve wss:// with; needs -tls-key")
	keyFile := fs.String("tls-key", "", "the TLS private key (PEM) of -tls-cert")
	var origins, protos listFlag
	origins.split, protos.split = true, true
	fs.Var(&origins, "origin", "hosts whose pages may connect besides the server's own (repeatable or comma-separated; path.Match patterns; '*' for any)")
	fs.Var(&protos, "subprotocol", "subprotocols the server speaks, in order of preference (repeatable or comma-separated)")
	limit := fs.Int64("read-limit", 1<<20, "the largest message a client may send, in bytes (negative: no limit)")
	maxConns := fs.Int("max-conns", 0, "the most connections at once; more are refused with 503, or closed with 1013 (0: no limit)")
	compress := fs.Bool("compress", false, "accept permessage-deflate from clients that offer it")
	ping := fs.Duration("ping", 0, "keepalive: ping a client that has sent nothing for this long, drop it when the pong does not come within as long again (0: off)")
	binary := fs.Bool("binary", false, "-exec: the messages made from stdout are binary")
	var fr framing
	fs.Var(&fr, "framing", "-exec: how stdin and stdout are cut into messages: lines, nul (NUL-terminated) or len (4-byte big-endian length prefix)")
	passEnv := fs.String("passenv", defaultPassEnv, "-exec: the variables of wesos's environment that the process inherits (comma-separated)")
	grace := fs.Duration("grace", time.Second, "-exec: how long a process whose client left may run on after its stdin is closed, and after SIGTERM (a shutdown waits 10 s at most)")
	if st := parseFlags(fs, args, serveUsage, stdout, stderr); st >= 0 {
		return st
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "wesos serve: "+format+"\n(run wesos serve -h for help)\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	modes := 0
	for _, on := range []bool{*echo, *broadcast, *execLine != ""} {
		if on {
			modes++
		}
	}
	if modes != 1 {
		return usage("choose one of -echo, -broadcast and -exec")
	}
	if (*certFile == "") != (*keyFile == "") {
		return usage("-tls-cert and -tls-key go together")
	}
	if *static != "" {
		if st, err := os.Stat(*static); err != nil || !st.IsDir() {
			return usage("-static %s: not a directory", *static)
		}
	}
	if *grace <= 0 {
		return usage("-grace must be positive")
	}

	log := newLogger(stderr, slog.LevelInfo)
	opts := &ws.AcceptOptions{
		Subprotocols:   protos.vals,
		OriginPatterns: origins.vals,
		ReadLimit:      *limit,
		KeepAlive:      *ping,
		ErrorLog:       log,
	}
	if *compress {
		opts.Compression = &ws.CompressionOptions{}
	}
	s := &server{log: log, max: int64(*maxConns)}
	opts.Admit = s.admit
	switch {
	case *echo:
		s.handler = func(ctx context.Context, c *ws.Conn) error {
			return wesos.Pipe(ctx, c, c) // every message back, as it streams
		}
	case *broadcast:
		s.rooms = map[string]*room{}
		s.handler = s.relay
	default:
		argv, err := splitCommand(*execLine)
		if err != nil {
			return usage("-exec %q: %v", *execLine, err)
		}
		typ := ws.Text
		if *binary {
			typ = ws.Binary
		}
		var pass []string
		for v := range strings.SplitSeq(*passEnv, ",") {
			if v = strings.TrimSpace(v); v != "" {
				pass = append(pass, v)
			}
		}
		s.exec = &execer{argv: argv, framing: fr, typ: typ, passEnv: pass, log: log, grace: *grace}
		s.handler = s.exec.serve
	}
	s.ws = ws.NewServer(s.counted(s.handler), opts)
	if *static != "" {
		s.static = http.FileServer(http.Dir(*static))
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Error("cannot listen", "err", err)
		return exitFailed
	}
	scheme := "ws"
	if *certFile != "" {
		scheme = "wss"
	}
	log.Info("listening", "url", scheme+"://"+ln.Addr().String()+"/")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := s.run(ctx, ln, *certFile, *keyFile); err != nil {
		log.Error("server", "err", err)
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}

// server is wesos serve: a ws.Server behind a handler that sends other
// requests to the static files.
type server struct {
	log     *slog.Logger
	handler func(ctx context.Context, c *ws.Conn) error
	exec    *execer
	static  http.Handler
	max     int64 // 0: no limit

	ws     *ws.Server
	active atomic.Int64
	ids    atomic.Uint64

	mu    sync.Mutex
	rooms map[string]*room // -broadcast: the rooms with members, by path
}

// room is a -broadcast room: a Group and how many handlers are in it.
type room struct {
	g *ws.Group
	n int
}

// ServeHTTP routes handshakes to the WebSocket server and other requests to
// the static files.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isHandshake(r) && s.static != nil {
		// Static files get a write deadline of their own: the server has
		// none, as it would apply to WebSockets over HTTP/2.
		http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute))
		s.static.ServeHTTP(w, r)
		return
	}
	s.ws.ServeHTTP(w, r)
}

// roomKey is the context key of a -broadcast connection's room (its path).
type roomKey struct{}

// relay is the -broadcast handler: every message of c goes, as it streams,
// to every member of c's room, c included.
func (s *server) relay(ctx context.Context, c *ws.Conn) error {
	path, _ := ctx.Value(roomKey{}).(string)
	g := s.join(path, c)
	defer s.leave(path, c)
	return wesos.Pipe(ctx, g, c)
}

// join adds c to the room at path, made on first use.
func (s *server) join(path string, c *ws.Conn) *ws.Group {
	s.mu.Lock()
	r := s.rooms[path]
	if r == nil {
		r = &room{g: ws.NewGroup(nil)}
		s.rooms[path] = r
	}
	r.n++
	s.mu.Unlock()
	r.g.Add(c)
	return r.g
}

// leave takes c out of its room, and forgets the room when it is empty.
func (s *server) leave(path string, c *ws.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[path]
	r.g.Remove(c)
	if r.n--; r.n == 0 {
		delete(s.rooms, path)
	}
}

// isHandshake reports whether r asks for a WebSocket: an HTTP/1.1 Upgrade,
// or an HTTP/2 extended CONNECT.
func isHandshake(r *http.Request) bool {
	if r.Method == http.MethodConnect {
		return true
	}
	for _, v := range r.Header.Values("Upgrade") {
		for tok := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(tok), "websocket") {
				return true
			}
		}
	}
	return false
}

// admit runs before a request is upgraded: it refuses it with 503 when
// -max-conns connections are open, and gives an -exec connection's handler
// the environment of its process, made from the request, and a -broadcast
// one its room (so that the connection need not keep the request).
func (s *server) admit(w http.ResponseWriter, r *http.Request) (context.Context, error) {
	if s.max > 0 && s.active.Load() >= s.max {
		return nil, ws.Refuse(http.StatusServiceUnavailable, "too many connections, try again later")
	}
	switch {
	case s.exec != nil:
		return context.WithValue(r.Context(), envKey{}, s.exec.env(r, s.ids.Add(1))), nil
	case s.rooms != nil:
		return context.WithValue(r.Context(), roomKey{}, r.URL.Path), nil
	}
	return nil, nil
}

// counted runs h for a connection, counting the open connections for
// -max-conns: one that raced past admit's check is closed with 1013 (try
// again later). The Server closes the connection with the code h's error
// says: 1000 for nil, a CloseError's own, 1011 for anything else.
func (s *server) counted(h func(ctx context.Context, c *ws.Conn) error) func(ctx context.Context, c *ws.Conn) error {
	return func(ctx context.Context, c *ws.Conn) error {
		defer s.active.Add(-1)
		if n := s.active.Add(1); s.max > 0 && n > s.max {
			return ws.CloseError{Code: ws.StatusTryAgainLater, Reason: "too many connections"}
		}
		return h(ctx, c)
	}
}

// run serves on ln until ctx ends, then shuts down (ws.Serve): the
// listener closes, every WebSocket gets 1001 and every handler (and
// process) ends, within ws.DefaultShutdownTimeout.
func (s *server) run(ctx context.Context, ln net.Listener, certFile, keyFile string) error {
	if certFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}})
	}
	hs := ws.HTTPServer(s)
	hs.ErrorLog = slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	return ws.Serve(ctx, hs, ln, s.ws)
}
