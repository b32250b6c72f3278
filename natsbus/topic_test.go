package natsbus

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/wesos/wesos"
	"github.com/wesos/wesos/ws"
)

func TestSendNext(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	// A small chunk size, so that a few KiB make many chunks.
	s := subject(t, n.Conn(), "t.sendnext", &SubjectOptions{ChunkSize: 1000})
	msgs := []struct {
		typ  ws.MessageType
		data []byte
	}{
		{ws.Text, []byte("hello")},
		{ws.Binary, []byte{0, 1, 2, 0xff}},
		{ws.Text, nil},
		{ws.Binary, nil},
		{ws.Binary, pattern(1, 999)},
		{ws.Binary, pattern(2, 1000)},
		{ws.Binary, pattern(3, 1001)},
		{ws.Binary, pattern(4, 10_000)},
		{ws.Text, []byte(strings.Repeat("é€😀a", 700))}, // runes cross every chunk boundary
	}
	for _, m := range msgs {
		if err := s.Send(ctx, ws.Message{Type: m.typ, Body: bytes.NewReader(m.data)}); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		got := next(t, ctx, s)
		if got.err != nil || got.typ != m.typ || !bytes.Equal(got.data, m.data) {
			t.Fatalf("message %d: got type %v, %d bytes, err %v; want type %v, %d bytes", i, got.typ, len(got.data), got.err, m.typ, len(m.data))
		}
	}
	st := s.Stats()
	if st.Sent != int64(len(msgs)) || st.Received != int64(len(msgs)) || st.Lost+st.CutShort+st.Dropped+st.SendErrors != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A text message's chunks are each valid UTF-8: none ends inside a rune.
func TestTextChunksEndOnRunes(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	s := subject(t, n.Conn(), "t.runes", &SubjectOptions{ChunkSize: 100, SendOnly: true})
	raw, err := n.Conn().SubscribeSync("t.runes")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Unsubscribe()
	text := strings.Repeat("aé€😀", 300)
	if err := s.Send(ctx, ws.Message{Type: ws.Text, Body: &patternText{s: text, step: 7}}); err != nil {
		t.Fatal(err)
	}
	var got strings.Builder
	for {
		m, err := raw.NextMsgWithContext(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !utf8.Valid(m.Data) {
			t.Fatalf("chunk %q is not valid UTF-8", m.Data)
		}
		got.Write(m.Data)
		h, err := parseHeader(m.Header.Get(headerKey))
		if err != nil {
			t.Fatal(err)
		}
		if h.end == endLast {
			break
		}
	}
	if got.String() != text {
		t.Fatalf("chunks add up to %d bytes, want %d", got.Len(), len(text))
	}
}

// patternText reads s step bytes at a time.
type patternText struct {
	s    string
	step int
}

func (r *patternText) Read(p []byte) (int, error) {
	if r.s == "" {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), r.step)], r.s)
	r.s = r.s[n:]
	return n, nil
}

// A NATS message from a client that knows nothing of this package is a
// whole message, typed by its content.
func TestPlainNATSMessage(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	s := subject(t, n.Conn(), "t.plain", nil)
	if err := n.Conn().Publish("t.plain", []byte("hi there")); err != nil {
		t.Fatal(err)
	}
	if err := n.Conn().Publish("t.plain", []byte{0xff, 0xfe}); err != nil {
		t.Fatal(err)
	}
	if got := next(t, ctx, s); got.typ != ws.Text || string(got.data) != "hi there" {
		t.Fatalf("got %v %q", got.typ, got.data)
	}
	if got := next(t, ctx, s); got.typ != ws.Binary || !bytes.Equal(got.data, []byte{0xff, 0xfe}) {
		t.Fatalf("got %v %q", got.typ, got.data)
	}
}

// wire publishes hand-made chunks, numbered as a publisher of this package
// numbers them.
type wire struct {
	t     testing.TB
	nc    *nats.Conn
	subj  string
	parts map[msgKey]uint64
}

func newWire(t testing.TB, nc *nats.Conn, subj string) *wire {
	return &wire{t, nc, subj, map[msgKey]uint64{}}
}

// chunk publishes the next chunk of message msg of pub.
func (w *wire) chunk(pub string, msg uint64, typ ws.MessageType, end byte, data string) {
	w.t.Helper()
	k := msgKey{pub, msg}
	part := w.parts[k]
	w.parts[k]++
	m := &nats.Msg{Subject: w.subj, Data: []byte(data), Header: nats.Header{}}
	m.Header.Set(headerKey, string(appendHeader(nil, chunkHeader{pub: pub, msg: msg, part: part, typ: typ, end: end})))
	if err := w.nc.PublishMsg(m); err != nil {
		w.t.Fatal(err)
	}
}

// Chunks of two publishers' messages, interleaved on the wire, come out as
// two whole messages, in the order they began.
func TestChunkDemux(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	nc := n.Conn()
	s := subject(t, nc, "t.demux", nil)
	w := newWire(t, nc, "t.demux")
	w.chunk("A", 1, ws.Text, endMore, "a0 ")
	w.chunk("B", 1, ws.Binary, endMore, "b0 ")
	w.chunk("A", 1, ws.Text, endMore, "a1 ")
	w.chunk("B", 1, ws.Binary, endMore, "b1 ")
	w.chunk("C", 1, ws.Text, endLast, "c whole")
	w.chunk("B", 1, ws.Binary, endLast, "b2")
	w.chunk("A", 1, ws.Text, endLast, "a2")
	w.chunk("A", 2, ws.Text, endLast, "a, again")
	want := []received{
		{ws.Text, []byte("a0 a1 a2"), nil},
		{ws.Binary, []byte("b0 b1 b2"), nil},
		{ws.Text, []byte("c whole"), nil},
		{ws.Text, []byte("a, again"), nil},
	}
	for i, w := range want {
		got := next(t, ctx, s)
		if got.typ != w.typ || string(got.data) != string(w.data) || got.err != nil {
			t.Fatalf("message %d: got %v %q %v, want %v %q", i, got.typ, got.data, got.err, w.typ, w.data)
		}
	}
	if st := s.Stats(); st.Lost+st.CutShort != 0 {
		t.Errorf("stats %+v", st)
	}
}

// A Body read before the message's chunks have all arrived streams them as
// they come; an unread rest is dropped by the next Next, chunks still to
// come included.
func TestBodyStreamsAndNextDiscards(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	nc := n.Conn()
	s := subject(t, nc, "t.stream", nil)
	w := newWire(t, nc, "t.stream")
	w.chunk("A", 1, ws.Text, endMore, "first ")
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	if k, err := m.Body.Read(buf); err != nil || string(buf[:k]) != "first " {
		t.Fatalf("read %q, %v", buf[:k], err)
	}
	w.chunk("A", 1, ws.Text, endMore, "second")
	if k, err := m.Body.Read(buf); err != nil || string(buf[:k]) != "second" {
		t.Fatalf("read %q, %v", buf[:k], err)
	}
	// The next message begins while this one is still open; Next drops the
	// rest of this one, the chunk that comes later too.
	w.chunk("B", 1, ws.Text, endLast, "b")
	w.chunk("A", 1, ws.Text, endMore, "third")
	m2 := next(t, ctx, s)
	if string(m2.data) != "b" {
		t.Fatalf("got %q", m2.data)
	}
	if _, err := m.Body.Read(buf); err == nil {
		t.Fatal("the first Body still reads after the next Next")
	}
	w.chunk("A", 1, ws.Text, endLast, "fourth")
	w.chunk("C", 1, ws.Text, endLast, "c")
	if got := next(t, ctx, s); string(got.data) != "c" {
		t.Fatalf("got %q, want the next message", got.data)
	}
}

// A publisher whose Body fails midway ends its message cut short, and
// nothing else: its next message, and other publishers', arrive whole.
func TestPublisherCutShort(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	s := subject(t, n.Conn(), "t.cut", &SubjectOptions{ChunkSize: 64})
	other := subject(t, n.Conn(), "t.cut", &SubjectOptions{ChunkSize: 64, SendOnly: true})
	text := strings.Repeat("€", 100) // 300 bytes, 3-byte runes
	failing := io.MultiReader(&patternText{s: text, step: 50}, iotestErrReader{errors.New("the client went away")})
	err := s.Send(ctx, ws.Message{Type: ws.Text, Body: failing})
	if err == nil || !strings.Contains(err.Error(), "went away") {
		t.Fatalf("Send returned %v", err)
	}
	if err := other.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader("other")}); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader("after")}); err != nil {
		t.Fatal(err)
	}
	got := next(t, ctx, s)
	if !errors.Is(got.err, ErrCutShort) {
		t.Fatalf("Body error %v, want ErrCutShort", got.err)
	}
	if !utf8.Valid(got.data) || !strings.HasPrefix(text, string(got.data)) || len(got.data) == 0 {
		t.Fatalf("cut message %q is not a valid prefix of what was sent", got.data)
	}
	for _, want := range []string{"other", "after"} {
		if got := next(t, ctx, s); got.err != nil || string(got.data) != want {
			t.Fatalf("got %q %v, want %q", got.data, got.err, want)
		}
	}
	if st := s.Stats(); st.CutShort != 1 || st.SendErrors != 1 || st.Lost != 0 {
		t.Errorf("stats %+v", st)
	}
}

type iotestErrReader struct{ err error }

func (r iotestErrReader) Read([]byte) (int, error) { return 0, r.err }

// A publisher that dies midway (its chunks stop) ends its message cut short
// after StallTimeout, which this test sets; the messages that began
// meanwhile wait, then arrive whole.
func TestPublisherDiesMidMessage(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	nc := n.Conn()
	s := subject(t, nc, "t.dies", &SubjectOptions{StallTimeout: 200 * time.Millisecond})
	w := newWire(t, nc, "t.dies")
	w.chunk("dead", 1, ws.Text, endMore, "I was saying")
	w.chunk("alive", 1, ws.Text, endLast, "hello")
	got := next(t, ctx, s)
	if !errors.Is(got.err, ErrCutShort) || string(got.data) != "I was saying" {
		t.Fatalf("got %q, %v; want the first chunk, then ErrCutShort", got.data, got.err)
	}
	if got := next(t, ctx, s); got.err != nil || string(got.data) != "hello" {
		t.Fatalf("got %q %v", got.data, got.err)
	}
	// The dead publisher's late chunk is dropped, not taken for a message.
	w.chunk("dead", 1, ws.Text, endLast, " something")
	w.chunk("alive", 2, ws.Text, endLast, "still here")
	if got := next(t, ctx, s); string(got.data) != "still here" {
		t.Fatalf("got %q", got.data)
	}
}

// A gap in a publisher's message numbers is a loss that Next reports.
func TestLossReported(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	nc := n.Conn()
	var logs logBuffer
	s := subject(t, nc, "t.loss", &SubjectOptions{ErrorLog: logs.logger()})
	w := newWire(t, nc, "t.loss")
	w.chunk("P", 1, ws.Text, endLast, "one")
	w.chunk("P", 4, ws.Text, endLast, "four")
	if got := next(t, ctx, s); string(got.data) != "one" {
		t.Fatalf("got %q", got.data)
	}
	_, err := s.Next(ctx)
	var le *LossError
	if !errors.As(err, &le) || le.Messages != 2 || !errors.Is(err, ErrLost) {
		t.Fatalf("Next returned %v, want a LossError of 2 messages", err)
	}
	if got := next(t, ctx, s); string(got.data) != "four" {
		t.Fatalf("got %q", got.data)
	}
	if st := s.Stats(); st.Lost != 2 {
		t.Errorf("stats %+v", st)
	}
	if !strings.Contains(logs.String(), "messages lost") {
		t.Errorf("no log line of the loss: %s", logs.String())
	}
}

// A subscriber that does not keep up loses what passes its pending limits,
// and is told so: a LossError that matches nats.ErrSlowConsumer, a log line,
// the count in Stats. It goes on with what follows.
func TestSlowConsumerReported(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	var logs logBuffer
	s := subject(t, n.Conn(), "t.slow", &SubjectOptions{PendingMsgs: 10, ErrorLog: logs.logger()})
	pub := subject(t, n.Conn(), "t.slow", &SubjectOptions{SendOnly: true})
	for i := range 50 {
		if err := pub.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader(fmt.Sprint(i))}); err != nil {
			t.Fatal(err)
		}
	}
	if err := n.Conn().FlushWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	var got []string
	var loss *LossError
	for len(got) < 10 || loss == nil {
		m, err := s.Next(ctx)
		if errors.As(err, &loss) {
			if !errors.Is(err, nats.ErrSlowConsumer) {
				t.Fatalf("%v does not match nats.ErrSlowConsumer", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(m.Body)
		got = append(got, string(b))
	}
	if st := s.Stats(); st.Dropped != 40 {
		t.Errorf("stats %+v, want 40 dropped", st)
	}
	if !strings.Contains(logs.String(), "slow consumer") {
		t.Errorf("no log line: %s", logs.String())
	}
	// Then the flow goes on.
	if err := pub.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader("later")}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := s.Next(ctx)
		if errors.Is(err, ErrLost) {
			continue // the gap in pub's numbers, learnt now
		}
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(m.Body); string(b) == "later" {
			break
		}
	}
}

// Concurrent Sends of large messages on one Topic, and on others, do not mix
// their chunks, and each publisher's order holds at every receiver.
func TestConcurrentPublishersDoNotMix(t *testing.T) {
	ctx := testContext(t)
	nodes := startCluster(t, 2)
	const pubs, perPub, size = 4, 20, 5000
	recv := subject(t, nodes[1].Conn(), "t.mix", nil)
	waitInterest(t, nodes, "t.mix", 1)
	var wg sync.WaitGroup
	for p := range pubs {
		topic := subject(t, nodes[0].Conn(), "t.mix", &SubjectOptions{ChunkSize: 512, SendOnly: true})
		for w := range 2 { // two goroutines per Topic
			wg.Go(func() {
				for i := range perPub {
					seed := p*1000 + w*100 + i
					body := &patternReader{seed: seed, n: size, step: 300}
					if err := topic.Send(ctx, ws.Message{Type: ws.Binary, Body: body}); err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	last := map[int]int{} // per sending goroutine, the last i seen
	for range pubs * 2 * perPub {
		got := next(t, ctx, recv)
		if got.err != nil {
			t.Fatal(got.err)
		}
		seed := findSeed(got.data, pubs)
		if seed < 0 {
			t.Fatalf("a message of %d bytes is none of those sent (chunks mixed?)", len(got.data))
		}
		g, i := seed/100, seed%100
		if prev, ok := last[g]; ok && i != prev+1 || !ok && i != 0 {
			t.Fatalf("sender %d: message %d after %d", g, i, last[g])
		}
		last[g] = i
	}
	wg.Wait()
}

func findSeed(data []byte, pubs int) int {
	for p := range pubs {
		for w := range 2 {
			for i := range 20 {
				seed := p*1000 + w*100 + i
				if len(data) == 5000 && bytes.Equal(data, pattern(seed, len(data))) {
					return (p*2+w)*100 + i
				}
			}
		}
	}
	return -1
}

var _ wesos.Source[ws.Message] = (*Topic)(nil)

// PipeTo goes on past a message cut short.
func TestPipeToGoesOnPastCutShort(t *testing.T) {
	ctx, cancel := context.WithCancel(testContext(t))
	n := startNode(t, nil)
	nc := n.Conn()
	s := subject(t, nc, "t.pipe", &SubjectOptions{StallTimeout: 100 * time.Millisecond})
	w := newWire(t, nc, "t.pipe")
	w.chunk("dead", 1, ws.Text, endMore, "half")
	w.chunk("P", 1, ws.Text, endLast, "whole")
	var got []string
	dst := wesos.SinkFunc[ws.Message](func(ctx context.Context, m ws.Message) error {
		b, err := io.ReadAll(m.Body)
		got = append(got, string(b))
		if len(got) == 2 {
			cancel()
		}
		return err
	})
	if err := wesos.Pipe(ctx, dst, wesos.Source[ws.Message](s)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Pipe returned %v", err)
	}
	if len(got) != 2 || got[0] != "half" || got[1] != "whole" {
		t.Fatalf("got %q", got)
	}
}

// Messages that begin while a Body is being read wait in a bounded queue;
// past QueueBytes they are lost, and said so, not buffered.
func TestQueueBounded(t *testing.T) {
	ctx := testContext(t)
	n := startNode(t, nil)
	nc := n.Conn()
	var logs logBuffer
	s := subject(t, nc, "t.queue", &SubjectOptions{QueueBytes: 100, ErrorLog: logs.logger()})
	w := newWire(t, nc, "t.queue")
	w.chunk("A", 1, ws.Text, endMore, "streaming ")
	m, err := s.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 { // 5 × 40 bytes while A's Body is read: 2 fit in 100
		if err := nc.Publish("t.queue", []byte(strings.Repeat(string(rune('a'+i)), 40))); err != nil {
			t.Fatal(err)
		}
	}
	w.chunk("A", 1, ws.Text, endLast, "done")
	if b, err := io.ReadAll(m.Body); err != nil || string(b) != "streaming done" {
		t.Fatalf("read %q, %v", b, err)
	}
	if _, err := s.Next(ctx); !errors.Is(err, ErrLost) {
		t.Fatalf("Next returned %v, want a LossError", err)
	}
	for _, want := range []string{strings.Repeat("a", 40), strings.Repeat("b", 40)} {
		if got := next(t, ctx, s); string(got.data) != want {
			t.Fatalf("got %q, want %q", got.data, want)
		}
	}
	if st := s.Stats(); st.Lost != 3 {
		t.Errorf("stats %+v, want 3 lost", st)
	}
}
