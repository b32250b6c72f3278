package ws

// The browser's WebSocket object, through syscall/js, as a browserWS
// (browsersock.go).

import (
	"context"
	"fmt"
	"net/http"
	"syscall/js"
)

func init() {
	dialBrowser = func(ctx context.Context, urlStr string, opts *DialOptions) (*Conn, *http.Response, error) {
		return dialWith(ctx, urlStr, opts, openJS)
	}
}

// jsWebSocket is a browser's WebSocket object and the functions that
// deliver its events.
type jsWebSocket struct {
	ws    js.Value
	funcs []js.Func
}

// openJS creates the browser's WebSocket for url, binary messages
// arriving as ArrayBuffers, and sends its events to s.
func openJS(s *browserSock, url string, protocols []string) (browserWS, error) {
	ctor := js.Global().Get("WebSocket")
	if ctor.Type() != js.TypeFunction {
		return nil, fmt.Errorf("%w: this JavaScript environment has no WebSocket", ErrUnsupported)
	}
	protos := make([]any, len(protocols))
	for i, p := range protocols {
		protos[i] = p
	}
	w := &jsWebSocket{}
	if err := jsTry(func() { w.ws = ctor.New(url, protos) }); err != nil {
		return nil, err // a bad URL or protocol name
	}
	w.ws.Set("binaryType", "arraybuffer")
	w.on("open", func(js.Value) { s.opened() })
	w.on("message", func(ev js.Value) {
		var e browserEvent
		if data := ev.Get("data"); data.Type() == js.TypeString {
			e.isText, e.text = true, data.String()
			e.size = int64(len(e.text))
		} else {
			b := jsBytes{js.Global().Get("Uint8Array").New(data)}
			e.data, e.size = b, int64(b.len())
		}
		s.received(e)
	})
	w.on("close", func(ev js.Value) {
		s.peerClosed(StatusCode(ev.Get("code").Int()), ev.Get("reason").String())
	})
	return w, nil
}

// on sets the handler of the WebSocket's event name. The handler must not
// block: it runs in JavaScript's event loop.
func (w *jsWebSocket) on(name string, f func(event js.Value)) {
	fn := js.FuncOf(func(_ js.Value, args []js.Value) any {
		f(args[0])
		return nil
	})
	w.funcs = append(w.funcs, fn)
	w.ws.Set("on"+name, fn)
}

func (w *jsWebSocket) readyState() int       { return w.ws.Get("readyState").Int() }
func (w *jsWebSocket) bufferedAmount() int64 { return int64(w.ws.Get("bufferedAmount").Float()) }
func (w *jsWebSocket) protocol() string      { return w.ws.Get("protocol").String() }
func (w *jsWebSocket) extensions() string    { return w.ws.Get("extensions").String() }

func (w *jsWebSocket) send(text bool, p []byte) error {
	var data any
	if text {
		data = string(p) // text that is not UTF-8 is sent with U+FFFD in its place
	} else {
		a := js.Global().Get("Uint8Array").New(len(p))
		js.CopyBytesToJS(a, p)
		data = a
	}
	return jsTry(func() { w.ws.Call("send", data) })
}

func (w *jsWebSocket) close(code StatusCode, reason string) error {
	switch {
	case code == 0:
		return jsTry(func() { w.ws.Call("close") })
	case reason == "":
		return jsTry(func() { w.ws.Call("close", int(code)) })
	}
	return jsTry(func() { w.ws.Call("close", int(code), reason) })
}

// release detaches the event handlers, so the browser calls none of the
// functions, and frees them.
func (w *jsWebSocket) release() {
	for _, name := range []string{"onopen", "onmessage", "onclose"} {
		w.ws.Set(name, js.Null())
	}
	for _, f := range w.funcs {
		f.Release()
	}
	w.funcs = nil
}

// jsBytes is a received binary message: a Uint8Array over its ArrayBuffer.
type jsBytes struct{ a js.Value }

func (b jsBytes) len() int { return b.a.Length() }

func (b jsBytes) copyTo(p []byte, off int) int {
	src := b.a
	if off > 0 {
		src = src.Call("subarray", off)
	}
	return js.CopyBytesToGo(p, src)
}

// jsTry runs f and returns the JavaScript exception it threw, if any.
func jsTry(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			jerr, ok := r.(js.Error)
			if !ok {
				panic(r)
			}
			err = fmt.Errorf("ws: browser: %w", jerr)
		}
	}()
	f()
	return nil
}
