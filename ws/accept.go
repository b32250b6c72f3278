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
	// context, calls Admit the same way and drops the context.
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

// admit runs opts.Admit for a request that passed the handshake checks and
// returns the handler's context; if the request is refused, it answers it
// and returns the error.
func admit(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (context.Context, error) {
	if opts.Admit == nil {
		return r.Context(), nil
	}
	ctx, err := opts.Admit(w, r)
	if err != nil {
		status, reason := http.StatusForbidden, http.StatusText(http.StatusForbidden)
		var herr *HandshakeError
		if errors.As(err, &herr) {
			status, reason = herr.Status, herr.Reason
			if status < 300 || status > 599 {
				status, reason = http.StatusInternalServerError, http.StatusText(http.StatusInternalServerError)
			}
		}
		http.Error(w, reason, status)
		return nil, err
	}
	if ctx == nil {
		ctx = r.Context()
	}
	return ctx, nil
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
	c, _, _, err := accept(w, r, opts)
	return c, err
}

// accept is Accept, returning also the context Admit made for the handler,
// and whether the request was refused by Admit (err is then Admit's).
func accept(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (c *Conn, ctx context.Context, refused bool, err error) {
	if opts == nil {
		opts = &AcceptOptions{}
	}
	key, proto, herr := checkRequest(w, r, opts)
	if herr != nil {
		http.Error(w, herr.Reason, herr.Status)
		return nil, nil, false, herr
	}
	if ctx, err = admit(w, r, opts); err != nil {
		return nil, nil, true, err
	}
	if isExtendedConnect(r) {
		c, err = acceptStream(w, r, opts, proto)
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

	var resp strings.Builder
	resp.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	resp.WriteString(acceptKey(key))
	resp.WriteString("\r\n")
	if proto != "" {
		resp.WriteString("Sec-WebSocket-Protocol: " + proto + "\r\n")
	}
	var deflate *deflateState
	if opts.Compression != nil {
		// A malformed offer is declined, not refused: the connection
		// goes on uncompressed.
		offers, _ := parseExtensions(r.Header.Values("Sec-WebSocket-Extensions"))
		if params, ok := acceptDeflate(offers, opts.Compression); ok {
			resp.WriteString("Sec-WebSocket-Extensions: " + params.String() + "\r\n")
			deflate = newDeflateState(params, false, opts.Compression)
		}
	}
	for name, values := range w.Header() {
		switch http.CanonicalHeaderKey(name) {
		case "Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Protocol", "Sec-Websocket-Extensions", "Content-Type", "Content-Length":
			continue
		}
		for _, v := range values {
			resp.WriteString(name + ": " + v + "\r\n")
		}
	}
	resp.WriteString("\r\n")

	cfg := opts.connConfig().withDefaults()
	cfg.ownSocket = true // hijacked: net/http has let go of it
	nc.SetWriteDeadline(time.Now().Add(cfg.closeTimeout))
	_, err = brw.WriteString(resp.String())
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
	return newConn(nc, false, proto, cfg, deflate, buffered), ctx, false, nil
}

// checkRequest validates a handshake request and returns its key (empty
// for HTTP/2, which has none) and the chosen subprotocol.
func checkRequest(w http.ResponseWriter, r *http.Request, opts *AcceptOptions) (key, proto string, herr *HandshakeError) {
	h2 := isExtendedConnect(r)
	if h2 {
		// RFC 8441 §5: the :protocol pseudo-header names the protocol
		// (an upgrade token, compared like one).
		if p := r.Header.Get(":protocol"); !strings.EqualFold(p, "websocket") {
			return "", "", &HandshakeError{http.StatusBadRequest, `the :protocol of an extended CONNECT must be "websocket"`}
		}
	} else {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			return "", "", &HandshakeError{http.StatusMethodNotAllowed, "a WebSocket handshake must be a GET request"}
		}
		if !r.ProtoAtLeast(1, 1) {
			return "", "", &HandshakeError{http.StatusBadRequest, "a WebSocket handshake needs HTTP/1.1 or later"}
		}
		if r.ContentLength > 0 || len(r.TransferEncoding) > 0 {
			// Its bytes would follow the request on the socket and be
			// read as WebSocket frames: a proxy that forwarded the body
			// and the server would disagree on where the frames begin.
			// (An extended CONNECT has no such body: its stream is the
			// WebSocket.)
			return "", "", &HandshakeError{http.StatusBadRequest, "a WebSocket handshake request must not have a body"}
		}
		if !hasToken(r.Header, "Connection", "upgrade") {
			return "", "", &HandshakeError{http.StatusBadRequest, `the Connection header must contain "upgrade"`}
		}
		if !hasToken(r.Header, "Upgrade", "websocket") {
			return "", "", &HandshakeError{http.StatusBadRequest, `the Upgrade header must contain "websocket"`}
		}
	}
	if v := r.Header.Values("Sec-WebSocket-Version"); len(v) != 1 || strings.TrimSpace(v[0]) != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return "", "", &HandshakeError{http.StatusUpgradeRequired, "unsupported WebSocket version; this server speaks version 13"}
	}
	if !h2 {
		// RFC 8441 §5: HTTP/2 has no Sec-WebSocket-Key (nor Accept).
		keys := r.Header.Values("Sec-WebSocket-Key")
		if len(keys) != 1 || !validKey(strings.TrimSpace(keys[0])) {
			return "", "", &HandshakeError{http.StatusBadRequest, "Sec-WebSocket-Key must be one base64-encoded 16-byte value"}
		}
		key = strings.TrimSpace(keys[0])
	}
	if !opts.InsecureSkipOriginCheck {
		if err := checkOrigin(r, opts.OriginPatterns); err != nil {
			return "", "", &HandshakeError{http.StatusForbidden, err.Error()}
		}
	}
	offered := headerTokens(r.Header, "Sec-WebSocket-Protocol")
	if opts.SelectSubprotocol != nil {
		if len(offered) > 0 {
			// What the client offered is echoed back only if it is a
			// token (RFC 6455 §4.1), as a subprotocol must be.
			if p := opts.SelectSubprotocol(r, offered); isToken(p) && slices.Contains(offered, p) {
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

// checkOrigin allows requests without an Origin header, from the request's
// own host, and from hosts matching one of patterns.
func checkOrigin(r *http.Request, patterns []string) error {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return fmt.Errorf("origin %q is not allowed", origin)
	}
	if strings.EqualFold(u.Host, r.Host) {
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
