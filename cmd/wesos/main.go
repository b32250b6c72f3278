// Command wesos is WebSocket from the shell: a client that turns stdin and
// stdout into messages, and a server that echoes, relays between the
// clients of a room, or runs a program per connection with its stdin and
// stdout as the message stream.
//
//	go install github.com/wesos/wesos/cmd/wesos@latest
//
//	wesos serve -echo -addr localhost:8080 &
//	echo hello | wesos dial ws://localhost:8080/
//	wesos serve -exec 'sed -u "s/^/you said: /"' -static ./public
//	wesos dial wss://example.com/feed | jq -c --unbuffered .price | wesos dial ws://localhost:8080/prices
//
// Run wesos -h, wesos dial -h or wesos serve -h for the flags and the exit
// statuses.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// The exit statuses of wesos dial (wesos serve uses 0, 1 and 2).
const (
	exitOK       = 0 // the connection ended normally (1000 or 1001), or -h
	exitFailed   = 1 // the connection could not be opened, or input/output failed
	exitUsage    = 2 // bad flags or URL
	exitRefused  = 3 // the server answered the handshake with another status than 101
	exitProtocol = 4 // a protocol error: ours (the peer broke the protocol) or the peer's close with 1002/1007
	exitAbnormal = 5 // the connection ended without a close frame (1006)
	exitClosed   = 6 // the peer closed with another code (1008, 1011, 4000, ...)
)

const mainUsage = `wesos is WebSocket from the shell.

Usage:
  wesos dial [flags] URL   a client: stdin records become messages, messages go to stdout
  wesos serve [flags]      a server: -echo, -broadcast (rooms by path) or -exec 'CMD ARGS'

Run 'wesos dial -h' or 'wesos serve -h' for the flags of each.

Examples:
  wesos serve -echo -addr localhost:8080
  echo hello | wesos dial ws://localhost:8080/
  wesos serve -exec 'sed -u "s/^/you said: /"' -static ./public
  wesos serve -broadcast -addr :8080        # ws://host:8080/room1 and /room2 are two chats
  wesos dial wss://example.com/feed | jq -c --unbuffered .price | wesos dial ws://localhost:8080/prices

The tools compose through shell pipes: every message is a line (or a NUL-
terminated or length-prefixed record, see -framing), so grep, jq, sed and
awk sit between two sockets as they sit between two files, as long as they
flush each line (grep --line-buffered, jq --unbuffered, sed -u).
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit status.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainUsage)
		return exitUsage
	}
	switch args[0] {
	case "dial":
		return runDial(args[1:], stdin, stdout, stderr)
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, mainUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "wesos: unknown command %q\n\n%s", args[0], mainUsage)
	return exitUsage
}

// parseFlags parses args with fs. On -h it prints the usage (head, then the
// flags) to stdout and returns exitOK; on a bad flag it prints the error and
// the usage to stderr and returns exitUsage; otherwise it returns -1.
func parseFlags(fs *flag.FlagSet, args []string, head string, stdout, stderr io.Writer) int {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	if err == nil {
		return -1
	}
	w, status := stderr, exitUsage
	if errors.Is(err, flag.ErrHelp) {
		w, status = stdout, exitOK
	} else {
		fmt.Fprintf(stderr, "wesos %s: %v\n\n", fs.Name(), err)
	}
	fmt.Fprint(w, head)
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	return status
}

// listFlag is a flag that may be given several times; each value may also
// hold several items separated by commas when split is set.
type listFlag struct {
	vals  []string
	split bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }

func (l *listFlag) Set(s string) error {
	if !l.split {
		l.vals = append(l.vals, s)
		return nil
	}
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			l.vals = append(l.vals, v)
		}
	}
	return nil
}

// newLogger returns a text logger to w that drops records under level.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
