package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/wesos/wesos/ws"
)

// framing says how a byte stream (stdin and stdout of dial, of an -exec
// process) is cut into messages.
type framing int

const (
	framingLines framing = iota // a message per line, "\n" after each
	framingNUL                  // a message per NUL-terminated record
	framingLen                  // a 4-byte big-endian length, then that many bytes
)

// String returns the flag value of f.
func (f framing) String() string {
	switch f {
	case framingNUL:
		return "nul"
	case framingLen:
		return "len"
	}
	return "lines"
}

// Set parses a flag value.
func (f *framing) Set(s string) error {
	switch s {
	case "lines":
		*f = framingLines
	case "nul":
		*f = framingNUL
	case "len":
		*f = framingLen
	default:
		return fmt.Errorf("want lines, nul or len, not %q", s)
	}
	return nil
}

// frameBuf is the size of the buffer that reads framed input. A record that
// fits goes out as one frame; a longer one streams out as fragments.
const frameBuf = 64 << 10

// sendFramed reads records from r and sends each as a message of type t
// until r ends. It returns nil when r ends at a record boundary (a last line
// without its newline is still a record), the read error otherwise, or the
// connection's write error.
func sendFramed(ctx context.Context, c *ws.Conn, r io.Reader, f framing, t ws.MessageType) error {
	br := bufio.NewReaderSize(r, frameBuf)
	if f == framingLen {
		return sendLenPrefixed(ctx, c, br, t)
	}
	delim := byte('\n')
	if f == framingNUL {
		delim = 0
	}
	for {
		chunk, err := br.ReadSlice(delim)
		switch {
		case err == nil:
			// The common case: the whole record in one frame.
			if err := c.Write(ctx, t, chunk[:len(chunk)-1]); err != nil {
				return err
			}
			continue
		case err == io.EOF && len(chunk) == 0:
			return nil
		case err == io.EOF:
			// A last record without its terminator.
			return c.Write(ctx, t, chunk)
		case err != bufio.ErrBufferFull:
			return errInput{err}
		}
		// A record longer than the buffer streams out as fragments.
		w, err := c.Writer(ctx, t)
		if err != nil {
			return err
		}
		for {
			if _, err := w.Write(chunk); err != nil {
				return err
			}
			chunk, err = br.ReadSlice(delim)
			if err == bufio.ErrBufferFull {
				continue
			}
			if err == nil {
				chunk = chunk[:len(chunk)-1]
			} else if err != io.EOF {
				return errInput{err}
			}
			if _, werr := w.Write(chunk); werr != nil {
				return werr
			}
			if cerr := w.Close(); cerr != nil {
				return cerr
			}
			if err == io.EOF {
				return nil
			}
			break
		}
	}
}

// sendLenPrefixed sends length-prefixed records; see sendFramed.
func sendLenPrefixed(ctx context.Context, c *ws.Conn, br *bufio.Reader, t ws.MessageType) error {
	var hdr [4]byte
	buf := make([]byte, frameBuf)
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return errInput{fmt.Errorf("reading a length prefix: %w", unexpected(err))}
		}
		n := int64(binary.BigEndian.Uint32(hdr[:]))
		if n <= int64(len(buf)) {
			if _, err := io.ReadFull(br, buf[:n]); err != nil {
				return errInput{fmt.Errorf("a record cut short: %w", unexpected(err))}
			}
			if err := c.Write(ctx, t, buf[:n]); err != nil {
				return err
			}
			continue
		}
		w, err := c.Writer(ctx, t)
		if err != nil {
			return err
		}
		in := &inReader{r: io.LimitReader(br, n)}
		copied, err := io.CopyBuffer(w, in, buf)
		if in.err != nil {
			return errInput{in.err}
		}
		if err != nil {
			return err
		}
		if copied < n { // the input ended inside the record
			return errInput{fmt.Errorf("a record cut short: %w", io.ErrUnexpectedEOF)}
		}
		if err := w.Close(); err != nil {
			return err
		}
	}
}

// unexpected turns io.EOF, which means "nothing more" only at a record
// boundary, into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// errInput marks an error of the input side (stdin, a process's stdout), so
// that it is not mistaken for the connection's.
type errInput struct{ err error }

func (e errInput) Error() string { return e.err.Error() }
func (e errInput) Unwrap() error { return e.err }

// inReader records the error, other than io.EOF, of the reader it wraps.
type inReader struct {
	r   io.Reader
	err error
}

func (i *inReader) Read(p []byte) (int, error) {
	n, err := i.r.Read(p)
	if err != nil && err != io.EOF && i.err == nil {
		i.err = err
	}
	return n, err
}

// errWrite marks an error of the output side (stdout, a process's stdin), so
// that it is not mistaken for the connection's.
type errWrite struct{ err error }

func (e errWrite) Error() string { return e.err.Error() }
func (e errWrite) Unwrap() error { return e.err }

// recvFramed receives the next message of c and writes it to w as a record,
// flushing w. Errors of the connection are returned as they are; errors of
// w are wrapped in errWrite.
func recvFramed(ctx context.Context, c *ws.Conn, w *bufio.Writer, f framing) error {
	if f == framingLen {
		// The length goes first, so the message is read whole (within
		// the connection's read limit).
		_, p, err := c.Read(ctx)
		if err != nil {
			return err
		}
		var hdr [4]byte
		if int64(len(p)) > 1<<32-1 {
			return fmt.Errorf("a message of %d bytes does not fit a 4-byte length prefix", len(p))
		}
		binary.BigEndian.PutUint32(hdr[:], uint32(len(p)))
		w.Write(hdr[:])
		w.Write(p)
		return flush(w)
	}
	m, err := c.Next(ctx)
	if err != nil {
		return err
	}
	// The body streams to w as it arrives; w's own errors are told apart
	// from the connection's by the writer that records them.
	ow := &outWriter{w: w}
	if _, err := io.Copy(ow, m.Body); err != nil {
		if ow.err != nil {
			return errWrite{ow.err}
		}
		return err
	}
	if f == framingNUL {
		w.WriteByte(0)
	} else {
		w.WriteByte('\n')
	}
	return flush(w)
}

func flush(w *bufio.Writer) error {
	if err := w.Flush(); err != nil {
		return errWrite{err}
	}
	return nil
}

// outWriter records the error of the writer it wraps.
type outWriter struct {
	w   io.Writer
	err error
}

func (o *outWriter) Write(p []byte) (int, error) {
	n, err := o.w.Write(p)
	if err != nil && o.err == nil {
		o.err = err
	}
	return n, err
}

// isWriteErr reports whether err is an error of the output side.
func isWriteErr(err error) bool {
	var we errWrite
	return errors.As(err, &we)
}

// isInputErr reports whether err is an error of the input side.
func isInputErr(err error) bool {
	var ie errInput
	return errors.As(err, &ie)
}
