package ws

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wesos/wesos"
)

// DefaultBroadcastQueue is how many bytes of a Group's messages a member may
// fall behind before Send waits for it, when GroupOptions leave Queue at
// zero.
const DefaultBroadcastQueue = 1 << 20

// DefaultSlowTimeout is how long a Group's Send waits for members that have
// fallen behind before it drops them, when GroupOptions leave SlowTimeout at
// zero.
const DefaultSlowTimeout = time.Second

// DefaultStallTimeout is how long a Group's Send waits for the next part of a
// message it streams from a connection, when GroupOptions leave StallTimeout
// at zero. A part is at most 64 KiB (less when the sender's frame is
// smaller), so a sender must keep up about 6.5 KB/s.
const DefaultStallTimeout = 10 * time.Second

// broadcastChunk is the most payload one broadcast frame carries.
const broadcastChunk = 64 << 10

// GroupOptions configures a Group, and the broadcast of a Server (through
// AcceptOptions.Broadcast). The zero value (or nil) is the default.
type GroupOptions struct {
	// Queue is how many bytes of messages a member may fall behind before
	// Send waits for it. Zero means DefaultBroadcastQueue.
	Queue int64

	// Policy is what happens to a member more than Queue bytes behind:
	// DropMember (the default) or DropMessages.
	Policy SlowPolicy

	// SlowTimeout is how long Send waits for the members that are more
	// than Queue bytes behind. Every member still behind when it runs out
	// is dropped at once: closed with 1008 (StatusPolicyViolation, reason
	// "too slow"), which takes it out of the Group. It is one wait per
	// Send however many members lag, so a few stalled members cost the
	// others one SlowTimeout, not one each. Zero means DefaultSlowTimeout.
	SlowTimeout time.Duration

	// StallTimeout is how long Send waits for the next part of a message
	// it streams from a connection (the Body of a message received by
	// Next). Every member gets a message whole and in order, so a sender
	// that stops mid-message holds up every message after it; when the
	// wait runs out, the message is ended for the members (cut short) and
	// the sender's connection is failed with 1008. Zero means
	// DefaultStallTimeout; negative, no limit.
	StallTimeout time.Duration

	// ErrorLog receives what no caller sees: members dropped as too slow,
	// senders failed as stalled. Nil means slog.Default() (for a Server,
	// its AcceptOptions.ErrorLog first).
	ErrorLog *slog.Logger
}

// SlowPolicy says what a Group does with a member that has fallen more than
// GroupOptions.Queue bytes behind.
type SlowPolicy int

const (
	// DropMember: Send waits for the members behind, up to SlowTimeout for
	// the whole call, then closes those still behind with 1008 "too slow".
	// Every member that stays gets every message.
	DropMember SlowPolicy = iota

	// DropMessages: a member already behind when a message starts misses
	// that message, whole, and stays a member; Send does not wait for it
	// at the end of a message. A message is never cut for one member, so
	// while a message of several parts streams, a member that falls behind
	// is waited for and dropped as with DropMember. For feeds where the
	// latest value matters more than every value (prices, positions).
	DropMessages
)

// Group is a set of connections that is a wesos.Sink[Message]: a room, a
// topic, everyone but the sender. Send streams each message to every member:
// each frame is encoded once and the same bytes are written to every member
// (compressed once, too, for the members that negotiated permessage-deflate
// without context takeover on the server side), so a message of any size
// passes in bounded memory. Members get messages in the order Send accepted
// them, each message whole; each member has its own queue, so their pace
// does not stall one another, and one that falls behind is dropped (see
// GroupOptions).
//
// A Conn may be in any number of Groups. A Conn that closes leaves every
// Group by itself. All methods are safe for concurrent use.
//
//	room := ws.NewGroup(nil)
//	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
//		room.Add(c)
//		return wesos.Pipe(ctx, room.Except(c), c) // what c says goes to the others
//	}, nil)
type Group struct {
	fan
	members map[*Conn]*member // guarded by fan.mu
	stats   counters
}

// NewGroup returns an empty Group. opts may be nil.
func NewGroup(opts *GroupOptions) *Group {
	g := &Group{members: make(map[*Conn]*member)}
	g.fan.init(opts, nil, context.Background(), &g.stats)
	return g
}

// Add makes c a member: it gets the messages Send accepts from now on.
// Adding a member again does nothing; adding a closed Conn does nothing.
func (g *Group) Add(c *Conn) {
	g.mu.Lock()
	if _, ok := g.members[c]; ok {
		g.mu.Unlock()
		return
	}
	joined := c.joinedGroup(g)
	if joined {
		g.members[c] = g.join(&member{c: c})
		g.stats.accepted.Add(1)
	}
	g.mu.Unlock()
	if joined && c.fanClosed() {
		// c closed while it joined, perhaps after CloseNow looked for
		// its Groups.
		c.leaveGroups()
	}
}

// Remove takes c out of the Group: it gets no message that Send accepts
// from now on. A message it is being sent is still finished, and the
// messages Send accepted before still reach it, in order. Removing a Conn
// that is not a member does nothing.
func (g *Group) Remove(c *Conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	m, ok := g.members[c]
	if !ok {
		return
	}
	delete(g.members, c)
	g.leave(m)
	c.leftGroup(g)
}

// Len returns the number of members.
func (g *Group) Len() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.members)
}

// Send sends m to every member; it makes Group a wesos.Sink[Message]. The
// body streams: each read of m.Body becomes one frame, written to every
// member as it arrives. A Body received by Next (a relayed message) is read
// a frame at a time, so a message that arrived as one frame leaves as one.
// Concurrent Sends are safe; members get messages in the order Send accepted
// them, which is when the first part of the body has been read. With no
// members, Send returns nil at once without reading the body.
//
// A member that falls behind or fails is dropped (see GroupOptions); that is
// not an error of Send, which fails only when ctx ends or m.Body fails. If
// the body fails after its first part went out, the message is ended with an
// empty final frame and the error is returned; a text message is cut at a
// rune boundary, so members still get valid UTF-8.
func (g *Group) Send(ctx context.Context, m Message) error {
	return g.send(ctx, m, nil)
}

// Except returns the Group without c, as a Sink: what it sends goes to
// every member but c. It is how a member's messages reach the others:
//
//	wesos.Pipe(ctx, room.Except(c), c)
func (g *Group) Except(c *Conn) wesos.Sink[Message] {
	return except{g, c}
}

// except is the Sink Group.Except returns.
type except struct {
	g *Group
	c *Conn
}

// Send sends m to every member of the Group but one.
func (e except) Send(ctx context.Context, m Message) error {
	return e.g.send(ctx, m, e.c)
}

// fan is the machinery of a Group and of a Server's broadcast: a list of
// members, each with a queue and a goroutine that writes it while it has
// work, and send, which encodes each frame of a message once and hands it
// to all of them.
type fan struct {
	queue  int64
	policy SlowPolicy
	slow   time.Duration
	stall  time.Duration // 0: no limit
	log    *slog.Logger
	ctx    context.Context // of the members' writes
	stats  *counters       // the Group's or the Server's

	mu   sync.Mutex
	list []*member // the members, as a snapshot: its elements never change in place
	gone int       // members in list that have left

	order  sync.Mutex     // orders the messages: one enqueues at a time
	drains sync.WaitGroup // goroutines writing to members, or closing them
}

func (f *fan) init(opts *GroupOptions, log *slog.Logger, ctx context.Context, stats *counters) {
	f.stats = stats
	var o GroupOptions
	if opts != nil {
		o = *opts
	}
	f.queue = o.Queue
	if f.queue <= 0 {
		f.queue = DefaultBroadcastQueue
	}
	f.slow = o.SlowTimeout
	if f.slow <= 0 {
		f.slow = DefaultSlowTimeout
	}
	switch f.stall = o.StallTimeout; {
	case f.stall == 0:
		f.stall = DefaultStallTimeout
	case f.stall < 0:
		f.stall = 0
	}
	f.policy = o.Policy
	f.log = o.ErrorLog
	if f.log == nil {
		f.log = log
	}
	if f.log == nil {
		f.log = slog.Default()
	}
	f.ctx = ctx
}

// member is a connection's place in a fan: its queue of messages.
type member struct {
	// A Server's member is also the context of its connection's handler
	// (handlerCtx, handlerctx.go): one allocation for both, which an idle
	// connection holds for its whole life. A Group's member leaves these
	// four fields zero.
	context.Context                      // the request's values, without its cancellation
	hmu             sync.Mutex           // guards done and funcs, and orders cancelled's setting with them
	done            chan struct{}        // made by the first Done; closed by cancel
	funcs           map[*func()]struct{} // AfterFunc's

	c      *Conn
	zpools *flatePools // the implementation it negotiated permessage-deflate with
	zthr   int         // and its compression threshold

	pending atomic.Int64 // bytes queued for it and not yet written
	// space is signalled when pending drops, once a Send has waited for
	// this member (backpressure makes it: most members keep up).
	space atomic.Pointer[chan struct{}]

	mu    sync.Mutex
	queue []*bframe // first frames of the messages waiting for it

	gone    atomic.Bool // left: no more messages
	dropped atomic.Bool // dropped or failed: its frames are not written
	// cancelled: the handler's context is cancelled. Set under hmu;
	// atomic because Err, which every read and Send of the handler asks,
	// reads it without taking hmu.
	cancelled atomic.Bool
	// The small fields last, packed: the member fits a 128-byte size class.
	zlevel  int8 // the compression level of its compressed frames
	z       bool // takes compressed frames made at zlevel
	running bool // a drain goroutine serves the queue (mu)
}

// join adds a member for c to the list. The caller holds f.mu.
func (f *fan) join(m *member) *member {
	var level int
	level, m.zthr, m.zpools, m.z = m.c.fanDeflate()
	m.zlevel = int8(level) // a compress/flate level: -2 to 9
	// Appended in place when there is room: a snapshot taken before sees
	// only its own length, whose elements do not change (a compaction
	// copies the list). Copying on every append made a connection's
	// arrival cost a copy of the whole list, garbage that grew with the
	// square of the members.
	f.list = append(f.list, m)
	return m
}

// leave marks m as gone. It stays in the list until the gone members are
// half of it; then the others are copied to a new list (snapshots keep the
// old one). Copying at every departure made n departures cost n². The
// caller holds f.mu.
func (f *fan) leave(m *member) {
	if m.gone.Swap(true) {
		return
	}
	if f.gone++; f.gone > len(f.list)/2 {
		live := make([]*member, 0, len(f.list)-f.gone)
		for _, q := range f.list {
			if !q.gone.Load() {
				live = append(live, q)
			}
		}
		f.list, f.gone = live, 0
	}
}

// bframe is one frame of a message, encoded once and shared by every
// member. Its fields are set before ready is closed and never change after.
type bframe struct {
	ready chan struct{} // closed once published
	b     []byte        // the frame: header and payload
	z     []byte        // the same compressed, or nil
	zl    int           // the compression level of z
	hlen  int           // the header's length in b
	op    opcode
	fin   bool    // the last frame of the message
	zall  bool    // z suits every member that takes compressed frames, whatever its level
	next  *bframe // the following frame, if !fin
	buf   []byte  // storage of b
}

// smallFrame is a message of one small frame, allocated with its bytes: one
// allocation per message. (Pooling frames instead needed a count of the
// members yet to write each one, and that counter, written by every
// member's goroutine, cost a 1,000-member broadcast a third of its speed.)
type smallFrame struct {
	bframe
	arr [smallFrameSize]byte
}

// smallFrameSize is the most bytes a smallFrame holds: a frame of up to
// 240 bytes of payload and header, which keeps a smallFrame within a
// 416-byte allocation.
const smallFrameSize = 240

// frameFor returns the bytes of the frame that m takes.
func (f *bframe) frameFor(m *member) []byte {
	if f.z != nil && m.z && (f.zall || int(m.zlevel) == f.zl) {
		return f.z
	}
	return f.b
}

// complete reports whether f is a whole message, published: a single final
// frame.
func (f *bframe) complete() bool {
	select {
	case <-f.ready:
		return f.fin
	default:
		return false
	}
}

// targetsPool holds the lists of members a message is queued for.
var targetsPool = sync.Pool{New: func() any { return new([]*member) }}

// send sends a message to every member but skip.
func (f *fan) send(ctx context.Context, msg Message, skip *Conn) error {
	op, err := opcodeOf(msg.Type)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	list := f.list // a snapshot: no copy per message
	f.mu.Unlock()
	var enc encoder
	if !enc.init(list, skip) {
		return nil // no members
	}
	defer enc.release()
	body := msg.Body
	if body == nil {
		body = http.NoBody
	}
	bp := getRelayBuf()
	defer putRelayBuf(bp)
	chunk := (*bp)[:broadcastChunk]
	text := op == opText

	var (
		tp      *[]*member // the members the message is queued for
		targets []*member
		node    *bframe // the next frame to fill, once queued
		stall   *time.Timer
		carry   int   // the start of a rune held back from the last frame
		size    int64 // the payload queued
	)
	defer func() {
		if stall != nil {
			stall.Stop()
		}
		if len(targets) > 0 {
			f.stats.broadcasts.Add(1)
			f.stats.broadcastBytes.Add(uint64(size))
		}
		if tp != nil {
			clear(targets)
			*tp = targets[:0]
			targetsPool.Put(tp)
		}
	}()
	// A received compressed message of one frame whose output fits a
	// chunk goes to the members that take compressed frames as it came
	// (encoder.pass), and to the others as the plaintext read into the
	// chunk, which checks it. A longer output streams as usual, from the
	// compressed bytes taken.
	pre, preN, preErr := false, 0, error(nil)
	if mr, ok := body.(*messageReader); ok && enc.wantZ {
		rp, zn, ok, err := mr.takeCompressed(fanReceiver)
		if ok {
			defer putRelayBuf(rp)
			defer mr.dropCompressed() // before the buffer goes back
			if err != nil {
				return err // nothing went out
			}
			pre = true
			preN, preErr = readChunk(body, chunk)
			if preErr == io.EOF {
				enc.pass = (*rp)[maxHeaderSize : maxHeaderSize+zn]
			}
		}
	}
	for {
		if tp != nil && stall == nil {
			// The message is queued and takes more than one read:
			// watch the sender. (The stall timer runs only while a
			// read waits for the sender, not while members are waited
			// for.)
			stall = f.watchStall(body)
		}
		if stall != nil {
			stall.Reset(f.stall)
		}
		var n int
		var rerr error
		if pre {
			n, rerr, pre = preN, preErr, false
		} else {
			n, rerr = readChunk(body, chunk[carry:])
		}
		if stall != nil {
			stall.Stop()
		}
		n += carry
		if rerr == nil && drained(body) {
			rerr = io.EOF // a whole bytes.Reader or the like: one frame
		}
		fin := rerr == io.EOF
		if rerr != nil && !fin {
			if tp == nil {
				return rerr // nothing went out
			}
			fin = true
			n = 0
		}
		if carry = 0; text && !fin {
			// A text frame does not end inside a rune: if the message
			// breaks off (its source fails), members get valid UTF-8,
			// not a 1007 for the source's fault.
			carry = incompleteRune(chunk[:n])
			n -= carry
		}
		if n > 0 || fin {
			size += int64(n)
			if tp == nil {
				first := enc.first(op, fin, chunk[:n])
				tp = targetsPool.Get().(*[]*member)
				targets = f.enqueue(first, skip, (*tp)[:0])
				if len(targets) == 0 {
					return nil
				}
				node = first.next
			} else {
				node = f.publish(targets, node, &enc, op, fin, chunk[:n])
			}
			op = opContinuation
		}
		copy(chunk, chunk[n:n+carry])
		if rerr == io.EOF {
			// The message is complete; the next one waits, if need be,
			// for members to catch up (unless the members behind miss
			// messages instead).
			if f.policy == DropMessages {
				return nil
			}
			return f.backpressure(ctx, targets)
		}
		if rerr != nil {
			return rerr
		}
		if tp == nil {
			continue
		}
		if err := f.backpressure(ctx, targets); err != nil {
			f.publish(targets, node, &enc, op, true, nil)
			return err
		}
	}
}

// drained reports whether r, a reader that knows its length (bytes.Reader,
// strings.Reader, bytes.Buffer), has nothing left, so that the chunk just
// read ends the message instead of an empty final frame after it.
func drained(r io.Reader) bool {
	l, ok := r.(interface{ Len() int })
	return ok && l.Len() == 0
}

// enqueue queues a message, whose first frame is published, for every
// member but skip, appending them to targets, which it returns. Messages
// take their place in the order of enqueue.
func (f *fan) enqueue(first *bframe, skip *Conn, targets []*member) []*member {
	f.order.Lock()
	f.mu.Lock()
	list := f.list
	f.mu.Unlock()
	missed := 0
	for _, m := range list {
		if m.gone.Load() || m.dropped.Load() || (skip != nil && m.c == skip) {
			continue
		}
		if f.policy == DropMessages && m.pending.Load() > f.queue {
			missed++ // it misses this message
			continue
		}
		targets = append(targets, m)
		f.queueFor(m, first)
	}
	f.order.Unlock()
	if missed > 0 {
		f.stats.missed.Add(uint64(missed))
	}
	return targets
}

// queueFor adds a message to m's queue, starting its drain goroutine if
// none runs.
func (f *fan) queueFor(m *member, first *bframe) {
	m.pending.Add(int64(len(first.frameFor(m))))
	m.mu.Lock()
	m.queue = append(m.queue, first)
	if !m.running {
		m.running = true
		f.drains.Add(1)
		startDrain(f, m)
	}
	m.mu.Unlock()
}

// starting hands members to new drain goroutines: a goroutine started as
// `go drainNext()`, with no arguments, costs no allocation, where
// `go f.drain(m)` allocates its closure, once per member and message.
var starting struct {
	mu sync.Mutex
	q  []drainJob
}

// drainJob is a member to drain and its fan (a member does not keep its
// fan: a pointer fewer in every connection's member).
type drainJob struct {
	f *fan
	m *member
}

// startDrain starts a goroutine that drains m, a member of f.
func startDrain(f *fan, m *member) {
	starting.mu.Lock()
	starting.q = append(starting.q, drainJob{f, m})
	starting.mu.Unlock()
	go drainNext()
}

// drainNext drains one of the members startDrain handed over (each call
// of startDrain starts one drainNext, so there is one for it).
func drainNext() {
	starting.mu.Lock()
	last := len(starting.q) - 1
	j := starting.q[last]
	starting.q[last] = drainJob{}
	starting.q = starting.q[:last]
	starting.mu.Unlock()
	j.f.drain(j.m)
}

// publish fills node, a frame after the first, and returns the next one to
// fill.
func (f *fan) publish(targets []*member, node *bframe, enc *encoder, op opcode, fin bool, p []byte) *bframe {
	enc.fill(node, op, fin, p)
	if !fin {
		node.next = &bframe{ready: make(chan struct{})}
	}
	for _, m := range targets {
		m.pending.Add(int64(len(node.frameFor(m))))
	}
	close(node.ready)
	return node.next
}

// watchStall returns a stopped timer that, once armed for a read of body (a
// received message streaming through Send), fails the sender's connection
// with 1008 if the read is not done within the stall timeout; nil if body
// is not such a message or there is no limit. Made only once a message
// takes more than one read: most are done in one.
func (f *fan) watchStall(body io.Reader) *time.Timer {
	c := bodyConn(body)
	if c == nil || f.stall <= 0 {
		return nil
	}
	t := time.AfterFunc(f.stall, func() {
		f.log.Info("ws: message stalled; failing its sender", "remote", c.RemoteAddr(), "after", f.stall)
		f.countDropped(c, true)
		c.fanFail("message stalled")
	})
	t.Stop()
	return t
}

// backpressure waits while members are more than the queue size behind,
// up to one slow timeout for the whole call: the members still behind when
// it runs out are all dropped at once.
func (f *fan) backpressure(ctx context.Context, targets []*member) error {
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for i, m := range targets {
		if !m.lags(f.queue) {
			continue
		}
		if t == nil {
			t = time.NewTimer(f.slow)
		}
		space := m.space.Load()
		if space == nil {
			ch := make(chan struct{}, 1)
			m.space.CompareAndSwap(nil, &ch)
			space = m.space.Load()
		}
		// written, which decreases pending before it loads space, sees
		// space or left a pending that the loop sees.
		for m.lags(f.queue) {
			select {
			case <-*space:
			case <-m.c.fanDone():
				m.dropped.Store(true)
			case <-t.C:
				for _, q := range targets[i:] {
					if q.lags(f.queue) {
						f.drop(q)
					}
				}
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// lags reports whether m is more than queue bytes behind and not dropped.
func (m *member) lags(queue int64) bool {
	return m.pending.Load() > queue && !m.dropped.Load()
}

// drop closes a member that cannot keep up. The close frame goes out after
// the frame being written, if the peer still reads at all.
func (f *fan) drop(m *member) {
	if m.dropped.Swap(true) {
		return
	}
	f.log.Info("ws: dropping a connection that fell behind", "remote", m.c.RemoteAddr())
	f.countDropped(m.c, false)
	f.drains.Add(1)
	go func() {
		defer f.drains.Done()
		m.c.Close(StatusPolicyViolation, "too slow")
	}()
}

// countDropped counts c, dropped as too slow or failed as stalled, in the
// fan's counters and in those of c's Server, if other.
func (f *fan) countDropped(c *Conn, stalled bool) {
	count := func(st *counters) {
		if stalled {
			st.droppedStalled.Add(1)
		} else {
			st.droppedSlow.Add(1)
		}
	}
	count(f.stats)
	if st := c.fanStats(); st != nil && st != f.stats {
		count(st)
	}
}

// delivered counts msgs messages, of n payload bytes, written to m, in the
// fan's counters and in those of m's Server, if other.
func (f *fan) delivered(m *member, msgs, n int) {
	f.stats.wrote(m.c, msgs, n)
	if st := m.c.fanStats(); st != nil && st != f.stats {
		st.wrote(m.c, msgs, n)
	}
}

// payloadLen returns the payload length of b, a whole unmasked frame.
func payloadLen(b []byte) int {
	switch b[1] & 0x7f {
	case 126:
		return len(b) - 4
	case 127:
		return len(b) - 10
	}
	return len(b) - 2
}

// Bounds on one batch of messages written with a single writev.
const (
	batchFrames = 64
	batchBytes  = 256 << 10
)

// drainer is a drain goroutine's working state, pooled.
type drainer struct {
	bufs  net.Buffers
	nodes [batchFrames]*bframe
}

var drainerPool = sync.Pool{New: func() any {
	return &drainer{bufs: make(net.Buffers, 0, batchFrames)}
}}

// drain writes m's queued messages, in order, and ends when the queue stays
// empty. Messages already complete when it gets to them (a burst of small
// ones) leave together in one write; a message still being published is
// streamed frame by frame.
func (f *fan) drain(m *member) {
	defer f.drains.Done()
	d := drainerPool.Get().(*drainer)
	defer drainerPool.Put(d)
	for {
		m.mu.Lock()
		if len(m.queue) == 0 {
			m.running = false
			m.mu.Unlock()
			return
		}
		batch, size, n := d.bufs[:0], 0, 0
		for _, fr := range m.queue {
			if !fr.complete() || n == batchFrames {
				break
			}
			b := fr.frameFor(m)
			if n > 0 && size+len(b) > batchBytes {
				break
			}
			batch = append(batch, b)
			d.nodes[n] = fr
			size += len(b)
			n++
		}
		var first *bframe
		if n == 0 {
			first, n = m.queue[0], 1
		}
		// Shift rather than reslice, so that the queue's array is reused
		// instead of reallocated as the front is consumed.
		rest := copy(m.queue, m.queue[n:])
		clear(m.queue[rest:])
		m.queue = m.queue[:rest]
		m.mu.Unlock()
		if first != nil {
			f.deliver(m, first)
			continue
		}
		d.bufs = batch // writing consumes d.bufs; batch keeps the array
		f.deliverBatch(m, d, batch, size)
		clear(batch)
		d.bufs = batch[:0]
		clear(d.nodes[:n])
	}
}

// deliverBatch writes complete messages, size bytes in all, to a member in
// one write.
func (f *fan) deliverBatch(m *member, d *drainer, batch net.Buffers, size int) {
	c := m.c
	if !m.dropped.Load() {
		if c.fanLock() {
			var err error
			if c.fanMasks() {
				for _, fr := range d.nodes[:len(batch)] {
					if err = c.fanWriteFrame(f.ctx, fr.op, true, fr.b[fr.hlen:]); err != nil {
						break
					}
				}
			} else {
				err = c.fanWriteBatch(f.ctx, &d.bufs)
			}
			if err != nil {
				m.dropped.Store(true)
			} else {
				n := 0
				for _, fr := range d.nodes[:len(batch)] {
					n += payloadLen(fr.frameFor(m))
				}
				f.delivered(m, len(batch), n)
			}
			c.fanUnlock()
		} else {
			m.dropped.Store(true)
		}
	}
	m.written(size)
}

// written accounts for n bytes of frames written to m (or, once m is
// dropped, for all of them) and wakes a Send waiting for room.
func (m *member) written(n int) {
	if m.dropped.Load() {
		m.pending.Store(0)
	} else {
		m.pending.Add(-int64(n))
	}
	if space := m.space.Load(); space != nil {
		notify(*space)
	}
}

// deliver writes one message to a member, frame by frame as they are
// published, holding the member's message lock throughout so no other data
// message interleaves.
func (f *fan) deliver(m *member, node *bframe) {
	c := m.c
	held := false
	defer func() {
		if held {
			c.fanUnlock()
		}
	}()
	for {
		select {
		case <-node.ready:
		default:
			select {
			case <-node.ready:
			case <-c.fanDone():
				m.dropped.Store(true)
			}
		}
		if !m.dropped.Load() && !held {
			if held = c.fanLock(); !held {
				m.dropped.Store(true)
			}
		}
		if !m.dropped.Load() {
			var err error
			if c.fanMasks() {
				err = c.fanWriteFrame(f.ctx, node.op, node.fin, node.b[node.hlen:])
			} else {
				err = c.fanWrite(f.ctx, node.frameFor(m))
			}
			if err != nil {
				m.dropped.Store(true)
			} else {
				msgs := 0
				if node.fin {
					msgs = 1
				}
				f.delivered(m, msgs, payloadLen(node.frameFor(m)))
			}
		}
		if m.dropped.Load() {
			// node may not be published: its size is not read. The
			// rest of the message is left to the garbage collector.
			m.written(0)
			return
		}
		m.written(len(node.frameFor(m)))
		if node.fin {
			return
		}
		node = node.next
	}
}

func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// encoder turns a message's chunks into frames: plain ones, and compressed
// ones, made once, for the members that take them.
type encoder struct {
	wantZ     bool // some member takes compressed frames
	level     int  // at this level
	threshold int
	decided   bool // the message's first frame is encoded
	compress  bool
	pools     *flatePools // of the implementation that compresses
	zw        FlateWriter
	zsw       *sliceWriter // where zw writes; made only for a compressed message
	pass      []byte       // the compressed payload of a received message of one frame, if it goes out as it came
}

// fanReceiver is the compression of a member that takes compressed
// frames (fanDeflate): no context kept, a full window.
var fanReceiver = &deflateState{window: 15}

// init looks at the members a message may go to; it reports whether there
// is any.
func (e *encoder) init(list []*member, skip *Conn) bool {
	any := false
	for _, m := range list {
		if m.gone.Load() || (skip != nil && m.c == skip) {
			continue
		}
		any = true
		if m.z {
			e.wantZ, e.level, e.threshold, e.pools = true, int(m.zlevel), m.zthr, m.zpools
			break
		}
	}
	return any
}

// first encodes the first frame of a message. A small message of one frame
// is one allocation; the first frame of a longer one is followed by the
// node that its next frame will fill.
func (e *encoder) first(op opcode, fin bool, p []byte) *bframe {
	var f *bframe
	if fin && len(p)+maxHeaderSize <= smallFrameSize {
		sf := new(smallFrame)
		f = &sf.bframe
		f.buf = sf.arr[:0]
	} else if fin {
		f = new(bframe)
	} else {
		f = new(bframe)
		f.next = &bframe{ready: make(chan struct{})}
	}
	f.ready = closedChan
	e.fill(f, op, fin, p)
	return f
}

// fill encodes one frame into f.
func (e *encoder) fill(f *bframe, op opcode, fin bool, p []byte) {
	h := header{fin: fin, op: op, length: int64(len(p))}
	hl := headerSize(h)
	if cap(f.buf) < hl+len(p) {
		f.buf = make([]byte, hl+len(p))
	}
	f.b = f.buf[:hl+len(p)]
	putHeader(f.b, h)
	copy(f.b[hl:], p)
	f.op, f.fin, f.hlen, f.z = op, fin, hl, nil
	if !e.decided {
		e.decided = true
		e.compress = e.wantZ && (!fin || e.threshold < 0 || len(p) >= e.threshold)
		if e.compress && fin && e.pass != nil {
			// The message's own compressed bytes, as they came.
			e.compress = false
			zh := header{fin: true, rsv: bitRSV1, op: op, length: int64(len(e.pass))}
			f.z = make([]byte, headerSize(zh)+len(e.pass))
			copy(f.z[putHeader(f.z, zh):], e.pass)
			f.zl, f.zall = e.level, true
			return
		}
		if e.compress {
			e.zsw = new(sliceWriter)
			zw, err := e.pools.getWriter(e.level, e.zsw)
			e.zw, e.compress = zw, err == nil // plain frames if it cannot
		}
	}
	if !e.compress {
		return
	}
	e.zsw.b = make([]byte, maxHeaderSize, maxHeaderSize+len(p)/2+64)
	if err := appendCompressed(e.zw, e.zsw, p, fin); err != nil {
		e.compress = false // cannot happen with a sliceWriter; stay correct anyway
		return
	}
	if op != opContinuation {
		h.rsv = bitRSV1 // on a message's first frame only (RFC 7692 §6)
	}
	h.length = int64(len(e.zsw.b) - maxHeaderSize)
	start := maxHeaderSize - headerSize(h)
	putHeader(e.zsw.b[start:], h)
	f.z = e.zsw.b[start:]
	f.zl = e.level
	e.zsw.b = nil
}

func (e *encoder) release() {
	if e.zw != nil {
		e.pools.putWriter(e.level, e.zw)
		e.zw = nil
	}
}
