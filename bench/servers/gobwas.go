package servers

import (
	"io"
	"net"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// gobwas/ws: zero-copy upgrade on a raw net.Listener (no net/http), then the
// wsutil helpers of its README: ReadClientData (which answers pings with
// their payload and reassembles fragments) and WriteServerMessage. Broadcast
// compiles the frame once (ws.MustCompileFrame) and writes the same bytes to
// every connection, each behind its write mutex, from the reading goroutine.
func init() {
	register("gobwas", func(ln net.Listener, cfg Config) error {
		wsutil.SetMaxMessageSize(cfg.ReadLimit)
		if cfg.Compress {
			if cfg.Mode == "echo" {
				return acceptLoop(ln, gobwasDeflateEcho(cfg))
			}
			return acceptLoop(ln, gobwasDeflateBroadcast(cfg))
		}
		if cfg.Mode == "echo" {
			return acceptLoop(ln, func(nc net.Conn) {
				defer nc.Close()
				if _, err := ws.Upgrade(nc); err != nil {
					return
				}
				for {
					msg, op, err := wsutil.ReadClientData(nc)
					if err != nil {
						return
					}
					if err := wsutil.WriteServerMessage(nc, op, msg); err != nil {
						return
					}
				}
			})
		}
		var (
			mu    sync.RWMutex
			conns = map[*gobwasConn]struct{}{}
		)
		return acceptLoop(ln, func(nc net.Conn) {
			defer nc.Close()
			if _, err := ws.Upgrade(nc); err != nil {
				return
			}
			c := &gobwasConn{nc: nc}
			mu.Lock()
			conns[c] = struct{}{}
			mu.Unlock()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
			}()
			// Pongs go through the write mutex too.
			rw := struct {
				io.Reader
				io.Writer
			}{nc, c}
			for {
				msg, op, err := wsutil.ReadClientData(rw)
				if err != nil {
					return
				}
				frame := ws.MustCompileFrame(ws.NewFrame(op, true, msg))
				mu.RLock()
				for d := range conns {
					d.Write(frame)
				}
				mu.RUnlock()
			}
		})
	})
}

type gobwasConn struct {
	mu       sync.Mutex
	nc       net.Conn
	compress bool // negotiated permessage-deflate (compressed broadcast)
}

func (c *gobwasConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nc.Write(p)
}

// acceptLoop runs handle in a goroutine for every accepted connection.
func acceptLoop(ln net.Listener, handle func(net.Conn)) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return err
		}
		go handle(nc)
	}
}
