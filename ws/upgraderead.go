package ws

// The HTTP/1.1 upgrade request as Server.Serve reads it, without net/http:
// read into a pooled buffer, parsed in place, and seen by the handshake
// (handshake, accept.go) through the same hsRequest view as a request of
// net/http. It accepts what net/http's server accepts of a request line and
// headers, and answers what net/http answers (400, 431, 501, 505) to what
// it refuses; what remains is the WebSocket handshake's own checks.

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// rawBufSize is the size of the pooled buffer a request is read into: a
// browser's handshake with its cookies fits. A larger request grows it, up
// to the header limit, and that larger buffer is not pooled.
const rawBufSize = 4 << 10

// upgradeRead is an upgrade request read from a connection, and the
// answer. Its strings are substrings of one copy of the request (parse),
// which a *http.Request made from them may keep.
type upgradeRead struct {
	buf []byte // the bytes read: the request, then what followed it
	n   int    // len of what was read into buf
	end int    // the end of the request (past its empty line); 0 until read

	method  string // the request line
	target  string
	proto   string
	minor   int // HTTP/1.minor
	fields  []rawField
	scratch []string // values' answer
	out     []byte   // the response
	// Where Serve's handshake goroutine had a local variable when it
	// began: if it is elsewhere at the end, the stack grew (serveConn).
	stackAt uintptr

	// Serve's handshake: the request parsed, and the handshake's result
	// (here rather than in serveConn's frame).
	hq hsRequest
	hs handshakeResult
}

// rawField is a header line: a name (a token) and a value (trimmed).
type rawField struct{ name, value string }

var rawPool = sync.Pool{New: func() any { return new(upgradeRead) }}

// getUpgradeRead returns an empty upgradeRead with its buffer, from the pool.
func getUpgradeRead() *upgradeRead {
	q := rawPool.Get().(*upgradeRead)
	if q.buf == nil {
		q.buf = make([]byte, rawBufSize)
	}
	return q
}

// release returns q to the pool; nothing may use it after (its strings
// are copies, and stay valid).
func (q *upgradeRead) release() {
	if cap(q.buf) > rawBufSize {
		q.buf = nil
	}
	clear(q.fields)
	clear(q.scratch)
	*q = upgradeRead{buf: q.buf, fields: q.fields[:0], scratch: q.scratch[:0], out: q.out[:0]}
	rawPool.Put(q)
}

// read reads from nc (a connection) until the request's empty line, at
// most limit bytes of request. A request larger than that is a 431
// *HandshakeError; any other error is the connection's.
func (q *upgradeRead) read(nc io.Reader, limit int) error {
	from := 0
	for {
		if end := requestEnd(q.buf[:q.n], from); end >= 0 {
			q.end = end
			return nil
		}
		if q.n >= limit {
			return &HandshakeError{http.StatusRequestHeaderFieldsTooLarge, "the request's headers are larger than " + strconv.Itoa(limit) + " bytes"}
		}
		from = max(q.n-2, 0) // an LF read last may begin the empty line
		if q.n == len(q.buf) {
			b := make([]byte, min(2*len(q.buf), limit))
			copy(b, q.buf[:q.n])
			q.buf = b
		}
		m, err := nc.Read(q.buf[q.n:min(len(q.buf), limit)])
		q.n += m
		if err != nil && requestEnd(q.buf[:q.n], from) < 0 {
			return err
		}
	}
}

// requestEnd returns the length of the request in b, up to and including
// the empty line that ends its headers (CRLF CRLF, or bare LFs as net/http
// allows), or -1 if b does not hold it yet; the search starts at from.
func requestEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		switch {
		case i+1 < len(b) && b[i+1] == '\n':
			return i + 2
		case i+2 < len(b) && b[i+1] == '\r' && b[i+2] == '\n':
			return i + 3
		}
	}
	return -1
}

// badRequest is the refusal of a request that is not HTTP/1.x.
func badRequest(reason string) *HandshakeError {
	return &HandshakeError{http.StatusBadRequest, reason}
}

// parse parses the request read into the view the handshake reads. Its
// strings are substrings of one copy of the request: the only allocation a
// request that goes through costs, which spares the package an unsafe
// view of the pooled buffer. A request net/http would refuse comes back as
// the *HandshakeError net/http's status answers it with.
func (q *upgradeRead) parse() (hsRequest, *HandshakeError) {
	text := string(q.buf[:q.end])
	line, rest := cutLine(text)
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || !isToken(method) || target == "" {
		return hsRequest{}, badRequest("malformed request line")
	}
	q.method, q.target, q.proto = method, target, proto
	if len(proto) != len("HTTP/1.1") || !strings.HasPrefix(proto, "HTTP/") || proto[6] != '.' ||
		!isDigit(proto[5]) || !isDigit(proto[7]) {
		return hsRequest{}, badRequest("malformed HTTP version")
	}
	if proto[5] != '1' {
		return hsRequest{}, &HandshakeError{http.StatusHTTPVersionNotSupported, "unsupported protocol version"}
	}
	q.minor = int(proto[7] - '0')

	for {
		line, rest = cutLine(rest)
		if line == "" {
			break
		}
		if (line[0] == ' ' || line[0] == '\t') && len(q.fields) > 0 {
			// The obsolete folding of a value over lines, which
			// net/http takes too: joined with a space (a copy).
			f := &q.fields[len(q.fields)-1]
			if f.value = strings.TrimLeft(f.value+" "+strings.Trim(line, " \t"), " \t"); !validFieldValue(f.value) {
				return hsRequest{}, badRequest("invalid header value")
			}
			continue
		}
		name, value, ok := strings.Cut(line, ":")
		if !ok || !isToken(name) {
			// Also a first line that begins with whitespace.
			return hsRequest{}, badRequest("malformed header line")
		}
		value = strings.Trim(value, " \t")
		if !validFieldValue(value) {
			return hsRequest{}, badRequest("invalid header value")
		}
		q.fields = append(q.fields, rawField{name, value})
	}

	r := hsRequest{method: method, proto11: q.minor >= 1, raw: q}
	hosts := q.values("Host")
	switch {
	case len(hosts) > 1:
		return hsRequest{}, badRequest("too many Host headers")
	case len(hosts) == 1:
		if r.host = hosts[0]; !validHost(r.host) {
			return hsRequest{}, badRequest("malformed Host header")
		}
	case r.proto11:
		return hsRequest{}, badRequest("missing required Host header")
	}
	if target[0] != '/' {
		// The absolute form (or "*"): its host, if any, is the
		// request's.
		u, err := url.ParseRequestURI(target)
		if err != nil {
			return hsRequest{}, badRequest("malformed request target")
		}
		if u.Host != "" {
			r.host = u.Host
		}
	} else if !validPath(target) {
		return hsRequest{}, badRequest("malformed request target")
	}
	if te := q.values("Transfer-Encoding"); len(te) > 0 && r.proto11 { // HTTP/1.0 has none: net/http ignores it
		if len(te) != 1 || !strings.EqualFold(te[0], "chunked") {
			return hsRequest{}, &HandshakeError{http.StatusNotImplemented, "unsupported transfer encoding"}
		}
		r.body = true
	} else if cl := q.values("Content-Length"); len(cl) > 0 {
		n, err := strconv.ParseUint(cl[0], 10, 63)
		if err != nil {
			return hsRequest{}, badRequest("bad Content-Length")
		}
		for _, v := range cl[1:] {
			if v != cl[0] {
				return hsRequest{}, badRequest("conflicting Content-Length headers")
			}
		}
		r.body = n > 0
	}
	return r, nil
}

// cutLine returns the first line of s, without its CRLF or LF, and the
// rest.
func cutLine(s string) (line, rest string) {
	line, rest, _ = strings.Cut(s, "\n")
	return strings.TrimSuffix(line, "\r"), rest
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// validFieldValue reports whether v may be a header's value: no control
// characters but tab (as net/http checks).
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validHost reports whether h may be a Host header: the bytes of a host,
// a port, an IPv6 literal and its zone (as net/http checks).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || isDigit(c) {
			continue
		}
		if strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) < 0 {
			return false
		}
	}
	return true
}

// validPath reports whether an origin-form target ("/path?query") is one
// url.ParseRequestURI takes: no control characters, and well-formed
// %-escapes in the path.
func validPath(t string) bool {
	path, _, _ := strings.Cut(t, "?")
	for i := 0; i < len(t); i++ {
		if c := t[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	for i := 0; i < len(path); i++ {
		if path[i] == '%' && (i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2])) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// values returns the values of the header name, ignoring case; valid until
// the next call.
func (q *upgradeRead) values(name string) []string {
	q.scratch = q.scratch[:0]
	for _, f := range q.fields {
		if asciiEqualFold(f.name, name) {
			q.scratch = append(q.scratch, f.value)
		}
	}
	return q.scratch
}

// asciiEqualFold is strings.EqualFold for the ASCII names of headers.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// httpRequest returns the request as net/http would have made it, for
// Admit and SelectSubprotocol.
// Its context is context.Background(); it has no body.
func (q *upgradeRead) httpRequest(hq *hsRequest, nc net.Conn) (*http.Request, *HandshakeError) {
	u, err := url.ParseRequestURI(q.target)
	if err != nil {
		return nil, badRequest("malformed request target")
	}
	h := make(http.Header, len(q.fields))
	for _, f := range q.fields {
		k := http.CanonicalHeaderKey(f.name)
		h[k] = append(h[k], f.value)
	}
	r := &http.Request{
		Method: q.method, URL: u, Proto: q.proto, ProtoMajor: 1, ProtoMinor: q.minor,
		Header: h, Body: http.NoBody, Host: hq.host, RemoteAddr: nc.RemoteAddr().String(), RequestURI: q.target,
	}
	if tc, ok := nc.(*tls.Conn); ok {
		st := tc.ConnectionState()
		r.TLS = &st
	}
	return r, nil
}

// appendRefusal appends to b the response that refuses a request with
// status and reason, as http.Error makes it, with the header name: value
// if name is not empty and those of h (Admit's), and Connection: close.
func appendRefusal(b []byte, status int, reason, name, value string, h http.Header) []byte {
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	if text := http.StatusText(status); text != "" {
		b = append(b, text...)
	} else {
		b = append(b, "status code "...)
		b = strconv.AppendInt(b, int64(status), 10)
	}
	b = append(b, "\r\nContent-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nConnection: close\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(reason)+1), 10)
	b = append(b, "\r\n"...)
	if name != "" {
		b = appendHeader(b, name, value)
	}
	b = appendHeaders(b, h, "Content-Type", "Content-Length", "Connection", "Transfer-Encoding", "X-Content-Type-Options")
	b = append(b, "\r\n"...)
	b = append(b, reason...)
	return append(b, '\n')
}
