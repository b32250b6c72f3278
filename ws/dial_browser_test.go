//go:build !js

package ws_test

// The wasm end-to-end test: ws.Dial compiled with GOOS=js GOARCH=wasm runs in
// headless Chromium, over the browser's WebSocket, against this package's
// server (testdata/wasm is the program).

import (
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wesos/wesos/internal/browsertest"
	"github.com/wesos/wesos/ws"
)

func TestBrowserWasm(t *testing.T) {
	browsertest.Need(t, "ws.Dial compiled to wasm, in headless Chromium")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	dir := t.TempDir()
	wasm := filepath.Join(dir, "test.wasm")
	build := exec.CommandContext(ctx, filepath.Join(runtime.GOROOT(), "bin", "go"), "build", "-o", wasm, "./testdata/wasm")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go build ./testdata/wasm: %v\n%s", err, out)
	}
	wasmExec := filepath.Join(runtime.GOROOT(), "lib", "wasm", "wasm_exec.js")

	var mu sync.Mutex
	closes := map[string]string{} // the echo connection's id → how it ended, as the server read it
	results := make(chan string, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, wasmPage)
	})
	mux.HandleFunc("GET /wasm_exec.js", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, wasmExec) })
	mux.HandleFunc("GET /test.wasm", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/wasm")
		http.ServeFile(w, r, wasm)
	})
	mux.HandleFunc("POST /result", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		select {
		case results <- string(b):
		default:
		}
	})
	mux.HandleFunc("GET /echo", func(w http.ResponseWriter, r *http.Request) {
		opts := &ws.AcceptOptions{Subprotocols: []string{"echo.v1"}, ReadLimit: 16 << 20}
		if r.URL.Query().Has("deflate") {
			opts.Compression = &ws.CompressionOptions{}
		}
		c, err := ws.Accept(w, r, opts)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				mu.Lock()
				closes[r.URL.Query().Get("id")] = err.Error()
				mu.Unlock()
				return
			}
			if err := c.Write(ctx, typ, p); err != nil {
				return
			}
		}
	})
	mux.HandleFunc("GET /closer", func(w http.ResponseWriter, r *http.Request) {
		if c, err := ws.Accept(w, r, nil); err == nil {
			c.Close(4001, "done")
		}
	})
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, r *http.Request) {
		if c, err := ws.Accept(w, r, nil); err == nil {
			defer c.CloseNow()
			c.Write(ctx, ws.Binary, make([]byte, 2000))
			c.Read(ctx) // until the client fails the connection
		}
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close) // after the browser's cleanup, which ends its connections

	b := browsertest.Start(t, ctx)
	page := b.Open(t, ctx, srv.URL+"/")
	var report string
	for tick := time.NewTicker(100 * time.Millisecond); report == ""; {
		select {
		case report = <-results:
			tick.Stop()
		case <-tick.C:
			for _, l := range b.Log() {
				if strings.Contains(l, " exception: ") {
					t.Fatalf("the wasm program failed: %s", l)
				}
			}
		case <-ctx.Done():
			t.Fatalf("no result from the wasm program: %v", ctx.Err())
		}
	}
	t.Logf("the wasm program reports:\n%s", report)
	// The same timings with the browser's WebSocket used from JavaScript,
	// for comparison (logged only: a loaded machine makes them noisy).
	var res struct {
		Result struct {
			Value struct{ Round, Large float64 }
		}
	}
	js := &res.Result.Value
	if err := b.Call(ctx, page.Session, "Runtime.evaluate", map[string]any{
		"expression": jsTiming, "returnByValue": true, "awaitPromise": true,
	}, &res, time.Minute); err != nil {
		t.Logf("JavaScript's WebSocket: no timing: %v", err)
	} else {
		t.Logf("JavaScript's WebSocket: 200 round trips of 16 bytes: %.0f µs each; an 8 MiB echo: %.0f ms", js.Round*1000, js.Large)
	}
	for _, step := range []string{"echo", "options", "refused", "server-close", "read-limit", "close-code", "close-now", "deflate", "netconn", "timing"} {
		if !strings.Contains(report, "ok "+step+"\n") {
			t.Errorf("step %s did not pass", step)
		}
	}

	// How each echo connection ended, as the server read it: the close
	// codes the browser sent.
	want := map[string]string{
		"main":       ws.CloseError{Code: 4000, Reason: "bye"}.Error(),
		"going-away": ws.CloseError{Code: ws.StatusNoStatusRcvd}.Error(),
		"close-now":  ws.CloseError{Code: ws.StatusNoStatusRcvd}.Error(),
		"deflate":    ws.CloseError{Code: ws.StatusNormalClosure}.Error(),
		"netconn":    ws.CloseError{Code: ws.StatusNormalClosure}.Error(),
	}
	for deadline := time.Now().Add(2 * time.Minute); ; {
		mu.Lock()
		n := 0
		for id := range want {
			if _, ok := closes[id]; ok {
				n++
			}
		}
		got := maps.Clone(closes)
		mu.Unlock()
		if n == len(want) || time.Now().After(deadline) {
			for id, w := range want {
				if got[id] != w {
					t.Errorf("echo connection %s ended with %q, want %q", id, got[id], w)
				}
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatal("timed out")
	}
}

const wasmPage = `<!doctype html>
<title>ws in wasm</title>
<script src="/wasm_exec.js"></script>
<script>
const go = new Go();
WebAssembly.instantiateStreaming(fetch("/test.wasm"), go.importObject)
	.then(r => go.run(r.instance))
	.catch(e => fetch("/result", {method: "POST", body: "FAIL loading the program: " + e + "\n"}));
</script>
`

// jsTiming times round trips and an 8 MiB echo with the browser's
// WebSocket from JavaScript, in milliseconds.
const jsTiming = `(async () => {
	const ws = new WebSocket("ws://" + location.host + "/echo?id=js");
	ws.binaryType = "arraybuffer";
	await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
	const next = () => new Promise(ok => { ws.onmessage = e => ok(e.data); });
	const small = new Uint8Array(16);
	let start = performance.now();
	for (let i = 0; i < 200; i++) { const p = next(); ws.send(small); await p; }
	const round = (performance.now() - start) / 200;
	start = performance.now();
	const p = next(); ws.send(new Uint8Array(8 << 20)); await p;
	const large = performance.now() - start;
	ws.close(1000);
	return {round, large};
})()`
