package flow_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wesos/wesos"
	"github.com/wesos/wesos/flow"
	"go.uber.org/goleak"
)

// slowSink blocks every Send until release is closed (or the Send's ctx
// ends), and records what the Hub tells it through CloseWithError.
type slowSink struct {
	entered    chan int // each value, as its Send starts
	release    chan struct{}
	closedWith chan error

	mu  sync.Mutex
	got []int
}

func newSlowSink() *slowSink {
	return &slowSink{
		entered:    make(chan int, 100),
		release:    make(chan struct{}),
		closedWith: make(chan error, 1),
	}
}

func (s *slowSink) Send(ctx context.Context, v int) error {
	s.entered <- v
	select {
	case <-s.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	s.mu.Lock()
	s.got = append(s.got, v)
	s.mu.Unlock()
	return nil
}

func (s *slowSink) CloseWithError(err error) error {
	s.closedWith <- err
	return nil
}

func (s *slowSink) values() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

type drop struct {
	sub *flow.Subscription
	err error
}

// hubFixture is a Hub with a fast subscriber, whose deliveries the test
// waits for, and a slow one that holds value 0 in its Send and has a full
// queue (queueLen values).
type hubFixture struct {
	t        *testing.T
	hub      *flow.Hub[int]
	fast     chan int
	fastSub  *flow.Subscription
	slow     *slowSink
	slowSub  *flow.Subscription
	drops    chan drop
	queueLen int
	next     int // the next value to send
}

func newHubFixture(t *testing.T, opts flow.HubOptions) *hubFixture {
	f := &hubFixture{t: t, fast: make(chan int, 1000), slow: newSlowSink(), drops: make(chan drop, 10), queueLen: opts.QueueLen}
	opts.OnDrop = func(sub *flow.Subscription, err error) { f.drops <- drop{sub, err} }
	f.hub = flow.NewHub[int](&opts)
	f.fastSub = f.hub.Subscribe(wesos.SinkFunc[int](func(_ context.Context, v int) error {
		f.fast <- v
		return nil
	}))
	f.slowSub = f.hub.Subscribe(f.slow)
	f.send(context.Background())
	if v := <-f.slow.entered; v != 0 {
		t.Fatalf("slow subscriber got %d first, want 0", v)
	}
	for range opts.QueueLen {
		f.send(context.Background())
	}
	return f
}

// send sends the next value and waits until the fast subscriber has it.
func (f *hubFixture) send(ctx context.Context) error {
	f.t.Helper()
	v := f.next
	if err := f.hub.Send(ctx, v); err != nil {
		return err
	}
	f.next++
	if got := <-f.fast; got != v {
		f.t.Fatalf("fast subscriber got %d, want %d", got, v)
	}
	return nil
}

func TestHubDropSubscriber(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newHubFixture(t, flow.HubOptions{QueueLen: 2})
	defer f.hub.Close()

	for range 5 { // the first overflows the slow queue; the fast one gets all
		if err := f.send(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	<-f.slowSub.Done()
	if err := f.slowSub.Err(); err != flow.ErrSlowSubscriber {
		t.Fatalf("slow subscription ended with %v, want ErrSlowSubscriber", err)
	}
	if err := <-f.slow.closedWith; err != flow.ErrSlowSubscriber {
		t.Fatalf("slow sink closed with %v, want ErrSlowSubscriber", err)
	}
	if d := <-f.drops; d.sub != f.slowSub || d.err != flow.ErrSlowSubscriber {
		t.Fatalf("OnDrop(%p, %v), want OnDrop(%p, ErrSlowSubscriber)", d.sub, d.err, f.slowSub)
	}
	if got := f.slow.values(); len(got) != 0 {
		t.Fatalf("slow sink completed %v, want nothing (its queued values are discarded)", got)
	}
	if n := f.hub.Len(); n != 1 {
		t.Fatalf("Len = %d, want 1", n)
	}
	if f.fastSub.Err() != nil {
		t.Fatalf("fast subscription ended: %v", f.fastSub.Err())
	}
}

func TestHubDropValue(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newHubFixture(t, flow.HubOptions{QueueLen: 2, Policy: flow.DropValue})
	defer f.hub.Close()

	for range 5 { // 3..7 find the slow queue full
		if err := f.send(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.slowSub.Dropped(); n != 5 {
		t.Fatalf("Dropped = %d, want 5", n)
	}
	if n := f.hub.Len(); n != 2 {
		t.Fatalf("Len = %d, want 2: DropValue keeps the subscriber", n)
	}
	close(f.slow.release)
	for _, want := range []int{1, 2} {
		if v := <-f.slow.entered; v != want {
			t.Fatalf("slow subscriber got %d, want %d", v, want)
		}
	}
	if err := f.send(context.Background()); err != nil { // its queue is empty again
		t.Fatal(err)
	}
	for _, want := range []int{8} {
		if v := <-f.slow.entered; v != want {
			t.Fatalf("slow subscriber got %d, want %d", v, want)
		}
	}
	select {
	case <-f.slowSub.Done():
		t.Fatalf("slow subscription ended: %v", f.slowSub.Err())
	case d := <-f.drops:
		t.Fatalf("OnDrop called with %v", d.err)
	default:
	}
}

func TestHubBlockDropsAfterTimeout(t *testing.T) {
	defer goleak.VerifyNone(t)
	const timeout = 40 * time.Millisecond
	f := newHubFixture(t, flow.HubOptions{QueueLen: 2, Policy: flow.Block, BlockTimeout: timeout})
	defer f.hub.Close()

	start := time.Now()
	if err := f.send(context.Background()); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < timeout {
		t.Fatalf("Send returned after %v, before BlockTimeout %v", el, timeout)
	}
	<-f.slowSub.Done()
	if err := f.slowSub.Err(); err != flow.ErrSlowSubscriber {
		t.Fatalf("slow subscription ended with %v, want ErrSlowSubscriber", err)
	}
	if err := <-f.slow.closedWith; err != flow.ErrSlowSubscriber {
		t.Fatalf("slow sink closed with %v, want ErrSlowSubscriber", err)
	}
	for range 3 {
		if err := f.send(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHubBlockWaitsForRoom(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newHubFixture(t, flow.HubOptions{QueueLen: 2, Policy: flow.Block, BlockTimeout: time.Minute})
	defer f.hub.Close()

	go func() {
		time.Sleep(20 * time.Millisecond)
		close(f.slow.release)
	}()
	for range 5 {
		if err := f.send(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for want := 1; want < f.next; want++ {
		if v := <-f.slow.entered; v != want {
			t.Fatalf("slow subscriber got %d, want %d", v, want)
		}
	}
	if f.slowSub.Err() != nil || f.hub.Len() != 2 {
		t.Fatalf("slow subscription ended (%v) or Len = %d; want it kept", f.slowSub.Err(), f.hub.Len())
	}
}

func TestHubBlockHonoursCtx(t *testing.T) {
	defer goleak.VerifyNone(t)
	f := newHubFixture(t, flow.HubOptions{QueueLen: 2, Policy: flow.Block, BlockTimeout: time.Minute})
	defer f.hub.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := f.hub.Send(ctx, 99); err != context.DeadlineExceeded {
		t.Fatalf("Send = %v, want context.DeadlineExceeded", err)
	}
	if f.hub.Len() != 2 || f.slowSub.Err() != nil {
		t.Fatalf("Len = %d, slow Err = %v; the subscriber must stay", f.hub.Len(), f.slowSub.Err())
	}
	cancelled, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if err := f.hub.Send(cancelled, 100); err != context.Canceled {
		t.Fatalf("Send(cancelled) = %v, want context.Canceled", err)
	}
}

func TestHubSinkError(t *testing.T) {
	defer goleak.VerifyNone(t)
	drops := make(chan drop, 1)
	h := flow.NewHub[int](&flow.HubOptions{OnDrop: func(sub *flow.Subscription, err error) { drops <- drop{sub, err} }})
	defer h.Close()
	var got []int
	closed := make(chan error, 1)
	sink := &errSink{send: func(v int) error {
		if v == 1 {
			return errBoom
		}
		got = append(got, v)
		return nil
	}, closed: closed}
	sub := h.Subscribe(sink)
	for v := range 3 {
		if err := h.Send(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	<-sub.Done()
	if !errors.Is(sub.Err(), errBoom) {
		t.Fatalf("subscription ended with %v, want errBoom", sub.Err())
	}
	if err := <-closed; !errors.Is(err, errBoom) {
		t.Fatalf("sink closed with %v, want errBoom", err)
	}
	if d := <-drops; d.sub != sub || !errors.Is(d.err, errBoom) {
		t.Fatalf("OnDrop(%p, %v), want OnDrop(%p, errBoom)", d.sub, d.err, sub)
	}
	if !slices.Equal(got, []int{0}) || h.Len() != 0 {
		t.Fatalf("sink got %v, Len = %d; want [0], 0", got, h.Len())
	}
}

type errSink struct {
	send   func(int) error
	closed chan error
}

func (s *errSink) Send(_ context.Context, v int) error { return s.send(v) }
func (s *errSink) CloseWithError(err error) error      { s.closed <- err; return nil }

func TestHubUnsubscribe(t *testing.T) {
	defer goleak.VerifyNone(t)
	drops := make(chan drop, 1)
	h := flow.NewHub[int](&flow.HubOptions{OnDrop: func(sub *flow.Subscription, err error) { drops <- drop{sub, err} }})
	defer h.Close()

	slow := newSlowSink()
	sub := h.Subscribe(slow)
	if err := h.Send(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	<-slow.entered
	sub.Unsubscribe() // cancels the Send in progress
	<-sub.Done()
	sub.Unsubscribe()
	if sub.Err() != nil || h.Len() != 0 {
		t.Fatalf("after Unsubscribe: Err = %v, Len = %d; want nil, 0", sub.Err(), h.Len())
	}
	if err := h.Send(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-slow.closedWith:
		t.Fatalf("CloseWithError(%v) after Unsubscribe", err)
	case d := <-drops:
		t.Fatalf("OnDrop(%v) after Unsubscribe", d.err)
	case v := <-slow.entered:
		t.Fatalf("value %d delivered after Unsubscribe", v)
	default:
	}
}

func TestHubClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := flow.NewHub[int](nil)
	var _ wesos.Sink[int] = h

	slow := newSlowSink()
	subs := []*flow.Subscription{
		h.Subscribe(slow),
		h.Subscribe(wesos.SinkFunc[int](func(context.Context, int) error { return nil })),
	}
	if err := h.Send(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	<-slow.entered
	if err := h.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	for i, sub := range subs {
		select {
		case <-sub.Done():
		default:
			t.Fatalf("subscription %d not done after Close", i)
		}
		if sub.Err() != flow.ErrHubClosed {
			t.Fatalf("subscription %d ended with %v, want ErrHubClosed", i, sub.Err())
		}
	}
	select {
	case err := <-slow.closedWith:
		t.Fatalf("CloseWithError(%v) on Close; the caller owns the sinks", err)
	default:
	}
	if err := h.Send(context.Background(), 2); err != flow.ErrHubClosed {
		t.Fatalf("Send after Close = %v, want ErrHubClosed", err)
	}
	late := h.Subscribe(slow)
	<-late.Done()
	late.Unsubscribe()
	if late.Err() != flow.ErrHubClosed || h.Len() != 0 {
		t.Fatalf("Subscribe after Close: Err = %v, Len = %d; want ErrHubClosed, 0", late.Err(), h.Len())
	}
	if err := h.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
}

func TestHubOrderPerPublisher(t *testing.T) {
	defer goleak.VerifyNone(t)
	const publishers, values, subscribers = 4, 200, 3
	h := flow.NewHub[int](&flow.HubOptions{QueueLen: 16, Policy: flow.Block, BlockTimeout: time.Minute})
	got := make([][]int, subscribers) // each written by its subscriber's goroutine only
	all := make([]chan struct{}, subscribers)
	for i := range subscribers {
		all[i] = make(chan struct{})
		h.Subscribe(wesos.SinkFunc[int](func(_ context.Context, v int) error {
			got[i] = append(got[i], v)
			if len(got[i]) == publishers*values {
				close(all[i])
			}
			return nil
		}))
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for i := range values {
				if err := h.Send(context.Background(), p*values+i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	for i := range subscribers {
		select {
		case <-all[i]:
		case <-time.After(10 * time.Second):
			t.Fatalf("subscriber %d got %d values, want %d", i, len(got[i]), publishers*values)
		}
	}
	h.Close()
	for i, vs := range got {
		last := make([]int, publishers)
		for p := range last {
			last[p] = -1
		}
		for _, v := range vs {
			p, n := v/values, v%values
			if n != last[p]+1 {
				t.Fatalf("subscriber %d got publisher %d's value %d after %d", i, p, n, last[p])
			}
			last[p] = n
		}
	}
}

func TestHubConcurrentSubscribers(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := flow.NewHub[int](&flow.HubOptions{QueueLen: 4, Policy: flow.DropValue})
	stop := make(chan struct{})
	var pub sync.WaitGroup
	pub.Go(func() {
		for v := 0; ; v++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := h.Send(context.Background(), v); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				received := make(chan struct{})
				var once sync.Once
				sub := h.Subscribe(wesos.SinkFunc[int](func(context.Context, int) error {
					once.Do(func() { close(received) })
					return nil
				}))
				select {
				case <-received:
				case <-time.After(10 * time.Second):
					t.Error("a subscriber received nothing")
				}
				sub.Unsubscribe()
				<-sub.Done()
				if sub.Err() != nil {
					t.Errorf("subscription ended with %v, want nil after Unsubscribe", sub.Err())
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	pub.Wait()
	if n := h.Len(); n != 0 {
		t.Fatalf("Len = %d after every subscriber left, want 0", n)
	}
	// Close with subscribers still coming and going.
	var late sync.WaitGroup
	for range 4 {
		late.Go(func() {
			sub := h.Subscribe(wesos.SinkFunc[int](func(context.Context, int) error { return nil }))
			<-sub.Done() // ended by Close, whichever came first
		})
	}
	h.Close()
	late.Wait()
}
