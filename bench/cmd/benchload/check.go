package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/wesos/wesos/bench/internal/stats"
	"github.com/wesos/wesos/bench/internal/wsclient"
)

// probe is a connection with a reader goroutine that hands over pongs and
// messages.
type probe struct {
	c     *wsclient.Conn
	pongs chan []byte
	msgs  chan wsclient.Msg
	errc  chan error
}

func newProbe(t *wsclient.Template) (*probe, error) {
	c, err := wsclient.Dial(*addr, *raw, 64<<10, 5*time.Second)
	if err != nil {
		return nil, err
	}
	p := &probe{c: c, pongs: make(chan []byte, 4), msgs: make(chan wsclient.Msg, 16), errc: make(chan error, 1)}
	go func() {
		p.errc <- c.ReadLoop(wsclient.ReadOpts{T: t, Stride: 1,
			OnPong: func(b []byte) { p.pongs <- append([]byte(nil), b...) },
			OnMsg:  func(m wsclient.Msg) error { p.msgs <- m; return nil }})
	}()
	return p, nil
}

func (p *probe) msg(what string, want int64, seq uint64) error {
	select {
	case m := <-p.msgs:
		if m.Len != want || m.Seq != seq {
			return fmt.Errorf("%s: got %d bytes seq %d, want %d bytes seq %d", what, m.Len, m.Seq, want, seq)
		}
		return nil
	case err := <-p.errc:
		return fmt.Errorf("%s: %v", what, err)
	case <-time.After(5 * time.Second):
		return fmt.Errorf("%s: no message within 5 s", what)
	}
}

// runCheck checks, before any timing, that the server answers a ping with
// its payload and relays binary messages intact: small, 1 MiB and
// fragmented (every byte compared), and for broadcast that a message
// reaches another connection too.
func runCheck() *stats.Check {
	r := &stats.Check{}
	fail := func(err error) *stats.Check { r.Error = err.Error(); return r }
	t := wsclient.NewTemplate(1<<20, 0xc4ec)
	a, err := newProbe(t)
	if err != nil {
		return fail(err)
	}
	defer a.c.Close()
	var b *probe
	if *mode == "broadcast" {
		if b, err = newProbe(t); err != nil {
			return fail(err)
		}
		defer b.c.Close()
		time.Sleep(200 * time.Millisecond) // let the server register both
	}
	if !*raw {
		payload := make([]byte, 20)
		rand.Read(payload)
		if err := a.c.WriteControl(0x9, payload); err != nil {
			return fail(err)
		}
		select {
		case got := <-a.pongs:
			if !bytes.Equal(got, payload) {
				return fail(fmt.Errorf("ping with a %d-byte payload answered with a %d-byte pong %x (RFC 6455 §5.5.3: the pong must echo it)", len(payload), len(got), got))
			}
			r.Notes = append(r.Notes, "pong echoes the ping payload")
		case err := <-a.errc:
			return fail(fmt.Errorf("ping: %v", err))
		case <-time.After(3 * time.Second):
			return fail(fmt.Errorf("no pong within 3 s"))
		}
	}
	both := func(what string, want int64, seq uint64) error {
		if err := a.msg(what, want, seq); err != nil {
			return err
		}
		if b != nil {
			return b.msg(what+" (other connection)", want, seq)
		}
		return nil
	}
	if _, err := a.c.NC.Write(a.c.AppendMessage(nil, t, 64, now(), 1)); err != nil {
		return fail(err)
	}
	if err := both("64 B message", 64, 1); err != nil {
		return fail(err)
	}
	if err := a.c.WriteLarge(t, 1<<20, now(), 2); err != nil {
		return fail(err)
	}
	if err := both("1 MiB message", 1<<20, 2); err != nil {
		return fail(err)
	}
	r.Notes = append(r.Notes, "64 B and 1 MiB binary messages relayed intact")
	if !*raw {
		if err := a.c.WriteFragments(t, []int64{30, 1000, 3000}, now(), 3); err != nil {
			return fail(err)
		}
		if err := both("fragmented message", 4030, 3); err != nil {
			return fail(err)
		}
		r.Notes = append(r.Notes, "fragmented message reassembled intact")
	}
	r.OK = true
	return r
}
