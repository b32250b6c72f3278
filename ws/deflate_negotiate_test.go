package ws

// permessage-deflate negotiation (RFC 7692 §5, §7.1), both sides: the
// server's choice among a client's offers (unit level and through real
// handshakes with raw HTTP requests), and the client's check of a server's
// answer (against hand-written servers).

import (
	"bytes"
	"compress/flate"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// dflOfferCase is one client offer (the values of Sec-WebSocket-Extensions
// header lines) and the server's expected answer.
type dflOfferCase struct {
	name   string
	offers []string // one header line each
	ok     bool     // an offer is accepted
	// The parameters the client asked for in the accepted offer, which the
	// answer must carry whatever the server's options.
	serverNoTakeover, clientNoTakeover bool
	serverBits                         string // server_max_window_bits to echo, or ""
}

func dflOfferCases() []dflOfferCase {
	const pmd = "permessage-deflate"
	ok := func(name string, offers ...string) dflOfferCase {
		return dflOfferCase{name: name, offers: offers, ok: true}
	}
	no := func(name string, offers ...string) dflOfferCase {
		return dflOfferCase{name: name, offers: offers}
	}
	sNT := func(c dflOfferCase) dflOfferCase { c.serverNoTakeover = true; return c }
	cNT := func(c dflOfferCase) dflOfferCase { c.clientNoTakeover = true; return c }
	bits := func(c dflOfferCase, v string) dflOfferCase { c.serverBits = v; return c }
	return []dflOfferCase{
		// Each parameter alone.
		ok("bare", pmd),
		sNT(ok("server_no_context_takeover", pmd+"; server_no_context_takeover")),
		cNT(ok("client_no_context_takeover", pmd+"; client_no_context_takeover")),
		ok("client_max_window_bits/no-value", pmd+"; client_max_window_bits"),
		ok("client_max_window_bits=8", pmd+"; client_max_window_bits=8"),
		ok("client_max_window_bits=10", pmd+"; client_max_window_bits=10"),
		ok("client_max_window_bits=15", pmd+"; client_max_window_bits=15"),
		ok("client_max_window_bits=quoted", pmd+`; client_max_window_bits="12"`), // RFC 7692 §7.1: quoted-string form allowed
		bits(ok("server_max_window_bits=15", pmd+"; server_max_window_bits=15"), "15"),
		bits(ok("server_max_window_bits=quoted-15", pmd+`; server_max_window_bits="15"`), "15"),
		// Combined.
		sNT(cNT(ok("both-no-takeover", pmd+"; server_no_context_takeover; client_no_context_takeover"))),
		sNT(cNT(bits(ok("all", pmd+"; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits; server_no_context_takeover"), "15"))),
		cNT(bits(ok("all-with-values", pmd+"; client_max_window_bits=9; server_max_window_bits=15; client_no_context_takeover"), "15")),
		sNT(ok("spacing-and-case", "  PerMessage-Deflate ;Server_No_Context_Takeover ;  client_max_window_bits = 11  ")),
		// server_max_window_bits below 15 is honoured by Huffman coding
		// alone (compress/flate has a 32 KiB window); a missing or bad
		// value is invalid.
		bits(ok("server_max_window_bits=14", pmd+"; server_max_window_bits=14"), "14"),
		bits(ok("server_max_window_bits=9", pmd+"; server_max_window_bits=9"), "9"),
		bits(ok("server_max_window_bits=8", pmd+"; server_max_window_bits=8"), "8"),
		no("server_max_window_bits/no-value", pmd+"; server_max_window_bits"),
		no("server_max_window_bits=empty", pmd+"; server_max_window_bits="),
		no("server_max_window_bits=7", pmd+"; server_max_window_bits=7"),
		no("server_max_window_bits=16", pmd+"; server_max_window_bits=16"),
		no("server_max_window_bits=abc", pmd+"; server_max_window_bits=abc"),
		no("server_max_window_bits=quoted-abc", pmd+`; server_max_window_bits="abc"`),
		no("server_max_window_bits=quoted-16", pmd+`; server_max_window_bits="16"`),
		no("server_max_window_bits=015", pmd+"; server_max_window_bits=015"),
		no("server_max_window_bits=+15", pmd+"; server_max_window_bits=+15"),
		no("client_max_window_bits=7", pmd+"; client_max_window_bits=7"),
		no("client_max_window_bits=16", pmd+"; client_max_window_bits=16"),
		no("client_max_window_bits=abc", pmd+"; client_max_window_bits=abc"),
		no("client_max_window_bits=empty", pmd+"; client_max_window_bits="),
		no("client_max_window_bits=quoted-abc", pmd+`; client_max_window_bits="abc"`),
		no("client_max_window_bits=quoted-7", pmd+`; client_max_window_bits="7"`),
		no("client_max_window_bits=quoted-empty", pmd+`; client_max_window_bits=""`),
		no("client_max_window_bits=08", pmd+"; client_max_window_bits=08"), // no leading zeroes
		no("client_max_window_bits=+9", pmd+"; client_max_window_bits=+9"),
		no("client_max_window_bits=-9", pmd+"; client_max_window_bits=-9"),
		no("client_max_window_bits=9.0", pmd+"; client_max_window_bits=9.0"),
		// The no_context_takeover parameters have no value.
		no("server_no_context_takeover=1", pmd+"; server_no_context_takeover=1"),
		no("client_no_context_takeover=quoted", pmd+`; client_no_context_takeover="x"`),
		// Duplicates.
		no("dup/server_no_context_takeover", pmd+"; server_no_context_takeover; server_no_context_takeover"),
		no("dup/client_no_context_takeover", pmd+"; client_no_context_takeover; client_no_context_takeover"),
		no("dup/client_max_window_bits", pmd+"; client_max_window_bits; client_max_window_bits=10"),
		no("dup/server_max_window_bits", pmd+"; server_max_window_bits=15; server_max_window_bits=15"),
		no("dup/case", pmd+"; server_no_context_takeover; SERVER_NO_CONTEXT_TAKEOVER"),
		// Unknown parameters.
		no("unknown", pmd+"; foo"),
		no("unknown-with-value", pmd+"; mux=1"),
		no("unknown-among-known", pmd+"; server_no_context_takeover; x_window=9; client_no_context_takeover"),
		// Other extensions only, or nothing.
		no("other-extension", "x-webkit-deflate-frame"),
		no("deflate-prefix", "permessage-deflate2"),
		no("empty-header", ""),
		// Several offers: the first acceptable one wins.
		cNT(ok("two-offers/first-declined", pmd+"; server_max_window_bits=7, "+pmd+"; client_no_context_takeover")),
		bits(ok("two-offers/small-window-first", pmd+"; server_max_window_bits=10, "+pmd+"; client_no_context_takeover"), "10"),
		cNT(ok("two-offers/first-wins", pmd+"; client_no_context_takeover, "+pmd+"; server_no_context_takeover")),
		ok("other-then-pmd", "x-webkit-deflate-frame, "+pmd),
		sNT(ok("three-offers", pmd+"; foo, "+pmd+"; server_max_window_bits=16; server_no_context_takeover, "+pmd+"; server_no_context_takeover")),
		sNT(cNT(bits(ok("autobahn-13.7", pmd+"; client_no_context_takeover; client_max_window_bits; server_no_context_takeover; server_max_window_bits=8, "+
			pmd+"; client_no_context_takeover; client_max_window_bits; server_no_context_takeover, "+pmd+"; client_no_context_takeover; client_max_window_bits"), "8"))),
		no("two-offers/none-acceptable", pmd+"; server_max_window_bits=16, "+pmd+"; bar"),
		// Several header lines, in order.
		sNT(ok("two-lines/first-declined", pmd+"; server_max_window_bits=012", pmd+"; server_no_context_takeover")),
		cNT(ok("two-lines/first-wins", pmd+"; client_no_context_takeover", pmd+"; server_no_context_takeover")),
		bits(ok("three-lines", "x-foo; a=1", pmd+"; client_max_window_bits=16", pmd+"; server_max_window_bits=15"), "15"),
		no("two-lines/none-acceptable", pmd+"; a", pmd+"; b"),
		// Malformed headers: the connection opens uncompressed.
		no("malformed/empty-param", pmd+"; ; server_no_context_takeover"),
		no("malformed/param-no-name", pmd+"; =15"),
		no("malformed/unbalanced-quote", pmd+`; client_max_window_bits="10`),
		no("malformed/space-in-value", pmd+"; client_max_window_bits=1 0"),
		no("malformed/bad-name", "permessage deflate"),
		no("malformed/separator-name", "@pmd"),
		no("malformed/other-line-bad", "x-foo; =", pmd),
	}
}

// dflParseAnswer parses a server's Sec-WebSocket-Extensions answer into its
// name and the set of its parameters, written independently of
// parseExtensions.
func dflParseAnswer(t testing.TB, v string) (name string, params map[string]string) {
	t.Helper()
	parts := strings.Split(v, ";")
	params = map[string]string{}
	for _, p := range parts[1:] {
		k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
		if _, dup := params[k]; dup {
			t.Fatalf("answer %q repeats %s", v, k)
		}
		params[k] = val
	}
	return strings.TrimSpace(parts[0]), params
}

// dflCheckAnswer checks the server's answer to offer case tc with server
// option takeover: what the client asked for is granted, and without
// takeover the server asks for no context takeover both ways.
func dflCheckAnswer(t testing.TB, tc dflOfferCase, takeover bool, answer string) {
	t.Helper()
	name, params := dflParseAnswer(t, answer)
	if name != "permessage-deflate" {
		t.Fatalf("answer %q: extension %q", answer, name)
	}
	want := map[string]string{}
	if tc.serverNoTakeover || !takeover {
		want["server_no_context_takeover"] = ""
	}
	if tc.clientNoTakeover || !takeover {
		want["client_no_context_takeover"] = ""
	}
	if tc.serverBits != "" {
		// RFC 7692 §7.1.2.1: a server accepts an offer with
		// server_max_window_bits by including it in its answer.
		want["server_max_window_bits"] = tc.serverBits
	}
	if len(params) != len(want) {
		t.Fatalf("answer %q, want the parameters %v", answer, want)
	}
	for k, v := range want {
		if got, ok := params[k]; !ok || got != v {
			t.Fatalf("answer %q, want the parameters %v", answer, want)
		}
	}
}

// TestDeflateNegotiateUnit runs acceptDeflate on every offer case, with and
// without context takeover in the server's options.
func TestDeflateNegotiateUnit(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		for _, tc := range dflOfferCases() {
			t.Run(dflTakeoverName(takeover)+"/"+tc.name, func(t *testing.T) {
				opts := &CompressionOptions{ContextTakeover: takeover}
				offers, err := parseExtensions(tc.offers)
				var p deflateParams
				ok := false
				if err == nil {
					p, ok = acceptDeflate(offers, opts)
				}
				if ok != tc.ok {
					t.Fatalf("offers %q: accepted %v (parse error %v), want %v", tc.offers, ok, err, tc.ok)
				}
				if !ok {
					return
				}
				dflCheckAnswer(t, tc, takeover, p.String())
				// The state each side keeps follows the answer.
				for _, client := range []bool{false, true} {
					d := newDeflateState(p, client, opts)
					sNT := p.serverNoTakeover
					cNT := p.clientNoTakeover
					wantOut, wantIn := !sNT, !cNT
					if client {
						wantOut, wantIn = !cNT && takeover, !sNT
					}
					if d.takeoverOut != wantOut || d.takeoverIn != wantIn {
						t.Fatalf("client=%v: takeoverOut %v takeoverIn %v, want %v %v", client, d.takeoverOut, d.takeoverIn, wantOut, wantIn)
					}
					// A server window under 15 is kept by Huffman coding
					// alone.
					wantLevel := flate.BestSpeed
					if !client && tc.serverBits != "" && tc.serverBits != "15" {
						wantLevel = flate.HuffmanOnly
					}
					if d.level != wantLevel {
						t.Fatalf("client=%v: level %d, want %d", client, d.level, wantLevel)
					}
				}
			})
		}
	}
}

func dflTakeoverName(takeover bool) string {
	if takeover {
		return "takeover"
	}
	return "no-takeover"
}

// TestDeflateNegotiateHandshake runs every offer case through a real
// handshake: a raw HTTP request to Accept. An accepted offer is answered
// and a compressed message passes both ways; a declined one (malformed
// headers included) still opens the connection, uncompressed.
func TestDeflateNegotiateHandshake(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		for _, tc := range dflOfferCases() {
			t.Run(dflTakeoverName(takeover)+"/"+tc.name, func(t *testing.T) {
				opts := &AcceptOptions{Compression: &CompressionOptions{ContextTakeover: takeover, Threshold: -1}}
				c, raw, resp := dflServerPair(t, opts, tc.offers...)
				answer := resp.Header.Values("Sec-WebSocket-Extensions")
				ctx := testCtx(t)
				if !tc.ok {
					if len(answer) != 0 {
						t.Fatalf("offers %q answered %q, want no extension", tc.offers, answer)
					}
					if c.deflate != nil {
						t.Fatal("compression is on without an answer")
					}
					// The connection works, uncompressed.
					raw.write(raw.fs().msg(opText, "plain"))
					if typ, b, err := c.Read(ctx); err != nil || typ != Text || string(b) != "plain" {
						t.Fatalf("Read: %v %v %q", typ, err, b)
					}
					if err := c.Write(ctx, Text, bytes.Repeat([]byte("x"), 1000)); err != nil {
						t.Fatal(err)
					}
					f := raw.read()
					if f.rsv != 0 || len(f.payload) != 1000 {
						t.Fatalf("uncompressed connection sent %v", f)
					}
					return
				}
				if len(answer) != 1 {
					t.Fatalf("offers %q answered %q, want one extension", tc.offers, answer)
				}
				dflCheckAnswer(t, tc, takeover, answer[0])
				if c.deflate == nil {
					t.Fatal("answered but compression is off")
				}
				wantOut := takeover && !tc.serverNoTakeover
				wantIn := takeover && !tc.clientNoTakeover
				if c.deflate.takeoverOut != wantOut || c.deflate.takeoverIn != wantIn {
					t.Fatalf("takeoverOut %v takeoverIn %v, want %v %v", c.deflate.takeoverOut, c.deflate.takeoverIn, wantOut, wantIn)
				}
				// A compressed message each way, twice (the second one
				// exercises the kept or reset context).
				var z dflCompressor
				msg := dflText(3000, 1)
				for i := range 2 {
					payload := z.message(t, msg)
					if !wantIn {
						payload = dflCompress(t, msg)
					}
					raw.write(dflFrames(opText, true, true, [][]byte{payload}))
					if typ, b, err := c.Read(ctx); err != nil || typ != Text || !bytes.Equal(b, msg) {
						t.Fatalf("message %d: Read: %v %v %d bytes", i, typ, err, len(b))
					}
				}
				var sent [][]byte
				for i := range 2 {
					if err := c.Write(ctx, Text, msg); err != nil {
						t.Fatal(err)
					}
					f := raw.read()
					if !f.fin || f.rsv != bitRSV1 || f.op != opText {
						t.Fatalf("message %d: frame %v, want one compressed text frame", i, f)
					}
					sent = append(sent, f.payload)
					if !wantOut {
						if got, err := dflInflate(f.payload); err != nil || !bytes.Equal(got, msg) {
							t.Fatalf("message %d does not inflate on its own: %v", i, err)
						}
					}
				}
				if got, err := dflInflateStream(sent); err != nil || !bytes.Equal(got, append(slices.Clone(msg), msg...)) {
					t.Fatalf("messages do not inflate as a stream: %v", err)
				}
			})
		}
	}
}

// TestDeflateNegotiateDisabled checks that a server without Compression
// ignores every offer and answers no extension.
func TestDeflateNegotiateDisabled(t *testing.T) {
	c, _, resp := dflServerPair(t, nil, "permessage-deflate", "permessage-deflate; client_max_window_bits")
	if v := resp.Header.Values("Sec-WebSocket-Extensions"); len(v) != 0 || c.deflate != nil {
		t.Fatalf("answered %q with compression disabled", v)
	}
}

// TestDeflateNegotiateClientOffer checks what Dial offers.
func TestDeflateNegotiateClientOffer(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts *CompressionOptions
		want []string
	}{
		{"off", nil, nil},
		// client_max_window_bits without a value: the server may limit our
		// window (RFC 7692 §7.1.2.2), as browsers let it.
		{"no-takeover", &CompressionOptions{}, []string{"permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"}},
		{"takeover", &CompressionOptions{ContextTakeover: true}, []string{"permessage-deflate; client_max_window_bits"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, req, err := dflClientPair(t, &DialOptions{Compression: tc.opts})
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Values("Sec-WebSocket-Extensions"); !slices.Equal(got, tc.want) {
				t.Fatalf("offered %q, want %q", got, tc.want)
			}
			// Whatever is offered must be acceptable to our own server.
			if tc.want != nil {
				offers, err := parseExtensions(tc.want)
				if err != nil {
					t.Fatal(err)
				}
				if _, ok := acceptDeflate(offers, tc.opts); !ok {
					t.Fatal("our own server declines our offer")
				}
			}
		})
	}
}

// TestDeflateNegotiateClient checks Dial against servers that answer by
// hand: valid answers set up the right compression state, invalid ones fail
// the handshake, and no answer means no compression.
func TestDeflateNegotiateClient(t *testing.T) {
	const pmd = "Sec-WebSocket-Extensions: permessage-deflate"
	for _, tc := range []struct {
		name     string
		takeover bool
		off      bool     // Dial without Compression
		answer   []string // header lines
		wantErr  bool
		on       bool // compression negotiated
		out, in  bool // takeoverOut, takeoverIn
		huffman  bool // our window is limited under 15 bits: Huffman coding alone
	}{
		{name: "no-answer", answer: nil, on: false},
		{name: "no-answer/takeover", takeover: true, answer: nil, on: false},
		{name: "both", answer: []string{pmd + "; server_no_context_takeover; client_no_context_takeover"}, on: true},
		{name: "both/reordered-and-case", answer: []string{"Sec-WebSocket-Extensions: PERMESSAGE-DEFLATE ;client_no_context_takeover;Server_No_Context_Takeover"}, on: true},
		{name: "server-window-bits", answer: []string{pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10"}, on: true},
		{name: "server-window-bits-quoted", answer: []string{pmd + `; server_no_context_takeover; client_no_context_takeover; server_max_window_bits="8"`}, on: true},
		// Our offer carried client_no_context_takeover as a hint (RFC 7692
		// §7.1.1.2): the client keeps no context even if the answer omits it.
		{name: "client-hint-kept", answer: []string{pmd + "; server_no_context_takeover"}, on: true},
		// The server may keep its context although we asked it not to; we
		// can follow it.
		{name: "server-keeps-context", answer: []string{pmd + "; client_no_context_takeover"}, on: true, in: true},
		{name: "takeover/bare", takeover: true, answer: []string{pmd}, on: true, out: true, in: true},
		{name: "takeover/server-no-takeover", takeover: true, answer: []string{pmd + "; server_no_context_takeover"}, on: true, out: true},
		{name: "takeover/client-no-takeover", takeover: true, answer: []string{pmd + "; client_no_context_takeover"}, on: true, in: true},
		{name: "takeover/both", takeover: true, answer: []string{pmd + "; client_no_context_takeover; server_no_context_takeover; server_max_window_bits=15"}, on: true},
		// We offer client_max_window_bits without a value, so the server
		// may answer any window from 8 to 15 bits (RFC 7692 §7.1.2.2),
		// which we keep, under 15, by Huffman coding alone, with or
		// without context takeover (Autobahn's fuzzingserver 13.3-13.6).
		{name: "client-window-15", answer: []string{pmd + "; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=15"}, on: true},
		{name: "client-window-14", answer: []string{pmd + "; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=14"}, on: true, huffman: true},
		{name: "client-window-9", answer: []string{pmd + "; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9"}, on: true, huffman: true},
		{name: "client-window-8", answer: []string{pmd + "; client_no_context_takeover; client_max_window_bits=8"}, on: true, in: true, huffman: true},
		{name: "client-window-quoted", answer: []string{pmd + `; server_no_context_takeover; client_max_window_bits="10"`}, on: true, huffman: true},
		{name: "client-and-server-window", answer: []string{pmd + "; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"}, on: true, huffman: true},
		{name: "takeover/client-window-15", takeover: true, answer: []string{pmd + "; client_max_window_bits=15"}, on: true, out: true, in: true},
		{name: "takeover/client-window-10", takeover: true, answer: []string{pmd + "; client_max_window_bits=10"}, on: true, out: true, in: true, huffman: true},
		{name: "takeover/client-window-8-no-takeover", takeover: true, answer: []string{pmd + "; client_no_context_takeover; client_max_window_bits=8"}, on: true, in: true, huffman: true},
		// Invalid answers.
		{name: "client-window-no-value", answer: []string{pmd + "; client_max_window_bits"}, wantErr: true},
		{name: "client-window-7", answer: []string{pmd + "; client_max_window_bits=7"}, wantErr: true},
		{name: "client-window-16", answer: []string{pmd + "; client_max_window_bits=16"}, wantErr: true},
		{name: "client-window-abc", answer: []string{pmd + "; client_max_window_bits=abc"}, wantErr: true},
		{name: "client-window-08", answer: []string{pmd + "; client_max_window_bits=08"}, wantErr: true},
		{name: "client-window-empty", answer: []string{pmd + "; client_max_window_bits="}, wantErr: true},
		{name: "client-window-quoted-7", answer: []string{pmd + `; client_max_window_bits="7"`}, wantErr: true},
		{name: "client-window-duplicate", answer: []string{pmd + "; client_max_window_bits=10; client_max_window_bits=10"}, wantErr: true},
		{name: "takeover/client-window-16", takeover: true, answer: []string{pmd + "; client_max_window_bits=16"}, wantErr: true},
		{name: "unknown-param", answer: []string{pmd + "; server_no_context_takeover; foo"}, wantErr: true},
		{name: "unknown-param-value", answer: []string{pmd + "; mux=2"}, wantErr: true},
		{name: "duplicate", answer: []string{pmd + "; server_no_context_takeover; server_no_context_takeover"}, wantErr: true},
		{name: "duplicate-bits", answer: []string{pmd + "; server_max_window_bits=10; server_max_window_bits=10"}, wantErr: true},
		{name: "server-bits-missing", answer: []string{pmd + "; server_max_window_bits"}, wantErr: true},
		{name: "server-bits-16", answer: []string{pmd + "; server_max_window_bits=16"}, wantErr: true},
		{name: "server-bits-7", answer: []string{pmd + "; server_max_window_bits=7"}, wantErr: true},
		{name: "server-bits-abc", answer: []string{pmd + "; server_max_window_bits=abc"}, wantErr: true},
		{name: "no-takeover-with-value", answer: []string{pmd + "; server_no_context_takeover=1"}, wantErr: true},
		{name: "client-no-takeover-with-value", answer: []string{pmd + `; client_no_context_takeover="yes"`}, wantErr: true},
		{name: "two-extensions", answer: []string{pmd + ", permessage-deflate"}, wantErr: true},
		{name: "two-lines", answer: []string{pmd, pmd}, wantErr: true},
		{name: "other-extension", answer: []string{"Sec-WebSocket-Extensions: x-webkit-deflate-frame"}, wantErr: true},
		{name: "malformed", answer: []string{pmd + "; =1"}, wantErr: true},
		{name: "not-offered", off: true, answer: []string{pmd}, wantErr: true},
		{name: "not-offered/other", off: true, answer: []string{"Sec-WebSocket-Extensions: x-foo"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := &DialOptions{Compression: &CompressionOptions{ContextTakeover: tc.takeover, Threshold: -1}}
			if tc.off {
				opts.Compression = nil
			}
			c, raw, _, err := dflClientPair(t, opts, tc.answer...)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("answer %q accepted, want a Dial error", tc.answer)
				}
				t.Logf("Dial: %v", err)
				if strings.HasPrefix(tc.name, "client-window") && !strings.Contains(err.Error(), "client_max_window_bits") {
					t.Fatalf("Dial: %v, want an error that names client_max_window_bits", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("answer %q: Dial: %v", tc.answer, err)
			}
			if (c.deflate != nil) != tc.on {
				t.Fatalf("compression on: %v, want %v", c.deflate != nil, tc.on)
			}
			ctx := testCtx(t)
			msg := dflText(2000, 7)
			if !tc.on {
				if err := c.Write(ctx, Text, msg); err != nil {
					t.Fatal(err)
				}
				if f := raw.read(); f.rsv != 0 || !bytes.Equal(f.payload, msg) {
					t.Fatalf("uncompressed connection sent %v", f)
				}
				return
			}
			if c.deflate.takeoverOut != tc.out || c.deflate.takeoverIn != tc.in {
				t.Fatalf("takeoverOut %v takeoverIn %v, want %v %v", c.deflate.takeoverOut, c.deflate.takeoverIn, tc.out, tc.in)
			}
			if huffman := c.deflate.level == flate.HuffmanOnly; huffman != tc.huffman {
				t.Fatalf("Huffman coding alone: %v, want %v", huffman, tc.huffman)
			}
			// Two compressed messages each way.
			var sent [][]byte
			for range 2 {
				if err := c.Write(ctx, Text, msg); err != nil {
					t.Fatal(err)
				}
				f := raw.read()
				if f.rsv != bitRSV1 || !f.fin || !f.masked {
					t.Fatalf("frame %v, want a masked compressed frame", f)
				}
				sent = append(sent, f.payload)
				if !tc.out {
					if got, err := dflInflate(f.payload); err != nil || !bytes.Equal(got, msg) {
						t.Fatalf("message without takeover does not inflate alone: %v", err)
					}
				}
			}
			if got, err := dflInflateStream(sent); err != nil || !bytes.Equal(got, bytes.Repeat(msg, 2)) {
				t.Fatalf("messages do not inflate as a stream: %v", err)
			}
			var z dflCompressor
			for i := range 2 {
				payload := dflCompress(t, msg)
				if tc.in {
					payload = z.message(t, msg)
				}
				raw.write(dflFrames(opText, true, false, [][]byte{payload}))
				if typ, b, err := c.Read(ctx); err != nil || typ != Text || !bytes.Equal(b, msg) {
					t.Fatalf("message %d: Read %v %v %d bytes", i, typ, err, len(b))
				}
			}
		})
	}
}

// TestDeflateNegotiateEndToEnd dials our own server with every combination
// of options and checks the answer and the state of both ends.
func TestDeflateNegotiateEndToEnd(t *testing.T) {
	for _, srvTakeover := range []bool{false, true} {
		for _, cliTakeover := range []bool{false, true} {
			t.Run(dflTakeoverName(srvTakeover)+"-"+dflTakeoverName(cliTakeover), func(t *testing.T) {
				conns := make(chan *Conn, 1)
				srv := NewServer(func(ctx context.Context, c *Conn) error {
					conns <- c
					_, _ = io.Copy(io.Discard, dflReaderOf(ctx, c))
					return nil
				}, &AcceptOptions{Compression: &CompressionOptions{ContextTakeover: srvTakeover}})
				hs := dflHTTPServer(t, srv)
				c, resp, err := Dial(testCtx(t), "ws://"+hs, &DialOptions{Compression: &CompressionOptions{ContextTakeover: cliTakeover}})
				if err != nil {
					t.Fatal(err)
				}
				defer c.CloseNow()
				sc := <-conns
				both := srvTakeover && cliTakeover
				want := "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
				if both {
					want = "permessage-deflate"
				}
				if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != want {
					t.Fatalf("answer %q, want %q", got, want)
				}
				if c.deflate.takeoverOut != both || c.deflate.takeoverIn != both || sc.deflate.takeoverOut != both || sc.deflate.takeoverIn != both {
					t.Fatalf("takeover state client %+v server %+v, want %v everywhere", *c.deflate, *sc.deflate, both)
				}
				c.Close(StatusNormalClosure, "")
			})
		}
	}
}

// dflReaderOf streams every message of c, one after the other, until an error.
func dflReaderOf(ctx context.Context, c *Conn) io.Reader {
	return dflMessagesReader{ctx, c}
}

type dflMessagesReader struct {
	ctx context.Context
	c   *Conn
}

func (r dflMessagesReader) Read(p []byte) (int, error) {
	for {
		_, body, err := r.c.Reader(r.ctx)
		if err != nil {
			return 0, err
		}
		n, err := body.Read(p)
		if n > 0 || (err != nil && err != io.EOF) {
			return n, err
		}
	}
}

// dflHTTPServer serves h on 127.0.0.1 for the test and returns host:port.
// The server is closed at the end of the test; the Server's connections are
// shut down first if h is a *Server.
func dflHTTPServer(t testing.TB, h http.Handler) string {
	t.Helper()
	hs := dflNewHTTPServer(h)
	t.Cleanup(func() {
		if s, ok := h.(*Server); ok {
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			s.Shutdown(ctx)
			cancel()
		}
		hs.Close()
	})
	return strings.TrimPrefix(hs.URL, "http://")
}

// TestDeflateSmallServerWindow: a client that allows the server a window
// under compress/flate's 32 KiB (server_max_window_bits=9, as Autobahn's
// cases 13.3 and 13.5 offer) gets its offer accepted, and messages
// compressed by Huffman coding alone, which refers to no earlier bytes (at
// least a bit a byte, where back-references would shrink zeros to almost
// nothing). Broadcasts, compressed once with the server's own window, reach
// it plain.
func TestDeflateSmallServerWindow(t *testing.T) {
	conns := make(chan *Conn, 1)
	srv := NewServer(func(ctx context.Context, c *Conn) error {
		conns <- c
		<-ctx.Done()
		return nil
	}, &AcceptOptions{Compression: &CompressionOptions{}})
	host := dflHTTPServer(t, srv)
	resp, raw := rawRequest(t, host, upgradeRequest(host, "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9"))
	const want = "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9"
	if got := resp.Header.Get("Sec-WebSocket-Extensions"); got != want {
		t.Fatalf("answer %q, want %q", got, want)
	}
	var c *Conn
	select {
	case c = <-conns:
	case <-time.After(testTimeout):
		t.Fatal("no connection")
	}
	defer c.CloseNow()
	ctx := testCtx(t)
	zeros := make([]byte, 64<<10)

	if err := c.Write(ctx, Binary, zeros); err != nil {
		t.Fatal(err)
	}
	f := raw.read()
	if f.rsv != bitRSV1 || !f.fin {
		t.Fatalf("got %v, want one compressed frame", f)
	}
	if got, err := dflInflate(f.payload); err != nil || !bytes.Equal(got, zeros) {
		t.Fatalf("inflates to %d bytes (%v), want %d zeros", len(got), err, len(zeros))
	}
	if len(f.payload) < len(zeros)/8 {
		t.Fatalf("%d zeros compressed to %d bytes: back-references beyond the window", len(zeros), len(f.payload))
	}

	if err := srv.Send(ctx, Message{Type: Binary, Body: bytes.NewReader(zeros)}); err != nil {
		t.Fatal(err)
	}
	if f := raw.read(); f.rsv != 0 || !f.fin || !bytes.Equal(f.payload, zeros) {
		t.Fatalf("broadcast: got %v, want the plain message", f)
	}
}

// TestDeflateSmallClientWindow: a server that limits our window under
// compress/flate's 32 KiB (client_max_window_bits=9 in its answer, as
// Autobahn's fuzzingserver answers in cases 13.3 and 13.5) gets messages
// compressed by Huffman coding alone: at least a bit a byte, where
// back-references would shrink zeros to almost nothing, each message
// inflating on its own even with context takeover. Its own messages, in
// any window, are read as usual.
func TestDeflateSmallClientWindow(t *testing.T) {
	for _, takeover := range []bool{false, true} {
		t.Run(dflTakeoverName(takeover), func(t *testing.T) {
			answer := "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9"
			if !takeover {
				answer = "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=9"
			}
			c, raw, req, err := dflClientPair(t, &DialOptions{Compression: &CompressionOptions{ContextTakeover: takeover, Level: flate.BestCompression}}, answer)
			if err != nil {
				t.Fatal(err)
			}
			if got := req.Header.Get("Sec-WebSocket-Extensions"); !strings.HasSuffix(got, "; client_max_window_bits") {
				t.Fatalf("offered %q, want client_max_window_bits without a value", got)
			}
			if c.deflate.takeoverOut != takeover || c.deflate.level != flate.HuffmanOnly {
				t.Fatalf("takeoverOut %v, level %d; want %v, Huffman-only", c.deflate.takeoverOut, c.deflate.level, takeover)
			}
			ctx := testCtx(t)
			zeros := make([]byte, 64<<10)
			text := dflText(20_000, 9)
			var sent [][]byte
			for _, msg := range [][]byte{zeros, text, zeros} {
				if err := c.Write(ctx, Binary, msg); err != nil {
					t.Fatal(err)
				}
				f := raw.read()
				if f.rsv != bitRSV1 || !f.fin || !f.masked {
					t.Fatalf("got %v, want one masked compressed frame", f)
				}
				if got, err := dflInflate(f.payload); err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("inflates alone to %d bytes (%v), want %d", len(got), err, len(msg))
				}
				if len(f.payload) < len(msg)/8 {
					t.Fatalf("%d bytes compressed to %d: back-references beyond the window", len(msg), len(f.payload))
				}
				if len(f.payload) >= len(msg) && bytes.Equal(msg, text) {
					t.Fatalf("text of %d bytes took %d: not compressed", len(msg), len(f.payload))
				}
				sent = append(sent, f.payload)
			}
			if got, err := dflInflateStream(sent); err != nil || !bytes.Equal(got, slices.Concat(zeros, text, zeros)) {
				t.Fatalf("messages do not inflate as a stream: %v", err)
			}
			// The server's messages use the full window, with its
			// context if it keeps it.
			var z dflCompressor
			for i := range 2 {
				payload := dflCompress(t, text)
				if takeover {
					payload = z.message(t, text)
				}
				raw.write(dflFrames(opText, true, false, [][]byte{payload}))
				if typ, b, err := c.Read(ctx); err != nil || typ != Text || !bytes.Equal(b, text) {
					t.Fatalf("message %d: Read %v %v %d bytes", i, typ, err, len(b))
				}
			}
		})
	}
}
