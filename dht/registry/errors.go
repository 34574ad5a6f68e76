package registry

import "errors"

// ErrBadMessage is returned when a registry-protocol message cannot be
// decoded or breaks the protocol's rules (size, fields, type).
var ErrBadMessage = errors.New("bad registry protocol message")

// ErrBadRequest is returned when a well-formed request asks what cannot
// be answered: a paged list's cursor that is neither FirstPage nor a peer
// ID, or a negative limit. The node answers it with an error (its text
// starts "bad request") and keeps the stream open.
var ErrBadRequest = errors.New("bad request")

// ErrRefused is returned by a Client when the node answered a request with
// an error; the error carries the node's reason.
var ErrRefused = errors.New("refused by the node")

// ErrUnsupported is returned by a Client when the peer does not speak the
// registry protocol of the client's network (it answered the protocol's
// proposal with "na").
var ErrUnsupported = errors.New("peer does not speak the registry protocol")
