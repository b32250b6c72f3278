package ws_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// The same client runs natively and, compiled with GOOS=js GOARCH=wasm, in
// a web page, where Dial opens the browser's WebSocket. What the browser
// cannot do (here: keepalive pings) fails with ws.ErrUnsupported, so
// portable code leaves it out there.
func ExampleDial_browser() {
	ctx := context.Background()
	hs := httptest.NewServer(ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, c, c)
	}, nil))
	defer hs.Close()
	url := hs.URL // in a page: "ws://" + js.Global().Get("location").Get("host").String() + "/echo"

	opts := &ws.DialOptions{KeepAlive: 30 * time.Second}
	if runtime.GOOS == "js" {
		opts.KeepAlive = 0 // the browser sends no pings: Dial would fail with ws.ErrUnsupported
	}
	c, _, err := ws.Dial(ctx, url, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close(ws.StatusNormalClosure, "")
	c.Write(ctx, ws.Text, []byte("hello from anywhere"))
	typ, p, err := c.Read(ctx)
	fmt.Println(typ, string(p), err)
	// Output: text hello from anywhere <nil>
}
