package ws

import (
	"net/http"
	"sync/atomic"
)

// Stats is a snapshot of the counters of a Server or a Group: what an
// operator of a broadcast server graphs. Counters count up from the
// creation of the Server or Group; Open is the value at the moment of the
// snapshot. A snapshot is taken without stopping the traffic, so counters
// read a moment apart may be a message apart.
//
// Bytes are payload bytes as framed on the wire: the compressed size for a
// compressed message, without frame headers.
//
// The fields a Group has no use for (Refused, HandshakeFailures,
// HandshakeTimeouts, MessagesIn, BytesIn, Closes) are zero in a Group's
// Stats.
type Stats struct {
	// Open is the number of connections open (a Server: those whose
	// handler runs, as Len) or of members (a Group, as Len).
	Open int

	// Accepted counts the requests a Server upgraded to connections; for a
	// Group, the members it took in (Add).
	Accepted uint64

	// Refused counts the requests a Server answered without upgrading
	// them, by reason.
	Refused Refusals

	// HandshakeFailures counts the requests that passed every check and
	// Admit but could not be upgraded: the connection could not be taken
	// over from net/http, or the handshake response could not be written
	// within the close timeout (through Serve, within the handshake's
	// timeout, or Shutdown closed the connection meanwhile).
	HandshakeFailures uint64

	// HandshakeTimeouts counts the connections to Serve whose request did
	// not arrive within DefaultReadHeaderTimeout (slow loris): they are
	// closed without an answer. (Through net/http, the http.Server's
	// ReadHeaderTimeout drops them before the Server sees them.)
	HandshakeTimeouts uint64

	// MessagesIn and BytesIn count the data messages a Server's
	// connections received, whole.
	MessagesIn, BytesIn uint64

	// MessagesOut and BytesOut count the data messages written: by a
	// Server's connections, whatever wrote them (the handlers, Server.Send,
	// a Group); by a Group, once for each member it delivered one to.
	MessagesOut, BytesOut uint64

	// Broadcasts and BroadcastBytes count the messages that Send (and
	// Except's Send) queued for at least one member, and their payload.
	Broadcasts, BroadcastBytes uint64

	// DroppedSlow counts the connections closed with 1008 "too slow" for
	// falling more than GroupOptions.Queue bytes behind; DroppedStalled,
	// the senders failed with 1008 for stalling in the middle of a message
	// (GroupOptions.StallTimeout). A Server's count includes its
	// connections that a Group dropped.
	DroppedSlow, DroppedStalled uint64

	// MissedMessages counts, under the DropMessages policy, each message
	// a member missed for being behind.
	MissedMessages uint64

	// Closes counts a Server's connections that have ended, by the code
	// of their close handshake: the code of the first close frame sent or
	// received, 1005 for a close frame without a code, 1006 when the
	// connection ended without any. A connection counts here once its
	// close handshake starts, and in Open until its handler returns.
	// Closes[code-1000] counts codes 1000 to 1015; the last element,
	// every other code (the application's 3000–4999). Closed(code) reads
	// it by code.
	Closes [closeOther + 1]uint64
}

// closeOther is the index in Stats.Closes of the codes outside 1000–1015.
const closeOther = 16

// Closed returns how many connections ended with code (for a code outside
// 1000–1015, how many ended with any such code).
func (s Stats) Closed(code StatusCode) uint64 {
	return s.Closes[closeSlot(code)]
}

// Refusals counts the requests a Server refused, by reason.
type Refusals struct {
	// Handshake counts requests that were not valid WebSocket handshakes
	// (answered 400, 405 or 426); through Serve, also those that were
	// not valid HTTP/1.1 requests (400, 431, 501, 505), which net/http
	// refuses before ServeHTTP sees them.
	Handshake uint64

	// Origin counts requests from an origin that is not allowed (403).
	Origin uint64

	// Admit counts the requests that AcceptOptions.Admit refused, by the
	// status they were answered with; nil when there are none.
	Admit map[int]uint64

	// ShuttingDown counts requests answered 503 because Shutdown had
	// begun.
	ShuttingDown uint64
}

// Total returns the number of requests refused for every reason.
func (r Refusals) Total() uint64 {
	n := r.Handshake + r.Origin + r.ShuttingDown
	for _, v := range r.Admit {
		n += v
	}
	return n
}

// closeSlot returns the index of code in Stats.Closes.
func closeSlot(code StatusCode) int {
	if code >= 1000 && code < 1000+closeOther {
		return int(code - 1000)
	}
	return closeOther
}

// Admit answers with a status from 300 to 599 (Refuse): one counter each,
// made at the first refusal (a Group, and a Server without Admit, never
// carry them).
const (
	minRefusal = 300
	maxRefusal = 599
)

type admitCounters [maxRefusal - minRefusal + 1]atomic.Uint64

// statStripes is how many sets of message counters a Server keeps. Each
// connection counts into one, given in turn as connections are made, so
// connections served on different cores seldom write the same cache line.
const statStripes = 8

var stripeTurn atomic.Uint32

// nextStripe returns the stripe of a new connection.
func nextStripe() uint8 { return uint8(stripeTurn.Add(1) % statStripes) }

// msgCounters counts messages, on a cache line of their own.
type msgCounters struct {
	in, bytesIn, out, bytesOut atomic.Uint64
	_                          [64 - 32]byte
}

// counters are the live counters behind Stats. The message counters are
// atomics spread over stripes; none takes a lock or allocates.
type counters struct {
	msgs [statStripes]msgCounters

	accepted, handshakeFailed          atomic.Uint64
	handshakeTimeouts                  atomic.Uint64
	badHandshake, origin, shuttingDown atomic.Uint64
	admit                              atomic.Pointer[admitCounters]
	broadcasts, broadcastBytes, missed atomic.Uint64
	droppedSlow, droppedStalled        atomic.Uint64
	closes                             [closeOther + 1]atomic.Uint64
}

// stripe returns the message counters of c.
func (st *counters) stripe(c *Conn) *msgCounters {
	return &st.msgs[c.stripe%statStripes]
}

// received counts a data message of n bytes that c received.
func (st *counters) received(c *Conn, n int64) {
	m := st.stripe(c)
	m.in.Add(1)
	m.bytesIn.Add(uint64(n))
}

// wrote counts msgs messages and n bytes written to c.
func (st *counters) wrote(c *Conn, msgs, n int) {
	m := st.stripe(c)
	if msgs > 0 {
		m.out.Add(uint64(msgs))
	}
	m.bytesOut.Add(uint64(n))
}

// refused counts a request that failed the handshake checks with status.
// The checks answer 403 only for the origin.
func (st *counters) refused(status int) {
	if st == nil {
		return
	}
	if status == http.StatusForbidden {
		st.origin.Add(1)
	} else {
		st.badHandshake.Add(1)
	}
}

// admitRefused counts a request that Admit refused with status.
func (st *counters) admitRefused(status int) {
	if st == nil {
		return
	}
	a := st.admit.Load()
	if a == nil {
		st.admit.CompareAndSwap(nil, new(admitCounters))
		a = st.admit.Load()
	}
	a[min(max(status, minRefusal), maxRefusal)-minRefusal].Add(1)
}

// upgraded counts a request that passed the handshake and Admit, which err
// says whether it became a connection.
func (st *counters) upgraded(err error) {
	if err != nil {
		st.handshakeFailed.Add(1)
	} else {
		st.accepted.Add(1)
	}
}

// closed counts a connection that ended with code.
func (st *counters) closed(code StatusCode) {
	if st != nil {
		st.closes[closeSlot(code)].Add(1)
	}
}

// snapshot returns the counters as Stats, open as Open.
func (st *counters) snapshot(open int) Stats {
	s := Stats{
		Open:              open,
		Accepted:          st.accepted.Load(),
		HandshakeFailures: st.handshakeFailed.Load(),
		HandshakeTimeouts: st.handshakeTimeouts.Load(),
		Refused: Refusals{
			Handshake:    st.badHandshake.Load(),
			Origin:       st.origin.Load(),
			ShuttingDown: st.shuttingDown.Load(),
		},
		Broadcasts:     st.broadcasts.Load(),
		BroadcastBytes: st.broadcastBytes.Load(),
		MissedMessages: st.missed.Load(),
		DroppedSlow:    st.droppedSlow.Load(),
		DroppedStalled: st.droppedStalled.Load(),
	}
	for i := range st.msgs {
		m := &st.msgs[i]
		s.MessagesIn += m.in.Load()
		s.BytesIn += m.bytesIn.Load()
		s.MessagesOut += m.out.Load()
		s.BytesOut += m.bytesOut.Load()
	}
	if a := st.admit.Load(); a != nil {
		for i := range a {
			if n := a[i].Load(); n > 0 {
				if s.Refused.Admit == nil {
					s.Refused.Admit = make(map[int]uint64)
				}
				s.Refused.Admit[minRefusal+i] = n
			}
		}
	}
	for i := range st.closes {
		s.Closes[i] = st.closes[i].Load()
	}
	return s
}

// Stats returns a snapshot of the Server's counters: connections open,
// accepted and refused, messages and bytes in and out, connections dropped
// by the broadcast, close codes. Counting costs the message paths an atomic
// add or two and no allocation; a snapshot reads each counter once and
// allocates only the Refused.Admit map, once Admit has refused a request.
func (s *Server) Stats() Stats {
	return s.stats.snapshot(s.Len())
}

// Stats returns a snapshot of the Group's counters: members, messages
// broadcast and delivered, members dropped or skipped as slow, senders
// failed as stalled. A snapshot reads each counter once and allocates
// nothing.
func (g *Group) Stats() Stats {
	return g.stats.snapshot(g.Len())
}
