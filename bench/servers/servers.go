// Package servers holds the same two servers — echo and broadcast — written
// idiomatically with each library under comparison, plus a naive raw-TCP
// echo as a reference point (not a limit: servers that batch writes beat it).
//
// Echo: every data message a connection sends comes back to it.
// Broadcast: every data message any connection sends goes to every open
// connection, the sender included.
//
// Every server is configured for conformance: pongs echo the ping payload,
// read limits fit the largest message of the scenario, no compression
// unless Config.Compress asks for it. A server that cannot compress (raw)
// refuses Compress.
package servers

import (
	"fmt"
	"net"
	"sort"
)

// Config is what every server is given.
type Config struct {
	Mode      string // "echo" or "broadcast"
	ReadLimit int64  // largest message a connection accepts, in bytes

	// Compress turns on permessage-deflate where the client offers it, with
	// each library's own settings for no context takeover at
	// flate.BestSpeed (the compressed scenarios). Off, no server negotiates
	// it.
	Compress bool
}

// ServeFunc serves cfg on ln until ln fails.
type ServeFunc func(ln net.Listener, cfg Config) error

var registry = map[string]ServeFunc{}

func register(name string, f ServeFunc) { registry[name] = f }

// Serve runs the server of library lib on ln.
func Serve(lib string, ln net.Listener, cfg Config) error {
	f, ok := registry[lib]
	if !ok {
		return fmt.Errorf("unknown library %q (have %v)", lib, Names())
	}
	if cfg.Mode != "echo" && cfg.Mode != "broadcast" {
		return fmt.Errorf("unknown mode %q", cfg.Mode)
	}
	if cfg.Compress && lib == "raw" {
		return fmt.Errorf("raw: no compression")
	}
	return f(ln, cfg)
}

// Names lists the libraries.
func Names() []string {
	var ns []string
	for n := range registry {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}
