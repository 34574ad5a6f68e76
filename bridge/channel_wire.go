package bridge

import (
	"encoding/json"
	"fmt"

	"github.com/netget/netget-peer/record"
)

// Channel frames of protocol v1 (PROTOCOL.md, "Channels"): a page opens a
// channel to a provider of a service and exchanges messages with it. Text
// messages travel in JSON send / message frames; binary messages in binary
// WebSocket frames (BinaryFrame), which cost no base64 (bench_test.go,
// BenchmarkBinaryVsBase64, measured the choice).
const (
	TypeOpen    = "open"    // client → server: open a channel to a provider
	TypeOpened  = "opened"  // server → client: the provider accepted
	TypeSend    = "send"    // client → server: one text message on a channel
	TypeMessage = "message" // server → client: one text message from the provider
	TypeClose   = "close"   // both ways: the channel ends (code, reason)
)

// CodeUnavailable: no provider could be reached, or the provider's target
// is down. An error code, appended to Codes.
const CodeUnavailable Code = "unavailable"

// Features the bridge lists in its welcome, so a page knows what it may
// send. The list only grows.
const (
	FeatureFind    = "find"    // find, cancel (always)
	FeatureChannel = "channel" // open, send, close (when the bridge has an Opener)
)

// Close codes of channel close frames, numbered as WebSocket's so that the
// handshaker's close events read like a WebSocket's. Providers may send
// others (their own 4000-4999 say, or 1008 for a refusal mid-channel).
const (
	CloseNormal    = 1000 // either side closed on purpose
	CloseGoingAway = 1001 // the bridge or its session is shutting down
	CloseLost      = 1006 // the connection to the provider died (killed, network)
	CloseTooLarge  = 1009 // a message over the limit; only that channel closes
	CloseInternal  = 1011 // the bridge failed, or the provider stopped reading
)

// OpenFrame asks for a channel to a provider of Service. ID names the
// channel in every frame about it; it must be unique among the session's
// open channels.
type OpenFrame struct {
	Type    string            `json:"type"`            // "open"
	ID      string            `json:"id"`              // 1-64 printable ASCII bytes
	Service string            `json:"service"`         // [A-Za-z0-9._-]{1,64}
	Peer    string            `json:"peer,omitempty"`  // only this provider (a peer ID)
	Where   map[string]string `json:"where,omitempty"` // only providers whose metadata has these pairs
	Token   string            `json:"token,omitempty"` // the provider's channel token, if it wants one
}

// OpenedFrame says the provider accepted the channel: messages may flow.
type OpenedFrame struct {
	Type   string `json:"type"` // "opened"
	ID     string `json:"id"`
	Peer   string `json:"peer"`   // the provider that accepted
	Record Record `json:"record"` // its verified record
}

// SendFrame carries one text message from the page to the provider.
type SendFrame struct {
	Type string `json:"type"` // "send"
	ID   string `json:"id"`
	Data string `json:"data"` // at most limits.message_bytes bytes (UTF-8)
}

// MessageFrame carries one text message from the provider to the page.
type MessageFrame struct {
	Type string `json:"type"` // "message"
	ID   string `json:"id"`
	Data string `json:"data"`
}

// CloseFrame ends a channel. From the page: close it (code and reason are
// passed to the provider; default 1000). From the bridge: it ended, by the
// provider, the bridge or the page (an echo of the page's close); the id is
// free again after it.
type CloseFrame struct {
	Type   string `json:"type"` // "close"
	ID     string `json:"id"`
	Code   int    `json:"code,omitempty"`   // WebSocket-style close code; 0: 1000
	Reason string `json:"reason,omitempty"` // at most MaxCloseReason bytes
}

// MaxCloseReason is the longest close reason, in bytes (as WebSocket's).
const MaxCloseReason = 123

func (*OpenFrame) clientFrame()    {}
func (*SendFrame) clientFrame()    {}
func (*CloseFrame) clientFrame()   {}
func (*OpenedFrame) serverFrame()  {}
func (*MessageFrame) serverFrame() {}
func (*CloseFrame) serverFrame()   {}

// parseChannelFrame decodes and checks an open, send or close frame.
func parseChannelFrame(typ string, b []byte) (ClientFrame, error) {
	switch typ {
	case TypeOpen:
		f := &OpenFrame{}
		if err := decode(b, f); err != nil {
			return nil, err
		}
		if err := checkOpen(f); err != nil {
			return nil, fmt.Errorf("%w: open: %w", ErrBadFrame, err)
		}
		return f, nil
	case TypeSend:
		f := &SendFrame{}
		if err := decode(b, f); err != nil {
			return nil, err
		}
		if err := checkID(f.ID); err != nil {
			return nil, fmt.Errorf("%w: send: %w", ErrBadFrame, err)
		}
		return f, nil
	case TypeClose:
		f := &CloseFrame{}
		if err := decode(b, f); err != nil {
			return nil, err
		}
		if err := checkClose(f); err != nil {
			return nil, fmt.Errorf("%w: close: %w", ErrBadFrame, err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownType, truncate(typ, 32))
}

// checkOpen checks an open frame's fields: the id, the service name, the
// peer's shape (the node parses it), where as record metadata.
func checkOpen(f *OpenFrame) error {
	if err := checkID(f.ID); err != nil {
		return err
	}
	if err := record.ValidateName(f.Service); err != nil {
		return err
	}
	if len(f.Peer) > 128 {
		return fmt.Errorf("peer must be a peer ID (at most 128 bytes)")
	}
	if err := record.ValidateMeta(f.Where); err != nil {
		return fmt.Errorf("where: %w", err)
	}
	if len(f.Token) > 512 {
		return fmt.Errorf("token: at most 512 bytes")
	}
	return nil
}

// checkClose checks a close frame: the id, a code a page may send (1000,
// or 3000-4999 as in WebSocket's close()), a short reason.
func checkClose(f *CloseFrame) error {
	if err := checkID(f.ID); err != nil {
		return err
	}
	if f.Code != 0 && f.Code != CloseNormal && (f.Code < 3000 || f.Code > 4999) {
		return fmt.Errorf("code %d: want 1000 or 3000-4999", f.Code)
	}
	if len(f.Reason) > MaxCloseReason {
		return fmt.Errorf("reason: at most %d bytes", MaxCloseReason)
	}
	return nil
}

// parseChannelServerFrame returns the empty server frame of a channel
// type, or nil.
func parseChannelServerFrame(typ string) ServerFrame {
	switch typ {
	case TypeOpened:
		return &OpenedFrame{}
	case TypeMessage:
		return &MessageFrame{}
	case TypeClose:
		return &CloseFrame{}
	}
	return nil
}

// marshalChannel sets the type of a channel frame; false when f is not one.
func marshalChannel(f any) bool {
	switch f := f.(type) {
	case *OpenFrame:
		f.Type = TypeOpen
	case *OpenedFrame:
		f.Type = TypeOpened
	case *SendFrame:
		f.Type = TypeSend
	case *MessageFrame:
		f.Type = TypeMessage
	case *CloseFrame:
		f.Type = TypeClose
	default:
		return false
	}
	return true
}

// Binary frames carry binary channel messages both ways, in a binary
// WebSocket message: one kind byte (BinaryMessage), one byte n = the
// channel id's length (1-64), the id, then the message bytes.
const BinaryMessage byte = 0x01

// BinaryFrame is one binary channel message.
type BinaryFrame struct {
	ID   string
	Data []byte
}

// AppendBinaryFrame appends f's wire form to dst.
func AppendBinaryFrame(dst []byte, f BinaryFrame) []byte {
	dst = append(dst, BinaryMessage, byte(len(f.ID)))
	dst = append(dst, f.ID...)
	return append(dst, f.Data...)
}

// ParseBinaryFrame decodes a binary WebSocket message. Data aliases b.
// The error wraps ErrBadFrame.
func ParseBinaryFrame(b []byte) (BinaryFrame, error) {
	if len(b) < 2 || b[0] != BinaryMessage {
		return BinaryFrame{}, fmt.Errorf("%w: binary frame: want kind byte 0x01 and an id length", ErrBadFrame)
	}
	n := int(b[1])
	if len(b) < 2+n {
		return BinaryFrame{}, fmt.Errorf("%w: binary frame: id of %d bytes cut short", ErrBadFrame, n)
	}
	id := string(b[2 : 2+n])
	if err := checkID(id); err != nil {
		return BinaryFrame{}, fmt.Errorf("%w: binary frame: %w", ErrBadFrame, err)
	}
	return BinaryFrame{ID: id, Data: b[2+n:]}, nil
}

// peekType returns the type of a JSON frame, "" when there is none.
func peekType(b []byte) string {
	var f struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(b, &f) != nil {
		return ""
	}
	return f.Type
}
