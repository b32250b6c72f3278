package natsbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

// Defaults of HistoryOptions.
const (
	DefaultHistoryMsgs  = 10_000
	DefaultHistoryAge   = 24 * time.Hour
	DefaultHistoryBytes = 64 << 20
)

// HistoryOptions configures a History. The zero value (or nil) is the
// default for each field.
type HistoryOptions struct {
	// Stream names the JetStream stream that keeps the subject's history
	// (default: "wesos_" and the subject, its dots and wildcards made
	// underscores). One stream keeps one subject, so its sequence numbers
	// count that subject's messages only.
	Stream string
	// MaxMsgs, MaxAge and MaxBytes bound the history: past any of them
	// the oldest messages go (defaults: DefaultHistoryMsgs,
	// DefaultHistoryAge, DefaultHistoryBytes).
	MaxMsgs  int64
	MaxAge   time.Duration
	MaxBytes int64
	// Replicas is how many servers of a cluster keep the history (default
	// 1; 3 survives the loss of a node).
	Replicas int
	// Memory keeps the history in memory instead of in files.
	Memory bool
	// ErrorLog receives what no caller sees (nil: slog.Default()).
	ErrorLog *slog.Logger
}

// ErrGap is matched (errors.Is) by the *GapError a Replay returns when
// messages it was asked for are no longer kept.
var ErrGap = errors.New("natsbus: history gap")

// GapError is what a Replay's Next returns, once, when the messages after
// After up to First (excluded) are gone: the history no longer keeps them (or
// never had them). The Replay stays usable: the next Next returns the
// message at First, or the one after.
type GapError struct {
	After uint64 // the last sequence the caller had
	First uint64 // the first sequence that follows it and is still kept
}

// Error says which sequence numbers are gone.
func (e *GapError) Error() string {
	return fmt.Sprintf("natsbus: history gap: messages after %d before %d are no longer kept", e.After, e.First)
}

// Is matches ErrGap.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// HistoryTopic is a NATS subject whose messages JetStream keeps, within
// bounds, so that a Replay can start in the past: after a sequence number a
// client last saw, or at the last N messages. Its Send is a
// wesos.Sink[ws.Message]; Replay makes Sources. History makes one.
//
// A message in history is one NATS message: Send refuses one larger than the
// connection's max payload. Plain Topics on the same subject receive what a
// HistoryTopic sends, live.
type HistoryTopic struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string
	name   string
	log    *slog.Logger
	pubID  string

	mu    sync.Mutex // orders message numbers with publishes
	msgNo uint64
}

// History creates (or updates) the JetStream stream that keeps subject's
// history and returns the subject as a HistoryTopic. The connection's server
// must have JetStream (NodeOptions.JetStream).
func History(ctx context.Context, nc *nats.Conn, subject string, opts *HistoryOptions) (*HistoryTopic, error) {
	var o HistoryOptions
	if opts != nil {
		o = *opts
	}
	if o.Stream == "" {
		o.Stream = "wesos_" + strings.NewReplacer(".", "_", "*", "_", ">", "_").Replace(subject)
	}
	if o.MaxMsgs <= 0 {
		o.MaxMsgs = DefaultHistoryMsgs
	}
	if o.MaxAge <= 0 {
		o.MaxAge = DefaultHistoryAge
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultHistoryBytes
	}
	if o.Replicas <= 0 {
		o.Replicas = 1
	}
	log := o.ErrorLog
	if log == nil {
		log = slog.Default()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	storage := jetstream.FileStorage
	if o.Memory {
		storage = jetstream.MemoryStorage
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:     o.Stream,
		Subjects: []string{subject},
		MaxMsgs:  o.MaxMsgs,
		MaxAge:   o.MaxAge,
		MaxBytes: o.MaxBytes,
		Replicas: o.Replicas,
		Storage:  storage,
		Discard:  jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("natsbus: history stream %q for %q: %w", o.Stream, subject, err)
	}
	return &HistoryTopic{nc: nc, js: js, stream: o.Stream, name: subject, log: log.With("subject", subject), pubID: nuid.Next()}, nil
}

var _ wesos.Sink[ws.Message] = (*HistoryTopic)(nil)

// Send publishes m and returns once JetStream has stored it; it makes
// HistoryTopic a wesos.Sink[ws.Message]. Send is safe for concurrent use.
func (h *HistoryTopic) Send(ctx context.Context, m ws.Message) error {
	_, err := h.Publish(ctx, m)
	return err
}

// Publish is Send that also returns the message's sequence number in the
// history.
func (h *HistoryTopic) Publish(ctx context.Context, m ws.Message) (uint64, error) {
	if m.Type != ws.Text && m.Type != ws.Binary {
		return 0, fmt.Errorf("natsbus: cannot send message type %d", m.Type)
	}
	max := h.nc.MaxPayload() - headerRoom
	var data []byte
	if m.Body != nil {
		var err error
		if data, err = io.ReadAll(io.LimitReader(m.Body, max+1)); err != nil {
			return 0, err
		}
	}
	if int64(len(data)) > max {
		return 0, fmt.Errorf("natsbus: a message in history is at most %d bytes", max)
	}
	msg := &nats.Msg{Subject: h.name, Data: data, Header: nats.Header{}}
	h.mu.Lock()
	h.msgNo++
	msg.Header.Set(headerKey, string(appendHeader(nil, chunkHeader{pub: h.pubID, msg: h.msgNo, typ: m.Type, end: endLast})))
	// The number is taken in order; the publish waits for the store
	// outside the lock.
	h.mu.Unlock()
	ack, err := h.js.PublishMsg(ctx, msg)
	if err != nil {
		h.log.Warn("natsbus: publish to history failed", "err", err)
		return 0, fmt.Errorf("natsbus: publish to %q: %w", h.name, err)
	}
	return ack.Sequence, nil
}

// Bounds returns the first and last sequence numbers the history keeps
// (first is last+1 when it is empty).
func (h *HistoryTopic) Bounds(ctx context.Context) (first, last uint64, err error) {
	s, err := h.js.Stream(ctx, h.stream)
	if err != nil {
		return 0, 0, err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, 0, err
	}
	return info.State.FirstSeq, info.State.LastSeq, nil
}

// From says where a Replay starts. Its zero value starts with the messages
// sent from then on.
type From struct {
	// After starts after this sequence number: a client that saw it
	// resumes with the next one. If messages after it are no longer kept,
	// the Replay's first Next returns a *GapError.
	After uint64
	// Last starts with the last messages kept, this many at most (when
	// After is 0).
	Last int
}

// Replay is a Source of a HistoryTopic's messages from a point in its
// history on: the kept ones, then live ones as they are sent, with no
// duplicate and no gap at the seam. Seq says each message's sequence number.
type Replay struct {
	h          *HistoryTopic
	it         jetstream.MessagesContext
	expected   uint64      // the sequence number the next message should have
	seq        uint64      // of the message Next last returned
	gap        *GapError   // to return first
	pending    *ws.Message // to return after a gap
	pendingSeq uint64
	closed     atomic.Bool
}

// Replay returns a Source of the history's messages from from on. Close it
// when done.
func (h *HistoryTopic) Replay(ctx context.Context, from From) (*Replay, error) {
	first, last, err := h.Bounds(ctx)
	if err != nil {
		return nil, err
	}
	r := &Replay{h: h}
	start := last + 1 // only new messages
	switch {
	case from.After > 0 && from.After > last:
		// Ahead of the history (it was purged or recreated): what is
		// kept cannot be the continuation.
		r.gap = &GapError{After: from.After, First: last + 1}
	case from.After > 0:
		start = from.After + 1
		if start < first {
			r.gap = &GapError{After: from.After, First: first}
			start = first
		}
	case from.Last > 0:
		start = max(first, (last+1)-min(uint64(from.Last), last+1))
	}
	start = max(start, 1) // an empty stream has no first
	r.expected = start
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start}
	cons, err := h.js.OrderedConsumer(ctx, h.stream, cfg)
	if err != nil {
		return nil, err
	}
	r.it, err = cons.Messages(jetstream.PullMaxMessages(256))
	if err != nil {
		return nil, err
	}
	return r, nil
}

// Next returns the next message; it makes Replay a wesos.Source[ws.Message].
// Its Body holds the whole message. When messages are missing — older than
// the history keeps at the start, or removed by its bounds before this
// Replay read them — Next returns a *GapError once, then goes on. After
// Close, Next returns io.EOF.
func (r *Replay) Next(ctx context.Context) (ws.Message, error) {
	if g := r.gap; g != nil {
		r.gap = nil
		return ws.Message{}, g
	}
	if p := r.pending; p != nil {
		r.pending = nil
		r.seq = r.pendingSeq
		return *p, nil
	}
	if r.closed.Load() {
		return ws.Message{}, io.EOF
	}
	msg, err := r.it.Next(jetstream.NextContext(ctx))
	if err != nil {
		if r.closed.Load() || errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return ws.Message{}, io.EOF
		}
		if ctx.Err() != nil {
			return ws.Message{}, ctx.Err()
		}
		return ws.Message{}, err
	}
	md, err := msg.Metadata()
	if err != nil {
		return ws.Message{}, err
	}
	seq := md.Sequence.Stream
	data := msg.Data()
	typ := ws.Binary
	if h, err := parseHeader(msg.Headers().Get(headerKey)); err == nil {
		typ = h.typ
	} else if utf8.Valid(data) {
		typ = ws.Text
	}
	m := ws.Message{Type: typ, Body: bytes.NewReader(data)}
	if seq > r.expected {
		// Say so before this message, which comes with the next call.
		g := &GapError{After: r.expected - 1, First: seq}
		r.expected = seq + 1
		r.pending, r.pendingSeq = &m, seq
		return ws.Message{}, g
	}
	r.expected = seq + 1
	r.seq = seq
	return m, nil
}

// Seq returns the sequence number of the message Next last returned.
func (r *Replay) Seq() uint64 { return r.seq }

// Close stops the Replay.
func (r *Replay) Close() error {
	if !r.closed.Swap(true) {
		r.it.Stop()
	}
	return nil
}
