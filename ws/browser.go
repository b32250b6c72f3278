package ws

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// ErrUnsupported is the error, matched with errors.Is, of what a
// connection dialed in a browser (GOOS=js) cannot do because the browser's
// WebSocket does not let a program do it: DialOptions that set headers,
// TLS, the dialer, the proxy, compression or ping handling; Ping; a close
// code other than 1000 or 3000–4999; a message streamed through Writer past
// 32 MiB. It also matches errors.ErrUnsupported. See the package doc,
// "In the browser".
var ErrUnsupported = errUnsupported{}

type errUnsupported struct{}

func (errUnsupported) Error() string { return "ws: not possible with the browser's WebSocket" }

func (errUnsupported) Is(target error) bool { return target == errors.ErrUnsupported }

// dialBrowser is Dial where the program runs in a browser (GOOS=js; it is
// set by browser_js.go), and nil elsewhere.
var dialBrowser func(ctx context.Context, urlStr string, opts *DialOptions) (*Conn, *http.Response, error)

// openBrowserWS creates the browser's WebSocket for url, offering
// protocols, with its events going to s.
type openBrowserWS func(s *browserSock, url string, protocols []string) (browserWS, error)

// dialWith is Dial in a browser: it opens a browser's WebSocket with open
// and waits for its open event. The handshake is the browser's, so most
// DialOptions cannot apply; setting them is an error (ErrUnsupported).
func dialWith(ctx context.Context, urlStr string, opts *DialOptions, open openBrowserWS) (*Conn, *http.Response, error) {
	fail := func(err error) (*Conn, *http.Response, error) {
		return nil, nil, fmt.Errorf("ws: dial %s: %w", urlStr, err)
	}
	if opts == nil {
		opts = &DialOptions{}
	}
	if err := browserOptions(opts); err != nil {
		return fail(err)
	}
	u, err := url.Parse(urlStr)
	if err != nil {
		return fail(err)
	}
	switch u.Scheme {
	case "ws", "wss":
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return fail(fmt.Errorf("unsupported URL scheme %q", u.Scheme))
	}
	u.Fragment = ""
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	s := newBrowserSock(u.String())
	if s.ws, err = open(s, u.String(), opts.Subprotocols); err != nil {
		return fail(err)
	}
	for opened := false; !opened; {
		select {
		case <-s.open:
			opened = true
		case <-s.notify:
			select {
			case <-s.open:
				opened = true // and closed at once: Conn reads the close
			default:
				if s.hasEnded() {
					s.Close()
					return fail(errBrowserRefused)
				}
			}
		case <-ctx.Done():
			s.Close()
			return fail(ctx.Err())
		}
	}
	proto := s.ws.protocol()
	if proto != "" && !slices.Contains(opts.Subprotocols, proto) {
		s.Close()
		return fail(fmt.Errorf("server chose a subprotocol that was not offered: %q", proto))
	}
	resp := &http.Response{
		Status:     "101 Switching Protocols",
		StatusCode: http.StatusSwitchingProtocols,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header),
		Body:       http.NoBody,
	}
	if proto != "" {
		resp.Header.Set("Sec-WebSocket-Protocol", proto)
	}
	if ext := s.ws.extensions(); ext != "" {
		resp.Header.Set("Sec-WebSocket-Extensions", ext)
	}
	cfg := connConfig{readLimit: opts.ReadLimit, closeTimeout: opts.CloseTimeout, logger: opts.ErrorLog}
	return newConn(s, true, proto, cfg, nil, nil), resp, nil
}

// errBrowserRefused is Dial's error when the browser could not open the
// connection. The browser does not say why, to pages or to programs.
var errBrowserRefused = fmt.Errorf("the browser could not open the WebSocket (it does not tell why: the server may be unreachable or have refused the handshake): %w",
	CloseError{Code: StatusAbnormalClosure})

// browserOptions refuses the DialOptions that the browser's WebSocket
// cannot honour.
func browserOptions(o *DialOptions) error {
	var set []string
	for _, f := range []struct {
		name string
		set  bool
	}{
		{"HTTPHeader (the browser sends its own headers, and its cookies for the server's site)", len(o.HTTPHeader) > 0},
		{"TLSConfig (the browser checks certificates itself)", o.TLSConfig != nil},
		{"NetDialContext", o.NetDialContext != nil},
		{"Proxy (the browser's proxy settings apply)", o.Proxy != nil},
		{"Compression (the browser negotiates permessage-deflate itself)", o.Compression != nil},
		{"OnPing (the browser answers pings without showing them)", o.OnPing != nil},
		{"KeepAlive (the browser sends no pings)", o.KeepAlive != 0 || o.KeepAliveTimeout != 0},
	} {
		if f.set {
			set = append(set, "DialOptions."+f.name)
		}
	}
	if len(set) > 0 {
		return fmt.Errorf("%w: %s", ErrUnsupported, strings.Join(set, "; "))
	}
	return nil
}
