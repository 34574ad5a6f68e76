package channel

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
	"unicode/utf8"
)

// frameSeeds are the frames of PROTOCOL.md's example exchange and the
// hostile ones of the tests.
var frameSeeds = [][]byte{
	appendFrame(nil, frameText, []byte("hello")),
	appendFrame(nil, frameBinary, []byte{0, 1, 2, 255}),
	appendFrame(nil, frameEnd, nil),
	appendFrame(nil, frameClose, closePayload(4000, "bye")),
	append(appendFrame(nil, frameText, []byte("a")), appendFrame(nil, frameClose, closePayload(1000, ""))...),
	{2, 0x80, 0x80, 0x80, 0x80, 0x04}, // binary, 1 GiB header
	{7, 0},                            // unknown type
	{1, 2, 0xc3, 0x28},                // text, not UTF-8
	{8, 1, 3},                         // close frame too short
	{8, 2, 0x03, 0xe7},                // close code 999
	{3, 1, 0},                         // end frame with a payload
	{2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, // overlong uvarint
	{2, 0x80, 0x00}, // length not in its shortest form
}

// FuzzReadFrame: the frame decoder never panics, never allocates past the
// limit, accepts only well-formed frames, and what it accepts encodes back
// to the same bytes.
func FuzzReadFrame(f *testing.F) {
	for _, s := range frameSeeds {
		f.Add(s)
	}
	const max = 1 << 10
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		var again []byte
		for {
			typ, payload, err := readFrame(r, max)
			if err != nil {
				var fe *frameError
				if !errors.As(err, &fe) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				if errors.Is(err, io.EOF) && !bytes.Equal(again, b) {
					t.Fatalf("re-encoded %x, read %x", again, b)
				}
				return
			}
			switch typ {
			case frameText:
				if !utf8.Valid(payload) || len(payload) > max {
					t.Fatalf("accepted text %q", payload)
				}
			case frameBinary:
				if len(payload) > max {
					t.Fatalf("accepted %d bytes, limit %d", len(payload), max)
				}
			case frameEnd:
				if len(payload) != 0 {
					t.Fatal("accepted an end frame with a payload")
				}
			case frameClose:
				if len(payload) < 2 || len(payload) > 2+MaxCloseReason || !validCloseCode(int(payload[0])<<8|int(payload[1])) {
					t.Fatalf("accepted close payload %x", payload)
				}
			default:
				t.Fatalf("accepted frame type %d", typ)
			}
			again = appendFrame(again, typ, payload)
		}
	})
}

// FuzzDecodeOpen: the open-request decoder never panics and accepts only
// requests checkOpen passes.
func FuzzDecodeOpen(f *testing.F) {
	f.Add([]byte(`{"v":1,"service":"ChatService","origin":"https://app.example","token":"s3cret","max_message":1048576}`))
	f.Add([]byte(`{"v":1,"service":"ChatService","max_message":1024}`))
	f.Add([]byte(`{"v":2,"service":"ChatService","max_message":1024}`))
	f.Add([]byte(`{"v":1,"service":"bad name","max_message":1024}`))
	f.Add([]byte(`{"v":1,"service":"A","max_message":1024,"extra":1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		req, err := decodeOpen(b)
		if err != nil {
			return
		}
		if checkOpen(req) != nil || req.MaxMessage < MinMessageLimit || len(req.Origin) > MaxOriginLen || len(req.Token) > MaxTokenLen {
			t.Fatalf("accepted %+v", req)
		}
	})
}
