package ws

import (
	"bufio"
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"slices"
	"sync/atomic"
	"testing"
)

// countingFlate is compress/flate as a plugged-in Flate that counts the
// compressors and decompressors it makes.
type countingFlate struct{ writers, readers *atomic.Int64 }

func (f countingFlate) NewWriter(w io.Writer, level int) (FlateWriter, error) {
	f.writers.Add(1)
	return stdFlate{}.NewWriter(w, level)
}

func (f countingFlate) NewReader(r io.Reader, dict []byte) FlateReader {
	f.readers.Add(1)
	return stdFlate{}.NewReader(r, dict)
}

func newCountingFlate() countingFlate {
	return countingFlate{new(atomic.Int64), new(atomic.Int64)}
}

// TestDeflateFlateSeam: the implementation in CompressionOptions.Flate
// compresses and decompresses both ways on each end; its compressors and
// decompressors are made once per connection with context takeover and
// come from its pools without.
func TestDeflateFlateSeam(t *testing.T) {
	const msgs = 40
	for _, takeover := range []bool{false, true} {
		t.Run(dflTakeoverName(takeover), func(t *testing.T) {
			sf, cf := newCountingFlate(), newCountingFlate()
			// The echo reads each message whole and writes it anew, so
			// that the server compresses it (a relayed Body would pass
			// its compressed bytes through).
			srv := NewServer(echo, &AcceptOptions{Compression: &CompressionOptions{Flate: sf, ContextTakeover: takeover}})
			url := "ws://" + dflHTTPServer(t, srv)
			ctx := testCtx(t)
			c, _, err := Dial(ctx, url, &DialOptions{Compression: &CompressionOptions{Flate: cf, ContextTakeover: takeover}})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			for i := range msgs {
				msg := dflText(4<<10, uint64(i))
				if err := c.Write(ctx, Text, msg); err != nil {
					t.Fatal(err)
				}
				if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("message %d: echo of %d bytes (%v)", i, len(got), err)
				}
			}
			if err := c.Close(StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
			for _, end := range []struct {
				name string
				f    countingFlate
			}{{"server", sf}, {"client", cf}} {
				w, r := end.f.writers.Load(), end.f.readers.Load()
				switch {
				case w == 0 || r == 0:
					t.Errorf("%s: %d compressors and %d decompressors made: the plugged-in Flate was not used both ways", end.name, w, r)
				case takeover && (w != 1 || r != 1):
					t.Errorf("%s: %d compressors and %d decompressors made for one connection with takeover, want 1 each", end.name, w, r)
				case !takeover && !dflRace && (w > msgs/4 || r > msgs/4):
					// (The race detector makes sync.Pool drop items at
					// random, so the bound holds only without it.)
					t.Errorf("%s: %d compressors and %d decompressors made for %d messages: not pooled", end.name, w, r, msgs)
				}
			}
		})
	}
}

// readAheadFlate is compress/flate reading through a bufio.Reader, as a
// plugged-in decompressor may, which says how much it holds unread.
type readAheadFlate struct{}

func (readAheadFlate) NewWriter(w io.Writer, level int) (FlateWriter, error) {
	return stdFlate{}.NewWriter(w, level)
}

func (readAheadFlate) NewReader(r io.Reader, dict []byte) FlateReader {
	d := &readAhead{br: bufio.NewReader(r)}
	d.FlateReader = stdFlate{}.NewReader(d.br, dict)
	return d
}

type readAhead struct {
	FlateReader
	br *bufio.Reader
}

func (d *readAhead) Reset(r io.Reader, dict []byte) error {
	d.br.Reset(r)
	return d.FlateReader.Reset(d.br, dict)
}

func (d *readAhead) Buffered() int { return d.br.Buffered() }

// TestDeflateDataAfterFinalBlock: a message whose deflate data goes on
// after a final block fails with 1007, also with a decompressor that read
// the extra bytes ahead; an empty stored block and the flush tail after it
// are fine (RFC 7692 §7.2.3.4).
func TestDeflateDataAfterFinalBlock(t *testing.T) {
	msg := dflText(3000, 8)
	var buf bytes.Buffer
	fw, _ := flate.NewWriter(&buf, flate.BestSpeed)
	fw.Write(msg)
	fw.Close()
	final := buf.Bytes()
	for _, impl := range []struct {
		name string
		f    Flate
	}{{"std", nil}, {"read-ahead", readAheadFlate{}}} {
		for _, tc := range []struct {
			name  string
			after []byte
			ok    bool
		}{
			{"nothing", nil, true},
			{"empty-stored-block", []byte{0x00}, true},
			{"garbage", []byte("data after the end of the stream"), false},
		} {
			t.Run(impl.name+"/"+tc.name, func(t *testing.T) {
				c, raw, _ := dflServerPair(t, &AcceptOptions{Compression: &CompressionOptions{Flate: impl.f}}, "permessage-deflate")
				ctx := testCtx(t)
				payload := append(slices.Clone(final), tc.after...)
				raw.write(dflFrames(opText, true, raw.client, [][]byte{payload}))
				_, got, err := c.Read(ctx)
				if tc.ok {
					if err != nil || !bytes.Equal(got, msg) {
						t.Fatalf("%v, %d bytes", err, len(got))
					}
					return
				}
				var pe *ProtocolError
				if !errors.As(err, &pe) || pe.Code != StatusInvalidFramePayloadData {
					t.Fatalf("read: %v, want a 1007 for the data after the final block", err)
				}
			})
		}
	}
}

// flateWithOptions is a Flate whose value holds an interface: its type is
// comparable, but a value holding a slice is not.
type flateWithOptions struct {
	stdFlate
	opts any
}

// TestFlatePoolsForUncomparableValue: a Flate value that cannot be a map
// key gets pools of its own instead of panicking, and equal comparable
// values share theirs.
func TestFlatePoolsForUncomparableValue(t *testing.T) {
	f := flateWithOptions{opts: []int{1}}
	if p := flatePoolsFor(f); p == nil || p.impl == nil {
		t.Fatalf("flatePoolsFor(%#v) = %v", f, p)
	}
	g := flateWithOptions{opts: "level 1"}
	if flatePoolsFor(g) != flatePoolsFor(flateWithOptions{opts: "level 1"}) {
		t.Fatal("equal Flate values got different pools")
	}
}
