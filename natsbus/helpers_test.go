package natsbus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/wesos/wesos/ws"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// timeout bounds every wait of these tests.
const timeout = 60 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return ctx
}

// logBuffer is a slog.Logger whose lines a test can look at.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// startNode starts a node that the test's cleanup closes.
func startNode(t testing.TB, opts *NodeOptions) *Node {
	t.Helper()
	var o NodeOptions
	if opts != nil {
		o = *opts
	}
	if o.ErrorLog == nil {
		o.ErrorLog = testLogger(t)
	}
	n, err := StartNode(testContext(t), &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// startCluster starts n nodes routed into one cluster.
func startCluster(t testing.TB, n int) []*Node {
	t.Helper()
	first := startNode(t, &NodeOptions{ClusterPort: -1})
	nodes := []*Node{first}
	for range n - 1 {
		nodes = append(nodes, startNode(t, &NodeOptions{Routes: []string{first.RouteURL()}}))
	}
	return nodes
}

// waitInterest waits until every node's server knows of subscribers to
// subject on want servers (its own included).
func waitInterest(t testing.TB, nodes []*Node, subject string, want int) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for _, n := range nodes {
		for n.Server().GlobalAccount().Interest(subject) < want {
			if time.Now().After(deadline) {
				t.Fatalf("node %s: interest in %q is %d, want %d", n.ClientURL(), subject, n.Server().GlobalAccount().Interest(subject), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

func subject(t testing.TB, nc *nats.Conn, name string, opts *SubjectOptions) *Topic {
	t.Helper()
	if opts == nil {
		opts = &SubjectOptions{}
	}
	if opts.ErrorLog == nil {
		opts.ErrorLog = testLogger(t)
	}
	s, err := Subject(nc, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// received is a message read whole.
type received struct {
	typ  ws.MessageType
	data []byte
	err  error // the Body's error, if not io.EOF
}

func next(t testing.TB, ctx context.Context, src *Topic) received {
	t.Helper()
	m, err := src.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	data, err := io.ReadAll(m.Body)
	return received{m.Type, data, err}
}

// pattern is n bytes that differ per message (seed) and per position.
func pattern(seed, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(seed*31 + i*7 + i>>8)
	}
	return b
}

// patternReader streams n bytes of pattern(seed, …) without holding them:
// byte i is pattern's, computed as it is read.
type patternReader struct {
	seed, n, off int
	step         int // bytes per Read at most (0: as many as asked)
}

func (r *patternReader) Read(p []byte) (int, error) {
	if r.off == r.n {
		return 0, io.EOF
	}
	if r.step > 0 && len(p) > r.step {
		p = p[:r.step]
	}
	k := min(len(p), r.n-r.off)
	for i := range k {
		j := r.off + i
		p[i] = byte(r.seed*31 + j*7 + j>>8)
	}
	r.off += k
	return k, nil
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }
