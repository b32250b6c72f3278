package main

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wesos/wesos/internal/extest"
	"github.com/wesos/wesos/ws"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is an echo server that records what the client did.
type server struct {
	URL    string
	protos chan string // the negotiated subprotocol of each connection
	closes chan error  // how each connection ended, as its reads saw it
}

// startServer runs an echo server on 127.0.0.1 until the test ends. If
// handle is not nil, it handles the connections instead.
func startServer(t *testing.T, handle func(c *ws.Conn)) *server {
	t.Helper()
	s := &server{protos: make(chan string, 8), closes: make(chan error, 8)}
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		s.protos <- c.Subprotocol()
		if handle != nil {
			handle(c)
			return nil
		}
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				s.closes <- err
				return err
			}
			if err := c.Write(ctx, typ, p); err != nil {
				s.closes <- err
				return err
			}
		}
	}, &ws.AcceptOptions{Subprotocols: []string{"echo"}})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		hs.Close()
		srv.Shutdown(context.Background())
	})
	s.URL = "ws://" + hs.Listener.Addr().String()
	return s
}

// wantClose checks that the server saw the client close with code.
func (s *server) wantClose(t *testing.T, code ws.StatusCode) {
	t.Helper()
	select {
	case err := <-s.closes:
		var ce ws.CloseError
		if !errors.As(err, &ce) || ce.Code != code {
			t.Errorf("the server saw %v, want a close with %v", err, code)
		}
	case <-time.After(extest.Timeout):
		t.Errorf("the connection did not end")
	}
}

func runClient(t *testing.T, ctx context.Context, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut extest.Buffer
	code = run(ctx, args, stdin, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestText(t *testing.T) {
	s := startServer(t, nil)
	code, out, logs := runClient(t, extest.Context(t), strings.NewReader("hello\nwörld\n\nlast line without newline"),
		"-url", s.URL, "-subprotocol", "chat, echo")
	if code != 0 || out != "hello\nwörld\n\nlast line without newline\n" {
		t.Fatalf("exit %d, stdout %q\n%s", code, out, logs)
	}
	if p := <-s.protos; p != "echo" {
		t.Errorf("subprotocol %q, want echo", p)
	}
	if !strings.Contains(logs, "subprotocol=echo") {
		t.Errorf("the log does not name the subprotocol:\n%s", logs)
	}
	s.wantClose(t, ws.StatusNormalClosure)
}

// -h prints the usage and exits 0, as the other examples (flag.ExitOnError)
// do; an unknown flag exits 2.
func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		arg  string
		exit int
	}{{"-h", 0}, {"-help", 0}, {"-nonsense", 2}} {
		var out, logs strings.Builder
		code := run(extest.Context(t), []string{tc.arg}, strings.NewReader(""), &out, &logs)
		if code != tc.exit || !strings.Contains(logs.String(), "-url") {
			t.Errorf("%s: exit %d, want %d; usage:\n%s", tc.arg, code, tc.exit, logs.String())
		}
	}
}

func TestBinaryMessages(t *testing.T) {
	s := startServer(t, nil)
	long := strings.Repeat("0123456789", 4)
	code, out, logs := runClient(t, extest.Context(t), strings.NewReader("hi\n"+long+"\n"), "-url", s.URL, "-binary")
	want := "binary 2 bytes: 68 69\n" +
		"binary 40 bytes: 30 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 38 39 30 31 32 33 34 35 36 37 38 39 30 31 …\n"
	if code != 0 || out != want {
		t.Fatalf("exit %d, stdout:\n%s\nwant:\n%s\n%s", code, out, want, logs)
	}
	s.wantClose(t, ws.StatusNormalClosure)
}

// Ctrl-C while the input is still open closes with 1000 and exits 0.
func TestInterrupt(t *testing.T) {
	s := startServer(t, nil)
	stdin, input := io.Pipe()
	defer input.Close()
	ctx, interrupt := context.WithCancel(extest.Context(t))
	var out, logs extest.Buffer
	exited := make(chan int, 1)
	go func() { exited <- run(ctx, []string{"-url", s.URL}, stdin, &out, &logs) }()

	io.WriteString(input, "ping\n")
	for i := 0; out.String() != "ping\n"; i++ {
		if i == 1000 {
			t.Fatalf("no reply; stdout %q\n%s", out.String(), logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	interrupt()
	if code := <-exited; code != 0 {
		t.Fatalf("exit %d\n%s", code, logs.String())
	}
	s.wantClose(t, ws.StatusNormalClosure)
}

func TestServerCloses(t *testing.T) {
	for _, tc := range []struct {
		code ws.StatusCode
		exit int
	}{
		{ws.StatusGoingAway, 0},       // a clean end
		{ws.StatusPolicyViolation, 1}, // an error
	} {
		s := startServer(t, func(c *ws.Conn) { c.Close(tc.code, "bye") })
		stdin, input := io.Pipe() // stays open: the server ends the session
		code, _, logs := runClient(t, extest.Context(t), stdin, "-url", s.URL)
		input.Close()
		if code != tc.exit || !strings.Contains(logs, "bye") {
			t.Errorf("server closed with %v: exit %d, want %d\n%s", tc.code, code, tc.exit, logs)
		}
	}
}

func TestDialFails(t *testing.T) {
	code, _, logs := runClient(t, extest.Context(t), strings.NewReader(""), "-url", "ws://127.0.0.1:1/")
	if code != 1 || !strings.Contains(logs, "cannot connect") {
		t.Errorf("exit %d\n%s", code, logs)
	}
}

// TestBinary runs the real program: first with piped input that ends, then
// interrupted by Ctrl-C while its input is still open.
func TestBinary(t *testing.T) {
	s := startServer(t, nil)
	bin := extest.Build(t)

	p := extest.Start(t, bin, strings.NewReader("one\ntwo\n"), "-url", s.URL)
	if code := p.Wait(t); code != 0 || p.Stdout() != "one\ntwo\n" {
		t.Fatalf("exit %d, stdout %q\n%s", code, p.Stdout(), p.Stderr())
	}
	s.wantClose(t, ws.StatusNormalClosure)

	stdin, input, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer input.Close()
	p = extest.Start(t, bin, stdin, "-url", s.URL)
	stdin.Close() // the child has its copy
	io.WriteString(input, "three\n")
	p.AwaitStdout(t, regexp.MustCompile(`three\n`))
	p.Interrupt(t)
	if code := p.Wait(t); code != 0 {
		t.Fatalf("exit %d after Ctrl-C\n%s", code, p.Stderr())
	}
	s.wantClose(t, ws.StatusNormalClosure)
}
