package ws

import (
	"context"
	"go/parser"
	"go/token"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// TestOnlyTransportTouchesDescriptor: the descriptor tricks stay in the
// transport. No non-test file of the package but sock*.go imports syscall
// or unsafe, or names a RawConn.
func TestOnlyTransportTouchesDescriptor(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "sock") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := parser.ParseFile(fset, name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "syscall" || path == "unsafe" {
				t.Errorf("%s imports %s: descriptor work belongs in the transport (sock*.go)", name, path)
			}
		}
		if strings.Contains(string(src), "RawConn") {
			t.Errorf("%s names RawConn: descriptor work belongs in the transport (sock*.go)", name)
		}
		checked++
	}
	if checked < 10 {
		t.Fatalf("checked %d files: not the package's directory?", checked)
	}
}

// BenchmarkEchoIdleWait: 1,024 connections, each with one 16-byte message
// in flight, answered by an echo handler. Every server connection runs out
// of input after each message, so the direct transport's idle wait (which
// holds no read buffer) runs once per message; the portable transport,
// which waits in nc.Read holding its buffer, is the baseline it must not
// cost more than.
func BenchmarkEchoIdleWait(b *testing.B) {
	for _, tr := range []string{"direct", "portable"} {
		b.Run(tr, func(b *testing.B) { benchIdleWait(b, 1024, tr == "portable") })
	}
}

func benchIdleWait(b *testing.B, conns int, portable bool) {
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		streamEcho(ctx, c)
		return nil
	}, nil)
	hs := httptest.NewUnstartedServer(srv)
	if portable {
		hs.Listener = portableListener{hs.Listener}
	}
	hs.Start()
	defer hs.Close()
	defer srv.Shutdown(context.Background())
	host := strings.TrimPrefix(hs.URL, "http://")
	raws := make([]*rawConn, conns)
	for i := range raws {
		raws[i] = rawUpgrade(b, host)
	}
	msg := frameSet{masked: true}.msg(opBinary, "0123456789abcdef")
	const answer = 2 + 16 // the echo, an unmasked frame
	var left atomic.Int64
	run := func(n int) {
		left.Store(int64(n))
		var wg sync.WaitGroup
		errs := make(chan error, conns)
		for _, raw := range raws {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var buf [answer]byte
				for left.Add(-1) >= 0 {
					if _, err := raw.nc.Write(msg); err != nil {
						errs <- err
						return
					}
					if _, err := io.ReadFull(raw.br, buf[:]); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
	}
	run(4 * conns) // every connection has echoed: its buffers and stack are grown
	b.ReportAllocs()
	b.ResetTimer()
	run(b.N)
	b.StopTimer()
	for _, raw := range raws {
		raw.nc.Close() // the handlers end at once, with no close handshake to wait out
	}
}
