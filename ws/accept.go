package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
)

// AcceptOptions configures Accept and NewServer. The zero value (or nil) is
// the sensible default: same-origin requests only, no subprotocol, the
// default read limit and close timeout.
type AcceptOptions struct {
	// Subprotocols lists the subprotocols the server speaks, in order of
	// preference; the first one the client also offers is chosen.
	Subprotocols []string

	// SelectSubprotocol, if set, chooses the subprotocol in place of
	// Subprotocols, for a server that speaks whatever the client asks
	// (an echo server) or chooses by request. It is called when the client
	// offers at least one, with the request and the offered subprotocols in
	// the client's order, and returns one of them, or "" for none; an
	// answer the client did not offer, or that is not an HTTP token,
	// counts as none.
	SelectSubprotocol func(r *http.Request, offered []string) string

	// OriginPatterns lists the hosts, besides the request's own, whose pages
	// may open a connection: path.Match patterns matched, ignoring case,
	// against the host of the Origin header (or against scheme://host when
	// the pattern contains "://"). A request from any other origin is
	// refused with 403, which protects against cross-site WebSocket
	// hijacking. Requests without an Origin header (non-browser clients)
	// are accepted.
	OriginPatterns []string

	// InsecureSkipOriginCheck accepts requests from every origin. Only for
	// servers that authenticate each connection by other means than cookies.
	InsecureSkipOriginCheck bool

	// ReadLimit is the largest message, in bytes, that a connection accepts
	// (see Conn.SetReadLimit). Zero means DefaultReadLimit; negative, no limit.
	ReadLimit int64

	// CloseTimeout bounds the close handshake (see Conn.Close). Zero means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration

	// OnPing, if set, is called with the payload of every ping received,
	// from the reading goroutine, before the pong is sent automatically. It
	// must not keep the slice.
	OnPing func(payload []byte)

	// KeepAlive, if positive, pings the peer whenever nothing has arrived
	// for this long, and closes the connection (reads then fail) when
	// nothing arrives within KeepAliveTimeout after the ping: it finds
	// peers that vanished without a FIN. Pongs are read by the reader, so
	// the connection must be read. No goroutine waits while the
	// connection is idle.
	KeepAlive time.Duration

	// KeepAliveTimeout is how long to wait for an answer to a keepalive
	// ping. Zero means KeepAlive.
	KeepAliveTimeout time.Duration

	// Admit, if set, decides whether a request may become a connection,
	// before it is upgraded and after the handshake checks (the Origin
	// check among them) have passed: authentication, the choice of a room.
	// It refuses with an error: a *HandshakeError (see Refuse) answers with
	// its Status and Reason; any other error answers 403 Forbidden without
	// its text (a Server logs it). It may set headers on w, which go out
	// with the refusal (WWW-Authenticate with a 401) or with the upgrade
	// (Set-Cookie), but must not write to w.
	//
	// To admit, it returns nil and the context the handler of a Server runs
	// in (its values, not its cancellation; nil means r.Context()): derive
	// it from r.Context() and put in it what the handler needs to know of
	// the request, the user or the room, rather than the request itself,
	// which an idle connection would then keep. Accept, which returns no
	// context, calls Admit the same way and drops the context. Server.Serve,
	// which reads requests without net/http, makes the *http.Request (and
	// w) only for Admit or SelectSubprotocol: setting either costs each
	// handshake the allocations of a request.
	Admit func(w http.ResponseWriter, r *http.Request) (context.Context, error)

	// ErrorLog receives the errors that have no caller to return to: failed
	// handshakes, refused requests, dropped connections and the errors
	// handlers return, seen by a Server; on each connection, a close frame
	// or a keepalive ping that could not be sent, frames kept to leave
	// together whose write failed. Nil means slog.Default().
	ErrorLog *slog.Logger

	// Compression turns on permessage-deflate (RFC 7692) when the client
	// offers it. Nil (the default) leaves messages uncompressed.
	Compression *CompressionOptions

	// Broadcast configures the broadcast of a Server (Server.Send): the
	// queue each connection may fall behind, and how long a slow member or
	// a stalled sender is waited for. Only NewServer reads it; Accept
	// ignores it (a Group has its own, NewGroup). Nil means the defaults.
	Broadcast *GroupOptions
}

func (o *AcceptOptions) connConfig() connConfig {
	return connConfig{
		readLimit:    o.ReadLimit,
		closeTimeout: o.CloseTimeout,
		onPing:       o.OnPing,
		logger:       o.ErrorLog,
		keepAlive:    o.KeepAlive,
		keepTimeout:  o.KeepAliveTimeout,
	}
}

// HandshakeError is the error Accept returns when it refuses a request; it
// has already answered the request with Status and the error's text.
type HandshakeError struct {
	Status int
	Reason string
}

// Error describes why the handshake was refused.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("ws: handshake refused (%d %s): %s", e.Status, http.StatusText(e.Status), e.Reason)
}

// Refuse returns the error with which an Admit function refuses a request:
// the request is answered with status (401, 403, 404, 429, ...) and reason
// as its text. A status outside 300–599 answers 500 instead.
func Refuse(status int, reason string) error {
	return &HandshakeError{Status: status, Reason: reason}
}

// hsRequest is what the server side of a handshake reads of a request:
// Accept fills it from an *http.Request (requestOf), Server.Serve from the
// bytes it parsed itself (upgradeRead). The checks and the negotiation
// (handshake) read nothing else, so that both paths answer every request
// alike.
type hsRequest struct {
	method   string
	proto11  bool   // HTTP/1.1 or later
	body     bool   // a Content-Length above 0, or a Transfer-Encoding
	h2       bool   // an extended CONNECT over HTTP/2 (RFC 8441)
	protocol string // its :protocol pseudo-header
	host     string

	header http.Header  // the headers of Accept's request
	raw    *upgradeRead // or those Serve parsed (upgraderead.go)

	// r is the request as net/http has it, for Admit and
	// SelectSubprotocol: Accept's own; for Serve, made only when one of
	// them is set.
	r *http.Request
}

// requestOf returns the view of r that the handshake reads.
func requestOf(r *http.Request) hsRequest {
	q := hsRequest{
		method:  r.Method,
		proto11: r.ProtoAtLeast(1, 1),
		body:    r.ContentLength > 0 || len(r.TransferEncoding) > 0,
		h2:      isExtendedConnect(r),
		host:    r.Host,
		header:  r.Header,
		r:       r,
	}
	if q.h2 {
		q.protocol = r.Header.Get(":protocol")
	}
	return q
}

// values returns the values of the header name, which is in canonical
// form ("Sec-Websocket-Key"). The slice is valid until the next call.
func (q *hsRequest) values(name string) []string {
	if q.raw != nil {
		return q.raw.values(name)
	}
	return q.header[name]
}

// handshakeResult is what handshake decided for a request.
type handshakeResult struct {
	key      string // Sec-WebSocket-Key; "" over HTTP/2, which has none
	proto    string // the subprotocol chosen, or ""
	deflate  deflateParams
	compress bool            // deflate was negotiated
	ctx      context.Context // the context Admit returned, if any
	refused  bool            // Admit refused the request: err is its
}

// handshake is the server side of every handshake, for Accept,
// Server.ServeHTTP and Server.Serve alike: it checks q, runs opts.Admit
// (with w, which may be nil when Admit is not set) and negotiates the
// subprotocol and compression. It answers nothing: a request it refuses
// comes back with the error (a *HandshakeError of the checks, or Admit's,
// with refused set), for the caller to answer with refusal's status. The
// refusals count in st, a Server's counters, if set.
func handshake(q *hsRequest, w http.ResponseWriter, opts *AcceptOptions, st *counters) (hs handshakeResult, err error) {
	var herr *HandshakeError
	if hs.key, hs.proto, herr = checkRequest(q, opts); herr != nil {
		st.refused(herr.Status)
		return hs, herr
	}
	if opts.Admit != nil {
		if hs.ctx, err = opts.Admit(w, q.r); err != nil {
			hs.refused = true
			if st != nil {
				status, _ := refusal(err)
				st.admitRefused(status)
			}
			return hs, err
		}
	}
	if opts.Compression != nil {
		// A malformed offer is declined, not refused: the connection
		// goes on uncompressed.
		offers, _ := parseExtensions(q.values("Sec-Websocket-Extensions"))
		hs.deflate, hs.compress = acceptDeflate(offers, opts.Compression)
	}
	return hs, nil
}

// refusal returns the status and text that answer a request handshake
// refused with err: a *HandshakeError's own (a status outside 300–599
// answers 500), else 403 Forbidden, without the error's text.
func refusal(err error) (status int, reason string) {
	var herr *HandshakeError
	if errors.As(err, &herr) {
		if herr.Status < 300 || herr.Status > 599 {
			return http.StatusInternalServerError, http.StatusText(http.StatusInternalServerError)
		}
		return herr.Status, herr.Reason
	}
	return http.StatusForbidden, http.StatusText(http.StatusForbidden)
}

// refusalHeader returns the header that goes with a status of the
// handshake's checks: Allow with 405, Sec-WebSocket-Version with 426 (RFC
// 6455 §4.4). Admit's refusals add none.
func refusalHeader(status int) (name, value string) {
	switch status {
	case http.StatusMethodNotAllowed:
		return "Allow", http.MethodGet
	case http.StatusUpgradeRequired:
		return "Sec-WebSocket-Version", "13"
	}
	return "", ""
}

// refuseHTTP answers through w a request that handshake refused with err.
func refuseHTTP(w http.ResponseWriter, err error, byAdmit bool) {
	status, reason := refusal(err)
	if name, value := refusalHeader(status); name != "" && !byAdmit {
		w.Header().Set(name, value)
	}
	http.Error(w, reason, status)
}

// Accept upgrades an HTTP request to a WebSocket connection (RFC 6455 §4.2).
// It checks the request, answers it with 101 Switching Protocols (with any
// headers already set on w, such as cookies) and hijacks the connection,
// through middleware too (http.ResponseController). If the request is not a
// valid WebSocket handshake it writes an error response and returns a
// *HandshakeError: 405 for a method other than GET, 426 with
// "Sec-WebSocket-Version: 13" for another protocol version, 403 for an
// origin that is not allowed, 400 for everything else. A valid handshake
// then goes to opts.Admit, if set, which may refuse it; Accept returns its
// error.
//
// The hijacked connection then belongs to the Conn: close it with Close or
// CloseNow, never through the net.Conn (a ConnState hook may have kept
// it). The Conn writes to the socket directly, bypassing net.Conn, and a
// socket closed behind its back may be reused by another connection.
//
// Accept also takes a WebSocket over HTTP/2 (RFC 8441): an extended CONNECT
// request with the :protocol "websocket", which net/http passes to handlers
// when the process runs with GODEBUG=http2xconnect=1 (see the package
// documentation). The checks are the same, less the key and the Upgrade and
// Connection headers that HTTP/2 does not have; the answer is 200, and the
// Conn then speaks over the request's stream. Such a Conn lives in the
// handler: the stream ends when the handler returns, so the handler must
// not return while the Conn is in use, and must close it (Close or
// CloseNow) before it returns; Server does both. Closing the Conn stops its
// reads and writes, and the stream ends cleanly (END_STREAM) when the
// handler returns; a write blocked at the moment of closing, or by a write
// deadline, resets the stream. Over HTTP/2 a Conn holds a goroutine and a
// read buffer for its life, and every write to the stream is flushed.
func Accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (*Conn, error) {
	c, _, _, err := accept(w, r, opts, nil)
	return c, err
}

// accept is Accept, returning also the context Admit made for the handler
// (r's context without Admit), and whether the request was refused by
// Admit (err is then Admit's). The connection gets shared, if set (a
// Server's), whose counters count the outcome.
func accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions, shared *connShared) (c *Conn, ctx context.Context, refused bool, err error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	var st *counters
	if shared != nil {
		st = shared.stats
	}
	q := requestOf(r)
	hs, err := handshake(&q, w, opts, st)
	if err != nil {
		refuseHTTP(w, err, hs.refused)
		return nil, nil, hs.refused, err
	}
	if ctx = hs.ctx; ctx == nil {
		ctx = r.Context()
	}
	if st != nil {
		defer func() { st.upgraded(err) }()
	}
	if q.h2 {
		c, err = acceptStream(w, r, opts, &hs, shared)
		return c, ctx, false, err
	}
	nc, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		herr := &HandshakeError{http.StatusInternalServerError, "cannot hijack the connection: " + err.Error()}
		http.Error(w, herr.Reason, herr.Status)
		return nil, nil, false, herr
	}
	// net/http may have set deadlines from its own timeouts; the WebSocket
	// connection starts without them.
	nc.SetDeadline(time.Time{})

	cfg := opts.connConfig().withDefaults()
	cfg.ownSocket = true // hijacked: net/http has let go of it
	cfg.shared = shared
	nc.SetWriteDeadline(time.Now().Add(cfg.closeTimeout))
	// The answer is made in the writer's own buffer.
	_, err = brw.Write(appendUpgrade(brw.AvailableBuffer(), &hs, w.Header()))
	if err == nil {
		err = brw.Flush()
	}
	nc.SetWriteDeadline(time.Time{})
	if err != nil {
		nc.Close()
		return nil, nil, false, fmt.Errorf("ws: writing the handshake response: %w", err)
	}
	var buffered []byte
	if n := brw.Reader.Buffered(); n > 0 {
		buffered, _ = brw.Reader.Peek(n)
	}
	return newConn(nc, false, hs.proto, cfg, hs.deflateState(opts), buffered), ctx, false, nil
}

// deflateState returns the compression of a new server Conn, or nil.
func (hs *handshakeResult) deflateState(opts *AcceptOptions) *deflateState {
	if !hs.compress {
		return nil
	}
	return newDeflateState(hs.deflate, false, opts.Compression)
}

// appendUpgrade appends to b the 101 Switching Protocols that accepts an
// HTTP/1.1 handshake, with the headers of h (those the handler or Admit
// set), less those the handshake sets itself and a body's.
func appendUpgrade(b []byte, hs *handshakeResult, h http.Header) []byte {
	b = append(b, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
	b = appendAcceptKey(b, hs.key)
	b = append(b, "\r\n"...)
	return appendUpgradeRest(b, hs, h)
}

// appendUpgradeRest appends the rest of appendUpgrade's answer, after
// Sec-WebSocket-Accept. Apart so that its frame is not under the SHA-1 of
// the key: Serve's handshake then stays within its goroutine's first 2 KiB
// stack.
//
//go:noinline
func appendUpgradeRest(b []byte, hs *handshakeResult, h http.Header) []byte {
	if hs.proto != "" {
		b = append(b, "Sec-WebSocket-Protocol: "...)
		b = append(b, hs.proto...)
		b = append(b, "\r\n"...)
	}
	if hs.compress {
		b = append(b, "Sec-WebSocket-Extensions: "...)
		b = append(b, hs.deflate.String()...)
		b = append(b, "\r\n"...)
	}
	b = appendHeaders(b, h, "Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Content-Type", "Content-Length")
	return append(b, "\r\n"...)
}

// appendHeaders appends the headers of h to b, less those named in skip
// (ignoring case) and those whose name is not a token; a line break in a
// value becomes a space, as net/http writes them.
func appendHeaders(b []byte, h http.Header, skip ...string) []byte {
next:
	for name, values := range h {
		if !isToken(name) {
			continue
		}
		for _, s := range skip {
			if asciiEqualFold(name, s) {
				continue next
			}
		}
		for _, v := range values {
			b = appendHeader(b, name, v)
		}
	}
	return b
}

// appendHeader appends the header line "name: value" to b.
func appendHeader(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, ": "...)
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' {
			b = append(b, ' ')
		} else {
			b = append(b, c)
		}
	}
	return append(b, "\r\n"...)
}

// checkRequest validates a handshake request and returns its key (empty
// for HTTP/2, which has none) and the chosen subprotocol.
func checkRequest(q *hsRequest, opts *AcceptOptions) (key, proto string, herr *HandshakeError) {
	if q.h2 {
		// RFC 8441 §5: the :protocol pseudo-header names the protocol
		// (an upgrade token, compared like one).
		if !strings.EqualFold(q.protocol, "websocket") {
			return "", "", &HandshakeError{http.StatusBadRequest, `the :protocol of an extended CONNECT must be "websocket"`}
		}
	} else {
		if q.method != http.MethodGet {
			return "", "", &HandshakeError{http.StatusMethodNotAllowed, "a WebSocket handshake must be a GET request"}
		}
		if !q.proto11 {
			return "", "", &HandshakeError{http.StatusBadRequest, "a WebSocket handshake needs HTTP/1.1 or later"}
		}
		if q.body {
			// Its bytes would follow the request on the socket and be
			// read as WebSocket frames: a proxy that forwarded the body
			// and the server would disagree on where the frames begin.
			// (An extended CONNECT has no such body: its stream is the
			// WebSocket.)
			return "", "", &HandshakeError{http.StatusBadRequest, "a WebSocket handshake request must not have a body"}
		}
		if !listsToken(q.values("Connection"), "upgrade") {
			return "", "", &HandshakeError{http.StatusBadRequest, `the Connection header must contain "upgrade"`}
		}
		if !listsToken(q.values("Upgrade"), "websocket") {
			return "", "", &HandshakeError{http.StatusBadRequest, `the Upgrade header must contain "websocket"`}
		}
	}
	if v := q.values("Sec-Websocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		return "", "", &HandshakeError{http.StatusUpgradeRequired, "unsupported WebSocket version; this server speaks version 13"}
	}
	if !q.h2 {
		// RFC 8441 §5: HTTP/2 has no Sec-WebSocket-Key (nor Accept).
		keys := q.values("Sec-Websocket-Key")
		if len(keys) != 1 || !validKey(strings.TrimSpace(keys[0])) {
			return "", "", &HandshakeError{http.StatusBadRequest, "Sec-WebSocket-Key must be one base64-encoded 16-byte value"}
		}
		key = strings.TrimSpace(keys[0])
	}
	if !opts.InsecureSkipOriginCheck {
		var origin string
		if v := q.values("Origin"); len(v) > 0 {
			origin = v[0]
		}
		if err := checkOrigin(origin, q.host, opts.OriginPatterns); err != nil {
			return "", "", &HandshakeError{http.StatusForbidden, err.Error()}
		}
	}
	offered := splitTokens(q.values("Sec-Websocket-Protocol"))
	if opts.SelectSubprotocol != nil {
		if len(offered) > 0 {
			// What the client offered is echoed back only if it is a
			// token (RFC 6455 §4.1), as a subprotocol must be.
			if p := opts.SelectSubprotocol(q.r, offered); isToken(p) && slices.Contains(offered, p) {
				proto = p
			}
		}
		return key, proto, nil
	}
	for _, p := range opts.Subprotocols {
		if slices.Contains(offered, p) {
			proto = p
			break
		}
	}
	return key, proto, nil
}

// sameHost reports, without parsing it, whether origin is the plain
// http:// or https:// origin of host (a name or an IPv4 address, and a
// port), which url.Parse would find so too.
func sameHost(origin, host string) bool {
	rest, ok := strings.CutPrefix(origin, "http://")
	if !ok {
		if rest, ok = strings.CutPrefix(origin, "https://"); !ok {
			return false
		}
	}
	if rest == "" || !asciiEqualFold(rest, host) {
		return false
	}
	name, port, _ := strings.Cut(rest, ":")
	for i := 0; i < len(name); i++ {
		if c := name[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) || c == '.' || c == '-') {
			return false
		}
	}
	for i := 0; i < len(port); i++ {
		if !isDigit(port[i]) {
			return false
		}
	}
	return name != ""
}

// checkOrigin allows requests without an Origin header, from the request's
// own host, and from hosts matching one of patterns.
func checkOrigin(origin, host string, patterns []string) error {
	if origin == "" || sameHost(origin, host) {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q is not allowed", origin)
	}
	if strings.EqualFold(u.Host, host) {
		return nil
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		ok, err := path.Match(strings.ToLower(p), strings.ToLower(target))
		if err != nil {
			return fmt.Errorf("bad origin pattern %q: %w", p, err)
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("origin %q is not allowed", origin)
}
