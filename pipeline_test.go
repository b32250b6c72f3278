package wesos_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
	"github.com/wesos/wesos/ws"
)

// TestMain checks that no test of the package leaves a goroutine behind:
// every server, connection and flow stops what it started.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer serves srv on 127.0.0.1 and returns its ws:// URL; the
// server is shut down when the test ends.
func startServer(t *testing.T, srv *ws.Server) string {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		hs.Close()
	})
	return "ws" + strings.TrimPrefix(hs.URL, "http")
}

func dial(t *testing.T, ctx context.Context, url string) *ws.Conn {
	t.Helper()
	c, _, err := ws.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// relayServer is the one-liner: every message of every socket goes to every
// socket.
func relayServer(opts *ws.AcceptOptions) *ws.Server {
	var srv *ws.Server
	srv = ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		return wesos.Pipe(ctx, srv, c)
	}, opts)
	return srv
}

// waitLen waits until srv has n open connections.
func waitLen(t *testing.T, srv *ws.Server, n int) {
	t.Helper()
	waitUntil(t, func() string {
		if got := srv.Len(); got != n {
			return fmt.Sprintf("server has %d connections, want %d", got, n)
		}
		return ""
	})
}

// waitUntil polls cond until it returns "" and fails the test with what it
// last returned if that takes longer than two minutes: a bound on a hang,
// not on speed (a loaded machine under -race can be many times slower).
func waitUntil(t *testing.T, cond func() (notYet string)) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		msg := cond()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Every client sends sequence-numbered messages through Pipe(ctx, srv, c);
// every client receives every message, each sender's in order.
func TestPipelineBroadcast(t *testing.T) {
	const clients, perClient = 32, 200
	srv := relayServer(nil)
	url := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	conns := make([]*ws.Conn, clients)
	for i := range conns {
		conns[i] = dial(t, ctx, url)
	}
	waitLen(t, srv, clients)

	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for i, c := range conns {
		wg.Go(func() { // reader: all messages, per-sender order
			next := make([]int, clients)
			for range clients * perClient {
				_, p, err := c.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("client %d read: %w", i, err)
					return
				}
				var from, seq int
				if _, err := fmt.Sscanf(string(p), "%d:%d", &from, &seq); err != nil {
					errs <- fmt.Errorf("client %d got %q", i, p)
					return
				}
				if seq != next[from] {
					errs <- fmt.Errorf("client %d: from %d got seq %d, want %d", i, from, seq, next[from])
					return
				}
				next[from]++
			}
		})
		wg.Go(func() { // writer
			for seq := range perClient {
				if err := c.Write(ctx, ws.Text, fmt.Appendf(nil, "%d:%d", i, seq)); err != nil {
					errs <- fmt.Errorf("client %d write: %w", i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, c := range conns {
		c.Close(ws.StatusNormalClosure, "")
	}
}

// stream is a deterministic pseudo-random byte stream.
type stream struct {
	state uint64
	left  int64
}

func (s *stream) Read(p []byte) (int, error) {
	if s.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	for i := 0; i+8 <= len(p); i += 8 {
		s.state = s.state*6364136223846793005 + 1442695040888963407
		binary.LittleEndian.PutUint64(p[i:], s.state)
	}
	for i := len(p) &^ 7; i < len(p); i++ {
		p[i] = byte(i)
	}
	s.left -= int64(len(p))
	return len(p), nil
}

// A 1 GiB message relayed from one client to four others through the
// server streams in bounded memory. Under the race detector (ten times
// slower) it relays 128 MiB; CI runs it at full size without -race too.
func TestPipelineRelayHugeMessage(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB relay")
	}
	size := int64(1 << 30)
	if raceEnabled {
		size = 128 << 20
	}
	srv := relayServer(&ws.AcceptOptions{ReadLimit: -1, Broadcast: &ws.GroupOptions{Queue: 4 << 20, SlowTimeout: 30 * time.Second}})
	url := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	sender := dial(t, ctx, url)
	sender.SetReadLimit(-1)
	receivers := make([]*ws.Conn, 4)
	for i := range receivers {
		receivers[i] = dial(t, ctx, url)
		receivers[i].SetReadLimit(-1)
	}
	waitLen(t, srv, 5)

	stop := make(chan struct{})
	var peak uint64
	var sampler sync.WaitGroup
	sampler.Go(func() { peak = sampleHeap(stop) })

	want := sha256.New()
	var wg sync.WaitGroup
	sums := make([][]byte, len(receivers))
	errs := make([]error, len(receivers))
	for i, c := range receivers {
		wg.Go(func() {
			_, r, err := c.Reader(ctx)
			if err != nil {
				errs[i] = err
				return
			}
			h := sha256.New()
			n, err := io.Copy(h, r)
			if err == nil && n != size {
				err = fmt.Errorf("got %d bytes", n)
			}
			sums[i], errs[i] = h.Sum(nil), err
		})
	}
	wg.Go(func() { // the sender's own copy
		if _, r, err := sender.Reader(ctx); err == nil {
			io.Copy(io.Discard, r)
		}
	})
	w, err := sender.Writer(ctx, ws.Binary)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyBuffer(w, io.TeeReader(&stream{state: 1, left: size}, want), make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(stop)
	sampler.Wait()
	for i := range receivers {
		if errs[i] != nil {
			t.Fatalf("receiver %d: %v", i, errs[i])
		}
		if !bytes.Equal(sums[i], want.Sum(nil)) {
			t.Fatalf("receiver %d: payload differs", i)
		}
	}
	t.Logf("peak live heap %.1f MiB", float64(peak)/(1<<20))
	if peak > 64<<20 {
		t.Fatalf("peak live heap %d MiB, want under 64 MiB", peak>>20)
	}
}

// sampleHeap reports the largest HeapInuse seen until stop is closed.
func sampleHeap(stop <-chan struct{}) uint64 {
	var peak uint64
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
		select {
		case <-stop:
			return peak
		case <-t.C:
		}
	}
}

// A client that stops reading is dropped with 1008 while the others still
// receive every message.
func TestPipelineSlowClient(t *testing.T) {
	// The close timeout is the test's: the 1008 frame waits behind a full
	// socket buffer until the stalled client reads, which it does only once
	// the fast client has everything -- on a loaded machine that can take
	// many seconds, and a close timeout that ends first would cut the
	// connection without its close frame (TestPipelineSlowClientTooLate).
	ctx, _, stalled := slowClientDropped(t, 3*time.Minute)

	// The stalled client now reads: what was queued, then the close.
	stalled.SetReadLimit(-1)
	var ce ws.CloseError
	for {
		_, _, err := stalled.Read(ctx)
		if err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("stalled client: %v, want a CloseError", err)
			}
			break
		}
	}
	if ce.Code != ws.StatusPolicyViolation {
		t.Fatalf("stalled client closed with %v, want 1008", ce.Code)
	}
}

// A dropped client that reads only after the close timeout has ended sees
// what was queued and then TCP's end without a close frame (1006), as
// SECURITY.md says: the 1008 frame never got past its full socket buffer.
func TestPipelineSlowClientTooLate(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: relays 25 MiB to three clients")
	}
	ctx, srv, stalled := slowClientDropped(t, 50*time.Millisecond)
	// Shutdown waits for the dropped connection's close, which gives up
	// after the close timeout and closes TCP: only then does the client read.
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	stalled.SetReadLimit(-1)
	var ce ws.CloseError
	for {
		_, _, err := stalled.Read(ctx)
		if err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("stalled client: %v, want a CloseError", err)
			}
			break
		}
	}
	if ce.Code != ws.StatusAbnormalClosure {
		t.Fatalf("stalled client closed with %v, want 1006 (no close frame)", ce.Code)
	}
}

// slowClientDropped runs a relay server with the given close timeout and
// three clients: a sender, a fast reader and a stalled one that reads
// nothing. It relays 400 messages of 64 KiB (25 MiB, more than the stalled
// client's socket buffers and queue can hold), checks that the fast client
// got them all in order, and returns with the stalled client dropped (its
// close under way) and still unread.
func slowClientDropped(t *testing.T, closeTimeout time.Duration) (context.Context, *ws.Server, *ws.Conn) {
	t.Helper()
	// Generous bounds, so that a loaded machine does not make the fast
	// client look slow; the stalled one is still dropped, since 25 MiB is
	// more than its socket buffers and queue can hold.
	srv := relayServer(&ws.AcceptOptions{Broadcast: &ws.GroupOptions{Queue: 1 << 20, SlowTimeout: 2 * time.Second}, CloseTimeout: closeTimeout})
	url := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)

	sender := dial(t, ctx, url)
	fast := dial(t, ctx, url)
	// The stalled client never reads until the end. Its receive buffer is
	// pinned small: loopback autotuning would otherwise let the kernel
	// absorb tens of MiB (tcp_rmem allows 32 MiB here) before the server
	// sees it fall behind.
	stalled, _, err := ws.Dial(ctx, url, &ws.DialOptions{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				err = nc.(*net.TCPConn).SetReadBuffer(64 << 10)
			}
			return nc, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stalled.CloseNow() })
	waitLen(t, srv, 3)

	const messages = 400
	payload := bytes.Repeat([]byte("x"), 64<<10) // 25 MiB in all: more than any socket buffer
	var wg sync.WaitGroup
	var fastErr error
	wg.Go(func() {
		for i := range messages {
			_, p, err := fast.Read(ctx)
			if err != nil {
				fastErr = fmt.Errorf("message %d: %w", i, err)
				return
			}
			if binary.BigEndian.Uint32(p) != uint32(i) {
				fastErr = fmt.Errorf("message %d: got %d", i, binary.BigEndian.Uint32(p))
				return
			}
		}
	})
	wg.Go(func() { // the sender's own copies
		for range messages {
			if _, _, err := sender.Read(ctx); err != nil {
				return
			}
		}
	})
	start := time.Now()
	for i := range messages {
		binary.BigEndian.PutUint32(payload, uint32(i))
		if err := sender.Write(ctx, ws.Binary, payload); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if fastErr != nil {
		t.Fatal(fastErr)
	}
	t.Logf("fast client got all %d messages in %v", messages, time.Since(start))
	// The fast clients close first, so that a Shutdown finds only the
	// dropped connection.
	sender.Close(ws.StatusNormalClosure, "")
	fast.Close(ws.StatusNormalClosure, "")
	return ctx, srv, stalled
}

type reading struct {
	Sensor string  `json:"sensor"`
	Value  float64 `json:"value"`
}

type alert struct {
	Sensor string `json:"sensor"`
	Level  string `json:"level"`
}

// A data-transformation server built from flows: JSON readings in, alerts
// for the high ones out.
func TestPipelineJSONTransform(t *testing.T) {
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		high := flow.Filter(ws.JSON[reading](c), func(r reading) bool { return r.Value > 100 })
		alerts := flow.Map(high, func(_ context.Context, r reading) (alert, error) {
			return alert{Sensor: r.Sensor, Level: "high"}, nil
		})
		return wesos.Pipe(ctx, ws.JSON[alert](c), alerts)
	}, nil)
	url := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	c := dial(t, ctx, url)
	in := ws.JSON[reading](c)
	for i, v := range []float64{50, 150, 99, 101, 300} {
		if err := in.Send(ctx, reading{Sensor: fmt.Sprint("s", i), Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	out := ws.JSON[alert](c)
	var got []string
	for range 3 {
		a, err := out.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a.Sensor+":"+a.Level)
	}
	if want := "s1:high s3:high s4:high"; strings.Join(got, " ") != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	c.Close(ws.StatusNormalClosure, "")
}

// Fan-in: the messages of several sockets merged into one stream, read
// message by message while each body is still valid.
func TestPipelineMerge(t *testing.T) {
	const sockets, perSocket = 4, 50
	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		name := c.Subprotocol()
		for i := range perSocket {
			// Large enough to span several frames and reads.
			msg := name + ":" + fmt.Sprint(i) + ":" + strings.Repeat("y", 20000)
			if err := c.Write(ctx, ws.Text, []byte(msg)); err != nil {
				return err
			}
		}
		c.Close(ws.StatusNormalClosure, "done")
		return nil
	}, &ws.AcceptOptions{Subprotocols: []string{"a", "b", "c", "d"}})
	url := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	srcs := make([]wesos.Source[ws.Message], sockets)
	for i := range srcs {
		c, _, err := ws.Dial(ctx, url, &ws.DialOptions{Subprotocols: []string{string(rune('a' + i))}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		srcs[i] = c
	}
	merged := flow.Merge(ctx, srcs...)
	next := map[string]int{}
	for m, err := range wesos.All(ctx, merged) {
		if err != nil {
			t.Fatal(err)
		}
		p, err := io.ReadAll(m.Body)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.SplitN(string(p), ":", 3)
		if len(parts) != 3 || len(parts[2]) != 20000 || parts[1] != fmt.Sprint(next[parts[0]]) {
			t.Fatalf("unexpected message %.40q (next from %s is %d)", p, parts[0], next[parts[0]])
		}
		next[parts[0]]++
	}
	for i := range sockets {
		if n := next[string(rune('a'+i))]; n != perSocket {
			t.Fatalf("socket %c: %d messages, want %d", 'a'+i, n, perSocket)
		}
	}
}

// roomServer serves rooms: a client's first message lists the rooms it
// joins ("0,2"), and each message after it starts with the room it is for
// and goes to every other member of that room.
func roomServer(rooms []*ws.Group, opts *ws.AcceptOptions) *ws.Server {
	return ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
		_, join, err := c.Read(ctx)
		if err != nil {
			return err
		}
		for _, r := range strings.Split(string(join), ",") {
			var i int
			if _, err := fmt.Sscan(r, &i); err != nil || i < 0 || i >= len(rooms) {
				return ws.CloseError{Code: 4004, Reason: "no such room"}
			}
			rooms[i].Add(c)
		}
		if len(rooms) == 1 {
			return wesos.Pipe(ctx, rooms[0].Except(c), c)
		}
		for {
			typ, p, err := c.Read(ctx)
			if err != nil {
				return err
			}
			if len(p) == 0 || p[0] < '0' || int(p[0]-'0') >= len(rooms) {
				return ws.CloseError{Code: 4004, Reason: "no such room"}
			}
			if err := rooms[p[0]-'0'].Except(c).Send(ctx, ws.Message{Type: typ, Body: bytes.NewReader(p)}); err != nil {
				return err
			}
		}
	}, opts)
}

// Rooms: 3 Groups, 30 clients each in 1 to 3 of them, 200 messages from
// each client. Every member gets exactly the messages the other members of
// its rooms sent to those rooms (never its own: Except), and all members of
// a room get the room's messages in one order.
func TestPipelineRooms(t *testing.T) {
	const nrooms, nclients, perClient = 3, 30, 200
	rooms := make([]*ws.Group, nrooms)
	for i := range rooms {
		rooms[i] = ws.NewGroup(nil)
	}
	srv := roomServer(rooms, nil)
	url := startServer(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Client i is in rooms i%3, and (i/3)%3 and (i/9)%3 as well when they
	// differ: 1, 2 or 3 rooms.
	in := make([][]int, nclients)
	members := make([]int, nrooms)
	for i := range in {
		for _, r := range []int{i % 3, (i / 3) % 3, (i / 9) % 3} {
			if !slices.Contains(in[i], r) {
				in[i] = append(in[i], r)
				members[r]++
			}
		}
	}
	conns := make([]*ws.Conn, nclients)
	for i := range conns {
		conns[i] = dial(t, ctx, url)
		var join []string
		for _, r := range in[i] {
			join = append(join, fmt.Sprint(r))
		}
		if err := conns[i].Write(ctx, ws.Text, []byte(strings.Join(join, ","))); err != nil {
			t.Fatal(err)
		}
	}
	for r := range rooms {
		waitUntil(t, func() string {
			if got := rooms[r].Len(); got != members[r] {
				return fmt.Sprintf("room %d has %d members, want %d", r, got, members[r])
			}
			return ""
		})
	}

	// What each client should get: per room, the messages of the others.
	want := make([]int, nclients)
	sentTo := make([][]int, nclients) // messages client i sends to each room
	for i := range nclients {
		sentTo[i] = make([]int, nrooms)
		for k := range perClient {
			sentTo[i][in[i][k%len(in[i])]]++
		}
	}
	for i := range nclients {
		for _, r := range in[i] {
			for j := range nclients {
				if j != i && slices.Contains(in[j], r) {
					want[i] += sentTo[j][r]
				}
			}
		}
	}
	got := make([][]string, nclients)
	var wg sync.WaitGroup
	errs := make(chan error, 2*nclients)
	for i, c := range conns {
		wg.Go(func() {
			for range want[i] {
				_, p, err := c.Read(ctx)
				if err != nil {
					errs <- fmt.Errorf("client %d after %d of %d messages: %w", i, len(got[i]), want[i], err)
					return
				}
				got[i] = append(got[i], string(p))
			}
		})
		wg.Go(func() {
			for k := range perClient {
				msg := fmt.Sprintf("%d from %d #%d", in[i][k%len(in[i])], i, k)
				if err := c.Write(ctx, ws.Text, []byte(msg)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	// Per room and client: the room's messages, in the order received.
	byRoom := make([][][]string, nclients)
	for i := range nclients {
		byRoom[i] = make([][]string, nrooms)
		last := make(map[[2]int]int) // per sender and room: its last message number
		for _, m := range got[i] {
			var r, from, k int
			if _, err := fmt.Sscanf(m, "%d from %d #%d", &r, &from, &k); err != nil {
				t.Fatalf("client %d got %q", i, m)
			}
			if from == i || !slices.Contains(in[i], r) || !slices.Contains(in[from], r) {
				t.Fatalf("client %d (rooms %v) got %q", i, in[i], m)
			}
			if prev, ok := last[[2]int{from, r}]; ok && k <= prev {
				t.Fatalf("client %d got %q after #%d of the same sender to the same room", i, m, prev)
			}
			last[[2]int{from, r}] = k
			byRoom[i][r] = append(byRoom[i][r], m)
		}
	}
	// One order per room: any two members agree on the order of the
	// messages both got (all but each one's own).
	for r := range nrooms {
		for i := range nclients {
			for j := i + 1; j < nclients; j++ {
				if !slices.Contains(in[i], r) || !slices.Contains(in[j], r) {
					continue
				}
				a := slices.DeleteFunc(slices.Clone(byRoom[i][r]), func(m string) bool { return strings.Contains(m, fmt.Sprintf(" from %d #", j)) })
				b := slices.DeleteFunc(slices.Clone(byRoom[j][r]), func(m string) bool { return strings.Contains(m, fmt.Sprintf(" from %d #", i)) })
				if !slices.Equal(a, b) {
					t.Fatalf("room %d: clients %d and %d got its messages in different orders", r, i, j)
				}
			}
		}
	}
	for _, c := range conns {
		c.Close(ws.StatusNormalClosure, "")
	}
	for r := range rooms {
		waitUntil(t, func() string {
			if n := rooms[r].Len(); n != 0 {
				return fmt.Sprintf("room %d keeps %d closed connections", r, n)
			}
			return ""
		})
	}
}

// A room member that stops reading is dropped with 1008 while the others
// get every message, relayed with wesos.Pipe(ctx, room.Except(c), c).
func TestPipelineRoomSlowMember(t *testing.T) {
	room := ws.NewGroup(&ws.GroupOptions{Queue: 1 << 20, SlowTimeout: 2 * time.Second})
	// The close timeout is long for the reason TestPipelineSlowClient gives.
	url := startServer(t, roomServer([]*ws.Group{room}, &ws.AcceptOptions{CloseTimeout: 3 * time.Minute}))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	join := func(c *ws.Conn) *ws.Conn {
		if err := c.Write(ctx, ws.Text, []byte("0")); err != nil {
			t.Fatal(err)
		}
		return c
	}
	sender, fast := join(dial(t, ctx, url)), join(dial(t, ctx, url))
	stalled, _, err := ws.Dial(ctx, url, &ws.DialOptions{
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var d net.Dialer
			nc, err := d.DialContext(ctx, network, addr)
			if err == nil {
				err = nc.(*net.TCPConn).SetReadBuffer(64 << 10) // see TestPipelineSlowClient
			}
			return nc, err
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.CloseNow()
	join(stalled)
	waitUntil(t, func() string {
		if got := room.Len(); got != 3 {
			return fmt.Sprintf("room has %d members, want 3", got)
		}
		return ""
	})

	const messages = 400
	payload := bytes.Repeat([]byte("x"), 64<<10) // 25 MiB in all: more than any socket buffer
	fastDone := make(chan error, 1)
	go func() {
		for i := range messages {
			_, p, err := fast.Read(ctx)
			if err == nil && binary.BigEndian.Uint32(p) != uint32(i) {
				err = fmt.Errorf("got %d", binary.BigEndian.Uint32(p))
			}
			if err != nil {
				fastDone <- fmt.Errorf("message %d: %w", i, err)
				return
			}
		}
		fastDone <- nil
	}()
	for i := range messages {
		binary.BigEndian.PutUint32(payload, uint32(i))
		if err := sender.Write(ctx, ws.Binary, payload); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-fastDone; err != nil {
		t.Fatal(err)
	}
	stalled.SetReadLimit(-1)
	var ce ws.CloseError
	for {
		if _, _, err := stalled.Read(ctx); err != nil {
			if !errors.As(err, &ce) {
				t.Fatalf("stalled member: %v, want a CloseError", err)
			}
			break
		}
	}
	if ce.Code != ws.StatusPolicyViolation || ce.Reason != "too slow" {
		t.Fatalf("stalled member closed with %v %q, want 1008 too slow", ce.Code, ce.Reason)
	}
	// The sender got none of its own messages: its next one is the close.
	sender.Close(ws.StatusNormalClosure, "")
	fast.Close(ws.StatusNormalClosure, "")
}
