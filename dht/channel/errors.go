package channel

import (
	"errors"
	"fmt"
)

// Sentinels of the channel package; decide with errors.Is.
var (
	// ErrTooLarge is returned by Send for a message larger than the other
	// side takes, and wrapped by the *CloseError of a channel closed
	// because a message over the limit arrived (CloseTooLarge).
	ErrTooLarge = errors.New("channel message too large")
	// ErrBadMessage is returned for a message Send cannot carry (an
	// unknown type, text that is not UTF-8) and for a malformed open
	// request or frame from the other side.
	ErrBadMessage = errors.New("bad channel message")
	// ErrClosed is returned by Send and Receive on a channel this side
	// closed, and by Send after CloseWrite.
	ErrClosed = errors.New("channel closed")
	// ErrBroken is returned, wrapped, by Send and Receive when the stream
	// died without a close frame: the other node crashed, was killed or
	// lost its connection.
	ErrBroken = errors.New("channel broken")
	// ErrBadCloseCode is returned by Close for a code outside 1000-4999.
	ErrBadCloseCode = errors.New("bad channel close code")
	// ErrBadTarget is returned by ParseTarget for a target URL it does not
	// accept (scheme, host, or a remote host without allowRemote).
	ErrBadTarget = errors.New("bad channel target")
	// ErrBadConfig is returned by Config.Validate.
	ErrBadConfig = errors.New("invalid channel config")
	// ErrServerClosed is returned by Handle after Close.
	ErrServerClosed = errors.New("channel server closed")
)

// Refusal codes: why a provider refused to open a channel. They are API:
// the bridge passes them to web pages as they are.
const (
	// CodeForbidden: the opener's origin, token or peer is not allowed.
	CodeForbidden = "forbidden"
	// CodeUnavailable: the service cannot take the channel now (its
	// target is not listening, or the handler failed).
	CodeUnavailable = "unavailable"
	// CodeTooLarge: a message was over the size limit.
	CodeTooLarge = "too_large"
	// CodeRateLimited: the opener opened too many channels too fast.
	CodeRateLimited = "rate_limited"
	// CodeBusy: the provider serves as many channels as it allows.
	CodeBusy = "busy"
	// CodeNotFound: the provider does not serve channels for the service.
	CodeNotFound = "not_found"
	// CodeBadRequest: the open request was malformed.
	CodeBadRequest = "bad_request"
)

// RefusedError is a provider's refusal to open a channel, with a stable
// Code (CodeForbidden, CodeUnavailable, …) and a human Reason.
type RefusedError struct {
	Code   string
	Reason string
}

// Error returns "channel refused: CODE: REASON".
func (e *RefusedError) Error() string {
	if e.Reason == "" {
		return "channel refused: " + e.Code
	}
	return "channel refused: " + e.Code + ": " + e.Reason
}

// Refuse returns a *RefusedError with code and a formatted reason: what a
// Handler returns to refuse a channel.
func Refuse(code, format string, args ...any) error {
	return &RefusedError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Close codes, as WebSocket's (RFC 6455 section 7.4), so that a bridge
// hands them to a page's close event unchanged. Applications use 1000 or
// 3000-4999.
const (
	// CloseNormal: the channel is done.
	CloseNormal = 1000
	// CloseGoingAway: the node is shutting down, or the channel was idle
	// for longer than the provider allows.
	CloseGoingAway = 1001
	// CloseProtocolError: the other side broke the framing.
	CloseProtocolError = 1002
	// CloseInvalidData: a text message that is not UTF-8.
	CloseInvalidData = 1007
	// CloseTooLarge: a message over the receiver's limit arrived.
	CloseTooLarge = 1009
	// CloseInternal: the target or handler failed.
	CloseInternal = 1011
)

// CloseError is what Receive returns once the channel was closed with a
// close frame: by the other side (Close), or by this side because the
// other broke a rule (CloseTooLarge, CloseProtocolError,
// CloseInvalidData). errors.Is(err, ErrTooLarge) holds for CloseTooLarge
// and errors.Is(err, ErrBadMessage) for the two others.
type CloseError struct {
	Code   int
	Reason string
}

// Error returns "channel closed: CODE REASON".
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("channel closed: %d", e.Code)
	}
	return fmt.Sprintf("channel closed: %d %s", e.Code, e.Reason)
}

// Unwrap maps the rule-breaking codes to their sentinel.
func (e *CloseError) Unwrap() error {
	switch e.Code {
	case CloseTooLarge:
		return ErrTooLarge
	case CloseProtocolError, CloseInvalidData:
		return ErrBadMessage
	}
	return nil
}
