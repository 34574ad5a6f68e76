package record_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/netget/netget-peer/record"
)

// FuzzOpen feeds arbitrary bytes to the verifier: it must never panic, and
// anything it accepts must satisfy every limit and re-verify identically.
func FuzzOpen(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("testdata", "golden.envelope")); err == nil {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{})
	f.Add([]byte("\x0a\x00"))
	v := record.Validator{Network: "development", Now: func() time.Time { return now }}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := v.Open(data)
		if err != nil {
			return
		}
		if len(data) > record.MaxEnvelopeSize || len(s.Addrs) > record.MaxAddrs || len(s.Meta) > record.MaxMetaPairs {
			t.Fatalf("accepted a record over the limits: %+v", s)
		}
		if _, err := v.Open(data); err != nil {
			t.Fatalf("second Open disagrees: %v", err)
		}
	})
}

// FuzzUnmarshalRecord fuzzes the JSON payload decoder on its own.
func FuzzUnmarshalRecord(f *testing.F) {
	f.Add([]byte(`{"v":1,"network":"development","name":"DatabaseService","peer":"12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA","addrs":[],"seq":1,"issued_at":"2026-11-25T05:00:00Z","expires_at":"2026-11-25T06:00:00Z"}`))
	f.Add([]byte(`{"v":1,"extra":true}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var s record.Service
		if err := s.UnmarshalRecord(data); err != nil {
			return
		}
		if _, err := s.MarshalRecord(); err != nil {
			t.Fatalf("decoded record does not re-encode: %v", err)
		}
	})
}
