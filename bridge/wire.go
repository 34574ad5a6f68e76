package bridge

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/netget/netget-peer/record"
)

// Protocol v1 on the wire. Every WebSocket message is one text frame
// holding one JSON object whose "type" field names it. PROTOCOL.md
// documents each frame with an example exchange; testdata/frames holds one
// golden file per frame. The lists below only grow: a frame type, a field
// or an error code, once released, keeps its name and meaning.
const (
	// Version is the bridge protocol version this build speaks. The
	// handshaker script declares the same number (a test keeps them equal).
	Version = 1
	// Subprotocol is the WebSocket subprotocol of Version.
	Subprotocol = "netget.v1"
	// MaxIDLen is the longest find id, in bytes.
	MaxIDLen = 64
)

// Frame types, append-only. Client frames: hello, find, cancel, ping,
// watch, and the channel frames open, send, close (channel_wire.go).
// Server frames: welcome, result, done, pong, error, removed, and opened,
// message, close.
const (
	TypeHello   = "hello"   // client → server, first frame: version, token
	TypeWelcome = "welcome" // server → client: peer ID, network, limits
	TypeFind    = "find"    // client → server: look a service up
	TypeResult  = "result"  // server → client: one verified provider
	TypeDone    = "done"    // server → client: a find ended with results
	TypeCancel  = "cancel"  // client → server: stop a find
	TypePing    = "ping"    // client → server: liveness
	TypePong    = "pong"    // server → client: answers ping
	TypeError   = "error"   // server → client: a find or the session failed
	TypeWatch   = "watch"   // client → server: follow a service's providers until cancel
	TypeRemoved = "removed" // server → client: a watched provider is gone
)

// Code is a stable, machine-readable error code carried by error frames.
type Code string

// Error codes, append-only.
const (
	// CodeBadRequest: the frame is not valid JSON, misses a field, or
	// breaks the protocol (no hello first, duplicate id, bad service name).
	CodeBadRequest Code = "bad_request"
	// CodeUnknownType: the frame's type is not one this version knows.
	CodeUnknownType Code = "unknown_type"
	// CodeForbidden: origin, host, token, service allowlist or a Filter
	// refused the session or the find.
	CodeForbidden Code = "forbidden"
	// CodeRateLimited: the connection is over its frame rate or its
	// in-flight finds limit; retry later.
	CodeRateLimited Code = "rate_limited"
	// CodeNotFound: the find ended without any verified provider.
	CodeNotFound Code = "not_found"
	// CodeTimeout: the find's timeout passed without any verified provider.
	CodeTimeout Code = "timeout"
	// CodeTooLarge: a frame was over the bridge's frame size limit; the
	// connection is closed.
	CodeTooLarge Code = "too_large"
	// CodeInternal: the bridge failed; details are in its log, not here.
	CodeInternal Code = "internal"
	// CodeBusy: the bridge as a whole runs as many finds as it may; retry
	// later.
	CodeBusy Code = "busy"
	// CodeIdle: the session sent no frame and ran no find for the bridge's
	// idle timeout; the bridge closes it (1000). Reconnect when needed.
	CodeIdle Code = "idle"
)

// Codes lists every error code, in the order they were added.
func Codes() []Code {
	return []Code{CodeBadRequest, CodeUnknownType, CodeForbidden, CodeRateLimited,
		CodeNotFound, CodeTimeout, CodeTooLarge, CodeInternal, CodeBusy, CodeIdle,
		CodeUnavailable}
}

// ClientFrame is a frame a client sends: *HelloFrame, *FindFrame,
// *CancelFrame, *PingFrame, *WatchFrame, *OpenFrame, *SendFrame or
// *CloseFrame.
type ClientFrame interface{ clientFrame() }

// ServerFrame is a frame the bridge sends: *WelcomeFrame, *ResultFrame,
// *DoneFrame, *PongFrame, *ErrorFrame, *RemovedFrame, *OpenedFrame,
// *MessageFrame or *CloseFrame.
type ServerFrame interface{ serverFrame() }

// HelloFrame opens a session; it must be the client's first frame.
type HelloFrame struct {
	Type    string `json:"type"`              // "hello"
	Version int    `json:"version"`           // protocol version the client speaks
	Token   string `json:"token,omitempty"`   // required when the bridge has a token
	Network string `json:"network,omitempty"` // if set, must be the bridge's network
	Client  string `json:"client,omitempty"`  // free-form client name, for logs
}

// WelcomeFrame accepts a hello: who answers and within which limits.
type WelcomeFrame struct {
	Type    string `json:"type"`    // "welcome"
	Version int    `json:"version"` // protocol version of the session
	Peer    string `json:"peer"`    // the bridge node's peer ID
	Network string `json:"network"` // the netget network it finds on
	Limits  Limits `json:"limits"`
	// Features lists what the bridge serves beyond hello and ping
	// (FeatureFind, FeatureChannel, …); only grows.
	Features []string `json:"features,omitempty"`
}

// Limits tells a client the bridge's per-connection limits.
type Limits struct {
	FrameBytes       int     `json:"frame_bytes"`         // largest frame accepted
	InFlight         int     `json:"in_flight"`           // finds at once
	MaxResults       int     `json:"max_results"`         // results per find
	FramesPerSecond  float64 `json:"frames_per_second"`   // sustained frame rate
	FindTimeoutMS    int64   `json:"find_timeout_ms"`     // default find timeout
	MaxFindTimeoutMS int64   `json:"max_find_timeout_ms"` // longest find timeout
	// Channel limits, when the bridge serves channels.
	MessageBytes          int `json:"message_bytes,omitempty"`            // largest channel message
	Channels              int `json:"channels,omitempty"`                 // channels open at once
	ChannelBytesPerSecond int `json:"channel_bytes_per_second,omitempty"` // page → providers, all channels
	Watches               int `json:"watches,omitempty"`                  // watches at once (0: no watch)
}

// FindFrame asks for the verified providers of a service. ID names the
// find in every frame that answers it; it must be unique among the
// connection's finds in flight.
type FindFrame struct {
	Type      string `json:"type"`                 // "find"
	ID        string `json:"id"`                   // 1-64 printable ASCII bytes
	Service   string `json:"service"`              // [A-Za-z0-9._-]{1,64}
	Limit     int    `json:"limit,omitempty"`      // 0: the bridge's MaxResults
	TimeoutMS int64  `json:"timeout_ms,omitempty"` // 0: the bridge's FindTimeout
}

// ResultFrame carries one verified provider of a find.
type ResultFrame struct {
	Type      string  `json:"type"` // "result"
	ID        string  `json:"id"`
	Record    Record  `json:"record"`
	Source    string  `json:"source,omitempty"` // which path found it (local, registry, near, walk, provider, dht)
	ElapsedMS float64 `json:"elapsed_ms"`       // since the find started
}

// Record is a verified service record as a browser sees it: the one view
// of a found record (record.View), which find --json and the daemon's
// control API print too.
type Record = record.View

// DoneFrame ends a find that streamed at least one result, or one the
// client cancelled.
type DoneFrame struct {
	Type      string `json:"type"` // "done"
	ID        string `json:"id"`
	Count     int    `json:"count"`               // results sent
	Cancelled bool   `json:"cancelled,omitempty"` // ended by the client's cancel
}

// CancelFrame stops a find in flight. Cancelling an unknown or finished id
// does nothing.
type CancelFrame struct {
	Type string `json:"type"` // "cancel"
	ID   string `json:"id"`
}

// PingFrame asks for a pong with the same id.
type PingFrame struct {
	Type string `json:"type"` // "ping"
	ID   string `json:"id,omitempty"`
}

// PongFrame answers a ping.
type PongFrame struct {
	Type string `json:"type"` // "pong"
	ID   string `json:"id,omitempty"`
}

// ErrorFrame reports a failed find (ID set) or a failed session (ID empty;
// the bridge then closes the connection for codes forbidden, too_large and
// bad_request before the welcome).
type ErrorFrame struct {
	Type    string `json:"type"` // "error"
	ID      string `json:"id,omitempty"`
	Code    Code   `json:"code"`
	Message string `json:"message"` // for humans; never internal detail
}

func (*HelloFrame) clientFrame()  {}
func (*FindFrame) clientFrame()   {}
func (*CancelFrame) clientFrame() {}
func (*PingFrame) clientFrame()   {}

func (*WelcomeFrame) serverFrame() {}
func (*ResultFrame) serverFrame()  {}
func (*DoneFrame) serverFrame()    {}
func (*PongFrame) serverFrame()    {}
func (*ErrorFrame) serverFrame()   {}

// ParseClientFrame decodes and checks one client frame. Unknown fields are
// ignored (newer clients may send more); a missing or unknown type, a
// malformed object or a field out of range is an error wrapping
// ErrUnknownType or ErrBadFrame, whose message is safe to show the client.
func ParseClientFrame(b []byte) (ClientFrame, error) {
	if f, ok := parseFindFast(b); ok {
		return f, nil
	}
	typ, err := frameType(b)
	if err != nil {
		return nil, err
	}
	switch typ {
	case TypeHello:
		f := &HelloFrame{}
		if err := decode(b, f); err != nil {
			return nil, err
		}
		if f.Version < 1 {
			return nil, fmt.Errorf("%w: hello: version must be 1 or more", ErrBadFrame)
		}
		if f.Network != "" {
			if err := record.ValidateNetwork(f.Network); err != nil {
				return nil, fmt.Errorf("%w: hello: %w", ErrBadFrame, err)
			}
		}
		return f, nil
	case TypeFind:
		return parseFind(b)
	case TypeCancel:
		f := &CancelFrame{}
		if err := decode(b, f); err != nil {
			return nil, err
		}
		if err := checkID(f.ID); err != nil {
			return nil, fmt.Errorf("%w: cancel: %w", ErrBadFrame, err)
		}
		return f, nil
	case TypePing:
		f := &PingFrame{}
		if err := decode(b, f); err != nil {
			return nil, err
		}
		if f.ID != "" {
			if err := checkID(f.ID); err != nil {
				return nil, fmt.Errorf("%w: ping: %w", ErrBadFrame, err)
			}
		}
		return f, nil
	case TypeOpen, TypeSend, TypeClose:
		return parseChannelFrame(typ, b)
	case TypeWatch:
		return parseWatch(b)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownType, truncate(typ, 32))
}

func parseFind(b []byte) (*FindFrame, error) {
	f := &FindFrame{}
	if err := decode(b, f); err != nil {
		return nil, err
	}
	if err := checkID(f.ID); err != nil {
		return nil, fmt.Errorf("%w: find: %w", ErrBadFrame, err)
	}
	if err := record.ValidateName(f.Service); err != nil {
		return nil, fmt.Errorf("%w: find: %w", ErrBadFrame, err)
	}
	if f.Limit < 0 {
		return nil, fmt.Errorf("%w: find: limit must not be negative", ErrBadFrame)
	}
	if f.TimeoutMS < 0 {
		return nil, fmt.Errorf("%w: find: timeout_ms must not be negative", ErrBadFrame)
	}
	return f, nil
}

// ParseServerFrame decodes one frame the bridge sent: what a Go client
// reads. Like ParseClientFrame it ignores unknown fields.
func ParseServerFrame(b []byte) (ServerFrame, error) {
	typ, err := frameType(b)
	if err != nil {
		return nil, err
	}
	var f ServerFrame
	switch typ {
	case TypeWelcome:
		f = &WelcomeFrame{}
	case TypeResult:
		f = &ResultFrame{}
	case TypeDone:
		f = &DoneFrame{}
	case TypePong:
		f = &PongFrame{}
	case TypeError:
		f = &ErrorFrame{}
	case TypeRemoved:
		f = &RemovedFrame{}
	default:
		if f = parseChannelServerFrame(typ); f != nil {
			break
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownType, truncate(typ, 32))
	}
	if err := decode(b, f); err != nil {
		return nil, err
	}
	return f, nil
}

// frameType returns the type field of a JSON object.
func frameType(b []byte) (string, error) {
	var head struct {
		Type *string `json:"type"`
	}
	if err := decode(b, &head); err != nil {
		return "", err
	}
	if head.Type == nil || *head.Type == "" {
		return "", fmt.Errorf("%w: missing type", ErrBadFrame)
	}
	return *head.Type, nil
}

// decode unmarshals one JSON object into v, with errors wrapping ErrBadFrame.
func decode(b []byte, v any) error {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '{' {
		return fmt.Errorf("%w: want a JSON object", ErrBadFrame)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadFrame, err)
	}
	return nil
}

// checkID reports whether id is 1-MaxIDLen printable ASCII bytes.
func checkID(id string) error {
	if len(id) == 0 || len(id) > MaxIDLen {
		return fmt.Errorf("id must be 1-%d bytes", MaxIDLen)
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x21 || id[i] > 0x7e {
			return fmt.Errorf("id must be printable ASCII without spaces")
		}
	}
	return nil
}

// truncate shortens s to n bytes for messages that echo client input.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// Marshal encodes a server or client frame, setting its type field.
func Marshal(f any) ([]byte, error) {
	switch f := f.(type) {
	case *HelloFrame:
		f.Type = TypeHello
	case *FindFrame:
		f.Type = TypeFind
	case *CancelFrame:
		f.Type = TypeCancel
	case *PingFrame:
		f.Type = TypePing
	case *WelcomeFrame:
		f.Type = TypeWelcome
	case *ResultFrame:
		f.Type = TypeResult
	case *DoneFrame:
		f.Type = TypeDone
	case *PongFrame:
		f.Type = TypePong
	case *ErrorFrame:
		f.Type = TypeError
	case *WatchFrame:
		f.Type = TypeWatch
	case *RemovedFrame:
		f.Type = TypeRemoved
	default:
		if marshalChannel(f) {
			break
		}
		return nil, fmt.Errorf("marshal: %w: %T", ErrUnknownType, f)
	}
	b, err := json.Marshal(f)
	if err != nil {
		return nil, fmt.Errorf("marshal: %w", err)
	}
	return b, nil
}

// recordOf converts a verified record to its wire form.
func recordOf(s *record.Service) Record { return record.ViewOf(s) }
