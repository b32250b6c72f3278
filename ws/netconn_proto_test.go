package ws

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/rpc"
	"strings"
	"sync"
	"testing"
)

// Real byte protocols over NetConn, both ways: an HTTP server behind the
// accepting side, and an RPC server behind the dialing side.

// netConnListener is a net.Listener whose connections are the NetConns of
// the WebSockets a ws endpoint accepts.
type netConnListener struct {
	conns     chan net.Conn
	closed    chan struct{}
	closeOnce sync.Once
	addr      net.Addr
}

func (l *netConnListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *netConnListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *netConnListener) Addr() net.Addr { return l.addr }

// An http.Server serves requests that arrive over WebSockets, through a
// listener of NetConns; the client's http.Transport dials WebSockets. Keep-
// alive, request and response bodies of a megabyte, and the server's own
// use of deadlines (timeouts, and the background read it aborts with a past
// deadline) all run on NetConn.
func TestNetConnHTTP(t *testing.T) {
	ln := &netConnListener{conns: make(chan net.Conn), closed: make(chan struct{})}
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, nil)
		if err != nil {
			return
		}
		nc := NetConn(context.Background(), c, Binary)
		select {
		case ln.conns <- nc:
		case <-ln.closed:
			nc.Close()
		}
	}))
	defer ws.Close()
	ln.addr = ws.Listener.Addr()

	mux := http.NewServeMux()
	mux.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello %s over %s", r.URL.Query().Get("name"), r.Proto)
	})
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(w, r.Body)
	})
	hs := &http.Server{Handler: mux, ReadTimeout: testTimeout, WriteTimeout: testTimeout, IdleTimeout: testTimeout}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	defer func() {
		hs.Close()
		if err := <-served; err != http.ErrServerClosed {
			t.Errorf("Serve: %v", err)
		}
	}()

	var dials sync.Mutex
	ndials := 0
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		dials.Lock()
		ndials++
		dials.Unlock()
		c, _, err := Dial(ctx, "ws"+strings.TrimPrefix(ws.URL, "http"), nil)
		if err != nil {
			return nil, err
		}
		return NetConn(context.Background(), c, Binary), nil
	}}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx := testCtx(t)

	for i := range 3 {
		req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://wesos.test/hello?name=%d", i), nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("hello %d over HTTP/1.1", i); err != nil || string(body) != want {
			t.Fatalf("GET: %q, %v; want %q", body, err, want)
		}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	req, _ := http.NewRequestWithContext(ctx, "POST", "http://wesos.test/echo", bytes.NewReader(big))
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(body, big) {
		t.Fatalf("POST /echo: %d bytes, %v; want the %d sent back", len(body), err, len(big))
	}
	dials.Lock()
	defer dials.Unlock()
	if ndials != 1 {
		t.Errorf("%d WebSockets dialed for 4 requests, want 1 (keep-alive)", ndials)
	}
}

// Arith is the RPC service of TestNetConnRPC.
type Arith struct{}

// Mul multiplies.
func (Arith) Mul(args [2]int, reply *int) error { *reply = args[0] * args[1]; return nil }

// The dialing side serves net/rpc over its NetConn, and the accepting side
// calls it, concurrently.
func TestNetConnRPC(t *testing.T) {
	client, server := wsConnPair(t, nil)
	ctx := testCtx(t)
	rs := rpc.NewServer()
	if err := rs.Register(Arith{}); err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		rs.ServeConn(NetConn(ctx, client, Binary)) // closes it when the caller goes
	}()
	rc := rpc.NewClient(NetConn(ctx, server, Binary))
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			var got int
			if err := rc.Call("Arith.Mul", [2]int{i, 7}, &got); err != nil || got != 7*i {
				t.Errorf("Mul(%d, 7) = %d, %v", i, got, err)
			}
		})
	}
	wg.Wait()
	if err := rc.Close(); err != nil {
		t.Error(err)
	}
	<-served
}
