// Command client connects to any WebSocket server, sends each line of its
// standard input as a message and prints every message that comes back:
// text as it is, binary as a hex dump of its first bytes.
//
//	go run ./examples/client -url ws://localhost:9001            # type lines; Ctrl-D or Ctrl-C ends
//	printf 'a\nb\n' | go run ./examples/client -url ws://localhost:9001 -binary
//
// When standard input ends, it waits until the server has been quiet for
// -wait, so the replies get printed, and closes with 1000.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/wesos/wesos/ws"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run is the whole program; it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("client", flag.ContinueOnError)
	flags.SetOutput(stderr)
	url := flags.String("url", "ws://localhost:8080/ws", "WebSocket URL to connect to")
	binary := flags.Bool("binary", false, "send lines as binary messages instead of text")
	protos := flags.String("subprotocol", "", "subprotocols to offer, comma-separated")
	wait := flags.Duration("wait", 500*time.Millisecond, "after the input ends, close once the server has been quiet this long")
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0 // -h asked for the usage, which is printed: as flag.ExitOnError does
		}
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	dialCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	opts := &ws.DialOptions{}
	if *protos != "" {
		for _, p := range strings.Split(*protos, ",") {
			opts.Subprotocols = append(opts.Subprotocols, strings.TrimSpace(p))
		}
	}
	c, _, err := ws.Dial(dialCtx, *url, opts)
	if err != nil {
		log.Error("cannot connect", "err", err)
		return 1
	}
	defer c.CloseNow()
	log.Info("connected", "url", *url, "subprotocol", c.Subprotocol())

	// One goroutine prints what comes back, until the connection ends.
	received := make(chan struct{}, 1) // a message arrived
	ended := make(chan struct{})       // the connection has ended, with readErr
	var readErr error
	go func() {
		defer close(ended)
		readErr = printMessages(c, stdout, received)
	}()

	// Send the input; when it ends, give the replies a moment.
	typ := ws.Text
	if *binary {
		typ = ws.Binary
	}
	if send(ctx, c, typ, stdin, ended) {
		quiet(ctx, *wait, received, ended)
	}
	select {
	case <-ended: // the server closed first
	default:
		c.Close(ws.StatusNormalClosure, "")
		<-ended
	}
	if !errors.Is(readErr, io.EOF) { // a close with 1000 or 1001 matches io.EOF: a clean end
		log.Error("connection failed", "err", readErr)
		return 1
	}
	log.Info("closed", "reason", readErr)
	return 0
}

// send writes each line of in as a message of type typ. It returns true when
// in ended, false when ctx or the connection ended first.
func send(ctx context.Context, c *ws.Conn, typ ws.MessageType, in io.Reader, ended <-chan struct{}) bool {
	lines := make(chan string)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-stop:
				return
			}
		}
	}()
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				return true
			}
			if err := c.Write(ctx, typ, []byte(line)); err != nil {
				return false
			}
		case <-ended:
			return false
		case <-ctx.Done(): // Ctrl-C
			return false
		}
	}
}

// quiet waits until no message has arrived for d (at most 10·d in all).
func quiet(ctx context.Context, d time.Duration, received, ended <-chan struct{}) {
	idle := time.NewTimer(d)
	defer idle.Stop()
	limit := time.NewTimer(10 * d)
	defer limit.Stop()
	for {
		select {
		case <-received:
			idle.Reset(d)
		case <-idle.C:
			return
		case <-limit.C:
			return
		case <-ended:
			return
		case <-ctx.Done():
			return
		}
	}
}

// printMessages writes every message of c to out, streaming text through and
// dumping the first 32 bytes of binary, until the connection ends.
func printMessages(c *ws.Conn, out io.Writer, received chan<- struct{}) error {
	for {
		typ, r, err := c.Reader(context.Background())
		if err != nil {
			return err
		}
		if typ == ws.Text {
			_, err = io.Copy(out, r)
			fmt.Fprintln(out)
		} else {
			head := make([]byte, 32)
			n, _ := io.ReadFull(r, head)
			var rest int64
			rest, err = io.Copy(io.Discard, r)
			more := ""
			if rest > 0 {
				more = " …"
			}
			fmt.Fprintf(out, "binary %d bytes: % x%s\n", int64(n)+rest, head[:n], more)
		}
		if err != nil {
			return err
		}
		select {
		case received <- struct{}{}:
		default:
		}
	}
}
