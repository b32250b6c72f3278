// Package ws is a streaming WebSocket implementation (RFC 6455) on the
// standard library. A message is a stream: an incoming message's Body is an
// io.Reader whose bytes arrive frame by frame, and an outgoing message is an
// io.WriteCloser whose every Write leaves as a fragment, so a message of any
// size passes in bounded memory.
//
// A server in three lines, relaying every message to every socket until
// ctx ends:
//
//	var srv *ws.Server
//	srv = ws.NewServer(func(ctx context.Context, c *ws.Conn) error { return wesos.Pipe(ctx, srv, c) }, nil)
//	err := ws.ListenAndServe(ctx, "localhost:8080", srv)
//
// ListenAndServe sets the HTTP timeouts and limits that the zero
// http.Server lacks and, when ctx ends, shuts down gracefully: every
// connection gets 1001 (going away). Serve does the same with an
// http.Server and a listener of your own. A port that carries nothing but
// WebSockets can do without net/http: srv.Serve(ln), the Server's own
// method, reads the upgrade requests itself, with the same checks and
// answers, and its connections cost less memory (TLS through
// tls.NewListener; srv.Shutdown stops it).
//
// and a client:
//
//	c, _, err := ws.Dial(ctx, "ws://localhost:8080", nil)
//	err = c.Write(ctx, ws.Text, []byte("hello"))
//	typ, msg, err := c.Read(ctx)
//	c.Close(ws.StatusNormalClosure, "")
//
// A Conn is a wesos.Source[Message] (Next) and a wesos.Sink[Message] (Send);
// a Server is a Sink that broadcasts, so the flows of package flow compose
// with sockets.
//
// A Group is a room: a Sink to the connections added to it, each frame
// encoded once for all of them. A connection may be in several Groups and
// leaves them when it closes; Except(c) is the room without its sender:
//
//	room := ws.NewGroup(nil)
//	srv := ws.NewServer(func(ctx context.Context, c *ws.Conn) error {
//		room.Add(c)
//		return wesos.Pipe(ctx, room.Except(c), c) // c's messages to the others
//	}, nil)
//
// Server.Send is the Group of every connection, on the same machinery.
//
// # Handlers and requests
//
// A Server's handler returns an error, and the connection closes with the
// code it says: nil or io.EOF 1000, a CloseError its code and reason, a
// DecodeError (a message Typed could not decode) 1007, anything else 1011,
// and the error goes to the ErrorLog. The request is seen before the
// upgrade by AcceptOptions.Admit, which refuses it with an HTTP status or
// admits it with the context the handler runs in:
//
//	opts := &ws.AcceptOptions{
//		Admit: func(w http.ResponseWriter, r *http.Request) (context.Context, error) {
//			user := r.URL.Query().Get("user")
//			if user == "" {
//				return nil, ws.Refuse(http.StatusUnauthorized, "who are you?")
//			}
//			return context.WithValue(r.Context(), userKey{}, user), nil
//		},
//	}
//
// A refused request never becomes a connection: no handler, no Len, no
// broadcast. What Admit puts in the context is all the handler keeps of the
// request: keep a name or a room rather than the request, which an idle
// connection would hold (a browser's request with its headers is about 2 KB
// more per connection: go test -run TestAdmitIdleMemory -v ./ws/).
//
// # Events
//
// The events of Node's wesos, whose servers and sockets emit them, have
// these Go forms:
//
//   - server "open": the Server's handler runs for the new Conn.
//   - server "error": AcceptOptions.ErrorLog receives failed handshakes,
//     dropped connections and the errors handlers return; errors with a
//     caller are returned to it.
//   - server "close": Server.Shutdown returns.
//   - socket "message": Conn.Next or Conn.Reader returns a message.
//   - socket "ping": the OnPing option is called; the pong is sent
//     automatically.
//   - socket "close": a read returns a CloseError with the peer's code and
//     reason (matching io.EOF for 1000 and 1001).
//   - socket "end": a read returns an error matching
//     CloseError{Code: StatusAbnormalClosure} once TCP ended without a
//     close frame.
//
// # Numbers
//
// Server.Stats and Group.Stats return a snapshot of counters for the
// operator: connections open, accepted, refused by reason (a bad
// handshake, the origin, Admit's status, Shutdown), failed and timed out;
// data messages and bytes in and out; broadcasts; connections dropped as
// too slow or failed as stalled; close codes. A Conn of a Server counts into
// it with an atomic add or two per message, no lock and no allocation. The
// snapshot is a plain struct, ready for expvar (expvar.Func) or a
// Prometheus collector that reads it at scrape time.
//
// # Reading, writing and contexts
//
// Reads are single-consumer, and control frames are handled inside reads:
// keep reading a Conn whose peer may ping or close, or, for a connection
// that is only written to, let CloseRead read it in the background. Writes
// are safe from any goroutine; data messages never interleave, and pongs
// and close frames pass between the fragments of a message being written.
// NetConn makes a Conn a net.Conn, for protocols that want a byte stream.
//
// A context ends a call, not the connection: a read interrupted by its
// context returns ctx.Err() and the next read resumes the frame where it
// stopped. A write interrupted before any byte of its frame left returns
// ctx.Err() and the connection stays usable; a frame cut in the middle
// cannot be resumed, so then the connection is closed. Closing is always
// explicit: Close (handshake with the code you choose) or CloseNow.
//
// # Compression
//
// With CompressionOptions in AcceptOptions or DialOptions, permessage-deflate
// (RFC 7692) is accepted or offered. An offer the server cannot honour
// (unknown or repeated parameters, bad values, a malformed header) is
// declined and the connection opens uncompressed; an answer the client
// cannot follow (unknown or repeated parameters, a window size missing or
// outside 8 to 15 bits) fails Dial. The client offers
// client_max_window_bits, as browsers do: the server's answer may limit
// the client's window, as a client's offer of server_max_window_bits
// limits the server's. A limit under 15 bits, a window smaller than
// compress/flate's 32 KiB, is honoured by Huffman coding alone
// (flate.HuffmanOnly), which refers to no earlier bytes and compresses
// less; a server connection so limited receives the broadcasts of
// Server.Send and Group.Send uncompressed. Messages are compressed fragment by fragment as they are
// written and decompressed frame by frame as they are read, so a
// compressed message of any size passes in bounded memory. The read limit
// counts decompressed bytes: a message that inflates past it is stopped
// with 1009 once one byte over the limit has been produced, however small
// it is on the wire.
//
// Without context takeover (the default), compressors and decompressors come
// from pools for the time a message takes: an idle compressed connection
// holds no more memory than an uncompressed one (go test -run '^$' -bench
// DeflateIdleConn -benchtime 1x ./ws/ compares them), and Server.Send and Group.Send compress a message once
// for all such receivers. With
// ContextTakeover, each end keeps for the life of the connection a
// compressor (about 1.2 MB with compress/flate at the default level,
// BestSpeed; about 0.8 MB at the other levels), a decompressor (about
// 40 KB) and up to 64 KB of recent output: some 2.5 MB per connection, both
// ends counted. In exchange, a stream of small similar messages compresses
// several times better.
//
// CompressionOptions.Flate plugs in another DEFLATE implementation (the
// Flate interface: a compressor with Write, Flush and Reset, a decompressor
// with Read and Reset); nil is compress/flate. The module
// github.com/wesos/wesos/kflate provides github.com/klauspost/compress's,
// which compresses and decompresses faster and, unlike compress/flate's
// decompressor, builds its Huffman tables without allocating. The output is
// plain DEFLATE either way, so each end chooses for itself.
//
// A received compressed message relayed by Send (wesos.Pipe to a Conn),
// Server.Send or Group.Send goes out with the compressed bytes it came
// with, in one final frame, when its receiver can decode them as they
// are: the message came in one frame of at most 64 KiB, its sender keeps
// no context (client_no_context_takeover for a server connection,
// server_no_context_takeover for a client one), the receiver's window is
// at least the sender's, and the relaying connection keeps no context
// towards the receiver (the defaults on both ends). The relay still
// decompresses it, into a scratch buffer, to check it as a read would (the
// read limit, UTF-8 in text, the deflate data: 1009 and 1007 as usual,
// and nothing of a bad message goes out), but does not compress it again,
// which is most of the work. It decompresses it with a decoder of its own,
// whole in memory, which for a 64 KiB JSON message runs about 1.45 times
// fewer instructions than compress/flate's streaming decompressor and
// allocates nothing (BenchmarkInflate); what that decoder does not accept
// (a corrupt message, one over the read limit, one that is not UTF-8, a
// stream with an unusual end), the configured Flate reads again and
// decides, as for any other message. A message under the threshold goes out
// uncompressed, and a Group's or Server's members that negotiated no
// compression get it uncompressed, as any other. Other messages are
// decompressed and compressed anew.
//
// A compressed message whose read is cut short by the read's context cannot
// resume, as the decompressor's state is lost: without context takeover the
// rest of the message is discarded and the connection goes on with the next
// one; with context takeover the connection fails with 1011.
//
// # Writes and system calls
//
// A frame normally leaves in one write as soon as it is written. A small
// frame written while the connection's reader still holds received bytes it
// has not handed out — the answers of an echo or request/response loop
// working through a burst of messages — is kept instead and leaves with the
// others, in one write, when the reader runs out of input (or within 250 µs,
// or with the next frame that cannot wait: a close, a ping, a large frame).
// On small messages this divides the system calls, most of a server's CPU
// time, by the size of the bursts; a lone write still leaves at once, and
// order is never changed. Server.Send and Group.Send likewise send the
// messages that queued up for a connection in one writev.
//
// # Memory per connection
//
// A connection that waits for a message holds no buffer: its read buffer
// goes back to a pool while it waits, and the wait reads straight into one
// taken when data arrives. What remains is the Conn (512 bytes, in a
// 512-byte slot without a header; state few connections need, such as a
// close reason or a keepalive, is allocated apart when they need it), a
// 128-byte record of its Server that is also its
// handler's ctx, its handler's goroutine and, through ServeHTTP, the
// net/http request context that ctx keeps for its values. The write path is kept shallow (on a socket the
// Conn owns, writes make the system call themselves) so that a handler
// that echoes, like wesos.Pipe(ctx, c, c), stays within its goroutine's
// first 2 KiB stack: a stack that grew is never shrunk while its goroutine
// waits. At 10,000 idle connections, heap and stacks came to about 3.8 KiB
// per connection through ServeHTTP and 3.4 KiB through Serve, and the
// process's RSS grew by 6.4 and 4.3 KiB per connection (bench/RESULTS.md,
// cd bench && ./run.sh -only idle).
//
// # HTTP/2
//
// Accept and Server also take WebSockets over HTTP/2 (RFC 8441): the
// browser sends an extended CONNECT on a stream of its HTTP/2 connection
// instead of a GET with Upgrade, and the messages travel in that stream.
// Go 1.26's net/http server supports this only when the process starts
// with http2xconnect=1 in its GODEBUG environment variable, for example
//
//	GODEBUG=http2xconnect=1 ./server
//
// (net/http reads it once, when the program starts: setting it later, with
// os.Setenv, has no effect). The server must speak HTTP/2: over TLS
// (http.Server.ListenAndServeTLS does by default) or in clear text with
// h2c (http.Server.Protocols with SetUnencryptedHTTP2). Without the
// setting the server does not offer extended CONNECT, and browsers use
// HTTP/1.1 for WebSockets as before. A ServeMux pattern with a method, such
// as "GET /ws", does not match the CONNECT: register the handler for
// "CONNECT /ws" too, or with no method.
//
// Over HTTP/2 the connection is the request's stream, which ends when the
// handler returns: a handler calling Accept must keep running while it uses
// the Conn and close it before returning (Server does this itself, running
// the handler within ServeHTTP for such connections). Every write to the
// stream is flushed at once, and a Conn holds a goroutine and a read
// buffer for its life.
//
// # In the browser
//
// Compiled with GOOS=js GOARCH=wasm and run in a web page, Dial opens the
// browser's WebSocket (through syscall/js), and the Conn it returns has the
// same methods over it: Next and Send, Reader and Writer, Read and Write,
// Close, CloseNow, Subprotocol, SetReadLimit, CloseRead, NetConn. The
// browser makes the handshake and the frames itself, which leaves out:
//
//   - The DialOptions HTTPHeader, TLSConfig, NetDialContext, Proxy,
//     Compression, OnPing, KeepAlive and KeepAliveTimeout: Dial fails
//     with ErrUnsupported when they are set. The browser sends its own
//     headers (and its cookies for the server's site), checks certificates,
//     follows its proxy settings, and offers permessage-deflate by itself.
//     Subprotocols, ReadLimit, CloseTimeout and ErrorLog apply. The
//     response Dial returns holds only the Sec-WebSocket-Protocol and
//     Sec-WebSocket-Extensions headers, and a refused handshake is an
//     error that matches CloseError{Code: StatusAbnormalClosure}: the
//     browser does not say why.
//   - Pings: Ping returns ErrUnsupported. The browser answers the peer's
//     pings itself and never shows them.
//   - Close codes: the browser sends 1000 and 3000–4999 only. Close with
//     another code (or a failure: 1002, 1007, 1008, 1009, 1011) closes
//     without a code, so the peer reads 1005, and returns (or logs) an
//     error matching ErrUnsupported. CloseNow cannot drop the connection:
//     the browser closes it with a close frame without a code and
//     finishes the handshake on its own.
//   - Fragments: the browser sends whole messages only, so the writes to a
//     Writer are gathered and leave as one message when it is closed, up
//     to 32 MiB; past that the write fails with ErrUnsupported and the
//     connection closes. Write and Send send a message as it is.
//   - Flow control: the browser receives messages whether or not they are
//     read, so they queue up in the page: once 16384 messages or 64 MiB
//     (more than one message) wait unread, the connection is closed, and
//     its reads return the queued messages and then an error. A message
//     is in the browser's memory before a read sees it; a read limit still
//     fails a larger one with 1009. A write waits while the browser holds
//     more than 4 MiB unsent (its bufferedAmount).
//
// (The browser test, TestBrowserWasm, runs such a program in headless
// Chromium against this package's server.)
//
// # Protocol errors
//
// A peer that breaks the protocol gets the close code RFC 6455 names and the
// read returns a *ProtocolError with the same code: 1002 for framing
// violations, 1007 for text that is not UTF-8 (checked as it streams), 1009
// for a message over the read limit (refused before its payload is read).
package ws

// Inside the package: three layers. (For whoever changes the package, so
// outside the package doc.) Each layer calls the one below it only through
// a few methods, and a change of one kind goes to one layer.
//
//   - Transport (sock.go, sock_linux.go, sock_other.go, coalesce.go;
//     the sock type embedded in Conn): owns the socket. The net.Conn, the
//     read buffer and its pool (taken only while there are bytes to parse),
//     the write buffer pools and the frames kept to leave together
//     (coalescing). How bytes move is its seam, the transport interface,
//     with two implementations chosen when the Conn is made: portable,
//     over any net.Conn (TLS, HTTP/2 streams, wrapping listeners,
//     in-memory pipes, other systems), which uses only Read, Write and the
//     deadlines; and direct, on Linux over a plain socket: reads and writes
//     made with system calls of its own, the idle wait that holds no
//     buffer, readv of a payload with what follows it, a receive
//     low-water mark while a relay waits for a large frame's bytes (the
//     keepalive lowers it when it pings). Its methods for the layer
//     above: buffered, peek, discard, take, fill, readLarge (reads); keep,
//     send, sendOut, flush, writeVec, writeConn (writes); closeSock. It
//     calls back through sockOwner: bytes arrived (keepalive), send what
//     is kept under the frame lock. Stack-depth tuning lives here too (no defer on the
//     small paths, //go:noinline where a frame would grow its caller's),
//     guarded by stack_norace_test.go. Goes here: a new system call path,
//     another platform, buffer sizes, when frames are joined.
//   - Protocol (Conn: conn.go, read.go, write.go, close.go, deflate.go,
//     utf8.go, frame.go, keepalive.go, handle.go, wlock.go): RFC 6455 and
//     7692 state. Frames and fragments, control frames between fragments,
//     the close handshake, permessage-deflate, UTF-8 as it streams, limits,
//     the write locks (a data message at a time, a frame at a time).
//     Handles it gives out (a message Body, a Writer) carry the generation
//     of their message and fail once it is over, so an old handle never
//     acts on a later message. Goes here: anything the RFCs say, a new
//     option, an error code.
//   - Fan-out (the broadcast of Server, and of Group): a message's frames encoded once
//     (compressed once where the receivers' settings allow) and handed to
//     many connections, each behind its own queue. It calls a Conn only
//     through a few internal methods (the message lock unless closed, a
//     write of whole pre-encoded frames or of a batch of them, the closed
//     channel, failing a stalled sender). Goes here: who receives what,
//     queues, slow receivers.
//
// Handshakes (accept.go, dial.go, h2.go, handshake.go; serveraw.go and
// upgraderead.go for Server.Serve, which reads the request itself) sit
// beside these: they make the net.Conn and hand it, with the negotiated
// settings, to newConn. In a browser, Dial (browser.go) hands newConn a browserSock
// (browsersock.go): a net.Conn over the browser's WebSocket, bound with
// syscall/js in browser_js.go, which turns whole messages into frames and
// back.
