package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/wesos/wesos/ws"
)

const dialUsage = `Usage: wesos dial [flags] URL

Opens a WebSocket to URL (ws://, wss://, http:// or https://). Every record
of stdin (a line, by default) is sent as a message; every message received
is written to stdout as a record. When stdin ends (after -linger), a close
frame with 1000 goes out; the messages the server sends before its own close
frame are still printed, and wesos exits once that has come. A server that
answers the close frame at once (as one running a program per connection
does) sends nothing after it: to see the answers to the last lines, keep
stdin open until they came, or give them time with -linger. The close code and
reason are printed to stderr. The proxy named by HTTPS_PROXY, HTTP_PROXY and
NO_PROXY is used (HTTP CONNECT).

Examples:
  echo hello | wesos dial ws://localhost:8080/
  echo '{"op":"status"}' | wesos dial -linger 2s wss://example.com/api
  wesos dial -H 'Authorization: Bearer TOKEN' -subprotocol chat wss://example.com/ws
  wesos dial -framing nul -binary ws://localhost:8080/ < records.bin
  wesos dial wss://example.com/feed | jq -c --unbuffered .price | wesos dial ws://localhost:8080/prices

Exit status:
  0  the connection ended normally (the peer closed with 1000, 1001 or no
     code, or stdin ended and the close handshake completed), or -h
  1  the connection could not be opened (DNS, TCP, TLS, proxy), or stdin or
     stdout failed
  2  bad flags or URL
  3  the server refused the handshake: its HTTP status and body are printed
  4  protocol error: the peer broke the protocol (e.g. invalid UTF-8, closed
     here with 1007), or the peer closed with 1002 or 1007
  5  abnormal closure (1006): the connection ended without a close frame
  6  the peer closed with another code (1008, 1009, 1011, 4000, ...)
`

func runDial(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dial", flag.ContinueOnError)
	var headers, protos listFlag
	protos.split = true
	fs.Var(&headers, "H", "a request header, 'Name: value' (repeatable)")
	fs.Var(&protos, "subprotocol", "a subprotocol to offer (repeatable, or comma-separated), in order of preference")
	origin := fs.String("origin", "", "the Origin header to send, e.g. https://example.com")
	compress := fs.Bool("compress", false, "offer permessage-deflate compression")
	insecure := fs.Bool("insecure", false, "do not verify the server's TLS certificate (prints a warning)")
	ping := fs.Duration("ping", 0, "keepalive: ping when nothing has arrived for this long, give up when the pong does not come within as long again (0: off)")
	binary := fs.Bool("binary", false, "send binary messages instead of text")
	var fr framing
	fs.Var(&fr, "framing", "how stdin and stdout are cut into messages: lines, nul (NUL-terminated) or len (4-byte big-endian length prefix)")
	limit := fs.Int64("read-limit", ws.DefaultReadLimit, "the largest message to accept, in bytes (negative: no limit)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on the opening handshake (TCP, proxy, TLS and HTTP)")
	linger := fs.Duration("linger", 0, "after stdin ends, wait this long for answers (or for the server to close) before closing")
	if st := parseFlags(fs, args, dialUsage, stdout, stderr); st >= 0 {
		return st
	}
	if fs.NArg() != 1 {
		fmt.Fprintf(stderr, "wesos dial: want one URL, got %d arguments\n(run wesos dial -h for help)\n", fs.NArg())
		return exitUsage
	}
	rawURL := fs.Arg(0)
	if err := checkURL(rawURL); err != nil {
		fmt.Fprintf(stderr, "wesos dial: %v\n", err)
		return exitUsage
	}
	opts := &ws.DialOptions{
		HTTPHeader:   make(http.Header),
		Subprotocols: protos.vals,
		ReadLimit:    *limit,
		KeepAlive:    *ping,
		ErrorLog:     newLogger(stderr, slog.LevelWarn),
	}
	for _, h := range headers.vals {
		name, value, ok := strings.Cut(h, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t\r\n") {
			fmt.Fprintf(stderr, "wesos dial: -H %q: want 'Name: value'\n", h)
			return exitUsage
		}
		opts.HTTPHeader.Add(name, strings.TrimSpace(value))
	}
	if *origin != "" {
		opts.HTTPHeader.Set("Origin", *origin)
	}
	if *compress {
		opts.Compression = &ws.CompressionOptions{}
	}
	if *insecure {
		fmt.Fprintln(stderr, "wesos dial: warning: -insecure: the server's TLS certificate is not verified")
		opts.TLSConfig = &tls.Config{InsecureSkipVerify: true}
	}
	typ := ws.Text
	if *binary {
		typ = ws.Binary
	}

	sig, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	hctx, cancel := context.WithTimeout(sig, *timeout)
	c, resp, err := ws.Dial(hctx, rawURL, opts)
	cancel()
	if err != nil {
		return dialFailed(stderr, resp, err)
	}

	// stdin goes out from a goroutine of its own; when it ends (or a
	// signal comes), a close frame with 1000 goes out (CloseWrite), and
	// the reader below goes on printing the messages the peer sent before
	// its own close frame, then sees that. A process that exits with stdin still
	// open leaves that goroutine behind, which is fine for a command.
	var (
		closeOnce sync.Once
		inErr     atomic.Pointer[error] // an error of stdin, set before closing
	)
	closeNormally := func() { closeOnce.Do(func() { c.CloseWrite(ws.StatusNormalClosure, "") }) }
	go func() {
		err := sendFramed(context.Background(), c, stdin, fr, typ)
		if isInputErr(err) {
			inErr.Store(&err)
		} else if err == nil && *linger > 0 {
			time.Sleep(*linger) // the process exits sooner if the server closes
		}
		closeNormally()
	}()
	go func() {
		<-sig.Done()
		stopSignals() // a second Ctrl-C kills
		closeNormally()
	}()

	out := bufio.NewWriterSize(stdout, frameBuf)
	for {
		err := recvFramed(context.Background(), c, out, fr)
		if err == nil {
			continue
		}
		if isWriteErr(err) {
			fmt.Fprintf(stderr, "wesos dial: writing stdout: %v\n", err)
			c.Close(ws.StatusNormalClosure, "")
			return exitFailed
		}
		status := reportEnd(stderr, err)
		if ie := inErr.Load(); ie != nil && status == exitOK {
			fmt.Fprintf(stderr, "wesos dial: reading stdin: %v\n", *ie)
			return exitFailed
		}
		return status
	}
}

// checkURL says what is wrong with a URL that Dial cannot use.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("invalid URL: %v", err)
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	case "":
		return fmt.Errorf("invalid URL %q: no scheme (want ws://, wss://, http:// or https://)", raw)
	default:
		return fmt.Errorf("invalid URL %q: scheme %q (want ws, wss, http or https)", raw, u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: no host", raw)
	}
	return nil
}

// dialFailed reports a failed Dial and returns the exit status.
func dialFailed(stderr io.Writer, resp *http.Response, err error) int {
	if resp == nil {
		fmt.Fprintf(stderr, "wesos dial: %v\n", err)
		return exitFailed
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		// The server agreed but botched the handshake (a wrong accept
		// key, an extension or subprotocol we did not offer).
		fmt.Fprintf(stderr, "wesos dial: bad handshake: %v\n", err)
		return exitProtocol
	}
	fmt.Fprintf(stderr, "wesos dial: handshake refused: HTTP %s\n", resp.Status)
	if resp.Body != nil {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		if b := strings.TrimSpace(string(body)); b != "" {
			fmt.Fprintf(stderr, "%s\n", b)
		}
	}
	return exitRefused
}

// reportEnd prints how the connection ended, given the error that ended its
// reading, and returns the exit status that says so.
func reportEnd(stderr io.Writer, err error) int {
	var ce ws.CloseError
	var pe *ws.ProtocolError
	switch {
	case errors.As(err, &pe):
		fmt.Fprintf(stderr, "wesos dial: protocol error: %v\n", err)
		return exitProtocol
	case errors.As(err, &ce):
		switch ce.Code {
		case ws.StatusAbnormalClosure:
			fmt.Fprintf(stderr, "wesos dial: connection lost without a close frame: %v\n", err)
			return exitAbnormal
		case ws.StatusNormalClosure, ws.StatusGoingAway, ws.StatusNoStatusRcvd:
			fmt.Fprintf(stderr, "wesos dial: closed: %s\n", describeClose(ce))
			return exitOK
		case ws.StatusProtocolError, ws.StatusInvalidFramePayloadData:
			fmt.Fprintf(stderr, "wesos dial: closed by the peer for a protocol error: %s\n", describeClose(ce))
			return exitProtocol
		}
		fmt.Fprintf(stderr, "wesos dial: closed: %s\n", describeClose(ce))
		return exitClosed
	}
	fmt.Fprintf(stderr, "wesos dial: connection failed: %v\n", err)
	return exitAbnormal
}

// describeClose is the code and reason of a close, e.g.
// 1011 (internal error) "process exit status 1".
func describeClose(ce ws.CloseError) string {
	if ce.Reason == "" {
		return ce.Code.String()
	}
	return fmt.Sprintf("%v %q", ce.Code, ce.Reason)
}
