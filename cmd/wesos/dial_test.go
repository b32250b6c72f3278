package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/extest"
	"github.com/wesos/wesos/internal/testpeer"
)

func TestHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"dial", "-h"}, {"serve", "-h"}, {"serve", "-help"}} {
		r := extest.Start(t, wesosBin, nil, args...)
		if code := r.Wait(t); code != 0 {
			t.Errorf("wesos %s: exit status %d, want 0", strings.Join(args, " "), code)
		}
		if !strings.Contains(r.Stdout(), "Examples:") || !strings.Contains(r.Stdout(), "wesos ") {
			t.Errorf("wesos %s: no examples on stdout:\n%s", strings.Join(args, " "), r.Stdout())
		}
	}
}

func TestBadUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "Usage"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"dial"}, "want one URL"},
		{[]string{"dial", "-nosuchflag", "ws://127.0.0.1:1/"}, "flag provided but not defined"},
		{[]string{"dial", "localhost:8080"}, `invalid URL "localhost:8080": scheme "localhost"`},
		{[]string{"dial", "example.com/ws"}, "no scheme"},
		{[]string{"dial", "ftp://example.com/"}, `scheme "ftp"`},
		{[]string{"dial", "ws:///path"}, "no host"},
		{[]string{"dial", "ws://[::1/"}, "invalid URL"},
		{[]string{"dial", "-H", "NoColon", "ws://127.0.0.1:1/"}, "want 'Name: value'"},
		{[]string{"dial", "-framing", "xml", "ws://127.0.0.1:1/"}, "want lines, nul or len"},
		{[]string{"serve"}, "choose one of"},
		{[]string{"serve", "-echo", "-broadcast"}, "choose one of"},
		{[]string{"serve", "-exec", `sh -c "unterminated`}, "unterminated double quote"},
		{[]string{"serve", "-echo", "-tls-cert", "x.pem"}, "go together"},
		{[]string{"serve", "-echo", "-static", "/nonexistent"}, "not a directory"},
	} {
		r := extest.Start(t, wesosBin, nil, tc.args...)
		code := r.Wait(t)
		if code != exitUsage || !strings.Contains(r.Stderr(), tc.want) {
			t.Errorf("wesos %q: exit status %d, stderr:\n%s\nwant %d and %q", tc.args, code, r.Stderr(), exitUsage, tc.want)
		}
	}
}

// TestDialEcho sends stdin to our echo server in each framing and reads the
// same records back; stdin's end closes with 1000 and exits with 0.
func TestDialEcho(t *testing.T) {
	_, url := startServe(t, "-echo", "-read-limit", "-1")
	long := strings.Repeat("0123456789abcdef", 10<<10) // 160 KiB: streamed as fragments
	t.Run("lines", func(t *testing.T) {
		in := "hello\n\nwörld\n" + long + "\nno newline at the end"
		r := dialWith(t, in, url)
		r.check(t, exitOK, `closed: 1000 \(normal closure\)`)
		if want := in + "\n"; r.stdout != want {
			t.Errorf("stdout %d bytes, want %d: %.80q", len(r.stdout), len(want), r.stdout)
		}
	})
	t.Run("nul", func(t *testing.T) {
		in := "a\nb\x00" + long + "\x00\x00"
		r := dialWith(t, in, "-framing", "nul", "-binary", url)
		r.check(t, exitOK)
		if r.stdout != in {
			t.Errorf("stdout %.80q, want %.80q", r.stdout, in)
		}
	})
	t.Run("len", func(t *testing.T) {
		var in bytes.Buffer
		for _, rec := range []string{"x", "", "\x00\xff binary", long} {
			binary.Write(&in, binary.BigEndian, uint32(len(rec)))
			in.WriteString(rec)
		}
		r := dialWith(t, in.String(), "-framing", "len", "-binary", "-compress", url)
		r.check(t, exitOK)
		if r.stdout != in.String() {
			t.Errorf("stdout %.80q, want %.80q", r.stdout, in.String())
		}
		// A record cut short is an error of stdin: the connection still
		// closes normally.
		r = dialWith(t, "\x00\x00\x00\x09abc", "-framing", "len", url)
		r.check(t, exitFailed, "reading stdin: a record cut short", `closed: 1000`)
	})
	t.Run("empty stdin", func(t *testing.T) {
		r := dialWith(t, "", url)
		r.check(t, exitOK, `closed: 1000 \(normal closure\)`)
		if r.stdout != "" {
			t.Errorf("stdout %q, want nothing", r.stdout)
		}
	})
}

// TestDialInteractive keeps stdin open: answers arrive while the user
// types, and the server's shutdown (1001) ends the client with 0.
func TestDialInteractive(t *testing.T) {
	srv, url := startServe(t, "-echo")
	p, stdin := startDial(t, "-H", "X-Test: 1", "-ping", "1m", url)
	for _, msg := range []string{"first", "second"} {
		stdin.Write([]byte(msg + "\n"))
		p.AwaitStdout(t, line(msg))
	}
	srv.Signal(t, syscall.SIGTERM)
	if code := p.Wait(t); code != exitOK {
		t.Errorf("exit status %d, want 0; stderr:\n%s", code, p.Stderr())
	}
	if !strings.Contains(p.Stderr(), "1001 (going away)") {
		t.Errorf("stderr does not report 1001:\n%s", p.Stderr())
	}
	if code := srv.Wait(t); code != 0 {
		t.Errorf("server exit status %d after SIGTERM, want 0", code)
	}
}

// TestDialFailures: the ways a connection fails, each with its status.
func TestDialFailures(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "ws://" + ln.Addr().String() + "/"
	ln.Close()
	dialWith(t, "", closed).check(t, exitFailed, "connection refused")

	srv := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/refuse":
			http.Error(w, "no entry without a ticket", http.StatusForbidden)
		case "/badutf8":
			// A text message that is not UTF-8.
			conn := hijack(t, w, r)
			conn.Write([]byte{0x81, 0x03, 'a', 0xff, 0xfe})
			waitClosed(conn)
		case "/drop":
			// The TCP connection ends without a close frame.
			conn := hijack(t, w, r)
			conn.Write([]byte{0x81, 0x02, 'h', 'i'})
			conn.Close()
		case "/policy":
			conn := hijack(t, w, r)
			conn.Write([]byte{0x88, 0x06, 0x03, 0xf0, 'r', 'u', 'l', 'e'}) // 1008 "rule"
			waitClosed(conn)
		case "/badframe":
			conn := hijack(t, w, r)
			conn.Write([]byte{0x83, 0x00}) // reserved opcode 3
			waitClosed(conn)
		}
	})
	for _, tc := range []struct {
		path   string
		code   int
		stdout string
		want   []string
	}{
		{"/refuse", exitRefused, "", []string{"handshake refused: HTTP 403 Forbidden", "no entry without a ticket"}},
		{"/badutf8", exitProtocol, "", []string{"protocol error", "1007", "UTF-8"}},
		{"/drop", exitAbnormal, "hi\n", []string{"without a close frame"}},
		{"/policy", exitClosed, "", []string{`closed: 1008 \(policy violation\) "rule"`}},
		{"/badframe", exitProtocol, "", []string{"protocol error", "1002"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			// stdin stays open: the server ends the session.
			p, _ := startDial(t, srv+tc.path)
			code := p.Wait(t)
			dialResult{p.Stdout(), p.Stderr(), code}.check(t, tc.code, tc.want...)
			if p.Stdout() != tc.stdout {
				t.Errorf("stdout %q, want %q", p.Stdout(), tc.stdout)
			}
		})
	}
}

// rawServer serves h on 127.0.0.1 and returns its ws:// URL.
func rawServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go hs.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
	})
	return "ws://" + ln.Addr().String()
}

// hijack answers a WebSocket handshake by hand and returns the connection,
// for a server that then misbehaves on purpose.
func hijack(t *testing.T, w http.ResponseWriter, r *http.Request) net.Conn {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Error(err)
		return nil
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
	brw.Flush()
	return conn
}

// waitClosed reads conn until the client closes it (or 30 s pass), then
// closes it.
func waitClosed(conn net.Conn) {
	conn.SetReadDeadline(time.Now().Add(extest.Timeout))
	bufio.NewReader(conn).WriteTo(discard{})
	conn.Close()
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// pythonServer is a websockets (Python) server: it echoes, except on
// /close, where it closes with 4001 "bye" after the first message.
const pythonServer = `
import asyncio, websockets

async def handler(ws, path=None):
    path = path or ws.path
    async for msg in ws:
        if path == "/close":
            await ws.close(4001, "bye")
            return
        await ws.send(msg)

async def main():
    async with websockets.serve(handler, "127.0.0.1", 0, max_size=None) as server:
        print("port", server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()

asyncio.run(main())
`

// TestDialPython dials a server nobody on this project wrote: Python's
// websockets, plain and with permessage-deflate.
func TestDialPython(t *testing.T) {
	testpeer.SkipShort(t, "wesos dial against Python's websockets")
	testpeer.Require(t, "python3-websockets", "apt-get install python3-websockets",
		"/usr/bin/python3", "-I", "-c", "import websockets; print(websockets.__version__)")
	py := extest.Start(t, "/usr/bin/python3", nil, "-I", "-c", pythonServer)
	url := "ws://127.0.0.1:" + py.AwaitStdout(t, regexp.MustCompile(`port (\d+)`))[1]

	long := strings.Repeat("compressible text, ", 20<<10)
	in := "hello python\n" + long + "\nwörld\n"
	for _, flags := range [][]string{nil, {"-compress"}} {
		// stdin ends once the echoes are in: Python's websockets stops
		// sending as soon as a close frame arrives.
		p, stdin := startDial(t, append(flags, url+"/")...)
		stdin.Write([]byte(in))
		waitFor(t, "the echoes", func() bool { return len(p.Stdout()) >= len(in) })
		stdin.Close()
		code := p.Wait(t)
		dialResult{p.Stdout(), p.Stderr(), code}.check(t, exitOK, `closed: 1000 \(normal closure\)`)
		if p.Stdout() != in {
			t.Errorf("%v: stdout %d bytes, want %d", flags, len(p.Stdout()), len(in))
		}
	}
	p, stdin := startDial(t, url+"/close")
	stdin.Write([]byte("bye?\n"))
	code := p.Wait(t)
	dialResult{p.Stdout(), p.Stderr(), code}.check(t, exitClosed, `closed: 4001 "bye"`)
}

// TestDialProxy: the proxy named by HTTP_PROXY carries the connection
// (CONNECT). The URL's host is a name that only the proxy knows, since a
// proxy is never used for loopback addresses.
func TestDialProxy(t *testing.T) {
	_, url := startServe(t, "-echo")
	port := url[strings.LastIndexByte(url, ':')+1 : len(url)-1]
	var tunnels atomic.Int32
	proxy := rawServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect || r.Host != "wesos.invalid:"+port {
			http.Error(w, "unexpected "+r.Method+" "+r.Host, http.StatusBadRequest)
			return
		}
		up, err := net.Dial("tcp", "127.0.0.1:"+port)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer up.Close()
		down, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer down.Close()
		down.Write([]byte("HTTP/1.1 200 Connection established\r\n\r\n"))
		tunnels.Add(1)
		go func() {
			io.Copy(up, brw)
			up.(*net.TCPConn).CloseWrite()
		}()
		io.Copy(down, up)
	})
	t.Setenv("HTTP_PROXY", "http"+strings.TrimPrefix(proxy, "ws"))
	t.Setenv("NO_PROXY", "")
	p, stdin := startDial(t, "ws://wesos.invalid:"+port+"/")
	stdin.Write([]byte("through the proxy\n"))
	p.AwaitStdout(t, line("through the proxy"))
	stdin.Close()
	code := p.Wait(t)
	dialResult{p.Stdout(), p.Stderr(), code}.check(t, exitOK, `closed: 1000`)
	if tunnels.Load() != 1 {
		t.Errorf("%d tunnels through the proxy, want 1", tunnels.Load())
	}
}
