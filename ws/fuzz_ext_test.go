package ws

// Fuzzing the Sec-WebSocket-Extensions header: the parser, the server's
// choice among the client's offers, and the client's check of the answer.

import (
	"compress/flate"
	"reflect"
	"strings"
	"testing"
)

// formatExtensions renders parsed extensions canonically: lower-case names,
// no quotes (every value is a token), "; " and ", " as separators.
func formatExtensions(exts []extension) string {
	var b strings.Builder
	for i, e := range exts {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(e.name)
		for _, p := range e.params {
			b.WriteString("; " + p.name)
			if p.hasValue {
				b.WriteString("=" + p.value)
			}
		}
	}
	return b.String()
}

// FuzzExtensions feeds any Sec-WebSocket-Extensions values (split on
// newlines into several header lines) to the parser, to the server's
// acceptDeflate and to the client's checkDeflateResponse, and checks:
//
//   - no panic;
//   - what parses is tokens only (names lower-case), and its canonical form
//     parses back to the same extensions;
//   - when the server accepts an offer, its answer names permessage-deflate
//     alone, uses only parameters the offer allows, and the client's check
//     accepts that answer with the same parameters: server and client agree
//     on the context takeover of both directions;
//   - an answer the client accepts is one permessage-deflate extension with
//     only the parameters a server may send to this client's offer, and a
//     client window under 15 bits makes it compress Huffman-only.
func FuzzExtensions(f *testing.F) {
	for _, s := range []string{
		"",
		"permessage-deflate",
		"permessage-deflate; client_max_window_bits",
		"permessage-deflate; server_no_context_takeover; client_no_context_takeover",
		"permessage-deflate; server_max_window_bits=10, permessage-deflate",
		"permessage-deflate; server_max_window_bits=\"15\"; client_max_window_bits=8",
		"permessage-deflate; client_max_window_bits=16",
		"permessage-deflate; client_no_context_takeover; client_max_window_bits=9",
		"permessage-deflate; client_max_window_bits=\"08\"",
		"permessage-deflate; server_no_context_takeover=1",
		"permessage-deflate; server_no_context_takeover; server_no_context_takeover",
		"x-webkit-deflate-frame, permessage-deflate; unknown",
		"foo; bar=\"baz\", , permessage-deflate\npermessage-deflate; server_max_window_bits=15",
		"PerMessage-Deflate; Client_No_Context_Takeover",
		"permessage-deflate; =x",
		"permessage-deflate; a=\"\"",
		"permessage-deflate; a=\"",
		"per message",
		"permessage-deflate; server_max_window_bits=015",
		"permessage-deflate; server_max_window_bits=+9",
		"\x00\xff;,\"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		values := strings.Split(header, "\n")

		exts, err := parseExtensions(values)
		if err == nil {
			for _, e := range exts {
				if !isToken(e.name) || e.name != strings.ToLower(e.name) {
					t.Fatalf("parsed extension name %q", e.name)
				}
				for _, p := range e.params {
					if !isToken(p.name) || p.name != strings.ToLower(p.name) || (p.hasValue && !isToken(p.value)) || (!p.hasValue && p.value != "") {
						t.Fatalf("parsed parameter %+v of %q", p, e.name)
					}
				}
			}
			canon := formatExtensions(exts)
			again, err := parseExtensions([]string{canon})
			if err != nil {
				t.Fatalf("canonical form %q of %q does not parse: %v", canon, header, err)
			}
			if len(again) != len(exts) || (len(exts) > 0 && !reflect.DeepEqual(again, exts)) {
				t.Fatalf("%q parses to %+v, its canonical form %q to %+v", header, exts, canon, again)
			}
		}

		// The server's side: choose among the offers.
		for _, opts := range []*CompressionOptions{{}, {ContextTakeover: true}} {
			p, ok := acceptDeflate(exts, opts)
			if !ok {
				continue
			}
			if err != nil {
				t.Fatalf("accepted an offer from a header that does not parse: %q", header)
			}
			if !opts.ContextTakeover && (!p.serverNoTakeover || !p.clientNoTakeover) {
				t.Fatalf("options without context takeover answered %q", p.String())
			}
			// Some offer named permessage-deflate with only known,
			// non-repeated parameters.
			found := false
			for _, e := range exts {
				if e.name == deflateName {
					if _, ok := acceptDeflateOffer(e, opts); ok {
						found = true
						for _, prm := range e.params {
							switch prm.name {
							case "server_no_context_takeover", "client_no_context_takeover", "server_max_window_bits", "client_max_window_bits":
							default:
								t.Fatalf("accepted an offer with parameter %q", prm.name)
							}
							// A window under compress/flate's 32 KiB is
							// kept by Huffman coding alone.
							if prm.name == "server_max_window_bits" && prm.value != "15" && newDeflateState(p, false, opts).level != flate.HuffmanOnly {
								t.Fatalf("accepted server_max_window_bits=%q with a compressor that has a 32 KiB window", prm.value)
							}
						}
						break
					}
				}
			}
			if !found {
				t.Fatalf("acceptDeflate answered %q, but no offer of %q is acceptable", p.String(), header)
			}
			// The client agrees with the answer.
			cp, negotiated, cerr := checkDeflateResponse([]string{p.String()})
			if cerr != nil || !negotiated || cp.serverNoTakeover != p.serverNoTakeover || cp.clientNoTakeover != p.clientNoTakeover {
				t.Fatalf("server answered %q to %q; client: %+v %v %v", p.String(), header, cp, negotiated, cerr)
			}
			for _, client := range []bool{false, true} {
				d := newDeflateState(p, client, opts)
				if client && (d.takeoverOut != !p.clientNoTakeover || d.takeoverIn != !p.serverNoTakeover) {
					t.Fatalf("client state %+v for %q", d, p.String())
				}
				if !client && (d.takeoverOut != !p.serverNoTakeover || d.takeoverIn != !p.clientNoTakeover) {
					t.Fatalf("server state %+v for %q", d, p.String())
				}
			}
		}

		// The client's side: the header as a server's answer.
		cp, negotiated, cerr := checkDeflateResponse(values)
		switch {
		case cerr != nil:
			if negotiated {
				t.Fatal("negotiated with an error")
			}
		case negotiated:
			if err != nil || len(exts) != 1 || exts[0].name != deflateName {
				t.Fatalf("client accepted %q as an answer", header)
			}
			seen := map[string]bool{}
			for _, prm := range exts[0].params {
				if seen[prm.name] {
					t.Fatalf("client accepted a repeated parameter in %q", header)
				}
				seen[prm.name] = true
				switch prm.name {
				case "server_no_context_takeover", "client_no_context_takeover":
					if prm.hasValue {
						t.Fatalf("client accepted %s with a value", prm.name)
					}
				case "server_max_window_bits", "client_max_window_bits":
					bits, ok := windowBits(prm.value)
					if !ok || !prm.hasValue {
						t.Fatalf("client accepted %s=%q", prm.name, prm.value)
					}
					got := cp.clientWindowBits
					if prm.name == "server_max_window_bits" {
						got = cp.serverWindowBits
					}
					if got != bits {
						t.Fatalf("client read %s=%q as %d", prm.name, prm.value, got)
					}
				default:
					t.Fatalf("client accepted parameter %q, which it never offers", prm.name)
				}
			}
			if cp.serverNoTakeover != seen["server_no_context_takeover"] || cp.clientNoTakeover != seen["client_no_context_takeover"] ||
				(!seen["server_max_window_bits"] && cp.serverWindowBits != 0) || (!seen["client_max_window_bits"] && cp.clientWindowBits != 0) {
				t.Fatalf("client read %+v from %q", cp, header)
			}
			// A window under compress/flate's 32 KiB is kept by Huffman
			// coding alone; a client never compresses otherwise under it.
			for _, opts := range []*CompressionOptions{{}, {ContextTakeover: true}} {
				huffman := newDeflateState(cp, true, opts).level == flate.HuffmanOnly
				if huffman != (cp.clientWindowBits != 0 && cp.clientWindowBits < 15) {
					t.Fatalf("client answered %q compresses Huffman-only: %v", header, huffman)
				}
			}
		default:
			if err == nil && len(exts) != 0 {
				t.Fatalf("client ignored the answer %q", header)
			}
		}
	})
}

// TestExtensionsOffers: the offers this package's client makes are accepted
// by its server, for every combination of options, with the takeover the
// options ask for.
func TestExtensionsOffers(t *testing.T) {
	for _, clientTakeover := range []bool{false, true} {
		for _, serverTakeover := range []bool{false, true} {
			offer := offerDeflate(&CompressionOptions{ContextTakeover: clientTakeover})
			exts, err := parseExtensions([]string{offer})
			if err != nil {
				t.Fatalf("the client's offer %q does not parse: %v", offer, err)
			}
			p, ok := acceptDeflate(exts, &CompressionOptions{ContextTakeover: serverTakeover})
			if !ok {
				t.Fatalf("the server declines the client's offer %q", offer)
			}
			want := !(clientTakeover && serverTakeover)
			if p.serverNoTakeover != want || p.clientNoTakeover != want {
				t.Fatalf("client takeover %v, server takeover %v: answered %q", clientTakeover, serverTakeover, p.String())
			}
			if cp, ok, err := checkDeflateResponse([]string{p.String()}); !ok || err != nil || cp.serverNoTakeover != p.serverNoTakeover || cp.clientNoTakeover != p.clientNoTakeover {
				t.Fatalf("the client rejects the answer %q: %v", p.String(), err)
			}
		}
	}
}
