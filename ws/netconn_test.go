package ws

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The conformance of NetConn to net.Conn, over real WebSockets on
// 127.0.0.1: the cases of golang.org/x/net/nettest.TestConn (basic I/O,
// ping-pong, racy reads and writes, read and write timeouts, deadlines in
// the past, present and future, Close of pending calls, concurrent methods),
// written here because the core module takes no dependency for its tests
// but goleak. Each case runs with the client's NetConn as c1 and with the
// server's.

// wsConnPair returns a connected client and server Conn over loopback TCP.
func wsConnPair(t testing.TB, opts *AcceptOptions) (client, server *Conn) {
	t.Helper()
	accepted := make(chan *Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Accept(w, r, opts)
		if err != nil {
			t.Error(err)
			close(accepted)
			return
		}
		accepted <- c
	}))
	t.Cleanup(hs.Close)
	c, _, err := Dial(testCtx(t), "ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := <-accepted
	if s == nil {
		t.FailNow()
	}
	t.Cleanup(func() { c.CloseNow(); s.CloseNow() })
	return c, s
}

// ncPipe is two NetConns joined by a WebSocket, and the goroutines a test
// runs on them, which stop waits for.
type ncPipe struct {
	c1, c2 net.Conn
	wg     sync.WaitGroup
}

func newNCPipe(t *testing.T, serverFirst bool) *ncPipe {
	client, server := wsConnPair(t, nil)
	p := &ncPipe{c1: NetConn(context.Background(), client, Binary), c2: NetConn(context.Background(), server, Binary)}
	if serverFirst {
		p.c1, p.c2 = p.c2, p.c1
	}
	t.Cleanup(p.stop)
	return p
}

// stop closes both ends (at once: each close handshake needs the other end
// to answer) and waits for the test's goroutines.
func (p *ncPipe) stop() {
	var wg sync.WaitGroup
	wg.Go(func() { p.c1.Close() })
	wg.Go(func() { p.c2.Close() })
	wg.Wait()
	p.wg.Wait()
}

func (p *ncPipe) run(f func()) { p.wg.Go(f) }

// echo copies everything c reads back to c, until an error.
func (p *ncPipe) echo(c net.Conn) { p.run(func() { chunked(c, c) }) }

// chunked copies r to w in writes of at most 1 KiB.
func chunked(w io.Writer, r io.Reader) error {
	buf := make([]byte, 1024)
	_, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{r}, buf)
	return err
}

// wantTimeout fails unless err is a deadline's error: a net.Error whose
// Timeout is true, matching os.ErrDeadlineExceeded.
func wantTimeout(t *testing.T, err error) {
	t.Helper()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("error %v (%T), want a net.Error with Timeout() true matching os.ErrDeadlineExceeded", err, err)
	}
}

// roundtrip writes to c, which the other end echoes, and reads it back.
func roundtrip(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Time{})
	const s = "wesos over a net.Conn"
	if _, err := c.Write([]byte(s)); err != nil {
		t.Errorf("roundtrip Write: %v", err)
	}
	buf := make([]byte, len(s))
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != s {
		t.Errorf("roundtrip read %q, %v; want %q", buf, err, s)
	}
}

// resync writes a 0xff, which the other end echoes, and reads until it
// comes back, so what earlier cases left on the way is gone. Nothing else
// sent is 0xff.
func resync(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetDeadline(time.Time{})
	if _, err := c.Write([]byte{0xff}); err != nil {
		t.Errorf("resync Write: %v", err)
		return
	}
	buf := make([]byte, 1024)
	for {
		n, err := c.Read(buf)
		if n > 0 && bytes.IndexByte(buf[:n], 0xff) == n-1 {
			return
		}
		if err != nil {
			t.Errorf("resync Read: %v", err)
			return
		}
	}
}

func TestNetConnConformance(t *testing.T) {
	cases := []struct {
		name string
		f    func(t *testing.T, p *ncPipe)
	}{
		{"BasicIO", ncBasicIO},
		{"PingPong", ncPingPong},
		{"RacyRead", ncRacyRead},
		{"RacyWrite", ncRacyWrite},
		{"ReadTimeout", ncReadTimeout},
		{"WriteTimeout", ncWriteTimeout},
		{"PastTimeout", ncPastTimeout},
		{"PresentTimeout", ncPresentTimeout},
		{"FutureTimeout", ncFutureTimeout},
		{"MovedDeadline", ncMovedDeadline},
		{"CloseTimeout", ncCloseTimeout},
		{"ConcurrentMethods", ncConcurrentMethods},
	}
	for _, side := range []struct {
		name        string
		serverFirst bool
	}{{"client", false}, {"server", true}} {
		for _, tc := range cases {
			t.Run(side.name+"/"+tc.name, func(t *testing.T) {
				tc.f(t, newNCPipe(t, side.serverFirst))
			})
		}
	}
}

// 1 MiB from c1 to c2 in 1 KiB writes arrives intact, and c1's Close is
// c2's io.EOF.
func ncBasicIO(t *testing.T, p *ncPipe) {
	want := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(want)
	p.run(func() {
		if err := chunked(p.c1, bytes.NewReader(want)); err != nil {
			t.Errorf("c1 write: %v", err)
		}
		if err := p.c1.Close(); err != nil {
			t.Errorf("c1 Close: %v", err)
		}
	})
	var got bytes.Buffer
	if err := chunked(&got, p.c2); err != nil { // io.Copy: nil at io.EOF
		t.Errorf("c2 read: %v", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("read %d bytes, not the %d written", got.Len(), len(want))
	}
}

// Both ends answer each other in turn, a counter going to 1000.
func ncPingPong(t *testing.T, p *ncPipe) {
	player := func(c net.Conn) {
		buf := make([]byte, 8)
		var prev uint64
		for range 1000 {
			if _, err := io.ReadFull(c, buf); err != nil {
				if err != io.EOF {
					t.Errorf("Read: %v", err)
				}
				break
			}
			v := binary.LittleEndian.Uint64(buf)
			if prev != 0 && prev+2 != v {
				t.Errorf("read %d, want %d", v, prev+2)
			}
			prev = v
			if v == 1000 {
				break
			}
			binary.LittleEndian.PutUint64(buf, v+1)
			if _, err := c.Write(buf); err != nil {
				t.Errorf("Write: %v", err)
				break
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	p.run(func() { player(p.c1) })
	p.run(func() { player(p.c2) })
	if _, err := p.c1.Write(make([]byte, 8)); err != nil {
		t.Errorf("first Write: %v", err)
	}
	p.wg.Wait()
}

// Reads cut by a deadline every millisecond, from ten goroutines that
// scribble on their buffers at once: the race detector checks that no read
// goes on into a buffer after its Read returned.
func ncRacyRead(t *testing.T, p *ncPipe) {
	p.run(func() { chunked(p.c2, rand.New(rand.NewSource(2))) })
	p.c1.SetReadDeadline(time.Now().Add(time.Millisecond))
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			b1, b2 := make([]byte, 1024), make([]byte, 1024)
			for range 100 {
				_, err := p.c1.Read(b1)
				copy(b1, b2)
				if err != nil {
					wantTimeout(t, err)
					p.c1.SetReadDeadline(time.Now().Add(time.Millisecond))
				}
			}
		})
	}
	wg.Wait()
}

// Writes likewise.
func ncRacyWrite(t *testing.T, p *ncPipe) {
	p.run(func() { chunked(io.Discard, p.c2) })
	p.c1.SetWriteDeadline(time.Now().Add(time.Millisecond))
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			b1, b2 := make([]byte, 1024), make([]byte, 1024)
			for range 100 {
				_, err := p.c1.Write(b1)
				copy(b1, b2)
				if err != nil {
					wantTimeout(t, err)
					p.c1.SetWriteDeadline(time.Now().Add(time.Millisecond))
				}
			}
		})
	}
	wg.Wait()
}

// A read deadline does not touch Write.
func ncReadTimeout(t *testing.T, p *ncPipe) {
	p.run(func() { chunked(io.Discard, p.c2) })
	p.c1.SetReadDeadline(aLongTimeAgo)
	_, err := p.c1.Read(make([]byte, 1024))
	wantTimeout(t, err)
	if _, err := p.c1.Write(make([]byte, 1024)); err != nil {
		t.Errorf("Write after a read timeout: %v", err)
	}
}

// A write deadline does not touch Read.
func ncWriteTimeout(t *testing.T, p *ncPipe) {
	p.run(func() { chunked(p.c2, rand.New(rand.NewSource(3))) })
	p.c1.SetWriteDeadline(aLongTimeAgo)
	_, err := p.c1.Write(make([]byte, 1024))
	wantTimeout(t, err)
	if _, err := p.c1.Read(make([]byte, 1024)); err != nil {
		t.Errorf("Read after a write timeout: %v", err)
	}
}

// A deadline in the past fails Read and Write at once, having moved no byte;
// cleared, the connection works again.
func ncPastTimeout(t *testing.T, p *ncPipe) {
	p.echo(p.c2)
	roundtrip(t, p.c1)
	p.c1.SetDeadline(aLongTimeAgo)
	n, err := p.c1.Write(make([]byte, 1024))
	if n != 0 {
		t.Errorf("Write past its deadline wrote %d bytes", n)
	}
	wantTimeout(t, err)
	n, err = p.c1.Read(make([]byte, 1024))
	if n != 0 {
		t.Errorf("Read past its deadline read %d bytes", n)
	}
	wantTimeout(t, err)
	roundtrip(t, p.c1)
}

// A deadline set in the past while a Read and Writes are blocked fails
// them, and not before it was set.
func ncPresentTimeout(t *testing.T, p *ncPipe) {
	// Nothing reads c2, so c1's writes block once the socket buffers are
	// full; nothing writes to c1, so its Read blocks.
	var set sync.Mutex
	deadlineSet := false
	isSet := func() bool { set.Lock(); defer set.Unlock(); return deadlineSet }
	var wg sync.WaitGroup
	wg.Go(func() {
		n, err := p.c1.Read(make([]byte, 1024))
		if n != 0 {
			t.Errorf("Read read %d bytes", n)
		}
		wantTimeout(t, err)
		if !isSet() {
			t.Error("Read timed out before the deadline was set")
		}
	})
	wg.Go(func() {
		var err error
		for i := 0; err == nil && i < 1e6; i++ {
			_, err = p.c1.Write(make([]byte, 1024))
		}
		wantTimeout(t, err)
		if !isSet() {
			t.Error("Write timed out before the deadline was set")
		}
	})
	// Not a time the code must beat: the calls fail the same whether
	// they are blocked by now or start after the deadline is set; the
	// pause makes the blocked case the likely one.
	time.Sleep(50 * time.Millisecond)
	set.Lock()
	deadlineSet = true
	set.Unlock()
	p.c1.SetReadDeadline(aLongTimeAgo)
	p.c1.SetWriteDeadline(aLongTimeAgo)
	wg.Wait()
}

// A deadline in the future ends the blocked calls when it comes; moved
// away, it lets them work again, with nothing lost on the way.
func ncFutureTimeout(t *testing.T, p *ncPipe) {
	p.c1.SetDeadline(time.Now().Add(100 * time.Millisecond))
	var wg sync.WaitGroup
	wg.Go(func() {
		_, err := p.c1.Read(make([]byte, 1024))
		wantTimeout(t, err)
	})
	wg.Go(func() {
		var err error
		for i := 0; err == nil && i < 1e6; i++ {
			_, err = p.c1.Write(make([]byte, 1024))
		}
		wantTimeout(t, err)
	})
	wg.Wait()
	p.echo(p.c2)
	resync(t, p.c1)
	roundtrip(t, p.c1)
}

// A deadline moved later while a Read waits holds the Read until the new
// deadline, and the bytes that come then are read; a deadline moved after
// it expired makes Read work again.
func ncMovedDeadline(t *testing.T, p *ncPipe) {
	p.c1.SetReadDeadline(time.Now().Add(time.Hour))
	got := make(chan error, 1)
	p.run(func() {
		buf := make([]byte, 5)
		_, err := io.ReadFull(p.c1, buf)
		if err == nil && string(buf) != "later" {
			t.Errorf("read %q, want %q", buf, "later")
		}
		got <- err
	})
	p.c1.SetReadDeadline(time.Now().Add(2 * time.Hour))
	p.c1.SetReadDeadline(time.Time{})
	if _, err := p.c2.Write([]byte("later")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Read under a moved deadline: %v", err)
	}

	p.c1.SetReadDeadline(aLongTimeAgo)
	_, err := p.c1.Read(make([]byte, 1))
	wantTimeout(t, err)
	p.c1.SetReadDeadline(time.Now().Add(time.Hour))
	p.c2.Write([]byte("!"))
	buf := make([]byte, 1)
	if _, err := p.c1.Read(buf); err != nil || buf[0] != '!' {
		t.Fatalf("Read after the deadline moved into the future: %q, %v", buf, err)
	}
}

// Close ends the Read and Writes in progress.
func ncCloseTimeout(t *testing.T, p *ncPipe) {
	p.echo(p.c2)
	p.c1.SetDeadline(time.Now().Add(time.Hour))
	var wg sync.WaitGroup
	wg.Go(func() {
		var err error
		buf := make([]byte, 1024)
		for i := 0; err == nil && i < 1e6; i++ {
			_, err = p.c1.Read(buf)
		}
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Read after Close: %v, want net.ErrClosed", err)
		}
	})
	wg.Go(func() {
		var err error
		buf := make([]byte, 1024)
		for i := 0; err == nil && i < 1e6; i++ {
			_, err = p.c1.Write(buf)
		}
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("Write after Close: %v, want net.ErrClosed", err)
		}
	})
	p.c1.Close()
	wg.Wait()
}

// All the methods at once, under the race detector; then the connection
// still works.
func ncConcurrentMethods(t *testing.T, p *ncPipe) {
	p.echo(p.c2)
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() { p.c1.Read(make([]byte, 1024)) })
		wg.Go(func() { p.c1.Write(make([]byte, 1024)) })
		wg.Go(func() { p.c1.SetDeadline(time.Now().Add(10 * time.Millisecond)) })
		wg.Go(func() { p.c1.SetReadDeadline(aLongTimeAgo) })
		wg.Go(func() { p.c1.SetWriteDeadline(aLongTimeAgo) })
		wg.Go(func() { p.c1.LocalAddr() })
		wg.Go(func() { p.c1.RemoteAddr() })
	}
	wg.Wait()
	resync(t, p.c1)
	roundtrip(t, p.c1)
}

// The close codes NetConn speaks: its Close is 1000, a 1000 from the peer
// reads as io.EOF, any other code as the CloseError, and a message of the
// other type fails the connection with 1003.
func TestNetConnClose(t *testing.T) {
	ctx := testCtx(t)
	t.Run("Close sends 1000", func(t *testing.T) {
		client, server := wsConnPair(t, nil)
		done := make(chan error, 1)
		go func() { _, _, err := server.Read(ctx); done <- err }()
		if err := NetConn(ctx, client, Binary).Close(); err != nil {
			t.Fatal(err)
		}
		var ce CloseError
		if err := <-done; !errors.As(err, &ce) || ce.Code != StatusNormalClosure {
			t.Fatalf("the peer read %v, want a CloseError with 1000", err)
		}
	})
	t.Run("1000 reads as io.EOF", func(t *testing.T) {
		client, server := wsConnPair(t, nil)
		nc := NetConn(ctx, client, Binary)
		go server.Close(StatusNormalClosure, "")
		if n, err := nc.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Fatalf("Read = %d, %v; want 0, io.EOF", n, err)
		}
	})
	t.Run("4000 reads as the CloseError", func(t *testing.T) {
		client, server := wsConnPair(t, nil)
		nc := NetConn(ctx, client, Binary)
		go server.Close(4000, "bye")
		var ce CloseError
		if _, err := nc.Read(make([]byte, 8)); !errors.As(err, &ce) || ce.Code != 4000 {
			t.Fatalf("Read = %v, want the CloseError 4000", err)
		}
	})
	t.Run("a text message fails a binary NetConn with 1003", func(t *testing.T) {
		client, server := wsConnPair(t, nil)
		nc := NetConn(ctx, server, Binary)
		done := make(chan error, 1)
		go func() {
			client.Write(ctx, Text, []byte("text"))
			_, _, err := client.Read(ctx)
			done <- err
		}()
		if _, err := nc.Read(make([]byte, 8)); err == nil {
			t.Fatal("Read of a text message succeeded")
		}
		var ce CloseError
		if err := <-done; !errors.As(err, &ce) || ce.Code != StatusUnsupportedData {
			t.Fatalf("the peer read %v, want a CloseError with 1003", err)
		}
	})
	t.Run("each Write is one message, read across boundaries", func(t *testing.T) {
		client, server := wsConnPair(t, nil)
		nc := NetConn(ctx, client, Text)
		for _, s := range []string{"one", "", "two"} {
			if _, err := nc.Write([]byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{"one", "two"} {
			typ, p, err := server.Read(ctx)
			if err != nil || typ != Text || string(p) != want {
				t.Fatalf("server read %v %q %v, want text %q", typ, p, err, want)
			}
		}
		server.Write(ctx, Text, []byte("ab"))
		server.Write(ctx, Text, []byte("cd"))
		buf := make([]byte, 4)
		if _, err := io.ReadFull(nc, buf); err != nil || string(buf) != "abcd" {
			t.Fatalf("ReadFull = %q, %v; want abcd", buf, err)
		}
		if nc.LocalAddr().String() != client.LocalAddr().String() || nc.RemoteAddr().String() != client.RemoteAddr().String() {
			t.Errorf("addresses %v %v, want the Conn's %v %v", nc.LocalAddr(), nc.RemoteAddr(), client.LocalAddr(), client.RemoteAddr())
		}
		done := make(chan struct{})
		go func() { server.Read(ctx); close(done) }() // answers the close
		if err := nc.Close(); err != nil {
			t.Error(err)
		}
		<-done
	})
}

// BenchmarkNetConn measures a byte stream through NetConn: writes of size
// bytes on the client's, io.ReadFull of the same on the server's.
func BenchmarkNetConn(b *testing.B) {
	for _, size := range []int{1 << 10, 32 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			client, server := benchPair(b, nil, nil)
			ctx := context.Background()
			w, r := NetConn(ctx, client, Binary), NetConn(ctx, server, Binary)
			p := make([]byte, size)
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.ResetTimer()
			done := make(chan error, 1)
			go func() {
				for range b.N {
					if _, err := w.Write(p); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
			for range b.N {
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
			}
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			var wg sync.WaitGroup
			wg.Go(func() { w.Close() })
			wg.Go(func() { r.Close() })
			wg.Wait()
		})
	}
}

// TestNetConnReadStreams: Read hands out a message's bytes as they arrive,
// not once the whole message is in; a read deadline that expires in the
// middle of a frame loses no byte: the next Read goes on where it stopped.
// A compressed message cut that way cannot go on, and Read says so rather
// than skip the rest of it.
func TestNetConnReadStreams(t *testing.T) {
	c, raw := serverPair(t, nil)
	nc := NetConn(testCtx(t), c, Binary)
	defer c.CloseNow()
	p := pattern(100<<10, 5)
	frame := raw.fs().frame(true, opBinary, p).bytes()
	hdr := len(frame) - len(p)
	first := hdr + 30000
	raw.write(frame[:first])
	nc.SetReadDeadline(time.Now().Add(testTimeout))
	got := make([]byte, 0, len(p))
	buf := make([]byte, 8<<10)
	for len(got) < first-hdr {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("Read with %d of %d bytes of the message sent: %v", len(got), len(p), err)
		}
		got = append(got, buf[:n]...)
	}
	nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if n, err := nc.Read(buf); n != 0 || err == nil {
		t.Fatalf("Read past what was sent: %d, %v", n, err)
	} else {
		wantTimeout(t, err)
	}
	nc.SetReadDeadline(time.Time{})
	raw.write(frame[first:], raw.fs().frame(true, opBinary, []byte("next")).bytes())
	for len(got) < len(p)+len("next") {
		n, err := nc.Read(buf)
		if err != nil {
			t.Fatalf("Read with %d bytes read: %v", len(got), err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, append(p, "next"...)) {
		t.Fatal("the stream differs from what was sent")
	}

	t.Run("compressed", func(t *testing.T) {
		c, raw, _ := dflServerPair(t, &AcceptOptions{Compression: &CompressionOptions{}}, "permessage-deflate; client_no_context_takeover")
		nc := NetConn(testCtx(t), c, Binary)
		defer c.CloseNow()
		p := dflRandom(50<<10, 1)
		frame := dflFrames(opBinary, true, true, [][]byte{dflCompress(t, p)})
		raw.write(frame[:len(frame)/2])
		nc.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
		var got []byte
		var err error
		for err == nil {
			var n int
			n, err = nc.Read(buf)
			got = append(got, buf[:n]...)
		}
		wantTimeout(t, err)
		nc.SetReadDeadline(time.Time{})
		raw.write(frame[len(frame)/2:])
		// What the decompressor held comes out, then the news.
		for !errors.Is(err, errMessageBroken) {
			var n int
			n, err = nc.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil && !errors.Is(err, errMessageBroken) {
				t.Fatalf("Read of the rest of a cut compressed message: %v, want %v", err, errMessageBroken)
			}
		}
		if !bytes.HasPrefix(p, got) {
			t.Fatal("the bytes read of the cut message are not its start")
		}
		raw.write(dflFrames(opBinary, false, true, [][]byte{[]byte("next")}))
		if n, err := nc.Read(buf); err != nil || string(buf[:n]) != "next" {
			t.Fatalf("Read = %q, %v; want the next message", buf[:n], err)
		}
	})
}
