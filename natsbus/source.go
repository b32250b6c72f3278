package natsbus

import (
	"context"
	"errors"
	"io"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// Bounds of the Source's bookkeeping, which is kept per publisher and per
// message that it is discarding.
const (
	maxPublishers = 1 << 16
	maxDiscarding = 1 << 12
)

// msgKey names a message: its publisher and its number there.
type msgKey struct {
	pub string
	msg uint64
}

// inMsg is a message being received: the chunks that arrived and were not
// read yet.
type inMsg struct {
	key      msgKey
	typ      ws.MessageType
	data     [][]byte  // chunks not yet read, in order
	size     int       // bytes in data
	nextPart uint64    // the part expected next
	last     time.Time // when its last chunk arrived
	ended    bool      // its last chunk arrived (or it was cut)
	cut      bool      // it ended cut short
	queued   bool      // it waits in source.queue (its bytes count in queued)
}

// source is the receiving half of a Topic: one subscription, its chunks
// sorted into messages.
type source struct {
	s   *Topic
	sub *nats.Subscription

	cur    *inMsg // the message whose Body is out
	curCtx context.Context
	body   *body    // cur's Body
	queue  []*inMsg // messages that began while cur was read, oldest first
	queued int      // bytes of data in queue

	open       map[msgKey]*inMsg   // messages whose last chunk has not come: cur and queued ones
	discarding map[msgKey]struct{} // messages whose further chunks are dropped
	pubs       map[string]uint64   // the last message number seen of each publisher

	lostMsgs, lostDropped int64 // losses not yet reported by Next
	seenDropped           int   // sub.Dropped() when last looked at
}

func newSource(s *Topic, sub *nats.Subscription) *source {
	return &source{
		s: s, sub: sub,
		open:       make(map[msgKey]*inMsg),
		discarding: make(map[msgKey]struct{}),
		pubs:       make(map[string]uint64),
	}
}

// Next returns the next message published on the subject; it makes Topic a
// wesos.Source[ws.Message]. Messages come in the order their first chunks
// arrived, which keeps every publisher's order. The Body streams the
// message's chunks as they arrive and is valid until the next call to Next,
// which discards what was not read. ctx governs this call and the reads of
// the returned Body.
//
// A Body returns ErrCutShort if the message ended before its end (see
// ErrCutShort and StallTimeout). When messages were lost — the subscription
// dropped chunks as a slow consumer (past PendingBytes or PendingMsgs), or a
// publisher's numbers skip (it could not publish, or this connection was
// away) — the loss is logged, counted in Stats, and Next returns a
// *LossError once, before the messages that came after it; call Next again
// to go on. Messages published while this connection is reconnecting are
// not delivered to it (NATS is at most once without JetStream).
//
// After Close, Next returns io.EOF.
func (s *Topic) Next(ctx context.Context) (ws.Message, error) {
	src := s.src
	if src == nil {
		return ws.Message{}, errors.New("natsbus: Next on a SendOnly subject")
	}
	src.release()
	for {
		if err := ctx.Err(); err != nil {
			return ws.Message{}, err
		}
		if err := src.lossError(); err != nil {
			return ws.Message{}, err
		}
		if len(src.queue) > 0 {
			m := src.queue[0]
			src.queue[0] = nil
			src.queue = src.queue[1:]
			src.queued -= m.size
			m.queued = false
			src.cur, src.curCtx = m, ctx
			src.body = &body{src: src, m: m}
			s.received.Add(1)
			return ws.Message{Type: m.typ, Body: src.body}, nil
		}
		if err := src.pull(ctx, nil); err != nil {
			return ws.Message{}, err
		}
	}
}

// PipeTo sends every message to dst until ctx ends, the Topic is closed
// (then it returns nil) or dst fails. Unlike a loop over Next and Send, it
// goes on past a message cut short (dst's Send fails with ErrCutShort) and
// past a *LossError: both are logged and counted already.
func (s *Topic) PipeTo(ctx context.Context, dst wesos.Sink[ws.Message]) error {
	for {
		m, err := s.Next(ctx)
		if errors.Is(err, ErrLost) {
			continue
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if err := dst.Send(ctx, m); err != nil && !errors.Is(err, ErrCutShort) {
			return err
		}
	}
}

// release ends the current message's Body: what was not read is dropped,
// and so are its chunks still to come.
func (src *source) release() {
	m := src.cur
	if m == nil {
		return
	}
	src.cur, src.curCtx, src.body = nil, nil, nil
	m.data, m.size = nil, 0
	if !m.ended {
		delete(src.open, m.key)
		src.discard(m.key)
	}
}

func (src *source) discard(k msgKey) {
	if len(src.discarding) >= maxDiscarding {
		for k := range src.discarding { // any one: its chunks then count as unknown
			delete(src.discarding, k)
			break
		}
	}
	src.discarding[k] = struct{}{}
}

func (src *source) lossError() error {
	if src.lostMsgs == 0 && src.lostDropped == 0 {
		return nil
	}
	err := &LossError{Messages: src.lostMsgs, Dropped: src.lostDropped}
	src.lostMsgs, src.lostDropped = 0, 0
	return err
}

// pull receives one NATS message and files it. While want's Body is being
// read, it waits no longer than want's StallTimeout, and then ends want cut
// short.
func (src *source) pull(ctx context.Context, want *inMsg) error {
	s := src.s
	wctx := ctx
	if want != nil && s.opts.StallTimeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithDeadline(ctx, want.last.Add(s.opts.StallTimeout))
		defer cancel()
	}
	msg, err := src.sub.NextMsgWithContext(wctx)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case wctx.Err() != nil:
			s.log.Warn("natsbus: message cut short: its next chunk did not come in time", "publisher", want.key.pub, "message", want.key.msg, "stall_timeout", s.opts.StallTimeout)
			src.cutShort(want)
			return nil
		case errors.Is(err, nats.ErrSlowConsumer):
			src.noteDropped()
			return nil
		case s.closed.Load():
			return io.EOF
		}
		return err
	}
	src.file(msg)
	return nil
}

// noteDropped records what the subscription dropped as a slow consumer.
func (src *source) noteDropped() {
	d, err := src.sub.Dropped()
	if err != nil || d <= src.seenDropped {
		return
	}
	n := int64(d - src.seenDropped)
	src.seenDropped = d
	src.lostDropped += n
	src.s.dropped.Add(n)
	src.s.log.Warn("natsbus: slow consumer: the subscription dropped messages", "dropped", n, "pending_bytes", src.s.opts.PendingBytes, "pending_msgs", src.s.opts.PendingMsgs)
}

// cutShort ends m cut short, and drops its chunks still to come.
func (src *source) cutShort(m *inMsg) {
	if m.ended {
		return
	}
	m.ended, m.cut = true, true
	delete(src.open, m.key)
	src.discard(m.key)
	src.s.cutShort.Add(1)
}

// file sorts a NATS message into the message it is a chunk of.
func (src *source) file(msg *nats.Msg) {
	s := src.s
	v := msg.Header.Get(headerKey)
	if v == "" {
		// Another NATS client's message: one whole message.
		typ := ws.Binary
		if utf8.Valid(msg.Data) {
			typ = ws.Text
		}
		if src.cur != nil && src.queued+len(msg.Data) > s.opts.QueueBytes {
			src.lostMsgs++
			s.lost.Add(1)
			s.log.Warn("natsbus: message lost: the queue of messages waiting for their turn is full", "queue_bytes", s.opts.QueueBytes)
			return
		}
		src.enqueue(&inMsg{typ: typ, data: [][]byte{msg.Data}, size: len(msg.Data), ended: true})
		return
	}
	h, err := parseHeader(v)
	if err != nil {
		if s.malformed.Add(1) == 1 {
			s.log.Warn("natsbus: NATS message with a malformed header dropped (only the first is logged)", "header", v)
		}
		return
	}
	k := msgKey{h.pub, h.msg}
	if m := src.open[k]; m != nil {
		if h.part != m.nextPart {
			// Chunks of m were lost (dropped as a slow consumer).
			s.log.Warn("natsbus: message cut short: chunks of it were lost", "publisher", h.pub, "message", h.msg, "want_part", m.nextPart, "got_part", h.part)
			src.cutShort(m)
			if h.end != endMore {
				delete(src.discarding, k)
			}
			return
		}
		m.nextPart++
		m.last = time.Now()
		if len(msg.Data) > 0 {
			if m.queued && src.queued+len(msg.Data) > s.opts.QueueBytes {
				s.log.Warn("natsbus: message cut short: the queue of messages waiting for their turn is full", "publisher", h.pub, "message", h.msg, "queue_bytes", s.opts.QueueBytes)
				src.cutShort(m)
				return
			}
			m.data = append(m.data, msg.Data)
			m.size += len(msg.Data)
			if m.queued {
				src.queued += len(msg.Data)
			}
		}
		if h.end != endMore {
			m.ended = true
			delete(src.open, k)
			if h.end == endCut {
				m.cut = true
				s.cutShort.Add(1)
				s.log.Info("natsbus: message cut short by its publisher", "publisher", h.pub, "message", h.msg)
			}
		}
		return
	}
	if _, ok := src.discarding[k]; ok {
		if h.end != endMore {
			delete(src.discarding, k)
		}
		return
	}
	last, known := src.pubs[h.pub]
	if known && h.msg <= last {
		return // a chunk of a message that ended here already
	}
	if len(src.pubs) >= maxPublishers && !known {
		for p := range src.pubs { // forget any one publisher
			delete(src.pubs, p)
			break
		}
	}
	src.pubs[h.pub] = h.msg
	if known && h.msg > last+1 {
		n := int64(h.msg - last - 1)
		src.lostMsgs += n
		s.lost.Add(n)
		s.log.Warn("natsbus: messages lost: a publisher's numbers skip", "publisher", h.pub, "lost", n, "after", last)
	}
	if h.part != 0 {
		// The message began before this subscription, or its first
		// chunks were lost.
		if known {
			src.lostMsgs++
			s.lost.Add(1)
			s.log.Warn("natsbus: message lost: its first chunk did not arrive", "publisher", h.pub, "message", h.msg)
		}
		if h.end == endMore {
			src.discard(k)
		}
		return
	}
	m := &inMsg{key: k, typ: h.typ, nextPart: 1, last: time.Now()}
	if len(msg.Data) > 0 {
		m.data, m.size = [][]byte{msg.Data}, len(msg.Data)
	}
	if h.end == endMore {
		src.open[k] = m
	} else {
		m.ended = true
		m.cut = h.end == endCut
	}
	if src.queued+m.size > s.opts.QueueBytes && src.cur != nil {
		// No room while another message is read: it is lost whole.
		src.lostMsgs++
		s.lost.Add(1)
		s.log.Warn("natsbus: message lost: the queue of messages waiting for their turn is full", "publisher", h.pub, "message", h.msg, "queue_bytes", s.opts.QueueBytes)
		delete(src.open, k)
		if !m.ended {
			src.discard(k)
		}
		return
	}
	src.enqueue(m)
}

func (src *source) enqueue(m *inMsg) {
	m.queued = true
	src.queue = append(src.queue, m)
	src.queued += m.size
}

// body is a received message's Body.
type body struct {
	src *source
	m   *inMsg
}

// Read reads the message's bytes as its chunks arrive. It returns the last
// bytes together with io.EOF, and ErrCutShort after the last bytes of a
// message cut short.
func (b *body) Read(p []byte) (int, error) {
	src := b.src
	if src.body != b {
		return 0, errStaleBody
	}
	m := b.m
	for len(m.data) == 0 {
		if m.ended {
			if m.cut {
				return 0, ErrCutShort
			}
			return 0, io.EOF
		}
		if err := src.pull(src.curCtx, m); err != nil {
			return 0, err
		}
	}
	n := copy(p, m.data[0])
	if n == len(m.data[0]) {
		m.data[0] = nil
		m.data = m.data[1:]
	} else {
		m.data[0] = m.data[0][n:]
	}
	m.size -= n
	if len(m.data) == 0 && m.ended && !m.cut {
		return n, io.EOF
	}
	return n, nil
}
