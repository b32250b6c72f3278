package ws_test

import (
	"bufio"
	"context"
	"encoding/json"
	"expvar"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// echoServer starts an echo server for the examples; stop ends it.
func echoServer() (url string, stop func()) {
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, c, c) // every message of c back to c, as it streams
	}, nil)
	hs := httptest.NewServer(srv)
	return hs.URL, hs.Close
}

// A message is a stream both ways: every Write of a Writer leaves as a
// fragment, and a Reader reads the frames as they arrive.
func ExampleConn_Writer() {
	ctx := context.Background()
	url, stop := echoServer()
	defer stop()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ws.StatusNormalClosure, "")

	w, err := c.Writer(ctx, ws.Text) // the outgoing stream
	if err != nil {
		fmt.Println(err)
		return
	}
	io.WriteString(w, "streamed ")    // leaves at once, as a fragment
	io.WriteString(w, "in fragments") // another one
	w.Close()                         // the final frame

	typ, r, err := c.Reader(ctx) // the incoming stream
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Print(typ, ": ")
	io.Copy(os.Stdout, r) // the payload, frame by frame as it arrives
	// Output: text: streamed in fragments
}

// A Conn is a Sink and a Source of Messages, whose Body is an io.Reader:
// Send streams any reader out, and Next hands over a body to read.
func ExampleConn_Send() {
	ctx := context.Background()
	url, stop := echoServer()
	defer stop()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ws.StatusNormalClosure, "")

	body := strings.NewReader(strings.Repeat("wesos ", 10000)) // a file, a pipe, any io.Reader
	if err := c.Send(ctx, ws.Message{Type: ws.Text, Body: body}); err != nil {
		fmt.Println(err)
		return
	}
	m, err := c.Next(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := io.Copy(io.Discard, m.Body) // valid until the next call to Next
	fmt.Println(m.Type, n, err)
	// Output: text 60000 <nil>
}

// A Server is a Sink too: Send broadcasts a message to every open connection.
func ExampleServer_Send() {
	ctx := context.Background()
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		for { // read (and drop) what the client sends until it closes
			if _, err := c.Next(ctx); err != nil {
				return err // io.EOF once it closes: the Server answers 1000
			}
		}
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	var clients []*ws.Conn
	for range 2 {
		c, _, err := ws.Dial(ctx, hs.URL, nil)
		if err != nil {
			fmt.Println(err)
			return
		}
		defer c.Close(ws.StatusNormalClosure, "")
		clients = append(clients, c)
	}
	// The handlers start just after the handshake: wait for them (an
	// example cannot fail a test, so the bound only ends a hang).
	for deadline := time.Now().Add(2 * time.Minute); srv.Len() < 2 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}

	srv.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader("news for everyone")})
	for _, c := range clients {
		_, p, err := c.Read(ctx)
		fmt.Println(string(p), err)
	}
	// Output:
	// news for everyone <nil>
	// news for everyone <nil>
}

// A Group is a room: a Sink of messages to its members, each frame encoded
// once for all of them. Here the first message of a client names its room,
// and what a member says goes to the others in its room only.
func ExampleGroup() {
	ctx := context.Background()
	rooms := map[string]*ws.Group{"go": ws.NewGroup(nil), "rust": ws.NewGroup(nil)}
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		_, name, err := c.Read(ctx) // the first message names the room
		if err != nil {
			return err
		}
		room, ok := rooms[string(name)]
		if !ok {
			return ws.CloseError{Code: 4004, Reason: "no such room"}
		}
		room.Add(c)                               // c leaves the room when it closes
		return wesos.Pipe(ctx, room.Except(c), c) // what c says goes to the others in the room
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	join := func(room string) *ws.Conn {
		c, _, err := ws.Dial(ctx, hs.URL, nil)
		if err != nil {
			panic(err)
		}
		c.Write(ctx, ws.Text, []byte(room))
		return c
	}
	alice, bob, carol := join("go"), join("go"), join("rust")
	for _, c := range []*ws.Conn{alice, bob, carol} {
		defer c.Close(ws.StatusNormalClosure, "")
	}
	// The handlers add them just after the handshake: wait for that (the
	// bound only ends a hang).
	for deadline := time.Now().Add(2 * time.Minute); (rooms["go"].Len() < 2 || rooms["rust"].Len() < 1) && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}

	alice.Write(ctx, ws.Text, []byte("hi, gophers"))
	rooms["rust"].Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader("news for the rust room")})
	_, p, _ := bob.Read(ctx)
	fmt.Println("bob:", string(p))
	_, p, _ = carol.Read(ctx) // not alice's message: it went to the go room
	fmt.Println("carol:", string(p))
	// Output:
	// bob: hi, gophers
	// carol: news for the rust room
}

// NetConn makes a WebSocket a net.Conn, for protocols that want a byte
// stream: here a line protocol, served and spoken over one.
func ExampleNetConn() {
	ctx := context.Background()
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		nc := ws.NetConn(ctx, c, ws.Binary)
		defer nc.Close()
		_, err := io.Copy(nc, nc) // a byte-stream echo server
		return err
	}, nil)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	c, _, err := ws.Dial(ctx, hs.URL, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	nc := ws.NetConn(ctx, c, ws.Binary) // Read: one byte stream; Write: one message each
	defer nc.Close()                    // a close handshake with 1000
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(nc, "hello, ")
	fmt.Fprintf(nc, "net.Conn\n")
	line, err := bufio.NewReader(nc).ReadString('\n')
	fmt.Print(line, err)
	// Output:
	// hello, net.Conn
	// <nil>
}

type userKey struct{}

// A request can be refused before the upgrade (here 401 without a user
// name), and the handler sees what Admit kept of the request: a name, not
// the request, which an idle connection would keep alive.
func ExampleAcceptOptions_admit() {
	ctx := context.Background()
	opts := &ws.AcceptOptions{
		Admit: func(w http.ResponseWriter, r *http.Request) (context.Context, error) {
			user := r.URL.Query().Get("user")
			if user == "" {
				return nil, ws.Refuse(http.StatusUnauthorized, "who are you?")
			}
			return context.WithValue(r.Context(), userKey{}, user), nil // what the handler will know
		},
	}
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		user := ctx.Value(userKey{}).(string)
		return c.Write(ctx, ws.Text, []byte("hello, "+user))
	}, opts)
	hs := httptest.NewServer(srv)
	defer hs.Close()

	if _, resp, err := ws.Dial(ctx, hs.URL, nil); err != nil {
		fmt.Println(resp.Status)
	}
	c, _, err := ws.Dial(ctx, hs.URL+"?user=ann", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.CloseNow()
	_, msg, err := c.Read(ctx)
	fmt.Println(string(msg), err)
	// Output:
	// 401 Unauthorized
	// hello, ann <nil>
}

// A Server's Stats are plain numbers to publish where operators look: here
// the expvar variable "websocket", which expvar serves as JSON at
// /debug/vars, read afresh at every request.
func ExampleServer_Stats() {
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, nil)
	expvar.Publish("websocket", expvar.Func(func() any { return srv.Stats() }))

	mux := http.NewServeMux()
	mux.Handle("/ws", srv)
	mux.Handle("/debug/vars", expvar.Handler())
	hs := httptest.NewServer(mux)
	defer hs.Close()
	defer srv.Shutdown(context.Background())

	// A client says hello and reads the echo.
	ctx := context.Background()
	c, _, err := ws.Dial(ctx, hs.URL+"/ws", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ws.StatusNormalClosure, "")
	c.Write(ctx, ws.Text, []byte("hello"))
	c.Read(ctx)

	// What a monitoring system scrapes.
	resp, err := http.Get(hs.URL + "/debug/vars")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	var vars struct {
		Websocket ws.Stats `json:"websocket"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&vars); err != nil {
		fmt.Println(err)
		return
	}
	st := vars.Websocket
	fmt.Printf("open %d, accepted %d, refused %d; in: %d messages, %d bytes\n",
		st.Open, st.Accepted, st.Refused.Total(), st.MessagesIn, st.BytesIn)
	// Output: open 1, accepted 1, refused 0; in: 1 messages, 5 bytes
}

// A port that carries nothing but WebSockets, served without net/http:
// Server.Serve on a listener (tls.NewListener(ln, cfg) for TLS), until
// Shutdown.
func ExampleServer_Serve() {
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error { return wesos.Pipe(ctx, c, c) }, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	ctx := context.Background()
	c, _, err := ws.Dial(ctx, "ws://"+ln.Addr().String(), nil)
	if err != nil {
		panic(err)
	}
	c.Write(ctx, ws.Text, []byte("hello"))
	_, msg, _ := c.Read(ctx)
	fmt.Println(string(msg))
	c.Close(ws.StatusNormalClosure, "")

	srv.Shutdown(ctx) // closes the listener (and 1001 to every connection still open)
	fmt.Println(<-served)
	// Output:
	// hello
	// ws: server closed
}
