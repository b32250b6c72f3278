package ws

import (
	"context"
	"errors"
	"net/http"
)

// ErrUnsupported is the error, matched with errors.Is, of what a
// connection dialed in a browser (GOOS=js) cannot do because the browser's
// WebSocket does not let a program do it: DialOptions that set headers,
// TLS, the dialer, the proxy, compression or ping handling; Ping; a close
// code other than 1000 or 3000–4999; a message streamed through Writer past
// 32 MiB. It also matches errors.ErrUnsupported. See the package doc,
// "In the browser".
var ErrUnsupported = errUnsupported{}

type errUnsupported struct{}

func (errUnsupported) Error() string { return "ws: not possible with the browser's WebSocket" }

func (errUnsupported) Is(target error) bool { return target == errors.ErrUnsupported }

// dialBrowser is Dial where the program runs in a browser (GOOS=js; it is
// set by dial_js.go), and nil elsewhere.
var dialBrowser func(ctx context.Context, urlStr string, opts *DialOptions) (*Conn, *http.Response, error)
