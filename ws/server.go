package ws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"sync"
	"time"
)

// ErrServerClosed is returned by Server.Send, and by Server.Serve, once
// Shutdown has begun: what http.ErrServerClosed is to an http.Server.
var ErrServerClosed = errors.New("ws: server closed")

// Server is an http.Handler that upgrades requests, runs a handler for each
// connection, tracks the open ones, and is itself a wesos.Sink[Message] that
// broadcasts to all of them: the Go form of Node's wesos server, where
// wesos.Pipe(ctx, srv, c) relays every message of c to every socket.
//
// When a handler returns, its connection is closed (if it is not closed
// already) with the code its error says, and an error that is not a clean
// end goes to the error log:
//
//   - nil, or an error matching io.EOF (a peer's 1000 or 1001, the end of a
//     source): 1000;
//   - a CloseError (under errors.As): its code and reason, so a handler
//     chooses its close with return ws.CloseError{Code: 4001, Reason: "..."};
//   - a *ProtocolError (the peer broke the protocol): its code;
//   - a *DecodeError (a message that could not be decoded, from Typed or
//     wrapped by the handler): 1007, and any other error with a method
//     Code() StatusCode: that code;
//   - anything else, and a handler that panics: 1011, with the reason
//     "internal error" (the error's text stays in the log). As net/http
//     does for an HTTP handler, the Server recovers a handler's panic and
//     logs it with its stack: it ends that connection, not the program.
//
// A Server is served through net/http (it is an http.Handler: mount it on
// an http.Server, or run ListenAndServe) or on a listener of its own
// (Serve), or both.
//
// Shutdown sends 1001 to every connection and waits for the handlers; a
// handler that returns once Shutdown has begun leaves its connection to
// Shutdown, so it too gets every broadcast Send accepted and then 1001.
type Server struct {
	handler func(ctx context.Context, c *Conn) error
	opts    AcceptOptions
	log     *slog.Logger

	ctx    context.Context // ends when Shutdown has closed the connections
	cancel context.CancelFunc

	// The broadcast: a Group's machinery whose members are the open
	// connections, each listed while its handler runs.
	fan fan

	// What the connections share: the options they keep and the
	// counters they count into (Stats).
	shared connShared
	stats  counters

	// The open connections are the members of fan that have not left:
	// the Server keeps no other record of them.
	mu      sync.Mutex
	closing bool
	// Serve's listeners, and its connections whose handshake is under
	// way: Shutdown closes them (nil until Serve runs).
	listeners map[*net.Listener]struct{}
	pending   map[net.Conn]struct{}

	handshakeTimeout time.Duration // Serve's: DefaultReadHeaderTimeout (tests shorten it)
	handlers         sync.WaitGroup
	sends            sync.WaitGroup // broadcasts in progress
}

// NewServer returns a Server that runs handler for each accepted connection,
// in a goroutine of its own (ServeHTTP returns once the connection is
// upgraded, so net/http keeps nothing for it). A connection over HTTP/2
// (RFC 8441) lives in its request's stream, so for it ServeHTTP runs the
// handler itself and returns once the connection is closed. The handler's
// ctx carries the values of the request's context (or of the context the
// options' Admit function returned) and ends when the handler returns or
// Shutdown closes the connections. The request itself is not kept: what
// the handler needs of it (a user, a room, a header), Admit puts in that
// context. opts may be nil.
func NewServer(handler func(ctx context.Context, c *Conn) error, opts *AcceptOptions) *Server {
	s := &Server{handler: handler, handshakeTimeout: DefaultReadHeaderTimeout}
	if opts != nil {
		s.opts = *opts
	}
	s.log = s.opts.ErrorLog
	if s.log == nil {
		s.log = slog.Default()
	}
	s.shared = connShared{onPing: s.opts.OnPing, logger: s.opts.ErrorLog, stats: &s.stats,
		closeTimeout: s.opts.connConfig().withDefaults().closeTimeout}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.fan.init(s.opts.Broadcast, s.log, s.ctx, &s.stats)
	return s
}

// ServeHTTP upgrades the request and runs the handler. During Shutdown it
// answers 503. A request that the options' Admit function refuses is
// answered with its status and never becomes a connection: it is not
// counted by Len, gets no broadcast, and its handler never runs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		s.stats.shuttingDown.Add(1)
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	s.handlers.Add(1)
	s.mu.Unlock()

	c, ctx, refused, err := s.acceptHeld(w, r)
	if err != nil {
		s.handlers.Done()
		s.failed(r.RemoteAddr, refused, err)
		return
	}
	p := s.open(c, ctx)
	if p == nil {
		return
	}
	// The handler runs in a goroutine of its own and ServeHTTP returns, so
	// that net/http lets go of what it kept for the request (its buffers,
	// the request and the response, a deep stack): an idle connection
	// would otherwise hold them for its whole life.
	if c.fanStream() {
		// Over HTTP/2 (RFC 8441) the connection is the request's
		// stream, which ends when ServeHTTP returns: the handler, and
		// the closing after it, run here.
		s.serve(p)
		return
	}
	go s.serve(p)
}

// acceptHeld is accept for ServeHTTP, which holds a count of s.handlers: if
// Admit or SelectSubprotocol panics, it releases the count, so that
// Shutdown does not wait for it forever, and the panic goes on to
// net/http, which recovers it as any handler's.
func (s *Server) acceptHeld(w http.ResponseWriter, r *http.Request) (c *Conn, ctx context.Context, refused bool, err error) {
	returned := false
	defer func() {
		if !returned {
			s.handlers.Done()
		}
	}()
	c, ctx, refused, err = accept(w, r, &s.opts, &s.shared)
	returned = true
	return c, ctx, refused, err
}

// failed logs a handshake that did not become a connection: refused by
// Admit (refused), by the checks, or failed.
func (s *Server) failed(remote any, refused bool, err error) {
	var herr *HandshakeError
	switch {
	case refused && errors.As(err, &herr):
		s.log.Debug("ws: request refused", "remote", remote, "err", err)
	case refused:
		s.log.Info("ws: request refused", "remote", remote, "err", err)
	default:
		s.log.Info("ws: handshake failed", "remote", remote, "err", err)
	}
}

// open lists c, just accepted (with ctx the context whose values its
// handler gets), as one of the Server's connections and returns its
// member, whose handler the caller runs; during Shutdown it closes c with
// 1001 instead and returns nil. Both ServeHTTP and Serve open every
// connection here, and the handler's count that they took (s.handlers)
// passes to the member.
func (s *Server) open(c *Conn, ctx context.Context) *member {
	// The handler's context keeps the request's values and ends when the
	// handler returns or Shutdown ends the connections. It is made before
	// c is listed, so that Shutdown, which cancels the listed ones, never
	// misses it.
	p := newHandlerCtx(ctx, c)
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		c.Close(StatusGoingAway, "server is shutting down")
		s.handlers.Done()
		return nil
	}
	s.fan.mu.Lock()
	s.fan.join(p)
	s.fan.mu.Unlock()
	s.mu.Unlock()
	return p
}

// serve runs the handler of p's connection. It is the bottom frame of the
// handler's goroutine for the connection's whole life, so it does nothing
// else: every byte of its frame is under every idle connection's wait, and
// a goroutine whose deepest call stays within its first 2 KiB stack never
// grows it.
func (s *Server) serve(p *member) {
	err := errHandlerPanicked // until the handler returns
	defer s.finish(p, &err)
	err = s.handler(p, p.c)
}

// errHandlerPanicked stands for the result of a handler that panicked.
var errHandlerPanicked = errors.New("ws: the handler panicked")

// finish ends a handler's connection when the handler has returned *errp.
// Deferred by serve, it also recovers a handler's panic, as net/http does
// for an HTTP handler: the panic ends that connection (1011), logged with
// its stack, not the program.
func (s *Server) finish(p *member, errp *error) {
	defer s.handlers.Done()
	c := p.c
	herr := *errp
	if herr == errHandlerPanicked {
		// (Or it called runtime.Goexit, and there is nothing to recover.)
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler { // net/http's way to abort quietly
				s.log.Error("ws: handler panicked", "remote", c.RemoteAddr(), "panic", v, "stack", string(debug.Stack()))
			}
			herr = fmt.Errorf("%w: %v", errHandlerPanicked, v)
		}
	}
	p.cancel()
	s.mu.Lock()
	closing := s.closing
	s.mu.Unlock()
	if closing {
		// A handler that ends because Shutdown began (Send failed, ctx
		// ended) leaves c to Shutdown, which first writes the broadcasts
		// Send accepted and then closes c with 1001.
		<-c.fanDone()
	}
	s.mu.Lock()
	s.fan.mu.Lock()
	s.fan.leave(p)
	s.fan.mu.Unlock()
	s.mu.Unlock()
	code, reason, level := closeStatus(herr)
	if herr != nil && !errors.Is(herr, io.EOF) {
		switch {
		case closing && (errors.Is(herr, context.Canceled) || errors.Is(herr, ErrServerClosed)):
			level = slog.LevelDebug // the handler ended because Shutdown began
		case errors.Is(herr, net.ErrClosed) && isDone(c.doneChan()):
			// This side closed c under the handler (Shutdown, a
			// broadcast that dropped it, the handler's own Close):
			// the close and its code are already decided and logged.
			level = slog.LevelDebug
		case errors.Is(herr, errHandlerPanicked):
			level = slog.LevelDebug // logged with its stack above
		case errors.Is(herr, errKeepAlive):
			level = slog.LevelInfo // the peer vanished
		}
		if s.log.Enabled(context.Background(), level) { // the arguments cost allocations
			s.log.Log(context.Background(), level, "ws: handler failed", "remote", c.RemoteAddr(), "code", int(code), "err", herr)
		}
	}
	if !c.isClosed() { // the peer's close, or its TCP close, often ended it
		c.Close(code, reason)
	}
}

// closeStatus maps the error a Server handler returned to the close code
// and reason its connection is closed with (see Server), and to the level
// at which the error is logged: an error of the server's own (1011) is an
// error; the others say what the peer did or what the handler chose.
func closeStatus(err error) (StatusCode, string, slog.Level) {
	if err == nil {
		return StatusNormalClosure, "", slog.LevelInfo
	}
	// errors.AsType: errors.As would put its target on the heap, an
	// allocation in every handshake's life.
	if ce, ok := errors.AsType[CloseError](err); ok {
		switch {
		case ce.Code.validOnWire(), ce.Code == StatusNoStatusRcvd:
			return ce.Code, ce.Reason, slog.LevelInfo
		default:
			// 1006 and the like: the connection has ended already
			// (the peer vanished); the code only goes to the log.
			return StatusInternalError, "internal error", slog.LevelInfo
		}
	}
	if errors.Is(err, io.EOF) {
		return StatusNormalClosure, "", slog.LevelInfo
	}
	if pe, ok := errors.AsType[*ProtocolError](err); ok && pe.Code.validOnWire() {
		return pe.Code, pe.Reason, slog.LevelInfo
	}
	if de, ok := errors.AsType[*DecodeError](err); ok {
		return de.Code(), "cannot decode message: " + de.Err.Error(), slog.LevelInfo
	}
	if coded, ok := errors.AsType[interface {
		error
		Code() StatusCode
	}](err); ok && coded.Code().validOnWire() {
		code := coded.Code()
		return code, statusNames[code], slog.LevelInfo
	}
	return StatusInternalError, "internal error", slog.LevelError
}

// Len returns the number of open connections.
func (s *Server) Len() int {
	s.fan.mu.Lock()
	defer s.fan.mu.Unlock()
	return len(s.fan.list) - s.fan.gone
}

// openMembers returns the members of the open connections.
func (s *Server) openMembers() []*member {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fan.mu.Lock()
	defer s.fan.mu.Unlock()
	open := make([]*member, 0, len(s.fan.list)-s.fan.gone)
	for _, p := range s.fan.list {
		if !p.gone.Load() {
			open = append(open, p)
		}
	}
	return open
}

// Send broadcasts m to every open connection; it makes Server a
// wesos.Sink[Message]. It is the Send of a Group whose members are the
// Server's connections, configured by AcceptOptions.Broadcast: each frame is
// encoded once, the body streams, messages reach every connection in the
// order Send accepted them, a connection that falls behind is dropped with
// 1008 (see GroupOptions). Send also fails after Shutdown began.
func (s *Server) Send(ctx context.Context, m Message) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.sends.Add(1)
	s.mu.Unlock()
	defer s.sends.Done()
	return s.fan.send(ctx, m, nil)
}

// isDone reports whether ch is closed.
func isDone(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Shutdown stops the server: new requests get 503, Send fails with
// ErrServerClosed, and Serve closes its listeners and returns
// ErrServerClosed (connections whose handshake it has not finished are
// closed); broadcasts already accepted are delivered; then every
// connection is sent 1001 (going away) and Shutdown waits for the handlers
// to return. If ctx ends first, the remaining connections are closed at once
// and ctx.Err() is returned. Shutdown does not stop the http.Server the
// Server is mounted on.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.closeListening()
	s.mu.Unlock()
	defer s.cancelAll()

	if err := waitCtx(ctx, &s.sends); err != nil {
		return s.abort(err)
	}
	if err := waitCtx(ctx, &s.fan.drains); err != nil {
		return s.abort(err)
	}
	var closing sync.WaitGroup
	for _, p := range s.openMembers() {
		closing.Go(func() { p.c.Close(StatusGoingAway, "server shutting down") })
	}
	s.cancelAll()
	if err := waitCtx(ctx, &s.handlers); err != nil {
		return s.abort(err)
	}
	closing.Wait()
	return nil
}

// abort closes every connection at once.
func (s *Server) abort(err error) error {
	for _, p := range s.openMembers() {
		p.c.CloseNow() // outside s.mu: closing leaves the Groups c is in
	}
	s.cancelAll()
	return err
}

// cancelAll ends the Server's context and the context of every handler.
func (s *Server) cancelAll() {
	s.cancel()
	for _, p := range s.openMembers() {
		p.cancel()
	}
}

// waitCtx waits for wg or ctx.
func waitCtx(ctx context.Context, wg *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
