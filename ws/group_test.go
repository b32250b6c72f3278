package ws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"weak"
)

// groupPair returns the two ends of an in-memory connection (syncPair: a
// write waits until the other end reads it, so a member that does not read
// stalls at once), server first, with a short close timeout.
func groupPair(t testing.TB) (srv, cli *Conn) {
	t.Helper()
	cli, srv = syncPair(t, connConfig{closeTimeout: 200 * time.Millisecond})
	return srv, cli
}

// readMsgs reads n messages from c, as strings.
func readMsgs(ctx context.Context, c *Conn, n int) ([]string, error) {
	var got []string
	for range n {
		_, b, err := c.Read(ctx)
		if err != nil {
			return got, err
		}
		got = append(got, string(b))
	}
	return got, nil
}

// errReader fails every read: a body Send must not touch.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("the body was read") }

// TestGroupBasics: Add, Len, Send, Except and Remove, and a Group with no
// members that returns at once without reading the body.
func TestGroupBasics(t *testing.T) {
	ctx := testCtx(t)
	g := NewGroup(nil)
	if err := g.Send(ctx, Message{Type: Text, Body: errReader{}}); err != nil {
		t.Fatalf("Send to no members: %v", err)
	}
	var srvs, clis [3]*Conn
	for i := range srvs {
		srvs[i], clis[i] = groupPair(t)
		g.Add(srvs[i])
		g.Add(srvs[i]) // twice: still one member
	}
	if n := g.Len(); n != 3 {
		t.Fatalf("Len %d, want 3", n)
	}
	if err := g.Send(ctx, Message{Type: Text, Body: strings.NewReader("to all")}); err != nil {
		t.Fatal(err)
	}
	if err := g.Except(srvs[0]).Send(ctx, Message{Type: Binary, Body: bytes.NewReader([]byte("not to 0"))}); err != nil {
		t.Fatal(err)
	}
	g.Remove(srvs[1])
	g.Remove(srvs[1]) // not a member: nothing
	if n := g.Len(); n != 2 {
		t.Fatalf("Len after Remove %d, want 2", n)
	}
	if err := g.Send(ctx, Message{Type: Text, Body: strings.NewReader("after remove")}); err != nil {
		t.Fatal(err)
	}
	// A Group of only the excepted member has nobody to send to.
	solo := NewGroup(nil)
	solo.Add(srvs[2])
	if err := solo.Except(srvs[2]).Send(ctx, Message{Type: Text, Body: errReader{}}); err != nil {
		t.Fatalf("Send to nobody: %v", err)
	}
	want := [][]string{
		{"to all", "after remove"},
		{"to all", "not to 0"},
		{"to all", "not to 0", "after remove"},
	}
	for i, c := range clis {
		got, err := readMsgs(ctx, c, len(want[i]))
		if err != nil || fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Fatalf("member %d got %q (%v), want %q", i, got, err, want[i])
		}
	}
	// A failing body before anything went out sends nothing.
	if err := g.Send(ctx, Message{Type: Text, Body: errReader{}}); err == nil {
		t.Fatal("Send with a failing body: no error")
	}
}

// TestGroupOrderAcrossGroups: connections in several Groups, each Group
// sent to by several goroutines at once; every member gets exactly its
// Groups' messages, each Group's in the order its Send calls returned.
func TestGroupOrderAcrossGroups(t *testing.T) {
	ctx := testCtx(t)
	const groups, conns, senders, perSender = 3, 6, 2, 50
	gs := make([]*Group, groups)
	for i := range gs {
		gs[i] = NewGroup(nil)
	}
	type client struct {
		c      *Conn
		groups []int
	}
	clients := make([]client, conns)
	for i := range clients {
		s, c := groupPair(t)
		cl := client{c: c}
		for j := range groups {
			if (i+j)%2 == 0 || j == i%groups {
				gs[j].Add(s)
				cl.groups = append(cl.groups, j)
			}
		}
		clients[i] = cl
	}
	// What each Group accepted, in order: a sender records its message
	// under a lock held across Send, so the record is Send's order.
	var orderMu [groups]sync.Mutex
	var order [groups][]string
	var wg sync.WaitGroup
	for j := range groups {
		for s := range senders {
			wg.Go(func() {
				for k := range perSender {
					msg := fmt.Sprintf("g%d s%d m%d", j, s, k)
					orderMu[j].Lock()
					err := gs[j].Send(ctx, Message{Type: Text, Body: strings.NewReader(msg)})
					order[j] = append(order[j], msg)
					orderMu[j].Unlock()
					if err != nil {
						t.Error(err)
						return
					}
				}
			})
		}
	}
	results := make([][]string, conns)
	errs := make([]error, conns)
	var readers sync.WaitGroup
	for i, cl := range clients {
		readers.Go(func() {
			results[i], errs[i] = readMsgs(ctx, cl.c, len(cl.groups)*senders*perSender)
		})
	}
	wg.Wait()
	readers.Wait()
	for i, cl := range clients {
		if errs[i] != nil {
			t.Fatalf("client %d: %v", i, errs[i])
		}
		per := make(map[int][]string)
		for _, m := range results[i] {
			var j int
			fmt.Sscanf(m, "g%d", &j)
			per[j] = append(per[j], m)
		}
		for _, j := range cl.groups {
			if fmt.Sprint(per[j]) != fmt.Sprint(order[j]) {
				t.Fatalf("client %d, group %d: got %d messages, not in Send's order", i, j, len(per[j]))
			}
			delete(per, j)
		}
		if len(per) != 0 {
			t.Fatalf("client %d got messages of groups it is not in: %v", i, per)
		}
	}
}

// TestGroupMembersChangeMidMessage: while a message streams, a member is
// added (it gets the next message, not this one), one is removed (it
// still gets this one whole, and not the next) and one closes (the others
// still get the message whole).
func TestGroupMembersChangeMidMessage(t *testing.T) {
	ctx := testCtx(t)
	g := NewGroup(nil)
	stay, stayC := groupPair(t)
	removed, removedC := groupPair(t)
	closing, closingC := groupPair(t)
	late, lateC := groupPair(t)
	for _, c := range []*Conn{stay, removed, closing} {
		g.Add(c)
	}
	pr, pw := io.Pipe()
	sent := goAsync(t, func() error { return g.Send(ctx, Message{Type: Binary, Body: pr}) })
	part := bytes.Repeat([]byte("x"), 1000)
	write := func() {
		if _, err := pw.Write(part); err != nil {
			t.Fatal(err)
		}
	}
	// The first part is queued once Send has read it: the readers see
	// the message begin.
	write()
	readers := make(map[*Conn]func() []byte)
	for _, c := range []*Conn{stayC, removedC} {
		typ, r, err := c.Reader(ctx)
		if err != nil || typ != Binary {
			t.Fatalf("Reader: %v %v", typ, err)
		}
		readers[c] = goAsync(t, func() []byte {
			b, err := io.ReadAll(r)
			if err != nil {
				t.Errorf("body: %v", err)
			}
			return b
		})
	}
	g.Add(late)
	g.Remove(removed)
	closingC.CloseNow()
	closing.CloseNow()
	write()
	write()
	pw.Close()
	if err := sent(); err != nil {
		t.Fatal(err)
	}
	for _, read := range readers {
		if b := read(); len(b) != 3*len(part) {
			t.Fatalf("a member got %d bytes of a %d-byte message", len(b), 3*len(part))
		}
	}
	if n := g.Len(); n != 2 {
		t.Fatalf("Len %d, want 2 (stay, late)", n)
	}
	if err := g.Send(ctx, Message{Type: Text, Body: strings.NewReader("next")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Conn{stayC, lateC} {
		if got, err := readMsgs(ctx, c, 1); err != nil || got[0] != "next" {
			t.Fatalf("after the change: %q %v", got, err)
		}
	}
	// The removed member got nothing more: its next message is the close.
	closed := goAsync(t, func() error { return removed.Close(StatusNormalClosure, "") })
	if _, _, err := removedC.Read(ctx); !errors.Is(err, io.EOF) {
		t.Fatalf("removed member read %v, want its close", err)
	}
	if err := closed(); err != nil {
		t.Fatal(err)
	}
}

// TestGroupClosedConnLeaves: a Conn that closes leaves every Group it is
// in, by itself: Len, the member list, the membership record, and nothing
// keeps the Conn alive.
func TestGroupClosedConnLeaves(t *testing.T) {
	ctx := testCtx(t)
	a, b := NewGroup(nil), NewGroup(nil)
	const n = 10
	weaks := make([]weak.Pointer[Conn], n)
	func() {
		for i := range n {
			s, c := groupPair(t)
			a.Add(s)
			if i%2 == 0 {
				b.Add(s)
			}
			weaks[i] = weak.Make(s)
			// Something in flight: a message queued and written.
			done := goAsync(t, func() error {
				_, err := readMsgs(ctx, c, 1)
				return err
			})
			if err := a.Send(ctx, Message{Type: Text, Body: strings.NewReader("hello")}); err != nil {
				t.Fatal(err)
			}
			if err := done(); err != nil {
				t.Fatal(err)
			}
		}
	}()
	// A closed Conn joins nothing.
	s, _ := groupPair(t)
	s.CloseNow()
	a.Add(s)
	if n := a.Len(); n != 10 {
		t.Fatalf("a closed Conn was added: Len %d", n)
	}
	for i := range n {
		if c := weaks[i].Value(); c != nil {
			c.CloseNow()
		}
	}
	if a.Len() != 0 || b.Len() != 0 {
		t.Fatalf("after closing: Len %d and %d, want 0", a.Len(), b.Len())
	}
	for _, g := range []*Group{a, b} {
		g.mu.Lock()
		if len(g.members) != 0 || len(g.list)-g.gone != 0 || g.gone > len(g.list)/2 {
			t.Errorf("member list: %d members, %d listed, %d gone", len(g.members), len(g.list), g.gone)
		}
		g.mu.Unlock()
	}
	// The test's cleanups still hold each pair; drop the Conns from them
	// by checking collectability of a fresh set instead.
	var fresh []weak.Pointer[Conn]
	func() {
		for range n {
			a1, b1 := net.Pipe()
			cfg := connConfig{closeTimeout: 200 * time.Millisecond}
			s := newConn(a1, false, "", cfg, nil, nil)
			a.Add(s)
			b.Add(s)
			fresh = append(fresh, weak.Make(s))
			s.CloseNow()
			b1.Close()
		}
	}()
	memberships.Range(func(k, _ any) bool {
		for _, w := range fresh {
			if k == w.Value() {
				t.Errorf("a closed Conn still has a membership record")
			}
		}
		return true
	})
	waitFor(t, "closed Conns to be collected", func() bool {
		runtime.GC()
		for _, w := range fresh {
			if w.Value() != nil {
				return false
			}
		}
		return true
	})
}

// stalledGroup makes a Group of k members whose peers never read and one
// that does, with the given slow timeout and a small queue; it returns the
// group and the reading client.
func stalledGroup(t *testing.T, k int, slow time.Duration) (*Group, *Conn) {
	g := NewGroup(&GroupOptions{Queue: 1 << 10, SlowTimeout: slow})
	fast, fastC := groupPair(t)
	g.Add(fast)
	for range k {
		s, _ := groupPair(t)
		g.Add(s)
	}
	return g, fastC
}

// TestGroupStalledMembersOneDeadline: k members that stop reading cost one
// Send one SlowTimeout in all, not one each: every member still behind when
// it runs out is dropped at once, and the member that reads
// gets every message.
func TestGroupStalledMembersOneDeadline(t *testing.T) {
	for _, tc := range []struct {
		k    int
		slow time.Duration
	}{
		// Waiting for the members one after another takes k slow
		// timeouts; one deadline for all takes one. The bound sits at
		// k-1 of them, which leaves a loaded machine (k-2) timeouts of
		// margin: 7 s at 16 × 500 ms.
		{16, 500 * time.Millisecond},
		{100, 200 * time.Millisecond},
	} {
		t.Run(fmt.Sprint(tc.k), func(t *testing.T) {
			if testing.Short() && tc.k > 16 {
				t.Skip("skipped in -short: waits out a slow timeout with 100 members")
			}
			ctx := testCtx(t)
			g, fastC := stalledGroup(t, tc.k, tc.slow)
			big := bytes.Repeat([]byte("s"), 8<<10) // more than the queue: the stalled fall behind
			got := goAsync(t, func() error {
				msgs, err := readMsgs(ctx, fastC, 2)
				if err == nil && (len(msgs[0]) != len(big) || msgs[1] != "after") {
					err = fmt.Errorf("got %d and %q", len(msgs[0]), msgs[1])
				}
				return err
			})
			start := time.Now()
			if err := g.Send(ctx, Message{Type: Binary, Body: bytes.NewReader(big)}); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			// One wait is about one slow timeout; the bound is k-1 of
			// them, so only waits made one member at a time exceed it.
			if limit := time.Duration(tc.k-1) * tc.slow; took >= limit {
				t.Fatalf("Send with %d stalled members took %v, not under %v (slow timeout %v)", tc.k, took, limit, tc.slow)
			}
			if took < tc.slow {
				t.Fatalf("Send took %v, less than the slow timeout %v: nobody was waited for", took, tc.slow)
			}
			if err := g.Send(ctx, Message{Type: Text, Body: strings.NewReader("after")}); err != nil {
				t.Fatal(err)
			}
			if err := got(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the stalled members to leave", func() bool { return g.Len() == 1 })
		})
	}
}

// TestGroupRelayOneFrame: a message received in one frame and relayed
// through a Group (Send with the Body that Next returned) leaves as one
// final frame, not a data frame and an empty final one; compressed too.
func TestGroupRelayOneFrame(t *testing.T) {
	for _, compress := range []bool{false, true} {
		t.Run(fmt.Sprintf("compress=%v", compress), func(t *testing.T) {
			ctx := testCtx(t)
			var sdfl, cdfl, mdfl *deflateState
			if compress {
				p := deflateParams{serverNoTakeover: true, clientNoTakeover: true}
				opts := &CompressionOptions{}
				sdfl, cdfl, mdfl = newDeflateState(p, false, opts), newDeflateState(p, true, opts), newDeflateState(p, false, opts)
			}
			cfg := connConfig{closeTimeout: 200 * time.Millisecond}
			a, b := net.Pipe()
			from := newConn(a, false, "", cfg, sdfl, nil)
			sender := newConn(b, true, "", cfg, cdfl, nil)
			x, y := net.Pipe()
			member := newConn(x, false, "", cfg, mdfl, nil)
			t.Cleanup(func() {
				for _, c := range []*Conn{from, sender, member} {
					c.CloseNow()
				}
				y.Close()
			})
			g := NewGroup(nil)
			g.Add(member)
			payload := strings.Repeat("relayed in one frame. ", 100)
			relayed := goAsync(t, func() error {
				m, err := from.Next(ctx)
				if err == nil {
					err = g.Send(ctx, m)
				}
				return err
			})
			if err := sender.Write(ctx, Text, []byte(payload)); err != nil {
				t.Fatal(err)
			}
			y.SetReadDeadline(time.Now().Add(testTimeout))
			f, err := readWireFrame(y)
			if err != nil {
				t.Fatal(err)
			}
			if !f.fin || f.op != opText {
				t.Fatalf("the relayed message's first frame: %v, want a single final text frame", f)
			}
			if compress != (f.rsv == bitRSV1) {
				t.Fatalf("frame %v: compressed %v", f, compress)
			}
			if compress {
				got, err := dflInflate(f.payload)
				if err != nil || string(got) != payload {
					t.Fatalf("inflated %d bytes (%v)", len(got), err)
				}
			} else if string(f.payload) != payload {
				t.Fatalf("payload of %d bytes, want %d", len(f.payload), len(payload))
			}
			if err := relayed(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGroupDropMessages: under DropMessages a member that stops reading is
// neither waited for nor dropped: it misses the messages sent while it is
// behind, and gets the next one once it has caught up, while the member that
// reads (and keeps up with the sender) gets everything.
func TestGroupDropMessages(t *testing.T) {
	ctx := testCtx(t)
	// A slow timeout no test outlasts: Send returns only if it does not
	// wait for the stalled member.
	g := NewGroup(&GroupOptions{Queue: 1 << 10, Policy: DropMessages, SlowTimeout: time.Hour})
	fast, fastC := groupPair(t)
	stalled, stalledC := groupPair(t)
	g.Add(fast)
	g.Add(stalled)
	const n = 20
	big := bytes.Repeat([]byte("d"), 8<<10) // more than the queue: the stalled member falls behind at once
	caughtUp := func(c *Conn) func() bool {
		return func() bool {
			g.mu.Lock()
			defer g.mu.Unlock()
			return g.members[c].pending.Load() == 0
		}
	}
	for i := range n {
		// The member that reads keeps up: each message is written
		// before the next is sent (a member still being written a
		// message when the next starts is behind too, and misses it).
		waitFor(t, "the reading member to catch up", caughtUp(fast))
		big[0] = byte(i)
		read := goAsync(t, func() error {
			_, p, err := fastC.Read(ctx)
			if err == nil && (len(p) != len(big) || p[0] != byte(i)) {
				err = fmt.Errorf("message %d: %d bytes, number %d", i, len(p), p[0])
			}
			return err
		})
		if err := g.Send(ctx, Message{Type: Binary, Body: bytes.NewReader(big)}); err != nil {
			t.Fatal(err)
		}
		if err := read(); err != nil {
			t.Fatal(err)
		}
	}
	if g.Len() != 2 {
		t.Fatalf("Len %d: the stalled member was dropped", g.Len())
	}
	// The stalled member reads now: the message it was being written,
	// then, once caught up, the next one sent.
	_, p, err := stalledC.Read(ctx)
	if err != nil || len(p) != len(big) || p[0] != 0 {
		t.Fatalf("stalled member's first message: %d bytes (first %v), %v", len(p), p[:min(1, len(p))], err)
	}
	waitFor(t, "the stalled member to catch up", caughtUp(stalled))
	waitFor(t, "the reading member to catch up", caughtUp(fast))
	if err := g.Send(ctx, Message{Type: Text, Body: strings.NewReader("after")}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*Conn{stalledC, fastC} {
		if _, p, err := c.Read(ctx); err != nil || string(p) != "after" {
			t.Fatalf("next message: %q %v, want \"after\" (the stalled member missed the others)", p, err)
		}
	}
}
