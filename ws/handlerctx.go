package ws

import "context"

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
//
// A handlerCtx is its connection's member of the Server's broadcast (the
// context's fields are member's first four): one allocation for both.
type handlerCtx = member

// closedChan is a closed channel: the Done of a handlerCtx cancelled before
// anyone asked, and the doneChan of a Conn closed before anyone waited.
var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

// newHandlerCtx returns the handler's context for c, a member not yet
// joined, with the values of parent.
func newHandlerCtx(parent context.Context, c *Conn) *handlerCtx {
	// Serve's Background, without Admit, has no cancellation to remove.
	// (Not parent.Done() == nil: a cancelCtx makes its channel when
	// asked, and an idle connection would keep it.)
	//
	// Through ServeHTTP, parent is the request's context, and its values
	// (ConnContext's, a middleware's) can only be reached through its
	// parents: keeping them keeps net/http's chain under them, the
	// request's and the connection's cancelCtx, the latter's channel and
	// the local address's valueCtx, about 330 B of an idle connection's
	// 1.8 KB of heap (a heap profile of 10,000 idle connections against
	// Serve's). Nothing else of net/http stays: Hijack's bufio buffers and
	// the request are garbage once ServeHTTP returns.
	if parent != context.Background() {
		parent = context.WithoutCancel(parent)
	}
	return &handlerCtx{Context: parent, c: c}
}

// Done returns a channel closed when the context is cancelled.
func (x *handlerCtx) Done() <-chan struct{} {
	x.hmu.Lock()
	defer x.hmu.Unlock()
	if x.done == nil {
		if x.cancelled.Load() {
			return closedChan
		}
		x.done = make(chan struct{})
	}
	return x.done
}

// Err returns context.Canceled once the context is cancelled, else nil.
func (x *handlerCtx) Err() error {
	if x.cancelled.Load() {
		return context.Canceled
	}
	return nil
}

// String names the context the way the context package names its own.
func (x *handlerCtx) String() string {
	return "ws.handlerCtx"
}

// AfterFunc arranges to call f in its own goroutine once the context is
// cancelled, like context.AfterFunc; the context package uses it for the
// contexts derived from this one, which then need no goroutine to watch it.
func (x *handlerCtx) AfterFunc(f func()) (stop func() bool) {
	x.hmu.Lock()
	defer x.hmu.Unlock()
	if x.cancelled.Load() {
		go f()
		return func() bool { return false }
	}
	key := &f // unique per registration
	if x.funcs == nil {
		x.funcs = make(map[*func()]struct{})
	}
	x.funcs[key] = struct{}{}
	return func() bool {
		x.hmu.Lock()
		defer x.hmu.Unlock()
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
	x.hmu.Lock()
	if x.cancelled.Load() {
		x.hmu.Unlock()
		return
	}
	x.cancelled.Store(true)
	if x.done != nil {
		close(x.done)
	}
	funcs := x.funcs
	x.funcs = nil
	x.hmu.Unlock()
	for f := range funcs {
		go (*f)()
	}
	// After cancelled is set: a watch armed from now on sees it (ctxDeadline.arm).
	x.c.rdl.expire(x.c, x)
	x.c.wdl.expire(x.c, x)
}
