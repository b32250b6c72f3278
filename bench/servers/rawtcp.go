package servers

import (
	"encoding/binary"
	"errors"
	"net"
)

// raw: a naive reference point, not a limit. A TCP echo with the same
// message boundaries as the WebSocket servers but none of the protocol: each
// message is a 4-byte big-endian length and its payload, unmasked. It writes
// back every read as it arrives, after walking the length prefixes to keep
// the framing honest: one read and one write per arrival, so a server that
// joins its writes can beat it. Echo only.
func init() {
	register("raw", func(ln net.Listener, cfg Config) error {
		if cfg.Mode != "echo" {
			return errors.New("raw: echo only")
		}
		return acceptLoop(ln, func(nc net.Conn) {
			defer nc.Close()
			buf := make([]byte, 16<<10) // grows to 1 MiB while reads fill it
			var left int64              // payload bytes left in the current message
			var hdr [4]byte
			hn := 0 // bytes of the next length prefix seen so far
			for {
				n, err := nc.Read(buf)
				if n > 0 {
					p := buf[:n]
					for len(p) > 0 {
						if left > 0 {
							k := int64(len(p))
							if k > left {
								k = left
							}
							left -= k
							p = p[k:]
							continue
						}
						k := copy(hdr[hn:], p)
						hn += k
						p = p[k:]
						if hn == 4 {
							hn = 0
							left = int64(binary.BigEndian.Uint32(hdr[:]))
							if left > cfg.ReadLimit {
								return
							}
						}
					}
					if _, werr := nc.Write(buf[:n]); werr != nil {
						return
					}
					if n == len(buf) && len(buf) < 1<<20 {
						buf = make([]byte, 2*len(buf))
					}
				}
				if err != nil {
					return
				}
			}
		})
	})
}
