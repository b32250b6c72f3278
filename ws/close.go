package ws

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"
)

// StatusCode is a close status code (RFC 6455 §7.4).
type StatusCode int

// The close status codes of RFC 6455 §7.4.1 and the IANA registry.
const (
	StatusNormalClosure           StatusCode = 1000
	StatusGoingAway               StatusCode = 1001
	StatusProtocolError           StatusCode = 1002
	StatusUnsupportedData         StatusCode = 1003
	StatusNoStatusRcvd            StatusCode = 1005 // never on the wire: the close frame had no code
	StatusAbnormalClosure         StatusCode = 1006 // never on the wire: TCP ended without a close frame
	StatusInvalidFramePayloadData StatusCode = 1007
	StatusPolicyViolation         StatusCode = 1008
	StatusMessageTooBig           StatusCode = 1009
	StatusMandatoryExtension      StatusCode = 1010
	StatusInternalError           StatusCode = 1011
	StatusServiceRestart          StatusCode = 1012
	StatusTryAgainLater           StatusCode = 1013
	StatusBadGateway              StatusCode = 1014
	StatusTLSHandshake            StatusCode = 1015 // never on the wire
)

var statusNames = map[StatusCode]string{
	StatusNormalClosure:           "normal closure",
	StatusGoingAway:               "going away",
	StatusProtocolError:           "protocol error",
	StatusUnsupportedData:         "unsupported data",
	StatusNoStatusRcvd:            "no status",
	StatusAbnormalClosure:         "abnormal closure",
	StatusInvalidFramePayloadData: "invalid payload data",
	StatusPolicyViolation:         "policy violation",
	StatusMessageTooBig:           "message too big",
	StatusMandatoryExtension:      "mandatory extension",
	StatusInternalError:           "internal error",
	StatusServiceRestart:          "service restart",
	StatusTryAgainLater:           "try again later",
	StatusBadGateway:              "bad gateway",
	StatusTLSHandshake:            "TLS handshake",
}

// String returns the code and its registered name, e.g. "1000 (normal closure)".
func (c StatusCode) String() string {
	if name, ok := statusNames[c]; ok {
		return strconv.Itoa(int(c)) + " (" + name + ")"
	}
	return strconv.Itoa(int(c))
}

// validOnWire reports whether code may appear in a close frame (RFC 6455
// §7.4.1 and §7.4.2, with the later registered 1012–1014).
func (c StatusCode) validOnWire() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// CloseError is the error a read returns after the peer's close frame: the
// code and reason the peer sent (StatusNoStatusRcvd when the frame had no
// code). It is a value type, so
//
//	var ce ws.CloseError
//	if errors.As(err, &ce) { ... ce.Code ... }
//
// works. A normal close (1000 or 1001) is the end of the Conn as a Source:
// such a CloseError also matches io.EOF under errors.Is, so wesos.Pipe treats
// it as a clean end.
//
// A connection whose TCP stream ended without a close frame reads an error
// that matches CloseError{Code: StatusAbnormalClosure} and io.ErrUnexpectedEOF.
type CloseError struct {
	Code   StatusCode
	Reason string
}

// Error describes the close.
func (e CloseError) Error() string {
	if e.Reason == "" {
		return "ws: closed with status " + e.Code.String()
	}
	return fmt.Sprintf("ws: closed with status %v: %q", e.Code, e.Reason)
}

// Is reports whether target is io.EOF and e is a normal close (1000 or 1001).
func (e CloseError) Is(target error) bool {
	return target == io.EOF && (e.Code == StatusNormalClosure || e.Code == StatusGoingAway)
}

// ProtocolError is the error a read returns when the peer broke the protocol
// and this side failed the connection: Code is the status code sent to the
// peer in the close frame (1002, 1007, 1009, …) and Reason says what was wrong.
type ProtocolError struct {
	Code   StatusCode
	Reason string
}

// Error describes the violation.
func (e *ProtocolError) Error() string {
	return fmt.Sprintf("ws: connection failed with status %v: %s", e.Code, e.Reason)
}

// maxCloseReason is the longest reason that fits a control frame after the code.
const maxCloseReason = maxControlPayload - 2

// parseClosePayload decodes a received close frame's payload (RFC 6455 §5.5.1).
func parseClosePayload(p []byte) (CloseError, *ProtocolError) {
	switch {
	case len(p) == 0:
		return CloseError{Code: StatusNoStatusRcvd}, nil
	case len(p) == 1:
		return CloseError{}, &ProtocolError{StatusProtocolError, "close frame payload of 1 byte"}
	}
	code := StatusCode(binary.BigEndian.Uint16(p))
	if !code.validOnWire() {
		return CloseError{}, &ProtocolError{StatusProtocolError, "close frame with invalid status code " + strconv.Itoa(int(code))}
	}
	reason := p[2:]
	if !utf8.Valid(reason) {
		return CloseError{}, &ProtocolError{StatusInvalidFramePayloadData, "close reason is not valid UTF-8"}
	}
	return CloseError{Code: code, Reason: string(reason)}, nil
}

var errInvalidCloseCode = errors.New("ws: status code may not be sent in a close frame")

// appendClosePayload encodes code and reason as a close frame payload. The
// reason is cut at a rune boundary to fit the control frame. Code
// StatusNoStatusRcvd gives an empty payload.
func appendClosePayload(b []byte, code StatusCode, reason string) ([]byte, error) {
	if code == StatusNoStatusRcvd {
		return b, nil
	}
	if !code.validOnWire() {
		return b, errInvalidCloseCode
	}
	if len(reason) > maxCloseReason {
		cut := maxCloseReason
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = reason[:cut]
	}
	if !utf8.ValidString(reason) {
		return b, errors.New("ws: close reason is not valid UTF-8")
	}
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(b, reason...), nil
}
