package servers

import (
	"net"

	"github.com/lxzan/gws"
)

// lxzan/gws: its own server (gws.NewServer(...).RunListener, the Quick Start)
// with an event handler. Echo enables ParallelEnabled, as its Best Practice
// does; broadcast uses gws.NewBroadcaster over a ConcurrentMap of
// connections (frame encoded once, queued on each connection's write queue),
// as its README shows. The built-in OnPing answers with an EMPTY pong, so
// OnPing is overridden to echo the payload. Compression is off by default.
func init() {
	register("gws", func(ln net.Listener, cfg Config) error {
		limit := int(cfg.ReadLimit)
		opt := &gws.ServerOption{
			ReadMaxPayloadSize:  limit,
			WriteMaxPayloadSize: limit,
		}
		if cfg.Compress {
			// Defaults: no context takeover, flate.BestSpeed
			// (klauspost/compress), messages under 512 B uncompressed.
			opt.PermessageDeflate = gws.PermessageDeflate{Enabled: true}
		}
		if cfg.Mode == "echo" {
			opt.ParallelEnabled = true
			return gws.NewServer(&gwsEcho{}, opt).RunListener(ln)
		}
		return gws.NewServer(&gwsBroadcast{conns: gws.NewConcurrentMap[*gws.Conn, struct{}]()}, opt).RunListener(ln)
	})
}

type gwsEcho struct{ gws.BuiltinEventHandler }

func (gwsEcho) OnPing(socket *gws.Conn, payload []byte) { _ = socket.WritePong(payload) }

func (gwsEcho) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	_ = socket.WriteMessage(message.Opcode, message.Bytes())
}

type gwsBroadcast struct {
	gws.BuiltinEventHandler
	conns *gws.ConcurrentMap[*gws.Conn, struct{}]
}

func (h *gwsBroadcast) OnOpen(socket *gws.Conn) { h.conns.Store(socket, struct{}{}) }

func (h *gwsBroadcast) OnClose(socket *gws.Conn, err error) { h.conns.Delete(socket) }

func (h *gwsBroadcast) OnPing(socket *gws.Conn, payload []byte) { _ = socket.WritePong(payload) }

func (h *gwsBroadcast) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	b := gws.NewBroadcaster(message.Opcode, message.Bytes())
	defer b.Close()
	h.conns.Range(func(c *gws.Conn, _ struct{}) bool {
		_ = b.Broadcast(c)
		return true
	})
}
