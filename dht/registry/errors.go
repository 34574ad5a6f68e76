package registry

import "errors"

// ErrBadMessage is returned when a registry-protocol message cannot be
// decoded or breaks the protocol's rules (size, fields, type).
var ErrBadMessage = errors.New("bad registry protocol message")
