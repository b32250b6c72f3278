package natsbus

import (
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wesos/wesos/ws"
)

// While its connection is away, a Topic's Sends are held by nats.go up to
// its reconnect buffer, then fail with an error that is also logged and
// counted; once reconnected, what was held is delivered.
func TestSendWhileDisconnected(t *testing.T) {
	ctx := testContext(t)
	first := startNode(t, &NodeOptions{})
	port := first.Server().Addr().(*net.TCPAddr).Port
	addr := first.ClientURL()
	disconnected := make(chan struct{}, 1)
	reconnected := make(chan struct{}, 1)
	var logs logBuffer
	nc, err := Connect(addr, logs.logger(),
		nats.ReconnectBufSize(64<<10),
		nats.ReconnectWait(20*time.Millisecond),
		nats.DisconnectErrHandler(func(*nats.Conn, error) { signal(disconnected) }),
		nats.ReconnectHandler(func(*nats.Conn) { signal(reconnected) }),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	topic := subject(t, nc, "t.away", &SubjectOptions{ErrorLog: logs.logger()})

	// The server goes away.
	first.Close()
	<-disconnected

	// Sends are held, up to 64 KiB, then fail.
	msg := strings.Repeat("x", 1000)
	held := 0
	var sendErr error
	for held < 1000 {
		sendErr = topic.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader(fmt.Sprint(held, msg))})
		if sendErr != nil {
			break
		}
		held++
	}
	if !errors.Is(sendErr, nats.ErrReconnectBufExceeded) {
		t.Fatalf("after %d held Sends: %v, want nats.ErrReconnectBufExceeded", held, sendErr)
	}
	if held < 30 || held > 64 {
		t.Errorf("%d Sends of 1 KB were held in a 64 KiB buffer", held)
	}
	st := topic.Stats()
	if st.SendErrors != 1 || st.Buffered != int64(held) {
		t.Errorf("stats %+v, want 1 send error and %d buffered", st, held)
	}
	if !strings.Contains(logs.String(), "publish failed") {
		t.Errorf("the failed Send was not logged: %s", logs.String())
	}

	// The server is back, on the same port: the connection resubscribes
	// and sends what it held, which comes back through the subscription.
	startNode(t, &NodeOptions{Port: port})
	<-reconnected
	for i := range held {
		m, err := topic.Next(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		b, _ := io.ReadAll(m.Body)
		if want := fmt.Sprint(i, msg); string(b) != want {
			t.Fatalf("message %d: got %.20q…, want %.20q…", i, b, want)
		}
	}
	if err := topic.Send(ctx, ws.Message{Type: ws.Text, Body: strings.NewReader("again")}); err != nil {
		t.Fatal(err)
	}
	for {
		m, err := topic.Next(ctx)
		if errors.Is(err, ErrLost) {
			// The failed Send took a number: the receiver sees the gap.
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if b, _ := io.ReadAll(m.Body); string(b) == "again" {
			break
		}
		t.Fatal("an unexpected message")
	}
	if !strings.Contains(logs.String(), "publishing again") {
		t.Errorf("no log line of the recovery: %s", logs.String())
	}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
