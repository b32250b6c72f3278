package ws

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"time"
)

// errKeepAlive is the error reads return after keepalive found the peer dead.
var errKeepAlive = errors.New("ws: keepalive: no answer from the peer; connection closed")

// keepAlive pings a connection that has been silent for an interval and
// closes it when nothing arrives within the timeout after the ping. It runs
// on a timer, not a goroutine of its own, so an idle connection costs no
// stack; the timer stops when the connection closes.
type keepAlive struct {
	c        *Conn
	interval time.Duration
	timeout  time.Duration
	last     atomic.Int64 // when bytes last arrived (UnixNano)
	pingedAt atomic.Int64 // when the outstanding ping left, or 0
	timer    *time.Timer
	dead     atomic.Bool
}

// startKeepAlive sets c's keepAlive (connRare.ka) and starts its timer.
// Both and k.timer are set before the timer is armed (Reset), so that a
// tick that runs at once sees them.
func startKeepAlive(c *Conn, interval, timeout time.Duration) {
	if timeout <= 0 {
		timeout = interval
	}
	k := &keepAlive{c: c, interval: interval, timeout: timeout}
	k.last.Store(time.Now().UnixNano())
	c.rareState().ka = k
	k.timer = time.AfterFunc(time.Duration(math.MaxInt64), k.tick)
	k.timer.Reset(interval)
}

// alive notes that bytes arrived.
func (k *keepAlive) alive() { k.last.Store(time.Now().UnixNano()) }

func (k *keepAlive) tick() {
	c := k.c
	if c.isClosed() {
		return
	}
	now := time.Now().UnixNano()
	last := k.last.Load()
	if pinged := k.pingedAt.Load(); pinged != 0 {
		if last >= pinged {
			k.pingedAt.Store(0) // answered (or other traffic came)
		} else if now-pinged >= int64(k.timeout) {
			k.dead.Store(true)
			c.CloseNow()
			return
		} else {
			k.timer.Reset(time.Duration(pinged + int64(k.timeout) - now))
			return
		}
	}
	if silence := time.Duration(now - last); silence < k.interval {
		k.timer.Reset(k.interval - silence)
		return
	}
	k.pingedAt.Store(now)
	// A read waiting for many bytes of a large frame wakes at the first
	// byte from now on: a peer that trickles the frame is alive.
	c.wakeOnAnyByte()
	ctx, cancel := context.WithTimeout(context.Background(), k.timeout)
	var p [8]byte
	err := c.writeFrame(ctx, opPing, true, p[:])
	cancel()
	if err != nil && !c.isClosed() && ctx.Err() == nil {
		c.logDropped("sending a keepalive ping", err)
		c.CloseNow()
		return
	}
	// Look again after the interval (a pong that came by then lets the
	// next ping go an interval after it) or the timeout, whichever is
	// first.
	k.timer.Reset(time.Duration(now + int64(min(k.interval, k.timeout)) - time.Now().UnixNano()))
}

func (k *keepAlive) stop() {
	if k != nil {
		k.timer.Stop()
	}
}
