package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/browsertest"
	"github.com/wesos/wesos/internal/extest"
	"github.com/wesos/wesos/internal/testpeer"
	"github.com/wesos/wesos/ws"
)

// script writes an executable shell script into a temporary directory and
// returns its path.
func script(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "script.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestServeExecCat: messages go through cat and come back, one process per
// connection, and the process ends with its connection.
func TestServeExecCat(t *testing.T) {
	srv, url := startServe(t, "-exec", "cat")
	for i := range 2 {
		p, stdin := startDial(t, url)
		for _, msg := range []string{"one", "two", "wörld"} {
			msg = fmt.Sprint(msg, i)
			stdin.Write([]byte(msg + "\n"))
			p.AwaitStdout(t, line(msg))
		}
		stdin.Close()
		if code := p.Wait(t); code != exitOK {
			t.Errorf("exit status %d, want 0; stderr:\n%s", code, p.Stderr())
		}
	}
	waitFor(t, "two processes ended", func() bool {
		return strings.Count(srv.Stderr(), `msg="process ended with its connection"`) == 2
	})
}

// TestServeExecScript: a script that uppercases, and sees the request in
// its environment as a CGI program would.
func TestServeExecScript(t *testing.T) {
	upper := script(t, `echo "path=$PATH_INFO query=$QUERY_STRING uri=$REQUEST_URI method=$REQUEST_METHOD remote=$REMOTE_ADDR:$REMOTE_PORT server=$SERVER_NAME:$SERVER_PORT hello=$HTTP_X_HELLO ua=$HTTP_USER_AGENT secret=$WESOS_TEST_SECRET"
echo "log line for the server" >&2
while read -r l; do printf '%s\n' "$l" | tr a-z A-Z; done
`)
	t.Setenv("WESOS_TEST_SECRET", "not passed on") // not in -passenv
	srv, url := startServe(t, "-exec", upper)
	port := regexp.MustCompile(`:(\d+)/$`).FindStringSubmatch(url)[1]
	p, stdin := startDial(t, "-H", "X-Hello: there", url+"room/7?a=1&b=2")
	env := p.AwaitStdout(t, regexp.MustCompile(`(?m)^path=.*$`))[0]
	for _, want := range []string{"path=/room/7 ", "query=a=1&b=2 ", "uri=/room/7?a=1&b=2 ", "method=GET ",
		"remote=127.0.0.1:", "server=127.0.0.1:" + port + " ", "hello=there ", "ua=Go-http-client/1.1 ", "secret="} {
		if !strings.Contains(env+" ", want) {
			t.Errorf("environment line %q lacks %q", env, want)
		}
	}
	if strings.Contains(env, "not passed on") {
		t.Errorf("a variable outside -passenv reached the process: %q", env)
	}
	stdin.Write([]byte("make me loud\n"))
	p.AwaitStdout(t, line("MAKE ME LOUD"))
	srv.AwaitStderr(t, regexp.MustCompile(`msg=stderr .*line="log line for the server"`))
	stdin.Close()
	if code := p.Wait(t); code != exitOK {
		t.Errorf("exit status %d, want 0; stderr:\n%s", code, p.Stderr())
	}
}

// TestServeExecExitStatus: the process's exit status is the close code:
// 0 → 1000, anything else → 1011; its output goes out first.
func TestServeExecExitStatus(t *testing.T) {
	for _, tc := range []struct {
		status   int
		dialCode int
		want     string
	}{
		{0, exitOK, `closed: 1000 \(normal closure\)`},
		{1, exitClosed, `closed: 1011 \(internal error\) "process exit status 1"`},
	} {
		_, url := startServe(t, "-exec", script(t, fmt.Sprintf("echo last words\nexit %d\n", tc.status)))
		p, _ := startDial(t, url) // stdin open: the process ends the session
		code := p.Wait(t)
		dialResult{p.Stdout(), p.Stderr(), code}.check(t, tc.dialCode, tc.want)
		if p.Stdout() != "last words\n" {
			t.Errorf("stdout %q, want the process's last words", p.Stdout())
		}
	}
}

// TestServeExecNeverReads: a process that reads nothing and ignores
// SIGTERM, with a client that has filled its stdin pipe, does not hold up
// the server's shutdown: it is killed and reaped, and the client gets 1001.
func TestServeExecNeverReads(t *testing.T) {
	stubborn := script(t, `trap "" TERM
echo "pid $$"
while :; do sleep 1; done
`)
	srv, url := startServe(t, "-exec", stubborn, "-grace", "200ms")
	p, stdin := startDial(t, url)
	pid, _ := strconv.Atoi(p.AwaitStdout(t, regexp.MustCompile(`pid (\d+)`))[1])
	// More than a pipe holds (64 KiB on Linux): the server's write to the
	// process's stdin blocks.
	go func() {
		chunk := []byte(strings.Repeat("x", 1023) + "\n")
		for range 256 {
			if _, err := stdin.Write(chunk); err != nil {
				return
			}
		}
	}()
	if pipeUnread(pid) >= 0 {
		waitFor(t, "the process's stdin pipe to fill", func() bool { return pipeUnread(pid) >= 60<<10 })
	}
	srv.Signal(t, syscall.SIGTERM)
	if code := srv.Wait(t); code != 0 {
		t.Errorf("server exit status %d, want 0", code)
	}
	if code := p.Wait(t); code != exitOK || !strings.Contains(p.Stderr(), "1001 (going away)") {
		t.Errorf("client exit status %d, want 0 after 1001; stderr:\n%s", code, p.Stderr())
	}
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
		t.Errorf("process %d still exists after the server exited", pid)
	}
	if !strings.Contains(srv.Stderr(), "process killed") {
		t.Errorf("the server did not log the kill:\n%s", srv.Stderr())
	}
}

// TestServeBroadcast: two clients in one room get each other's messages
// (and their own); a client in another room gets none of them.
func TestServeBroadcast(t *testing.T) {
	_, url := startServe(t, "-broadcast")
	type client struct {
		p     *extest.Process
		stdin io.WriteCloser
	}
	join := func(path, name string, others ...client) client {
		p, stdin := startDial(t, url+path)
		stdin.Write([]byte(name + " joined\n"))
		p.AwaitStdout(t, line(name+" joined")) // it is in the room
		for _, o := range others {
			o.p.AwaitStdout(t, line(name+" joined"))
		}
		return client{p, stdin}
	}
	a := join("room1", "a")
	b := join("room1", "b", a)
	c := join("room2", "c")
	a.stdin.Write([]byte("hello from a\n"))
	b.p.AwaitStdout(t, line("hello from a"))
	c.stdin.Write([]byte("hello from c\n"))
	c.p.AwaitStdout(t, line("hello from c"))
	b.stdin.Write([]byte("bye from b\n"))
	a.p.AwaitStdout(t, line("bye from b"))
	for _, cl := range []client{a, b, c} {
		cl.stdin.Close()
		if code := cl.p.Wait(t); code != exitOK {
			t.Errorf("exit status %d; stderr:\n%s", code, cl.p.Stderr())
		}
	}
	if strings.Contains(c.p.Stdout(), "from a") || strings.Contains(a.p.Stdout()+b.p.Stdout(), "from c") {
		t.Errorf("a message crossed rooms: a %q, b %q, c %q", a.p.Stdout(), b.p.Stdout(), c.p.Stdout())
	}
}

// TestServeMaxConns: the connection over -max-conns is refused with 503.
func TestServeMaxConns(t *testing.T) {
	_, url := startServe(t, "-echo", "-max-conns", "1")
	p, stdin := startDial(t, url)
	stdin.Write([]byte("in\n"))
	p.AwaitStdout(t, line("in"))
	dialWith(t, "", url).check(t, exitRefused, "503 Service Unavailable", "too many connections")
	stdin.Close()
	p.Wait(t)
	waitFor(t, "a free slot", func() bool { return dialWith(t, "", url).code == exitOK })
}

// TestServeExecNoZombies: 500 connections to serve -exec, each with its
// own process, leave no child behind, dead or alive.
func TestServeExecNoZombies(t *testing.T) {
	testpeer.SkipShort(t, "500 connections to wesos serve -exec")
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc to count children in")
	}
	srv, url := startServe(t, "-exec", "cat")
	ctx, cancel := context.WithTimeout(context.Background(), 2*extest.Timeout)
	defer cancel()
	const conns, parallel = 500, 16
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	sem := make(chan struct{}, parallel)
	for i := range conns {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs <- echoOnce(ctx, url, fmt.Sprint("message ", i))
		})
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			if failed++; failed <= 5 {
				t.Error(err)
			}
		}
	}
	waitFor(t, "every process reaped", func() bool { return len(children(t, srv.Pid())) == 0 })
	if n := strings.Count(srv.Stderr(), `msg="process started"`); n != conns {
		t.Errorf("%d processes started, want %d", n, conns)
	}
}

// echoOnce sends msg over a new connection and expects it back.
func echoOnce(ctx context.Context, url, msg string) error {
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	if err := c.Write(ctx, ws.Text, []byte(msg+"\n")); err != nil {
		return err
	}
	_, p, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if string(p) != msg {
		return fmt.Errorf("got %q, want %q", p, msg)
	}
	return c.Close(ws.StatusNormalClosure, "")
}

// children lists the processes whose parent is pid, with their state
// (R, S, Z for a zombie, ...).
func children(t *testing.T, pid int) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // it ended meanwhile
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) >= 2 && fields[1] == strconv.Itoa(pid) {
			kids = append(kids, e.Name()+" "+fields[0])
		}
	}
	return kids
}

// TestServeStaticBrowser: a page served by -static beside the socket
// connects to it from Chromium and gets its echo.
func TestServeStaticBrowser(t *testing.T) {
	dir := t.TempDir()
	page := `<!doctype html><title>wesos</title><ul id="log"></ul><script>
const log = t => { const li = document.createElement("li"); li.textContent = t; document.querySelector("#log").append(li) };
const sock = new WebSocket("ws://" + location.host + "/echo");
sock.onopen = () => sock.send("hello from the page");
sock.onmessage = e => log("got: " + e.data);
sock.onclose = e => log("closed: " + e.code);
</script>`
	if err := os.WriteFile(filepath.Join(dir, "index.html"), []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	_, url := startServe(t, "-echo", "-static", dir)
	httpURL := "http" + strings.TrimPrefix(url, "ws")

	// A plain GET gets the file.
	resp, err := http.Get(httpURL + "index.html")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "new WebSocket") {
		t.Fatalf("GET index.html: %s %.60q", resp.Status, body)
	}

	browsertest.Need(t, "wesos serve -static in headless Chromium")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := browsertest.Start(t, ctx)
	p := b.Open(t, ctx, httpURL)
	var texts []string
	waitFor(t, "the echo on the page", func() bool {
		texts = nil
		p.Eval(ctx, `[...document.querySelectorAll("#log li")].map(e => e.textContent)`, &texts)
		return len(texts) > 0
	})
	if len(texts) != 1 || texts[0] != "got: hello from the page" {
		b.Screenshots(t)
		t.Errorf("the page shows %q, want the echo; its console: %q", texts, b.Log())
	}
}

// TestServeTLS: wss:// with a certificate from files; dial -insecure
// accepts the self-signed one and says so, dial without it refuses it.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	writeSelfSigned(t, certFile, keyFile)
	_, url := startServe(t, "-echo", "-tls-cert", certFile, "-tls-key", keyFile)
	if !strings.HasPrefix(url, "wss://") {
		t.Fatalf("serving on %s, want wss://", url)
	}
	r := dialWith(t, "over TLS\n", "-insecure", url)
	r.check(t, exitOK, "warning: -insecure", `closed: 1000`)
	if r.stdout != "over TLS\n" {
		t.Errorf("stdout %q", r.stdout)
	}
	dialWith(t, "", url).check(t, exitFailed, "certificate")
}

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key as PEM files.
func writeSelfSigned(t *testing.T, certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "wesos test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
}
