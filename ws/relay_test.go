package ws

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// pattern returns n bytes that differ from one offset to the next (a
// payload unmasked with the wrong key phase would not match).
func pattern(n, seed int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + i>>8 + seed)
	}
	return p
}

// expectFrames reads frames until the final one and checks that they carry
// want in chunks of the given sizes, the first with op.
func expectFrames(t *testing.T, raw *rawConn, op opcode, want []byte, sizes ...int) {
	t.Helper()
	off := 0
	for i, n := range sizes {
		f := raw.read()
		if f.op == opPong {
			f = raw.read()
		}
		wantOp := opContinuation
		if i == 0 {
			wantOp = op
		}
		last := i == len(sizes)-1
		if f.op != wantOp || f.fin != last || len(f.payload) != n {
			t.Fatalf("frame %d: %v, want op %#x fin %v len %d", i, f, byte(wantOp), last, n)
		}
		if !bytes.Equal(f.payload, want[off:off+n]) {
			t.Fatalf("frame %d: payload differs", i)
		}
		off += n
	}
	if off != len(want) {
		t.Fatalf("frames carry %d bytes, want %d", off, len(want))
	}
}

// TestPipeEchoLargeFrames: an echo server relays a frame longer than 64 KiB
// in frames of up to 1 MiB (a frame up to 1 MiB stays whole), with the
// bytes intact, also when frames arrive back to back in one write (the
// payload read picks up the next header with it).
func TestPipeEchoLargeFrames(t *testing.T) {
	raw, _ := echoServer(t, &AcceptOptions{ReadLimit: 8 << 20})
	s := raw.fs()
	const mib = 1 << 20
	for _, n := range []int{64 << 10, 64<<10 + 1, 200 << 10, mib, mib + 5, 3*mib + 12345} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			p := pattern(n, n)
			raw.write(s.frame(true, opBinary, p).bytes())
			var sizes []int
			for left := n; left > 0; left -= min(left, mib) {
				sizes = append(sizes, min(left, mib))
			}
			expectFrames(t, raw, opBinary, p, sizes...)
		})
	}
	// Back to back: two large messages, a ping and a fragmented message
	// with a large first fragment, in one write.
	a, b := pattern(300<<10, 1), pattern(100<<10+3, 2)
	c1, c2 := pattern(70<<10, 3), pattern(10, 4)
	raw.write(cat(
		s.frame(true, opBinary, a).bytes(),
		s.frame(true, opText, bytes.Repeat([]byte("t"), 5000)).bytes(),
		s.msg(opPing, "between"),
		s.frame(true, opBinary, b).bytes(),
		s.frame(false, opBinary, c1).bytes(),
		s.frame(true, opContinuation, c2).bytes(),
	))
	expectFrames(t, raw, opBinary, a, len(a))
	expectFrames(t, raw, opText, bytes.Repeat([]byte("t"), 5000), 5000)
	expectFrames(t, raw, opBinary, b, len(b))
	expectFrames(t, raw, opBinary, append(append([]byte{}, c1...), c2...), len(c1), len(c2))
}

// TestLargeRelayBudget: at most maxLargeRelays large relay buffers are out
// at a time; past that, a large frame is relayed in 64 KiB frames.
func TestLargeRelayBudget(t *testing.T) {
	var held []*[]byte
	defer func() {
		// Given back to the count but not to the pool: 64 MiB of idle
		// buffers would weigh on the heap measurements of later tests.
		largeRelays.Add(-int32(len(held)))
	}()
	for len(held) < maxLargeRelays {
		b := getLargeRelayBuf()
		if b == nil {
			t.Fatalf("no large relay buffer with %d out", len(held))
		}
		held = append(held, b)
	}
	if b := getLargeRelayBuf(); b != nil {
		putLargeRelayBuf(b)
		t.Fatalf("a large relay buffer beyond the %d allowed", maxLargeRelays)
	}

	raw, _ := echoServer(t, nil)
	s := raw.fs()
	const chunk = relayBufSize - maxHeaderSize
	p := pattern(2*chunk+100, 9)
	raw.write(s.frame(true, opBinary, p).bytes())
	expectFrames(t, raw, opBinary, p, chunk, chunk, 100)

	largeRelays.Add(-1)
	held = held[:len(held)-1]
	raw.write(s.frame(true, opBinary, p).bytes())
	expectFrames(t, raw, opBinary, p, len(p))
	// The relay gives its buffer back once the frame is out.
	deadline := time.Now().Add(testTimeout)
	for largeRelays.Load() != maxLargeRelays-1 {
		if time.Now().After(deadline) {
			t.Fatalf("%d large relay buffers out after the relay, want %d", largeRelays.Load(), maxLargeRelays-1)
		}
		time.Sleep(time.Millisecond)
	}
}
