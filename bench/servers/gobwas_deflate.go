package servers

import (
	"bytes"
	"compress/flate"
	"io"
	"net"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// gobwas/ws with permessage-deflate, as its README shows it: a
// wsflate.Extension negotiates (DefaultParameters: no context takeover in
// either direction), a wsutil.Reader and Writer carry a wsflate.MessageState
// as their extension, and wsflate's Reader and Writer wrap compress/flate.
// The README's helper compresses at level 9; here the level is
// flate.BestSpeed, like every other server in the comparison. Echo streams
// each message back through the flate reader and writer (the README's loop,
// with a 64 KiB writer buffer so a message leaves in one frame); broadcast
// reads a message whole, compresses it once and writes the same compiled
// frame to every connection.

// gobwasUpgradeDeflate upgrades nc, negotiating permessage-deflate. ok is
// false when the upgrade failed.
func gobwasUpgradeDeflate(nc net.Conn) (compress, ok bool) {
	e := wsflate.Extension{Parameters: wsflate.DefaultParameters}
	u := ws.Upgrader{Negotiate: e.Negotiate}
	if _, err := u.Upgrade(nc); err != nil {
		return false, false
	}
	_, compress = e.Accepted()
	return compress, true
}

func newGobwasFlateReader() *wsflate.Reader {
	return wsflate.NewReader(nil, func(r io.Reader) wsflate.Decompressor { return flate.NewReader(r) })
}

func newGobwasFlateWriter() *wsflate.Writer {
	return wsflate.NewWriter(nil, func(w io.Writer) wsflate.Compressor {
		f, _ := flate.NewWriter(w, flate.BestSpeed)
		return f
	})
}

// gobwasNextData returns the header of the next data message, answering
// control frames on the way (pongs echo the ping payload, a close is
// answered and ends the loop with an error).
func gobwasNextData(rd *wsutil.Reader, ctl wsutil.FrameHandlerFunc) (ws.Header, error) {
	for {
		h, err := rd.NextFrame()
		if err != nil {
			return h, err
		}
		if h.OpCode.IsControl() {
			if err := ctl(h, rd); err != nil {
				return h, err
			}
			continue
		}
		if h.OpCode&(ws.OpText|ws.OpBinary) == 0 {
			if err := rd.Discard(); err != nil {
				return h, err
			}
			continue
		}
		return h, nil
	}
}

func gobwasDeflateEcho(cfg Config) func(net.Conn) {
	return func(nc net.Conn) {
		defer nc.Close()
		compress, ok := gobwasUpgradeDeflate(nc)
		if !ok {
			return
		}
		const state = ws.StateServerSide | ws.StateExtended
		var msg wsflate.MessageState
		ctl := wsutil.ControlFrameHandler(nc, ws.StateServerSide)
		rd := &wsutil.Reader{Source: nc, State: state, Extensions: []wsutil.RecvExtension{&msg},
			OnIntermediate: ctl, MaxMessageSize: cfg.ReadLimit}
		wr := wsutil.NewWriterSize(nc, state, 0, 64<<10)
		wr.SetExtensions(&msg)
		fr, fw := newGobwasFlateReader(), newGobwasFlateWriter()
		for {
			h, err := gobwasNextData(rd, ctl)
			if err != nil {
				return
			}
			wr.ResetOp(h.OpCode) // Reset would drop the extension
			if compress && msg.IsCompressed() {
				fr.Reset(rd)
				fw.Reset(wr)
				if _, err := io.Copy(fw, fr); err != nil {
					return
				}
				if err := fw.Close(); err != nil {
					return
				}
			} else if _, err := io.Copy(wr, rd); err != nil {
				return
			}
			if err := wr.Flush(); err != nil {
				return
			}
		}
	}
}

func gobwasDeflateBroadcast(cfg Config) func(net.Conn) {
	var (
		mu    sync.RWMutex
		conns = map[*gobwasConn]struct{}{}
	)
	return func(nc net.Conn) {
		defer nc.Close()
		compress, ok := gobwasUpgradeDeflate(nc)
		if !ok {
			return
		}
		c := &gobwasConn{nc: nc, compress: compress}
		mu.Lock()
		conns[c] = struct{}{}
		mu.Unlock()
		defer func() {
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
		}()
		const state = ws.StateServerSide | ws.StateExtended
		var msg wsflate.MessageState
		ctl := wsutil.ControlFrameHandler(c, ws.StateServerSide) // pongs go through the write mutex too
		rd := &wsutil.Reader{Source: nc, State: state, Extensions: []wsutil.RecvExtension{&msg},
			OnIntermediate: ctl, MaxMessageSize: cfg.ReadLimit}
		fr, fw := newGobwasFlateReader(), newGobwasFlateWriter()
		var in, z bytes.Buffer
		for {
			h, err := gobwasNextData(rd, ctl)
			if err != nil {
				return
			}
			in.Reset()
			src := io.Reader(rd)
			if msg.IsCompressed() {
				fr.Reset(rd)
				src = fr
			}
			if _, err := in.ReadFrom(src); err != nil {
				return
			}
			// Compressed once for every receiver that negotiated it.
			z.Reset()
			fw.Reset(&z)
			if _, err := fw.Write(in.Bytes()); err != nil {
				return
			}
			if err := fw.Close(); err != nil {
				return
			}
			zf := ws.NewFrame(h.OpCode, true, z.Bytes())
			if zf.Header, err = wsflate.SetBit(zf.Header); err != nil {
				return
			}
			zframe := ws.MustCompileFrame(zf)
			var plain []byte
			mu.RLock()
			for d := range conns {
				if d.compress {
					d.Write(zframe)
					continue
				}
				if plain == nil {
					plain = ws.MustCompileFrame(ws.NewFrame(h.OpCode, true, in.Bytes()))
				}
				d.Write(plain)
			}
			mu.RUnlock()
		}
	}
}
