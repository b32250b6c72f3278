package ws

import (
	"context"
	"sync"
)

// handlerCtx is the context of a Server handler: the request context's
// values, without its cancellation, and a cancellation of its own that the
// Server triggers when the handler returns or Shutdown ends the connections.
//
// It replaces context.WithCancel(context.WithoutCancel(r.Context())) plus a
// context.AfterFunc on the Server's context, because an idle connection
// holds its handler's context for its whole life, and the usual way costs
// about a kilobyte per connection: the cancelCtx, its done channel, an entry
// in the Server context's children, and for each of the Conn's read and
// write watches (ctxDeadline) an afterFuncCtx, two closures and a children
// map. Here the Server cancels each handler's context itself (it knows them
// all), the done channel is made only if someone asks for it, and the watches
// of the handler's own Conn are built in: cancel expires them directly.
//
// Contexts derived from it (context.WithCancel, WithTimeout, AfterFunc)
// register through its AfterFunc method, so they need no goroutine.
type handlerCtx struct {
	context.Context // the request's context without its cancellation: the values

	c *Conn // the connection whose read and write watches cancel expires

	mu    sync.Mutex
	done  chan struct{} // made by the first Done; closed by cancel
	err   error         // context.Canceled once cancelled
	funcs map[*func()]struct{}
}

// closedChan is a closed channel: the Done of a handlerCtx cancelled before
// anyone asked, and the doneChan of a Conn closed before anyone waited.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

func newHandlerCtx(parent context.Context, c *Conn) *handlerCtx {
	return &handlerCtx{Context: context.WithoutCancel(parent), c: c}
}

// Done returns a channel closed when the context is cancelled.
func (x *handlerCtx) Done() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.done == nil {
		if x.err != nil {
			return closedChan
		}
		x.done = make(chan struct{})
	}
	return x.done
}

// Err returns context.Canceled once the context is cancelled, else nil.
func (x *handlerCtx) Err() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.err
}

// String names the context the way the context package names its own.
func (x *handlerCtx) String() string {
	return "ws.handlerCtx"
}

// AfterFunc arranges to call f in its own goroutine once the context is
// cancelled, like context.AfterFunc; the context package uses it for the
// contexts derived from this one, which then need no goroutine to watch it.
func (x *handlerCtx) AfterFunc(f func()) (stop func() bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.err != nil {
		go f()
		return func() bool { return false }
	}
	key := &f // unique per registration
	if x.funcs == nil {
		x.funcs = make(map[*func()]struct{})
	}
	x.funcs[key] = struct{}{}
	return func() bool {
		x.mu.Lock()
		defer x.mu.Unlock()
		_, ok := x.funcs[key]
		delete(x.funcs, key)
		return ok
	}
}

// cancel ends the context: Done is closed, the functions registered with
// AfterFunc start, and a read or write of the Conn blocked with this context
// is interrupted (it returns context.Canceled; the Conn stays usable, as
// with any context). Later calls do nothing.
func (x *handlerCtx) cancel() {
	x.mu.Lock()
	if x.err != nil {
		x.mu.Unlock()
		return
	}
	x.err = context.Canceled
	if x.done != nil {
		close(x.done)
	}
	funcs := x.funcs
	x.funcs = nil
	x.mu.Unlock()
	for f := range funcs {
		go (*f)()
	}
	// After err is set: a watch armed from now on sees it (ctxDeadline.arm).
	x.c.rdl.expire(x)
	x.c.wdl.expire(x)
}
