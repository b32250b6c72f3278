package main

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wesos/wesos/ws"
)

// execer runs a process per connection, as websocketd does: the records of
// its stdout are messages to the client, the client's messages are records
// on its stdin, its stderr goes to the log.
type execer struct {
	argv    []string
	framing framing
	typ     ws.MessageType // of the messages made from stdout
	passEnv []string       // names of variables passed on from wesos's own environment
	log     *slog.Logger
	grace   time.Duration // from the end of stdin to SIGTERM, and from SIGTERM to SIGKILL
}

// envKey is the context key of the environment made for a connection's
// process (a []string), computed from the request before it is upgraded so
// that the connection does not keep the request.
type envKey struct{}

// env returns the environment of the process for request r: the variables
// a CGI program sees (as websocketd sets them), the request's headers as
// HTTP_*, and the variables of passEnv.
func (x *execer) env(r *http.Request, id uint64) []string {
	var env []string
	add := func(k, v string) {
		if !strings.ContainsRune(v, 0) {
			env = append(env, k+"="+v)
		}
	}
	for _, k := range x.passEnv {
		if v, ok := os.LookupEnv(k); ok {
			add(k, v)
		}
	}
	remoteHost, remotePort, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		remoteHost = r.RemoteAddr
	}
	serverName, serverPort := r.Host, ""
	if h, p, err := net.SplitHostPort(r.Host); err == nil {
		serverName, serverPort = h, p
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(la.String()); err == nil {
			serverPort = p
		}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	add("GATEWAY_INTERFACE", "CGI/1.1")
	add("SERVER_SOFTWARE", "wesos")
	add("SERVER_PROTOCOL", r.Proto)
	add("SERVER_NAME", strings.Trim(serverName, "[]"))
	add("SERVER_PORT", serverPort)
	add("REMOTE_ADDR", remoteHost)
	add("REMOTE_HOST", remoteHost) // no reverse lookup, as websocketd by default
	add("REMOTE_PORT", remotePort)
	add("REQUEST_METHOD", r.Method)
	add("REQUEST_URI", uri)
	add("SCRIPT_NAME", "")
	add("PATH_INFO", r.URL.Path)
	add("QUERY_STRING", r.URL.RawQuery)
	add("UNIQUE_ID", strconv.FormatUint(id, 10))
	if r.TLS != nil {
		add("HTTPS", "on")
	}
	for name, vals := range r.Header {
		if strings.EqualFold(name, "Proxy") {
			continue // never HTTP_PROXY from a request (httpoxy)
		}
		add("HTTP_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_")), strings.Join(vals, ", "))
	}
	return env
}

// serve runs the process for c. It returns nil when the process exited
// with status 0, a ws.CloseError with 1011 when it failed, and the
// connection's error when the connection ended first (the process is then
// stopped: stdin closed, SIGTERM after the grace period, SIGKILL after
// another). The process is always reaped before serve returns.
func (x *execer) serve(ctx context.Context, c *ws.Conn) error {
	env, _ := ctx.Value(envKey{}).([]string)
	log := x.log.With("remote", c.RemoteAddr().String())
	cmd := exec.Command(x.argv[0], x.argv[1:]...)
	cmd.Env = env
	cmd.Stderr = &lineLog{log: log}
	cmd.WaitDelay = x.grace // a descendant that keeps stderr open does not hold Wait
	setProcessGroup(cmd)
	inR, inW, err := os.Pipe()
	if err != nil {
		return x.startFailed(log, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return x.startFailed(log, err)
	}
	cmd.Stdin, cmd.Stdout = inR, outW
	err = cmd.Start()
	inR.Close() // the child's ends
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return x.startFailed(log, err)
	}
	log.Info("process started", "pid", cmd.Process.Pid)

	// stdout → messages, in a goroutine that then reaps the process and
	// ends the reading below.
	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	exited := make(chan error, 1)
	go func() {
		err := sendFramed(ctx, c, outR, x.framing, x.typ)
		outR.Close() // a process that writes on gets EPIPE
		if err != nil && !isInputErr(err) {
			log.Debug("stdout not delivered", "err", err)
		}
		exited <- cmd.Wait()
		stopReading()
	}()

	// Messages → stdin. A process that does not read its stdin blocks the
	// write; the end of rctx unblocks it.
	stopWrite := context.AfterFunc(rctx, func() {
		if inW.SetWriteDeadline(time.Now()) != nil {
			inW.Close()
		}
	})
	in := bufio.NewWriterSize(inW, frameBuf)
	var connErr error
	for {
		err := recvFramed(rctx, c, in, x.framing)
		if err == nil || isWriteErr(err) {
			// A process that closed its stdin or exited: its output
			// still goes out, the messages are dropped.
			continue
		}
		if rctx.Err() == nil || ctx.Err() != nil {
			connErr = err // the connection ended, or Shutdown
		}
		break
	}
	stopWrite()
	inW.Close()

	select {
	case err := <-exited: // the process has ended: on its own, or just now at the end of stdin
		if connErr == nil {
			return exitStatus(log, err)
		}
		log.Info("process ended with its connection", "pid", cmd.Process.Pid, "status", describeExit(err))
		return connErr
	default:
	}
	x.stop(log, cmd, exited)
	return connErr
}

// stop ends a process whose connection has ended: its stdin is closed
// already; after the grace period it gets SIGTERM, after another SIGKILL
// (with its process group). It returns once the process is reaped.
func (x *execer) stop(log *slog.Logger, cmd *exec.Cmd, exited <-chan error) {
	t := time.NewTimer(x.grace)
	defer t.Stop()
	for _, sig := range []func(*exec.Cmd) error{terminate, kill} {
		select {
		case err := <-exited:
			log.Info("process ended with its connection", "pid", cmd.Process.Pid, "status", describeExit(err))
			return
		case <-t.C:
		}
		sig(cmd)
		t.Reset(x.grace)
	}
	err := <-exited
	log.Info("process killed", "pid", cmd.Process.Pid, "status", describeExit(err))
}

// exitStatus maps a process's end to the connection's: nil (close 1000) for
// status 0, a CloseError 1011 otherwise.
func exitStatus(log *slog.Logger, err error) error {
	if err == nil {
		log.Info("process exited", "status", 0)
		return nil
	}
	log.Warn("process failed", "status", describeExit(err))
	return ws.CloseError{Code: ws.StatusInternalError, Reason: truncate("process " + describeExit(err))}
}

func describeExit(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func (x *execer) startFailed(log *slog.Logger, err error) error {
	log.Error("cannot start the process", "argv", x.argv, "err", err)
	return ws.CloseError{Code: ws.StatusInternalError, Reason: "cannot start the process"}
}

// truncate cuts a close reason to fit a control frame.
func truncate(s string) string {
	const max = 123
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && s[len(s)-1]&0xC0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xC0 {
		s = s[:len(s)-1]
	}
	return s
}

// lineLog writes a process's stderr to the log, a record per line. A line
// longer than maxLogLine is logged in pieces.
type lineLog struct {
	log *slog.Logger
	mu  sync.Mutex
	buf []byte
}

const maxLogLine = 4 << 10

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		i := strings.IndexByte(string(p), '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			for len(l.buf) >= maxLogLine {
				l.emit(l.buf[:maxLogLine])
				l.buf = append(l.buf[:0], l.buf[maxLogLine:]...)
			}
			break
		}
		l.buf = append(l.buf, p[:i]...)
		l.emit(l.buf)
		l.buf = l.buf[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (l *lineLog) emit(line []byte) {
	l.log.Info("stderr", "line", string(line))
}

// splitCommand splits an -exec command line into words: blanks separate
// words, single quotes keep everything up to the next single quote, double
// quotes keep everything but a backslash escaping " or \, and a backslash
// outside quotes keeps the next character. There is no other expansion: for
// pipes, globs or variables, run a shell ('sh -c "..."').
func splitCommand(s string) ([]string, error) {
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			w.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
					i++
				}
				w.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case ch == '\\':
			if i+1 == len(s) {
				return nil, errors.New("backslash at the end")
			}
			i++
			w.WriteByte(s[i])
			inWord = true
		default:
			w.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	if len(words) == 0 {
		return nil, errors.New("empty command")
	}
	return words, nil
}
