package control

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/netget/netget-peer"
	"github.com/netget/netget-peer/dht"
	"github.com/netget/netget-peer/record"
)

// provideError maps the error of the node's Provide of spec to the API
// error a client gets, when the request is still live.
func (s *Server) provideError(ctx context.Context, spec dht.Spec, err error) *Error {
	switch {
	case ctx.Err() != nil:
		return unavailable()
	case errors.Is(err, context.DeadlineExceeded):
		if s.node.Status().RoutingTable == 0 {
			return publishError(fmt.Errorf("provide %s: %w", spec.Name, dht.ErrNotReady))
		}
		return &Error{Status: http.StatusGatewayTimeout, Code: CodeTimeout,
			Message: fmt.Sprintf("provide %s: first publication did not land within %s", spec.Name, s.cfg.PublishTimeout)}
	case errors.Is(err, context.Canceled):
		return &Error{Status: http.StatusConflict, Code: CodeConflict,
			Message: fmt.Sprintf("provide %s: replaced or withdrawn by another request before its first publication", spec.Name)}
	}
	return publishError(err)
}

// publishError maps an error from the node (publishing, withdrawing,
// finding) to the API error a client gets: the one place Go errors become
// status codes.
func publishError(err error) *Error {
	switch {
	case errors.Is(err, record.ErrBadName):
		return badRequest(CodeInvalidName, err.Error())
	case errors.Is(err, record.ErrBadMetadata):
		return badRequest(CodeInvalidMeta, err.Error())
	case errors.Is(err, record.ErrBadTTL):
		return badRequest(CodeInvalidTTL, err.Error())
	case errors.Is(err, record.ErrOlderSeq):
		return &Error{Status: http.StatusConflict, Code: CodeConflict,
			Message: "a newer record for this service was published meanwhile: " + err.Error()}
	case errors.Is(err, dht.ErrNotReady):
		return &Error{Status: http.StatusServiceUnavailable, Code: CodeNotReady, Message: err.Error()}
	case errors.Is(err, netget.ErrClosed), errors.Is(err, dht.ErrClosed), errors.Is(err, context.Canceled):
		return unavailable()
	}
	return &Error{Status: http.StatusBadGateway, Code: CodePublishFailed, Message: err.Error()}
}

func unavailable() *Error {
	return &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Message: ErrClosed.Error() + ": the daemon is shutting down"}
}

func internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: CodeInternal, Message: fmt.Sprintf("internal error: %v", err)}
}
