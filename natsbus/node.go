package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// DefaultClusterName is the cluster name of a Node whose options leave it
// empty. Nodes route to one another only when their names are the same.
const DefaultClusterName = "wesos"

// NodeOptions configures an embedded NATS server. The zero value is a
// standalone server on a port the system picks, on 127.0.0.1.
type NodeOptions struct {
	// Host is the address the server listens on, for clients and routes
	// (default "127.0.0.1").
	Host string
	// Port is the client port; 0 lets the system pick one.
	Port int

	// ClusterPort is the port on which the server accepts routes from its
	// peers; -1 lets the system pick one. 0 means none when Routes is empty
	// (a standalone server), and a port the system picks otherwise.
	ClusterPort int
	// Routes are the peers' route URLs ("nats://127.0.0.1:6222"). The
	// server keeps trying to reach each one until it is shut down, so the
	// nodes of a cluster may start in any order, and a node that restarts
	// rejoins. Listing a node's own URL is harmless.
	Routes []string
	// ClusterName is the name every node of a cluster shares (default
	// DefaultClusterName).
	ClusterName string

	// Name is the server's name, which JetStream in a cluster needs to be
	// unique and stable across restarts (default: a new unique name).
	Name string

	// JetStream enables the server's JetStream (persistent streams),
	// storing its files under StoreDir (required then).
	JetStream bool
	StoreDir  string

	// ReadyTimeout bounds how long StartNode waits for the server to
	// accept connections when ctx has no deadline (default 10 s). A
	// JetStream node of a cluster is ready only once a majority of the
	// cluster's nodes is up: start them together, or give it longer.
	ReadyTimeout time.Duration

	// ErrorLog receives the server's notices, warnings and errors and the
	// node connection's events (nil: slog.Default()).
	ErrorLog *slog.Logger

	// ConnectOptions are added to the options of the node's own connection.
	ConnectOptions []nats.Option
}

// Node is a NATS server running in this process, and a connection to it.
type Node struct {
	srv  *server.Server
	nc   *nats.Conn
	log  *slog.Logger
	stop func() bool // stops the ctx watch

	closeOnce sync.Once
}

// StartNode starts a NATS server in this process and connects to it (in
// process, without a socket). The node runs until Close, or until ctx ends.
func StartNode(ctx context.Context, opts *NodeOptions) (*Node, error) {
	var o NodeOptions
	if opts != nil {
		o = *opts
	}
	log := o.ErrorLog
	if log == nil {
		log = slog.Default()
	}
	so := &server.Options{
		Host:      o.Host,
		Port:      o.Port,
		NoSigs:    true,
		JetStream: o.JetStream,
		StoreDir:  o.StoreDir,
	}
	if so.ServerName == "" {
		so.ServerName = "wesos-" + nuid.Next()
	}
	if so.Host == "" {
		so.Host = "127.0.0.1"
	}
	if so.Port <= 0 {
		so.Port = server.RANDOM_PORT
	}
	if o.JetStream && o.StoreDir == "" {
		return nil, errors.New("natsbus: a JetStream node needs a StoreDir")
	}
	if o.ClusterPort != 0 || len(o.Routes) > 0 {
		so.Cluster = server.ClusterOpts{Name: o.ClusterName, Host: so.Host, Port: o.ClusterPort}
		if so.Cluster.Name == "" {
			so.Cluster.Name = DefaultClusterName
		}
		if so.Cluster.Port <= 0 {
			so.Cluster.Port = server.RANDOM_PORT
		}
		for _, r := range o.Routes {
			u, err := url.Parse(r)
			if err != nil || u.Host == "" {
				return nil, fmt.Errorf("natsbus: bad route URL %q", r)
			}
			so.Routes = append(so.Routes, u)
		}
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("natsbus: nats-server: %w", err)
	}
	srv.SetLogger(serverLog{log.With("nats_server", srv.ID()[:6])}, false, false)
	srv.Start()
	wait := o.ReadyTimeout
	if wait <= 0 {
		wait = 10 * time.Second
	}
	if d, ok := ctx.Deadline(); ok {
		wait = time.Until(d)
	}
	if !srv.ReadyForConnections(wait) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsbus: nats-server not ready within %v", wait)
	}
	copts := append([]nats.Option{nats.InProcessServer(srv), nats.Name("wesos node")}, ConnectOptions(log)...)
	copts = append(copts, o.ConnectOptions...)
	nc, err := nats.Connect("", copts...)
	if err != nil {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("natsbus: connect to the node's server: %w", err)
	}
	n := &Node{srv: srv, nc: nc, log: log}
	n.stop = context.AfterFunc(ctx, func() { n.Close() })
	return n, nil
}

// Conn returns the node's own connection to its server.
func (n *Node) Conn() *nats.Conn { return n.nc }

// Server returns the nats-server, for what this package does not wrap.
func (n *Node) Server() *server.Server { return n.srv }

// ClientURL returns the URL on which other NATS clients reach the server.
func (n *Node) ClientURL() string { return n.srv.ClientURL() }

// RouteURL returns the URL peers list in their Routes to reach this node,
// or "" for a standalone node.
func (n *Node) RouteURL() string {
	a := n.srv.ClusterAddr()
	if a == nil {
		return ""
	}
	return "nats://" + net.JoinHostPort(a.IP.String(), strconv.Itoa(a.Port))
}

// Close closes the node's connection, then shuts the server down and waits
// for it to have stopped. The node's clients elsewhere reconnect to the
// cluster's other nodes, or to this one when it is back.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.stop()
		n.nc.Close()
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
	})
	return nil
}

// Connect connects to an external NATS server or cluster (url may list
// several, comma-separated) with ConnectOptions(log) and then opts.
func Connect(url string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	return nats.Connect(url, append(ConnectOptions(log), opts...)...)
}

// ConnectOptions are the options this package connects with: reconnect
// for ever (nats.go's reconnect, with its buffer of what is published
// meanwhile), and every event of the connection in log — disconnects,
// reconnects, the close, and asynchronous errors such as a slow consumer.
func ConnectOptions(log *slog.Logger) []nats.Option {
	return []nats.Option{
		nats.MaxReconnects(-1),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if !nc.IsClosed() {
				log.Warn("natsbus: disconnected from NATS; reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("natsbus: reconnected to NATS", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(nc *nats.Conn) {
			if err := nc.LastError(); err != nil {
				log.Warn("natsbus: NATS connection closed", "err", err)
			}
		}),
		nats.ErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Warn("natsbus: NATS error", "subject", subject, "err", err)
		}),
	}
}

// serverLog sends nats-server's log to a slog.Logger.
type serverLog struct{ l *slog.Logger }

func (s serverLog) Noticef(format string, v ...any) { s.l.Debug(fmt.Sprintf(format, v...)) }
func (s serverLog) Warnf(format string, v ...any)   { s.l.Warn(fmt.Sprintf(format, v...)) }
func (s serverLog) Fatalf(format string, v ...any)  { s.l.Error(fmt.Sprintf(format, v...)) }
func (s serverLog) Errorf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	if strings.HasPrefix(msg, "Error trying to connect to route") {
		// A peer not up yet, or restarting: the server keeps trying.
		s.l.Info(msg)
		return
	}
	s.l.Error(msg)
}
func (s serverLog) Debugf(format string, v ...any) {}
func (s serverLog) Tracef(format string, v ...any) {}
