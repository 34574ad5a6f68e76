package channel

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestProtocolExample keeps PROTOCOL.md's example exchange equal to what
// this package writes.
func TestProtocolExample(t *testing.T) {
	doc, err := os.ReadFile("PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	frame := func(typ byte, payload []byte) string {
		b := appendFrame(nil, typ, payload)
		hdr := len(b) - len(payload)
		return hex.EncodeToString(b[:1]) + " " + hex.EncodeToString(b[1:hdr]) + " " + hex.EncodeToString(b[hdr:])
	}
	open := func(v any) string {
		b, _ := json.Marshal(v)
		return fmt.Sprintf("%02x %s", len(b), b)
	}
	for _, want := range []string{
		open(openRequest{Version: 1, Service: "ChatService", Origin: "https://app.example", MaxMessage: 1 << 20}),
		open(openResponse{OK: true, MaxMessage: 1 << 20}),
		open(openRequest{Version: 1, Service: "ChatService", Origin: "https://evil.example", MaxMessage: 1 << 20}),
		open(openResponse{Code: CodeForbidden, Reason: "origin https://evil.example not allowed"}),
		frame(frameText, []byte("hello")),
		frame(frameText, []byte("hello, page.")),
		frame(frameBinary, []byte{0, 1, 2, 0xff}),
		strings.Replace(frame(frameClose, closePayload(1000, "bye")), "03e8", "03e8 ", 1),
		frame(frameClose, closePayload(1000, "")),
	} {
		if !strings.Contains(string(doc), want) {
			t.Errorf("PROTOCOL.md lacks %q", want)
		}
	}
	if got := Refuse(CodeForbidden, "origin %.64s not allowed", "https://evil.example").(*RefusedError).Reason; got != "origin https://evil.example not allowed" {
		t.Errorf("Filter's reason %q differs from the example", got)
	}
}
