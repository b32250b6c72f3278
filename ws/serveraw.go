package ws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"time"
)

// Serve accepts connections on ln and serves WebSockets on them itself,
// without net/http, until Shutdown: for a port that carries nothing but
// WebSockets. It reads each upgrade request (HTTP/1.1) and answers it with
// the same checks, status codes, origin policy, subprotocol and compression
// negotiation, Admit and limits as ServeHTTP behind ws.HTTPServer's
// settings: the request, with its headers, must arrive within
// DefaultReadHeaderTimeout and fit in DefaultMaxHeaderBytes (else 431), and
// the 101 must leave within that time too. A refused request is answered
// with its status and the connection closed: it carries one request, never
// more. For TLS, serve a listener from tls.NewListener; its handshake is
// bounded by the same timeout.
//
// What it saves over ServeHTTP is net/http's per-connection machinery (its
// buffered reader and writer, the request, the response, the request's
// context that a handler's context keeps): the request is read into a
// pooled buffer and parsed as one string, the answer is written from that
// buffer, and what is allocated besides is what the connection keeps (its
// Conn, the handler's goroutine and context). A handshake leaves less
// garbage and an idle connection holds less memory (see the README's
// figures). Admit and SelectSubprotocol take an *http.Request: with either
// set, Serve makes one for each request (its headers, URL and TLS state
// copied out; its context is context.Background(), without net/http's
// values), which costs what net/http's would. A panic in either is
// recovered as net/http recovers a handler's: logged with its stack, and
// that connection closed without an answer.
//
// Serve may run on several listeners at once, and beside ServeHTTP: the
// connections are the same Server's. Temporary errors of Accept (too many
// open files) are retried after a pause that grows up to a second. Serve
// closes ln when it returns. It returns ErrServerClosed once Shutdown has
// begun, also when called after it; otherwise the error of ln.Accept that
// ended it. Shutdown closes the listeners, and the connections whose
// handshake has not finished, before it closes the WebSockets.
//
// To serve HTTP too (pages, an API, health checks) on the same port, mount
// the Server on an http.Server instead (ServeHTTP), and run that with the
// package's Serve or ListenAndServe, which also shut it down gracefully.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[*net.Listener]struct{})
		s.pending = make(map[net.Conn]struct{})
	}
	s.listeners[&ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, &ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var pause time.Duration // after a temporary error of Accept
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Temporary() { //nolint:staticcheck // as net/http: EMFILE and the like are temporary
				pause = min(max(2*pause, 5*time.Millisecond), time.Second)
				s.log.Error("ws: accept failed; retrying", "err", err, "pause", pause)
				t := time.NewTimer(pause)
				select {
				case <-t.C:
				case <-s.ctx.Done():
					t.Stop()
				}
				continue
			}
			return err
		}
		pause = 0
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return ErrServerClosed
		}
		s.pending[nc] = struct{}{}
		s.handlers.Add(1) // passes to the handler (open), or ends with serveConn
		s.mu.Unlock()
		go s.serveConn(nc)
	}
}

// isClosing reports whether Shutdown has begun.
func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// closeListening closes, as Shutdown begins (with s.mu held), the
// listeners of Serve and the connections whose handshake is under way.
func (s *Server) closeListening() {
	for ln := range s.listeners {
		(*ln).Close()
	}
	for nc := range s.pending {
		nc.Close()
	}
	clear(s.pending)
}

// unpend takes nc off the connections whose handshake is under way, and
// reports whether it was still there: if not, Shutdown has closed it.
func (s *Server) unpend(nc net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.pending[nc]
	delete(s.pending, nc)
	return ok
}

// serveConn serves a connection Serve accepted: its handshake, and then its
// handler. Where the handshake ran only the package's code on a plain
// socket (no TLS, no Admit or SelectSubprotocol) and kept within the
// goroutine's first 2 KiB stack, the handler runs on the same goroutine
// once the handshake's frames have returned: a goroutine's creation, a
// schedule and an exit fewer per connection, for a stack no larger.
// Otherwise (a TLS handshake, a callback of the application's: either may
// have grown the stack, which an idle connection would keep) it runs in a
// goroutine of its own, as ServeHTTP does.
func (s *Server) serveConn(nc net.Conn) {
	if p := s.handshakeConn(nc); p != nil {
		s.serve(p)
	}
}

// handshakeConn runs the handshake of a connection Serve accepted and
// returns the member whose handler is to run on this goroutine, or nil:
// where it must not (see serveConn), it starts the handler's own.
//
// The handshake keeps within the goroutine's first 2 KiB stack where it
// can: a stack that outgrows it is copied into a larger one, which costs
// more instructions than the rest of the handshake's Go code (counted with
// callgrind on the benchmark's handshake storm). So what is rare (a
// refusal, a failure, a panic) and what is large (the Conn's construction)
// are functions of their own, whose frames are on the stack only while
// they run, and the request and the handshake's result live in q rather
// than in this frame. It cannot always (the allocator's slow paths are
// deeper): a stack that grew was copied, and q, the variable, with it, to
// another address than the one noted in q.stackAt.
func (s *Server) handshakeConn(nc net.Conn) *member {
	q := getUpgradeRead()
	defer q.release()
	q.stackAt = stackMark(&q)
	nc.SetDeadline(time.Now().Add(s.handshakeTimeout))
	var (
		w       *rawResponseWriter
		err     error
		refused bool
	)
	if err = q.read(nc, DefaultMaxHeaderBytes); err != nil {
		var herr *HandshakeError
		if !errors.As(err, &herr) {
			s.readFailed(nc, err)
			return nil
		}
		s.stats.refused(herr.Status) // 431, which net/http answers before a handler
	} else if w, err = s.parseRaw(nc, q); err == nil {
		refused, err = s.handshakeRaw(q, w)
	}
	if err != nil {
		s.refuseRaw(nc, q, w, err, refused)
		return nil
	}
	q.out = appendUpgrade(q.out[:0], &q.hs, w.header())
	if _, err := nc.Write(q.out); err != nil {
		s.upgradeFailed(nc, err)
		return nil
	}
	nc.SetDeadline(time.Time{})
	if !s.unpend(nc) {
		// Shutdown began and closed nc: it must not become a Conn,
		// whose writes may go to the socket's descriptor, which the
		// system may have given to another connection.
		s.handlers.Done()
		s.stats.upgraded(ErrServerClosed)
		return nil
	}
	s.stats.upgraded(nil)
	c, ctx := s.newServedConn(nc, q)
	p := s.open(c, ctx)
	if p != nil && !s.inPlace(nc, q.stackAt == stackMark(&q)) {
		go s.serve(p)
		return nil
	}
	return p
}

// inPlace reports whether the handler of nc may run on the goroutine of its
// handshake, whose stack has not grown if still (see serveConn).
func (s *Server) inPlace(nc net.Conn, still bool) bool {
	switch nc.(type) {
	case *net.TCPConn, *net.UnixConn:
		return still && s.opts.Admit == nil && s.opts.SelectSubprotocol == nil
	}
	return false
}

// parseRaw parses the request that q read into q.hq. With Admit or
// SelectSubprotocol set it also makes the request's *http.Request, and the
// ResponseWriter that keeps Admit's headers, which it returns.
//
//go:noinline
func (s *Server) parseRaw(nc net.Conn, q *upgradeRead) (*rawResponseWriter, error) {
	var w *rawResponseWriter
	var herr *HandshakeError
	if q.hq, herr = q.parse(); herr == nil && (s.opts.Admit != nil || s.opts.SelectSubprotocol != nil) {
		q.hq.r, herr = q.httpRequest(&q.hq, nc)
		w = &rawResponseWriter{}
	}
	if herr != nil {
		s.stats.refused(herr.Status) // what net/http refuses before a handler
		return w, herr
	}
	return w, nil
}

// readFailed ends a connection that failed or ended before its request did
// (a TLS handshake, a timeout): there is nothing to answer.
//
//go:noinline
func (s *Server) readFailed(nc net.Conn, err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		s.stats.handshakeTimeouts.Add(1)
	}
	s.unpend(nc)
	nc.Close()
	s.handlers.Done()
	s.log.Debug("ws: reading the handshake request", "remote", nc.RemoteAddr(), "err", err)
}

// refuseRaw answers a request the handshake refused with err, or ends the
// connection of one whose Admit or SelectSubprotocol panicked.
//
//go:noinline
func (s *Server) refuseRaw(nc net.Conn, q *upgradeRead, w *rawResponseWriter, err error, refused bool) {
	if p, ok := err.(*handshakePanic); ok {
		// As net/http does with a handler's panic: logged, and the
		// connection closed without an answer.
		if p.v != http.ErrAbortHandler {
			s.log.Error("ws: panic serving a handshake", "remote", nc.RemoteAddr(), "panic", p.v, "stack", string(p.stack))
		}
		s.unpend(nc)
		nc.Close()
		s.handlers.Done()
		return
	}
	status, reason := refusal(err)
	var name, value string
	if !refused {
		name, value = refusalHeader(status)
	}
	q.out = appendRefusal(q.out[:0], status, reason, name, value, w.header())
	s.refuse(nc, q)
	s.handlers.Done()
	s.failed(nc.RemoteAddr(), refused, err)
}

// upgradeFailed ends a connection whose 101 could not be written.
//
//go:noinline
func (s *Server) upgradeFailed(nc net.Conn, err error) {
	s.unpend(nc)
	nc.Close()
	s.handlers.Done()
	s.stats.upgraded(err)
	s.failed(nc.RemoteAddr(), false, err)
}

// newServedConn makes the Conn of a connection Serve upgraded, and the
// context its handler starts from.
//
//go:noinline
func (s *Server) newServedConn(nc net.Conn, q *upgradeRead) (*Conn, context.Context) {
	cfg := s.opts.connConfig()
	cfg.ownSocket = true
	cfg.shared = &s.shared
	c := newConn(nc, false, q.hs.proto, cfg, q.hs.deflateState(&s.opts), q.buf[q.end:q.n])
	ctx := q.hs.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return c, ctx
}

// handshakePanic is the error of a handshake whose Admit or
// SelectSubprotocol panicked with v.
type handshakePanic struct {
	v     any
	stack []byte
}

func (p *handshakePanic) Error() string { return fmt.Sprint("ws: panic serving a handshake: ", p.v) }

// handshakeRaw is handshake for Serve, on the request in q.hq, with the
// result in q.hs; Serve's goroutine is not net/http's, which would recover
// a panic of Admit or SelectSubprotocol: here it comes back as a
// *handshakePanic rather than ending the program. refused reports that
// Admit refused the request.
//
//go:noinline
func (s *Server) handshakeRaw(q *upgradeRead, w *rawResponseWriter) (refused bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			stack := make([]byte, 64<<10)
			q.hs, refused, err = handshakeResult{}, false, &handshakePanic{v, stack[:runtime.Stack(stack, false)]}
		}
	}()
	q.hs, err = handshake(&q.hq, w, &s.opts, &s.stats) // w is used only with Admit, which has made it
	return q.hs.refused, err
}

// refuseLinger bounds how long a refused connection is read after its
// answer, so that the client reads the answer rather than a reset.
const refuseLinger = 500 * time.Millisecond

// refuse writes the refusal in q.out to nc and closes nc. It first closes
// the writing side and reads what the client still sends, for a while: a
// socket closed with unread bytes (the rest of an oversized request) is
// reset, and the client may lose the answer.
func (s *Server) refuse(nc net.Conn, q *upgradeRead) {
	defer func() {
		s.unpend(nc)
		nc.Close()
	}()
	if _, err := nc.Write(q.out); err != nil {
		return
	}
	cw, ok := nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	nc.SetReadDeadline(time.Now().Add(refuseLinger))
	for range 64 { // at most 64 buffers: a bounded drain
		if _, err := nc.Read(q.buf); err != nil {
			return
		}
	}
}

// rawResponseWriter is the http.ResponseWriter that Serve gives Admit: it
// keeps the headers Admit sets, which go out with the answer. Admit must not
// write: Write fails, WriteHeader is ignored.
type rawResponseWriter struct{ h http.Header }

// header returns the headers Admit set, if w is not nil.
func (w *rawResponseWriter) header() http.Header {
	if w == nil {
		return nil
	}
	return w.h
}

func (w *rawResponseWriter) Header() http.Header {
	if w.h == nil {
		w.h = make(http.Header)
	}
	return w.h
}

func (w *rawResponseWriter) Write([]byte) (int, error) { return 0, errAdmitWrote }

func (w *rawResponseWriter) WriteHeader(int) {}

var errAdmitWrote = errors.New("ws: Admit must not write the response")
