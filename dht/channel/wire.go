package channel

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio"

	"github.com/netget/netget-peer/record"
)

// Wire constants; the protocol is described in PROTOCOL.md.
const (
	// Version is the open request's protocol version.
	Version = 1
	// ServiceName is the resource-manager service of the channel protocol.
	ServiceName = "netget.channel"
	// MaxOpenSize bounds the open request and its answer, in bytes.
	MaxOpenSize = 4 << 10
	// MaxOriginLen and MaxTokenLen bound the claims of an open request.
	MaxOriginLen = 256
	// MaxTokenLen bounds the token of an open request.
	MaxTokenLen = 512
	// MaxCloseReason is the longest close reason, in bytes (WebSocket's).
	MaxCloseReason = 123
	// MinMessageLimit is the smallest message limit either side may
	// announce.
	MinMessageLimit = 1 << 10
)

// Frame types.
const (
	frameText   byte = 1
	frameBinary byte = 2
	frameEnd    byte = 3 // the sender sends nothing more (CloseWrite)
	frameClose  byte = 8
)

// Protocol returns the channel protocol ID of network.
func Protocol(network string) protocol.ID {
	return protocol.ID("/netget/" + network + "/channel/1.0.0")
}

// openRequest is the opener's first message.
type openRequest struct {
	Version    int    `json:"v"`
	Service    string `json:"service"`
	Origin     string `json:"origin,omitempty"`
	Token      string `json:"token,omitempty"`
	MaxMessage int    `json:"max_message"`
}

// openResponse is the provider's answer: OK with its own message limit,
// or a refusal code and reason.
type openResponse struct {
	OK         bool   `json:"ok,omitempty"`
	MaxMessage int    `json:"max_message,omitempty"`
	Code       string `json:"code,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// checkOpen is the one validation of an open request, on both sides.
func checkOpen(req openRequest) error {
	switch {
	case req.Version != Version:
		return fmt.Errorf("%w: version %d, want %d", ErrBadMessage, req.Version, Version)
	case len(req.Origin) > MaxOriginLen:
		return fmt.Errorf("%w: origin of %d bytes, at most %d", ErrBadMessage, len(req.Origin), MaxOriginLen)
	case len(req.Token) > MaxTokenLen:
		return fmt.Errorf("%w: token of %d bytes, at most %d", ErrBadMessage, len(req.Token), MaxTokenLen)
	case req.MaxMessage < MinMessageLimit:
		return fmt.Errorf("%w: max_message %d, at least %d", ErrBadMessage, req.MaxMessage, MinMessageLimit)
	}
	if err := record.ValidateName(req.Service); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	return nil
}

// decodeOpen strictly decodes and checks an open request.
func decodeOpen(b []byte) (openRequest, error) {
	var req openRequest
	if err := decodeStrict(b, &req); err != nil {
		return req, err
	}
	return req, checkOpen(req)
}

// decodeResponse strictly decodes and checks an open response.
func decodeResponse(b []byte) (openResponse, error) {
	var resp openResponse
	if err := decodeStrict(b, &resp); err != nil {
		return resp, err
	}
	switch {
	case resp.OK && resp.MaxMessage < MinMessageLimit:
		return resp, fmt.Errorf("%w: max_message %d, at least %d", ErrBadMessage, resp.MaxMessage, MinMessageLimit)
	case !resp.OK && resp.Code == "":
		return resp, fmt.Errorf("%w: a refusal without a code", ErrBadMessage)
	}
	return resp, nil
}

func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadMessage, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: trailing data", ErrBadMessage)
	}
	return nil
}

// writeJSON writes v as one uvarint-prefixed message of at most
// MaxOpenSize bytes.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if len(b) > MaxOpenSize {
		return fmt.Errorf("%w: open message of %d bytes, at most %d", ErrBadMessage, len(b), MaxOpenSize)
	}
	return msgio.NewVarintWriter(w).WriteMsg(b)
}

// readJSON reads one uvarint-prefixed message of at most MaxOpenSize
// bytes from r, byte by byte after the prefix so that nothing past it is
// consumed.
func readJSON(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > MaxOpenSize {
		return nil, fmt.Errorf("%w: open message of %d bytes, at most %d", ErrBadMessage, n, MaxOpenSize)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// appendFrame appends one frame to b: type, uvarint length, payload.
func appendFrame(b []byte, typ byte, payload []byte) []byte {
	b = append(b, typ)
	b = binary.AppendUvarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// closePayload encodes a close frame's payload: the code, big-endian, then
// the reason cut to MaxCloseReason bytes on a rune boundary.
func closePayload(code int, reason string) []byte {
	reason = truncate(reason, MaxCloseReason)
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
	return append(b, reason...)
}

// truncate cuts s to at most n bytes without splitting a rune.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// frameError is a frame that breaks the protocol: the close code the
// receiver answers with, and why.
type frameError struct {
	code int
	err  error
}

func (e *frameError) Error() string { return e.err.Error() }
func (e *frameError) Unwrap() error { return e.err }

// readFrame reads one frame from r, whose payload may be at most max bytes
// (close frames at most 2+MaxCloseReason). A frame that breaks the
// protocol returns a *frameError; an oversized one is refused from its
// header, before any of its payload is read or allocated. io.EOF means the
// stream ended cleanly between frames.
func readFrame(r *bufio.Reader, max int) (byte, []byte, error) {
	fr := frameReader{r: r}
	return fr.next(max)
}

// frameReader reads frames from r and can be interrupted: a read that
// fails with a timeout (a read deadline) keeps what it had of the frame,
// and the next call goes on from there. A Conn's Receive reads the stream
// itself this way, with ctx as a read deadline, instead of a goroutine
// that reads and hands over.
type frameReader struct {
	r    *bufio.Reader
	head bool   // typ and n are known: the payload is being read
	typ  byte   // the frame's type, once head
	buf  []byte // the payload, len(buf) of it read so far
	n    int    // the payload's length, once head
}

// next returns the next frame (see readFrame). Any error but a timeout
// ends the frame reader's use: the stream is broken or closing.
func (f *frameReader) next(max int) (byte, []byte, error) {
	if !f.head {
		if err := f.header(max); err != nil {
			return 0, nil, err
		}
	}
	for len(f.buf) < f.n {
		k, err := f.r.Read(f.buf[len(f.buf):f.n])
		f.buf = f.buf[:len(f.buf)+k]
		if err != nil && len(f.buf) < f.n {
			return 0, nil, eofIsUnexpected(err)
		}
	}
	typ, b := f.typ, f.buf
	f.head, f.buf = false, nil
	switch {
	case typ == frameText && !utf8.Valid(b):
		return 0, nil, &frameError{CloseInvalidData, fmt.Errorf("%w: text message is not UTF-8", ErrBadMessage)}
	case typ == frameClose && !validCloseCode(int(binary.BigEndian.Uint16(b))):
		return 0, nil, &frameError{CloseProtocolError, fmt.Errorf("%w: close code %d", ErrBadMessage, binary.BigEndian.Uint16(b))}
	case typ == frameClose && !utf8.Valid(b[2:]):
		return 0, nil, &frameError{CloseInvalidData, fmt.Errorf("%w: close reason is not UTF-8", ErrBadMessage)}
	}
	return typ, b, nil
}

// header reads a frame's type and length, checks them and makes the
// payload's buffer. It consumes nothing until the whole header is there
// (bufio's Peek), so a timeout loses nothing.
func (f *frameReader) header(max int) error {
	if _, err := f.r.Peek(1); err != nil {
		return err // io.EOF here: the stream ended between frames
	}
	n, size, err := f.peekLength()
	if err != nil {
		return err
	}
	typ, _ := f.r.ReadByte()
	switch typ {
	case frameText, frameBinary:
		if n > uint64(max) {
			return &frameError{CloseTooLarge, fmt.Errorf("%w: message of %d bytes, limit %d", ErrTooLarge, n, max)}
		}
	case frameEnd:
		if n != 0 {
			return &frameError{CloseProtocolError, fmt.Errorf("%w: end frame with a payload", ErrBadMessage)}
		}
	case frameClose:
		if n < 2 || n > 2+MaxCloseReason {
			return &frameError{CloseProtocolError, fmt.Errorf("%w: close frame of %d bytes", ErrBadMessage, n)}
		}
	default:
		return &frameError{CloseProtocolError, fmt.Errorf("%w: frame type %d", ErrBadMessage, typ)}
	}
	_, _ = f.r.Discard(size)
	f.head, f.typ, f.n, f.buf = true, typ, int(n), make([]byte, 0, n)
	return nil
}

// peekLength decodes the uvarint length after the type byte without
// consuming it, and returns it with its size in bytes. It must be in its
// shortest form: one encoding per frame.
func (f *frameReader) peekLength() (uint64, int, error) {
	var n uint64
	for i := 0; i < binary.MaxVarintLen64; i++ {
		p, err := f.r.Peek(2 + i)
		if len(p) < 2+i {
			return 0, 0, eofIsUnexpected(err)
		}
		b := p[1+i]
		if i == binary.MaxVarintLen64-1 && b > 1 {
			break
		}
		n |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if b == 0 && i > 0 {
				return 0, 0, &frameError{CloseProtocolError, fmt.Errorf("%w: frame length not in its shortest form", ErrBadMessage)}
			}
			return n, 1 + i, nil
		}
	}
	return 0, 0, &frameError{CloseProtocolError, fmt.Errorf("%w: frame length overflows 64 bits", ErrBadMessage)}
}

// validCloseCode reports whether code may travel in a close frame.
func validCloseCode(code int) bool { return code >= 1000 && code <= 4999 }

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
