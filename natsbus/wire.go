package natsbus

import (
	"errors"
	"strconv"
	"strings"

	"github.com/wesos/wesos/ws"
)

// headerKey is the NATS header that carries a chunk's place in its message.
// Its value is "1 <publisher> <message> <part> <type> <end>":
//
//   - 1: the format's version;
//   - publisher: the publishing Topic's id (a NUID), unique per Topic;
//   - message: the publisher's message number, from 1, in the order the
//     messages' first chunks were published;
//   - part: the chunk's number within its message, from 0;
//   - type: "t" (ws.Text) or "b" (ws.Binary);
//   - end: "-" (more chunks follow), "e" (the last chunk) or "c" (the
//     message was cut short: its publisher could not read the rest).
//
// A NATS message without the header is one whole message, sent by some other
// NATS client: text when it is valid UTF-8, binary otherwise.
const headerKey = "Wesos"

const headerVersion = "1"

// end markers of a chunk.
const (
	endMore = '-'
	endLast = 'e'
	endCut  = 'c'
)

// chunkHeader is a parsed header value.
type chunkHeader struct {
	pub  string
	msg  uint64
	part uint64
	typ  ws.MessageType
	end  byte
}

var errBadHeader = errors.New("natsbus: malformed " + headerKey + " header")

// appendHeader appends the header value of h to b.
func appendHeader(b []byte, h chunkHeader) []byte {
	b = append(b, headerVersion...)
	b = append(b, ' ')
	b = append(b, h.pub...)
	b = append(b, ' ')
	b = strconv.AppendUint(b, h.msg, 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, h.part, 10)
	b = append(b, ' ')
	if h.typ == ws.Text {
		b = append(b, 't')
	} else {
		b = append(b, 'b')
	}
	return append(b, ' ', h.end)
}

// parseHeader parses a header value. It never panics: anything it does not
// recognise is errBadHeader.
func parseHeader(v string) (chunkHeader, error) {
	var h chunkHeader
	var f [6]string
	for i := range f {
		if i == len(f)-1 {
			f[i] = v
			break
		}
		sp := strings.IndexByte(v, ' ')
		if sp < 0 {
			return h, errBadHeader
		}
		f[i], v = v[:sp], v[sp+1:]
	}
	if f[0] != headerVersion || f[1] == "" || len(f[1]) > 64 || strings.ContainsAny(f[1], " \t\r\n") {
		return h, errBadHeader
	}
	h.pub = f[1]
	var err error
	if h.msg, err = strconv.ParseUint(f[2], 10, 64); err != nil || h.msg == 0 {
		return h, errBadHeader
	}
	if h.part, err = strconv.ParseUint(f[3], 10, 64); err != nil {
		return h, errBadHeader
	}
	switch f[4] {
	case "t":
		h.typ = ws.Text
	case "b":
		h.typ = ws.Binary
	default:
		return h, errBadHeader
	}
	if len(f[5]) != 1 {
		return h, errBadHeader
	}
	switch h.end = f[5][0]; h.end {
	case endMore, endLast, endCut:
	default:
		return h, errBadHeader
	}
	return h, nil
}
