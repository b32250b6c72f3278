package servers

import (
	"net"
	"net/http"

	"github.com/gorilla/websocket"
)

// gorilla/websocket: the echo of its examples/echo (ReadMessage, WriteMessage)
// and the hub of its examples/chat (one hub goroutine, a buffered send
// channel and a write pump per client), broadcasting a PreparedMessage so
// the frame is encoded once. The default ping handler already answers with
// the ping's payload; compression is off by default.
func init() {
	register("gorilla", func(ln net.Listener, cfg Config) error {
		var up websocket.Upgrader // zero value: reuses net/http's buffers, same-origin check
		// Compression: gorilla negotiates no context takeover only, level 1.
		up.EnableCompression = cfg.Compress
		if cfg.Mode == "echo" {
			return (&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := up.Upgrade(w, r, nil)
				if err != nil {
					return
				}
				defer c.Close()
				c.SetReadLimit(cfg.ReadLimit)
				for {
					mt, msg, err := c.ReadMessage()
					if err != nil {
						return
					}
					if err := c.WriteMessage(mt, msg); err != nil {
						return
					}
				}
			})}).Serve(ln)
		}
		h := &gHub{
			broadcast:  make(chan gMsg),
			register:   make(chan *gClient),
			unregister: make(chan *gClient),
			clients:    make(map[*gClient]bool),
		}
		go h.run()
		return (&http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return
			}
			cl := &gClient{hub: h, conn: c, send: make(chan *websocket.PreparedMessage, 256)}
			h.register <- cl
			go cl.writePump()
			cl.readPump(cfg.ReadLimit)
		})}).Serve(ln)
	})
}

type gMsg struct {
	mt   int
	data []byte
}

type gHub struct {
	clients    map[*gClient]bool
	broadcast  chan gMsg
	register   chan *gClient
	unregister chan *gClient
}

func (h *gHub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if h.clients[c] {
				delete(h.clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			pm, err := websocket.NewPreparedMessage(m.mt, m.data)
			if err != nil {
				continue
			}
			for c := range h.clients {
				select {
				case c.send <- pm:
				default: // too slow: drop it, as the chat example does
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

type gClient struct {
	hub  *gHub
	conn *websocket.Conn
	send chan *websocket.PreparedMessage
}

func (c *gClient) readPump(limit int64) {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	c.conn.SetReadLimit(limit)
	for {
		mt, msg, err := c.conn.ReadMessage()
		if err != nil {
			return
		}
		c.hub.broadcast <- gMsg{mt, msg}
	}
}

func (c *gClient) writePump() {
	defer c.conn.Close()
	for pm := range c.send {
		if err := c.conn.WritePreparedMessage(pm); err != nil {
			return
		}
	}
	c.conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
}
