// Package kflate plugs github.com/klauspost/compress/flate into wesos's
// permessage-deflate as a ws.Flate:
//
//	opts := &ws.AcceptOptions{Compression: &ws.CompressionOptions{Flate: kflate.Flate{}}}
//
// Its output is plain DEFLATE, so either end may use it alone: a peer with
// compress/flate, or any other WebSocket implementation, reads it. It lives
// in a module of its own so that the core module keeps no dependency beyond
// the standard library.
package kflate

import (
	"bufio"
	"io"

	"github.com/klauspost/compress/flate"
	"github.com/wesos/wesos/ws"
)

// Flate is klauspost/compress's DEFLATE as a ws.Flate. The zero value is
// ready to use; every Flate{} is the same implementation, so connections
// share its pooled compressors and decompressors.
type Flate struct{}

var _ ws.Flate = Flate{}

// NewWriter returns a klauspost/compress flate.Writer at level (the levels
// are compress/flate's, flate.HuffmanOnly included).
func (Flate) NewWriter(w io.Writer, level int) (ws.FlateWriter, error) {
	fw, err := flate.NewWriter(w, level)
	if err != nil {
		return nil, err
	}
	return fw, nil
}

// NewReader returns a klauspost/compress decompressor of r with the preset
// dictionary dict. It reads r through a bufio.Reader of its own (4 KiB,
// made once and reused by Reset), for which klauspost/compress has a
// decoding loop of its own instead of an interface call per byte (r's
// io.ByteReader). The bytes it reads ahead are reported by a Buffered
// method, which the ws package reads after a final block.
func (Flate) NewReader(r io.Reader, dict []byte) ws.FlateReader {
	d := &reader{br: bufio.NewReaderSize(r, 4096)}
	// The decompressor klauspost/compress returns has Reset(r, dict).
	d.fr = flate.NewReaderDict(d.br, dict).(flate.Resetter)
	return d
}

// reader is a klauspost/compress decompressor reading through a
// bufio.Reader.
type reader struct {
	br *bufio.Reader
	fr flate.Resetter // and io.Reader
}

func (d *reader) Read(p []byte) (int, error) { return d.fr.(io.Reader).Read(p) }

func (d *reader) Reset(r io.Reader, dict []byte) error {
	d.br.Reset(r)
	return d.fr.Reset(d.br, dict)
}

// Buffered reports how many bytes of the input the reader holds unread:
// after the stream's final block, the caller counts them as data past it.
func (d *reader) Buffered() int { return d.br.Buffered() }
