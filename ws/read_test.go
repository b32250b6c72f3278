package ws

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func u64(v uint64) *uint64 { return &v }

// violation is a byte sequence a peer sends that breaks the protocol.
type violation struct {
	name string
	// send builds the bytes; s masks the frames as the peer must (client
	// frames masked, server frames unmasked).
	send func(s frameSet) []byte
	code StatusCode
	// only restricts the case to "server" or "client" (the side under test).
	only  string
	limit int64 // read limit of the Conn under test; 0 means the default
	// msgs are the messages the Conn must deliver before failing.
	msgs []string
}

func violations() []violation {
	vs := []violation{
		// 1002: framing.
		{name: "rsv1", code: 1002, send: func(s frameSet) []byte {
			f := s.frame(true, opText, []byte("x"))
			f.rsv = bitRSV1
			return f.bytes()
		}},
		{name: "rsv2", code: 1002, send: func(s frameSet) []byte {
			f := s.frame(true, opBinary, []byte("x"))
			f.rsv = bitRSV2
			return f.bytes()
		}},
		{name: "rsv3", code: 1002, send: func(s frameSet) []byte {
			f := s.frame(true, opText, nil)
			f.rsv = bitRSV3
			return f.bytes()
		}},
		{name: "rsv1 on ping", code: 1002, send: func(s frameSet) []byte {
			f := s.frame(true, opPing, []byte("p"))
			f.rsv = bitRSV1
			return f.bytes()
		}},
		{name: "rsv on continuation", code: 1002, send: func(s frameSet) []byte {
			f := s.frame(true, opContinuation, []byte("b"))
			f.rsv = bitRSV2
			return cat(s.frame(false, opText, []byte("a")).bytes(), f.bytes())
		}},
		{name: "ping payload 126", code: 1002, send: func(s frameSet) []byte {
			return s.msg(opPing, strings.Repeat("p", 126))
		}},
		{name: "pong payload 126", code: 1002, send: func(s frameSet) []byte {
			return s.msg(opPong, strings.Repeat("p", 126))
		}},
		{name: "close payload 126", code: 1002, send: func(s frameSet) []byte {
			return s.close(1000, strings.Repeat("r", 124))
		}},
		{name: "ping announced 64-bit", code: 1002, send: func(s frameSet) []byte {
			f := s.frame(true, opPing, nil)
			f.announce, f.ext64 = u64(1<<40), true
			return f.bytes()
		}},
		{name: "fragmented ping", code: 1002, send: func(s frameSet) []byte {
			return s.frame(false, opPing, []byte("p")).bytes()
		}},
		{name: "fragmented pong", code: 1002, send: func(s frameSet) []byte {
			return s.frame(false, opPong, nil).bytes()
		}},
		{name: "fragmented close", code: 1002, send: func(s frameSet) []byte {
			return s.frame(false, opClose, []byte{3, 232}).bytes()
		}},
		{name: "continuation with nothing to continue", code: 1002, send: func(s frameSet) []byte {
			return s.msg(opContinuation, "x")
		}},
		{name: "continuation without FIN with nothing to continue", code: 1002, send: func(s frameSet) []byte {
			return s.frame(false, opContinuation, []byte("x")).bytes()
		}},
		{name: "continuation after a finished message", code: 1002, msgs: []string{"ab"}, send: func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("a")).bytes(), s.msg(opContinuation, "b"), s.msg(opContinuation, "c"))
		}},
		{name: "text inside a fragmented message", code: 1002, send: func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("a")).bytes(), s.msg(opText, "b"))
		}},
		{name: "binary inside a fragmented message", code: 1002, send: func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("a")).bytes(), s.msg(opBinary, "b"))
		}},
		{name: "text after a ping inside a fragmented message", code: 1002, send: func(s frameSet) []byte {
			return cat(s.frame(false, opBinary, []byte("a")).bytes(), s.msg(opPing, ""), s.frame(false, opText, nil).bytes())
		}},
		{name: "unmasked client frame", only: "server", code: 1002, send: func(frameSet) []byte {
			return frameSet{masked: false}.msg(opText, "hello")
		}},
		{name: "unmasked client control frame", only: "server", code: 1002, send: func(frameSet) []byte {
			return frameSet{masked: false}.msg(opPing, "hello")
		}},
		{name: "masked server frame", only: "client", code: 1002, send: func(frameSet) []byte {
			return frameSet{masked: true}.msg(opText, "hello")
		}},
		{name: "masked server close", only: "client", code: 1002, send: func(frameSet) []byte {
			return frameSet{masked: true}.close(1000, "")
		}},
		{name: "64-bit length with top bit", code: 1002, send: func(s frameSet) []byte {
			f := s.frame(true, opBinary, nil)
			f.announce = u64(1 << 63)
			return f.bytes()
		}},
		{name: "64-bit length all ones", code: 1002, send: func(s frameSet) []byte {
			f := s.frame(true, opBinary, nil)
			f.announce = u64(^uint64(0))
			return f.bytes()
		}},
		{name: "close payload of 1 byte", code: 1002, send: func(s frameSet) []byte {
			return s.frame(true, opClose, []byte{3}).bytes()
		}},

		// 1007: text that is not UTF-8.
		{name: "invalid UTF-8", code: 1007, send: func(s frameSet) []byte {
			return s.msg(opText, "hello \xff world")
		}},
		{name: "invalid UTF-8 after valid messages", code: 1007, msgs: []string{"one", "twö"}, send: func(s frameSet) []byte {
			return cat(s.msg(opText, "one"), s.msg(opText, "twö"), s.msg(opText, "\xc3\x28"))
		}},
		{name: "surrogate", code: 1007, send: func(s frameSet) []byte {
			return s.msg(opText, "\xed\xa0\x80")
		}},
		{name: "overlong", code: 1007, send: func(s frameSet) []byte {
			return s.msg(opText, "\xc0\xaf")
		}},
		{name: "above U+10FFFF", code: 1007, send: func(s frameSet) []byte {
			return s.msg(opText, "\xf4\x90\x80\x80")
		}},
		{name: "invalid sequence split across fragments", code: 1007, send: func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("ab\xe2\x82")).bytes(), s.frame(true, opContinuation, []byte("(cd")).bytes())
		}},
		{name: "message ends inside a sequence", code: 1007, send: func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("ab\xe2")).bytes(), s.frame(true, opContinuation, []byte("\x82")).bytes())
		}},
		{name: "single frame ends inside a sequence", code: 1007, send: func(s frameSet) []byte {
			return s.msg(opText, "ab\xf0\x9f\x98")
		}},
		{name: "fail fast: bad fragment without FIN", code: 1007, send: func(s frameSet) []byte {
			return s.frame(false, opText, []byte("valid so far \xff")).bytes()
		}},
		{name: "fail fast: bad byte in the middle of an unfinished frame", code: 1007, send: func(s frameSet) []byte {
			f := s.frame(false, opText, []byte("ok \xc0 more"))
			f.announce = u64(100) // the rest of the frame never comes
			return f.bytes()[:2+4*b2i(s.masked)+9]
		}},
		{name: "fail fast: bad continuation without FIN", code: 1007, send: func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("\xe2\x82")).bytes(), s.frame(false, opContinuation, []byte("\x28")).bytes())
		}},
		{name: "invalid UTF-8 in a close reason", code: 1007, send: func(s frameSet) []byte {
			return s.close(1000, "bye \xff")
		}},

		// 1009: the read limit, enforced from the header.
		{name: "message over the limit", code: 1009, limit: 10, send: func(s frameSet) []byte {
			return s.msg(opBinary, "0123456789a")
		}},
		{name: "message at the limit, then one over", code: 1009, limit: 10, msgs: []string{"0123456789"}, send: func(s frameSet) []byte {
			return cat(s.msg(opBinary, "0123456789"), s.msg(opText, "0123456789a"))
		}},
		{name: "huge announced length, no payload", code: 1009, send: func(s frameSet) []byte {
			f := s.frame(true, opBinary, nil)
			f.announce = u64(1 << 62)
			return f.bytes()
		}},
		{name: "default limit exceeded by 1 byte, no payload", code: 1009, send: func(s frameSet) []byte {
			f := s.frame(true, opBinary, nil)
			f.announce = u64(DefaultReadLimit + 1)
			return f.bytes()
		}},
		{name: "limit crossed by a later fragment", code: 1009, limit: 10, send: func(s frameSet) []byte {
			f := s.frame(true, opContinuation, nil)
			f.announce = u64(5) // payload never sent
			return cat(s.frame(false, opText, []byte("012345")).bytes(), s.msg(opPing, "x"), f.bytes())
		}},
		{name: "limit crossed by a huge later fragment", code: 1009, limit: 1 << 20, send: func(s frameSet) []byte {
			f := s.frame(true, opContinuation, nil)
			f.announce = u64(1<<63 - 1)
			return cat(s.frame(false, opBinary, []byte("0")).bytes(), f.bytes())
		}},
	}
	for _, op := range []opcode{3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF} {
		vs = append(vs, violation{name: fmt.Sprintf("reserved opcode %#x", byte(op)), code: 1002, send: func(s frameSet) []byte {
			return s.msg(op, "")
		}})
	}
	for _, op := range []opcode{3, 0xB} {
		vs = append(vs, violation{name: fmt.Sprintf("reserved opcode %#x inside a fragmented message", byte(op)), code: 1002, send: func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("a")).bytes(), s.msg(op, "b"))
		}})
	}
	for _, code := range []StatusCode{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		vs = append(vs, violation{name: fmt.Sprintf("close code %d", code), code: 1002, send: func(s frameSet) []byte {
			return s.close(code, "")
		}})
	}
	return vs
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestProtocolViolations sends each violation to a server Conn and to a
// client Conn, and checks both what the peer receives on the wire (a close
// frame with the RFC's code, then the end of TCP) and the error the Conn's
// read returns (a *ProtocolError with that code, sticky). Each case runs with
// the bytes written at once and one byte at a time.
func TestProtocolViolations(t *testing.T) {
	for _, v := range violations() {
		for i, sd := range bothSides(connConfig{}) {
			if v.only != "" && v.only != strings.TrimSuffix(sd.name, "/portable") {
				continue
			}
			for _, slow := range []bool{false, true} {
				name := sd.name + "/" + v.name
				if slow {
					name += "/bytewise"
				}
				t.Run(name, func(t *testing.T) {
					cfg := connConfig{readLimit: v.limit}
					sd := bothSides(cfg)[i]
					c, raw := sd.pair(t)
					b := v.send(raw.fs())
					if slow {
						writeSlowlyTolerant(raw, b)
					} else {
						raw.write(b)
					}
					msgs, err := readAll(testCtx(t), c)
					if fmt.Sprint(msgs) != fmt.Sprint(v.msgs) {
						t.Errorf("messages before the error: %q, want %q", msgs, v.msgs)
					}
					wantProtocolError(t, err, v.code)
					raw.expectClose(v.code)
					// The error sticks, on every read path.
					_, _, err2 := c.Read(testCtx(t))
					wantProtocolError(t, err2, v.code)
					_, err2 = c.Next(testCtx(t))
					wantProtocolError(t, err2, v.code)
					// Writes fail: the connection is gone.
					if err := c.Write(testCtx(t), Text, []byte("x")); err == nil {
						t.Error("Write after a protocol error succeeded")
					}
				})
			}
		}
	}
}

// writeSlowlyTolerant writes b one byte at a time, stopping quietly at the
// first error (the Conn may fail the connection before the last byte).
func writeSlowlyTolerant(raw *rawConn, b []byte) {
	for i := range b {
		if _, err := raw.nc.Write(b[i : i+1]); err != nil {
			return
		}
	}
}

// TestValidMessages sends well-formed sequences and checks what a Read
// returns, on both sides: fragmentation, interleaved control frames, every
// length encoding boundary, empty messages, and UTF-8 split across fragments.
func TestValidMessages(t *testing.T) {
	type msg struct {
		typ  MessageType
		body string
	}
	big := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = 'a' + byte(i%26)
		}
		return string(b)
	}
	cases := []struct {
		name string
		send func(s frameSet) []byte
		want []msg
	}{
		{"empty text", func(s frameSet) []byte { return s.msg(opText, "") }, []msg{{Text, ""}}},
		{"empty binary", func(s frameSet) []byte { return s.msg(opBinary, "") }, []msg{{Binary, ""}}},
		{"fragments", func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("he")).bytes(), s.frame(false, opContinuation, []byte("ll")).bytes(), s.msg(opContinuation, "o"))
		}, []msg{{Text, "hello"}}},
		{"empty fragments", func(s frameSet) []byte {
			return cat(s.frame(false, opBinary, nil).bytes(), s.frame(false, opContinuation, nil).bytes(), s.msg(opContinuation, ""))
		}, []msg{{Binary, ""}}},
		{"control frames between fragments", func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("he")).bytes(), s.msg(opPing, "1"), s.msg(opPong, "x"),
				s.frame(false, opContinuation, []byte("ll")).bytes(), s.msg(opPing, "2"), s.msg(opContinuation, "o"))
		}, []msg{{Text, "hello"}}},
		{"unsolicited pongs", func(s frameSet) []byte {
			return cat(s.msg(opPong, ""), s.msg(opPong, "unsolicited"), s.msg(opBinary, "b"))
		}, []msg{{Binary, "b"}}},
		{"UTF-8 split inside 2-byte sequence", func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("\xc3")).bytes(), s.msg(opContinuation, "\xa9"))
		}, []msg{{Text, "é"}}},
		{"UTF-8 split inside 4-byte sequence at every point", func(s frameSet) []byte {
			return cat(s.frame(false, opText, []byte("\xf0")).bytes(), s.frame(false, opContinuation, []byte("\x9f")).bytes(),
				s.frame(false, opContinuation, []byte("\x98")).bytes(), s.msg(opContinuation, "\x80"))
		}, []msg{{Text, "😀"}}},
		{"invalid UTF-8 in binary", func(s frameSet) []byte { return s.msg(opBinary, "\xff\xfe") }, []msg{{Binary, "\xff\xfe"}}},
		{"lengths 125 126 127", func(s frameSet) []byte {
			return cat(s.msg(opBinary, big(125)), s.msg(opBinary, big(126)), s.msg(opText, big(127)))
		}, []msg{{Binary, big(125)}, {Binary, big(126)}, {Text, big(127)}}},
		{"lengths 65535 65536", func(s frameSet) []byte {
			return cat(s.msg(opBinary, big(65535)), s.msg(opText, big(65536)))
		}, []msg{{Binary, big(65535)}, {Text, big(65536)}}},
		{"non-minimal length encodings", func(s frameSet) []byte {
			f := s.frame(true, opText, []byte("abc"))
			f.ext64 = true
			return f.bytes()
		}, []msg{{Text, "abc"}}},
		{"ping of 125 bytes", func(s frameSet) []byte { return cat(s.msg(opPing, big(125)), s.msg(opText, "t")) }, []msg{{Text, "t"}}},
	}
	for _, tc := range cases {
		for _, sd := range bothSides(connConfig{}) {
			for _, slow := range []bool{false, true} {
				name := sd.name + "/" + tc.name
				if slow {
					// Byte by byte only where that is quick: the
					// masked and the plain frames are as long.
					if len(tc.send(frameSet{})) > 2000 {
						continue
					}
					name += "/bytewise"
				}
				t.Run(name, func(t *testing.T) {
					c, raw := sd.pair(t)
					b := tc.send(raw.fs())
					done := goAsync(t, func() error {
						if slow {
							raw.writeSlowly(b)
						} else {
							raw.write(b)
						}
						raw.write(raw.fs().close(4000, "end"))
						return nil
					})
					var got []msg
					for {
						typ, body, err := c.Read(testCtx(t))
						if err != nil {
							wantCloseError(t, err, 4000, "end")
							break
						}
						got = append(got, msg{typ, string(body)})
					}
					done()
					if fmt.Sprint(got) != fmt.Sprint(tc.want) {
						t.Fatalf("got %.300s\nwant %.300s", fmt.Sprint(got), fmt.Sprint(tc.want))
					}
					// The peer gets a pong for each ping, then our echo of its close.
					for {
						f := raw.read()
						if f.op == opPong {
							continue
						}
						if f.op != opClose || f.closeCode() != 4000 {
							t.Fatalf("got frame %v, want the echo of close 4000", f)
						}
						break
					}
					raw.expectEOF()
				})
			}
		}
	}
}

// TestReadStreamsAsFramesArrive checks that the body of a message is handed
// out as its frames arrive, before the message is complete.
func TestReadStreamsAsFramesArrive(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			ctx := testCtx(t)
			raw.write(s.frame(false, opBinary, []byte("first")).bytes())
			typ, r, err := c.Reader(ctx)
			if err != nil || typ != Binary {
				t.Fatalf("Reader: %v %v", typ, err)
			}
			buf := make([]byte, 64)
			n, err := r.Read(buf)
			if err != nil || string(buf[:n]) != "first" {
				t.Fatalf("first read: %q %v", buf[:n], err)
			}
			// Half a frame: the body hands out what arrived.
			f := s.frame(true, opContinuation, []byte("second"))
			b := f.bytes()
			raw.write(b[:len(b)-3])
			n, err = r.Read(buf)
			if err != nil || string(buf[:n]) != "sec"[:min(n, 3)] || n == 0 {
				t.Fatalf("second read: %q %v", buf[:n], err)
			}
			got := string(buf[:n])
			raw.write(b[len(b)-3:])
			rest, err := io.ReadAll(r)
			if err != nil || got+string(rest) != "second" {
				t.Fatalf("rest: %q %v", got+string(rest), err)
			}
			// The body stays at EOF.
			if n, err := r.Read(buf); n != 0 || err != io.EOF {
				t.Fatalf("read after EOF: %d %v", n, err)
			}
		})
	}
}

// TestNextDiscardsUnreadBody checks that Next skips the unread rest of the
// previous message (still checking it), and that reading past EOF is EOF.
func TestNextDiscardsUnreadBody(t *testing.T) {
	for _, sd := range bothSides(connConfig{}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			ctx := testCtx(t)
			raw.write(cat(s.frame(false, opText, []byte("skip ")).bytes(), s.msg(opPing, "p"), s.msg(opContinuation, "me"), s.msg(opBinary, "next")))
			m, err := c.Next(ctx)
			if err != nil || m.Type != Text {
				t.Fatalf("Next: %v %v", m.Type, err)
			}
			var b [2]byte
			if _, err := io.ReadFull(m.Body, b[:]); err != nil {
				t.Fatal(err)
			}
			m2, err := c.Next(ctx)
			if err != nil || m2.Type != Binary {
				t.Fatalf("Next: %v %v", m2.Type, err)
			}
			body, err := io.ReadAll(m2.Body)
			if err != nil || string(body) != "next" {
				t.Fatalf("second message %q %v", body, err)
			}
			raw.expectFrame(true, opPong, "p")

			// A skipped text message is still checked for UTF-8.
			raw.write(cat(s.frame(false, opText, []byte("ok")).bytes(), s.msg(opContinuation, "\xff")))
			if _, err := c.Next(ctx); err != nil {
				t.Fatal(err)
			}
			_, err = c.Next(ctx)
			wantProtocolError(t, err, 1007)
			raw.expectClose(1007)
		})
	}
}

// TestReadLimit checks SetReadLimit: a message at the limit passes, the
// limit counts whole messages across fragments, -1 removes it.
func TestReadLimit(t *testing.T) {
	c, raw := serverPair(t, nil)
	s := raw.fs()
	ctx := testCtx(t)
	c.SetReadLimit(4)
	raw.write(cat(s.msg(opText, "1234"), s.frame(false, opText, []byte("12")).bytes(), s.msg(opContinuation, "34")))
	for range 2 {
		if _, b, err := c.Read(ctx); err != nil || string(b) != "1234" {
			t.Fatalf("Read: %q %v", b, err)
		}
	}
	c.SetReadLimit(-1)
	raw.write(s.msg(opBinary, strings.Repeat("x", 1000)))
	if _, b, err := c.Read(ctx); err != nil || len(b) != 1000 {
		t.Fatalf("Read: %d %v", len(b), err)
	}
	c.SetReadLimit(0)
	raw.write(s.msg(opBinary, "x"))
	_, _, err := c.Read(ctx)
	wantProtocolError(t, err, 1009)
	raw.expectClose(1009)
}

// TestReadHugeAnnouncedUnlimited checks that Read does not trust an
// announced length: with no read limit, a frame announcing 2^62 bytes must
// not make Read allocate that (a peer could crash the process with 10 bytes).
func TestReadHugeAnnouncedUnlimited(t *testing.T) {
	for _, sd := range bothSides(connConfig{readLimit: -1}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			f := raw.fs().frame(true, opBinary, nil)
			f.announce = u64(1 << 62)
			raw.write(f.bytes(), []byte("some bytes"))
			done := goAsync(t, func() error {
				_, _, err := c.Read(testCtx(t))
				return err
			})
			raw.nc.Close()
			err := done()
			var ce CloseError
			if !errors.As(err, &ce) || ce.Code != StatusAbnormalClosure {
				t.Fatalf("got %v, want an abnormal closure", err)
			}
		})
	}
}

// TestReadAbnormalClosure checks the "end" event: TCP ending without a close
// frame, between messages and inside one, reads as 1006 and
// io.ErrUnexpectedEOF, not io.EOF.
func TestReadAbnormalClosure(t *testing.T) {
	for _, mid := range []bool{false, true} {
		for _, sd := range bothSides(connConfig{}) {
			t.Run(fmt.Sprintf("%s/mid-frame=%v", sd.name, mid), func(t *testing.T) {
				c, raw := sd.pair(t)
				if mid {
					b := raw.fs().msg(opText, "hello")
					raw.write(b[:len(b)-2])
				}
				raw.nc.Close()
				_, _, err := c.Read(testCtx(t))
				var ce CloseError
				if !errors.As(err, &ce) || ce.Code != StatusAbnormalClosure {
					t.Fatalf("got %v, want CloseError 1006", err)
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
					t.Fatalf("%v: want io.ErrUnexpectedEOF and not io.EOF", err)
				}
				_, _, err2 := c.Read(testCtx(t))
				if err2 == nil || err2.Error() != err.Error() {
					t.Fatalf("second read: %v, want the same error %v", err2, err)
				}
			})
		}
	}
}

// TestOnPing checks the ping hook sees each payload before the pong.
func TestOnPing(t *testing.T) {
	got := make(chan string, 4)
	for _, sd := range bothSides(connConfig{onPing: func(p []byte) { got <- string(p) }}) {
		t.Run(sd.name, func(t *testing.T) {
			c, raw := sd.pair(t)
			s := raw.fs()
			raw.write(cat(s.msg(opPing, "a"), s.msg(opPing, ""), s.msg(opText, "x")))
			if _, b, err := c.Read(testCtx(t)); err != nil || string(b) != "x" {
				t.Fatalf("Read %q %v", b, err)
			}
			raw.expectFrame(true, opPong, "a")
			raw.expectFrame(true, opPong, "")
			if a, b := <-got, <-got; a != "a" || b != "" {
				t.Fatalf("OnPing saw %q %q", a, b)
			}
		})
	}
}

// TestMessageReaderSmallReads reads a text message one byte at a time, so
// multi-byte runes are validated across reads.
func TestMessageReaderSmallReads(t *testing.T) {
	c, raw := serverPair(t, nil)
	s := raw.fs()
	text := "héllo wörld 😀 日本語"
	raw.write(cat(s.frame(false, opText, []byte(text[:5])).bytes(), s.msg(opContinuation, text[5:])))
	_, r, err := c.Reader(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	var b [1]byte
	for range 100 {
		n, err := r.Read(b[:])
		out.Write(b[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if out.String() != text {
		t.Fatalf("got %q", out.String())
	}
}
