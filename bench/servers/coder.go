package servers

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// coder/websocket: the echo of its examples (Reader, Writer, io.Copy) and the
// subscriber pattern of its chat example (a buffered channel per subscriber,
// a write loop with a per-message timeout, slow subscribers closed). Pings
// are answered with their payload inside reads; the read limit (32 KiB by
// default) is raised; compression is disabled explicitly.
func init() {
	register("coder", func(ln net.Listener, cfg Config) error {
		opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
		if cfg.Compress {
			opts.CompressionMode = websocket.CompressionNoContextTakeover // flate.BestSpeed
		}
		if cfg.Mode == "echo" {
			return (&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, opts)
				if err != nil {
					return
				}
				defer c.CloseNow()
				c.SetReadLimit(cfg.ReadLimit)
				ctx := r.Context()
				for {
					typ, rd, err := c.Reader(ctx)
					if err != nil {
						return
					}
					wr, err := c.Writer(ctx, typ)
					if err != nil {
						return
					}
					if _, err := io.Copy(wr, rd); err != nil {
						return
					}
					if err := wr.Close(); err != nil {
						return
					}
				}
			})}).Serve(ln)
		}
		cs := &coderChat{subs: make(map[*coderSub]struct{})}
		return (&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := websocket.Accept(w, r, opts)
			if err != nil {
				return
			}
			defer c.CloseNow()
			c.SetReadLimit(cfg.ReadLimit)
			ctx, cancel := context.WithCancel(r.Context())
			defer cancel()
			s := &coderSub{
				msgs:      make(chan coderMsg, 256),
				closeSlow: func() { c.Close(websocket.StatusPolicyViolation, "connection too slow to keep up with messages") },
			}
			cs.add(s)
			defer cs.remove(s)
			go func() {
				defer cancel()
				for {
					typ, b, err := c.Read(ctx)
					if err != nil {
						return
					}
					cs.publish(coderMsg{typ, b})
				}
			}()
			for {
				select {
				case m := <-s.msgs:
					if err := coderWriteTimeout(ctx, 5*time.Second, c, m); err != nil {
						return
					}
				case <-ctx.Done():
					return
				}
			}
		})}).Serve(ln)
	})
}

type coderMsg struct {
	typ  websocket.MessageType
	data []byte
}

type coderSub struct {
	msgs      chan coderMsg
	closeSlow func()
}

type coderChat struct {
	mu   sync.Mutex
	subs map[*coderSub]struct{}
}

func (cs *coderChat) add(s *coderSub) {
	cs.mu.Lock()
	cs.subs[s] = struct{}{}
	cs.mu.Unlock()
}

func (cs *coderChat) remove(s *coderSub) {
	cs.mu.Lock()
	delete(cs.subs, s)
	cs.mu.Unlock()
}

func (cs *coderChat) publish(m coderMsg) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for s := range cs.subs {
		select {
		case s.msgs <- m:
		default:
			go s.closeSlow()
		}
	}
}

func coderWriteTimeout(ctx context.Context, timeout time.Duration, c *websocket.Conn, m coderMsg) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Write(ctx, m.typ, m.data)
}
