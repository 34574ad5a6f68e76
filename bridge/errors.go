package bridge

import (
	"errors"
	"fmt"
)

var (
	// ErrBadConfig is returned by Config.Validate and New when the config
	// is out of range or inconsistent.
	ErrBadConfig = errors.New("invalid bridge config")
	// ErrBadFrame is returned when a frame is not a JSON object of a known
	// shape, or a field is missing or out of range.
	ErrBadFrame = errors.New("bad frame")
	// ErrUnknownType is returned when a frame's type is not one of this
	// protocol version's.
	ErrUnknownType = errors.New("unknown frame type")
	// ErrClosed is returned by Serve once Shutdown or Close was called.
	ErrClosed = errors.New("bridge closed")
	// ErrRefused is what a Filter returns, wrapped or as is, to refuse a
	// session or a find without choosing a code: the client gets forbidden.
	ErrRefused = errors.New("refused")
	// ErrShortToken is returned by CheckToken, and wrapped by Validate,
	// when a token is shorter than MinTokenLen.
	ErrShortToken = errors.New("token too short")
	// ErrMessageTooLarge is what a Channel's Send returns, wrapped, for a
	// message over the provider's own limit: the page gets too_large and
	// the channel closes (1009), as for one over MaxMessageSize.
	ErrMessageTooLarge = errors.New("channel message too large")
)

// Error is an error with a public face: the code and message a client
// sees in an error frame. Err, the internal cause, is only logged. A Filter
// returns an *Error to choose what the client is told.
type Error struct {
	Code    Code   // sent to the client
	Message string // sent to the client; keep it free of internal detail
	Err     error  // internal cause, logged, never sent; may be nil
}

// Error returns the public code and message.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return string(e.Code) + ": " + e.Message
}

// Unwrap returns the internal cause.
func (e *Error) Unwrap() error { return e.Err }

// publicError returns what a client may be told about err: the *Error in
// its chain, a bad_request / unknown_type for frame errors (whose messages
// only echo the client's own input), forbidden for ErrRefused, and
// "internal error" for anything else.
func publicError(err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, ErrUnknownType):
		return &Error{Code: CodeUnknownType, Message: err.Error()}
	case errors.Is(err, ErrBadFrame):
		return &Error{Code: CodeBadRequest, Message: err.Error()}
	case errors.Is(err, ErrRefused):
		return &Error{Code: CodeForbidden, Message: "refused", Err: err}
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}
