package main

import (
	"time"

	"github.com/wesos/wesos/bench/internal/wsclient"
)

// codec is how a scenario's messages are written and read: binary messages
// from a Template (the default), or, with -deflate, JSON text compressed
// with permessage-deflate, inflated and checked whole on receipt.
type codec struct {
	size  int64
	t     *wsclient.Template
	tt    *wsclient.TextTemplate
	cache *wsclient.InflateCache // deflate broadcast: receivers verify a shared payload once
}

func newCodec(size int64, salt uint64) *codec {
	if *deflate {
		return &codec{size: size, tt: wsclient.NewTextTemplate(int(size), salt)}
	}
	return &codec{size: size, t: wsclient.NewTemplate(size, salt)}
}

// batchable reports whether messages go out batched (appended into one
// write) rather than one writev each.
func (k *codec) batchable() bool { return k.tt != nil || k.size <= batchMax }

func (k *codec) append(c *wsclient.Conn, b []byte, size int64, ts, seq uint64) []byte {
	if k.tt != nil {
		return c.AppendText(b, k.tt, ts, seq)
	}
	return c.AppendMessage(b, k.t, size, ts, seq)
}

// read runs c's read loop, calling onMsg for each checked message; size 0
// accepts any size (binary only).
func (k *codec) read(c *wsclient.Conn, size int64, onMsg func(wsclient.Msg) error) error {
	if k.tt != nil {
		return c.ReadText(wsclient.TextReadOpts{T: k.tt, Cache: k.cache, OnMsg: onMsg})
	}
	return c.ReadLoop(wsclient.ReadOpts{T: k.t, Size: size, OnMsg: onMsg})
}

// dial opens one connection of the scenario: with -deflate it offers
// permessage-deflate and fails if the server does not accept it.
func dial(bufSize int, timeout time.Duration) (*wsclient.Conn, error) {
	if *deflate {
		return wsclient.DialDeflate(*addr, bufSize, timeout)
	}
	return wsclient.Dial(*addr, *raw, bufSize, timeout)
}
