package ws

import (
	"bufio"
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
)

// DialOptions configures Dial. The zero value (or nil) dials directly or
// through the proxy named by the environment (HTTPS_PROXY, HTTP_PROXY,
// NO_PROXY), with the default TLS settings, read limit and close timeout.
//
// In a browser (GOOS=js) only Subprotocols, ReadLimit, CloseTimeout and
// ErrorLog apply: Dial fails with ErrUnsupported if another field is set
// (see the package doc, "In the browser").
type DialOptions struct {
	// HTTPHeader holds extra request headers (cookies, authorization, Origin…).
	// Not in a browser, which sends its own.
	HTTPHeader http.Header

	// Subprotocols lists the subprotocols to offer, in order of preference.
	Subprotocols []string

	// TLSConfig configures wss:// connections. Nil means the defaults, with
	// the server name taken from the URL. Not in a browser.
	TLSConfig *tls.Config

	// NetDialContext opens the TCP connection (to the server or the proxy).
	// Nil means a net.Dialer; not in a browser. (A connection from Dial's
	// own dialer is the Conn's alone, and it writes to the socket
	// directly; one from NetDialContext goes through net.Conn.Write, in
	// case the caller kept it.)
	NetDialContext func(ctx context.Context, network, addr string) (net.Conn, error)

	// Proxy returns the URL of the HTTP proxy to tunnel through (with
	// CONNECT), or nil for a direct connection. Nil means
	// http.ProxyFromEnvironment. Not in a browser, whose proxy settings
	// apply.
	Proxy func(*http.Request) (*url.URL, error)

	// Compression offers permessage-deflate (RFC 7692), with
	// client_max_window_bits: the server may limit the client's window,
	// and a limit under 15 bits is kept by compressing with Huffman coding
	// alone. Nil (the default) offers no compression. Not in a browser,
	// which offers permessage-deflate on its own.
	Compression *CompressionOptions

	// ReadLimit is the largest message, in bytes, that the connection accepts
	// (see Conn.SetReadLimit). Zero means DefaultReadLimit; negative, no limit.
	ReadLimit int64

	// CloseTimeout bounds the close handshake (see Conn.Close). Zero means
	// DefaultCloseTimeout.
	CloseTimeout time.Duration

	// OnPing, if set, is called with the payload of every ping received,
	// from the reading goroutine, before the pong is sent automatically.
	// Not in a browser, which answers pings without showing them.
	OnPing func(payload []byte)

	// KeepAlive, if positive, pings the peer whenever nothing has arrived
	// for this long, and closes the connection (reads then fail) when
	// nothing arrives within KeepAliveTimeout after the ping: it finds
	// peers that vanished without a FIN. Pongs are read by the reader, so
	// the connection must be read. No goroutine waits while the
	// connection is idle. Not in a browser, which sends no pings.
	KeepAlive time.Duration

	// KeepAliveTimeout is how long to wait for an answer to a keepalive
	// ping. Zero means KeepAlive.
	KeepAliveTimeout time.Duration

	// ErrorLog receives the errors that have no caller to return to: a
	// close frame or a keepalive ping that could not be sent, frames kept
	// to leave together (see the package doc) whose write failed. Nil
	// means slog.Default().
	ErrorLog *slog.Logger
}

// Dial opens a WebSocket connection to urlStr (ws:// or wss://; http:// and
// https:// are accepted as their equivalents). ctx bounds the whole
// handshake (TCP, proxy, TLS and HTTP); once Dial returns, ctx no longer
// matters to the connection.
//
// If the server answers but refuses or botches the handshake, Dial returns
// the response (its body holds the first KiB the server sent) together with
// an error.
//
// Compiled for a browser (GOOS=js GOARCH=wasm), Dial opens the browser's
// WebSocket instead, with the differences the package doc lists under
// "In the browser".
func Dial(ctx context.Context, urlStr string, opts *DialOptions) (*Conn, *http.Response, error) {
	if opts == nil {
		opts = &DialOptions{}
	}
	if dialBrowser != nil {
		return dialBrowser(ctx, urlStr, opts)
	}
	u, err := url.Parse(urlStr)
	if err != nil {
		return nil, nil, fmt.Errorf("ws: dial: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	case "http", "https":
	default:
		return nil, nil, fmt.Errorf("ws: dial: unsupported URL scheme %q", u.Scheme)
	}
	u.Fragment = ""

	var keyBytes [16]byte
	crand.Read(keyBytes[:])
	key := base64.StdEncoding.EncodeToString(keyBytes[:])

	req := &http.Request{
		Method:     http.MethodGet,
		URL:        u,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     make(http.Header),
		Host:       u.Host,
	}
	req = req.WithContext(ctx)
	for name, values := range opts.HTTPHeader {
		req.Header[http.CanonicalHeaderKey(name)] = slices.Clone(values)
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
		req.Header.Del("Host")
	}
	req.Header.Set("Upgrade", "websocket")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Sec-WebSocket-Key", key)
	req.Header.Set("Sec-WebSocket-Version", "13")
	if len(opts.Subprotocols) > 0 {
		req.Header.Set("Sec-WebSocket-Protocol", strings.Join(opts.Subprotocols, ", "))
	}
	if opts.Compression != nil {
		req.Header.Set("Sec-WebSocket-Extensions", offerDeflate(opts.Compression))
	}

	nc, err := dialConn(ctx, req, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("ws: dial %s: %w", urlStr, err)
	}
	c, resp, err := clientHandshake(ctx, nc, req, key, opts)
	if err != nil {
		nc.Close()
		return nil, resp, fmt.Errorf("ws: dial %s: %w", urlStr, err)
	}
	return c, resp, nil
}

// dialConn opens the connection the handshake travels on: TCP, through a
// proxy if one applies, then TLS for https.
func dialConn(ctx context.Context, req *http.Request, opts *DialOptions) (net.Conn, error) {
	dial := opts.NetDialContext
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	proxy := opts.Proxy
	if proxy == nil {
		proxy = http.ProxyFromEnvironment
	}
	target := hostPort(req.URL)
	proxyURL, err := proxy(req)
	if err != nil {
		return nil, err
	}
	var nc net.Conn
	if proxyURL != nil {
		if proxyURL.Scheme != "http" && proxyURL.Scheme != "" {
			return nil, fmt.Errorf("unsupported proxy scheme %q", proxyURL.Scheme)
		}
		if nc, err = dial(ctx, "tcp", hostPort(&url.URL{Scheme: "http", Host: proxyURL.Host})); err != nil {
			return nil, err
		}
		if err := connectTunnel(ctx, nc, proxyURL, target); err != nil {
			nc.Close()
			return nil, err
		}
	} else if nc, err = dial(ctx, "tcp", target); err != nil {
		return nil, err
	}
	if req.URL.Scheme == "https" {
		cfg := opts.TLSConfig.Clone()
		if cfg == nil {
			cfg = &tls.Config{}
		}
		if cfg.ServerName == "" {
			cfg.ServerName = req.URL.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, err
		}
		nc = tc
	}
	return nc, nil
}

// hostPort returns the URL's host with its port, the scheme's default if none.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	if u.Scheme == "https" {
		return net.JoinHostPort(u.Hostname(), "443")
	}
	return net.JoinHostPort(u.Hostname(), "80")
}

// connectTunnel asks an HTTP proxy for a tunnel to target.
func connectTunnel(ctx context.Context, nc net.Conn, proxyURL *url.URL, target string) error {
	stop := watchDeadline(ctx, nc)
	defer stop()
	req := &http.Request{
		Method: http.MethodConnect,
		URL:    &url.URL{Opaque: target},
		Host:   target,
		Header: make(http.Header),
	}
	if u := proxyURL.User; u != nil {
		pass, _ := u.Password()
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(u.Username()+":"+pass)))
	}
	if err := req.Write(nc); err != nil {
		return err
	}
	// A proxy sends nothing after its answer until the tunnel is used, so
	// a bufio.Reader reads no byte of the tunnel (checked below). Its size
	// bounds a hostile answer like the handshake response's.
	br := bufio.NewReader(&io.LimitedReader{R: nc, N: maxHandshakeResponse})
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("proxy refused the tunnel: %s", resp.Status)
	}
	if br.Buffered() > 0 {
		return errors.New("proxy sent data before the tunnel was used")
	}
	return nil
}

// watchDeadline applies ctx's deadline and cancellation to nc until stop.
func watchDeadline(ctx context.Context, nc net.Conn) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		nc.SetDeadline(d)
	}
	stopAfter := context.AfterFunc(ctx, func() { nc.SetDeadline(aLongTimeAgo) })
	return func() {
		stopAfter()
		nc.SetDeadline(time.Time{})
	}
}

// clientHandshake sends the upgrade request on nc and checks the answer.
func clientHandshake(ctx context.Context, nc net.Conn, req *http.Request, key string, opts *DialOptions) (*Conn, *http.Response, error) {
	stop := watchDeadline(ctx, nc)
	defer stop()
	bw := bufio.NewWriterSize(nc, 1024)
	if err := req.Write(bw); err != nil {
		return nil, nil, ctxErr(ctx, err)
	}
	if err := bw.Flush(); err != nil {
		return nil, nil, ctxErr(ctx, err)
	}
	// A server may not make the client buffer an endless header.
	br := bufio.NewReaderSize(&io.LimitedReader{R: nc, N: maxHandshakeResponse}, readBufSize)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return nil, nil, ctxErr(ctx, err)
	}
	deflate, err := checkResponse(resp, key, req.Header.Get("Sec-WebSocket-Protocol") != "", opts)
	if err != nil {
		// The body is a courtesy: a refusal without a length may leave
		// the connection open, so wait for it only briefly.
		if d, ok := ctx.Deadline(); !ok || time.Until(d) > refusalBodyWait {
			nc.SetReadDeadline(time.Now().Add(refusalBodyWait))
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		return nil, resp, err
	}
	var buffered []byte
	if n := br.Buffered(); n > 0 {
		buffered, _ = br.Peek(n)
	}
	cfg := connConfig{
		readLimit:    opts.ReadLimit,
		closeTimeout: opts.CloseTimeout,
		onPing:       opts.OnPing,
		logger:       opts.ErrorLog,
		keepAlive:    opts.KeepAlive,
		keepTimeout:  opts.KeepAliveTimeout,
		ownSocket:    opts.NetDialContext == nil, // a caller's dialer may keep the conn
	}
	resp.Body = http.NoBody
	return newConn(nc, true, strings.TrimSpace(resp.Header.Get("Sec-WebSocket-Protocol")), cfg, deflate, buffered), resp, nil
}

// refusalBodyWait bounds the wait for the body of a refused handshake.
const refusalBodyWait = time.Second

// maxHandshakeResponse bounds the bytes read for the handshake response.
const maxHandshakeResponse = 64 << 10

// checkResponse validates the server's handshake response (RFC 6455 §4.1)
// and returns the negotiated compression, if any.
func checkResponse(resp *http.Response, key string, offeredProto bool, opts *DialOptions) (*deflateState, error) {
	if resp.StatusCode != http.StatusSwitchingProtocols {
		return nil, fmt.Errorf("server answered %s, not 101 Switching Protocols", resp.Status)
	}
	if !hasToken(resp.Header, "Upgrade", "websocket") {
		return nil, errors.New(`handshake response lacks "Upgrade: websocket"`)
	}
	if !hasToken(resp.Header, "Connection", "upgrade") {
		return nil, errors.New(`handshake response lacks "Connection: Upgrade"`)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		return nil, fmt.Errorf("handshake response has a wrong Sec-WebSocket-Accept %q", got)
	}
	if p := resp.Header.Values("Sec-WebSocket-Protocol"); len(p) > 0 {
		if len(p) > 1 || !offeredProto || !slices.Contains(opts.Subprotocols, strings.TrimSpace(p[0])) {
			return nil, fmt.Errorf("server chose a subprotocol that was not offered: %q", strings.Join(p, ", "))
		}
	}
	ext := resp.Header.Values("Sec-WebSocket-Extensions")
	if len(ext) == 0 {
		return nil, nil
	}
	if opts.Compression == nil {
		return nil, fmt.Errorf("server chose extensions that were not offered: %q", strings.Join(ext, ", "))
	}
	params, ok, err := checkDeflateResponse(ext)
	if err != nil {
		return nil, fmt.Errorf("bad permessage-deflate response: %w", err)
	}
	if !ok {
		return nil, nil
	}
	return newDeflateState(params, true, opts.Compression), nil
}

// ctxErr prefers the context's error to the I/O error it caused.
// The socket deadline copies ctx's and may fire before ctx's own timer: a
// timeout at or after ctx's deadline is ctx's.
func ctxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if d, ok := ctx.Deadline(); ok && cerr == nil && errors.Is(err, os.ErrDeadlineExceeded) && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded
	}
	if cerr != nil {
		return fmt.Errorf("%w (%w)", cerr, err)
	}
	return err
}
