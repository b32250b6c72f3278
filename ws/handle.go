package ws

import (
	"errors"
	"sync"
)

// Handles that cannot go stale.
//
// A message Body and a Writer are handles on state the Conn reuses from one
// message to the next. Each carries the generation of the message it was
// given out for; once the Conn has moved on (the next Next, Reader or Read;
// the writer's Close), the generation no longer matches and the handle fails
// with an error instead of acting on a later message.
//
// A handle is two words. Giving each message a new one without an
// allocation per message: handles are cut from chunks of handleChunkLen, and
// a chunk is never reused (a stale handle must never alias a fresh one), so
// an allocation is made once per handleChunkLen messages, process-wide, and
// a chunk goes to the garbage collector once every handle in it is dropped.
// A Conn holds no handle of its own, so an idle connection holds none.

// handle is a message of a Conn: its generation (Conn.rgen for a received
// message, Conn.wgen for one being written).
type handle struct {
	c   *Conn
	gen uint64
}

// handleChunkLen is how many handles one allocation holds.
const handleChunkLen = 64

type handleChunk struct {
	next int
	h    [handleChunkLen]handle
}

// handleChunks holds chunks with handles left to give.
var handleChunks sync.Pool

// newHandle returns a handle, never given out before, on generation gen of c.
func newHandle(c *Conn, gen uint64) *handle {
	ch, _ := handleChunks.Get().(*handleChunk)
	if ch == nil {
		ch = new(handleChunk)
	}
	h := &ch.h[ch.next]
	ch.next++
	if ch.next < handleChunkLen {
		handleChunks.Put(ch)
	}
	h.c, h.gen = c, gen
	return h
}

// errStaleBody is what the Body of a message returns once its Conn has
// moved on to the next message.
var errStaleBody = errors.New("ws: message body read after the next message was requested (a Body is valid until the next Next, Reader or Read)")

// errWriterClosed is what a message writer returns once it was closed.
var errWriterClosed = errors.New("ws: message writer used after Close")
