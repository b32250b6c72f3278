package ws

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"strings"
)

// keyGUID is the GUID of RFC 6455 §1.3 that turns a key into its accept value.
const keyGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// acceptKey computes Sec-WebSocket-Accept for a Sec-WebSocket-Key.
func acceptKey(key string) string { return string(appendAcceptKey(nil, key)) }

// appendAcceptKey appends Sec-WebSocket-Accept for key to b; for a key of
// the valid length (validKey), without allocating.
func appendAcceptKey(b []byte, key string) []byte {
	var in [24 + len(keyGUID)]byte
	var sum [sha1.Size]byte
	if len(key) == 24 {
		copy(in[copy(in[:], key):], keyGUID)
		sum = sha1.Sum(in[:])
	} else {
		h := sha1.New()
		h.Write([]byte(key))
		h.Write([]byte(keyGUID))
		h.Sum(sum[:0])
	}
	return base64.StdEncoding.AppendEncode(b, sum[:])
}

// validKey reports whether key is the base64 encoding of 16 bytes (what
// base64.StdEncoding decodes to 16 bytes, in 24 characters): 22 of the
// alphabet and "==". Checked here rather than decoded, whose calls are
// the deepest of Serve's handshake, which keeps within the goroutine's
// first 2 KiB stack (TestValidKey holds it to the decoder's answer).
func validKey(key string) bool {
	if len(key) != 24 || key[22] != '=' || key[23] != '=' {
		return false
	}
	for i := range 22 {
		switch c := key[i]; {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '+', c == '/':
		default:
			return false
		}
	}
	return true
}

// splitTokens returns the comma-separated tokens of every one of values,
// trimmed, in order.
func splitTokens(values []string) []string {
	var tokens []string
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				tokens = append(tokens, t)
			}
		}
	}
	return tokens
}

// hasToken reports whether the header name lists token, ignoring case.
func hasToken(h http.Header, name, token string) bool { return listsToken(h.Values(name), token) }

// listsToken reports whether one of the comma-separated lists values holds
// token, ignoring case.
func listsToken(values []string, token string) bool {
	for _, v := range values {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
