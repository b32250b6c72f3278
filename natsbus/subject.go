package natsbus

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// Defaults of SubjectOptions.
const (
	// DefaultPendingBytes bounds the chunks a Source's subscription holds
	// before its consumer reads them.
	DefaultPendingBytes = 16 << 20
	// DefaultPendingMsgs bounds how many chunks it holds.
	DefaultPendingMsgs = 64 << 10
	// DefaultQueueBytes bounds the chunks a Source keeps of messages that
	// arrived while the Body of another was being read.
	DefaultQueueBytes = 16 << 20
	// DefaultStallTimeout is how long a Source waits for the next chunk of
	// a message before it ends the message cut short.
	DefaultStallTimeout = 10 * time.Second
	// DefaultFlushTimeout bounds the round trips to the server that
	// Subject and Send make.
	DefaultFlushTimeout = 10 * time.Second
	// DefaultPaceBytes is how far a publisher streams a large message ahead
	// of its server's acknowledgement.
	DefaultPaceBytes = 1 << 20
)

// minChunk is the least a chunk holds before it is published, unless it is
// the last of its message or the chunk size is smaller: a message that
// streams in small reads does not become as many NATS messages.
const minChunk = 64 << 10

// minChunkSize is the least chunk size: room for a few runes.
const minChunkSize = 16

// headerRoom is what a chunk leaves of the connection's max payload for its
// headers, which NATS counts in the payload.
const headerRoom = 512

// SubjectOptions configures a Topic. The zero value (or nil) is the
// default for each field.
type SubjectOptions struct {
	// ChunkSize is the most payload one NATS message carries. A larger
	// message is sent in chunks of this size. Zero means the connection's
	// max payload (1 MiB on a default server) less room for the headers.
	ChunkSize int

	// PendingBytes and PendingMsgs bound what the subscription holds before
	// Next reads it (zero: DefaultPendingBytes, DefaultPendingMsgs). NATS
	// does not slow a publisher down for a slow subscriber: past these
	// bounds the client drops what arrives, and the Source reports it (see
	// Next).
	PendingBytes int
	PendingMsgs  int

	// QueueBytes bounds the chunks kept of messages that begin while the
	// Body of another is being read (zero: DefaultQueueBytes). A queued
	// message that would pass it is ended cut short.
	QueueBytes int

	// StallTimeout is how long the Source waits for the next chunk of a
	// message before it ends that message cut short: its publisher died or
	// lost its connection (zero: DefaultStallTimeout; negative: no limit).
	StallTimeout time.Duration

	// FlushTimeout bounds the round trip Subject makes so that the
	// subscription is in place when it returns, and the pacing round trips
	// of a large Send whose ctx has no deadline (zero: DefaultFlushTimeout).
	FlushTimeout time.Duration

	// PaceBytes is how many bytes of one message a Send publishes before it
	// waits for its server to have processed them (zero: DefaultPaceBytes).
	PaceBytes int

	// SendOnly makes a Topic that only publishes: it does not subscribe,
	// and Next returns an error.
	SendOnly bool

	// ErrorLog receives what no caller sees: lost and cut-short messages,
	// failed publishes. Nil means slog.Default().
	ErrorLog *slog.Logger
}

// Stats are a Topic's counters since it was made.
type Stats struct {
	Sent       int64 // messages published whole
	SendErrors int64 // Sends that failed after publishing began or could not publish
	Buffered   int64 // chunks published while the connection was reconnecting (held by nats.go)
	Received   int64 // messages handed out by Next
	CutShort   int64 // messages handed out, or queued, that ended cut short
	Lost       int64 // messages known lost: never handed out (a gap in a publisher's numbers, a queue overflow)
	Dropped    int64 // NATS messages the subscription dropped as a slow consumer
	Malformed  int64 // NATS messages with a header this package did not recognise
}

// ErrCutShort is what a received message's Body returns when the message
// ended before its end: its publisher stopped midway (it failed to read the
// message, died, or lost its connection for longer than the StallTimeout),
// or chunks of it were lost. A text message is cut at a rune boundary.
var ErrCutShort = errors.New("natsbus: message cut short")

// ErrLost is matched (errors.Is) by the *LossError that Next returns when
// messages were lost.
var ErrLost = errors.New("natsbus: messages lost")

// ErrClosed is returned by Send after Close.
var ErrClosed = errors.New("natsbus: subject closed")

// errStaleBody is returned by a Body read after the next Next.
var errStaleBody = errors.New("natsbus: Body read after the next call to Next")

// LossError is what Next returns, once, when it has learnt since the last
// call that messages were lost. The Source stays usable: the next call to
// Next goes on with the messages that did arrive.
type LossError struct {
	Messages int64 // whole messages lost (0 when only the number of dropped chunks is known)
	Dropped  int64 // NATS messages (chunks) dropped by the subscription as a slow consumer
}

// Error says how much was lost.
func (e *LossError) Error() string {
	return fmt.Sprintf("natsbus: %d messages lost, %d NATS messages dropped as a slow consumer", e.Messages, e.Dropped)
}

// Is matches ErrLost, and nats.ErrSlowConsumer when the subscription dropped
// messages.
func (e *LossError) Is(target error) bool {
	return target == ErrLost || (target == nats.ErrSlowConsumer && e.Dropped > 0)
}

// A Topic is a NATS subject as a wesos.Sink[ws.Message] (Send publishes)
// and a wesos.Source[ws.Message] (Next receives what is published from the
// time Subject returned, by any publisher, this one included). Subject makes
// one.
//
// Send is safe for concurrent use; Next, like every Source, is not.
type Topic struct {
	nc    *nats.Conn
	name  string
	opts  SubjectOptions
	log   *slog.Logger
	pubID string
	chunk int

	bufs sync.Pool // *[]byte of chunk bytes

	pubMu sync.Mutex // orders message numbers with their first chunks
	msgNo uint64
	fails int64 // consecutive failed Sends, under pubMu (for the log)

	closed atomic.Bool

	src *source // nil for SendOnly

	sent, sendErrors, buffered                   atomic.Int64
	received, cutShort, lost, dropped, malformed atomic.Int64
}

var (
	_ wesos.Sink[ws.Message]   = (*Topic)(nil)
	_ wesos.Source[ws.Message] = (*Topic)(nil)
	_ wesos.PipeTo[ws.Message] = (*Topic)(nil)
)

// Subject returns the NATS subject as a Sink and a Source of ws.Message on
// nc: a *Topic. Unless opts.SendOnly, it subscribes and makes a round trip
// to the server so that the subscription is in place when it returns (within
// opts.FlushTimeout). Close the Topic to unsubscribe; closing nc is the
// caller's.
func Subject(nc *nats.Conn, subject string, opts *SubjectOptions) (*Topic, error) {
	s := &Topic{nc: nc, name: subject, pubID: nuid.Next()}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	if o.PendingBytes <= 0 {
		o.PendingBytes = DefaultPendingBytes
	}
	if o.PendingMsgs <= 0 {
		o.PendingMsgs = DefaultPendingMsgs
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.FlushTimeout <= 0 {
		o.FlushTimeout = DefaultFlushTimeout
	}
	if o.PaceBytes <= 0 {
		o.PaceBytes = DefaultPaceBytes
	}
	s.log = o.ErrorLog
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("subject", subject)
	s.chunk = o.ChunkSize
	if max := int(nc.MaxPayload()) - headerRoom; s.chunk <= 0 || (max > 0 && s.chunk > max) {
		s.chunk = max
	}
	if s.chunk < minChunkSize {
		return nil, fmt.Errorf("natsbus: chunk size %d (max payload %d) is under %d bytes", s.chunk, nc.MaxPayload(), minChunkSize)
	}
	s.bufs.New = func() any { b := make([]byte, s.chunk); return &b }
	if o.SendOnly {
		return s, nil
	}
	sub, err := nc.SubscribeSync(subject)
	if err != nil {
		return nil, fmt.Errorf("natsbus: subscribe to %q: %w", subject, err)
	}
	if err := sub.SetPendingLimits(o.PendingMsgs, o.PendingBytes); err != nil {
		sub.Unsubscribe()
		return nil, err
	}
	if err := nc.FlushTimeout(o.FlushTimeout); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("natsbus: subscribe to %q: %w", subject, err)
	}
	s.src = newSource(s, sub)
	return s, nil
}

// Name returns the NATS subject.
func (s *Topic) Name() string { return s.name }

// Stats returns the Topic's counters.
func (s *Topic) Stats() Stats {
	return Stats{
		Sent: s.sent.Load(), SendErrors: s.sendErrors.Load(), Buffered: s.buffered.Load(),
		Received: s.received.Load(), CutShort: s.cutShort.Load(), Lost: s.lost.Load(),
		Dropped: s.dropped.Load(), Malformed: s.malformed.Load(),
	}
}

// Close unsubscribes. Next then returns io.EOF and Send ErrClosed. Messages
// that were published before are not affected: NATS delivers them.
func (s *Topic) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.src == nil {
		return nil
	}
	err := s.src.sub.Unsubscribe()
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
		err = nil
	}
	return err
}

// Send publishes m; it makes Topic a wesos.Sink[ws.Message]. A message
// that fits one chunk is one NATS message; a larger one streams out as its
// Body is read, in chunks, each published as soon as it is read (at least
// 64 KiB of it, unless it ends sooner), so a message of any size passes in
// bounded memory. A text message's chunks never end inside a rune.
//
// Send blocks while the connection's outgoing buffer is full, and, every
// PaceBytes of one message, until the server has processed what was
// published: NATS has no backpressure from subscribers (see Next). Between
// chunks, Send gives up when ctx ends.
//
// While the connection is reconnecting, nats.go holds what is published in
// its reconnect buffer (nats.ReconnectBufSize, 8 MiB by default) and sends
// it once connected again; Stats counts those chunks (Buffered). When that
// buffer is full, or the connection is closed, Send fails with the nats.go
// error (nats.ErrReconnectBufExceeded, nats.ErrConnectionClosed), logs it and
// counts it (SendErrors): nothing is dropped without both. Held chunks are
// lost only if the connection is closed before it reconnects.
//
// If reading m.Body fails, or ctx ends, after part of the message was
// published, a last empty chunk tells the receivers that the message was cut
// short, and the error is returned.
//
// Send is safe for concurrent use. Every receiver gets the messages of one
// Topic in the order their Sends began publishing.
func (s *Topic) Send(ctx context.Context, m ws.Message) error {
	if m.Type != ws.Text && m.Type != ws.Binary {
		return fmt.Errorf("natsbus: cannot send message type %d", m.Type)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.closed.Load() {
		return ErrClosed
	}
	body := m.Body
	if body == nil {
		body = http.NoBody
	}
	bp := s.bufs.Get().(*[]byte)
	defer s.bufs.Put(bp)
	buf := *bp
	h := chunkHeader{pub: s.pubID, typ: m.Type, end: endMore}
	text := m.Type == ws.Text
	var hdrBuf [96]byte
	carry := 0
	sinceFlush := 0
	for {
		n, rerr := fill(body, buf, carry)
		if rerr == io.EOF {
			h.end = endLast
			rerr = nil
		}
		carry = 0
		if text && h.end == endMore && rerr == nil {
			// A chunk does not end inside a rune: a message cut short
			// after it is still valid UTF-8.
			carry = incompleteRune(buf[:n])
			n -= carry
		}
		if rerr == nil && h.end == endMore {
			rerr = ctx.Err()
		}
		if rerr != nil {
			if h.part == 0 {
				return rerr // nothing published: nothing to end
			}
			h.end = endCut
			n = 0
		}
		msg := &nats.Msg{Subject: s.name, Data: buf[:n], Header: nats.Header{}}
		var perr error
		if h.part == 0 {
			s.pubMu.Lock()
			s.msgNo++
			h.msg = s.msgNo
			msg.Header[headerKey] = []string{string(appendHeader(hdrBuf[:0], h))}
			perr = s.publish(msg)
			s.pubMu.Unlock()
		} else {
			msg.Header[headerKey] = []string{string(appendHeader(hdrBuf[:0], h))}
			perr = s.publish(msg)
		}
		if perr != nil {
			return s.sendFailed(h, perr)
		}
		if rerr != nil {
			s.sendFailed(h, rerr)
			return rerr
		}
		if h.end == endLast {
			s.sent.Add(1)
			s.sendOK()
			return nil
		}
		h.part++
		if sinceFlush += n; sinceFlush >= s.opts.PaceBytes {
			sinceFlush = 0
			if err := s.pace(ctx); err != nil {
				// Receivers end the message when its next chunk does
				// not come (StallTimeout).
				return s.sendFailed(h, err)
			}
		}
		copy(buf, buf[n:n+carry])
	}
}

func (s *Topic) publish(m *nats.Msg) error {
	away := s.nc.IsReconnecting()
	err := s.nc.PublishMsg(m)
	if err == nil && away {
		s.buffered.Add(1)
	}
	return err
}

// pace waits for the server to have processed what was published.
func (s *Topic) pace(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.opts.FlushTimeout)
		defer cancel()
	}
	return s.nc.FlushWithContext(ctx)
}

// sendFailed counts and logs a failed Send: the first of a run of failures,
// and then every 1000th, are logged.
func (s *Topic) sendFailed(h chunkHeader, err error) error {
	s.sendErrors.Add(1)
	s.pubMu.Lock()
	s.fails++
	n := s.fails
	s.pubMu.Unlock()
	if n == 1 || n%1000 == 0 {
		s.log.Warn("natsbus: publish failed", "message", h.msg, "part", h.part, "failures", n, "err", err)
	}
	return fmt.Errorf("natsbus: publish to %q: %w", s.name, err)
}

func (s *Topic) sendOK() {
	s.pubMu.Lock()
	n := s.fails
	s.fails = 0
	s.pubMu.Unlock()
	if n > 0 {
		s.log.Info("natsbus: publishing again", "after_failures", n)
	}
}

// fill reads r into buf after its first carry bytes until buf holds at least
// minChunk bytes (or is full), r ends (io.EOF) or fails. It returns how many
// bytes buf holds.
func fill(r io.Reader, buf []byte, carry int) (int, error) {
	n := carry
	want := min(minChunk, len(buf))
	for empty := 0; n < want; {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
		if m > 0 {
			empty = 0
		} else if empty++; empty == 100 {
			return n, io.ErrNoProgress
		}
	}
	return n, nil
}

// incompleteRune returns how many bytes at the end of p start a UTF-8
// sequence that p does not complete: 0 to 3.
func incompleteRune(p []byte) int {
	for i := len(p) - 1; i >= 0 && i > len(p)-4; i-- {
		if c := p[i]; c&0xC0 != 0x80 { // a rune starts here
			need := 1
			switch {
			case c >= 0xF0:
				need = 4
			case c >= 0xE0:
				need = 3
			case c >= 0xC0:
				need = 2
			}
			if len(p)-i < need {
				return len(p) - i
			}
			return 0
		}
	}
	return 0
}
